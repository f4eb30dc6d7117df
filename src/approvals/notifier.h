/*
 * The notifier of one `nexra serve`: a background thread that finds what
 * to notify in the database and sends it, decoupled from the delegation
 * path (which never waits on it). Each tick (NOTIFY_TICK_MS, or sooner when
 * poked) it:
 *
 *  1. records the outcome of finished sends (sent; or retried later with
 *     exponential backoff, --notify-retry seconds doubling up to 600; or
 *     dead after NOTIFY_ATTEMPTS attempts, with the last error);
 *  2. finds pending_approval delegations that some channel of their org
 *     has no delivery for, and enqueues one delivery per channel (a
 *     channel only hears of delegations created at or after it);
 *  3. checks the monthly budget of orgs with recent delegations against
 *     their stack's alert_threshold and records one alert per (org, month),
 *     enqueued to every channel;
 *  4. claims due deliveries under a lease (NOTIFY_LEASE_S) and sends them:
 *     Slack and webhooks through its own outbound client (curl multi, the
 *     same address checks as delegation webhooks), email over SMTP.
 *
 * Everything is in the database: with several processes on one PostgreSQL
 * each event is enqueued once per channel (a UNIQUE constraint) and each
 * delivery claimed by one process at a time; a process that dies mid-send
 * leaves its claims to be retried when their lease ends.
 */
#ifndef NEXRA_APPROVALS_NOTIFIER_H
#define NEXRA_APPROVALS_NOTIFIER_H

#include <stdint.h>

struct app;
struct buf;
struct notifier;

#define NOTIFY_TICK_MS 1000
#define NOTIFY_ATTEMPTS 8          /* then the delivery is dead */
#define NOTIFY_BACKOFF_MAX_S 600
#define NOTIFY_LEASE_S 120         /* a claim's hold; longer than any send */
#define NOTIFY_HTTP_TIMEOUT_MS 10000
#define NOTIFY_SMTP_TIMEOUT_MS 30000
#define NOTIFY_IN_FLIGHT_MAX 64

int notifier_new(struct app *app, struct notifier **out);
/* Stop the thread; sends in flight are cancelled and left due for a retry
 * (their attempt counts). NULL is fine. */
void notifier_free(struct notifier *n);

/* Run a tick now (e.g. right after something worth notifying). */
void notifier_poke(struct notifier *n);

/* Delay before retry number attempt + 1 after attempt failed attempts. */
int64_t notifier_backoff(int base_s, int64_t attempts);

/* Counters in Prometheus text format, appended to out. */
int notifier_metrics(struct notifier *n, struct buf *out);

#endif
