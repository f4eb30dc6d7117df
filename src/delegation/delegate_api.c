/*
 * POST /v1/delegate: everything up to the ledger (docs/delegations.md).
 *
 * In order: the caller (X-Agent-ID, required); the body; the callee (named,
 * or chosen by capability); task.input against the callee's input_schema;
 * the callee's price against the cap; the policy stack. Then, with a live
 * key, the delegation is handed to the ledger with its status (dispatched,
 * pending_approval or blocked) and the request parked until the ledger or
 * the callee has answered (flow.h). With a test key nothing is stored,
 * held, sent or billed: the answer is what would have happened up to the
 * webhook, with status "simulated" where a live key would have dispatched.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "core/err.h"
#include "core/json.h"
#include "core/jsonw.h"
#include "core/money.h"
#include "core/rand.h"
#include "core/timefmt.h"
#include "crypto/seal.h"
#include "delegation/api.h"
#include "delegation/delegator.h"
#include "delegation/flow.h"
#include "delegation/render.h"
#include "delegation/select.h"
#include "policy/stackcache.h"
#include "registry/agent.h"
#include "serve/app.h"
#include "core/banned.h"

#define CAP_MAX_MICROS (1000000LL * 1000000LL)
#define CONTEXT_SCOPE_MAX 256
#define TASK_TYPE_MAX 64
#define QUERY_MAX 1000

static const char *const fields[] = {"callee_agent_id", "capability", "query", "task",
				     "context_scope", "budget_cap_usd", "timeout_ms",
				     "callback_url", NULL};
static const char *const task_fields[] = {"type", "input", NULL};

/* What the body says, borrowed from it. */
struct ask {
	const char *callee_id, *capability, *query, *task_type, *callback_url;
	json_t *task, *input, *scope;
	int64_t cap, timeout_ms;
};

/* "del_" + 24 hex digits: the first 12 are the creation time in ms, the
 * rest random. Ids then sort by time, so the rows, the audit and billing
 * entries keyed by them are appended to their indexes, not scattered. */
static int delegation_new_id(char *out, int64_t now_ms)
{
	unsigned char b[DELEGATION_ID_BYTES];

	if (rand_bytes(b, sizeof(b)))
		return E(INTERNAL);
	for (int i = 0; i < 6; i++)
		b[i] = (unsigned char)((uint64_t)now_ms >> (8 * (5 - i)));
	memcpy(out, "del_", 4);
	hex_encode(b, sizeof(b), out + 4);
	return 0;
}

static int bad(struct req *r, const char *field, const char *msg)
{
	return req_fail_details(r, E(VALIDATION), json_pack("{ss}", "field", field), "%s", msg);
}

static int read_ask(struct req *r, json_t *body, struct ask *a)
{
	struct jerr e = {{0}, {0}};
	int rc;

	memset(a, 0, sizeof(*a));
	a->timeout_ms = DELEGATION_TIMEOUT_DEFAULT_MS;
	rc = json_only_keys(body, "", fields, &e);
	if (!rc && json_get_string(body, "", "callee_agent_id", 0, 1, AGENT_ID_MAX, &a->callee_id,
				   &e) < 0)
		rc = E(VALIDATION);
	if (!rc && json_get_string(body, "", "capability", 0, 1, POLICY_CAPABILITY_MAX,
				   &a->capability, &e) < 0)
		rc = E(VALIDATION);
	if (!rc && json_get_string(body, "", "query", 0, 0, QUERY_MAX, &a->query, &e) < 0)
		rc = E(VALIDATION);
	if (!rc)
		rc = json_get_object(body, "", "task", 1, &a->task, &e);
	if (!rc)
		rc = json_only_keys(a->task, "task", task_fields, &e);
	if (!rc && json_get_string(a->task, "task", "type", 0, 1, TASK_TYPE_MAX, &a->task_type,
				   &e) < 0)
		rc = E(VALIDATION);
	if (!rc && !(a->input = json_object_get(a->task, "input")))
		rc = jerr_set(&e, "task.input", "task.input: is required");
	if (!rc)
		rc = json_get_money(body, "", "budget_cap_usd", 1, CAP_MAX_MICROS, &a->cap, &e);
	if (!rc && json_get_int(body, "", "timeout_ms", 0, 1, DELEGATION_TIMEOUT_MAX_MS,
				&a->timeout_ms, &e) < 0)
		rc = E(VALIDATION);
	if (!rc) {
		json_t *cb = json_object_get(body, "callback_url");

		if (cb && !json_is_null(cb) &&
		    json_get_string(body, "", "callback_url", 1, 1, AGENT_URL_MAX,
				    &a->callback_url, &e) < 0)
			rc = E(VALIDATION);
	}
	if (!rc) {
		a->scope = json_object_get(body, "context_scope");
		if (a->scope && !json_is_array(a->scope))
			rc = jerr_set(&e, "context_scope", "context_scope: expected an array, got %s",
				      json_type_name(a->scope));
		else if (a->scope && json_array_size(a->scope) > CONTEXT_SCOPE_MAX)
			rc = jerr_set(&e, "context_scope", "context_scope: at most %d items",
				      CONTEXT_SCOPE_MAX);
	}
	if (rc)
		return req_fail_jerr(r, &e);
	if (!a->callee_id && !a->capability)
		return bad(r, "callee_agent_id", "callee_agent_id or capability is required");
	if (a->capability && !policy_capability_valid(a->capability, strlen(a->capability)))
		return bad(r, "capability", "capability: not a valid capability name");
	if (a->callback_url) {
		const char *why = NULL;

		if (agent_webhook_url_check(a->callback_url, r->app->cfg->dev, &why)) {
			char msg[300];

			snprintf(msg, sizeof(msg), "callback_url: %s", why);
			return bad(r, "callback_url", msg);
		}
	}
	return 0;
}

/* Idempotency-Key: 1..255 visible ASCII characters. */
static int read_idem(struct req *r, struct dlg *g)
{
	const char *k = req_header(r, "Idempotency-Key");
	size_t n;

	if (!k)
		return 0;
	n = strlen(k);
	for (size_t i = 0; i < n; i++)
		if (k[i] < 0x21 || k[i] > 0x7e)
			n = 0;
	if (!n || n > IDEM_KEY_MAX)
		return req_fail(r, E(VALIDATION),
				"Idempotency-Key must be 1 to %d visible ASCII characters",
				IDEM_KEY_MAX);
	memcpy(g->idem_key, k, n + 1);
	crypto_hash_sha256(g->idem_hash, (const unsigned char *)r->body.data, r->body.len);
	return 0;
}

static int not_found(struct req *r, const char *id)
{
	return req_fail(r, E(NOT_FOUND), "agent %s not found", id);
}

/* The callee: named, or the best of its capability. */
static int find_callee(struct req *r, const struct ask *a, const struct policy_stack *stack,
		       struct agent *callee)
{
	struct store *st = r->app->store;
	struct select_counts n;
	struct select_in in = {
		.org_id = r->auth.org.org_id,
		.caller_agent_id = r->agent_id,
		.capability = a->capability,
		.query = a->query,
		.budget_cap_micros = a->cap,
		.stack = stack,
		.now = r->now,
	};
	int rc;

	if (a->callee_id) {
		rc = agent_id_valid(a->callee_id)
			     ? st->ops->agent_get(st, r->auth.org.org_id, a->callee_id, callee)
			     : E(NOT_FOUND);
		if (rc == E(NOT_FOUND))
			return not_found(r, a->callee_id);
		if (rc)
			return req_fail(r, rc, "reading the callee failed: %s", store_last_error());
		if (a->capability && strcmp(a->capability, callee->capability_type))
			return bad(r, "capability",
				   "capability: the callee's capability_type differs; omit capability or match it");
		if (!strcmp(callee->status, "paused"))
			return req_fail(r, E(CONFLICT),
					"callee %s is paused; POST /v1/agents/%s/activate to resume it",
					callee->agent_id, callee->agent_id);
		return 0;
	}
	rc = delegate_select(st, &in, callee, &n);
	if (rc == E(NOT_FOUND))
		return req_fail_details(r, rc,
					json_pack("{ss si si si}", "capability", a->capability,
						  "considered", n.considered, "over_budget",
						  n.over_budget, "blocked_by_policy", n.blocked),
					"no agent of capability %s is available within the policy "
					"stack and budget_cap_usd", a->capability);
	if (rc)
		return req_fail(r, rc, "choosing a callee failed: %s", store_last_error());
	return 0;
}

/* task.input against the callee's input_schema: 400 naming the path.
 * g keeps the compiled schemas (the output one is used at settlement). */
static int check_input(struct req *r, struct dlg *g, const struct agent *callee,
		       const json_t *input)
{
	struct schema_errors *errs = NULL;
	json_t *list = NULL;
	char msg[SCHEMA_PATH_MAX + SCHEMA_MESSAGE_MAX + 64];
	int rc;

	rc = schemacache_get(&r->app->schemas, callee, &g->schemas);
	if (rc)
		return req_fail(r, rc, "the callee's schemas do not compile");
	rc = schema_validate(schemaref_input(g->schemas), input, NULL);
	if (rc != E(VALIDATION))
		return rc ? req_fail(r, rc, "validating task.input failed") : 0;
	errs = malloc(sizeof(*errs)); /* again, for every failure this time */
	if (!errs)
		return req_fail(r, E(INTERNAL), "out of memory");
	schema_validate(schemaref_input(g->schemas), input, errs);
	list = json_array();
	for (size_t i = 0; i < errs->count; i++)
		json_array_append_new(list, json_pack("{ss ss ss}", "path", errs->items[i].path,
						      "keyword", errs->items[i].keyword,
						      "message", errs->items[i].message));
	if (errs->count)
		schema_error_format(&errs->items[0], msg, sizeof(msg));
	else
		snprintf(msg, sizeof(msg), "invalid");
	rc = req_fail_details(r, E(VALIDATION),
			      json_pack("{ss ss so}", "field", "task.input", "path",
					errs->count ? errs->items[0].path : "", "errors", list),
			      "task.input does not match the callee's input_schema: %s", msg);
	free(errs);
	return rc;
}

static char *dump(const json_t *v, const char *dflt)
{
	return v ? json_dumps(v, JSON_DUMP_FLAGS | JSON_ENCODE_ANY) : strdup(dflt);
}

/* The decision into g->d: status, policy_result, policy_ref, error. */
static int decide(struct req *r, struct dlg *g, const struct policy_stack *stack,
		  const struct agent *callee)
{
	struct delegation *d = &g->d;
	struct policy_request pr = {
		.caller_agent_id = r->agent_id,
		.callee_agent_id = callee->agent_id,
		.capability = callee->capability_type,
		.budget_cap_micros = d->rec.budget_cap_micros,
		.callee_trust_score = callee->trust_score,
		.callee_circuit_open = 0,
		.now = r->now,
	};
	struct policy_decision pd;
	struct buf b;
	struct jsonw jw;
	char why[512], price[32], cap[32];
	size_t len;
	int rc = policy_decide(stack, &pr, &pd);

	if (rc)
		return req_fail(r, rc, "deciding failed");
	buf_init(&b, 64 * 1024);
	jw_init(&jw, &b);
	policy_decision_write(&jw, &pd);
	if (jw.rc) {
		buf_release(&b);
		return req_fail(r, jw.rc, "policy result too large");
	}
	d->policy_result = buf_detach(&b, &len);
	snprintf(d->rec.decision, sizeof(d->rec.decision), "%s", policy_verdict_name(pd.verdict));
	snprintf(d->rec.policy_id, sizeof(d->rec.policy_id), "%s",
		 pd.policy_id ? pd.policy_id : "");
	d->rec.policy_version = (int)pd.policy_version;
	snprintf(d->policy_ref, sizeof(d->policy_ref), "%s",
		 pd.policy_name ? pd.policy_name : "");
	if (pd.rule && (pd.rule->has & POLICY_RULE_CIRCUIT)) {
		g->cb_max_failures = pd.rule->cb_max_failures;
		g->cb_window_seconds = pd.rule->cb_window_seconds;
	}
	if (callee->per_call_micros > d->rec.budget_cap_micros) {
		money_format(callee->per_call_micros, price, sizeof(price));
		money_format(d->rec.budget_cap_micros, cap, sizeof(cap));
		snprintf(why, sizeof(why),
			 "callee %s costs %s USD per call, above budget_cap_usd %s",
			 callee->agent_id, price, cap);
		snprintf(d->status, sizeof(d->status), "blocked");
		snprintf(d->error_code, sizeof(d->error_code), "BUDGET_EXCEEDED");
	} else if (pd.verdict == POLICY_BLOCK) {
		policy_decision_explain(&pd, why, sizeof(why));
		snprintf(d->status, sizeof(d->status), "blocked");
		snprintf(d->error_code, sizeof(d->error_code), "POLICY_BLOCKED");
	} else {
		why[0] = '\0';
		snprintf(d->status, sizeof(d->status), "%s",
			 pd.verdict == POLICY_ALLOW ? "dispatched" : "pending_approval");
	}
	if (strcmp(d->status, "dispatched")) {
		/* not sent (yet): a pending approval's expires_at is its deadline */
		d->dispatched_at = 0;
		d->expires_at = !strcmp(d->status, "pending_approval") && pd.hitl_timeout_seconds
					? r->now + pd.hitl_timeout_seconds
					: 0;
	}
	if (why[0] && !(d->error_message = strdup(why)))
		return req_fail(r, E(INTERNAL), "out of memory");
	return 0;
}

/* Test keys: answer what would happen; store, hold and send nothing. */
static int simulate(struct req *r, struct dlg *g, const struct policy_stack *stack)
{
	struct store *st = r->app->store;
	const struct policy_org *org = policy_stack_org(stack, NULL, NULL);
	struct delegation *d = &g->d;
	int64_t spent = 0, held = 0;
	int rc;

	if (!strcmp(d->status, "dispatched") && org) {
		rc = st->ops->budget_get(st, d->rec.org_id, d->period, &spent, &held);
		if (rc)
			return req_fail(r, rc, "reading the budget failed: %s", store_last_error());
		if (spent + held + d->rec.budget_cap_micros > org->monthly_budget_micros) {
			snprintf(d->status, sizeof(d->status), "blocked");
			snprintf(d->error_code, sizeof(d->error_code), "BUDGET_EXCEEDED");
			d->error_message = strdup("the organization's monthly budget has not enough "
						  "left for budget_cap_usd");
		}
	}
	if (!strcmp(d->status, "dispatched"))
		snprintf(d->status, sizeof(d->status), "simulated");
	return delegation_answer(r, d);
}

/* Fill g from the request; 0 or the error already answered. */
static int prepare(struct req *r, struct dlg *g, const struct ask *a,
		   const struct policy_stack *stack, struct agent *callee)
{
	const struct policy_org *org = policy_stack_org(stack, NULL, NULL);
	struct delegation *d = &g->d;
	int rc;

	if (delegation_new_id(d->rec.delegation_id, time_now_ms()))
		return req_fail(r, E(INTERNAL), "no randomness");
	snprintf(d->rec.org_id, sizeof(d->rec.org_id), "%s", r->auth.org.org_id);
	snprintf(d->rec.caller_agent_id, sizeof(d->rec.caller_agent_id), "%s", r->agent_id);
	snprintf(d->rec.callee_agent_id, sizeof(d->rec.callee_agent_id), "%s", callee->agent_id);
	snprintf(d->rec.capability, sizeof(d->rec.capability), "%s", callee->capability_type);
	d->rec.budget_cap_micros = a->cap;
	d->rec.has_trust = 1;
	d->rec.callee_trust = callee->trust_score;
	d->rec.created_at = r->now;
	snprintf(d->key_id, sizeof(d->key_id), "%s", r->auth.key.key_id);
	snprintf(d->task_type, sizeof(d->task_type), "%s", a->task_type ? a->task_type : "");
	d->task_input = dump(a->input, "null");
	d->context_scope = dump(a->scope, "[]");
	d->callback_url = a->callback_url ? strdup(a->callback_url) : NULL;
	d->timeout_ms = a->timeout_ms;
	time_month(r->now, d->period);
	d->budget_limit_micros = org ? org->monthly_budget_micros : -1;
	d->dispatched_at = r->now;
	d->expires_at = r->now + (a->timeout_ms + 999) / 1000;
	if (!d->task_input || !d->context_scope || (a->callback_url && !d->callback_url))
		return req_fail(r, E(INTERNAL), "out of memory");
	rc = decide(r, g, stack, callee);
	if (rc)
		return rc;
	if (strcmp(d->status, "blocked"))
		d->hold_micros = a->cap;
	if (dlg_set_callee(g, callee))
		return req_fail(r, E(INTERNAL), "out of memory");
	return 0;
}

/* The secrets, needed only when a webhook will go out. */
static int arm(struct req *r, struct dlg *g, const struct agent *callee)
{
	const char *what;
	int rc = dlg_arm(g, callee, &what);

	return rc ? req_fail(r, rc, "%s", what) : 0;
}

int api_delegate(struct req *r)
{
	const struct policy_stack *stack = NULL;
	struct stackref *ref = NULL;
	struct agent callee;
	struct dlg *g = NULL;
	struct ask a;
	json_t *body = NULL;
	char msg[512];
	int rc;

	memset(&callee, 0, sizeof(callee));
	if (!r->agent_id)
		return req_fail_details(r, E(VALIDATION), json_pack("{ss}", "field", "X-Agent-ID"),
					"X-Agent-ID is required: the calling agent's id");
	rc = req_json_body(r, &body);
	if (rc)
		return rc;
	g = dlg_new(r->app);
	if (!g) {
		rc = req_fail(r, E(INTERNAL), "out of memory");
		goto out;
	}
	rc = read_ask(r, body, &a);
	if (!rc)
		rc = read_idem(r, g);
	if (rc)
		goto out;
	rc = stackcache_get(&r->app->stacks, r->app->store, r->auth.org.org_id, &stack, &ref, msg,
			    sizeof(msg));
	if (rc) {
		rc = req_fail(r, rc, "%s", msg);
		goto out;
	}
	rc = find_callee(r, &a, stack, &callee);
	if (!rc && a.task_type && strcmp(a.task_type, callee.capability_type))
		rc = bad(r, "task.type", "task.type: must be the callee's capability_type");
	if (!rc)
		rc = check_input(r, g, &callee, a.input);
	if (!rc)
		rc = prepare(r, g, &a, stack, &callee);
	if (rc)
		goto out;
	if (r->auth.key.kind != KEY_LIVE) {
		rc = simulate(r, g, stack);
		goto out;
	}
	if (!strcmp(g->d.status, "dispatched")) {
		rc = arm(r, g, &callee);
		if (rc)
			goto out;
	}
	rc = req_suspend(r);
	g->r = r;
	dlg_open(g); /* owns g now */
	g = NULL;
out:
	dlg_free(g);
	stackcache_put(&r->app->stacks, ref);
	agent_release(&callee);
	json_decref(body);
	return rc;
}
