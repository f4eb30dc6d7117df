/*
 * auth/apikey: key format (docs/keys.md), checksum, one spelling per key,
 * and the bearer header / agent id helpers of auth.h.
 */
#include <openssl/sha.h>
#include <string.h>

#include "auth/apikey.h"
#include "auth/auth.h"
#include "core/err.h"
#include "test.h"

static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";

/* RFC 4648 base32, lower case, no padding: the test's own encoder. */
static void b32(const unsigned char *p, size_t n, char *out, size_t nout)
{
	for (size_t i = 0; i < nout; i++) {
		unsigned v = 0;

		for (size_t j = 0; j < 5; j++) {
			size_t bit = i * 5 + j;

			v = v << 1 | (bit / 8 < n ? (p[bit / 8] >> (7 - bit % 8)) & 1u : 0u);
		}
		out[i] = alphabet[v];
	}
}

/* Recompute the 7-character checksum of key[0..60) into key[60..67). */
static void fix_checksum(char *key)
{
	unsigned char h[32];

	SHA256((const unsigned char *)key, APIKEY_PREFIX_LEN + APIKEY_BODY_LEN, h);
	b32(h, 4, key + APIKEY_PREFIX_LEN + APIKEY_BODY_LEN, APIKEY_SUM_LEN);
}

static int parse(const char *s, int *kind, char *lookup)
{
	return apikey_parse(s, strlen(s), kind, lookup);
}

TEST(apikey_generate_parse_round_trip)
{
	static const char *const prefix[2] = {"nx_live_", "nx_test_"};

	for (int kind = KEY_LIVE; kind <= KEY_TEST; kind++) {
		for (int i = 0; i < 50; i++) {
			char key[APIKEY_LEN + 1], again[APIKEY_LEN + 1];
			char lookup[KEY_LOOKUP_LEN + 1];
			int k = -1;

			ASSERT_EQ(apikey_generate(kind, key), 0);
			ASSERT_EQ(strlen(key), 67);
			ASSERT_EQ(APIKEY_LEN, 67);
			ASSERT(!memcmp(key, prefix[kind], 8));
			for (int j = 8; j < 67; j++)
				ASSERT(strchr(alphabet, key[j]));
			ASSERT_EQ(parse(key, &k, lookup), 0);
			ASSERT_EQ(k, kind);
			ASSERT_EQ(strlen(lookup), 12);
			ASSERT(!memcmp(lookup, key + 8, 12));
			/* our encoder agrees: same checksum from the same body */
			memcpy(again, key, sizeof(again));
			fix_checksum(again);
			ASSERT_STR_EQ(again, key);
			/* body pad bits are zero: the last body char is a multiple of 16 */
			ASSERT_EQ((strchr(alphabet, key[59]) - alphabet) & 15, 0);
		}
	}
	{
		char key[APIKEY_LEN + 1];

		ASSERT_EQ(apikey_generate(2, key), E(INTERNAL));
		ASSERT_EQ(apikey_generate(-1, key), E(INTERNAL));
	}
}

TEST(apikey_every_single_substitution_is_refused)
{
	static const char others[] = "abcdefghijklmnopqrstuvwxyz234567018ABZ_-=+/ .\x80";
	char key[APIKEY_LEN + 1], bad[APIKEY_LEN + 1], lookup[KEY_LOOKUP_LEN + 1];
	int kind, tried = 0;

	ASSERT_EQ(apikey_generate(KEY_LIVE, key), 0);
	for (int pos = 0; pos < APIKEY_LEN; pos += (pos < 10 || pos > 55) ? 1 : 3) {
		for (const char *c = others; *c; c++) {
			if (*c == key[pos])
				continue;
			memcpy(bad, key, sizeof(bad));
			bad[pos] = *c;
			if (parse(bad, &kind, lookup) != E(UNAUTHORIZED))
				FAIL_AT("key with position %d changed to '%c' accepted: %s", pos, *c,
					bad);
			tried++;
		}
	}
	ASSERT(tried > 1000);
	/* transposition of two neighbours in the body */
	memcpy(bad, key, sizeof(bad));
	for (int pos = 8; pos < 66; pos++) {
		char t;

		if (bad[pos] == bad[pos + 1])
			continue;
		t = bad[pos];
		bad[pos] = bad[pos + 1];
		bad[pos + 1] = t;
		ASSERT_EQ(parse(bad, &kind, lookup), E(UNAUTHORIZED));
		memcpy(bad, key, sizeof(bad));
	}
}

TEST(apikey_malformed_refused)
{
	char key[APIKEY_LEN + 1], bad[APIKEY_LEN + 8], lookup[KEY_LOOKUP_LEN + 1];
	int kind = -1;

	ASSERT_EQ(apikey_generate(KEY_TEST, key), 0);
	/* wrong prefixes, with a checksum that is right for them */
	static const char *const prefixes[] = {"nx_prod_", "NX_TEST_", "nx-test_", "xx_test_",
					       "nx_tesT_", "nx_live-"};
	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
		memcpy(bad, key, APIKEY_LEN + 1);
		memcpy(bad, prefixes[i], 8);
		fix_checksum(bad);
		ASSERT_EQ(parse(bad, &kind, lookup), E(UNAUTHORIZED));
	}
	/* uppercase body (the alphabet is lower case only), checksum recomputed */
	memcpy(bad, key, APIKEY_LEN + 1);
	for (int i = 8; i < 60; i++)
		if (bad[i] >= 'a' && bad[i] <= 'z')
			bad[i] = (char)(bad[i] - 'a' + 'A');
	fix_checksum(bad);
	ASSERT_EQ(parse(bad, &kind, lookup), E(UNAUTHORIZED));
	/* whole key upper case */
	memcpy(bad, key, APIKEY_LEN + 1);
	for (int i = 0; i < APIKEY_LEN; i++)
		if (bad[i] >= 'a' && bad[i] <= 'z')
			bad[i] = (char)(bad[i] - 'a' + 'A');
	ASSERT_EQ(parse(bad, &kind, lookup), E(UNAUTHORIZED));
	/* lengths */
	for (size_t n = 0; n < APIKEY_LEN; n++)
		ASSERT_EQ(apikey_parse(key, n, &kind, lookup), E(UNAUTHORIZED));
	memcpy(bad, key, APIKEY_LEN);
	memcpy(bad + APIKEY_LEN, "a", 2);
	ASSERT_EQ(parse(bad, &kind, lookup), E(UNAUTHORIZED));
	/* an embedded NUL */
	memcpy(bad, key, APIKEY_LEN + 1);
	bad[20] = '\0';
	ASSERT_EQ(apikey_parse(bad, APIKEY_LEN, &kind, lookup), E(UNAUTHORIZED));
	ASSERT_EQ(kind, -1); /* untouched */
}

TEST(apikey_nonzero_pad_bits_refused)
{
	char key[APIKEY_LEN + 1], bad[APIKEY_LEN + 1], lookup[KEY_LOOKUP_LEN + 1];
	int kind;
	long v;

	ASSERT_EQ(apikey_generate(KEY_LIVE, key), 0);
	/* body: 52 chars = 260 bits for 256; set each of the 4 pad bits in turn
	 * and give the key the checksum that is right for its text */
	for (int bit = 0; bit < 4; bit++) {
		memcpy(bad, key, sizeof(bad));
		v = strchr(alphabet, bad[59]) - alphabet;
		bad[59] = alphabet[v | (1 << bit)];
		fix_checksum(bad);
		ASSERT(strcmp(bad, key));
		ASSERT_EQ(parse(bad, &kind, lookup), E(UNAUTHORIZED));
	}
	/* checksum: 7 chars = 35 bits for 32; 3 pad bits */
	for (int bit = 0; bit < 3; bit++) {
		memcpy(bad, key, sizeof(bad));
		v = strchr(alphabet, bad[66]) - alphabet;
		ASSERT_EQ(v & 7, 0);
		bad[66] = alphabet[v | (1 << bit)];
		ASSERT_EQ(parse(bad, &kind, lookup), E(UNAUTHORIZED));
	}
	/* control: the same crafting with the pad bits left alone is accepted */
	memcpy(bad, key, sizeof(bad));
	v = strchr(alphabet, bad[58]) - alphabet;
	bad[58] = alphabet[v ^ 1];
	fix_checksum(bad);
	ASSERT_EQ(parse(bad, &kind, lookup), 0);
}

TEST(apikey_hash_equal)
{
	unsigned char a[32], b[32];
	char key[APIKEY_LEN + 1];

	ASSERT_EQ(apikey_generate(KEY_LIVE, key), 0);
	apikey_hash(key, APIKEY_LEN, a);
	apikey_hash(key, APIKEY_LEN, b);
	ASSERT_EQ(apikey_hash_equal(a, b), 1);
	{
		unsigned char want[32];

		SHA256((const unsigned char *)key, APIKEY_LEN, want);
		ASSERT(!memcmp(a, want, 32));
	}
	for (int i = 0; i < 32; i++) {
		b[i] ^= 0x01;
		ASSERT_EQ(apikey_hash_equal(a, b), 0);
		b[i] ^= 0x01;
	}
	b[31] ^= 0x80;
	ASSERT_EQ(apikey_hash_equal(a, b), 0);
	ASSERT_EQ(apikey_secret_equal("abcdef", "abcdef", 6), 1);
	ASSERT_EQ(apikey_secret_equal("abcdef", "abcdeg", 6), 0);
	ASSERT_EQ(apikey_secret_equal("abcdef", "abcdeg", 5), 1);
}

TEST(apikey_new_row_fields)
{
	struct api_key row, row2;
	char secret[APIKEY_LEN + 1], secret2[APIKEY_LEN + 1], lookup[KEY_LOOKUP_LEN + 1];
	unsigned char h[32];
	int kind = -1;

	ASSERT_EQ(apikey_new_row("org_0123456789abcdef", KEY_TEST, "ci key", 1700000000, &row,
				 secret),
		  0);
	ASSERT_EQ(strlen(secret), 67);
	ASSERT(!strncmp(secret, "nx_test_", 8));
	ASSERT_EQ(parse(secret, &kind, lookup), 0);
	ASSERT_EQ(kind, KEY_TEST);
	ASSERT_EQ(row.kind, KEY_TEST);
	ASSERT_STR_EQ(row.org_id, "org_0123456789abcdef");
	ASSERT_STR_EQ(row.name, "ci key");
	ASSERT_EQ(row.created_at, 1700000000);
	ASSERT_EQ(row.revoked_at, 0);
	ASSERT_STR_EQ(row.lookup, lookup);
	ASSERT(!memcmp(row.lookup, secret + 8, 12));
	ASSERT_EQ(strlen(row.prefix), 16);
	ASSERT(!memcmp(row.prefix, secret, 16));
	ASSERT_EQ(strlen(row.key_id), 20);
	ASSERT(!strncmp(row.key_id, "key_", 4));
	for (int i = 4; i < 20; i++)
		ASSERT(strchr("0123456789abcdef", row.key_id[i]));
	apikey_hash(secret, APIKEY_LEN, h);
	ASSERT(!memcmp(row.hash, h, 32));

	ASSERT_EQ(apikey_new_row("org_x", KEY_LIVE, NULL, 1, &row2, secret2), 0);
	ASSERT_STR_EQ(row2.name, "");
	ASSERT(!strncmp(secret2, "nx_live_", 8));
	ASSERT(strcmp(row.key_id, row2.key_id));
	ASSERT(strcmp(secret, secret2));
	ASSERT(strcmp(row.lookup, row2.lookup));
}

TEST(auth_bearer_extracts_token)
{
	static const struct {
		const char *h, *tok;
	} cases[] = {
		{"Bearer abc", "abc"},     {"bearer abc", "abc"},      {"BEARER   abc  ", "abc"},
		{"Bearer a b", "a b"},     {"Bearer", NULL},           {"Bearer ", NULL},
		{"Bearer    ", NULL},      {"Basic abc", NULL},        {"Bearerabc", NULL},
		{"", NULL},                {" Bearer abc", NULL},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len = 12345;
		const char *t = auth_bearer(cases[i].h, &len);

		if (!cases[i].tok) {
			if (t)
				FAIL_AT("auth_bearer(\"%s\") gave a token", cases[i].h);
			continue;
		}
		if (!t || len != strlen(cases[i].tok) || memcmp(t, cases[i].tok, len))
			FAIL_AT("auth_bearer(\"%s\") wrong", cases[i].h);
	}
	{
		size_t len = 0;

		ASSERT(auth_bearer(NULL, &len) == NULL);
	}
}

TEST(auth_agent_id_valid)
{
	char id[AGENT_ID_MAX + 2];

	ASSERT_EQ(agent_id_valid("research-agent-v2"), 1);
	ASSERT_EQ(agent_id_valid("a"), 1);
	ASSERT_EQ(agent_id_valid("A.b_c:d-9"), 1);
	ASSERT_EQ(agent_id_valid("9lives"), 1);
	ASSERT_EQ(agent_id_valid(""), 0);
	ASSERT_EQ(agent_id_valid(NULL), 0);
	ASSERT_EQ(agent_id_valid("-a"), 0);
	ASSERT_EQ(agent_id_valid(".a"), 0);
	ASSERT_EQ(agent_id_valid("_a"), 0);
	ASSERT_EQ(agent_id_valid("a b"), 0);
	ASSERT_EQ(agent_id_valid("a/b"), 0);
	ASSERT_EQ(agent_id_valid("caf\xc3\xa9"), 0);
	memset(id, 'a', AGENT_ID_MAX);
	id[AGENT_ID_MAX] = '\0';
	ASSERT_EQ(agent_id_valid(id), 1);
	id[AGENT_ID_MAX] = 'a';
	id[AGENT_ID_MAX + 1] = '\0';
	ASSERT_EQ(agent_id_valid(id), 0);
}
