/*
 * delegation/sign: both webhook signature schemes against values computed
 * independently, with Python's standard library (hmac, hashlib, base64),
 * and the Standard Webhooks specification's own published example.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "delegation/sign.h"
#include "test.h"

/* RFC 4231 test case 2 (also: python3 -c "import hmac,hashlib;
 * print(hmac.new(b'Jefe', b'what do ya want for nothing?',
 * hashlib.sha256).hexdigest())"). */
TEST(sign_hmac_rfc4231)
{
	const char *msg = "what do ya want for nothing?";
	unsigned char mac[SIGN_MAC_LEN];
	char hex[65];

	sign_hmac_hex("Jefe", 4, msg, strlen(msg), hex);
	ASSERT_STR_EQ(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
	ASSERT_EQ(sign_hmac("Jefe", 4, msg, strlen(msg), mac), 0);
	ASSERT_EQ(mac[0], 0x5b);
	ASSERT_EQ(mac[31], 0x43);
}

/*
 * Expected values from
 *   'sha256=' + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
 * in python3.
 */
TEST(sign_nexra_matches_python)
{
	static const struct {
		const char *secret, *body, *want;
	} cases[] = {
		{"replace-with-32-char-secret-0123456789",
		 "{\"delegation_id\":\"del_1\",\"capability\":\"summarize\"}",
		 "sha256=144c49176387509dcf1e0a4bcce31b8f35227793ab24698e4d337c533d4de043"},
		{"", "", "sha256=b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad"},
		{"k", "hello", "sha256=406e4b43f87095aa86ca6299d25e875921fefa180f02043bb29bec5681c0c2d0"},
	};
	char out[SIGN_NEXRA_LEN + 1];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(out, 'X', sizeof(out));
		sign_nexra(cases[i].secret, strlen(cases[i].secret), cases[i].body,
			   strlen(cases[i].body), out);
		ASSERT_STR_EQ(out, cases[i].want);
		ASSERT_EQ(strlen(out), SIGN_NEXRA_LEN);
	}
}

/* A key longer than SHA-256's block is hashed first: 'x' * 100 over
 * 'a' * 1000, same Python expression. */
TEST(sign_nexra_long_key)
{
	char key[100], body[1000], out[SIGN_NEXRA_LEN + 1];

	memset(key, 'x', sizeof(key));
	memset(body, 'a', sizeof(body));
	sign_nexra(key, sizeof(key), body, sizeof(body), out);
	ASSERT_STR_EQ(out, "sha256=77443b5ec22f5fb939e1153ed5ca35cd0eccef77df0e5055a4d9409a7b8fba7f");
}

/* An empty key between two keyed calls must not reuse the previous key
 * (OpenSSL's HMAC keeps the old key when given NULL). */
TEST(sign_hmac_empty_key_after_other_key)
{
	char a[65], b[65], c[65];

	sign_hmac_hex("k", 1, "", 0, a);
	sign_hmac_hex(NULL, 0, "", 0, b);
	sign_hmac_hex("", 0, NULL, 0, c);
	ASSERT_STR_EQ(b, "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
	ASSERT_STR_EQ(c, b);
	ASSERT(strcmp(a, b));
}

/* The example in the Standard Webhooks repository's own tests
 * (libraries/python/tests/test_webhooks.py, test_sign_function). */
TEST(sign_standard_spec_example)
{
	const char *secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
	const char *body = "{\"test\": 2432232314}";
	char out[SIGN_STANDARD_LEN + 1];

	ASSERT_EQ(sign_standard(secret, strlen(secret), "msg_p5jXN8AQM9LWM0D4loKWxJek",
				1614265330, body, strlen(body), out),
		  0);
	ASSERT_STR_EQ(out, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
	ASSERT_EQ(strlen(out), SIGN_STANDARD_LEN);
}

/*
 * Expected values from python3:
 *   key = base64.b64decode(secret[6:]) if secret.startswith('whsec_')
 *         else secret.encode()
 *   'v1,' + base64.b64encode(hmac.new(key, f"{id}.{ts}.".encode() + body,
 *                                     hashlib.sha256).digest()).decode()
 */
TEST(sign_standard_matches_python)
{
	static const struct {
		const char *secret, *id;
		int64_t ts;
		const char *body, *want;
	} cases[] = {
		/* without the prefix the secret's own bytes are the key */
		{"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330,
		 "{\"test\": 2432232314}", "v1,ELhqG0Ku1gwOc1f4jyKdp3SFGFLAOdJ9bvpWLciCakI="},
		/* padded base64 */
		{"whsec_c2VjcmV0LW9mLWEtcm90YXRlZC1lbmRwb2ludA==", "msg_1", 1700000000, "{}",
		 "v1,cPHz4E4M0nHZUtcAYWgtE+A8mvaZ7RpKUmTNgRszRRU="},
		/* the same secret without its padding decodes to the same key */
		{"whsec_c2VjcmV0LW9mLWEtcm90YXRlZC1lbmRwb2ludA", "msg_1", 1700000000, "{}",
		 "v1,cPHz4E4M0nHZUtcAYWgtE+A8mvaZ7RpKUmTNgRszRRU="},
		/* negative timestamp, empty body */
		{"plain-secret", "msg_2", -5, "", "v1,ZzeaGV4xpYLgSpC0zAh1+0t+6GhoytHAN2/T6Rd+Ybg="},
	};
	char out[SIGN_STANDARD_LEN + 1];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ASSERT_EQ(sign_standard(cases[i].secret, strlen(cases[i].secret), cases[i].id,
					cases[i].ts, cases[i].body, strlen(cases[i].body), out),
			  0);
		ASSERT_STR_EQ(out, cases[i].want);
	}
}

/* A whsec_ key too big for the stack buffer: base64 of bytes 0..255 twice
 * (512 bytes), msg_3, timestamp 0, body "x"; same Python expression. */
TEST(sign_standard_long_whsec_key)
{
	unsigned char raw[512];
	char secret[6 + 684 + 1], out[SIGN_STANDARD_LEN + 1];
	static const char b64[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t n = 6;

	for (size_t i = 0; i < sizeof(raw); i++)
		raw[i] = (unsigned char)i;
	memcpy(secret, "whsec_", 6);
	for (size_t i = 0; i < sizeof(raw); i += 3) {
		unsigned v = (unsigned)raw[i] << 16;
		size_t left = sizeof(raw) - i;

		v |= left > 1 ? (unsigned)raw[i + 1] << 8 : 0;
		v |= left > 2 ? raw[i + 2] : 0;
		secret[n++] = b64[v >> 18 & 63];
		secret[n++] = b64[v >> 12 & 63];
		secret[n++] = left > 1 ? b64[v >> 6 & 63] : '=';
		secret[n++] = left > 2 ? b64[v & 63] : '=';
	}
	secret[n] = '\0';
	ASSERT_EQ(n, 6 + 684);
	ASSERT_EQ(sign_standard(secret, n, "msg_3", 0, "x", 1, out), 0);
	ASSERT_STR_EQ(out, "v1,JTUG+5cY2gDw7GNHrAoqs5fKtDDUv/k3FbjDiJIjv/4=");
}

TEST(sign_standard_bad_whsec)
{
	static const char *const bad[] = {
		"whsec_not base64!",
		"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS",   /* 31 chars: a dangling 6 bits */
		"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw=", /* padding where none belongs */
		"whsec_c2VjcmV0LW9mLWEtcm90YXRlZC1lbmRwb2ludB==", /* non-zero pad bits */
		"whsec_MfKQ9r8G_YqrTwjUPD8ILPZIo2LaLaSw",  /* URL alphabet */
	};
	char out[SIGN_STANDARD_LEN + 1];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(out, 'X', sizeof(out));
		if (sign_standard(bad[i], strlen(bad[i]), "m", 1, "{}", 2, out) != E(VALIDATION))
			FAIL_AT("accepted %s", bad[i]);
		ASSERT_STR_EQ(out, "");
	}
	/* "whsec_" alone is the empty key, which is base64 of nothing */
	ASSERT_EQ(sign_standard("whsec_", 6, "m", 1, "{}", 2, out), 0);
	/* the prefix is case-sensitive: WHSEC_ is a plain secret */
	ASSERT_EQ(sign_standard("WHSEC_!!", 8, "m", 1, "{}", 2, out), 0);
}

/* The id, timestamp and body are each bound: changing any one changes the
 * signature, and "a.b" + "c" is not "a" + "b.c". */
TEST(sign_standard_binds_every_part)
{
	char base[SIGN_STANDARD_LEN + 1], o[SIGN_STANDARD_LEN + 1];

	ASSERT_EQ(sign_standard("s", 1, "msg_1", 100, "{}", 2, base), 0);
	ASSERT_EQ(sign_standard("s", 1, "msg_2", 100, "{}", 2, o), 0);
	ASSERT(strcmp(base, o));
	ASSERT_EQ(sign_standard("s", 1, "msg_1", 101, "{}", 2, o), 0);
	ASSERT(strcmp(base, o));
	ASSERT_EQ(sign_standard("s", 1, "msg_1", 100, "{ }", 3, o), 0);
	ASSERT(strcmp(base, o));
	ASSERT_EQ(sign_standard("t", 1, "msg_1", 100, "{}", 2, o), 0);
	ASSERT(strcmp(base, o));
	ASSERT_EQ(sign_standard("s", 1, "msg_1", 100, "{}", 2, o), 0);
	ASSERT_STR_EQ(base, o);
}

static void *sign_in_thread(void *arg)
{
	char *out = arg;

	sign_nexra("k", 1, "hello", 5, out);
	return NULL;
}

/* Each thread gets its own context, freed when the thread ends (a leak
 * here shows up under ASan). */
TEST(sign_threads)
{
	char outs[4][SIGN_NEXRA_LEN + 1];
	pthread_t t[4];

	for (int i = 0; i < 4; i++)
		ASSERT_EQ(pthread_create(&t[i], NULL, sign_in_thread, outs[i]), 0);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < 4; i++)
		ASSERT_STR_EQ(outs[i],
			      "sha256=406e4b43f87095aa86ca6299d25e875921fefa180f02043bb29bec5681c0c2d0");
}
