/*
 * Fuzz target: JSON Schema compile and validate. The input is split at the
 * first NUL byte (or, without one, in half) into schema bytes and instance
 * bytes; each is parsed as any JSON value, the schema compiled (format
 * assertions on when the first byte is odd, so both modes are covered) and,
 * when it compiles, the instance validated with and without an error list.
 * A registry answers one remote URI so the remote path is exercised too.
 * Crashes, leaks, hangs and sanitizer reports are findings; a verdict that
 * differs between the two validations is too (abort).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "schema/schema.h"

static int lookup(void *ctx, const char *uri, json_t **out)
{
	(void)ctx;
	if (!strcmp(uri, "http://localhost:1234/remote.json")) {
		*out = json_pack("{s:s, s:{s:{s:s}}}", "type", "object", "properties", "a", "$ref",
				 "#");
		return *out ? 0 : E(INTERNAL);
	}
	return E(NOT_FOUND);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct schema_errors errs;
	struct schema_registry reg = {lookup, NULL};
	const uint8_t *nul = memchr(data, 0, size);
	size_t split = nul ? (size_t)(nul - data) : size / 2;
	size_t rest = nul ? split + 1 : split;
	json_t *schema_json, *instance;
	struct schema *s = NULL;

	if (size > 65536)
		return 0;
	schema_json = json_loadb((const char *)data, split, JSON_DECODE_ANY, NULL);
	instance = json_loadb((const char *)data + rest, size - rest, JSON_DECODE_ANY, NULL);
	if (!schema_json)
		goto out;
	if (schema_compile_flags(schema_json, &reg, size && (data[0] & 1) ? SCHEMA_FORMAT_ASSERT : 0,
				 &s, &errs))
		goto out;
	if (instance) {
		int a = schema_validate(s, instance, &errs);
		int b = schema_validate(s, instance, NULL);

		if (a != b)
			abort();
	}
	/* the schema validated against itself: schemas are instances too */
	schema_validate(s, schema_json, &errs);
out:
	schema_free(s);
	json_decref(schema_json);
	json_decref(instance);
	return 0;
}
