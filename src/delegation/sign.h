/*
 * Webhook signatures, both schemes Nexra sends on every outbound webhook
 * and callback (docs/webhooks.md):
 *
 * - Nexra's own: `X-Nexra-Signature: sha256=<hex>`, the lowercase hex
 *   HMAC-SHA256 of the raw body keyed with the secret's bytes (what the
 *   seed's verify_webhook_signature checks).
 * - Standard Webhooks (standardwebhooks.com): `webhook-id`,
 *   `webhook-timestamp` (Unix seconds) and `webhook-signature: v1,<base64
 *   HMAC-SHA256 of "id.timestamp.body">`. The key is the secret's bytes,
 *   except that a secret starting with "whsec_" is the base64 of the key,
 *   as that spec says.
 *
 * Pure functions over bytes (OpenSSL HMAC); no clock, no I/O.
 */
#ifndef NEXRA_DELEGATION_SIGN_H
#define NEXRA_DELEGATION_SIGN_H

#include <stddef.h>
#include <stdint.h>

#define SIGN_NEXRA_LEN (7 + 64)      /* "sha256=" + 64 hex digits */
#define SIGN_STANDARD_LEN (3 + 44)   /* "v1," + base64 of 32 bytes */

/* out gets "sha256=<hex>" and a NUL. */
void sign_nexra(const void *secret, size_t secret_len, const void *body, size_t body_len,
		char out[SIGN_NEXRA_LEN + 1]);

/* out gets "v1,<base64>" and a NUL. 0, or E(VALIDATION) when a whsec_
 * secret is not valid base64 (padded or not), or E(INTERNAL) when the MAC
 * cannot be set up (out of memory); out is "" on error. msg_id NULL is "". */
int sign_standard(const char *secret, size_t secret_len, const char *msg_id, int64_t timestamp,
		  const void *body, size_t body_len, char out[SIGN_STANDARD_LEN + 1]);

/* Lowercase hex HMAC-SHA256 (64 digits + NUL): the building block, also
 * used to check signatures in tests. */
void sign_hmac_hex(const void *key, size_t key_len, const void *msg, size_t msg_len,
		   char out[65]);

#define SIGN_MAC_LEN 32

/*
 * The raw HMAC-SHA256 of msg under key (any length, 0 included) into out:
 * what the functions above and delegation tokens (token.c) are made of.
 * 0, or E(INTERNAL) when OpenSSL cannot set up (out of memory); out is
 * then zeroed. Each thread keeps one MAC context, created on first use and
 * freed when the thread exits, so a call allocates nothing.
 *
 * The void functions above cannot report that failure: they then write a
 * well-formed signature of the zero MAC, which no receiver will accept
 * (fails closed).
 */
int sign_hmac(const void *key, size_t key_len, const void *msg, size_t msg_len,
	      unsigned char out[SIGN_MAC_LEN]);

#endif
