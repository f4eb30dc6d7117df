/* Stripe connection fields and their sealing; see settings.h. */
#include "billing/settings.h"

#include <stdio.h>
#include <string.h>

#include "core/banned.h"

static int word_chars(const char *s, const char *extra)
{
	for (; *s; s++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
		      (*s >= '0' && *s <= '9') || *s == '_' || (extra && strchr(extra, *s))))
			return 0;
	return 1;
}

const char *stripe_key_mode(const char *secret)
{
	static const struct {
		const char *prefix, *mode;
	} kinds[] = {{"sk_live_", "live"}, {"rk_live_", "live"},
		     {"sk_test_", "test"}, {"rk_test_", "test"}};
	size_t n = strlen(secret);

	if (n > STRIPE_FIELD_MAX || !word_chars(secret, NULL))
		return NULL;
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (!strncmp(secret, kinds[i].prefix, 8) && n >= 8 + STRIPE_SECRET_MIN)
			return kinds[i].mode;
	return NULL;
}

int stripe_customer_valid(const char *s)
{
	size_t n = strlen(s);

	return n > 4 && n <= STRIPE_FIELD_MAX && !strncmp(s, "cus_", 4) && word_chars(s, NULL);
}

int stripe_event_name_valid(const char *s)
{
	size_t n = strlen(s);

	return n >= 1 && n <= STRIPE_EVENT_NAME_MAX && word_chars(s, ".:-");
}

static void seal_ad(const struct billing_settings *b, char *out, size_t outsz)
{
	snprintf(out, outsz, "stripe:%s/%s", b->org_id, b->mode);
}

int billing_seal_secret(const unsigned char key[SEAL_KEY_LEN], struct billing_settings *b,
			const char *secret)
{
	char ad[ID_MAX + 32];

	seal_ad(b, ad, sizeof(ad));
	return seal(key, secret, strlen(secret), ad, &b->secret_sealed, &b->secret_sealed_len);
}

int billing_open_secret(const unsigned char key[SEAL_KEY_LEN], const struct billing_settings *b,
			char **out, size_t *len)
{
	char ad[ID_MAX + 32];

	seal_ad(b, ad, sizeof(ad));
	return unseal(key, b->secret_sealed, b->secret_sealed_len, ad, out, len);
}
