/*
 * FNV-1a, for the small in-memory tables keyed by short ids (rate limiter,
 * row caches, policy stacks): simple, fast on ids of 20-odd bytes, and not
 * exposed to attacker-chosen keys (ids are ours or validated). Chain calls
 * to hash several parts: h = hash_fnv1a(hash_fnv1a(HASH_FNV_INIT, a, na), b, nb).
 */
#ifndef NEXRA_CORE_HASH_H
#define NEXRA_CORE_HASH_H

#include <stddef.h>
#include <stdint.h>

#define HASH_FNV_INIT 2166136261u

static inline uint32_t hash_fnv1a(uint32_t h, const void *p, size_t n)
{
	const unsigned char *s = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ s[i]) * 16777619u;
	return h;
}

#endif
