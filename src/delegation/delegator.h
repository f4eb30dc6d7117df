/*
 * The delegation service of one `nexra serve`: the ledger writer (group
 * commit), the outbound client (curl multi), and a sweeper thread that
 * settles orphans (delegations left open by a process that stopped) and
 * retries completion callbacks with backoff. Owned by the app; handlers
 * reach it as app->delegator.
 *
 * Shutdown (delegator_free) runs after the HTTP server stopped accepting:
 * in-flight webhooks are cancelled and settled as failed (not billed, holds
 * released), their waiting requests answered, every queued ledger job
 * committed, then the threads end.
 */
#ifndef NEXRA_DELEGATION_DELEGATOR_H
#define NEXRA_DELEGATION_DELEGATOR_H

#include <stdint.h>

struct app;
struct delegator;

#define DELEGATION_TIMEOUT_DEFAULT_MS 30000
#define DELEGATION_TIMEOUT_MAX_MS 300000
#define DELEGATION_ORPHAN_GRACE_S 10  /* past expires_at before the sweeper steps in */
#define CALLBACK_ATTEMPTS 5           /* completion callback tries, with backoff */
#define DELEGATION_ID_BYTES 12        /* "del_" + 24 hex digits */

int delegator_new(struct app *app, struct delegator **out);
void delegator_free(struct delegator *d);

/* Counters for /metrics and tests. */
struct delegator_stats {
	uint64_t opened, completed, failed, timed_out, blocked, pending, expired;
	uint64_t callbacks_sent, callbacks_failed;
	uint64_t ledger_batches, ledger_jobs;
	int in_flight; /* webhooks queued or waiting on a callee */
};
void delegator_stats(struct delegator *d, struct delegator_stats *out);

/* The stats in Prometheus text format, appended to out. */
struct buf;
int delegator_metrics(struct delegator *d, struct buf *out);

#endif
