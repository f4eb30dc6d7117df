/*
 * The billing dispatcher of one `nexra serve`: a thread of its own that
 * delivers the billing outbox (billing_events, written by the ledger at
 * settlement) to Stripe, exactly once in effect (docs/billing.md).
 *
 * Each round claims a batch of due events under a lease (store.h
 * billing_claim; safe across threads and processes), sends them to
 * Stripe's meter events API at once (stripe_http.h) with the org's live
 * secret key, identifier = delegation id and Idempotency-Key = billing id,
 * then records every verdict (stripe.h billing_judge) in one transaction.
 * No database transaction or lock is held while Stripe is asked, and the
 * thread uses the store's own connections briefly, so the delegation path
 * never waits on Stripe.
 *
 * Crash safety: a process that dies after Stripe answered and before the
 * verdict was committed leaves the row pending with its lease; when the
 * lease runs out (BILLING_LEASE_S) any dispatcher claims and sends it
 * again, with the same identifier and idempotency key, so Stripe replays
 * its first answer instead of counting it twice.
 */
#ifndef NEXRA_BILLING_DISPATCHER_H
#define NEXRA_BILLING_DISPATCHER_H

#include "core/buf.h"

#define BILLING_BATCH 64          /* events claimed and sent per round */
#define BILLING_LEASE_S 20        /* a claim's lease: longer than a round can take */
#define BILLING_STRIPE_TIMEOUT_MS 10000
#define BILLING_IDLE_MS 250       /* pause when nothing is due */

struct app;
struct billing_dispatcher;

/* Start the thread. 0 or E(INTERNAL). */
int billing_dispatcher_new(struct app *app, struct billing_dispatcher **out);

/* Stop: a round in flight is cut short (its unfinished sends released for
 * the next claim), then the thread ends. NULL is fine. */
void billing_dispatcher_free(struct billing_dispatcher *d);

/* The dispatcher's metrics in Prometheus text, appended to out. */
int billing_metrics(struct billing_dispatcher *d, struct buf *out);

#endif
