/*
 * Choosing the callee when a delegation names a capability instead of an
 * agent (docs/delegations.md "Choosing the callee"). Candidates are the
 * org's agents of that capability_type that are not paused and are not
 * the caller; each is put to the policy stack as the callee it would be,
 * and only those the stack would let through (allow, or approval) and
 * whose per-call price fits the cap remain. They are ranked by:
 *
 *   1. how many words of `query` (if any) appear in the agent's name and
 *      description (a plain lexical match until semantic discovery ranks
 *      them);
 *   2. allow before pending approval;
 *   3. trust score, higher first;
 *   4. price, lower first; then p99 latency SLA, lower first; then id.
 */
#include "delegation/select.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/banned.h"

#define SELECT_SCAN_MAX 500 /* candidates read per capability */
#define QUERY_WORDS_MAX 16

struct pick {
	const struct select_in *in;
	struct agent best;
	int have;
	int best_words, best_allow;
	struct select_counts *counts;
};

/* Case-insensitive: does word (len n) occur in s? */
static int has_word(const char *s, const char *w, size_t n)
{
	for (; s && *s; s++) {
		size_t i = 0;

		while (i < n && s[i] && tolower((unsigned char)s[i]) == tolower((unsigned char)w[i]))
			i++;
		if (i == n)
			return 1;
	}
	return 0;
}

static int query_words(const char *q, const struct agent *a)
{
	int hits = 0, words = 0;

	while (q && *q && words < QUERY_WORDS_MAX) {
		size_t n = 0;

		while (*q && !isalnum((unsigned char)*q))
			q++;
		while (q[n] && isalnum((unsigned char)q[n]))
			n++;
		if (n >= 3) { /* skip "a", "of", ... */
			words++;
			hits += has_word(a->name, q, n) || has_word(a->description, q, n);
		}
		q += n;
	}
	return hits;
}

/* 1 when a ranks before the current best. */
static int better(const struct pick *p, const struct agent *a, int words, int allow)
{
	const struct agent *b = &p->best;

	if (!p->have)
		return 1;
	if (words != p->best_words)
		return words > p->best_words;
	if (allow != p->best_allow)
		return allow;
	if (a->trust_score != b->trust_score)
		return a->trust_score > b->trust_score;
	if (a->per_call_micros != b->per_call_micros)
		return a->per_call_micros < b->per_call_micros;
	if (a->p99_latency_ms != b->p99_latency_ms)
		return a->p99_latency_ms < b->p99_latency_ms;
	return strcmp(a->agent_id, b->agent_id) < 0;
}

static int consider(void *ctx, const struct agent *a)
{
	struct pick *p = ctx;
	const struct select_in *in = p->in;
	struct policy_request pr = {
		.caller_agent_id = in->caller_agent_id,
		.callee_agent_id = a->agent_id,
		.capability = in->capability,
		.budget_cap_micros = in->budget_cap_micros,
		.callee_trust_score = a->trust_score,
		.callee_circuit_open = 0,
		.now = in->now,
	};
	struct policy_decision d;
	int words;

	if (!strcmp(a->status, "paused") || !strcmp(a->agent_id, in->caller_agent_id))
		return 0;
	p->counts->considered++;
	if (a->per_call_micros > in->budget_cap_micros) {
		p->counts->over_budget++;
		return 0;
	}
	if (policy_decide(in->stack, &pr, &d) || d.verdict == POLICY_BLOCK) {
		p->counts->blocked++;
		return 0;
	}
	words = query_words(in->query, a);
	if (!better(p, a, words, d.verdict == POLICY_ALLOW))
		return 0;
	agent_release(&p->best);
	p->best = *a; /* take a copy of the borrowed row's strings */
	p->best.name = strdup(a->name);
	p->best.description = strdup(a->description);
	p->best.webhook_url = strdup(a->webhook_url);
	p->best.input_schema = strdup(a->input_schema);
	p->best.output_schema = strdup(a->output_schema);
	p->best.embedding_id = a->embedding_id ? strdup(a->embedding_id) : NULL;
	p->best.secret_sealed = malloc(a->secret_sealed_len ? a->secret_sealed_len : 1);
	if (p->best.secret_sealed)
		memcpy(p->best.secret_sealed, a->secret_sealed, a->secret_sealed_len);
	p->have = 1;
	p->best_words = words;
	p->best_allow = d.verdict == POLICY_ALLOW;
	if (!p->best.name || !p->best.description || !p->best.webhook_url ||
	    !p->best.input_schema || !p->best.output_schema || !p->best.secret_sealed ||
	    (a->embedding_id && !p->best.embedding_id))
		return E(INTERNAL);
	return 0;
}

int delegate_select(struct store *st, const struct select_in *in, struct agent *out,
		    struct select_counts *counts)
{
	struct agent_filter f = {.org_id = in->org_id, .capability_type = in->capability};
	struct pick p = {.in = in, .counts = counts};
	int rc;

	memset(counts, 0, sizeof(*counts));
	memset(&p.best, 0, sizeof(p.best));
	rc = st->ops->agent_list(st, &f, SELECT_SCAN_MAX, 0, consider, &p);
	if (rc) {
		agent_release(&p.best);
		return rc < 0 ? rc : E(INTERNAL);
	}
	if (!p.have)
		return E(NOT_FOUND);
	*out = p.best;
	return 0;
}
