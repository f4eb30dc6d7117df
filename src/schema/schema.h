/*
 * JSON Schema draft 7: compile a schema once, validate instances many times.
 *
 * Agents register input and output schemas; Nexra checks every task input
 * and every result against them. A contract that the validator half
 * understands is worse than none, so this module implements the whole
 * draft-07 validation vocabulary and is run against the official
 * JSON-Schema-Test-Suite (tests/schema-suite/).
 *
 * Shape:
 *   - schema_compile() first validates the schema against the embedded
 *     draft-07 meta-schema (errors then name the *schema* path), then builds
 *     an immutable internal form: keywords pre-parsed, numbers pre-converted
 *     to exact decimals, regexes pre-compiled (PCRE2, JIT when available),
 *     every $ref resolved to a compiled node. Cycles through $ref are just
 *     pointers between nodes.
 *   - schema_validate() walks that form; it never looks at the schema JSON
 *     again except for const/enum values (compared by deep equality). A
 *     compiled schema is read-only: many threads may validate concurrently.
 *   - Remote references are never fetched. A $ref to another document is
 *     resolved through the caller's struct schema_registry (the server maps
 *     it to schemas registered in the same org; the suite runner reads files
 *     from disk); without a registry only the schema itself and the draft-07
 *     meta-schema can be referenced.
 *
 * Numbers: jansson parses reals into doubles and refuses integers outside
 * json_int_t (int64) at parse time ("too big integer"). Callers that must
 * accept such integers parse with JSON_DECODE_INT_AS_REAL, in which case they
 * are compared as the nearest double. Each double is compared through its
 * shortest round-trip decimal form, exactly (no floating tolerance), so
 * 0.3 is a multiple of 0.1 and 1e308 is not a multiple of 0.123456789.
 *
 * Every resource has a named limit below; going past one is an error
 * (compile) or a validation failure with a message that says so (validate),
 * never a hang, a stack overflow or an unbounded allocation.
 */
#ifndef NEXRA_SCHEMA_SCHEMA_H
#define NEXRA_SCHEMA_SCHEMA_H

#include <jansson.h>
#include <stddef.h>

/* Compile-time limits (schema side). */
#define SCHEMA_MAX_NODES 20000       /* JSON values in one schema document */
#define SCHEMA_MAX_DEPTH 64          /* nesting of the schema document */
#define SCHEMA_MAX_DOCUMENTS 16      /* remote documents one schema may pull in */
#define SCHEMA_MAX_PATTERN 4096      /* bytes of one regular expression */
#define SCHEMA_MAX_URI 2048          /* bytes of one resolved $id / $ref URI */

/* Run-time limits (instance side). */
#define SCHEMA_MAX_INSTANCE_DEPTH 128 /* nesting of the instance */
#define SCHEMA_MAX_EVAL_DEPTH 512     /* nested schema applications, $ref included */
#define SCHEMA_REGEX_MATCH_LIMIT 100000 /* pcre2_set_match_limit */
#define SCHEMA_REGEX_DEPTH_LIMIT 1000   /* pcre2_set_depth_limit (interpreter) */

/* Error reporting. */
#define SCHEMA_MAX_ERRORS 32
#define SCHEMA_PATH_MAX 256
#define SCHEMA_KEYWORD_MAX 24
#define SCHEMA_MESSAGE_MAX 200

/* Compile flags. */
#define SCHEMA_FORMAT_ASSERT 0x1 /* treat "format" as an assertion (draft 7
				    makes it an annotation by default) */

struct schema;

/* One failure: where in the instance (a JSON pointer, "" for the root;
 * during schema_compile, where in the schema), which keyword, what. */
struct schema_error {
	char path[SCHEMA_PATH_MAX];
	char keyword[SCHEMA_KEYWORD_MAX];
	char message[SCHEMA_MESSAGE_MAX];
};

/* Caller-owned (embed it or put it on the stack: ~15 KiB). schema_compile
 * and schema_validate reset it before use. truncated is set when more than
 * SCHEMA_MAX_ERRORS failures were found (only the first are kept). */
struct schema_errors {
	size_t count;
	int truncated;
	struct schema_error items[SCHEMA_MAX_ERRORS];
};

void schema_errors_init(struct schema_errors *errs);

/* "/company_name: expected string, got number (type)" into out (always
 * NUL-terminated, truncated to outsz). The root path prints as "/". */
void schema_error_format(const struct schema_error *e, char *out, size_t outsz);

/*
 * Where $refs to other documents go. lookup gets an absolute URI without
 * fragment ("https://nexra.example/schemas/acme/address.json") and returns 0
 * with *out a NEW reference to the document (compile takes it over), or a
 * negative error (E(NOT_FOUND) when there is no such schema). It is called
 * only during schema_compile, never during validation, and never by this
 * module's own initiative for anything but a $ref.
 */
struct schema_registry {
	int (*lookup)(void *ctx, const char *uri, json_t **out);
	void *ctx;
};

/*
 * Check schema against the draft-07 meta-schema, then compile it. schema is
 * borrowed (an extra reference is held by *out for const/enum values, so the
 * caller may drop its own). reg may be NULL. flags: SCHEMA_FORMAT_ASSERT or 0.
 * Returns 0 with *out set (free with schema_free), or:
 *   E(VALIDATION) the schema is not a valid draft-07 schema, or a $ref does
 *                 not resolve, or a pattern does not compile (errs says where),
 *   E(TOO_LARGE)  a limit above was exceeded,
 *   E(INTERNAL)   out of memory.
 * errs may be NULL.
 */
int schema_compile_flags(const json_t *schema, const struct schema_registry *reg, unsigned flags,
			 struct schema **out, struct schema_errors *errs);
int schema_compile(const json_t *schema, const struct schema_registry *reg, struct schema **out,
		   struct schema_errors *errs);

void schema_free(struct schema *s); /* NULL is fine */

/*
 * Validate instance (borrowed) against s. Returns 0 when valid, E(VALIDATION)
 * when not, with every failure up to SCHEMA_MAX_ERRORS in errs (errs may be
 * NULL: validation then stops at the first failure). E(INTERNAL) on out of
 * memory. Thread-safe for a shared s.
 */
int schema_validate(const struct schema *s, const json_t *instance, struct schema_errors *errs);

/* Schemas compiled from JSON so far in this process (atomic). Validation
 * never changes it: tests use it to show that validating does not compile. */
unsigned long schema_stat_compiles(void);

#endif
