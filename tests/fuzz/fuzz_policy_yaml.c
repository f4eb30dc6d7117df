/*
 * Fuzz target: the policy YAML loader, and the stack built from what it
 * accepts. Bytes -> policy_parse. A refusal must come with a message that
 * starts with "line:col: " (or, for the size limit, 1:1) and no document.
 * An accepted document is parsed a second time and both copies go into a
 * stack (one disabled, to exercise ordering and the disabled path); every
 * rule's capability and a few others are decided with passing and failing
 * requests, and each decision must be self-consistent: a rule decision
 * names a rule whose capability is the request's or "*"; a block lists a
 * failed constraint or is not a rule decision; pending_approval only for a
 * hitl rule with nothing failed. abort() otherwise.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/jsonw.h"
#include "policy/stack.h"

static void check_decision(const struct policy_request *r, const struct policy_decision *d)
{
	char msg[512];
	struct buf b;
	struct jsonw jw;

	if (d->basis == POLICY_BASIS_RULE) {
		if (!d->rule || !d->policy_id)
			abort();
		if (strcmp(d->rule_capability, "*") && strcmp(d->rule_capability, r->capability))
			abort();
		if (d->verdict == POLICY_BLOCK && !d->failed)
			abort();
		if (d->verdict != POLICY_BLOCK && d->failed)
			abort();
		if (d->verdict == POLICY_PENDING_APPROVAL && !d->rule->hitl_required)
			abort();
		if (d->verdict == POLICY_ALLOW && d->rule->hitl_required)
			abort();
	} else if (d->verdict != POLICY_BLOCK || d->failed) {
		abort();
	}
	policy_decision_explain(d, msg, sizeof(msg));
	if (!msg[0])
		abort();
	buf_init(&b, 1 << 16);
	jw_init(&jw, &b);
	policy_decision_write(&jw, d);
	if (jw.rc)
		abort();
	buf_release(&b);
}

static void decide_all(const struct policy_stack *s, const struct policy_doc *doc)
{
	static const char *const extra[] = {"research", "email_send", "zz-unknown", "", "*"};
	static const char *const callers[] = {"sales-agent", NULL, "a0"};
	int64_t fails[] = {100, 90, 50, 99};
	size_t n = doc->n_rules < 64 ? doc->n_rules : 64;

	for (size_t i = 0; i < n + 5; i++) {
		const char *cap = i < n ? doc->rules[i].capability : extra[i - n];

		for (int v = 0; v < 3; v++) {
			struct policy_request r;
			struct policy_decision d;

			memset(&r, 0, sizeof(r));
			r.capability = cap;
			r.caller_agent_id = callers[v];
			r.callee_agent_id = v == 1 ? NULL : "callee";
			r.budget_cap_micros = v == 0 ? 0 : (int64_t)1 << (20 + v * 10);
			r.callee_trust_score = v == 0 ? 1.0 : v == 1 ? 0.5 : NAN;
			r.callee_circuit_open = v == 2;
			r.failure_times = fails;
			r.n_failure_times = 4;
			r.now = 100;
			if (policy_decide(s, &r, &d))
				abort();
			check_decision(&r, &d);
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct policy_doc *doc = NULL, *c1 = NULL, *c2 = NULL;
	struct policy_stack *s = NULL;
	struct policy_err err;
	struct policy_meta m1 = {"pol_fuzz", 1, 0, 1, 1, NULL}, m2 = {"pol_off", 2, -1, 0, 0, NULL};
	const struct policy_org *o;
	int rc;

	rc = policy_parse((const char *)data, size, &doc, &err);
	if (rc) {
		if (doc || (rc == E(VALIDATION) && (err.line < 1 || err.col < 1 || !err.message[0])))
			abort();
		return 0;
	}
	if (doc->n_rules > POLICY_MAX_RULES)
		abort();
	/* parsing is a pure function of the bytes: the copies must parse too */
	if (policy_parse((const char *)data, size, &c1, &err) ||
	    policy_parse((const char *)data, size, &c2, &err) || c1->n_rules != doc->n_rules)
		abort();
	if (policy_stack_new(&s)) {
		policy_doc_free(c1);
		policy_doc_free(c2);
		goto out;
	}
	policy_doc_meta(doc, NULL, NULL, &m1.priority, &m1.enabled);
	m1.enabled = 1;
	if (policy_stack_add(s, &m1, c1) || policy_stack_add(s, &m2, c2))
		abort(); /* valid meta: only memory could fail, and the docs are consumed */
	if (policy_stack_compile(s))
		goto out;
	if (policy_stack_enabled(s) != 1 || policy_stack_rules(s) != doc->n_rules)
		abort();
	o = policy_stack_org(s, NULL, NULL);
	if (!o != !doc->has_org)
		abort();
	decide_all(s, doc);
out:
	policy_stack_free(s);
	policy_doc_free(doc);
	return 0;
}
