/*
 * API key format (docs/keys.md): "nx_live_" or "nx_test_", 52 base32 chars
 * carrying 256 random bits, 7 base32 chars carrying a 32-bit checksum (the
 * first bytes of SHA-256 over prefix and body). Everything here is pure but
 * apikey_generate, which draws from the CSPRNG.
 *
 * apikey_parse checks the whole format and the checksum, so a mistyped or
 * made-up key is refused before any database access.
 */
#ifndef NEXRA_AUTH_APIKEY_H
#define NEXRA_AUTH_APIKEY_H

#include <stddef.h>

#include "store/store.h"

#define APIKEY_PREFIX_LEN 8
#define APIKEY_BODY_LEN 52
#define APIKEY_SUM_LEN 7
#define APIKEY_LEN (APIKEY_PREFIX_LEN + APIKEY_BODY_LEN + APIKEY_SUM_LEN)

/* A fresh key of kind (enum key_kind) into out (APIKEY_LEN + 1 bytes). */
int apikey_generate(int kind, char *out);

/* 0 and *kind, lookup (KEY_LOOKUP_LEN + 1 bytes) when s[0..len) is a
 * well-formed key with a valid checksum; E(UNAUTHORIZED) otherwise. */
int apikey_parse(const char *s, size_t len, int *kind, char *lookup);

/* SHA-256 of the key text. */
void apikey_hash(const char *s, size_t len, unsigned char out[32]);

/* Constant-time comparison of two hashes: 1 if equal. */
int apikey_hash_equal(const unsigned char a[32], const unsigned char b[32]);

/* Constant-time comparison of n bytes of two secrets: 1 if equal. */
int apikey_secret_equal(const char *a, const char *b, size_t n);

/* Fill a struct api_key (ids, lookup, hash, prefix) for a fresh key whose
 * text goes to secret (APIKEY_LEN + 1). created_at and names from args. */
int apikey_new_row(const char *org_id, int kind, const char *name, long long now,
		   struct api_key *row, char *secret);

#endif
