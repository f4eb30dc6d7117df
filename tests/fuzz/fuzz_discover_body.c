/*
 * Fuzz target: a POST /v1/capabilities/discover body, as the server reads
 * it: json_parse_object, then discover_req_from_json, then the built-in
 * embedder over the query text (untrusted words reach the stemmer and the
 * lexicon). Nothing may crash or leak.
 *
 * Invariants checked (abort() when broken): a refusal names a field; an
 * accepted request has a limit in 1..100, at most 100 exclusions, full-text
 * terms that are non-empty lowercase [a-z0-9] words (nothing a database's
 * query syntax could read as an operator or a quote), and a unit vector
 * with ascending feature ids.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/json.h"
#include "discovery/embed.h"
#include "discovery/request.h"

static void check(const struct discover_req *q, const struct svec *v)
{
	float norm = 0;

	if (q->limit < 1 || q->limit > DX_RESULTS_MAX || q->nexclude > DX_EXCLUDE_MAX)
		abort();
	for (int i = 0; i < q->nterms; i++) {
		const char *t = q->term_buf[i];

		if (!t[0])
			abort();
		for (; *t; t++)
			if (!((*t >= 'a' && *t <= 'z') || (*t >= '0' && *t <= '9')))
				abort();
	}
	for (int i = 0; i < v->n; i++) {
		norm += v->w[i] * v->w[i];
		if (i && v->id[i - 1] >= v->id[i])
			abort();
	}
	if (v->n && fabsf(norm - 1) > 1e-3f)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct lexicon *lx;
	static struct discover_req q;
	struct svec v;
	struct jerr e;
	json_t *body = NULL;
	int rc;

	if (!lx && lexicon_load(&lx))
		abort();
	memset(&e, 0, sizeof(e));
	if (json_parse_object((const char *)data, size, &body, &e))
		return 0;
	rc = discover_req_from_json(body, &q, &e);
	if (rc == 0) {
		if (embed_text(lx, q.query, strlen(q.query), &v))
			abort();
		check(&q, &v);
	} else if (rc != E(VALIDATION) || !e.message[0]) {
		abort();
	}
	json_decref(body);
	return 0;
}
