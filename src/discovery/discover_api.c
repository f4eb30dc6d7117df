/*
 * POST /v1/capabilities/discover (docs/api.md, docs/discovery.md): read the
 * request, run it (discover.h), and answer each result with the agent's
 * public fields and its score with components; meta.embeddings says which
 * model embedded the query and, on a provider outage, that the built-in
 * embedder stood in and why.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/jsonw.h"
#include "discovery/api.h"
#include "discovery/discover.h"
#include "registry/agent.h"
#include "serve/app.h"
#include "core/banned.h"

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

int api_discover(struct req *r)
{
	struct discovery *d = r->app->disc;
	struct discover_req *q = malloc(sizeof(*q));
	struct discover_out *o = malloc(sizeof(*o));
	struct jerr e = {{0}, {0}};
	json_t *body = NULL;
	int rc;

	if (!d || !d->ix) {
		rc = req_fail(r, E(UNAVAILABLE), "discovery is not running");
		goto out;
	}
	if (!q || !o) {
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
	rc = discover_run(d, r->auth.org.org_id, q, DISCOVER_HYBRID, o);
	if (rc) {
		rc = req_fail(r, rc, "discovery failed: %s",
			      o->store_failed ? store_last_error() : "out of memory");
		goto out;
	}
	set_meta(r, o->model, o->fallback, o->fallback ? o->why : NULL);
	rc = reply(r, o->res, o->n, o->has_text);
out:
	json_decref(body);
	free(q);
	free(o);
	return rc;
}
