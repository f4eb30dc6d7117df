/*
 * policy/stack: one test per sentence of docs/policies.md "Semantics"
 * (ordering, ties, wildcards, default-deny, disabled policies, every
 * constraint alone and all at once, pending approval, the organization
 * block), the circuit-breaker helper at its boundaries, and the compiled
 * index checked against a naive model (a plain walk of the sorted stack)
 * on random stacks, after SQLite's habit of testing a real structure
 * against an obviously correct one.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/jsonw.h"
#include "policy/stack.h"
#include "test.h"

struct pol {
	const char *yaml;
	const char *id;
	int64_t priority;
	int enabled;
	int64_t created;
};

/* A compiled stack of n policies (version 1 each, unless the id ends in
 * "@N"); NULL (and a message) when any fails. */
static struct policy_stack *mk(const struct pol *p, size_t n)
{
	struct policy_stack *s = NULL;

	if (policy_stack_new(&s))
		return NULL;
	for (size_t i = 0; i < n; i++) {
		struct policy_doc *d = NULL;
		struct policy_err err;
		struct policy_meta m = {p[i].id, 1, p[i].priority, p[i].enabled, p[i].created, NULL};
		const char *at = strchr(p[i].id, '@');
		char id[POLICY_ID_MAX];

		if (at) {
			snprintf(id, sizeof(id), "%.*s", (int)(at - p[i].id), p[i].id);
			m.policy_id = id;
			m.version = strtoll(at + 1, NULL, 10);
		}
		if (policy_parse(p[i].yaml, strlen(p[i].yaml), &d, &err)) {
			fprintf(stderr, "  policy %zu: %s\n", i, err.message);
			policy_stack_free(s);
			return NULL;
		}
		if (policy_stack_add(s, &m, d)) {
			policy_stack_free(s);
			return NULL;
		}
	}
	if (policy_stack_compile(s)) {
		policy_stack_free(s);
		return NULL;
	}
	return s;
}

/* A request that passes everything a rule can ask, for capability cap. */
static struct policy_request req_ok(const char *cap)
{
	struct policy_request r;

	memset(&r, 0, sizeof(r));
	r.caller_agent_id = "sales-agent";
	r.callee_agent_id = "research-agent-v2";
	r.capability = cap;
	r.budget_cap_micros = 250000;
	r.callee_trust_score = 0.95;
	r.now = 1742137358;
	return r;
}

static const char seed_yaml[] = "rules:\n"
				"  - capability: research\n"
				"    max_budget_usd: 0.50\n"
				"    min_trust_score: 0.85\n"
				"    hitl_required: false\n"
				"\n"
				"  - capability: email_send\n"
				"    max_budget_usd: 0.10\n"
				"    min_trust_score: 0.90\n"
				"    hitl_required: true\n";

TEST(policy_decide_seed_allow)
{
	struct pol p[] = {{seed_yaml, "pol_a@3", 10, 1, 1}};
	struct policy_stack *s = mk(p, 1);
	struct policy_request r = req_ok("research");
	struct policy_decision d;

	ASSERT(s);
	ASSERT_EQ(policy_decide(s, &r, &d), 0);
	ASSERT_EQ(d.verdict, POLICY_ALLOW);
	ASSERT_EQ(d.basis, POLICY_BASIS_RULE);
	ASSERT_STR_EQ(d.policy_id, "pol_a");
	ASSERT_EQ(d.policy_version, 3);
	ASSERT_EQ(d.rule_index, 0);
	ASSERT_STR_EQ(d.rule_capability, "research");
	ASSERT_EQ(d.failed, 0);
	policy_stack_free(s);
}

/* hitl_required and everything else passes: pending_approval, with the
 * rule's timeout. */
TEST(policy_decide_hitl_pending)
{
	struct pol p[] = {{"rules:\n  - capability: email_send\n    hitl_required: true\n"
			   "    hitl_timeout_seconds: 900\n",
			   "pol_h", 1, 1, 1}};
	struct policy_stack *s = mk(p, 1);
	struct policy_request r = req_ok("email_send");
	struct policy_decision d;

	ASSERT(s);
	ASSERT_EQ(policy_decide(s, &r, &d), 0);
	ASSERT_EQ(d.verdict, POLICY_PENDING_APPROVAL);
	ASSERT_EQ(d.hitl_timeout_seconds, 900);
	policy_stack_free(s);
}

/* hitl_required but a constraint fails: block, not pending. */
TEST(policy_decide_hitl_with_failure_blocks)
{
	struct pol p[] = {{seed_yaml, "pol_a", 1, 1, 1}};
	struct policy_stack *s = mk(p, 1);
	struct policy_request r = req_ok("email_send");
	struct policy_decision d;

	ASSERT(s);
	r.budget_cap_micros = 100000; /* = max: passes */
	ASSERT_EQ(policy_decide(s, &r, &d), 0);
	ASSERT_EQ(d.verdict, POLICY_PENDING_APPROVAL);
	ASSERT_EQ(d.hitl_timeout_seconds, 0);
	r.budget_cap_micros = 100001;
	ASSERT_EQ(policy_decide(s, &r, &d), 0);
	ASSERT_EQ(d.verdict, POLICY_BLOCK);
	ASSERT_EQ(d.failed, POLICY_CHECK_BUDGET);
	policy_stack_free(s);
}

TEST(policy_decide_budget)
{
	struct pol p[] = {{seed_yaml, "pol_a", 1, 1, 1}};
	struct policy_stack *s = mk(p, 1);
	struct policy_request r = req_ok("research");
	struct policy_decision d;
	char msg[256];

	ASSERT(s);
	r.budget_cap_micros = 500000; /* equal to max_budget_usd: allowed */
	ASSERT_EQ(policy_decide(s, &r, &d), 0);
	ASSERT_EQ(d.verdict, POLICY_ALLOW);
	r.budget_cap_micros = 750000;
	ASSERT_EQ(policy_decide(s, &r, &d), 0);
	ASSERT_EQ(d.verdict, POLICY_BLOCK);
	ASSERT_EQ(d.failed, POLICY_CHECK_BUDGET);
	ASSERT_EQ(d.budget_cap_micros, 750000);
	ASSERT_EQ(d.max_budget_micros, 500000);
	policy_decision_explain(&d, msg, sizeof(msg));
	ASSERT_STR_EQ(msg, "block by pol_a v1 rules[0] (research): budget_cap_usd 0.75 over "
			   "max_budget_usd 0.5");
	policy_stack_free(s);
}

TEST(policy_decide_trust)
{
	struct pol p[] = {{seed_yaml, "pol_a", 1, 1, 1}};
	struct policy_stack *s = mk(p, 1);
	struct policy_request r = req_ok("research");
	struct policy_decision d;

	ASSERT(s);
	r.callee_trust_score = 0.85; /* equal to min_trust_score: allowed */
	ASSERT_EQ(policy_decide(s, &r, &d), 0);
	ASSERT_EQ(d.verdict, POLICY_ALLOW);
	r.callee_trust_score = 0.84;
	ASSERT_EQ(policy_decide(s, &r, &d), 0);
	ASSERT_EQ(d.verdict, POLICY_BLOCK);
	ASSERT_EQ(d.failed, POLICY_CHECK_TRUST);
	ASSERT(d.trust_score == 0.84);
	ASSERT(d.min_trust_score == 0.85);
	r.callee_trust_score = NAN;
	ASSERT_EQ(policy_decide(s, &r, &d), 0);
	ASSERT_EQ(d.failed, POLICY_CHECK_TRUST);
	policy_stack_free(s);
}

TEST(policy_decide_caller_allowlist)
{
	struct pol p[] = {{"rules:\n  - capability: research\n"
			   "    caller_allowlist: [sales-agent, ops-agent]\n",
			   "pol_c", 1, 1, 1}};
	struct policy_stack *s = mk(p, 1);
	struct policy_request r = req_ok("research");
	struct policy_decision d;

	ASSERT(s);
	ASSERT_EQ(policy_decide(s, &r, &d), 0);
	ASSERT_EQ(d.verdict, POLICY_ALLOW);
	r.caller_agent_id = "ops-agent";
	ASSERT_EQ(policy_decide(s, &r, &d), 0);
	ASSERT_EQ(d.verdict, POLICY_ALLOW);
	r.caller_agent_id = "intruder";
	ASSERT_EQ(policy_decide(s, &r, &d), 0);
	ASSERT_EQ(d.verdict, POLICY_BLOCK);
	ASSERT_EQ(d.failed, POLICY_CHECK_CALLER);
	ASSERT_STR_EQ(d.caller_agent_id, "intruder");
	r.caller_agent_id = NULL; /* no caller: not in any list */
	ASSERT_EQ(policy_decide(s, &r, &d), 0);
	ASSERT_EQ(d.failed, POLICY_CHECK_CALLER);
	r.caller_agent_id = "Sales-Agent"; /* ids are case-sensitive */
	ASSERT_EQ(policy_decide(s, &r, &d), 0);
	ASSERT_EQ(d.failed, POLICY_CHECK_CALLER);
	policy_stack_free(s);
}

TEST(policy_decide_circuit)
{
	struct pol p[] = {{"rules:\n  - capability: research\n    circuit_breaker:\n"
			   "      max_failures: 3\n      window_seconds: 300\n"
			   "  - capability: plain\n",
			   "pol_cb", 1, 1, 1}};
	struct policy_stack *s = mk(p, 1);
	struct policy_request r = req_ok("research");
	struct policy_decision d;
	int64_t t[] = {r.now - 10, r.now - 20, r.now - 400};

	ASSERT(s);
	/* the caller's state: open blocks */
	r.callee_circuit_open = 1;
	ASSERT_EQ(policy_decide(s, &r, &d), 0);
	ASSERT_EQ(d.verdict, POLICY_BLOCK);
	ASSERT_EQ(d.failed, POLICY_CHECK_CIRCUIT);
	ASSERT_EQ(d.cb_max_failures, 3);
	ASSERT_EQ(d.cb_window_seconds, 300);
	/* ... under a rule without circuit_breaker too (the callee is paused) */
	r.capability = "plain";
	ASSERT_EQ(policy_decide(s, &r, &d), 0);
	ASSERT_EQ(d.failed, POLICY_CHECK_CIRCUIT);
	/* from failure times: 2 in the window, closed; 3, open */
	r.capability = "research";
	r.callee_circuit_open = 0;
	r.failure_times = t;
	r.n_failure_times = 3;
	ASSERT_EQ(policy_decide(s, &r, &d), 0);
	ASSERT_EQ(d.verdict, POLICY_ALLOW);
	t[2] = r.now - 299;
	ASSERT_EQ(policy_decide(s, &r, &d), 0);
	ASSERT_EQ(d.verdict, POLICY_BLOCK);
	ASSERT_EQ(d.failed, POLICY_CHECK_CIRCUIT);
	ASSERT_EQ(d.cb_failures_in_window, 3);
	/* failure times mean nothing under a rule without a breaker */
	r.capability = "plain";
	ASSERT_EQ(policy_decide(s, &r, &d), 0);
	ASSERT_EQ(d.verdict, POLICY_ALLOW);
	policy_stack_free(s);
}

TEST(policy_circuit_open_window_boundaries)
{
	int64_t now = 1000, n = -1;
	int64_t t[] = {700, 701, 999, 1000, 1001};

	/* (now - 300, now]: 700 out, 701..1000 in, 1001 (future) out */
	ASSERT_EQ(policy_circuit_open(3, 300, t, 5, now, &n), 1);
	ASSERT_EQ(n, 3);
	ASSERT_EQ(policy_circuit_open(4, 300, t, 5, now, &n), 0);
	ASSERT_EQ(policy_circuit_open(1, 1, t, 5, now, &n), 1);
	ASSERT_EQ(n, 1);
	ASSERT_EQ(policy_circuit_open(1, 300, NULL, 0, now, &n), 0);
	ASSERT_EQ(n, 0);
	ASSERT_EQ(policy_circuit_open(0, 300, t, 5, now, NULL), 0); /* invalid: never open */
	/* unsorted, extreme values: no overflow */
	{
		int64_t u[] = {INT64_MIN, 999, INT64_MAX, 998};

		ASSERT_EQ(policy_circuit_open(2, 300, u, 4, now, &n), 1);
		ASSERT_EQ(n, 2);
	}
}

/* Every failed constraint is listed, with its numbers. */
TEST(policy_decide_all_failures_at_once)
{
	struct pol p[] = {{"rules:\n  - capability: research\n    max_budget_usd: 0.50\n"
			   "    min_trust_score: 0.85\n    hitl_required: true\n"
			   "    caller_allowlist: [ops-agent]\n"
			   "    circuit_breaker: {max_failures: 3, window_seconds: 300}\n",
			   "pol_all", 1, 1, 1}};
	struct policy_stack *s = mk(p, 1);
	struct policy_request r = req_ok("research");
	struct policy_decision d;
	struct buf b;
	struct jsonw jw;
	char msg[512];

	ASSERT(s);
	r.budget_cap_micros = 750000;
	r.callee_trust_score = 0.8;
	r.callee_circuit_open = 1;
	ASSERT_EQ(policy_decide(s, &r, &d), 0);
	ASSERT_EQ(d.verdict, POLICY_BLOCK);
	ASSERT_EQ(d.failed, POLICY_CHECK_BUDGET | POLICY_CHECK_TRUST | POLICY_CHECK_CALLER |
				    POLICY_CHECK_CIRCUIT);
	policy_decision_explain(&d, msg, sizeof(msg));
	ASSERT_STR_EQ(msg, "block by pol_all v1 rules[0] (research): budget_cap_usd 0.75 over "
			   "max_budget_usd 0.5; callee trust 0.8 under min_trust_score 0.85; "
			   "caller sales-agent not in caller_allowlist; callee circuit open "
			   "(circuit_breaker 3 failures in 300 s)");
	buf_init(&b, 1 << 16);
	jw_init(&jw, &b);
	policy_decision_write(&jw, &d);
	ASSERT_EQ(jw.rc, 0);
	ASSERT_EQ(buf_add(&b, "", 1), 0);
	ASSERT_STR_EQ(b.data,
		      "{\"decision\":\"block\",\"reason\":\"rule\",\"policy_id\":\"pol_all\",\"policy_ref\":\"pol_all\","
		      "\"policy_version\":1,\"rule_index\":0,\"rule_capability\":\"research\","
		      "\"hitl_timeout_seconds\":null,\"failed_constraints\":["
		      "{\"constraint\":\"budget\",\"budget_cap_usd\":0.75,\"max_budget_usd\":0.5},"
		      "{\"constraint\":\"trust\",\"trust_score\":0.8,\"min_trust_score\":0.85},"
		      "{\"constraint\":\"caller_allowlist\",\"caller_agent_id\":\"sales-agent\"},"
		      "{\"constraint\":\"circuit\",\"max_failures\":3,\"window_seconds\":300,"
		      "\"failures_in_window\":0}],\"unchecked\":[],\"message\":\"block by pol_all "
		      "v1 rules[0] (research): budget_cap_usd 0.75 over max_budget_usd 0.5; callee "
		      "trust 0.8 under min_trust_score 0.85; caller sales-agent not in "
		      "caller_allowlist; callee circuit open (circuit_breaker 3 failures in 300 "
		      "s)\"}");
	buf_release(&b);
	policy_stack_free(s);
}

TEST(policy_decide_default_deny)
{
	struct pol p[] = {{seed_yaml, "pol_a", 1, 1, 1}};
	struct policy_stack *s = mk(p, 1);
	struct policy_request r = req_ok("translation");
	struct policy_decision d;
	char msg[128];

	ASSERT(s);
	ASSERT_EQ(policy_decide(s, &r, &d), 0);
	ASSERT_EQ(d.verdict, POLICY_BLOCK);
	ASSERT_EQ(d.basis, POLICY_BASIS_DEFAULT_DENY);
	ASSERT(d.policy_id == NULL);
	ASSERT_EQ(d.failed, 0);
	policy_decision_explain(&d, msg, sizeof(msg));
	ASSERT_STR_EQ(msg, "block: no rule matches this capability (default-deny)");
	/* matching is exact: no prefix, no case folding */
	r.capability = "researc";
	ASSERT_EQ(policy_decide(s, &r, &d), 0);
	ASSERT_EQ(d.basis, POLICY_BASIS_DEFAULT_DENY);
	r.capability = "Research";
	ASSERT_EQ(policy_decide(s, &r, &d), 0);
	ASSERT_EQ(d.basis, POLICY_BASIS_DEFAULT_DENY);
	policy_stack_free(s);
}

TEST(policy_decide_no_enabled_policy)
{
	struct pol p[] = {{"rules:\n  - capability: \"*\"\n", "pol_off", 1, 0, 1}};
	struct policy_stack *s = mk(p, 0), *s2;
	struct policy_request r = req_ok("research");
	struct policy_decision d;

	ASSERT(s);
	ASSERT_EQ(policy_decide(s, &r, &d), 0);
	ASSERT_EQ(d.verdict, POLICY_BLOCK);
	ASSERT_EQ(d.basis, POLICY_BASIS_NO_POLICY);
	policy_stack_free(s);
	s2 = mk(p, 1); /* one policy, disabled, that would allow everything */
	ASSERT(s2);
	ASSERT_EQ(policy_stack_enabled(s2), 0);
	ASSERT_EQ(policy_decide(s2, &r, &d), 0);
	ASSERT_EQ(d.verdict, POLICY_BLOCK);
	ASSERT_EQ(d.basis, POLICY_BASIS_NO_POLICY);
	policy_stack_free(s2);
}

/* An enabled policy with no rules: default-deny, not "no policy". */
TEST(policy_decide_empty_policy_default_deny)
{
	struct pol p[] = {{"rules: []\n", "pol_e", 1, 1, 1}};
	struct policy_stack *s = mk(p, 1);
	struct policy_request r = req_ok("research");
	struct policy_decision d;

	ASSERT(s);
	ASSERT_EQ(policy_decide(s, &r, &d), 0);
	ASSERT_EQ(d.basis, POLICY_BASIS_DEFAULT_DENY);
	policy_stack_free(s);
}

TEST(policy_decide_disabled_policy_ignored)
{
	struct pol p[] = {
	    {"rules:\n  - capability: research\n", "pol_open", 1, 0, 1},
	    {"rules:\n  - capability: research\n    max_budget_usd: 0.1\n", "pol_strict", 50, 1,
	     2},
	};
	struct policy_stack *s = mk(p, 2);
	struct policy_request r = req_ok("research");
	struct policy_decision d;

	ASSERT(s);
	ASSERT_EQ(policy_decide(s, &r, &d), 0);
	ASSERT_STR_EQ(d.policy_id, "pol_strict");
	ASSERT_EQ(d.verdict, POLICY_BLOCK);
	ASSERT_EQ(policy_stack_rules(s), 1);
	policy_stack_free(s);
}

/* Lower priority first, whatever the order of adding. */
TEST(policy_decide_priority_order)
{
	struct pol p[] = {
	    {"rules:\n  - capability: research\n    max_budget_usd: 0.1\n", "pol_late", 20, 1, 1},
	    {"rules:\n  - capability: research\n", "pol_early", 10, 1, 2},
	    {"rules:\n  - capability: research\n    hitl_required: true\n", "pol_neg", -5, 0, 3},
	};
	struct policy_stack *s = mk(p, 3);
	struct policy_request r = req_ok("research");
	struct policy_decision d;

	ASSERT(s);
	ASSERT_EQ(policy_decide(s, &r, &d), 0);
	ASSERT_STR_EQ(d.policy_id, "pol_early");
	ASSERT_EQ(d.verdict, POLICY_ALLOW);
	policy_stack_free(s);
	p[2].enabled = 1; /* priority -5 comes before 10 */
	s = mk(p, 3);
	ASSERT(s);
	ASSERT_EQ(policy_decide(s, &r, &d), 0);
	ASSERT_STR_EQ(d.policy_id, "pol_neg");
	ASSERT_EQ(d.verdict, POLICY_PENDING_APPROVAL);
	policy_stack_free(s);
}

/* Equal priorities: earlier created first; equal created: order added. */
TEST(policy_decide_priority_ties)
{
	struct pol p[] = {
	    {"rules:\n  - capability: research\n    max_budget_usd: 0.1\n", "pol_newer", 10, 1, 200},
	    {"rules:\n  - capability: research\n", "pol_older", 10, 1, 100},
	};
	struct policy_stack *s = mk(p, 2);
	struct policy_request r = req_ok("research");
	struct policy_decision d;

	ASSERT(s);
	ASSERT_EQ(policy_decide(s, &r, &d), 0);
	ASSERT_STR_EQ(d.policy_id, "pol_older");
	policy_stack_free(s);
	p[0].created = p[1].created = 100;
	s = mk(p, 2);
	ASSERT(s);
	ASSERT_EQ(policy_decide(s, &r, &d), 0);
	ASSERT_STR_EQ(d.policy_id, "pol_newer"); /* added first */
	policy_stack_free(s);
}

/* Within a policy, top to bottom: the first rule that matches decides. */
TEST(policy_decide_rules_top_to_bottom)
{
	struct pol p[] = {{"rules:\n  - capability: research\n    max_budget_usd: 1\n"
			   "  - capability: analysis\n    hitl_required: true\n"
			   "  - capability: \"*\"\n    max_budget_usd: 0.01\n",
			   "pol_t", 1, 1, 1}};
	struct policy_stack *s = mk(p, 1);
	struct policy_request r = req_ok("research");
	struct policy_decision d;

	ASSERT(s);
	ASSERT_EQ(policy_decide(s, &r, &d), 0);
	ASSERT_EQ(d.rule_index, 0);
	ASSERT_EQ(d.verdict, POLICY_ALLOW);
	r.capability = "analysis";
	ASSERT_EQ(policy_decide(s, &r, &d), 0);
	ASSERT_EQ(d.rule_index, 1);
	ASSERT_EQ(d.verdict, POLICY_PENDING_APPROVAL);
	r.capability = "anything_else";
	ASSERT_EQ(policy_decide(s, &r, &d), 0);
	ASSERT_EQ(d.rule_index, 2);
	ASSERT_STR_EQ(d.rule_capability, "*");
	ASSERT_EQ(d.verdict, POLICY_BLOCK);
	ASSERT_EQ(d.failed, POLICY_CHECK_BUDGET);
	policy_stack_free(s);
}

/* "*" earlier in the stack wins over a specific rule later; a specific
 * rule earlier wins over "*" later. */
TEST(policy_decide_wildcard_order)
{
	struct pol p[] = {
	    {"rules:\n  - capability: \"*\"\n    hitl_required: true\n", "pol_star", 1, 1, 1},
	    {"rules:\n  - capability: research\n", "pol_research", 2, 1, 2},
	};
	struct policy_stack *s = mk(p, 2);
	struct policy_request r = req_ok("research");
	struct policy_decision d;

	ASSERT(s);
	ASSERT_EQ(policy_decide(s, &r, &d), 0);
	ASSERT_STR_EQ(d.policy_id, "pol_star");
	ASSERT_EQ(d.verdict, POLICY_PENDING_APPROVAL);
	policy_stack_free(s);
	p[0].priority = 3;
	s = mk(p, 2);
	ASSERT(s);
	ASSERT_EQ(policy_decide(s, &r, &d), 0);
	ASSERT_STR_EQ(d.policy_id, "pol_research");
	ASSERT_EQ(d.verdict, POLICY_ALLOW);
	r.capability = "email_send"; /* only the star matches */
	ASSERT_EQ(policy_decide(s, &r, &d), 0);
	ASSERT_STR_EQ(d.policy_id, "pol_star");
	policy_stack_free(s);
}

/* Later policies' rules apply to capabilities earlier ones do not name. */
TEST(policy_decide_falls_through_policies)
{
	struct pol p[] = {
	    {seed_yaml, "pol_a", 1, 1, 1},
	    {"rules:\n  - capability: analysis\n  - capability: research\n", "pol_b", 2, 1, 2},
	};
	struct policy_stack *s = mk(p, 2);
	struct policy_request r = req_ok("analysis");
	struct policy_decision d;

	ASSERT(s);
	ASSERT_EQ(policy_decide(s, &r, &d), 0);
	ASSERT_STR_EQ(d.policy_id, "pol_b");
	ASSERT_EQ(d.rule_index, 0);
	r.capability = "research";
	ASSERT_EQ(policy_decide(s, &r, &d), 0);
	ASSERT_STR_EQ(d.policy_id, "pol_a");
	policy_stack_free(s);
}

TEST(policy_stack_org_first_in_order)
{
	struct pol p[] = {
	    {"organization: {monthly_budget_usd: 300}\nrules: []\n", "pol_off", 0, 0, 1},
	    {"organization: {monthly_budget_usd: 200}\nrules: []\n", "pol_second@4", 20, 1, 2},
	    {"organization: {monthly_budget_usd: 100.00, alert_threshold: 0.80}\nrules: []\n",
	     "pol_first@2", 10, 1, 3},
	    {"rules: []\n", "pol_none", 5, 1, 4},
	};
	struct policy_stack *s = mk(p, 4);
	const struct policy_org *o;
	const char *id = NULL;
	int64_t v = 0;

	ASSERT(s);
	o = policy_stack_org(s, &id, &v);
	ASSERT(o);
	ASSERT_EQ(o->monthly_budget_micros, 100000000);
	ASSERT(o->alert_threshold == 0.80);
	ASSERT_STR_EQ(id, "pol_first");
	ASSERT_EQ(v, 2);
	policy_stack_free(s);
	s = mk(p + 3, 1);
	ASSERT(s);
	ASSERT(policy_stack_org(s, NULL, NULL) == NULL);
	policy_stack_free(s);
}

/* A dry run by capability (no callee): trust and circuit cannot be
 * checked; they are reported as unchecked, and do not block. */
TEST(policy_decide_without_callee)
{
	struct pol p[] = {{seed_yaml, "pol_a", 1, 1, 1}};
	struct policy_stack *s = mk(p, 1);
	struct policy_request r = req_ok("research");
	struct policy_decision d;

	ASSERT(s);
	r.callee_agent_id = NULL;
	r.callee_trust_score = 0;
	r.callee_circuit_open = 1;
	ASSERT_EQ(policy_decide(s, &r, &d), 0);
	ASSERT_EQ(d.verdict, POLICY_ALLOW);
	ASSERT_EQ(d.unchecked, POLICY_CHECK_TRUST | POLICY_CHECK_CIRCUIT);
	r.budget_cap_micros = 600000;
	ASSERT_EQ(policy_decide(s, &r, &d), 0);
	ASSERT_EQ(d.failed, POLICY_CHECK_BUDGET);
	policy_stack_free(s);
}

TEST(policy_stack_misuse)
{
	struct policy_stack *s = NULL;
	struct policy_request r = req_ok("research");
	struct policy_decision d;
	struct policy_doc *doc = NULL;
	struct policy_err err;
	struct policy_meta m = {"", 1, 1, 1, 1, NULL};

	ASSERT_EQ(policy_stack_new(&s), 0);
	ASSERT_EQ(policy_decide(s, &r, &d), E(INTERNAL)); /* not compiled */
	ASSERT_EQ(policy_parse("rules: []", 9, &doc, &err), 0);
	ASSERT_EQ(policy_stack_add(s, &m, doc), E(VALIDATION)); /* no id; doc consumed */
	ASSERT_EQ(policy_stack_compile(s), 0);
	r.capability = NULL;
	ASSERT_EQ(policy_decide(s, &r, &d), E(VALIDATION));
	ASSERT_EQ(d.verdict, POLICY_BLOCK);
	policy_stack_free(s);
	policy_stack_free(NULL);
	policy_doc_free(NULL);
}

TEST(policy_names)
{
	ASSERT_STR_EQ(policy_verdict_name(POLICY_ALLOW), "allow");
	ASSERT_STR_EQ(policy_verdict_name(POLICY_BLOCK), "block");
	ASSERT_STR_EQ(policy_verdict_name(POLICY_PENDING_APPROVAL), "pending_approval");
	ASSERT_STR_EQ(policy_basis_name(POLICY_BASIS_DEFAULT_DENY), "default_deny");
	ASSERT_STR_EQ(policy_basis_name(POLICY_BASIS_NO_POLICY), "no_enabled_policy");
	ASSERT_STR_EQ(policy_check_name(POLICY_CHECK_CALLER), "caller_allowlist");
}

/* ------------------------------------------------- against a model -- */

static uint64_t rng = 88172645463325252ULL;

static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/*
 * Random stacks of up to 12 policies over capabilities c0..c7 and "*",
 * random priorities (few, so ties happen), created and enabled; each rule
 * has a max_budget_usd equal to a unique tag so the model and the stack
 * can be compared by the rule they pick.
 */
TEST(policy_decide_matches_naive_model)
{
	for (int round = 0; round < 300; round++) {
		struct pol p[12];
		char texts[12][512];
		int64_t tags[12][8];
		char caps[12][8][16];
		int nr[12];
		size_t np = 1 + next_rand() % 12;
		struct policy_stack *s;

		for (size_t i = 0; i < np; i++) {
			size_t len = (size_t)snprintf(texts[i], sizeof(texts[i]), "rules:\n");
			int used = 0, star = 0;

			nr[i] = (int)(next_rand() % 6);
			for (int j = 0; j < nr[i]; j++) {
				int c;

				do
					c = (int)(next_rand() % 9);
				while (c < 8 && (used & (1 << c)));
				if (c == 8 && j != nr[i] - 1)
					c = (int)(next_rand() % 8);
				if (c < 8 && (used & (1 << c))) { /* give up: end the list here */
					nr[i] = j;
					break;
				}
				if (c == 8)
					star = 1;
				else
					used |= 1 << c;
				snprintf(caps[i][j], sizeof(caps[i][j]), c == 8 ? "*" : "c%d", c);
				tags[i][j] = (int64_t)(i * 8 + (size_t)j + 1);
				len += (size_t)snprintf(texts[i] + len, sizeof(texts[i]) - len,
							"- capability: \"%s\"\n  max_budget_usd: "
							"0.%06lld\n",
							caps[i][j], (long long)tags[i][j]);
			}
			(void)star;
			if (!nr[i])
				snprintf(texts[i], sizeof(texts[i]), "rules: []\n");
			p[i].yaml = texts[i];
			p[i].id = NULL;
			p[i].priority = (int64_t)(next_rand() % 4);
			p[i].enabled = next_rand() % 5 != 0;
			p[i].created = (int64_t)(next_rand() % 3);
		}
		{
			static char ids[12][8];

			for (size_t i = 0; i < np; i++) {
				snprintf(ids[i], sizeof(ids[i]), "p%zu", i);
				p[i].id = ids[i];
			}
		}
		s = mk(p, np);
		ASSERT(s);
		for (int c = 0; c <= 9; c++) {
			char cap[16];
			struct policy_request r = req_ok(cap);
			struct policy_decision d;
			size_t order[12], no = 0;
			int64_t want = 0;

			snprintf(cap, sizeof(cap), "c%d", c); /* c8, c9 named by no rule */
			/* the model: stable sort of enabled policies, then a walk */
			for (size_t i = 0; i < np; i++)
				if (p[i].enabled)
					order[no++] = i;
			for (size_t a = 1; a < no; a++)
				for (size_t b = a; b > 0; b--) {
					const struct pol *x = &p[order[b - 1]], *y = &p[order[b]];

					if (x->priority > y->priority ||
					    (x->priority == y->priority && x->created > y->created)) {
						size_t t = order[b];

						order[b] = order[b - 1];
						order[b - 1] = t;
					}
				}
			for (size_t k = 0; k < no && !want; k++)
				for (int j = 0; j < nr[order[k]] && !want; j++)
					if (!strcmp(caps[order[k]][j], "*") ||
					    !strcmp(caps[order[k]][j], cap))
						want = tags[order[k]][j];
			r.budget_cap_micros = 0;
			ASSERT_EQ(policy_decide(s, &r, &d), 0);
			if (!want) {
				ASSERT(d.basis != POLICY_BASIS_RULE);
			} else {
				ASSERT_EQ(d.basis, POLICY_BASIS_RULE);
				ASSERT_EQ(d.max_budget_micros, want);
			}
		}
		policy_stack_free(s);
	}
}
