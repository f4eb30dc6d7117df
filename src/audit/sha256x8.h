/*
 * SHA-256(prefix || msg[i]) for many independent messages at once (the
 * audit verifier's leaf and node hashes): eight at a time in the eight
 * 32-bit lanes of AVX2 registers, one message per lane, where the CPU has
 * AVX2. A CPU without the SHA extensions spends about 7 cycles a byte on
 * one message; eight lanes share the instructions. The rest, and every CPU
 * without AVX2, go through OpenSSL one message at a time. The lanes are
 * checked once against that path before they are first used; on any
 * difference the one-message path is used throughout.
 */
#ifndef NEXRA_AUDIT_SHA256X8_H
#define NEXRA_AUDIT_SHA256X8_H

#include <stddef.h>

/* out[i] = SHA-256(prefix || msg[i][0..len[i])), i < n. */
void sha256x8_many(unsigned char prefix, const unsigned char *const *msg, const size_t *len,
		   size_t n, unsigned char (*out)[32]);

/* The same, one message at a time (the reference the lanes are held to). */
void sha256x8_one(unsigned char prefix, const unsigned char *msg, size_t n,
		  unsigned char out[32]);

#endif
