/*
 * Fuzz target: the depth pre-check that runs before jansson sees a body.
 * For every input jansson accepts, json_depth must be at least the nesting
 * depth of the parsed tree (or a deep body would slip past the limit), and
 * equal to it when there are no duplicate keys (or a valid body would be
 * refused), and
 * json_parse_object must accept exactly the objects no deeper than
 * JSON_MAX_DEPTH without duplicate keys. abort() otherwise.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"

static size_t tree_depth(json_t *v)
{
	size_t d = 0, i;
	const char *k;
	json_t *c;

	if (json_is_object(v)) {
		json_object_foreach(v, k, c) {
			size_t x = tree_depth(c);

			d = x > d ? x : d;
		}
		return d + 1;
	}
	if (json_is_array(v)) {
		json_array_foreach(v, i, c) {
			size_t x = tree_depth(c);

			d = x > d ? x : d;
		}
		return d + 1;
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	size_t depth = json_depth(text, size);
	json_error_t je;
	json_t *v = json_loadb(text, size, JSON_DECODE_ANY, &je), *obj = NULL, *strict;
	struct jerr e;
	int rc;

	memset(&e, 0, sizeof(e));
	rc = json_parse_object(text, size, &obj, &e);
	if (!v) {
		if (rc == 0)
			abort(); /* json_parse_object accepted what jansson refuses */
		return 0;
	}
	/* a duplicate key keeps only its last value, which may be shallower
	 * than the text: exact only when there are none */
	strict = json_loadb(text, size, JSON_REJECT_DUPLICATES, &je);
	if (depth < tree_depth(v) || (strict && depth != tree_depth(strict)))
		abort();
	if (rc == 0) {
		if (!json_is_object(obj) || !strict || depth > JSON_MAX_DEPTH)
			abort();
	} else if (json_is_object(v) && depth <= JSON_MAX_DEPTH && strict) {
		abort(); /* refused a shallow object without duplicates */
	}
	json_decref(strict);
	json_decref(obj);
	json_decref(v);
	return 0;
}
