/* Replay of recorded decisions against a candidate (policy/simulate). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "policy/simulate.h"
#include "test.h"

/* A compiled stack of the given (yaml, priority) policies; NULL on error. */
static struct policy_stack *stack_of(const char *const *yamls, const int *prio, int n)
{
	struct policy_stack *s = NULL;
	char ids[8][16];

	if (policy_stack_new(&s))
		return NULL;
	for (int i = 0; i < n; i++) {
		struct policy_doc *doc = NULL;
		struct policy_err err;
		struct policy_meta m = {.version = 1, .priority = prio[i], .enabled = 1,
					.created = i};

		snprintf(ids[i], sizeof(ids[i]), "pol_%d", i);
		m.policy_id = ids[i];
		if (policy_parse(yamls[i], strlen(yamls[i]), &doc, &err) ||
		    policy_stack_add(s, &m, doc)) {
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

static struct delegation_record rec(const char *id, const char *cap, int64_t cap_micros,
				    double trust, int circuit)
{
	struct delegation_record d;

	memset(&d, 0, sizeof(d));
	snprintf(d.delegation_id, sizeof(d.delegation_id), "%s", id);
	snprintf(d.caller_agent_id, sizeof(d.caller_agent_id), "sales");
	snprintf(d.capability, sizeof(d.capability), "%s", cap);
	d.budget_cap_micros = cap_micros;
	if (!isnan(trust)) {
		snprintf(d.callee_agent_id, sizeof(d.callee_agent_id), "callee");
		d.has_trust = 1;
		d.callee_trust = trust;
	}
	d.callee_circuit_open = circuit;
	d.created_at = 1000;
	return d;
}

TEST(policy_simulate_counts_transitions_from_recorded_inputs)
{
	const char *now_y[] = {"rules:\n  - capability: \"*\"\n"};
	const char *with_y[] = {"rules:\n  - capability: research\n    max_budget_usd: 0.5\n"
				"    min_trust_score: 0.8\n  - capability: mail\n"
				"    hitl_required: true\n",
				"rules:\n  - capability: \"*\"\n"};
	const int now_p[] = {10}, with_p[] = {1, 10};
	struct policy_stack *now = stack_of(now_y, now_p, 1);
	struct policy_stack *with = stack_of(with_y, with_p, 2);
	struct policy_sim sim;
	struct delegation_record d[] = {
		rec("d1", "research", 100000, 0.9, 0), /* allow -> allow */
		rec("d2", "research", 900000, 0.9, 0), /* allow -> block (budget) */
		rec("d3", "research", 100000, 0.5, 0), /* allow -> block (trust) */
		rec("d4", "mail", 1, NAN, 0),          /* allow -> pending */
		rec("d5", "other", 1, 0.9, 1),         /* circuit open: block -> block */
	};

	ASSERT(now && with);
	memset(&sim, 0, sizeof(sim));
	for (size_t i = 0; i < sizeof(d) / sizeof(d[0]); i++)
		ASSERT_EQ(policy_simulate_one(now, with, &d[i], &sim), 0);
	ASSERT_EQ(sim.examined, 5);
	ASSERT_EQ(sim.changed, 3);
	ASSERT_EQ(sim.transitions[POLICY_ALLOW][POLICY_BLOCK], 2);
	ASSERT_EQ(sim.transitions[POLICY_ALLOW][POLICY_PENDING_APPROVAL], 1);
	ASSERT_EQ(sim.transitions[POLICY_ALLOW][POLICY_ALLOW], 1);
	ASSERT_EQ(sim.transitions[POLICY_BLOCK][POLICY_BLOCK], 1);
	ASSERT_EQ(sim.nchanges, 3);
	ASSERT_STR_EQ(sim.changes[0].delegation_id, "d2");
	ASSERT_STR_EQ(sim.changes[2].delegation_id, "d4");
	policy_stack_free(now);
	policy_stack_free(with);
}
