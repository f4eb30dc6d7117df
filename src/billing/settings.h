/*
 * An org's Stripe connection (docs/billing.md): the rules for its fields
 * and the sealing of its secret key. Pure except for seal's randomness.
 *
 * A live Nexra key connects the org's live settings and needs a Stripe
 * live key (sk_live_ or the restricted rk_live_); a test Nexra key the
 * test settings, with sk_test_ / rk_test_. Only live settings are ever
 * used to send: test delegations are never recorded, so never billed.
 */
#ifndef NEXRA_BILLING_SETTINGS_H
#define NEXRA_BILLING_SETTINGS_H

#include <stddef.h>

#include "crypto/seal.h"
#include "store/store.h"

#define STRIPE_SECRET_MIN 16
#define STRIPE_EVENT_NAME_MAX 100

/* "live" or "test" for a Stripe secret key's prefix; NULL when it is not
 * sk_live_, sk_test_, rk_live_ or rk_test_ followed by at least
 * STRIPE_SECRET_MIN of [A-Za-z0-9_], at most STRIPE_FIELD_MAX in all. */
const char *stripe_key_mode(const char *secret);

/* 1 if s is a Stripe customer id: "cus_" then 1.. of [A-Za-z0-9_],
 * at most STRIPE_FIELD_MAX in all. */
int stripe_customer_valid(const char *s);

/* 1 if s is a meter event name: 1..STRIPE_EVENT_NAME_MAX of
 * [A-Za-z0-9_.:-]. */
int stripe_event_name_valid(const char *s);

/* Seal secret into b (b->org_id and b->mode set first): b owns the result. */
int billing_seal_secret(const unsigned char key[SEAL_KEY_LEN], struct billing_settings *b,
			const char *secret);

/* Open b's secret: *out malloc'd, NUL-terminated (caller scrubs and frees). */
int billing_open_secret(const unsigned char key[SEAL_KEY_LEN], const struct billing_settings *b,
			char **out, size_t *len);

#endif
