/*
 * Fuzz target: what Stripe (or anything at --stripe-api-base) answers. The
 * first byte picks a status, the rest is both the body and a Retry-After
 * value; billing_judge must give a verdict with a NUL-terminated error free
 * of control characters, a retry never sooner than a second nor later than
 * the backoff cap past a Retry-After it honours, and a sent verdict only
 * for 2xx; abort() otherwise.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "billing/stripe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const long statuses[] = {200, 201, 400, 401, 402, 404, 409, 429, 500, 502, 503, 0};
	char text[2048];
	size_t n;
	struct billing_verdict v;
	struct stripe_reply r;
	int64_t now = 1773671010, ra;

	if (size < 1)
		return 0;
	n = size - 1 < sizeof(text) - 1 ? size - 1 : sizeof(text) - 1;
	memcpy(text, data + 1, n);
	text[n] = '\0';
	memset(&r, 0, sizeof(r));
	r.status = statuses[data[0] % (sizeof(statuses) / sizeof(statuses[0]))];
	r.answered = r.status != 0;
	r.body = text;
	r.body_len = n;
	r.retry_after = text;
	r.transport_error = text;
	ra = stripe_retry_after(text, now);
	billing_judge(&r, 1 + data[0] % BILLING_MAX_ATTEMPTS, now, data[0] * 2654435761u, &v);
	if (memchr(v.error, '\0', sizeof(v.error)) == NULL)
		abort();
	for (const char *p = v.error; *p; p++)
		if ((unsigned char)*p < 0x20)
			abort();
	if ((v.outcome == BILLING_SENT) != (r.answered && r.status >= 200 && r.status < 300))
		abort();
	if (v.outcome == BILLING_RETRY &&
	    (v.next_attempt_at < now + 1 || v.next_attempt_at > now + BILLING_BACKOFF_MAX_S ||
	     (r.answered && ra >= 0 && v.next_attempt_at < now + (ra < BILLING_BACKOFF_MAX_S
									 ? ra
									 : BILLING_BACKOFF_MAX_S))))
		abort();
	return 0;
}
