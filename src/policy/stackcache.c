/* Per-org compiled stack cache; see stackcache.h. */
#include "policy/stackcache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/hash.h"
#include "policy/orgstack.h"
#include "core/banned.h"

struct stackref {
	struct policy_stack *stack;
	int refs; /* guarded by the cache's mutex */
};

int stackcache_init(struct stackcache *c)
{
	c->slots = calloc(STACKCACHE_SLOTS, sizeof(*c->slots));
	if (!c->slots)
		return E(INTERNAL);
	pthread_mutex_init(&c->mu, NULL);
	return 0;
}

/* Drop one reference; called with c->mu held. */
static void unref(struct stackref *r)
{
	if (r && --r->refs == 0) {
		policy_stack_free(r->stack);
		free(r);
	}
}

void stackcache_release(struct stackcache *c)
{
	if (!c->slots)
		return;
	for (int i = 0; i < STACKCACHE_SLOTS; i++)
		unref(c->slots[i].ref);
	free(c->slots);
	c->slots = NULL;
	pthread_mutex_destroy(&c->mu);
}

static unsigned slot_of(const char *org_id)
{
	return hash_fnv1a(HASH_FNV_INIT, org_id, strlen(org_id)) % STACKCACHE_SLOTS;
}

int stackcache_get(struct stackcache *c, struct store *st, const char *org_id,
		   const struct policy_stack **stack, struct stackref **ref, char *msg,
		   size_t msgsz)
{
	struct stackcache_slot *s = &c->slots[slot_of(org_id)];
	struct policy_stack *fresh = NULL;
	struct stackref *r = NULL;
	int64_t stamp = 0;
	int rc;

	*stack = NULL;
	*ref = NULL;
	if (strlen(org_id) >= ID_MAX)
		return E(VALIDATION);
	/* the stamp first: a stack loaded after reading it is at least as new */
	rc = st->ops->policy_stamp(st, org_id, &stamp);
	if (rc) {
		snprintf(msg, msgsz, "reading the policy stamp failed: %s", store_last_error());
		return rc;
	}
	pthread_mutex_lock(&c->mu);
	if (s->ref && s->stamp == stamp && !strcmp(s->org_id, org_id)) {
		r = s->ref;
		r->refs++;
	}
	pthread_mutex_unlock(&c->mu);
	if (!r) {
		rc = policy_orgstack_load(st, org_id, &fresh, msg, msgsz);
		if (rc)
			return rc;
		r = malloc(sizeof(*r));
		if (!r) {
			policy_stack_free(fresh);
			snprintf(msg, msgsz, "out of memory");
			return E(INTERNAL);
		}
		r->stack = fresh;
		r->refs = 2; /* the cache's and the caller's */
		pthread_mutex_lock(&c->mu);
		unref(s->ref);
		s->ref = r;
		s->stamp = stamp;
		memcpy(s->org_id, org_id, strlen(org_id) + 1);
		pthread_mutex_unlock(&c->mu);
	}
	*stack = r->stack;
	*ref = r;
	return 0;
}

void stackcache_put(struct stackcache *c, struct stackref *ref)
{
	if (!ref)
		return;
	pthread_mutex_lock(&c->mu);
	unref(ref);
	pthread_mutex_unlock(&c->mu);
}
