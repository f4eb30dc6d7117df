/*
 * POST /v1/capabilities/discover (docs/api.md, docs/discovery.md): read the
 * request, bring the index up to date, embed the query (the provider's
 * model when configured and answering, else the built-in embedder, said in
 * meta.embeddings), ask the store for full-text hits, rank in the index,
 * and answer each result with the agent's public fields and its score
 * with components.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/jsonw.h"
#include "discovery/api.h"
#include "discovery/discovery.h"
#include "discovery/request.h"
#include "registry/agent.h"
#include "serve/app.h"
#include "core/banned.h"

#define LEXICAL_CANDIDATES 200

struct lex_ctx {
	struct dx_hit *hits;
	int n;
};

static int on_hit(void *ctx, const char *org_id, const char *agent_id, double score)
{
	struct lex_ctx *l = ctx;
	struct dx_hit *h = &l->hits[l->n];

	if (l->n >= LEXICAL_CANDIDATES || !org_id || !agent_id || score <= 0)
		return 0;
	snprintf(h->org_id, sizeof(h->org_id), "%s", org_id);
	snprintf(h->agent_id, sizeof(h->agent_id), "%s", agent_id);
	h->score = score;
	l->n++;
	return 0;
}

/* meta.embeddings: which model ranked, and why not the provider's. */
static void set_meta(struct req *r, const char *model, int fallback, const char *why)
{
	struct buf b;
	struct jsonw jw;

	buf_init(&b, sizeof(r->meta_json) - 1);
	jw_init(&jw, &b);
	jw_obj_open(&jw);
	jw_kstr(&jw, "model", model);
	jw_kbool(&jw, "fallback", fallback);
	if (why)
		jw_kstr(&jw, "reason", why);
	jw_obj_close(&jw);
	if (!jw.rc && b.data) {
		r->meta_key = "embeddings";
		snprintf(r->meta_json, sizeof(r->meta_json), "%.*s", (int)b.len, b.data);
	}
	buf_release(&b);
}

static void write_components(struct jsonw *jw, const struct rank_out *o, int has_text)
{
	const struct {
		const char *key;
		double v;
		int text; /* only with query text */
	} c[] = {{"relevance", o->relevance, 1}, {"lexical", o->lexical, 1},
		 {"semantic", o->semantic, 1},   {"budget_fit", o->budget_fit, 0},
		 {"latency_fit", o->latency_fit, 0}, {"trust", o->trust, 0}};

	jw_key(jw, "score");
	jw_num(jw, o->score);
	jw_key(jw, "score_components");
	jw_obj_open(jw);
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++)
		if (has_text || !c[i].text) {
			jw_key(jw, c[i].key);
			jw_num(jw, c[i].v);
		}
	jw_obj_close(jw);
}

/* The results as the API shows them; an agent gone since ranking (none
 * are deleted, so only on a race with nothing) is skipped. */
static int reply(struct req *r, const struct dx_result *res, int n, int has_text)
{
	struct store *st = r->app->store;
	struct jsonw jw;

	jw_init(&jw, &r->out);
	jw_raw(&jw, "[");
	for (int i = 0, first = 1; i < n; i++) {
		struct agent a;
		int rc = st->ops->agent_get(st, res[i].org_id, res[i].agent_id, &a);

		if (rc == E(NOT_FOUND))
			continue;
		if (rc)
			return req_fail(r, rc, "reading a result failed: %s", store_last_error());
		if (!first)
			jw_raw(&jw, ",");
		first = 0;
		jw_obj_open(&jw);
		jw_kstr(&jw, "org_id", a.org_id);
		agent_write_members(&jw, &a, 0);
		write_components(&jw, &res[i].r, has_text);
		jw_obj_close(&jw);
		agent_release(&a);
	}
	jw_raw(&jw, "]");
	return jw.rc ? req_fail(r, jw.rc, "response too large") : req_ok_out(r, 200);
}

/* The provider's query vector, or NULL with meta saying why not. */
static float *provider_query(struct req *r, struct discovery *d, const char *query, int *dim)
{
	char why[PROVIDER_WHY_MAX] = "";
	float *v = NULL;

	if (!d->prov) {
		set_meta(r, EMBED_MODEL, 0, NULL);
		return NULL;
	}
	if (provider_embed(d->prov, query, PROVIDER_QUERY_TIMEOUT_MS, &v, dim, why)) {
		set_meta(r, EMBED_MODEL, 1, why);
		return NULL;
	}
	set_meta(r, provider_model(d->prov), 0, NULL);
	return v;
}

int api_discover(struct req *r)
{
	struct discovery *d = r->app->disc;
	struct store *st = r->app->store;
	struct discover_req *q = malloc(sizeof(*q));
	struct dx_hit *hits = malloc(LEXICAL_CANDIDATES * sizeof(*hits));
	struct dx_result *res = malloc(DX_RESULTS_MAX * sizeof(*res));
	struct agent_search s = {0};
	struct lex_ctx lex = {.hits = hits};
	struct dx_query dq = {0};
	struct svec qv;
	struct jerr e = {{0}, {0}};
	json_t *body = NULL;
	float *pq = NULL;
	int rc, n = 0, pdim = 0;

	if (!d || !d->ix) {
		rc = req_fail(r, E(UNAVAILABLE), "discovery is not running");
		goto out;
	}
	if (!q || !hits || !res) {
		rc = req_fail(r, E(INTERNAL), "out of memory");
		goto out;
	}
	rc = req_json_body(r, &body);
	if (rc)
		goto out;
	rc = discover_req_from_json(body, q, &e);
	if (rc) {
		rc = req_fail_jerr(r, &e);
		goto out;
	}
	rc = dindex_sync(d->ix, st);
	if (!rc)
		rc = embed_text(d->lx, q->query, strlen(q->query), &qv);
	if (rc) {
		rc = req_fail(r, rc, "discovery index failed: %s", store_last_error());
		goto out;
	}
	dq.has_text = qv.n > 0 || q->nterms > 0;
	if (dq.has_text)
		pq = provider_query(r, d, q->query, &pdim);
	s.org_id = r->auth.org.org_id;
	s.cross_org = q->include_cross_org;
	s.capability_type = q->capability_type;
	s.max_price_micros = q->budget_cap_micros;
	s.max_p99_ms = q->max_latency_ms;
	for (int i = 0; i < q->nterms; i++)
		s.terms[s.nterms++] = q->term_buf[i];
	rc = st->ops->agent_search(st, &s, LEXICAL_CANDIDATES, on_hit, &lex);
	if (rc) {
		rc = req_fail(r, rc, "full-text search failed: %s", store_last_error());
		goto out;
	}
	dq.org_id = r->auth.org.org_id;
	dq.cross_org = q->include_cross_org;
	dq.cap = q->capability_type ? dindex_cap(q->capability_type) : -1;
	dq.budget_cap_micros = q->budget_cap_micros;
	dq.max_latency_ms = q->max_latency_ms;
	dq.exclude = q->exclude;
	dq.nexclude = q->nexclude;
	dq.q = &qv;
	dq.pq = pq;
	dq.pq_dim = pdim;
	dq.lex = hits;
	dq.nlex = lex.n;
	dq.limit = q->limit;
	rc = dindex_query(d->ix, &dq, res, &n);
	if (rc)
		rc = req_fail(r, rc, "ranking failed: out of memory");
	else
		rc = reply(r, res, n, dq.has_text);
out:
	json_decref(body);
	free(pq);
	free(q);
	free(hits);
	free(res);
	return rc;
}
