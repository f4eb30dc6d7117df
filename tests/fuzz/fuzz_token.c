/*
 * Fuzz target: delegation token verification, the parser that reads what
 * a callee (or anyone holding a token) sends back.
 *
 * The bytes are verified as a token under a fixed key, with and without
 * an audience. Random bytes almost never carry a valid MAC, so when the
 * input has a newline it is also read as "header JSON\npayload JSON" and
 * turned into a correctly signed token first: that drives the claim
 * parsing and the time and audience checks behind the MAC.
 *
 * Invariants (abort() otherwise): a refusal is E(UNAUTHORIZED) with a
 * reason and a zeroed result; an acceptance has no reason, NUL-terminated
 * fields, the audience asked for, nbf and exp within the leeway and a
 * non-negative cap, and its claims signed again with token_sign verify to
 * the same values (or are too large to sign, when number spellings grew).
 */
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"
#include "delegation/sign.h"
#include "delegation/token.h"

static const unsigned char KEY[] = "fuzz-token-key-0123456789abcdef!";
#define KEYLEN (sizeof(KEY) - 1)
#define NOW 1700000000
#define LEEWAY 60
#define AUD "agt_callee"

static int zeroed(const struct token_parsed *p)
{
	static const struct token_parsed zero;

	return !memcmp(p, &zero, sizeof(zero));
}

static int terminated(const struct token_parsed *p)
{
	const char *f[] = {p->iss, p->sub, p->aud, p->org_id, p->scope, p->jti};

	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		if (!memchr(f[i], '\0', TOKEN_FIELD_MAX))
			return 0;
	return 1;
}

static int same_claims(const struct token_parsed *a, const struct token_parsed *b)
{
	return !strcmp(a->sub, b->sub) && !strcmp(a->aud, b->aud) &&
	       !strcmp(a->org_id, b->org_id) && !strcmp(a->scope, b->scope) &&
	       !strcmp(a->jti, b->jti) && a->budget_cap_micros == b->budget_cap_micros &&
	       a->iat == b->iat && a->nbf == b->nbf && a->exp == b->exp;
}

static void resign(const struct token_parsed *p, const char *aud)
{
	struct token_claims c = {
		.sub = p->sub,
		.aud = p->aud,
		.org_id = p->org_id,
		.scope = p->scope,
		.jti = p->jti,
		.budget_cap_micros = p->budget_cap_micros,
		.iat = p->iat,
		.nbf = p->nbf,
		.exp = p->exp,
	};
	struct token_parsed again;
	const char *why = NULL;
	struct buf b;
	int rc;

	buf_init(&b, 2 * TOKEN_MAX_LEN);
	rc = token_sign(&c, KEY, KEYLEN, &b);
	if (rc && rc != E(TOO_LARGE))
		abort();
	if (!rc && (token_verify(b.data, b.len, KEY, KEYLEN, aud, NOW, LEEWAY, &again, &why) ||
		    strcmp(again.iss, "nexra") || !same_claims(p, &again)))
		abort();
	buf_release(&b);
}

static void check(const char *tok, size_t len, const char *aud)
{
	struct token_parsed p;
	const char *why = NULL;
	int rc = token_verify(tok, len, KEY, KEYLEN, aud, NOW, LEEWAY, &p, &why);

	if (rc) {
		if (rc != E(UNAUTHORIZED) || !why || !zeroed(&p))
			abort();
		return;
	}
	if (why || !terminated(&p) || (aud && strcmp(p.aud, aud)))
		abort();
	if (p.nbf > NOW + LEEWAY || p.exp <= NOW - LEEWAY || p.budget_cap_micros < 0)
		abort();
	resign(&p, aud);
}

static void add_b64url(struct buf *b, const void *p, size_t n)
{
	char tmp[2 * TOKEN_MAX_LEN];

	if (sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_URLSAFE_NO_PADDING) > sizeof(tmp))
		return;
	sodium_bin2base64(tmp, sizeof(tmp), p, n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	buf_adds(b, tmp);
}

/* "header\npayload" made into a token signed with KEY. */
static void forged(const uint8_t *data, size_t size, const uint8_t *nl)
{
	unsigned char mac[SIGN_MAC_LEN];
	struct buf b;

	if (size > TOKEN_MAX_LEN)
		return;
	buf_init(&b, 4 * TOKEN_MAX_LEN);
	add_b64url(&b, data, (size_t)(nl - data));
	buf_adds(&b, ".");
	add_b64url(&b, nl + 1, size - (size_t)(nl + 1 - data));
	if (!b.data || sign_hmac(KEY, KEYLEN, b.data, b.len, mac))
		abort();
	buf_adds(&b, ".");
	add_b64url(&b, mac, sizeof(mac));
	check(b.data, b.len, AUD);
	check(b.data, b.len, NULL);
	buf_release(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nl = size ? memchr(data, '\n', size) : NULL;

	check((const char *)data, size, AUD);
	check((const char *)data, size, NULL);
	if (nl)
		forged(data, size, nl);
	return 0;
}
