/*
 * GET /v1/agents/{agent_id}/trust: why an agent has its score
 * (docs/trust.md). The score and status are the agent's; the components
 * are recomputed from its last TRUST_EXPLAIN_WINDOW settled outcomes as a
 * callee (trust_explain) against its current SLA and price; the last
 * changes are the audit entries that moved the score, with before/after.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "audit/api.h"
#include "audit/entry.h"
#include "auth/auth.h"
#include "core/err.h"
#include "serve/app.h"
#include "trust/trust.h"
#include "core/banned.h"

#define LAST_CHANGES 10
#define SCAN_MAX 500 /* delegations read to find the window (caller ones skipped) */

struct window {
	const struct agent *a;
	struct trust_outcome o[TRUST_EXPLAIN_WINDOW];
	int n;
};

static int take(void *ctx, const struct delegation *d)
{
	struct window *w = ctx;
	struct trust_outcome *o;

	if (strcmp(d->rec.callee_agent_id, w->a->agent_id) ||
	    (strcmp(d->status, "completed") && strcmp(d->status, "failed") &&
	     strcmp(d->status, "timed_out")))
		return 0;
	o = &w->o[w->n++];
	o->completed = !strcmp(d->status, "completed");
	o->latency_ms = d->latency_ms;
	o->sla_p99_ms = w->a->p99_latency_ms;
	o->reported_cost_micros = d->reported_cost_micros;
	o->price_micros = w->a->per_call_micros;
	o->overrun = d->overrun;
	return w->n == TRUST_EXPLAIN_WINDOW;
}

struct changes {
	struct jsonw *jw;
	int n;
};

static int change(void *ctx, const struct audit_entry *e)
{
	struct changes *c = ctx;

	if (c->n++)
		jw_raw(c->jw, ",");
	jw_obj_open(c->jw);
	jw_kint(c->jw, "event_id", e->event_id);
	jw_kstr(c->jw, "delegation_id", e->delegation_id);
	jw_kstr(c->jw, "status", e->status);
	jw_ktime(c->jw, "timestamp", e->ts);
	jw_key(c->jw, "before");
	jw_num(c->jw, e->trust_before);
	jw_key(c->jw, "after");
	jw_num(c->jw, e->trust_after);
	jw_obj_close(c->jw);
	return c->jw->rc;
}

static void knum(struct jsonw *jw, const char *k, double v)
{
	jw_key(jw, k);
	jw_num(jw, v);
}

int api_agent_trust(struct req *r)
{
	struct store *st = r->app->store;
	const char *id = r->params[0];
	struct delegation_filter f = {.org_id = r->auth.org.org_id, .agent_id = id, .to = INT64_MAX};
	struct audit_filter af = {.org_id = r->auth.org.org_id, .callee_id = id, .decision = "ALLOW",
				  .to = INT64_MAX};
	struct trust_components tc;
	struct window *w = NULL;
	struct changes ch;
	struct agent a;
	struct jsonw jw;
	int rc;

	memset(&a, 0, sizeof(a));
	rc = agent_id_valid(id) ? st->ops->agent_get(st, r->auth.org.org_id, id, &a) : E(NOT_FOUND);
	if (rc == E(NOT_FOUND))
		return req_fail(r, rc, "agent %s not found", id);
	if (rc)
		return req_fail(r, rc, "reading the agent failed: %s", store_last_error());
	w = calloc(1, sizeof(*w));
	if (!w) {
		agent_release(&a);
		return req_fail(r, E(INTERNAL), "out of memory");
	}
	w->a = &a;
	rc = st->ops->delegation_list(st, &f, SCAN_MAX, 0, take, w);
	if (rc > 0)
		rc = 0; /* the window is full */
	if (rc)
		goto out;
	trust_explain(w->o, w->n, trust_alpha(a.status), &tc);
	jw_init(&jw, &r->out);
	jw_obj_open(&jw);
	jw_kstr(&jw, "agent_id", a.agent_id);
	jw_kstr(&jw, "status", a.status);
	knum(&jw, "trust_score", a.trust_score);
	jw_key(&jw, "components");
	jw_obj_open(&jw);
	knum(&jw, "completion", tc.completion);
	knum(&jw, "latency", tc.latency);
	knum(&jw, "cost_accuracy", tc.cost);
	knum(&jw, "signal", tc.signal);
	jw_obj_close(&jw);
	jw_kint(&jw, "sample_size", tc.sample_size);
	jw_kint(&jw, "completed", tc.completed);
	jw_kint(&jw, "failure_streak", tc.failure_streak);
	jw_key(&jw, "model");
	jw_obj_open(&jw);
	knum(&jw, "alpha", trust_alpha(a.status));
	knum(&jw, "initial", TRUST_INITIAL);
	jw_kint(&jw, "promote_after", TRUST_PROMOTE_AFTER);
	jw_kint(&jw, "demote_after", TRUST_DEMOTE_AFTER);
	jw_kint(&jw, "window", TRUST_EXPLAIN_WINDOW);
	jw_obj_close(&jw);
	jw_key(&jw, "last_changes");
	jw_raw(&jw, "[");
	ch.jw = &jw;
	ch.n = 0;
	rc = st->ops->audit_list(st, &af, LAST_CHANGES, 0, change, &ch);
	jw_raw(&jw, "]");
	jw_obj_close(&jw);
	if (!rc && jw.rc)
		rc = jw.rc;
out:
	free(w);
	agent_release(&a);
	if (rc)
		return req_fail(r, rc, "explaining the trust score failed: %s", store_last_error());
	return req_ok_out(r, 200);
}
