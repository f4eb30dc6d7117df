/*
 * Fuzz target: API key parsing, the first thing done with every
 * Authorization header. The bytes are tried as a key as they are, and as a
 * whole header through auth_bearer (on a NUL-terminated copy) whose token
 * is then parsed. An accepted key must have the documented shape (abort()
 * otherwise): 67 characters, its kind's prefix, and the lookup id equal to
 * the first 12 characters of the body.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/apikey.h"
#include "auth/auth.h"

static void parse(const char *s, size_t len)
{
	static const char *const prefixes[2] = {"nx_live_", "nx_test_"};
	char lookup[KEY_LOOKUP_LEN + 1];
	int kind = -1;

	if (apikey_parse(s, len, &kind, lookup))
		return;
	if (len != APIKEY_LEN || (kind != KEY_LIVE && kind != KEY_TEST) ||
	    memcmp(s, prefixes[kind], APIKEY_PREFIX_LEN) ||
	    strlen(lookup) != KEY_LOOKUP_LEN ||
	    memcmp(lookup, s + APIKEY_PREFIX_LEN, KEY_LOOKUP_LEN))
		abort();
	for (size_t i = APIKEY_PREFIX_LEN; i < len; i++)
		if (!strchr("abcdefghijklmnopqrstuvwxyz234567", s[i]) || !s[i])
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *h = malloc(size + 1);
	const char *tok;
	size_t len = 0;

	if (!h)
		return 0;
	parse((const char *)data, size);
	memcpy(h, data, size);
	h[size] = '\0';
	tok = auth_bearer(h, &len);
	if (tok) {
		if (tok < h || tok + len > h + size || len == 0)
			abort();
		parse(tok, len);
	}
	free(h);
	return 0;
}
