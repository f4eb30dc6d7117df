/*
 * Replay: what a candidate policy would have changed. Each recorded
 * delegation is decided again, from its recorded inputs (caller, callee,
 * capability, cap, the callee's trust and circuit then, its time), by the
 * org's stack as it is now and by the same stack with the candidate added;
 * the two verdicts are compared. Comparing with the current stack, not
 * with the decision recorded then, isolates the candidate's own effect
 * from policy changes made since. Pure: no I/O.
 */
#ifndef NEXRA_POLICY_SIMULATE_H
#define NEXRA_POLICY_SIMULATE_H

#include <stddef.h>

#include "policy/stack.h"
#include "store/store.h"

#define POLICY_SIM_MAX_CHANGES 100 /* changes listed one by one; all are counted */

struct policy_sim_change {
	char delegation_id[ID_MAX];
	int64_t created_at;
	enum policy_verdict before, after;
};

struct policy_sim {
	size_t examined, changed;
	size_t transitions[3][3]; /* [before][after], by enum policy_verdict */
	size_t nchanges;
	struct policy_sim_change changes[POLICY_SIM_MAX_CHANGES];
};

/* Decide d with both stacks and account for it in sim. 0 or an error. */
int policy_simulate_one(const struct policy_stack *now, const struct policy_stack *with,
			const struct delegation_record *d, struct policy_sim *sim);

#endif
