/* Sliding-log rate limiting; see ratelimit.h. */
#include "auth/ratelimit.h"

#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/hash.h"
#include "core/rand.h"
#include "core/banned.h"

int rl_log_init(struct rl_log *l, int limit)
{
	memset(l, 0, sizeof(*l));
	if (limit <= 0 || limit > RL_MAX_LIMIT)
		return E(INTERNAL);
	l->t = malloc((size_t)limit * sizeof(*l->t));
	if (!l->t)
		return E(INTERNAL);
	l->cap = limit;
	return 0;
}

void rl_log_release(struct rl_log *l)
{
	free(l->t);
	memset(l, 0, sizeof(*l));
}

static int64_t ceil_s(int64_t ms)
{
	return ms <= 0 ? 0 : (ms + 999) / 1000;
}

void rl_log_check(struct rl_log *l, int limit, int64_t window_ms, int64_t now_ms,
		  struct rl_result *r)
{
	/* drop entries that have left the window */
	while (l->count && l->t[l->head] <= now_ms - window_ms) {
		l->head = (l->head + 1) % l->cap;
		l->count--;
	}
	r->limit = limit;
	if (l->count < limit) {
		int tail = (l->head + l->count) % l->cap;

		l->t[tail] = now_ms;
		l->count++;
		r->allowed = 1;
		r->remaining = limit - l->count;
		r->retry_after_s = 0;
	} else {
		r->allowed = 0;
		r->remaining = 0;
		r->retry_after_s = ceil_s(l->t[l->head] + window_ms - now_ms);
		if (r->retry_after_s < 1)
			r->retry_after_s = 1;
	}
	r->reset_s = ceil_s(l->t[l->head] + window_ms - now_ms);
}


int ratelimiter_init(struct ratelimiter *rl, int64_t window_ms)
{
	memset(rl, 0, sizeof(*rl));
	rl->nslots = 4096;
	rl->slots = calloc(rl->nslots, sizeof(*rl->slots));
	if (!rl->slots)
		return E(INTERNAL);
	rl->window_ms = window_ms;
	pthread_mutex_init(&rl->mu, NULL);
	return 0;
}

void ratelimiter_release(struct ratelimiter *rl)
{
	for (unsigned i = 0; i < rl->nslots; i++) {
		struct rl_entry *e = rl->slots[i], *next;

		for (; e; e = next) {
			next = e->next;
			rl_log_release(&e->log);
			free(e);
		}
	}
	free(rl->slots);
	rl->slots = NULL;
	pthread_mutex_destroy(&rl->mu);
}

/* Free the logs of orgs with nothing inside the window: an idle org costs
 * nothing until it comes back (and then starts with a fresh log, which is
 * exactly what its empty log said). Called under rl->mu. */
static void sweep(struct ratelimiter *rl, int64_t now_ms)
{
	for (unsigned i = 0; i < rl->nslots; i++) {
		struct rl_entry **pp = &rl->slots[i];

		while (*pp) {
			struct rl_entry *e = *pp;
			const struct rl_log *l = &e->log;
			int64_t newest = l->count ? l->t[(l->head + l->count - 1) % l->cap] : 0;

			if (!l->count || newest <= now_ms - rl->window_ms) {
				*pp = e->next;
				rl_log_release(&e->log);
				free(e);
			} else {
				pp = &e->next;
			}
		}
	}
}

int ratelimiter_check(struct ratelimiter *rl, const char *org_id, int limit, int64_t now_ms,
		      struct rl_result *r)
{
	struct rl_entry *e;
	unsigned slot;
	int rc = 0;

	if (limit <= 0) {
		r->allowed = 1;
		r->limit = 0;
		r->remaining = -1;
		r->reset_s = r->retry_after_s = 0;
		return 0;
	}
	if (strlen(org_id) >= ID_MAX)
		return E(VALIDATION); /* not one of our org ids */
	slot = hash_fnv1a(HASH_FNV_INIT, org_id, strlen(org_id)) % rl->nslots;
	pthread_mutex_lock(&rl->mu);
	for (e = rl->slots[slot]; e; e = e->next)
		if (!strcmp(e->org_id, org_id))
			break;
	if (e && e->log.cap != limit) { /* the plan changed: start a fresh log */
		rl_log_release(&e->log);
		rc = rl_log_init(&e->log, limit);
	} else if (!e) {
		if (++rl->inserts % RL_SWEEP_EVERY == 0)
			sweep(rl, now_ms); /* before inserting: the new log is empty */
		e = calloc(1, sizeof(*e));
		rc = e ? rl_log_init(&e->log, limit) : E(INTERNAL);
		if (!rc) {
			memcpy(e->org_id, org_id, strlen(org_id) + 1);
			e->next = rl->slots[slot];
			rl->slots[slot] = e;
		} else {
			free(e);
			e = NULL;
		}
	}
	if (!rc)
		rl_log_check(&e->log, limit, rl->window_ms, now_ms, r);
	pthread_mutex_unlock(&rl->mu);
	return rc;
}
