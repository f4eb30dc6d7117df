/*
 * Reading request JSON: parse a body with bounds (size is the HTTP layer's,
 * depth is checked here before jansson sees the bytes), and typed field
 * getters that produce the one kind of message Nexra gives for bad input:
 * "<field path>: <what was expected>", with the path also in jerr.field.
 *
 * Getters return 0 on success, 1 when an optional field is absent (out
 * untouched), or E(VALIDATION) with *e filled. Borrowed pointers (strings,
 * objects) live as long as the json_t they came from.
 */
#ifndef NEXRA_CORE_JSON_H
#define NEXRA_CORE_JSON_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define JSON_MAX_DEPTH 64
#define JSON_DUMP_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(15))

struct jerr {
	char field[160];
	char message[384];
};

/* Record the first error (later calls keep the first); returns E(VALIDATION). */
int jerr_set(struct jerr *e, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Deepest nesting of arrays/objects in text (strings skipped). Pure. */
size_t json_depth(const char *text, size_t len);

/* Parse a request body that must be a JSON object no deeper than
 * JSON_MAX_DEPTH and without duplicate keys. *out is a new reference. */
int json_parse_object(const char *text, size_t len, json_t **out, struct jerr *e);

/* Refuse members of obj not named in allowed (NULL-terminated). */
int json_only_keys(const json_t *obj, const char *path, const char *const *allowed,
		   struct jerr *e);

/* Field getters; path is the parent's dotted path ("" at top level).
 * String lengths are counted in characters (code points), not bytes. */
int json_get_string(const json_t *obj, const char *path, const char *key, int required,
		    size_t minlen, size_t maxlen, const char **out, struct jerr *e);
int json_get_bool(const json_t *obj, const char *path, const char *key, int required,
		  int *out, struct jerr *e);
int json_get_object(const json_t *obj, const char *path, const char *key, int required,
		    json_t **out, struct jerr *e);
int json_get_int(const json_t *obj, const char *path, const char *key, int required,
		 int64_t min, int64_t max, int64_t *out, struct jerr *e);
int json_get_number(const json_t *obj, const char *path, const char *key, int required,
		    double min, double max, double *out, struct jerr *e);
int json_get_money(const json_t *obj, const char *path, const char *key, int required,
		   int64_t max_micros, int64_t *out, struct jerr *e);
/* A string that must equal one of allowed (NULL-terminated). */
int json_get_enum(const json_t *obj, const char *path, const char *key, int required,
		  const char *const *allowed, const char **out, struct jerr *e);

/* "a.b" from parent path and key into out. */
void json_path(char *out, size_t outsz, const char *path, const char *key);

/* Name of a JSON value's type for messages ("string", "number", ...). */
const char *json_type_name(const json_t *v);

#endif
