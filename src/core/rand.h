/*
 * Randomness from the OS CSPRNG (via OpenSSL), and the random public ids
 * Nexra hands out ("org_", "key_", "req_" + hex).
 */
#ifndef NEXRA_CORE_RAND_H
#define NEXRA_CORE_RAND_H

#include <stddef.h>

#define ID_MAX 48

/* Fill p with n random bytes; 0 or E(INTERNAL). */
int rand_bytes(void *p, size_t n);

/* prefix + 2*nbytes lowercase hex chars into out (size ID_MAX); 0 or E(INTERNAL). */
int rand_id(char *out, const char *prefix, size_t nbytes);

/* prefix + 24 hex chars from a fast per-thread generator seeded from the
 * CSPRNG: unique and unguessable enough for request ids, which are not
 * secrets (never use it for keys or tokens). */
void rand_fast_id(char *out, const char *prefix);

/* 1 if s is prefix + 2*nbytes lowercase hex, as rand_id makes them. */
int rand_id_valid(const char *s, const char *prefix, size_t nbytes);

/* Lowercase hex of n bytes into out (2n+1 bytes). */
void hex_encode(const unsigned char *p, size_t n, char *out);
/* Exactly 2n lowercase hex chars into n bytes: 0, or -1 (out undefined). */
int hex_decode(const char *hex, unsigned char *out, size_t n);

#endif
