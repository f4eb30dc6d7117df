/*
 * POST /v1/delegations/{id}/approve and /reject: a person's decision on a
 * delegation the policy stack sent to approval (docs/approvals.md). The
 * handler checks who may decide and loads what a dispatch needs; the
 * decision itself is one ledger op (store.h LEDGER_DECIDE), so two
 * approvers, two processes or the expiry sweeper can never both win.
 */
#include "approvals/api.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "auth/auth.h"
#include "core/err.h"
#include "core/json.h"
#include "core/rand.h"
#include "delegation/delegator.h"
#include "delegation/flow.h"
#include "serve/app.h"
#include "store/store.h"
#include "core/banned.h"

struct decision_in {
	const char *approver; /* NULL: none */
	const char *reason;   /* NULL: none */
};

/* The optional body: {"approver": "...", "reason": "..."}; an empty body
 * is no body. 0 or the 400 already answered. */
static int read_decision(struct req *r, json_t **body, struct decision_in *in)
{
	static const char *const fields[] = {"approver", "reason", NULL};
	struct jerr e = {{0}, {0}};
	int rc = 0;

	memset(in, 0, sizeof(*in));
	*body = NULL;
	if (r->body.len == 0)
		return 0;
	rc = req_json_body(r, body);
	if (rc)
		return rc;
	rc = json_only_keys(*body, "", fields, &e);
	if (!rc && json_get_string(*body, "", "approver", 0, 1, APPROVER_MAX, &in->approver,
				   &e) < 0)
		rc = E(VALIDATION);
	if (!rc && json_get_string(*body, "", "reason", 0, 1, DECISION_REASON_MAX, &in->reason,
				   &e) < 0)
		rc = E(VALIDATION);
	return rc ? req_fail_jerr(r, &e) : 0;
}

/* d as stored, if r's org may decide it now; 0 or the error answered. */
static int load_pending(struct req *r, struct delegation *d)
{
	struct store *st = r->app->store;
	const char *id = r->params[0];
	int rc;

	if (r->auth.key.kind != KEY_LIVE)
		return req_fail(r, E(FORBIDDEN),
				"test keys (nx_test_) cannot decide live delegations; use a live key");
	rc = rand_id_valid(id, "del_", DELEGATION_ID_BYTES)
		     ? st->ops->delegation_get(st, r->auth.org.org_id, id, d)
		     : E(NOT_FOUND);
	if (rc == E(NOT_FOUND))
		return req_fail(r, rc, "delegation %s not found", id);
	if (rc)
		return req_fail(r, rc, "reading the delegation failed: %s", store_last_error());
	if (strcmp(d->status, "pending_approval"))
		return req_fail_details(r, E(CONFLICT), json_pack("{ss}", "status", d->status),
					"delegation %s is %s, not awaiting a decision", id,
					d->status);
	if (d->expires_at && r->now >= d->expires_at)
		return req_fail_details(r, E(CONFLICT), json_pack("{sI}", "expires_at",
								  (json_int_t)d->expires_at),
					"the approval window of delegation %s has passed", id);
	return 0;
}

static void record_decision(struct req *r, struct delegation *d, const char *decided,
			    const struct decision_in *in)
{
	snprintf(d->decided, sizeof(d->decided), "%s", decided);
	snprintf(d->decided_by_key_id, sizeof(d->decided_by_key_id), "%s", r->auth.key.key_id);
	snprintf(d->decided_by_key_name, sizeof(d->decided_by_key_name), "%s",
		 r->auth.key.name);
	snprintf(d->approver, sizeof(d->approver), "%s", in->approver ? in->approver : "");
	d->decided_at = r->now;
}

/* The callee as it is now, for the dispatch; 0 or the error answered. */
static int load_callee(struct req *r, struct dlg *g, struct agent *callee)
{
	struct store *st = r->app->store;
	const char *what;
	int rc = st->ops->agent_get(st, g->d.rec.org_id, g->d.rec.callee_agent_id, callee);

	if (rc == E(NOT_FOUND))
		return req_fail(r, E(CONFLICT), "callee %s is no longer registered",
				g->d.rec.callee_agent_id);
	if (rc)
		return req_fail(r, rc, "reading the callee failed: %s", store_last_error());
	if (!strcmp(callee->status, "paused"))
		return req_fail(r, E(CONFLICT),
				"callee %s is paused; POST /v1/agents/%s/activate, then approve",
				callee->agent_id, callee->agent_id);
	rc = schemacache_get(&r->app->schemas, callee, &g->schemas);
	if (rc)
		return req_fail(r, rc, "the callee's schemas do not compile");
	if (dlg_set_callee(g, callee))
		return req_fail(r, E(INTERNAL), "out of memory");
	rc = dlg_arm(g, callee, &what);
	return rc ? req_fail(r, rc, "%s", what) : 0;
}

static int decide(struct req *r, int approve)
{
	struct decision_in in;
	struct agent callee;
	struct dlg *g = dlg_new(r->app);
	json_t *body = NULL;
	const char *what;
	int rc;

	memset(&callee, 0, sizeof(callee));
	if (!g)
		return req_fail(r, E(INTERNAL), "out of memory");
	rc = read_decision(r, &body, &in);
	if (!rc)
		rc = load_pending(r, &g->d);
	if (rc)
		goto out;
	record_decision(r, &g->d, approve ? "approved" : "rejected", &in);
	if (in.reason && !(g->d.decision_reason = strdup(in.reason))) {
		rc = req_fail(r, E(INTERNAL), "out of memory");
		goto out;
	}
	if (approve) {
		rc = load_callee(r, g, &callee);
		if (rc)
			goto out;
		g->d.dispatched_at = r->now;
		g->d.expires_at = r->now + (g->d.timeout_ms + 999) / 1000;
	} else {
		snprintf(g->d.error_code, sizeof(g->d.error_code), "APPROVAL_REJECTED");
		free(g->d.error_message);
		g->d.error_message = NULL;
		if (asprintf(&g->d.error_message, "rejected by %s%s%s",
			     in.approver ? in.approver : g->d.decided_by_key_name,
			     in.reason ? ": " : "", in.reason ? in.reason : "") < 0) {
			g->d.error_message = NULL;
			rc = req_fail(r, E(INTERNAL), "out of memory");
			goto out;
		}
		rc = dlg_arm(g, NULL, &what); /* the caller's secret, for the callback */
		if (rc) {
			rc = req_fail(r, rc, "%s", what);
			goto out;
		}
	}
	rc = req_suspend(r);
	g->r = r;
	dlg_decide(g); /* owns g now */
	g = NULL;
out:
	dlg_free(g);
	agent_release(&callee);
	json_decref(body);
	return rc;
}

int api_delegation_approve(struct req *r)
{
	return decide(r, 1);
}

int api_delegation_reject(struct req *r)
{
	return decide(r, 0);
}
