/*
 * Stripe's side of billing delivery, as pure functions: the form body of a
 * meter event, reading Stripe's answers (Retry-After, the error message),
 * and the verdict on one attempt (sent, retry when, or dead). No I/O and
 * no clock: the dispatcher passes the time and a random number, so unit
 * tests and the fuzzer drive them with bytes.
 *
 * Stripe's meter events API (POST /v1/billing/meter_events) takes
 * application/x-www-form-urlencoded parameters: event_name,
 * payload[stripe_customer_id], payload[value] (here: the delegation's cost
 * as an integer count of micro-USD), identifier (the delegation id; Stripe
 * drops a second event with the same identifier) and timestamp (Unix
 * seconds of the settlement). The request also carries an Idempotency-Key
 * (the billing id), so a resend after a crash replays Stripe's first answer.
 */
#ifndef NEXRA_BILLING_STRIPE_H
#define NEXRA_BILLING_STRIPE_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "store/store.h"

#define STRIPE_API_BASE_DEFAULT "https://api.stripe.com"
#define STRIPE_METER_PATH "/v1/billing/meter_events"
#define BILLING_MAX_ATTEMPTS 48    /* sends before a retryable failure is dead (~1 day) */
#define BILLING_BACKOFF_MAX_S 3600 /* longest pause between two sends */
#define STRIPE_ERROR_MAX 400       /* Stripe's message kept as last_error */

/* Append k=v (both percent-encoded as application/x-www-form-urlencoded)
 * to out, with "&" before it unless out is empty. 0 or a buf error. */
int form_add(struct buf *out, const char *key, const char *value);

/* The meter event form of e for customer_id and event_name into out
 * (appended). 0 or a buf error. */
int stripe_meter_form(struct buf *out, const struct billing_event *e, const char *customer_id,
		      const char *event_name);

/* Retry-After (RFC 9110: delta-seconds or an HTTP-date) as seconds from
 * now; -1 when absent (NULL) or unreadable; 0 for a date in the past. */
int64_t stripe_retry_after(const char *value, int64_t now);

/* Stripe's error message from an error body ({"error": {"message",
 * "code", "type"}}) into out: "code: message", "message", or, for a body
 * that is not one, "HTTP <status>". Always NUL-terminated. */
void stripe_error_message(const char *body, size_t len, long status, char *out, size_t outsz);

/* Seconds to wait before send number attempts + 1, after attempts sends
 * failed: exponential (1, 2, 4 ... BILLING_BACKOFF_MAX_S) with equal
 * jitter (between half and all of it, from rnd), and never less than
 * retry_after (when >= 0; capped at BILLING_BACKOFF_MAX_S). At least 1. */
int64_t billing_backoff_s(int64_t attempts, int64_t retry_after, uint32_t rnd);

/* One attempt as the dispatcher saw it. */
struct stripe_reply {
	int answered;            /* an HTTP response came back */
	long status;             /* its status */
	const char *body;        /* its body (may be NULL) */
	size_t body_len;
	const char *retry_after; /* its Retry-After header, NULL when none */
	const char *transport_error; /* why there was no answer */
};

struct billing_verdict {
	enum billing_outcome outcome; /* SENT, RETRY or DEAD */
	int64_t next_attempt_at;      /* RETRY */
	char error[BILLING_ERROR_MAX]; /* RETRY, DEAD */
};

/* The verdict on send number attempts (>= 1) of an event at now: 2xx is
 * sent; no answer, 409 (an idempotent request still in progress), 429 and
 * 5xx are retried with billing_backoff_s (dead after BILLING_MAX_ATTEMPTS
 * sends); any other status is dead with Stripe's message. */
void billing_judge(const struct stripe_reply *r, int64_t attempts, int64_t now, uint32_t rnd,
		   struct billing_verdict *out);

#endif
