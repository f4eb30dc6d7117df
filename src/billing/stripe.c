/* Stripe requests and answers as pure functions; see stripe.h. */
#include "billing/stripe.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "core/banned.h"

static int unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

static int encode(struct buf *out, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	char esc[3] = {'%', 0, 0};
	int rc = 0;

	for (const unsigned char *p = (const unsigned char *)s; *p && !rc; p++) {
		if (unreserved(*p)) {
			rc = buf_add(out, p, 1);
		} else {
			esc[1] = hex[*p >> 4];
			esc[2] = hex[*p & 15];
			rc = buf_add(out, esc, 3);
		}
	}
	return rc;
}

int form_add(struct buf *out, const char *key, const char *value)
{
	int rc = out->len ? buf_adds(out, "&") : 0;

	if (!rc)
		rc = encode(out, key);
	if (!rc)
		rc = buf_adds(out, "=");
	if (!rc)
		rc = encode(out, value);
	return rc;
}

int stripe_meter_form(struct buf *out, const struct billing_event *e, const char *customer_id,
		      const char *event_name)
{
	char value[24], ts[24];
	int rc;

	snprintf(value, sizeof(value), "%" PRId64, e->amount_micros);
	snprintf(ts, sizeof(ts), "%" PRId64, e->created_at);
	rc = form_add(out, "event_name", event_name);
	if (!rc)
		rc = form_add(out, "payload[stripe_customer_id]", customer_id);
	if (!rc)
		rc = form_add(out, "payload[value]", value);
	if (!rc)
		rc = form_add(out, "identifier", e->delegation_id);
	if (!rc)
		rc = form_add(out, "timestamp", ts);
	return rc;
}

int64_t stripe_retry_after(const char *value, int64_t now)
{
	const char *p = value;
	int64_t n = 0;
	time_t t;

	if (!value)
		return -1;
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p >= '0' && *p <= '9') {
		for (; *p >= '0' && *p <= '9'; p++) {
			if (n > 1000000000)
				return -1;
			n = n * 10 + (*p - '0');
		}
		while (*p == ' ' || *p == '\t')
			p++;
		return *p ? -1 : n;
	}
	t = curl_getdate(p, NULL);
	if (t < 0)
		return -1;
	return (int64_t)t > now ? (int64_t)t - now : 0;
}

/* Copy s into out, replacing control characters by spaces. */
static void copy_clean(char *out, size_t outsz, const char *s)
{
	size_t i = 0;

	for (; s[i] && i + 1 < outsz; i++)
		out[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? ' ' : s[i];
	out[i] = '\0';
}

void stripe_error_message(const char *body, size_t len, long status, char *out, size_t outsz)
{
	json_t *root = body && len ? json_loadb(body, len, JSON_DECODE_ANY, NULL) : NULL;
	json_t *err = json_is_object(root) ? json_object_get(root, "error") : NULL;
	const char *msg = json_string_value(json_object_get(err, "message"));
	const char *code = json_string_value(json_object_get(err, "code"));
	char tmp[STRIPE_ERROR_MAX + 1];

	if (!msg && !code)
		snprintf(tmp, sizeof(tmp), "HTTP %ld", status);
	else if (msg && code)
		snprintf(tmp, sizeof(tmp), "%s: %s", code, msg);
	else
		snprintf(tmp, sizeof(tmp), "%s", msg ? msg : code);
	copy_clean(out, outsz, tmp);
	json_decref(root);
}

int64_t billing_backoff_s(int64_t attempts, int64_t retry_after, uint32_t rnd)
{
	int64_t base = BILLING_BACKOFF_MAX_S, delay;

	if (attempts < 1)
		attempts = 1;
	if (attempts <= 12 && (1LL << (attempts - 1)) < BILLING_BACKOFF_MAX_S)
		base = 1LL << (attempts - 1);
	delay = base - base / 2 + (int64_t)(rnd % (uint32_t)(base / 2 + 1));
	if (retry_after > BILLING_BACKOFF_MAX_S)
		retry_after = BILLING_BACKOFF_MAX_S;
	if (delay < retry_after)
		delay = retry_after;
	return delay < 1 ? 1 : delay;
}

void billing_judge(const struct stripe_reply *r, int64_t attempts, int64_t now, uint32_t rnd,
		   struct billing_verdict *out)
{
	char why[STRIPE_ERROR_MAX + 1];
	int retryable = 1;

	memset(out, 0, sizeof(*out));
	if (r->answered && r->status >= 200 && r->status < 300) {
		out->outcome = BILLING_SENT;
		return;
	}
	if (!r->answered) {
		snprintf(why, sizeof(why), "no answer from Stripe: %s",
			 r->transport_error ? r->transport_error : "unknown error");
		copy_clean(why, sizeof(why), why);
	} else {
		stripe_error_message(r->body, r->body_len, r->status, why, sizeof(why));
		retryable = r->status == 409 || r->status == 429 || r->status >= 500;
	}
	if (!retryable) {
		out->outcome = BILLING_DEAD;
		snprintf(out->error, sizeof(out->error), "Stripe answered %ld: %s", r->status, why);
		return;
	}
	if (attempts >= BILLING_MAX_ATTEMPTS) {
		out->outcome = BILLING_DEAD;
		snprintf(out->error, sizeof(out->error), "gave up after %" PRId64 " attempts: %s%s",
			 attempts, r->answered ? "Stripe answered " : "", why);
		return;
	}
	out->outcome = BILLING_RETRY;
	out->next_attempt_at =
		now + billing_backoff_s(attempts, r->answered ? stripe_retry_after(r->retry_after, now)
							       : -1, rnd);
	if (r->answered)
		snprintf(out->error, sizeof(out->error), "Stripe answered %ld: %s", r->status, why);
	else
		snprintf(out->error, sizeof(out->error), "%s", why);
}
