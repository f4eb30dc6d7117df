/*
 * The org's policy stack as the engine needs it: every enabled policy's
 * current version, read through the store in stack order, parsed and
 * compiled. Shared by the dry-run endpoint and (later) the delegation path.
 */
#ifndef NEXRA_POLICY_ORGSTACK_H
#define NEXRA_POLICY_ORGSTACK_H

#include "policy/stack.h"
#include "store/store.h"

/* A compiled stack in *out (caller frees with policy_stack_free). A stored
 * policy that no longer parses is E(INTERNAL) with the reason in msg. */
int policy_orgstack_load(struct store *st, const char *org_id, struct policy_stack **out,
			 char *msg, size_t msgsz);

/* The same stack with one more policy in it (a candidate under test):
 * extra_doc is consumed whatever the outcome. */
int policy_orgstack_load_with(struct store *st, const char *org_id,
			      const struct policy_meta *extra_meta, struct policy_doc *extra_doc,
			      struct policy_stack **out, char *msg, size_t msgsz);

#endif
