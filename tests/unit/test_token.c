/*
 * delegation/token: the exact bytes token_sign produces (checked against
 * Python), RFC 7515's HS256 example, round trips, and every way
 * token_verify must say no.
 */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"
#include "delegation/sign.h"
#include "delegation/token.h"
#include "test.h"

static const unsigned char KEY[] = "callee-webhook-secret-0123456789";
#define KEYLEN (sizeof(KEY) - 1)
#define NOW 1700000000

static struct token_claims claims(void)
{
	struct token_claims c = {
		.sub = "agt_caller",
		.aud = "agt_callee",
		.org_id = "org_1",
		.scope = "summarize",
		.jti = "del_abc",
		.budget_cap_micros = 150000,
		.iat = NOW,
		.nbf = NOW,
		.exp = NOW + 300,
	};
	return c;
}

/* base64url (no padding) of n bytes, appended to b */
static void add_b64url(struct buf *b, const void *p, size_t n)
{
	char tmp[8192];

	sodium_bin2base64(tmp, sizeof(tmp), p, n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	buf_adds(b, tmp);
}

/* A token over any header and payload JSON, signed with key: for the
 * cases token_sign would never produce. */
static char *forge(const char *header, const char *payload, const unsigned char *key,
		   size_t keylen)
{
	unsigned char mac[SIGN_MAC_LEN];
	struct buf b;

	buf_init(&b, 1 << 16);
	add_b64url(&b, header, strlen(header));
	buf_adds(&b, ".");
	add_b64url(&b, payload, strlen(payload));
	sign_hmac(key, keylen, b.data, b.len, mac);
	buf_adds(&b, ".");
	add_b64url(&b, mac, sizeof(mac));
	return buf_detach(&b, NULL);
}

static const char *HDR = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";

/* A full claim set with one member replaced (or dropped when val is NULL). */
static char *payload_with(const char *name, const char *val)
{
	static const char *const names[] = {"iss", "sub",  "aud", "org_id", "scope",
					    "budget_cap_usd", "jti", "iat", "nbf", "exp"};
	static const char *const vals[] = {"\"nexra\"",   "\"agt_caller\"", "\"agt_callee\"",
					   "\"org_1\"",   "\"summarize\"",  "0.15",
					   "\"del_abc\"", "1700000000",     "1700000000",
					   "1700000300"};
	struct buf b;
	int first = 1;

	buf_init(&b, 1 << 16);
	buf_adds(&b, "{");
	for (int i = 0; i < 10; i++) {
		const char *v = strcmp(names[i], name) ? vals[i] : val;

		if (!v)
			continue;
		buf_addf(&b, "%s\"%s\":%s", first ? "" : ",", names[i], v);
		first = 0;
	}
	buf_adds(&b, "}");
	return buf_detach(&b, NULL);
}

/* token_verify's reason for tok under KEY, audience agt_callee, at NOW. */
static const char *why_of(const char *tok)
{
	struct token_parsed p;
	const char *why = "unset";

	if (token_verify(tok, strlen(tok), KEY, KEYLEN, "agt_callee", NOW, 0, &p, &why))
		return why;
	return "ok";
}

/* Expected bytes from python3: header and the payload below (compact, in
 * this order) base64url-encoded without padding, joined with ".", then
 * base64url(hmac.new(KEY, signing_input, hashlib.sha256).digest()). */
TEST(token_sign_exact_bytes)
{
	struct token_claims c = claims();
	struct buf b;

	buf_init(&b, 8192);
	ASSERT_EQ(token_sign(&c, KEY, KEYLEN, &b), 0);
	/* {"iss":"nexra","sub":"agt_caller","aud":"agt_callee","org_id":"org_1",
	 *  "scope":"summarize","budget_cap_usd":0.15,"jti":"del_abc",
	 *  "iat":1700000000,"nbf":1700000000,"exp":1700000300} */
	ASSERT_STR_EQ(b.data,
		      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
		      "eyJpc3MiOiJuZXhyYSIsInN1YiI6ImFndF9jYWxsZXIiLCJhdWQiOiJhZ3RfY2FsbGVlIiwib3Jn"
		      "X2lkIjoib3JnXzEiLCJzY29wZSI6InN1bW1hcml6ZSIsImJ1ZGdldF9jYXBfdXNkIjowLjE1LCJq"
		      "dGkiOiJkZWxfYWJjIiwiaWF0IjoxNzAwMDAwMDAwLCJuYmYiOjE3MDAwMDAwMDAsImV4cCI6MTcw"
		      "MDAwMDMwMH0."
		      "dI8d-F93QtQBc-ktFdnMEel6bDzF8WOd3tJBOesTMKA");
	/* escaping, a whole-dollar cap, extreme times; payload
	 * {"iss":"nexra","sub":"a\"b\\c\n",...,"budget_cap_usd":12,...,
	 *  "iat":0,"nbf":-1,"exp":9223372036854775807}, same recipe */
	c.sub = "a\"b\\c\n";
	c.budget_cap_micros = 12000000;
	c.iat = 0;
	c.nbf = -1;
	c.exp = INT64_MAX;
	buf_reset(&b);
	ASSERT_EQ(token_sign(&c, KEY, KEYLEN, &b), 0);
	ASSERT_STR_EQ(b.data,
		      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
		      "eyJpc3MiOiJuZXhyYSIsInN1YiI6ImFcImJcXGNcbiIsImF1ZCI6ImFndF9jYWxsZWUiLCJvcmdf"
		      "aWQiOiJvcmdfMSIsInNjb3BlIjoic3VtbWFyaXplIiwiYnVkZ2V0X2NhcF91c2QiOjEyLCJqdGki"
		      "OiJkZWxfYWJjIiwiaWF0IjowLCJuYmYiOi0xLCJleHAiOjkyMjMzNzIwMzY4NTQ3NzU4MDd9."
		      "im-1FsEohSy-gSL64ktGrzxiZ-RKwwR1Rzi3Tt9-Y6U");
	buf_release(&b);
}

/*
 * RFC 7515 appendix A.1: the HS256 example JWS and its JWK key. Its claims
 * are not ours, so token_verify must get past the header and the MAC and
 * stop at the claims ("missing claim"), and say "bad signature" under any
 * other key; the MAC is also recomputed directly.
 */
TEST(token_rfc7515_a1)
{
	static const char jws[] =
		"eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"
		".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9p"
		"c19yb290Ijp0cnVlfQ"
		".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
	static const char k64[] = "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0"
				  "iPS4hcgUuTwjAzZr1Z9CAow";
	unsigned char key[64], mac[SIGN_MAC_LEN], want[SIGN_MAC_LEN];
	size_t keylen = 0, n = 0;
	struct token_parsed p;
	const char *why = NULL, *sig = strrchr(jws, '.');

	ASSERT_EQ(sodium_base642bin(key, sizeof(key), k64, strlen(k64), NULL, &keylen, NULL,
				    sodium_base64_VARIANT_URLSAFE_NO_PADDING),
		  0);
	ASSERT_EQ(keylen, 64);
	ASSERT_EQ(sodium_base642bin(want, sizeof(want), sig + 1, strlen(sig + 1), NULL, &n, NULL,
				    sodium_base64_VARIANT_URLSAFE_NO_PADDING),
		  0);
	ASSERT_EQ(sign_hmac(key, keylen, jws, (size_t)(sig - jws), mac), 0);
	ASSERT(!memcmp(mac, want, sizeof(mac)));

	ASSERT_EQ(token_verify(jws, strlen(jws), key, keylen, NULL, 1300819379, 0, &p, &why),
		  E(UNAUTHORIZED));
	ASSERT_STR_EQ(why, "missing claim");
	key[0] ^= 1;
	ASSERT_EQ(token_verify(jws, strlen(jws), key, keylen, NULL, 1300819379, 0, &p, &why),
		  E(UNAUTHORIZED));
	ASSERT_STR_EQ(why, "bad signature");
}

TEST(token_round_trip)
{
	static const int64_t caps[] = {0, 1, 150000, 12000000, 123456789012LL, 999999999999999LL};
	struct token_claims c = claims();
	struct token_parsed p;
	const char *why = "unset";
	struct buf b;

	buf_init(&b, 8192);
	for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
		c.budget_cap_micros = caps[i];
		buf_reset(&b);
		ASSERT_EQ(token_sign(&c, KEY, KEYLEN, &b), 0);
		ASSERT_EQ(token_verify(b.data, b.len, KEY, KEYLEN, "agt_callee", NOW, 0, &p, &why),
			  0);
		ASSERT(why == NULL);
		ASSERT_EQ(p.budget_cap_micros, caps[i]);
	}
	ASSERT_STR_EQ(p.iss, "nexra");
	ASSERT_STR_EQ(p.sub, "agt_caller");
	ASSERT_STR_EQ(p.aud, "agt_callee");
	ASSERT_STR_EQ(p.org_id, "org_1");
	ASSERT_STR_EQ(p.scope, "summarize");
	ASSERT_STR_EQ(p.jti, "del_abc");
	ASSERT_EQ(p.iat, NOW);
	ASSERT_EQ(p.nbf, NOW);
	ASSERT_EQ(p.exp, NOW + 300);
	/* payloads of every length mod 3 encode (and decode, strictly) right */
	for (int len = 1; len <= 12; len++) {
		char jti[16];

		memset(jti, 'j', (size_t)len);
		jti[len] = '\0';
		c = claims();
		c.jti = jti;
		buf_reset(&b);
		ASSERT_EQ(token_sign(&c, KEY, KEYLEN, &b), 0);
		ASSERT_EQ(token_verify(b.data, b.len, KEY, KEYLEN, "agt_callee", NOW, 0, &p, &why),
			  0);
		ASSERT_STR_EQ(p.jti, jti);
	}
	/* no audience check */
	ASSERT_EQ(token_verify(b.data, b.len, KEY, KEYLEN, NULL, NOW, 0, &p, NULL), 0);
	/* strings that need escaping, and the longest allowed, come back as they were */
	{
		char longest[TOKEN_FIELD_MAX];

		memset(longest, 'z', sizeof(longest) - 1);
		longest[sizeof(longest) - 1] = '\0';
		c = claims();
		c.sub = "tab\there \"quoted\" back\\slash \x01 caf\xc3\xa9";
		c.scope = longest;
		buf_reset(&b);
		ASSERT_EQ(token_sign(&c, KEY, KEYLEN, &b), 0);
		ASSERT_EQ(token_verify(b.data, b.len, KEY, KEYLEN, "agt_callee", NOW, 0, &p, &why),
			  0);
		ASSERT_STR_EQ(p.sub, c.sub);
		ASSERT_STR_EQ(p.scope, longest);
	}
	/* an empty key signs and verifies (and differs from a one-byte key) */
	c = claims();
	buf_reset(&b);
	ASSERT_EQ(token_sign(&c, NULL, 0, &b), 0);
	ASSERT_EQ(token_verify(b.data, b.len, (const unsigned char *)"", 0, "agt_callee", NOW, 0,
			       &p, &why),
		  0);
	ASSERT_EQ(token_verify(b.data, b.len, (const unsigned char *)"x", 1, "agt_callee", NOW, 0,
			       &p, &why),
		  E(UNAUTHORIZED));
	buf_release(&b);
}

TEST(token_sign_appends_and_keeps_buffer_on_error)
{
	struct token_claims c = claims();
	char big[TOKEN_FIELD_MAX];
	struct buf b;
	size_t n;

	buf_init(&b, 8192);
	buf_adds(&b, "Bearer ");
	ASSERT_EQ(token_sign(&c, KEY, KEYLEN, &b), 0);
	ASSERT(!strncmp(b.data, "Bearer eyJ", 10));
	ASSERT_STR_EQ(why_of(b.data + 7), "ok");
	n = b.len;

	/* refused claims leave the buffer as it was */
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	c.jti = big; /* TOKEN_FIELD_MAX - 1 bytes: fits */
	ASSERT_EQ(token_sign(&c, KEY, KEYLEN, &b), 0);
	b.len = n;
	b.data[n] = '\0';
	c = claims();
	c.org_id = NULL;
	ASSERT_EQ(token_sign(&c, KEY, KEYLEN, &b), E(VALIDATION));
	c = claims();
	c.budget_cap_micros = -1;
	ASSERT_EQ(token_sign(&c, KEY, KEYLEN, &b), E(VALIDATION));
	{
		char over[TOKEN_FIELD_MAX + 1];

		memset(over, 'a', sizeof(over) - 1);
		over[sizeof(over) - 1] = '\0';
		c = claims();
		c.sub = over;
		ASSERT_EQ(token_sign(&c, KEY, KEYLEN, &b), E(VALIDATION));
	}
	/* short fields that escape to six bytes each overflow TOKEN_MAX_LEN */
	{
		char ctl[TOKEN_FIELD_MAX];

		memset(ctl, 0x01, sizeof(ctl) - 1);
		ctl[sizeof(ctl) - 1] = '\0';
		c = claims();
		c.sub = c.aud = c.scope = ctl;
		ASSERT_EQ(token_sign(&c, KEY, KEYLEN, &b), E(TOO_LARGE));
	}
	ASSERT_EQ(b.len, n);
	ASSERT_EQ(strlen(b.data), n);
	/* a buffer too small for the token */
	buf_release(&b);
	buf_init(&b, 100);
	c = claims();
	ASSERT_EQ(token_sign(&c, KEY, KEYLEN, &b), E(TOO_LARGE));
	ASSERT_EQ(b.len, 0);
	buf_release(&b);
}

/* Flipping any single character of any segment breaks the token. */
TEST(token_tamper_every_byte)
{
	struct token_claims c = claims();
	struct token_parsed p;
	const char *why;
	struct buf b;

	buf_init(&b, 8192);
	ASSERT_EQ(token_sign(&c, KEY, KEYLEN, &b), 0);
	for (size_t i = 0; i < b.len; i++) {
		char was = b.data[i];

		if (was == '.')
			continue;
		for (int k = 0; k < 2; k++) {
			b.data[i] = k ? (was == 'A' ? 'B' : 'A') : (char)(was ^ 0x01);
			if (!token_verify(b.data, b.len, KEY, KEYLEN, "agt_callee", NOW, 0, &p,
					  &why)) {
				b.data[i] = was;
				buf_release(&b);
				FAIL_AT("byte %zu changed and still verified", i);
			}
		}
		b.data[i] = was;
	}
	ASSERT_STR_EQ(why_of(b.data), "ok");
	/* truncated anywhere, or extended */
	for (size_t n = 0; n < b.len; n++)
		ASSERT(token_verify(b.data, n, KEY, KEYLEN, NULL, NOW, 0, &p, &why));
	buf_adds(&b, "A");
	ASSERT_STR_EQ(why_of(b.data), "bad signature");
	buf_release(&b);
}

/* Each segment swapped for another valid token's: header, payload, MAC. */
TEST(token_tamper_segments)
{
	struct token_claims c = claims();
	char *t1, *t2, *mix, *d1, *d2;
	struct buf b;

	buf_init(&b, 8192);
	ASSERT_EQ(token_sign(&c, KEY, KEYLEN, &b), 0);
	t1 = buf_detach(&b, NULL);
	c.budget_cap_micros = 99000000; /* the payload an attacker wants */
	ASSERT_EQ(token_sign(&c, KEY, KEYLEN, &b), 0);
	t2 = buf_detach(&b, NULL);
	d1 = strchr(t1, '.');
	d2 = strchr(t2, '.');
	/* t1's header and signature around t2's payload */
	buf_add(&b, t1, (size_t)(d1 - t1));
	buf_add(&b, d2, (size_t)(strrchr(t2, '.') - d2));
	buf_adds(&b, strrchr(t1, '.'));
	mix = buf_detach(&b, NULL);
	ASSERT_STR_EQ(why_of(mix), "bad signature");
	free(mix);
	/* a different (still HS256) header over the same payload and MAC */
	buf_adds(&b, "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9"); /* {"typ":"JWT","alg":"HS256"} */
	buf_adds(&b, d1);
	mix = buf_detach(&b, NULL);
	ASSERT_STR_EQ(why_of(mix), "bad signature");
	free(mix);
	free(t1);
	free(t2);
}

TEST(token_time_edges)
{
	struct token_claims c = claims();
	struct token_parsed p;
	const char *why = NULL;
	struct buf b;
	int64_t nbf = NOW, exp = NOW + 300;

	buf_init(&b, 8192);
	ASSERT_EQ(token_sign(&c, KEY, KEYLEN, &b), 0);
#define V(now, leeway) token_verify(b.data, b.len, KEY, KEYLEN, "agt_callee", (now), (leeway), &p, &why)
	/* no leeway: [nbf, exp) */
	ASSERT_EQ(V(nbf, 0), 0);
	ASSERT_EQ(V(nbf - 1, 0), E(UNAUTHORIZED));
	ASSERT_STR_EQ(why, "not yet valid");
	ASSERT_EQ(V(exp - 1, 0), 0);
	ASSERT_EQ(V(exp, 0), E(UNAUTHORIZED));
	ASSERT_STR_EQ(why, "expired");
	/* leeway 30: [nbf - 30, exp + 30) */
	ASSERT_EQ(V(nbf - 30, 30), 0);
	ASSERT_EQ(V(nbf - 31, 30), E(UNAUTHORIZED));
	ASSERT_STR_EQ(why, "not yet valid");
	ASSERT_EQ(V(exp + 29, 30), 0);
	ASSERT_EQ(V(exp + 30, 30), E(UNAUTHORIZED));
	ASSERT_STR_EQ(why, "expired");
	/* leeway is clamped to TOKEN_LEEWAY_MAX, and below at 0 */
	ASSERT_EQ(V(exp + TOKEN_LEEWAY_MAX - 1, 100000), 0);
	ASSERT_EQ(V(exp + TOKEN_LEEWAY_MAX, 100000), E(UNAUTHORIZED));
	ASSERT_EQ(V(nbf - TOKEN_LEEWAY_MAX, INT64_MAX), 0);
	ASSERT_EQ(V(nbf - TOKEN_LEEWAY_MAX - 1, INT64_MAX), E(UNAUTHORIZED));
	ASSERT_EQ(V(nbf - 1, -50), E(UNAUTHORIZED));
	ASSERT_EQ(V(exp, INT64_MIN), E(UNAUTHORIZED));
	/* extreme clocks do not overflow */
	ASSERT_EQ(V(INT64_MAX, TOKEN_LEEWAY_MAX), E(UNAUTHORIZED));
	ASSERT_STR_EQ(why, "expired");
	ASSERT_EQ(V(INT64_MIN, TOKEN_LEEWAY_MAX), E(UNAUTHORIZED));
	ASSERT_STR_EQ(why, "not yet valid");
	/* exp at the top of the range: never expires; nbf at the bottom */
	c.nbf = INT64_MIN;
	c.exp = INT64_MAX;
	buf_reset(&b);
	ASSERT_EQ(token_sign(&c, KEY, KEYLEN, &b), 0);
	ASSERT_EQ(V(INT64_MAX - 1, TOKEN_LEEWAY_MAX), 0);
	ASSERT_EQ(V(INT64_MIN, TOKEN_LEEWAY_MAX), 0);
	/* exp before nbf: nothing is valid */
	c.nbf = NOW;
	c.exp = NOW;
	buf_reset(&b);
	ASSERT_EQ(token_sign(&c, KEY, KEYLEN, &b), 0);
	ASSERT_EQ(V(NOW, 0), E(UNAUTHORIZED));
#undef V
	buf_release(&b);
}

TEST(token_wrong_key_and_aud)
{
	struct token_claims c = claims();
	struct token_parsed p;
	const char *why = NULL;
	struct buf b;

	buf_init(&b, 8192);
	ASSERT_EQ(token_sign(&c, KEY, KEYLEN, &b), 0);
	ASSERT_EQ(token_verify(b.data, b.len, KEY, KEYLEN - 1, "agt_callee", NOW, 0, &p, &why),
		  E(UNAUTHORIZED));
	ASSERT_STR_EQ(why, "bad signature");
	ASSERT_EQ(p.budget_cap_micros, 0); /* nothing read from a refused token */
	ASSERT_STR_EQ(p.sub, "");
	ASSERT_EQ(token_verify(b.data, b.len, (const unsigned char *)"other", 5, "agt_callee", NOW,
			       0, &p, &why),
		  E(UNAUTHORIZED));
	ASSERT_STR_EQ(why, "bad signature");
	ASSERT_EQ(token_verify(b.data, b.len, KEY, KEYLEN, "agt_other", NOW, 0, &p, &why),
		  E(UNAUTHORIZED));
	ASSERT_STR_EQ(why, "wrong aud");
	ASSERT_STR_EQ(p.aud, "");
	ASSERT_EQ(token_verify(b.data, b.len, KEY, KEYLEN, "agt_calle", NOW, 0, &p, &why),
		  E(UNAUTHORIZED));
	ASSERT_EQ(token_verify(b.data, b.len, KEY, KEYLEN, "", NOW, 0, &p, &why),
		  E(UNAUTHORIZED));
	buf_release(&b);
}

TEST(token_alg_pinned)
{
	static const struct {
		const char *header, *why;
	} cases[] = {
		{"{\"alg\":\"none\",\"typ\":\"JWT\"}", "alg not HS256"},
		{"{\"alg\":\"none\"}", "alg not HS256"},
		{"{\"alg\":\"HS512\",\"typ\":\"JWT\"}", "alg not HS256"},
		{"{\"alg\":\"RS256\",\"typ\":\"JWT\"}", "alg not HS256"},
		{"{\"alg\":\"hs256\",\"typ\":\"JWT\"}", "alg not HS256"},
		{"{\"alg\":\"HS256 \",\"typ\":\"JWT\"}", "alg not HS256"},
		{"{\"alg\":\"HS256\\u0000\",\"typ\":\"JWT\"}", "bad JSON"}, /* jansson refuses NUL */
		{"{\"alg\":null}", "alg not HS256"},
		{"{\"alg\":[\"HS256\"]}", "alg not HS256"},
		{"{\"typ\":\"JWT\"}", "alg not HS256"},
		{"{}", "alg not HS256"},
		{"{\"alg\":\"HS256\",\"alg\":\"none\"}", "bad JSON"}, /* duplicate key */
		{"{\"alg\":\"HS256\",\"typ\":\"JWS\"}", "bad typ"},
		{"{\"alg\":\"HS256\",\"typ\":1}", "bad typ"},
		{"{\"alg\":\"HS256\",\"crit\":[\"exp\"]}", "unsupported crit"},
		/* allowed: typ missing or in another case, extra members (kid) */
		{"{\"alg\":\"HS256\"}", "ok"},
		{"{\"alg\":\"HS256\",\"typ\":\"jwt\"}", "ok"},
		{"{\"kid\":\"k1\",\"alg\":\"HS256\"}", "ok"},
	};
	char *payload = payload_with("", NULL);

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *t = forge(cases[i].header, payload, KEY, KEYLEN);
		const char *why = why_of(t);

		if (strcmp(why, cases[i].why)) {
			fprintf(stderr, "  header %s: %s\n", cases[i].header, why);
			free(t);
			free(payload);
			FAIL_AT("expected %s", cases[i].why);
		}
		free(t);
	}
	/* the classic alg=none token: no signature at all */
	{
		struct buf b;
		char *t;
		const char *none = "{\"alg\":\"none\",\"typ\":\"JWT\"}";

		buf_init(&b, 8192);
		add_b64url(&b, none, strlen(none));
		buf_adds(&b, ".");
		add_b64url(&b, payload, strlen(payload));
		buf_adds(&b, ".");
		t = buf_detach(&b, NULL);
		ASSERT_STR_EQ(why_of(t), "alg not HS256");
		free(t);
	}
	free(payload);
}

TEST(token_claims_required_and_typed)
{
	static const struct {
		const char *name, *val, *why;
	} cases[] = {
		{"iss", NULL, "missing claim"},
		{"sub", NULL, "missing claim"},
		{"aud", NULL, "missing claim"},
		{"org_id", NULL, "missing claim"},
		{"scope", NULL, "missing claim"},
		{"budget_cap_usd", NULL, "missing claim"},
		{"jti", NULL, "missing claim"},
		{"iat", NULL, "missing claim"},
		{"nbf", NULL, "missing claim"},
		{"exp", NULL, "missing claim"},
		{"sub", "42", "bad claim"},
		{"sub", "null", "bad claim"},
		{"aud", "[\"agt_callee\"]", "bad claim"},
		{"exp", "\"1700000300\"", "bad claim"},
		{"exp", "1700000300.0", "bad claim"},
		{"exp", "1.7e9", "bad claim"},
		{"nbf", "true", "bad claim"},
		{"budget_cap_usd", "\"0.15\"", "bad claim"},
		{"budget_cap_usd", "-0.15", "bad claim"},
		{"budget_cap_usd", "0.0000001", "bad claim"},
		{"budget_cap_usd", "1e300", "bad claim"},
		{"budget_cap_usd", "99999999999999", "bad claim"},
		{"exp", "99999999999999999999", "bad JSON"}, /* beyond int64 */
		/* accepted spellings */
		{"budget_cap_usd", "0.150", "ok"},
		{"budget_cap_usd", "15e-2", "ok"},
		{"iss", "\"someone-else\"", "ok"}, /* read, not checked */
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *payload = payload_with(cases[i].name, cases[i].val);
		char *t = forge(HDR, payload, KEY, KEYLEN);
		const char *why = why_of(t);

		if (strcmp(why, cases[i].why)) {
			fprintf(stderr, "  payload %s: %s\n", payload, why);
			free(t);
			free(payload);
			FAIL_AT("expected %s", cases[i].why);
		}
		free(t);
		free(payload);
	}
	/* string claims: TOKEN_FIELD_MAX - 1 bytes fit, one more does not */
	{
		char v[TOKEN_FIELD_MAX + 3], *payload, *t;

		v[0] = '"';
		memset(v + 1, 'j', TOKEN_FIELD_MAX - 1);
		memcpy(v + TOKEN_FIELD_MAX, "\"", 2);
		payload = payload_with("jti", v);
		t = forge(HDR, payload, KEY, KEYLEN);
		ASSERT_STR_EQ(why_of(t), "ok");
		free(t);
		free(payload);
		memcpy(v + TOKEN_FIELD_MAX, "j\"", 3);
		payload = payload_with("jti", v);
		t = forge(HDR, payload, KEY, KEYLEN);
		ASSERT_STR_EQ(why_of(t), "bad claim");
		free(t);
		free(payload);
	}
}

TEST(token_malformed)
{
	static const struct {
		const char *tok, *why;
	} cases[] = {
		{"", "malformed"},
		{"abc", "malformed"},
		{"abc.def", "malformed"},
		{"a.b.c.d", "malformed"},
		{"..", "malformed"},
		{".eyJ9.AAAA", "malformed"},
		{"eyJhbGciOiJIUzI1NiJ9..AAAA", "malformed"},
		{"e30.e30.e30.", "malformed"},
		{"eyJhbGciOiJIUzI1NiJ9=.e30.AAAA", "bad base64url"},   /* padding */
		{"eyJhbGciOiJIUzI1NiJ9+.e30.AAAA", "bad base64url"},   /* standard alphabet */
		{"e31.e30.AAAA", "bad base64url"},                    /* non-zero pad bits */
		{"eyJhbGciOiJIUzI1NiJ9A.e30.AAAA", "bad base64url"},   /* 6 dangling bits */
		{"eyJhbGciOiJIUzI1NiJ9 .e30.AAAA", "bad base64url"},
		{"bm90IGpzb24.e30.AAAA", "bad JSON"},                  /* "not json" */
		{"WyJIUzI1NiJd.e30.AAAA", "bad JSON"},                 /* ["HS256"] */
		{"IkhTMjU2Ig.e30.AAAA", "bad JSON"},                   /* "HS256" */
		{"eyJhbGciOiJIUzI1NiJ9eyJ9.e30.AAAA", "bad JSON"}, /* trailing "{\"}" */
		{"eyJhbGciOiJIUzI1NiJ9.e30.", "bad signature"},      /* empty MAC */
		{"eyJhbGciOiJIUzI1NiJ9.e30.AAAA", "bad signature"},  /* short MAC */
		{"eyJhbGciOiJIUzI1NiJ9.e30."
		 "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB", "bad signature"}, /* pad bits */
		{"eyJhbGciOiJIUzI1NiJ9.e30."
		 "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "bad signature"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *why = why_of(cases[i].tok);

		if (strcmp(why, cases[i].why))
			FAIL_AT("%s: %s, expected %s", cases[i].tok, why, cases[i].why);
	}
	/* a payload that is not an object, under a valid MAC */
	{
		char *t = forge(HDR, "[1,2]", KEY, KEYLEN);

		ASSERT_STR_EQ(why_of(t), "bad JSON");
		free(t);
		t = forge(HDR, "{\"a\":1} x", KEY, KEYLEN);
		ASSERT_STR_EQ(why_of(t), "bad JSON");
		free(t);
	}
	/* NULL and a NUL inside the token */
	{
		struct token_parsed p;
		const char *why = NULL;

		ASSERT_EQ(token_verify(NULL, 0, KEY, KEYLEN, NULL, NOW, 0, &p, &why),
			  E(UNAUTHORIZED));
		ASSERT_STR_EQ(why, "malformed");
		ASSERT_EQ(token_verify("e30\0.e30.AAAA", 13, KEY, KEYLEN, NULL, NOW, 0, &p, &why),
			  E(UNAUTHORIZED));
		ASSERT_STR_EQ(why, "bad base64url");
	}
}

TEST(token_too_long)
{
	struct token_parsed p;
	const char *why = NULL;
	char *big = malloc(TOKEN_MAX_LEN + 2);
	char *payload, *t, *nest;
	struct buf b;

	ASSERT(big);
	memset(big, 'A', TOKEN_MAX_LEN + 1);
	big[TOKEN_MAX_LEN + 1] = '\0';
	ASSERT_EQ(token_verify(big, TOKEN_MAX_LEN + 1, KEY, KEYLEN, NULL, NOW, 0, &p, &why),
		  E(UNAUTHORIZED));
	ASSERT_STR_EQ(why, "too long");
	ASSERT_EQ(token_verify(big, (size_t)-1, KEY, KEYLEN, NULL, NOW, 0, &p, &why),
		  E(UNAUTHORIZED));
	ASSERT_STR_EQ(why, "too long");
	free(big);

	/* a well-signed token just over the limit is refused unparsed */
	buf_init(&b, 1 << 16);
	buf_adds(&b, "\"");
	for (int i = 0; i < 3000; i++)
		buf_adds(&b, "x");
	buf_adds(&b, "\"");
	payload = payload_with("scope", b.data);
	t = forge(HDR, payload, KEY, KEYLEN);
	ASSERT(strlen(t) > TOKEN_MAX_LEN);
	ASSERT_STR_EQ(why_of(t), "too long");
	free(t);
	free(payload);
	buf_release(&b);

	/* deep nesting inside the limit is refused by the depth bound */
	buf_init(&b, 1 << 16);
	buf_adds(&b, "{\"alg\":\"HS256\",\"x\":");
	for (int i = 0; i < 200; i++)
		buf_adds(&b, "[");
	for (int i = 0; i < 200; i++)
		buf_adds(&b, "]");
	buf_adds(&b, "}");
	nest = buf_detach(&b, NULL);
	payload = payload_with("", NULL);
	t = forge(nest, payload, KEY, KEYLEN);
	ASSERT(strlen(t) <= TOKEN_MAX_LEN);
	ASSERT_STR_EQ(why_of(t), "bad JSON");
	free(t);
	free(payload);
	free(nest);
}
