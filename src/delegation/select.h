/*
 * Choosing a callee by capability (see select.c for the ranking). Reads
 * the registry through the store; decides with the org's compiled stack.
 */
#ifndef NEXRA_DELEGATION_SELECT_H
#define NEXRA_DELEGATION_SELECT_H

#include <stdint.h>

#include "policy/stack.h"
#include "store/store.h"

struct select_in {
	const char *org_id;
	const char *caller_agent_id;
	const char *capability;
	const char *query; /* NULL: none */
	int64_t budget_cap_micros;
	const struct policy_stack *stack;
	int64_t now;
};

struct select_counts {
	int considered;  /* active agents of the capability, caller excluded */
	int over_budget; /* per_call_usd above the cap */
	int blocked;     /* the stack would block them */
};

/* The best candidate into *out (agent_release it), or E(NOT_FOUND) when
 * none fits (counts say why), or a store error. */
int delegate_select(struct store *st, const struct select_in *in, struct agent *out,
		    struct select_counts *counts);

#endif
