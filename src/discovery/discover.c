/* One discovery without HTTP; see discover.h. */
#include "discovery/discover.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "discovery/stem.h"
#include "core/banned.h"

struct lex_ctx {
	struct dx_hit *hits;
	int n;
};

static int on_hit(void *ctx, const char *org_id, const char *agent_id, int64_t row,
		  double score)
{
	struct lex_ctx *l = ctx;
	struct dx_hit *h = &l->hits[l->n];

	if (l->n >= DISCOVER_LEXICAL_CANDIDATES || (!row && (!org_id || !agent_id)) || score <= 0)
		return 0;
	snprintf(h->org_id, sizeof(h->org_id), "%s", org_id ? org_id : "");
	snprintf(h->agent_id, sizeof(h->agent_id), "%s", agent_id ? agent_id : "");
	h->row = row;
	h->score = score;
	l->n++;
	return 0;
}

struct term_df {
	const char *t;
	uint32_t df;
};

static int by_df(const void *a, const void *b)
{
	const struct term_df *x = a, *y = b;

	return (x->df > y->df) - (x->df < y->df);
}

/*
 * The words full-text search gets: the rarest first, while the agents they
 * match (their document frequencies, from the index) stay within
 * LEXICAL_MATCH_BUDGET, the rarest always unless it alone is over four
 * times that. bm25 costs each matching row, so a query of common words
 * would cost the whole registry; their overlap still counts through the
 * built-in vectors, which carry every word's stem (docs/discovery.md).
 */
static void pick_terms(struct discovery *d, const struct discover_req *q, struct agent_search *s)
{
	struct term_df td[SEARCH_TERMS_MAX];
	struct stemmer st;
	char stem[STEM_WORD_MAX + 1];
	uint64_t total = 0;

	if (stemmer_init(&st))
		return;
	for (int i = 0; i < q->nterms; i++) {
		size_t n = stemmer_stem(&st, q->term_buf[i], strlen(q->term_buf[i]), stem);

		td[i].t = q->term_buf[i];
		td[i].df = dindex_df(d->ix, embed_stem_feature(stem, n));
	}
	stemmer_release(&st);
	qsort(td, (size_t)q->nterms, sizeof(td[0]), by_df);
	for (int i = 0; i < q->nterms; i++) {
		total += td[i].df;
		if (i == 0 ? td[i].df > 4 * LEXICAL_MATCH_BUDGET : total > LEXICAL_MATCH_BUDGET)
			break;
		s->terms[s->nterms++] = td[i].t;
	}
}

/* The provider's query vector, or NULL with out saying why not. */
static float *provider_query(struct discovery *d, const char *query, int *dim,
			     struct discover_out *out)
{
	float *v = NULL;

	if (!d->prov)
		return NULL;
	if (provider_embed(d->prov, query, PROVIDER_QUERY_TIMEOUT_MS, &v, dim, out->why)) {
		out->fallback = 1;
		return NULL;
	}
	snprintf(out->model, sizeof(out->model), "%s", provider_model(d->prov));
	return v;
}

int discover_run(struct discovery *d, const char *org_id, const struct discover_req *q,
		 int signals, struct discover_out *out)
{
	struct store *st = d->store;
	struct dx_hit *hits = malloc(DISCOVER_LEXICAL_CANDIDATES * sizeof(*hits));
	struct agent_search s = {0};
	struct lex_ctx lex = {.hits = hits};
	struct dx_query dq = {0};
	struct svec qv = {.n = 0}, none = {.n = 0};
	float *pq = NULL;
	int rc, pdim = 0;

	memset(out, 0, sizeof(*out));
	snprintf(out->model, sizeof(out->model), "%s", EMBED_MODEL);
	if (!hits)
		return E(INTERNAL);
	rc = dindex_sync(d->ix, st);
	out->store_failed = rc != 0;
	if (!rc)
		rc = embed_text(d->lx, q->query, strlen(q->query), &qv);
	if (rc)
		goto out;
	dq.has_text = out->has_text = qv.n > 0 || q->nterms > 0;
	if (dq.has_text && (signals & DISCOVER_SEMANTIC))
		pq = provider_query(d, q->query, &pdim, out);
	s.org_id = org_id;
	s.cross_org = q->include_cross_org;
	s.capability_type = q->capability_type;
	s.max_price_micros = q->budget_cap_micros;
	s.max_p99_ms = q->max_latency_ms;
	if (signals & DISCOVER_LEXICAL)
		pick_terms(d, q, &s);
	rc = st->ops->agent_search(st, &s, DISCOVER_LEXICAL_CANDIDATES, on_hit, &lex);
	if (rc) {
		out->store_failed = 1;
		goto out;
	}
	dq.org_id = org_id;
	dq.cross_org = q->include_cross_org;
	dq.cap = q->capability_type ? dindex_cap(q->capability_type) : -1;
	dq.budget_cap_micros = q->budget_cap_micros;
	dq.max_latency_ms = q->max_latency_ms;
	dq.exclude = q->exclude;
	dq.nexclude = q->nexclude;
	dq.q = (signals & DISCOVER_SEMANTIC) ? &qv : &none;
	dq.pq = pq;
	dq.pq_dim = pdim;
	dq.lex = hits;
	dq.nlex = lex.n;
	dq.limit = q->limit;
	rc = dindex_query(d->ix, &dq, out->res, &out->n);
out:
	free(pq);
	free(hits);
	return rc;
}
