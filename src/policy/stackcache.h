/*
 * Compiled policy stacks cached per org. Compiling means parsing every
 * enabled policy's YAML: far more work than a decision, so each server
 * process keeps the last compiled stack of each org and reuses it while the
 * org's policy stamp (store.h policy_stamp, moved by the database in the
 * same transaction as any policy change) is unchanged. The stamp is read
 * on every use, so a change made by any process is seen by the next
 * request anywhere.
 *
 * Stacks are handed out with a reference: a request keeps using the stack
 * it got even if another request replaces the cached one meanwhile.
 */
#ifndef NEXRA_POLICY_STACKCACHE_H
#define NEXRA_POLICY_STACKCACHE_H

#include <pthread.h>
#include <stdint.h>

#include "policy/stack.h"
#include "store/store.h"

#define STACKCACHE_SLOTS 1024 /* direct-mapped by org id; a collision evicts */

struct stackref; /* a compiled stack and its reference count */

struct stackcache {
	pthread_mutex_t mu;
	struct stackcache_slot {
		char org_id[ID_MAX];
		int64_t stamp;
		struct stackref *ref;
	} *slots; /* owned */
};

int stackcache_init(struct stackcache *c);
void stackcache_release(struct stackcache *c);

/* The org's compiled stack, from the cache or freshly loaded. On success
 * *stack is usable until stackcache_put(*ref). On failure msg says why. */
int stackcache_get(struct stackcache *c, struct store *st, const char *org_id,
		   const struct policy_stack **stack, struct stackref **ref, char *msg,
		   size_t msgsz);
void stackcache_put(struct stackcache *c, struct stackref *ref);

#endif
