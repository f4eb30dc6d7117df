/*
 * Deep equality of JSON values for const, enum and uniqueItems.
 *
 * JSON Schema equality is by value: 1 and 1.0 are equal (numbers compare as
 * exact decimals, see number.c), objects are equal when they have the same
 * members whatever their order, arrays when items are equal pairwise, and
 * true is not 1. jansson's json_equal() gets numbers wrong (integer 1 is not
 * real 1.0 there), hence this file.
 *
 * uniqueItems must not be quadratic on a hostile array of 100,000 items, so
 * duplicates are found by hashing every item with a hash consistent with the
 * equality above (numbers hashed through their decimal form, object members
 * combined order-independently), sorting the hashes and comparing only
 * items whose hashes collide.
 */
#include "schema/schema_int.h"

#include <stdlib.h>
#include <string.h>

#include "core/banned.h"

static int equal_depth(const json_t *a, const json_t *b, int depth)
{
	if (depth > SCHEMA_MAX_INSTANCE_DEPTH)
		return 0;
	if (json_is_number(a) && json_is_number(b)) {
		struct sdec x, y;

		if (json_is_integer(a) && json_is_integer(b))
			return json_integer_value(a) == json_integer_value(b);
		if (sdec_from_json(a, &x) || sdec_from_json(b, &y))
			return 0;
		return sdec_cmp(&x, &y) == 0;
	}
	if (json_typeof(a) != json_typeof(b))
		return 0;
	switch (json_typeof(a)) {
	case JSON_STRING:
		return json_string_length(a) == json_string_length(b) &&
		       !memcmp(json_string_value(a), json_string_value(b), json_string_length(a));
	case JSON_ARRAY: {
		size_t n = json_array_size(a);

		if (n != json_array_size(b))
			return 0;
		for (size_t i = 0; i < n; i++) {
			if (!equal_depth(json_array_get(a, i), json_array_get(b, i), depth + 1))
				return 0;
		}
		return 1;
	}
	case JSON_OBJECT: {
		const char *key;
		json_t *va;

		if (json_object_size(a) != json_object_size(b))
			return 0;
		json_object_foreach((json_t *)a, key, va) {
			json_t *vb = json_object_get(b, key);

			if (!vb || !equal_depth(va, vb, depth + 1))
				return 0;
		}
		return 1;
	}
	default: /* null, true, false: same type is same value */
		return 1;
	}
}

int schema_json_equal(const json_t *a, const json_t *b)
{
	/* strings are the common case (enum, uniqueItems): no recursion */
	if (json_is_string(a) && json_is_string(b))
		return json_string_length(a) == json_string_length(b) &&
		       !memcmp(json_string_value(a), json_string_value(b), json_string_length(a));
	return equal_depth(a, b, 0);
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *s = p;

	for (size_t i = 0; i < n; i++) {
		h ^= s[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

static uint64_t mix(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return h;
}

static uint64_t hash_value(const json_t *v, int depth)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	if (depth > SCHEMA_MAX_INSTANCE_DEPTH)
		return h;
	switch (json_typeof(v)) {
	case JSON_INTEGER:
	case JSON_REAL: {
		struct sdec d;

		if (sdec_from_json(v, &d))
			return h;
		h = fnv(h, "n", 1);
		h = fnv(h, d.digits, (size_t)d.ndigits);
		h = fnv(h, &d.exp, sizeof(d.exp));
		return fnv(h, &d.neg, sizeof(d.neg));
	}
	case JSON_STRING:
		h = fnv(h, "s", 1);
		return fnv(h, json_string_value(v), json_string_length(v));
	case JSON_ARRAY:
		h = fnv(h, "a", 1);
		for (size_t i = 0; i < json_array_size(v); i++)
			h = mix(h ^ hash_value(json_array_get(v, i), depth + 1));
		return h;
	case JSON_OBJECT: {
		const char *key;
		json_t *m;
		uint64_t sum = 0;

		json_object_foreach((json_t *)v, key, m) {
			uint64_t hk = fnv(0xcbf29ce484222325ULL, key, strlen(key));

			sum += mix(hk ^ mix(hash_value(m, depth + 1)));
		}
		return fnv(h, "o", 1) ^ sum;
	}
	case JSON_TRUE:
		return fnv(h, "t", 1);
	case JSON_FALSE:
		return fnv(h, "f", 1);
	default:
		return fnv(h, "z", 1);
	}
}

struct hashed {
	uint64_t h;
	size_t i;
};

static int cmp_hashed(const void *a, const void *b)
{
	const struct hashed *x = a, *y = b;

	return (x->h > y->h) - (x->h < y->h);
}

/* Up to this many items every pair is compared: cheaper than hashing. */
#define SMALL_ARRAY 16

/* The items are fetched once; an array of strings (tags, ids: the usual
 * case) compares lengths first and looks at bytes only when they agree. */
static int small_has_duplicates(const json_t *arr, size_t n)
{
	const json_t *item[SMALL_ARRAY];
	size_t len[SMALL_ARRAY];
	int strings = 1;

	for (size_t i = 0; i < n; i++) {
		item[i] = json_array_get(arr, i);
		strings &= json_is_string(item[i]);
	}
	if (!strings) {
		for (size_t i = 0; i < n; i++)
			for (size_t j = i + 1; j < n; j++)
				if (schema_json_equal(item[i], item[j]))
					return 1;
		return 0;
	}
	for (size_t i = 0; i < n; i++)
		len[i] = json_string_length(item[i]);
	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++)
			if (len[i] == len[j] && schema_bytes_equal(json_string_value(item[i]),
								  json_string_value(item[j]), len[i]))
				return 1;
	return 0;
}

int schema_json_has_duplicates(const json_t *arr)
{
	size_t n = json_array_size(arr);
	struct hashed *hs;
	int dup = 0;

	if (n < 2)
		return 0;
	if (n <= SMALL_ARRAY)
		return small_has_duplicates(arr, n);
	hs = calloc(n, sizeof(*hs));
	if (!hs) { /* out of memory: fall back to the slow exact answer */
		for (size_t i = 0; i < n; i++)
			for (size_t j = i + 1; j < n; j++)
				if (schema_json_equal(json_array_get(arr, i), json_array_get(arr, j)))
					return 1;
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		hs[i].h = hash_value(json_array_get(arr, i), 0);
		hs[i].i = i;
	}
	qsort(hs, n, sizeof(*hs), cmp_hashed);
	for (size_t i = 0; i < n && !dup; i++) {
		for (size_t j = i + 1; j < n && hs[j].h == hs[i].h; j++) {
			if (schema_json_equal(json_array_get(arr, hs[i].i), json_array_get(arr, hs[j].i))) {
				dup = 1;
				break;
			}
		}
	}
	free(hs);
	return dup;
}
