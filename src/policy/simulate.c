/* Replaying recorded decisions against a candidate; see simulate.h. */
#include "policy/simulate.h"

#include <math.h>
#include <stdio.h>

#include "core/err.h"
#include "core/banned.h"

int policy_simulate_one(const struct policy_stack *now, const struct policy_stack *with,
			const struct delegation_record *d, struct policy_sim *sim)
{
	struct policy_request req = {
		.caller_agent_id = d->caller_agent_id,
		.callee_agent_id = d->callee_agent_id[0] ? d->callee_agent_id : NULL,
		.capability = d->capability,
		.budget_cap_micros = d->budget_cap_micros,
		.callee_trust_score = d->has_trust ? d->callee_trust : NAN,
		.callee_circuit_open = d->callee_circuit_open,
		.now = d->created_at,
	};
	struct policy_decision a, b;
	int rc = policy_decide(now, &req, &a);

	if (!rc)
		rc = policy_decide(with, &req, &b);
	if (rc)
		return rc;
	sim->examined++;
	sim->transitions[a.verdict][b.verdict]++;
	if (a.verdict == b.verdict)
		return 0;
	sim->changed++;
	if (sim->nchanges < POLICY_SIM_MAX_CHANGES) {
		struct policy_sim_change *c = &sim->changes[sim->nchanges++];

		snprintf(c->delegation_id, sizeof(c->delegation_id), "%s", d->delegation_id);
		c->created_at = d->created_at;
		c->before = a.verdict;
		c->after = b.verdict;
	}
	return 0;
}
