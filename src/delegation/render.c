/* The delegation object and its HTTP answer; see render.h. */
#include "delegation/render.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/json.h"
#include "core/timefmt.h"
#include "core/banned.h"

static void time_or_null(struct jsonw *jw, const char *key, int64_t t)
{
	if (t)
		jw_ktime(jw, key, t);
	else
		jw_kraw(jw, key, "null");
}

static void money_or_null(struct jsonw *jw, const char *key, int64_t micros)
{
	jw_key(jw, key);
	if (micros >= 0)
		jw_money(jw, micros);
	else
		jw_raw(jw, "null");
}

static void int_or_null(struct jsonw *jw, const char *key, int64_t v)
{
	if (v >= 0)
		jw_kint(jw, key, v);
	else
		jw_kraw(jw, key, "null");
}

static int is_final(const char *status)
{
	return strcmp(status, "dispatched") && strcmp(status, "pending_approval");
}

/* The error's message; a budget refusal decided inside the ledger
 * transaction is stored with its code only. */
static const char *error_text(const struct delegation *d)
{
	if (d->error_message && d->error_message[0])
		return d->error_message;
	if (!strcmp(d->error_code, "BUDGET_EXCEEDED"))
		return "the organization's monthly budget has not enough left for budget_cap_usd "
		       "(spent plus held plus this cap would pass monthly_budget_usd)";
	return err_message(E(INTERNAL));
}

/* What a person needs to decide, and what they decided: null unless the
 * policy sent the delegation to approval (docs/approvals.md). The rule is
 * in policy_result. */
static void approval(struct jsonw *jw, const struct delegation *d)
{
	int pending = !strcmp(d->status, "pending_approval");
	int64_t now = time_now_unix();

	jw_key(jw, "approval");
	/* (a pending approval refused by the budget at once was never asked) */
	if (strcmp(d->rec.decision, "pending_approval") ||
	    (!pending && !d->decided[0] && strcmp(d->status, "expired"))) {
		jw_raw(jw, "null");
		return;
	}
	jw_obj_open(jw);
	jw_kstr(jw, "state", pending ? "pending" : d->decided[0] ? d->decided : "expired");
	if (pending && d->expires_at) {
		jw_kint(jw, "expires_at", d->expires_at);
		jw_kint(jw, "expires_in_seconds", d->expires_at > now ? d->expires_at - now : 0);
	} else {
		jw_kraw(jw, "expires_at", "null");
		jw_kraw(jw, "expires_in_seconds", "null");
	}
	jw_key(jw, "decided_by");
	if (d->decided[0]) {
		jw_obj_open(jw);
		jw_kstr(jw, "key_id", d->decided_by_key_id);
		jw_kstr(jw, "key_name", d->decided_by_key_name);
		jw_obj_close(jw);
	} else {
		jw_raw(jw, "null");
	}
	jw_kstr(jw, "approver", d->approver[0] ? d->approver : NULL);
	time_or_null(jw, "decided_at", d->decided_at);
	jw_kstr(jw, "reason", d->decision_reason);
	jw_obj_close(jw);
}

/* The members, without the braces (the error details add to them). */
static void members(struct jsonw *jw, const struct delegation *d)
{
	const struct delegation_record *c = &d->rec;

	jw_kstr(jw, "delegation_id", c->delegation_id);
	jw_kstr(jw, "status", d->status);
	jw_kstr(jw, "caller_agent_id", c->caller_agent_id);
	jw_kstr(jw, "callee_agent_id", c->callee_agent_id[0] ? c->callee_agent_id : NULL);
	jw_kstr(jw, "capability", c->capability);
	jw_key(jw, "task");
	jw_obj_open(jw);
	jw_kstr(jw, "type", d->task_type[0] ? d->task_type : c->capability);
	jw_kraw(jw, "input", d->task_input ? d->task_input : "null");
	jw_obj_close(jw);
	jw_kraw(jw, "context_scope", d->context_scope ? d->context_scope : "[]");
	jw_key(jw, "budget_cap_usd");
	jw_money(jw, c->budget_cap_micros);
	jw_kint(jw, "timeout_ms", d->timeout_ms);
	jw_kstr(jw, "callback_url", d->callback_url);
	jw_kraw(jw, "policy_result", d->policy_result ? d->policy_result : "{}");
	jw_kraw(jw, "result", d->result ? d->result : "null");
	jw_key(jw, "usage");
	jw_obj_open(jw);
	jw_key(jw, "cost_usd");
	jw_money(jw, d->cost_micros);
	int_or_null(jw, "latency_ms", d->latency_ms);
	int_or_null(jw, "llm_tokens", d->llm_tokens);
	money_or_null(jw, "reported_cost_usd", d->reported_cost_micros);
	jw_kbool(jw, "overrun", d->overrun);
	jw_obj_close(jw);
	jw_key(jw, "hold_usd");
	jw_money(jw, d->hold_micros);
	if (d->audit_event > 0)
		jw_kint(jw, "audit_event", d->audit_event);
	else
		jw_kraw(jw, "audit_event", "null");
	jw_key(jw, "trust_delta");
	if (is_final(d->status) && !isnan(d->trust_before) && !isnan(d->trust_after)) {
		jw_obj_open(jw);
		jw_key(jw, "before");
		jw_num(jw, d->trust_before);
		jw_key(jw, "after");
		jw_num(jw, d->trust_after);
		jw_obj_close(jw);
	} else {
		jw_raw(jw, "null");
	}
	money_or_null(jw, "budget_remaining_usd",
		      is_final(d->status) ? d->budget_remaining_micros : -1);
	jw_key(jw, "error");
	if (d->error_code[0]) {
		jw_obj_open(jw);
		jw_kstr(jw, "code", d->error_code);
		jw_kstr(jw, "message", error_text(d));
		jw_obj_close(jw);
	} else {
		jw_raw(jw, "null");
	}
	jw_ktime(jw, "created_at", c->created_at);
	time_or_null(jw, "dispatched_at", d->dispatched_at);
	time_or_null(jw, "settled_at", d->settled_at);
	int_or_null(jw, "expires_at", d->expires_at ? d->expires_at : -1);
	approval(jw, d);
}

void delegation_write(struct jsonw *jw, const struct delegation *d)
{
	jw_obj_open(jw);
	members(jw, d);
	jw_obj_close(jw);
}

/* details: policy_ref and failed_constraints first, then the object. */
static char *details(const struct delegation *d)
{
	json_t *pr = d->policy_result ? json_loads(d->policy_result, 0, NULL) : NULL;
	json_t *fc = pr ? json_object_get(pr, "failed_constraints") : NULL;
	json_t *ref = pr ? json_object_get(pr, "policy_ref") : NULL;
	char *fcs = fc ? json_dumps(fc, JSON_DUMP_FLAGS) : NULL;
	struct buf b;
	struct jsonw jw;
	size_t len;

	buf_init(&b, 8 * 1024 * 1024);
	jw_init(&jw, &b);
	jw_obj_open(&jw);
	jw_kstr(&jw, "policy_ref", json_is_string(ref) ? json_string_value(ref) : NULL);
	jw_kraw(&jw, "failed_constraints", fcs ? fcs : "[]");
	members(&jw, d);
	jw_obj_close(&jw);
	free(fcs);
	json_decref(pr);
	if (jw.rc) {
		buf_release(&b);
		return NULL;
	}
	return buf_detach(&b, &len);
}

int delegation_ok(struct req *r, const struct delegation *d)
{
	struct jsonw jw;

	buf_reset(&r->out);
	jw_init(&jw, &r->out);
	delegation_write(&jw, d);
	if (jw.rc)
		return req_fail(r, jw.rc, "response too large");
	return req_ok_out(r, is_final(d->status) ? 200 : 202);
}

int delegation_answer(struct req *r, const struct delegation *d)
{
	const char *s = d->status;
	int rc;

	if (!strcmp(s, "completed") || !strcmp(s, "simulated") || !strcmp(s, "dispatched") ||
	    !strcmp(s, "pending_approval"))
		return delegation_ok(r, d);
	if (!strcmp(s, "blocked"))
		rc = !strcmp(d->error_code, "BUDGET_EXCEEDED") ? E(BUDGET_EXCEEDED)
							       : E(POLICY_BLOCKED);
	else if (!strcmp(s, "failed"))
		rc = E(CALLEE_FAILED);
	else if (!strcmp(s, "timed_out"))
		rc = E(CALLEE_TIMEOUT);
	else
		rc = E(CONFLICT);
	return req_fail_raw(r, rc, details(d), "%s",
			    d->error_code[0] ? error_text(d) : err_message(rc));
}
