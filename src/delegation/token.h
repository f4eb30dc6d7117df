/*
 * Delegation tokens: the scoped JWT (RFC 7519, JWS compact serialization,
 * HS256 only) that Nexra hands the callee with each delegation. It is
 * signed with the callee's webhook_secret bytes, the one secret the callee
 * holds, so the callee can verify it without asking Nexra.
 *
 * Header: {"alg":"HS256","typ":"JWT"}. Claims, in this order: iss "nexra",
 * sub (caller agent id), aud (callee agent id), org_id, scope (the
 * capability), budget_cap_usd (a JSON number, exact decimal of the
 * micros), jti (delegation id), iat, nbf, exp (Unix seconds).
 *
 * token_verify is the other side, for tests, fuzzing and the CLI: it pins
 * HS256 (any other alg, "none" included, is refused), checks typ when
 * present, compares the MAC in constant time, bounds the token length and
 * checks aud, nbf and exp with a bounded leeway. Pure: no clock, no I/O.
 */
#ifndef NEXRA_DELEGATION_TOKEN_H
#define NEXRA_DELEGATION_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

#define TOKEN_MAX_LEN 4096 /* longer tokens are refused unparsed */
#define TOKEN_LEEWAY_MAX 300
#define TOKEN_FIELD_MAX 256 /* bytes of each string claim, NUL included */

struct token_claims {
	const char *sub;   /* caller agent id */
	const char *aud;   /* callee agent id */
	const char *org_id;
	const char *scope; /* capability */
	const char *jti;   /* delegation id */
	int64_t budget_cap_micros;
	int64_t iat, nbf, exp;
};

/* Sign c with key into out (appended, NUL-terminated). 0, or the buf's
 * error, or E(VALIDATION) when a string claim is NULL or TOKEN_FIELD_MAX
 * bytes or longer or the cap is negative (token_verify would refuse it),
 * or E(TOO_LARGE) when the token would exceed TOKEN_MAX_LEN; out is as it
 * was on error. Strings are JSON-escaped. */
int token_sign(const struct token_claims *c, const unsigned char *key, size_t keylen,
	       struct buf *out);

/* What token_verify read (copies). */
struct token_parsed {
	char iss[TOKEN_FIELD_MAX], sub[TOKEN_FIELD_MAX], aud[TOKEN_FIELD_MAX];
	char org_id[TOKEN_FIELD_MAX], scope[TOKEN_FIELD_MAX], jti[TOKEN_FIELD_MAX];
	int64_t budget_cap_micros;
	int64_t iat, nbf, exp;
};

/*
 * Verify tok[0..len) with key for audience aud (NULL: do not check) at
 * now, allowing leeway seconds (clamped to [0, TOKEN_LEEWAY_MAX]) on
 * nbf/exp: valid when nbf <= now + leeway and now - leeway < exp. Every
 * claim above is required (iss is read, not checked). 0 and *out filled
 * (why NULL), or E(UNAUTHORIZED) with *out zeroed and a reason in why
 * (static text; why may be NULL): "malformed", "too long", "bad
 * base64url", "bad JSON", "alg not HS256", "bad typ", "unsupported crit",
 * "bad signature", "missing claim", "bad claim" (wrong type, too long),
 * "wrong aud", "not yet valid", "expired". E(INTERNAL) ("internal error")
 * only when the MAC cannot be computed (out of memory).
 */
int token_verify(const char *tok, size_t len, const unsigned char *key, size_t keylen,
		 const char *aud, int64_t now, int64_t leeway, struct token_parsed *out,
		 const char **why);

#endif
