/* CSPRNG and ids; see rand.h. */
#include "core/rand.h"

#include <openssl/rand.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "core/banned.h"

int rand_bytes(void *p, size_t n)
{
	return RAND_bytes(p, (int)n) == 1 ? 0 : E(INTERNAL);
}

void hex_encode(const unsigned char *p, size_t n, char *out)
{
	static const char hx[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hx[p[i] >> 4];
		out[2 * i + 1] = hx[p[i] & 15];
	}
	out[2 * n] = '\0';
}

static int nibble(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1; /* lowercase only: one spelling per value */
}

int hex_decode(const char *hex, unsigned char *out, size_t n)
{
	if (strlen(hex) != 2 * n)
		return -1;
	for (size_t i = 0; i < n; i++) {
		int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

/* xoshiro256** (Blackman & Vigna), seeded per thread from the CSPRNG. */
static _Thread_local uint64_t xs[4];
static _Thread_local int xs_seeded;

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t xnext(void)
{
	uint64_t r = rotl(xs[1] * 5, 7) * 9, t = xs[1] << 17;

	xs[2] ^= xs[0];
	xs[3] ^= xs[1];
	xs[1] ^= xs[2];
	xs[0] ^= xs[3];
	xs[2] ^= t;
	xs[3] = rotl(xs[3], 45);
	return r;
}

void rand_fast_id(char *out, const char *prefix)
{
	unsigned char b[12];
	uint64_t a, c;
	size_t pl = strlen(prefix);

	if (!xs_seeded) {
		if (rand_bytes(xs, sizeof(xs)) || !(xs[0] | xs[1] | xs[2] | xs[3]))
			xs[0] = 0x9e3779b97f4a7c15ull ^ (uint64_t)(uintptr_t)&xs;
		xs_seeded = 1;
	}
	a = xnext();
	c = xnext();
	memcpy(b, &a, 8);
	memcpy(b + 8, &c, 4);
	memcpy(out, prefix, pl);
	hex_encode(b, sizeof(b), out + pl);
}

int rand_id_valid(const char *s, const char *prefix, size_t nbytes)
{
	size_t pl = strlen(prefix);

	if (strncmp(s, prefix, pl) || strlen(s) != pl + 2 * nbytes)
		return 0;
	for (s += pl; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
			return 0;
	return 1;
}

int rand_id(char *out, const char *prefix, size_t nbytes)
{
	unsigned char b[16];
	size_t pl = strlen(prefix);

	if (nbytes > sizeof(b) || pl + 2 * nbytes + 1 > ID_MAX)
		return E(INTERNAL);
	if (rand_bytes(b, nbytes))
		return E(INTERNAL);
	memcpy(out, prefix, pl);
	hex_encode(b, nbytes, out + pl);
	return 0;
}
