/*
 * API key generation and checking; see apikey.h. Base32 here is RFC 4648's
 * alphabet in lower case, without padding; unused trailing bits must be
 * zero so that every key has exactly one spelling.
 */
#include "auth/apikey.h"

#include <openssl/crypto.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "core/rand.h"
#include "core/banned.h"

static const char b32[] = "abcdefghijklmnopqrstuvwxyz234567";
static const char *const prefixes[2] = {"nx_live_", "nx_test_"};

static void b32_encode(const unsigned char *p, size_t n, char *out, size_t nout)
{
	size_t bit = 0;

	for (size_t i = 0; i < nout; i++, bit += 5) {
		unsigned v = 0;

		for (int j = 0; j < 5; j++) {
			size_t b = bit + (size_t)j;

			v <<= 1;
			if (b / 8 < n)
				v |= (p[b / 8] >> (7 - b % 8)) & 1;
		}
		out[i] = b32[v];
	}
}

/* Decode nin chars into n bytes; 0 if every char is in the alphabet and the
 * bits past n*8 are zero. */
static int b32_decode(const char *s, size_t nin, unsigned char *out, size_t n)
{
	uint64_t acc = 0;
	size_t o = 0;
	int bits = 0;

	for (size_t i = 0; i < nin; i++) {
		unsigned char ch = (unsigned char)s[i];
		unsigned v;

		if (ch >= 'a' && ch <= 'z')
			v = ch - 'a';
		else if (ch >= '2' && ch <= '7')
			v = ch - '2' + 26;
		else
			return -1;
		acc = acc << 5 | v;
		bits += 5;
		if (bits >= 8) {
			bits -= 8;
			if (o == n)
				return -1;
			out[o++] = (unsigned char)(acc >> bits);
		}
	}
	/* what is left is padding: it must be zero, and every byte filled */
	return o == n && (acc & ((1u << bits) - 1)) == 0 ? 0 : -1;
}

static void checksum(const char *prefix_and_body, char *out)
{
	unsigned char h[crypto_hash_sha256_BYTES];

	crypto_hash_sha256(h, (const unsigned char *)prefix_and_body,
			   APIKEY_PREFIX_LEN + APIKEY_BODY_LEN);
	b32_encode(h, 4, out, APIKEY_SUM_LEN);
}

int apikey_generate(int kind, char *out)
{
	unsigned char r[32];

	if (kind != KEY_LIVE && kind != KEY_TEST)
		return E(INTERNAL);
	if (rand_bytes(r, sizeof(r)))
		return E(INTERNAL);
	memcpy(out, prefixes[kind], APIKEY_PREFIX_LEN);
	b32_encode(r, sizeof(r), out + APIKEY_PREFIX_LEN, APIKEY_BODY_LEN);
	checksum(out, out + APIKEY_PREFIX_LEN + APIKEY_BODY_LEN);
	out[APIKEY_LEN] = '\0';
	return 0;
}

int apikey_parse(const char *s, size_t len, int *kind, char *lookup)
{
	unsigned char body[32], sum[4];
	char want[APIKEY_SUM_LEN];
	int k;

	if (len != APIKEY_LEN)
		return E(UNAUTHORIZED);
	if (!memcmp(s, prefixes[KEY_LIVE], APIKEY_PREFIX_LEN))
		k = KEY_LIVE;
	else if (!memcmp(s, prefixes[KEY_TEST], APIKEY_PREFIX_LEN))
		k = KEY_TEST;
	else
		return E(UNAUTHORIZED);
	if (b32_decode(s + APIKEY_PREFIX_LEN, APIKEY_BODY_LEN, body, sizeof(body)) ||
	    b32_decode(s + APIKEY_PREFIX_LEN + APIKEY_BODY_LEN, APIKEY_SUM_LEN, sum, sizeof(sum)))
		return E(UNAUTHORIZED);
	checksum(s, want);
	if (CRYPTO_memcmp(want, s + APIKEY_PREFIX_LEN + APIKEY_BODY_LEN, APIKEY_SUM_LEN))
		return E(UNAUTHORIZED);
	*kind = k;
	memcpy(lookup, s + APIKEY_PREFIX_LEN, KEY_LOOKUP_LEN);
	lookup[KEY_LOOKUP_LEN] = '\0';
	return 0;
}

void apikey_hash(const char *s, size_t len, unsigned char out[32])
{
	crypto_hash_sha256(out, (const unsigned char *)s, len);
}

int apikey_hash_equal(const unsigned char a[32], const unsigned char b[32])
{
	return CRYPTO_memcmp(a, b, 32) == 0;
}

int apikey_secret_equal(const char *a, const char *b, size_t n)
{
	return CRYPTO_memcmp(a, b, n) == 0;
}

int apikey_new_row(const char *org_id, int kind, const char *name, long long now,
		   struct api_key *row, char *secret)
{
	memset(row, 0, sizeof(*row));
	if (apikey_generate(kind, secret) || rand_id(row->key_id, "key_", 8))
		return E(INTERNAL);
	snprintf(row->org_id, sizeof(row->org_id), "%s", org_id);
	memcpy(row->lookup, secret + APIKEY_PREFIX_LEN, KEY_LOOKUP_LEN);
	apikey_hash(secret, APIKEY_LEN, row->hash);
	row->kind = kind;
	snprintf(row->name, sizeof(row->name), "%s", name ? name : "");
	memcpy(row->prefix, secret, KEY_PREFIX_LEN);
	row->created_at = now;
	return 0;
}
