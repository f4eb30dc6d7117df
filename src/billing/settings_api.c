/*
 * PUT, GET and DELETE /v1/billing/stripe: the org's Stripe connection for
 * the calling key's mode (a live key: the live one, which is what billing
 * uses; a test key: the test one). The secret key is sealed before it is
 * stored and never answered: GET says which fields are set.
 */
#include <sodium.h>
#include <string.h>

#include "billing/api.h"
#include "billing/settings.h"
#include "core/err.h"
#include "core/json.h"
#include "core/jsonw.h"
#include "serve/app.h"
#include "core/banned.h"

static const char *const put_fields[] = {"secret_key", "customer_id", "meter_event_name", NULL};

static const char *key_mode(const struct req *r)
{
	return r->auth.key.kind == KEY_LIVE ? "live" : "test";
}

/* The connection as GET shows it; b NULL: not connected. */
static int answer(struct req *r, const struct billing_settings *b)
{
	struct jsonw jw;

	jw_init(&jw, &r->out);
	jw_obj_open(&jw);
	jw_kstr(&jw, "mode", key_mode(r));
	jw_kbool(&jw, "connected", b != NULL);
	jw_kbool(&jw, "secret_key_set", b != NULL);
	jw_kstr(&jw, "customer_id", b ? b->customer_id : NULL);
	jw_kstr(&jw, "meter_event_name", b ? b->meter_event_name : NULL);
	jw_ktime(&jw, "updated_at", b ? b->updated_at : 0);
	jw_obj_close(&jw);
	return jw.rc ? req_fail(r, jw.rc, "response too large") : req_ok_out(r, 200);
}

/* Check the body into b and *secret (borrowed from body). 0, or answered. */
static int check_put(struct req *r, const json_t *body, struct billing_settings *b,
		     const char **secret)
{
	struct jerr e = {{0}, {0}};
	const char *customer = NULL, *event = NULL, *mode;

	if (json_only_keys(body, "", put_fields, &e) ||
	    json_get_string(body, "", "secret_key", 1, 1, STRIPE_FIELD_MAX, secret, &e) < 0 ||
	    json_get_string(body, "", "customer_id", 1, 1, STRIPE_FIELD_MAX, &customer, &e) < 0 ||
	    json_get_string(body, "", "meter_event_name", 1, 1, STRIPE_EVENT_NAME_MAX, &event,
			    &e) < 0)
		return req_fail_jerr(r, &e);
	mode = stripe_key_mode(*secret);
	if (!mode)
		jerr_set(&e, "secret_key", "secret_key: expected a Stripe secret key "
			 "(sk_live_..., sk_test_..., or a restricted rk_live_/rk_test_ key)");
	else if (strcmp(mode, key_mode(r)))
		jerr_set(&e, "secret_key", "secret_key: a %s Nexra key (nx_%s_...) needs a Stripe "
			 "%s key (sk_%s_...)", key_mode(r), key_mode(r), key_mode(r), key_mode(r));
	else if (!stripe_customer_valid(customer))
		jerr_set(&e, "customer_id", "customer_id: expected a Stripe customer id (cus_...)");
	else if (!stripe_event_name_valid(event))
		jerr_set(&e, "meter_event_name", "meter_event_name: expected 1 to %d of "
			 "A-Z a-z 0-9 _ . : -", STRIPE_EVENT_NAME_MAX);
	if (e.message[0])
		return req_fail_jerr(r, &e);
	snprintf(b->customer_id, sizeof(b->customer_id), "%s", customer);
	snprintf(b->meter_event_name, sizeof(b->meter_event_name), "%s", event);
	return 0;
}

int api_billing_stripe_put(struct req *r)
{
	struct store *st = r->app->store;
	struct billing_settings b;
	const char *secret = NULL;
	json_t *body = NULL;
	int rc = req_json_body(r, &body);

	if (rc)
		return rc;
	memset(&b, 0, sizeof(b));
	snprintf(b.org_id, sizeof(b.org_id), "%s", r->auth.org.org_id);
	snprintf(b.mode, sizeof(b.mode), "%s", key_mode(r));
	b.updated_at = r->now;
	rc = check_put(r, body, &b, &secret);
	if (!rc && billing_seal_secret(r->app->master_key, &b, secret))
		rc = req_fail(r, E(INTERNAL), "sealing the secret key failed");
	json_decref(body); /* secret pointed into it */
	if (!rc) {
		rc = st->ops->billing_settings_put(st, &b);
		rc = rc ? req_fail(r, rc, "saving the Stripe settings failed: %s",
				   store_last_error())
			: answer(r, &b);
	}
	billing_settings_release(&b);
	return rc;
}

int api_billing_stripe_get(struct req *r)
{
	struct store *st = r->app->store;
	struct billing_settings b;
	int rc = st->ops->billing_settings_get(st, r->auth.org.org_id, key_mode(r), &b);

	if (rc == E(NOT_FOUND))
		return answer(r, NULL);
	if (rc)
		return req_fail(r, rc, "reading the Stripe settings failed: %s", store_last_error());
	rc = answer(r, &b);
	billing_settings_release(&b);
	return rc;
}

int api_billing_stripe_delete(struct req *r)
{
	struct store *st = r->app->store;
	int rc = st->ops->billing_settings_delete(st, r->auth.org.org_id, key_mode(r));

	if (rc && rc != E(NOT_FOUND))
		return req_fail(r, rc, "removing the Stripe settings failed: %s",
				store_last_error());
	return answer(r, NULL);
}
