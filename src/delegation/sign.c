/*
 * Webhook signatures and the HMAC-SHA256 under them; see sign.h.
 *
 * Every outbound webhook and every delegation token is one HMAC, so the
 * MAC is set up once per thread rather than per call: the HMAC algorithm
 * is fetched from OpenSSL's default provider once per process (EVP_MAC
 * objects are shared safely between threads), each thread makes one
 * EVP_MAC_CTX on first use and re-keys it for every message. A pthread key
 * frees the context when its thread exits; the _Thread_local pointer is
 * the fast path that skips pthread_getspecific.
 *
 * Re-keying passes the key pointer every time, never NULL: OpenSSL's HMAC
 * treats a NULL key as "keep the previous key", which here would be the
 * previous caller's secret.
 */
#include "delegation/sign.h"

#include <inttypes.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/banned.h"

#define WHSEC_PREFIX "whsec_"
#define WHSEC_PREFIX_LEN 6
#define KEY_STACK 256 /* decoded whsec_ keys up to this size stay on the stack */

struct part {
	const void *p;
	size_t n;
};

static pthread_once_t mac_once = PTHREAD_ONCE_INIT;
static pthread_key_t mac_key;
static int mac_key_ok;
static EVP_MAC *mac_alg; /* HMAC, fetched once; never freed */
static _Thread_local EVP_MAC_CTX *mac_ctx;

static void mac_ctx_free(void *p)
{
	EVP_MAC_CTX_free(p);
}

static void mac_init_once(void)
{
	mac_alg = EVP_MAC_fetch(NULL, "HMAC", NULL);
	mac_key_ok = pthread_key_create(&mac_key, mac_ctx_free) == 0;
}

/* This thread's HMAC-SHA256 context, or NULL when it cannot be made. */
static EVP_MAC_CTX *thread_ctx(void)
{
	OSSL_PARAM params[2];
	EVP_MAC_CTX *c;

	if (mac_ctx)
		return mac_ctx;
	pthread_once(&mac_once, mac_init_once);
	if (!mac_alg || !mac_key_ok)
		return NULL;
	c = EVP_MAC_CTX_new(mac_alg);
	if (!c)
		return NULL;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	if (!EVP_MAC_CTX_set_params(c, params) || pthread_setspecific(mac_key, c)) {
		EVP_MAC_CTX_free(c);
		return NULL;
	}
	mac_ctx = c;
	return c;
}

/* HMAC-SHA256 of the concatenated parts. */
static int hmac_parts(const void *key, size_t key_len, const struct part *parts, int nparts,
		      unsigned char out[SIGN_MAC_LEN])
{
	static const unsigned char empty[1];
	EVP_MAC_CTX *c = thread_ctx();
	size_t n = 0;
	int rc = E(INTERNAL);

	if (!c)
		goto out;
	if (!EVP_MAC_init(c, key_len ? key : empty, key_len, NULL))
		goto out;
	for (int i = 0; i < nparts; i++)
		if (parts[i].n && !EVP_MAC_update(c, parts[i].p, parts[i].n))
			goto out;
	if (!EVP_MAC_final(c, out, &n, SIGN_MAC_LEN) || n != SIGN_MAC_LEN)
		goto out;
	rc = 0;
out:
	if (rc)
		memset(out, 0, SIGN_MAC_LEN);
	return rc;
}

int sign_hmac(const void *key, size_t key_len, const void *msg, size_t msg_len,
	      unsigned char out[SIGN_MAC_LEN])
{
	struct part p = {msg, msg_len};

	return hmac_parts(key, key_len, &p, 1, out);
}

static void to_hex(const unsigned char *in, size_t n, char *out)
{
	static const char hx[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hx[in[i] >> 4];
		out[2 * i + 1] = hx[in[i] & 15];
	}
	out[2 * n] = '\0';
}

void sign_hmac_hex(const void *key, size_t key_len, const void *msg, size_t msg_len,
		   char out[65])
{
	unsigned char mac[SIGN_MAC_LEN];

	sign_hmac(key, key_len, msg, msg_len, mac); /* zero MAC on failure */
	to_hex(mac, sizeof(mac), out);
}

void sign_nexra(const void *secret, size_t secret_len, const void *body, size_t body_len,
		char out[SIGN_NEXRA_LEN + 1])
{
	memcpy(out, "sha256=", 7);
	sign_hmac_hex(secret, secret_len, body, body_len, out + 7);
}

/* The key a whsec_ secret stands for: the standard base64 after the prefix,
 * padded (as generated) or not. 0, or -1 when it is not base64. */
static int whsec_decode(const char *b64, size_t len, unsigned char *key, size_t keymax,
			size_t *keylen)
{
	if (!sodium_base642bin(key, keymax, b64, len, NULL, keylen, NULL,
			       sodium_base64_VARIANT_ORIGINAL))
		return 0;
	if (!sodium_base642bin(key, keymax, b64, len, NULL, keylen, NULL,
			       sodium_base64_VARIANT_ORIGINAL_NO_PADDING))
		return 0;
	return -1;
}

int sign_standard(const char *secret, size_t secret_len, const char *msg_id, int64_t timestamp,
		  const void *body, size_t body_len, char out[SIGN_STANDARD_LEN + 1])
{
	unsigned char stack_key[KEY_STACK], *heap_key = NULL, *k = stack_key;
	unsigned char mac[SIGN_MAC_LEN];
	const unsigned char *key = (const unsigned char *)secret;
	size_t key_len = secret_len, kmax = 0;
	char ts[24];
	struct part parts[5];
	int rc = 0, tslen;

	out[0] = '\0';
	if (secret_len >= WHSEC_PREFIX_LEN && !memcmp(secret, WHSEC_PREFIX, WHSEC_PREFIX_LEN)) {
		const char *b64 = secret + WHSEC_PREFIX_LEN;
		size_t b64len = secret_len - WHSEC_PREFIX_LEN, need = b64len / 4 * 3 + 3;

		if (need > sizeof(stack_key)) {
			heap_key = malloc(need);
			if (!heap_key) {
				rc = E(INTERNAL);
				goto out;
			}
			k = heap_key;
		}
		kmax = need; /* k holds kmax bytes from here on */
		if (whsec_decode(b64, b64len, k, kmax, &key_len)) {
			rc = E(VALIDATION);
			goto out;
		}
		key = k;
	}
	tslen = snprintf(ts, sizeof(ts), "%" PRId64, timestamp);
	parts[0] = (struct part){msg_id ? msg_id : "", msg_id ? strlen(msg_id) : 0};
	parts[1] = (struct part){".", 1};
	parts[2] = (struct part){ts, (size_t)tslen};
	parts[3] = (struct part){".", 1};
	parts[4] = (struct part){body, body_len};
	rc = hmac_parts(key, key_len, parts, 5, mac);
	if (rc)
		goto out;
	memcpy(out, "v1,", 3);
	sodium_bin2base64(out + 3, SIGN_STANDARD_LEN - 3 + 1, mac, sizeof(mac),
			  sodium_base64_VARIANT_ORIGINAL);
out:
	if (kmax) /* a decoded key: do not leave it behind on the stack or heap */
		sodium_memzero(k, kmax);
	free(heap_key);
	return rc;
}
