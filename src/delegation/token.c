/*
 * Delegation tokens: HS256 JWTs in JWS compact form; see token.h.
 *
 * Signing runs once per delegation, so it stays off the heap apart from
 * the caller's buffer: the claims are written with jsonw (which writes
 * into a struct buf) into `out` itself, copied to the stack, and `out` is
 * cut back; the token is then assembled on the stack and appended in one
 * go. The header never changes, so its base64url is a constant.
 *
 * Verifying is the side that reads hostile bytes. It bounds the length
 * first, splits on exactly two dots, decodes base64url strictly with
 * libsodium (URL alphabet, no padding, zero trailing bits: one token has
 * one spelling), pins alg to HS256 before anything else is trusted,
 * compares the MAC in constant time, and only then parses the claims.
 * JSON goes through json_parse_object (depth bound, duplicate keys
 * refused: a second "alg" or "aud" cannot hide behind the first).
 */
#include "delegation/token.h"

#include <jansson.h>
#include <openssl/crypto.h>
#include <sodium.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

#include "core/err.h"
#include "core/json.h"
#include "core/jsonw.h"
#include "core/money.h"
#include "delegation/sign.h"
#include "core/banned.h"

/* base64url of {"alg":"HS256","typ":"JWT"} */
#define HEADER_B64 "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
#define HEADER_B64_LEN (sizeof(HEADER_B64) - 1)
#define B64URL sodium_base64_VARIANT_URLSAFE_NO_PADDING
#define SIG_B64_LEN 43 /* 32 bytes, unpadded */
/* The largest payload JSON whose token can still fit in TOKEN_MAX_LEN. */
#define PAYLOAD_JSON_MAX ((TOKEN_MAX_LEN - HEADER_B64_LEN - 2 - SIG_B64_LEN) / 4 * 3 + 2)

/* Unpadded base64 length of n bytes. */
static size_t b64_len(size_t n)
{
	return n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
}

/* base64url without padding of src[0..n) into dst (b64_len(n) bytes, no
 * NUL). Table-driven: what is encoded here is public (claims, the MAC that
 * goes out anyway), so libsodium's constant-time encoder, a third of the
 * cost of signing, buys nothing. */
static void b64url_encode(char *dst, const unsigned char *src, size_t n)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t i = 0;
	uint32_t v;

	for (; i + 2 < n; i += 3) {
		v = (uint32_t)src[i] << 16 | (uint32_t)src[i + 1] << 8 | src[i + 2];
		*dst++ = tab[v >> 18];
		*dst++ = tab[v >> 12 & 63];
		*dst++ = tab[v >> 6 & 63];
		*dst++ = tab[v & 63];
	}
	if (i == n)
		return;
	v = (uint32_t)src[i] << 16 | (i + 1 < n ? (uint32_t)src[i + 1] << 8 : 0);
	*dst++ = tab[v >> 18];
	*dst++ = tab[v >> 12 & 63];
	if (i + 1 < n)
		*dst = tab[v >> 6 & 63];
}

/* Cut b back to its first len bytes (what it held before we wrote). */
static void buf_cut(struct buf *b, size_t len)
{
	if (b->data) {
		b->len = len;
		b->data[len] = '\0';
	}
}

static int claims_ok(const struct token_claims *c)
{
	const char *s[] = {c->sub, c->aud, c->org_id, c->scope, c->jti};

	for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++)
		if (!s[i] || strlen(s[i]) >= TOKEN_FIELD_MAX)
			return E(VALIDATION);
	return c->budget_cap_micros < 0 ? E(VALIDATION) : 0;
}

int token_sign(const struct token_claims *c, const unsigned char *key, size_t keylen,
	       struct buf *out)
{
	char json[PAYLOAD_JSON_MAX], tok[TOKEN_MAX_LEN];
	unsigned char mac[SIGN_MAC_LEN];
	size_t start = out->len, jlen, n;
	struct jsonw jw;
	int rc;

	rc = claims_ok(c);
	if (rc)
		goto out;
	jw_init(&jw, out);
	jw_obj_open(&jw);
	jw_kstr(&jw, "iss", "nexra");
	jw_kstr(&jw, "sub", c->sub);
	jw_kstr(&jw, "aud", c->aud);
	jw_kstr(&jw, "org_id", c->org_id);
	jw_kstr(&jw, "scope", c->scope);
	jw_key(&jw, "budget_cap_usd");
	jw_money(&jw, c->budget_cap_micros);
	jw_kstr(&jw, "jti", c->jti);
	jw_kint(&jw, "iat", c->iat);
	jw_kint(&jw, "nbf", c->nbf);
	jw_kint(&jw, "exp", c->exp);
	jw_obj_close(&jw);
	rc = jw.rc;
	if (rc)
		goto out;
	jlen = out->len - start;
	if (jlen > sizeof(json)) {
		rc = E(TOO_LARGE);
		goto out;
	}
	memcpy(json, out->data + start, jlen);
	buf_cut(out, start);

	n = HEADER_B64_LEN + 1 + b64_len(jlen) + 1 + SIG_B64_LEN;
	if (n > TOKEN_MAX_LEN) {
		rc = E(TOO_LARGE);
		goto out;
	}
	memcpy(tok, HEADER_B64 ".", HEADER_B64_LEN + 1);
	n = HEADER_B64_LEN + 1;
	b64url_encode(tok + n, (const unsigned char *)json, jlen);
	n += b64_len(jlen);
	rc = sign_hmac(key, keylen, tok, n, mac);
	if (rc)
		goto out;
	tok[n++] = '.';
	b64url_encode(tok + n, mac, sizeof(mac));
	n += SIG_B64_LEN;
	rc = buf_add(out, tok, n);
out:
	if (rc)
		buf_cut(out, start);
	return rc;
}

/* Strict base64url (no padding, canonical) of s[0..len) into dst. */
static int b64url_decode(const char *s, size_t len, unsigned char *dst, size_t max, size_t *n)
{
	return sodium_base642bin(dst, max, s, len, NULL, n, NULL, B64URL) ? -1 : 0;
}

enum claim_kind { CLAIM_STR, CLAIM_INT, CLAIM_USD };

/* Every claim is required; each lands at its offset in struct token_parsed. */
static const struct {
	const char *name;
	enum claim_kind kind;
	size_t off;
} claims[] = {
	{"iss", CLAIM_STR, offsetof(struct token_parsed, iss)},
	{"sub", CLAIM_STR, offsetof(struct token_parsed, sub)},
	{"aud", CLAIM_STR, offsetof(struct token_parsed, aud)},
	{"org_id", CLAIM_STR, offsetof(struct token_parsed, org_id)},
	{"scope", CLAIM_STR, offsetof(struct token_parsed, scope)},
	{"budget_cap_usd", CLAIM_USD, offsetof(struct token_parsed, budget_cap_micros)},
	{"jti", CLAIM_STR, offsetof(struct token_parsed, jti)},
	{"iat", CLAIM_INT, offsetof(struct token_parsed, iat)},
	{"nbf", CLAIM_INT, offsetof(struct token_parsed, nbf)},
	{"exp", CLAIM_INT, offsetof(struct token_parsed, exp)},
};

/* Read every claim of obj into out; NULL, or why not. */
static const char *read_claims(const json_t *obj, struct token_parsed *out)
{
	for (size_t i = 0; i < sizeof(claims) / sizeof(claims[0]); i++) {
		json_t *v = json_object_get(obj, claims[i].name);
		char *dst = (char *)out + claims[i].off;
		int64_t m;
		int bad;

		if (!v)
			return "missing claim";
		switch (claims[i].kind) {
		case CLAIM_STR: {
			const char *s = json_string_value(v);
			size_t n = json_string_length(v);

			if (!s || n >= TOKEN_FIELD_MAX || strlen(s) != n)
				return "bad claim";
			memcpy(dst, s, n + 1);
			break;
		}
		case CLAIM_INT:
			if (!json_is_integer(v))
				return "bad claim";
			m = json_integer_value(v);
			memcpy(dst, &m, sizeof(m));
			break;
		case CLAIM_USD: /* "12" parses as an integer, "0.15" as a real */
			if (json_is_integer(v))
				bad = money_from_int(json_integer_value(v), INT64_MAX, &m);
			else if (json_is_real(v))
				bad = money_from_double(json_real_value(v), INT64_MAX, &m);
			else
				bad = 1;
			if (bad)
				return "bad claim";
			memcpy(dst, &m, sizeof(m));
			break;
		}
	}
	return NULL;
}

/* Decode one base64url segment and parse it as a JSON object. */
static const char *segment_json(const char *s, size_t len, unsigned char *scratch, size_t max,
				json_t **out)
{
	struct jerr je = {{0}, {0}};
	size_t n = 0;

	if (b64url_decode(s, len, scratch, max, &n))
		return "bad base64url";
	if (json_parse_object((const char *)scratch, n, out, &je))
		return "bad JSON";
	return NULL;
}

/* The header must pin HS256; typ, when present, must say JWT; no crit. */
static const char *check_header(const json_t *h)
{
	const json_t *alg = json_object_get(h, "alg"), *typ = json_object_get(h, "typ");

	if (!json_is_string(alg) || json_string_length(alg) != 5 ||
	    memcmp(json_string_value(alg), "HS256", 5))
		return "alg not HS256";
	if (typ && (!json_is_string(typ) || json_string_length(typ) != 3 ||
		    strncasecmp(json_string_value(typ), "JWT", 3)))
		return "bad typ";
	if (json_object_get(h, "crit"))
		return "unsupported crit"; /* we understand no extensions */
	return NULL;
}

int token_verify(const char *tok, size_t len, const unsigned char *key, size_t keylen,
		 const char *aud, int64_t now, int64_t leeway, struct token_parsed *out,
		 const char **why)
{
	unsigned char scratch[TOKEN_MAX_LEN], mac[SIGN_MAC_LEN], want[SIGN_MAC_LEN];
	const char *dot1, *dot2, *w = NULL;
	size_t hlen, plen, slen, n = 0;
	int64_t lo, hi;
	json_t *h = NULL, *p = NULL;
	int rc = E(UNAUTHORIZED);

	memset(out, 0, sizeof(*out));
	if (!tok || !len) {
		w = "malformed";
		goto out;
	}
	if (len > TOKEN_MAX_LEN) {
		w = "too long";
		goto out;
	}
	dot1 = memchr(tok, '.', len);
	dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - tok)) : NULL;
	if (!dot2 || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - tok))) {
		w = "malformed";
		goto out;
	}
	hlen = (size_t)(dot1 - tok);
	plen = (size_t)(dot2 - dot1 - 1);
	slen = len - (size_t)(dot2 + 1 - tok);
	if (!hlen || !plen) {
		w = "malformed";
		goto out;
	}

	w = segment_json(tok, hlen, scratch, sizeof(scratch), &h);
	if (w)
		goto out;
	w = check_header(h);
	if (w)
		goto out;

	if (slen != SIG_B64_LEN || b64url_decode(dot2 + 1, slen, mac, sizeof(mac), &n) ||
	    n != sizeof(mac)) {
		w = "bad signature";
		goto out;
	}
	if (sign_hmac(key, keylen, tok, (size_t)(dot2 - tok), want)) {
		rc = E(INTERNAL);
		w = "internal error";
		goto out;
	}
	if (CRYPTO_memcmp(mac, want, sizeof(mac))) {
		w = "bad signature";
		goto out;
	}

	w = segment_json(dot1 + 1, plen, scratch, sizeof(scratch), &p);
	if (w)
		goto out;
	w = read_claims(p, out);
	if (w)
		goto out;
	if (aud && strcmp(out->aud, aud)) {
		w = "wrong aud";
		goto out;
	}
	if (leeway < 0)
		leeway = 0;
	if (leeway > TOKEN_LEEWAY_MAX)
		leeway = TOKEN_LEEWAY_MAX;
	hi = now > INT64_MAX - leeway ? INT64_MAX : now + leeway;
	lo = now < INT64_MIN + leeway ? INT64_MIN : now - leeway;
	if (out->nbf > hi) {
		w = "not yet valid";
		goto out;
	}
	if (out->exp <= lo) { /* valid while now < exp + leeway */
		w = "expired";
		goto out;
	}
	rc = 0;
out:
	json_decref(h);
	json_decref(p);
	if (rc)
		memset(out, 0, sizeof(*out));
	if (why)
		*why = rc ? w : NULL;
	return rc;
}
