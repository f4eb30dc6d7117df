/*
 * POST /v1/policies/evaluate: the decision the org's stack would make now,
 * with no side effect (docs/policies.md "Dry run"). The callee, when named,
 * gives the capability, its trust score and its circuit (a paused callee's
 * circuit is open); with only a capability there is no callee, and the
 * constraints that need one are reported as unchecked rather than failed.
 * Test keys may call it: it changes nothing.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "auth/auth.h"
#include "core/err.h"
#include "core/json.h"
#include "core/jsonw.h"
#include "policy/api.h"
#include "policy/stackcache.h"
#include "serve/app.h"
#include "core/banned.h"

#define EVAL_BUDGET_MAX_MICROS (1000000LL * 1000000LL)

static const char *const fields[] = {"caller_agent_id", "callee_agent_id", "capability",
				     "budget_cap_usd", NULL};

static int bad(struct req *r, const char *field, const char *fmt, const char *arg)
{
	return req_fail_details(r, E(VALIDATION), json_pack("{ss}", "field", field), fmt, arg);
}

int api_policy_evaluate(struct req *r)
{
	struct store *st = r->app->store;
	struct jerr e = {{0}, {0}};
	struct policy_request pr = {.callee_trust_score = NAN};
	struct policy_decision d;
	const struct policy_stack *stack = NULL;
	struct stackref *ref = NULL;
	struct agent callee;
	const char *caller = NULL, *callee_id = NULL, *cap = NULL;
	char msg[512];
	struct jsonw jw;
	json_t *body = NULL;
	int rc;

	memset(&callee, 0, sizeof(callee)); /* released at out: whether read or not */
	rc = req_json_body(r, &body);
	if (rc)
		return rc;
	rc = json_only_keys(body, "", fields, &e);
	if (!rc)
		rc = json_get_string(body, "", "caller_agent_id", 1, 1, AGENT_ID_MAX, &caller, &e);
	if (!rc && json_get_string(body, "", "callee_agent_id", 0, 1, AGENT_ID_MAX, &callee_id,
				   &e) < 0)
		rc = E(VALIDATION);
	if (!rc && json_get_string(body, "", "capability", 0, 1, POLICY_CAPABILITY_MAX, &cap,
				   &e) < 0)
		rc = E(VALIDATION);
	if (!rc)
		rc = json_get_money(body, "", "budget_cap_usd", 1, EVAL_BUDGET_MAX_MICROS,
				    &pr.budget_cap_micros, &e);
	if (rc) {
		rc = req_fail_jerr(r, &e);
		goto out;
	}
	if (!agent_id_valid(caller)) {
		rc = bad(r, "caller_agent_id", "caller_agent_id: '%s' is not a valid agent id",
			 caller);
		goto out;
	}
	if (!callee_id && !cap) {
		rc = bad(r, "callee_agent_id", "%s", "callee_agent_id or capability is required");
		goto out;
	}
	if (cap && !policy_capability_valid(cap, strlen(cap))) {
		rc = bad(r, "capability", "capability: '%s' is not a valid capability", cap);
		goto out;
	}
	if (callee_id) {
		rc = agent_id_valid(callee_id)
			     ? st->ops->agent_get(st, r->auth.org.org_id, callee_id, &callee)
			     : E(NOT_FOUND);
		if (rc == E(NOT_FOUND)) {
			rc = req_fail(r, rc, "agent not found");
			goto out;
		}
		if (rc) {
			rc = req_fail(r, rc, "reading the callee failed: %s", store_last_error());
			goto out;
		}
		if (cap && strcmp(cap, callee.capability_type)) {
			rc = bad(r, "capability",
				 "capability: the callee's capability is %s; omit capability or match it",
				 callee.capability_type);
			goto out;
		}
		cap = callee.capability_type;
		pr.callee_agent_id = callee.agent_id;
		pr.callee_trust_score = callee.trust_score;
		pr.callee_circuit_open = !strcmp(callee.status, "paused");
	}
	pr.caller_agent_id = caller;
	pr.capability = cap;
	pr.now = r->now;
	rc = stackcache_get(&r->app->stacks, st, r->auth.org.org_id, &stack, &ref, msg,
			    sizeof(msg));
	if (rc) {
		rc = req_fail(r, rc, "%s", msg);
		goto out;
	}
	rc = policy_decide(stack, &pr, &d);
	if (rc) {
		rc = req_fail(r, rc, "deciding failed");
		goto out;
	}
	jw_init(&jw, &r->out);
	policy_decision_write(&jw, &d);
	rc = jw.rc ? req_fail(r, jw.rc, "response too large") : req_ok_out(r, 200);
out:
	stackcache_put(&r->app->stacks, ref);
	agent_release(&callee);
	json_decref(body);
	return rc;
}
