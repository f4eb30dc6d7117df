/*
 * The Stripe client's transport: a batch of POSTs sent at once over one
 * libcurl multi handle, on the calling thread (the billing dispatcher's
 * own), with connections kept alive between batches. Like the outbound
 * client of delegations (delegation/outbound.h) it follows no redirects,
 * speaks only http and https, ignores proxies from the environment, caps
 * response bodies and gives each exchange a deadline; unlike it, it reads
 * a response header (Retry-After) and needs no thread of its own, because
 * its only caller waits for the whole batch anyway. The address is the
 * operator's (--stripe-api-base), so it is not screened like a webhook's.
 */
#ifndef NEXRA_BILLING_STRIPE_HTTP_H
#define NEXRA_BILLING_STRIPE_HTTP_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

#define STRIPE_HTTP_MAX_CALLS 64         /* calls in one batch */
#define STRIPE_HTTP_MAX_RESPONSE 65536   /* body bytes kept from an answer */
#define STRIPE_HTTP_HEADER_MAX 300       /* Authorization / Idempotency-Key line */

struct stripe_call {
	/* in (borrowed for the run) */
	const char *url;
	const char *body;
	size_t body_len;
	char auth[STRIPE_HTTP_HEADER_MAX]; /* "Authorization: Bearer ..." */
	char idem[STRIPE_HTTP_HEADER_MAX]; /* "Idempotency-Key: ..." */
	/* out */
	int answered;          /* a whole HTTP response came back */
	int cancelled;         /* stopped before it finished */
	long status;
	struct buf response;   /* its body (init by the run; release with stripe_call_release) */
	char retry_after[64];  /* the Retry-After value, "" when none */
	char error[256];       /* why there was no answer */
	uint64_t elapsed_ns;
};

void stripe_call_release(struct stripe_call *c); /* frees the response; scrubs auth */

struct stripe_http;

int stripe_http_new(struct stripe_http **out); /* 0 or E(INTERNAL) */
void stripe_http_free(struct stripe_http *h);  /* NULL is fine */

/* Send calls[0..n) (n <= STRIPE_HTTP_MAX_CALLS) at once and wait until
 * every one has an answer, failed, or ran past timeout_ms; when *stop
 * becomes non-zero the unfinished ones end cancelled. Each call's out
 * fields are set. 0, or E(INTERNAL) when the batch could not start. */
int stripe_http_run(struct stripe_http *h, struct stripe_call *calls, int n, long timeout_ms,
		    const atomic_int *stop);

#endif
