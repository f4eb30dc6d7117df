/*
 * Request JSON reading; see json.h. Messages are written for the person who
 * sent the request: they name the field by its dotted path and say what was
 * expected and what came instead.
 */
#include "core/json.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "core/money.h"
#include "core/banned.h"

int jerr_set(struct jerr *e, const char *field, const char *fmt, ...)
{
	va_list ap;
	char msg[300];

	if (e->message[0])
		return E(VALIDATION);
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(e->field, sizeof(e->field), "%s", field);
	if (field[0])
		snprintf(e->message, sizeof(e->message), "%s: %s", field, msg);
	else
		snprintf(e->message, sizeof(e->message), "%s", msg);
	return E(VALIDATION);
}

void json_path(char *out, size_t outsz, const char *path, const char *key)
{
	if (!key[0])
		key = "\"\""; /* name an empty member name visibly */
	if (path && path[0])
		snprintf(out, outsz, "%s.%s", path, key);
	else
		snprintf(out, outsz, "%s", key);
}

const char *json_type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "object";
	case JSON_ARRAY: return "array";
	case JSON_STRING: return "string";
	case JSON_INTEGER:
	case JSON_REAL: return "number";
	case JSON_TRUE:
	case JSON_FALSE: return "boolean";
	default: return "null";
	}
}

size_t json_depth(const char *text, size_t len)
{
	size_t depth = 0, max = 0;
	int in_str = 0;

	for (size_t i = 0; i < len; i++) {
		char c = text[i];

		if (in_str) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_str = 0;
			continue;
		}
		if (c == '"') {
			in_str = 1;
		} else if (c == '{' || c == '[') {
			if (++depth > max)
				max = depth;
		} else if ((c == '}' || c == ']') && depth) {
			depth--;
		}
	}
	return max;
}

int json_parse_object(const char *text, size_t len, json_t **out, struct jerr *e)
{
	json_error_t je;
	json_t *v;

	*out = NULL;
	if (len == 0)
		return jerr_set(e, "body", "a JSON object is required");
	if (json_depth(text, len) > JSON_MAX_DEPTH)
		return jerr_set(e, "body", "JSON is nested deeper than %d levels", JSON_MAX_DEPTH);
	v = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	if (!v)
		return jerr_set(e, "body", "malformed JSON at line %d column %d: %s", je.line,
				je.column, je.text);
	if (!json_is_object(v)) {
		const char *t = json_type_name(v);

		json_decref(v);
		return jerr_set(e, "body", "expected a JSON object, got %s", t);
	}
	*out = v;
	return 0;
}

int json_only_keys(const json_t *obj, const char *path, const char *const *allowed,
		   struct jerr *e)
{
	const char *key;
	json_t *v;
	char f[160];

	json_object_foreach((json_t *)obj, key, v) {
		int ok = 0;

		for (const char *const *a = allowed; *a; a++)
			if (!strcmp(*a, key)) {
				ok = 1;
				break;
			}
		if (!ok) {
			json_path(f, sizeof(f), path, key);
			return jerr_set(e, f, "unknown field");
		}
	}
	return 0;
}

/* Common prologue: absent (1 or error) / present with value in *v. */
static int lookup(const json_t *obj, const char *path, const char *key, int required,
		  json_t **v, char *f, size_t fsz, struct jerr *e)
{
	json_path(f, fsz, path, key);
	*v = json_object_get(obj, key);
	if (!*v)
		return required ? jerr_set(e, f, "is required") : 1;
	return 0;
}

/* Characters (code points) of valid UTF-8, which jansson guarantees. */
static size_t utf8_chars(const char *s, size_t len)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++)
		n += ((unsigned char)s[i] & 0xc0) != 0x80;
	return n;
}

int json_get_string(const json_t *obj, const char *path, const char *key, int required,
		    size_t minlen, size_t maxlen, const char **out, struct jerr *e)
{
	char f[160];
	json_t *v;
	size_t n;
	int rc = lookup(obj, path, key, required, &v, f, sizeof(f), e);

	if (rc)
		return rc;
	if (!json_is_string(v))
		return jerr_set(e, f, "expected a string, got %s", json_type_name(v));
	n = utf8_chars(json_string_value(v), json_string_length(v));
	if (n < minlen)
		return minlen == 1 ? jerr_set(e, f, "must not be empty")
				   : jerr_set(e, f, "must be at least %zu characters, got %zu",
					      minlen, n);
	if (n > maxlen)
		return jerr_set(e, f, "must be at most %zu characters, got %zu", maxlen, n);
	*out = json_string_value(v);
	return 0;
}

int json_get_bool(const json_t *obj, const char *path, const char *key, int required,
		  int *out, struct jerr *e)
{
	char f[160];
	json_t *v;
	int rc = lookup(obj, path, key, required, &v, f, sizeof(f), e);

	if (rc)
		return rc;
	if (!json_is_boolean(v))
		return jerr_set(e, f, "expected a boolean, got %s", json_type_name(v));
	*out = json_is_true(v);
	return 0;
}

int json_get_object(const json_t *obj, const char *path, const char *key, int required,
		    json_t **out, struct jerr *e)
{
	char f[160];
	json_t *v;
	int rc = lookup(obj, path, key, required, &v, f, sizeof(f), e);

	if (rc)
		return rc;
	if (!json_is_object(v))
		return jerr_set(e, f, "expected an object, got %s", json_type_name(v));
	*out = v;
	return 0;
}

int json_get_int(const json_t *obj, const char *path, const char *key, int required,
		 int64_t min, int64_t max, int64_t *out, struct jerr *e)
{
	char f[160];
	json_t *v;
	json_int_t i;
	int rc = lookup(obj, path, key, required, &v, f, sizeof(f), e);

	if (rc)
		return rc;
	if (!json_is_integer(v))
		return jerr_set(e, f, "expected an integer, got %s",
				json_is_real(v) ? "a fractional number" : json_type_name(v));
	i = json_integer_value(v);
	if (i < min || i > max)
		return jerr_set(e, f, "must be between %lld and %lld, got %lld", (long long)min,
				(long long)max, (long long)i);
	*out = i;
	return 0;
}

int json_get_number(const json_t *obj, const char *path, const char *key, int required,
		    double min, double max, double *out, struct jerr *e)
{
	char f[160];
	json_t *v;
	double d;
	int rc = lookup(obj, path, key, required, &v, f, sizeof(f), e);

	if (rc)
		return rc;
	if (!json_is_number(v))
		return jerr_set(e, f, "expected a number, got %s", json_type_name(v));
	d = json_number_value(v);
	if (!(d >= min && d <= max))
		return jerr_set(e, f, "must be between %g and %g, got %g", min, max, d);
	*out = d;
	return 0;
}

int json_get_money(const json_t *obj, const char *path, const char *key, int required,
		   int64_t max_micros, int64_t *out, struct jerr *e)
{
	char f[160], maxs[40];
	json_t *v;
	int rc = lookup(obj, path, key, required, &v, f, sizeof(f), e);

	if (rc)
		return rc;
	if (!json_is_number(v))
		return jerr_set(e, f, "expected a USD amount (number), got %s", json_type_name(v));
	if (json_is_integer(v))
		rc = money_from_int(json_integer_value(v), max_micros, out);
	else
		rc = money_from_double(json_real_value(v), max_micros, out);
	if (rc) {
		money_format(max_micros, maxs, sizeof(maxs));
		return jerr_set(e, f,
				"must be a USD amount >= 0 and <= %s with at most 6 decimals",
				maxs);
	}
	return 0;
}

int json_get_enum(const json_t *obj, const char *path, const char *key, int required,
		  const char *const *allowed, const char **out, struct jerr *e)
{
	char f[160], list[256] = "";
	size_t used = 0;
	const char *s;
	int rc = json_get_string(obj, path, key, required, 0, 256, &s, e);

	if (rc)
		return rc;
	for (const char *const *a = allowed; *a; a++)
		if (!strcmp(*a, s)) {
			*out = *a;
			return 0;
		}
	/* refused: only now spell out the choices */
	for (const char *const *a = allowed; *a && used < sizeof(list); a++)
		used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s",
					 a == allowed ? "" : ", ", *a);
	json_path(f, sizeof(f), path, key);
	return jerr_set(e, f, "must be one of %s", list);
}
