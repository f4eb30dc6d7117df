/*
 * Per-org rate limits: a sliding log. For a limit of N requests per window
 * W, an org keeps the times of its last N admitted requests in a ring; a
 * request is admitted when fewer than N are logged or the oldest is at
 * least W old. That is exact: no W-long interval ever holds more than N
 * admitted requests, and nothing is admitted early (unlike a fixed window,
 * which admits 2N around a boundary, or a token bucket, which admits a
 * burst of N on top of the refill).
 *
 * rl_log_check is pure (the time is an argument); struct ratelimiter is the
 * thread-safe table of logs, keyed by org id, that the server uses. Memory
 * is 8 bytes per unit of limit per active org (8 KB for growth); orgs with
 * no request inside the window are swept away every RL_SWEEP_EVERY new
 * entries.
 */
#ifndef NEXRA_AUTH_RATELIMIT_H
#define NEXRA_AUTH_RATELIMIT_H

#include <pthread.h>
#include <stdint.h>

#include "core/rand.h"

#define RL_MAX_LIMIT 1000000
#define RL_SWEEP_EVERY 1024

struct rl_log {
	int64_t *t;   /* ring of admission times (ms); owned */
	int cap;      /* = limit when allocated */
	int head;     /* index of the oldest entry */
	int count;
};

struct rl_result {
	int allowed;
	int limit;
	int remaining;        /* after this request */
	int64_t reset_s;      /* seconds until the oldest logged slot frees */
	int64_t retry_after_s; /* when refused: seconds until one is admitted (>= 1) */
};

/* Check and, if admitted, record one request at now_ms. Pure but for the
 * log it updates. The log must have been sized to limit (rl_log_init). */
void rl_log_check(struct rl_log *l, int limit, int64_t window_ms, int64_t now_ms,
		  struct rl_result *r);
int rl_log_init(struct rl_log *l, int limit);
void rl_log_release(struct rl_log *l);

struct rl_entry {
	struct rl_entry *next;
	struct rl_log log;
	char org_id[ID_MAX];
};

struct ratelimiter {
	pthread_mutex_t mu;
	struct rl_entry **slots; /* open hash by org id, chained */
	unsigned nslots;
	unsigned long inserts;   /* new entries so far: every RL_SWEEP_EVERY, idle ones go */
	int64_t window_ms;
};

int ratelimiter_init(struct ratelimiter *rl, int64_t window_ms);
void ratelimiter_release(struct ratelimiter *rl);

/* limit <= 0 means unlimited (always allowed, remaining = -1). */
int ratelimiter_check(struct ratelimiter *rl, const char *org_id, int limit, int64_t now_ms,
		      struct rl_result *r);

#endif
