/*
 * billing/stripe and billing/settings: the meter event form, Retry-After,
 * Stripe's error message, backoff with jitter, the verdict on an attempt,
 * and the rules for the org's Stripe fields.
 */
#include <string.h>

#include "billing/settings.h"
#include "billing/stripe.h"
#include "core/buf.h"
#include "test.h"

TEST(stripe_meter_form_is_form_encoded)
{
	struct billing_event e;
	struct buf b;

	memset(&e, 0, sizeof(e));
	snprintf(e.delegation_id, sizeof(e.delegation_id), "del_01a2b3");
	e.amount_micros = 12300;
	e.created_at = 1773671010;
	buf_init(&b, 4096);
	ASSERT_EQ(stripe_meter_form(&b, &e, "cus_AB1", "api usage/€"), 0);
	ASSERT_EQ(buf_add(&b, "", 1), 0);
	ASSERT_STR_EQ(b.data, "event_name=api%20usage%2F%E2%82%AC"
			      "&payload%5Bstripe_customer_id%5D=cus_AB1"
			      "&payload%5Bvalue%5D=12300&identifier=del_01a2b3&timestamp=1773671010");
	buf_release(&b);
}

TEST(stripe_retry_after_seconds_and_dates)
{
	int64_t now = 1445412480; /* Wed, 21 Oct 2015 07:28:00 GMT */

	ASSERT_EQ(stripe_retry_after(NULL, now), -1);
	ASSERT_EQ(stripe_retry_after("120", now), 120);
	ASSERT_EQ(stripe_retry_after(" 0 ", now), 0);
	ASSERT_EQ(stripe_retry_after("1.5", now), -1);
	ASSERT_EQ(stripe_retry_after("-3", now), -1);
	ASSERT_EQ(stripe_retry_after("99999999999999", now), -1);
	ASSERT_EQ(stripe_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now), 30);
	ASSERT_EQ(stripe_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now), 0);
	ASSERT_EQ(stripe_retry_after("soon", now), -1);
	ASSERT_EQ(stripe_retry_after("", now), -1);
}

TEST(stripe_error_message_reads_stripes_error)
{
	char out[STRIPE_ERROR_MAX + 1];
	const char *b1 = "{\"error\":{\"type\":\"invalid_request_error\",\"code\":\"resource_missing\","
			 "\"message\":\"No such customer: 'cus_x'\"}}";
	const char *b2 = "{\"error\":{\"message\":\"bad\\nline\"}}";

	stripe_error_message(b1, strlen(b1), 400, out, sizeof(out));
	ASSERT_STR_EQ(out, "resource_missing: No such customer: 'cus_x'");
	stripe_error_message(b2, strlen(b2), 400, out, sizeof(out));
	ASSERT_STR_EQ(out, "bad line");
	stripe_error_message("<html>", 6, 502, out, sizeof(out));
	ASSERT_STR_EQ(out, "HTTP 502");
	stripe_error_message(NULL, 0, 500, out, sizeof(out));
	ASSERT_STR_EQ(out, "HTTP 500");
	stripe_error_message("{\"error\":5}", 11, 400, out, sizeof(out));
	ASSERT_STR_EQ(out, "HTTP 400");
}

TEST(billing_backoff_grows_with_jitter_and_honours_retry_after)
{
	ASSERT_EQ(billing_backoff_s(1, -1, 0), 1);
	ASSERT_EQ(billing_backoff_s(1, -1, 12345), 1);
	for (uint32_t r = 0; r < 50; r++) {
		int64_t d = billing_backoff_s(4, -1, r * 7919u);

		ASSERT(d >= 4 && d <= 8); /* base 8: half to all of it */
	}
	ASSERT_EQ(billing_backoff_s(4, -1, 0), 4);
	ASSERT_EQ(billing_backoff_s(4, -1, 4), 8);
	ASSERT_EQ(billing_backoff_s(100, -1, 0), BILLING_BACKOFF_MAX_S / 2);
	ASSERT(billing_backoff_s(100, -1, 0xffffffffu) <= BILLING_BACKOFF_MAX_S);
	ASSERT_EQ(billing_backoff_s(1, 30, 0), 30);
	ASSERT_EQ(billing_backoff_s(1, 0, 0), 1);
	ASSERT_EQ(billing_backoff_s(1, 1000000, 0), BILLING_BACKOFF_MAX_S);
}

TEST(billing_judge_sent_retry_dead)
{
	struct stripe_reply r = {.answered = 1, .status = 200};
	struct billing_verdict v;
	const char *bad = "{\"error\":{\"message\":\"No such customer\"}}";

	billing_judge(&r, 1, 1000, 0, &v);
	ASSERT_EQ(v.outcome, BILLING_SENT);
	r.status = 429;
	r.retry_after = "7";
	billing_judge(&r, 1, 1000, 0, &v);
	ASSERT_EQ(v.outcome, BILLING_RETRY);
	ASSERT_EQ(v.next_attempt_at, 1007);
	ASSERT_CONTAINS(v.error, "429");
	r.status = 503;
	r.retry_after = NULL;
	billing_judge(&r, 3, 1000, 0, &v);
	ASSERT_EQ(v.outcome, BILLING_RETRY);
	ASSERT_EQ(v.next_attempt_at, 1002);
	r.status = 409;
	billing_judge(&r, 1, 1000, 0, &v);
	ASSERT_EQ(v.outcome, BILLING_RETRY);
	r.status = 400;
	r.body = bad;
	r.body_len = strlen(bad);
	billing_judge(&r, 1, 1000, 0, &v);
	ASSERT_EQ(v.outcome, BILLING_DEAD);
	ASSERT_STR_EQ(v.error, "Stripe answered 400: No such customer");
	r.status = 401;
	billing_judge(&r, 1, 1000, 0, &v);
	ASSERT_EQ(v.outcome, BILLING_DEAD);
	r = (struct stripe_reply){.answered = 0, .transport_error = "Connection refused"};
	billing_judge(&r, 2, 1000, 0, &v);
	ASSERT_EQ(v.outcome, BILLING_RETRY);
	ASSERT_STR_EQ(v.error, "no answer from Stripe: Connection refused");
	billing_judge(&r, BILLING_MAX_ATTEMPTS, 1000, 0, &v);
	ASSERT_EQ(v.outcome, BILLING_DEAD);
	ASSERT_CONTAINS(v.error, "gave up after");
}

TEST(stripe_settings_fields)
{
	ASSERT_STR_EQ(stripe_key_mode("sk_live_0123456789abcdef"), "live");
	ASSERT_STR_EQ(stripe_key_mode("rk_test_0123456789abcdef"), "test");
	ASSERT(stripe_key_mode("sk_live_short") == NULL);
	ASSERT(stripe_key_mode("pk_live_0123456789abcdef") == NULL);
	ASSERT(stripe_key_mode("sk_live_0123456789abcde\n") == NULL);
	ASSERT(stripe_customer_valid("cus_NffrFeUfNV2Hib"));
	ASSERT(!stripe_customer_valid("cus_"));
	ASSERT(!stripe_customer_valid("acct_1"));
	ASSERT(!stripe_customer_valid("cus_a&b"));
	ASSERT(stripe_event_name_valid("nexra.usage:v1-x"));
	ASSERT(!stripe_event_name_valid(""));
	ASSERT(!stripe_event_name_valid("a b"));
}
