/*
 * Internals of the schema module, shared by its files and by nothing else:
 * the compiled node, exact decimals (number.c), deep equality (equal.c),
 * ECMA-262 regexes on PCRE2 (regex.c), URIs and JSON pointers (ref.c),
 * formats (format.c) and the embedded meta-schema (metaschema.c).
 *
 * A compiled schema is a graph of struct snode owned by struct schema: every
 * node is allocated once per schema JSON value (keyed by the json_t pointer),
 * so a $ref is a plain pointer to the target's node and a cycle is a cycle of
 * pointers. Nodes are freed together with the schema, never individually.
 */
#ifndef NEXRA_SCHEMA_INT_H
#define NEXRA_SCHEMA_INT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "schema/schema.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

/* ---- number.c: exact decimals ---------------------------------------- */

/* value = (neg ? -1 : 1) * digits * 10^exp, digits without leading or
 * trailing zeros ("" for zero, where exp is 0 and neg is 0). A double has at
 * most 17 significant digits, an int64 19. */
#define SCHEMA_DEC_DIGITS 24
struct sdec {
	char digits[SCHEMA_DEC_DIGITS + 1];
	int ndigits;
	int exp;
	int neg;
};

/* 0, or -1 when v is not a number or is not finite. */
int sdec_from_json(const json_t *v, struct sdec *d);
int sdec_from_double(double x, struct sdec *d);
void sdec_from_int(long long x, struct sdec *d);
int sdec_cmp(const struct sdec *a, const struct sdec *b); /* -1, 0, 1 */
int sdec_is_integer(const struct sdec *d);
/* 1 when x is an integer multiple of m (m > 0). */
int sdec_is_multiple(const struct sdec *x, const struct sdec *m);
/* Shortest decimal text for messages, into out. */
void sdec_format(const struct sdec *d, char *out, size_t outsz);

/* The same decimals without digit strings, for the validation fast path:
 * |v| = a * 10^p with a free of trailing zeros (a == 0 for zero). 0, or -1
 * when v is not a number or its shortest form does not fit (the caller
 * then takes the sdec path, which gives the same answers). */
int sdec_parts_from_json(const json_t *v, unsigned long long *a, int *p);
/* The parts of a multipleOf (m > 0) when its digits fit in 64 bits: 0, or -1. */
int sdec_parts(const struct sdec *m, unsigned long long *b, int *q);
/* sdec_is_multiple on parts: 1 when a * 10^p is a multiple of b * 10^q. */
int sdec_parts_multiple(unsigned long long a, int p, unsigned long long b, int q);

/* ---- equal.c ------------------------------------------------------------ */

/* JSON equality as the spec defines it: numbers by value (1 == 1.0),
 * objects regardless of member order. depth-bounded (deeper is unequal). */
int schema_json_equal(const json_t *a, const json_t *b);
/* 1 when two items of arr are equal. */
int schema_json_has_duplicates(const json_t *arr);

/* ---- regex.c ------------------------------------------------------------ */

struct sregex {
	pcre2_code *code;
	int jit;
};

/* Translate an ECMA-262 pattern to PCRE2 syntax and compile it. 0, or
 * E(VALIDATION) with a message in err (errsz bytes) when it does not compile,
 * E(TOO_LARGE) past SCHEMA_MAX_PATTERN. */
int sregex_compile(struct sregex *re, const char *pattern, size_t len, char *err, size_t errsz);
void sregex_release(struct sregex *re);
/* 1 match, 0 no match, -1 match limit hit (or another matching error). md
 * is a match data of at least one pair; mctx carries the limits. */
int sregex_match(const struct sregex *re, const char *s, size_t len, pcre2_match_data *md,
		 pcre2_match_context *mctx);
/* 1 when pattern is a valid ECMA-262 regex as far as we can tell. */
int sregex_valid(const char *pattern, size_t len);

/* ---- ref.c: URIs and JSON pointers --------------------------------------- */

/* Resolve ref against base (RFC 3986 section 5.2) into out. 0, or
 * E(TOO_LARGE) when the result does not fit. */
int suri_resolve(const char *base, const char *ref, char *out, size_t outsz);
/* Evaluate a URI fragment holding a JSON pointer ("/a/b~1c", percent-encoded)
 * from root; NULL when it does not lead anywhere. */
json_t *sptr_eval(json_t *root, const char *fragment);
/* Append a pointer segment (escaped ~0 ~1) to path (bounded; on overflow the
 * path ends in "..."). Returns the previous length for popping. */
size_t sptr_push(char *path, size_t pathsz, const char *seg);
size_t sptr_push_index(char *path, size_t pathsz, size_t i);

/* ---- format.c ------------------------------------------------------------ */

enum sformat {
	SFMT_NONE = 0,
	SFMT_DATE_TIME,
	SFMT_DATE,
	SFMT_TIME,
	SFMT_EMAIL,
	SFMT_IDN_EMAIL,
	SFMT_HOSTNAME,
	SFMT_IDN_HOSTNAME,
	SFMT_IPV4,
	SFMT_IPV6,
	SFMT_URI,
	SFMT_URI_REFERENCE,
	SFMT_IRI,
	SFMT_IRI_REFERENCE,
	SFMT_URI_TEMPLATE,
	SFMT_JSON_POINTER,
	SFMT_REL_JSON_POINTER,
	SFMT_REGEX,
};

enum sformat sformat_lookup(const char *name);
/* 1 valid, 0 not. Unknown formats are valid. */
int sformat_check(enum sformat f, const char *s, size_t len);

/* ---- metaschema.c -------------------------------------------------------- */

extern const char schema_metaschema_uri[];
extern const char schema_metaschema_text[];

/* ---- the compiled form --------------------------------------------------- */

enum {
	ST_NULL = 1 << 0,
	ST_BOOLEAN = 1 << 1,
	ST_OBJECT = 1 << 2,
	ST_ARRAY = 1 << 3,
	ST_NUMBER = 1 << 4,
	ST_STRING = 1 << 5,
	ST_INTEGER = 1 << 6,
};

/* Flags of which keywords a node has. */
enum {
	SK_TYPE = 1u << 0,
	SK_MINIMUM = 1u << 1,
	SK_MAXIMUM = 1u << 2,
	SK_XMINIMUM = 1u << 3,
	SK_XMAXIMUM = 1u << 4,
	SK_MULTIPLE = 1u << 5,
	SK_CONST = 1u << 6,
	SK_ENUM = 1u << 7,
	SK_UNIQUE = 1u << 8,
	SK_ADDITEMS = 1u << 9,
	SK_ANYSTRING = 1u << 10,   /* any of the string keywords */
	SK_ANYARRAY = 1u << 11,    /* any of the array keywords */
	SK_ANYOBJECT = 1u << 12,   /* any of the object keywords */
	SK_ANYNUMBER = 1u << 13,   /* any of the number keywords */
	SK_MULTFAST = 1u << 14,    /* multipleOf fits mult_b * 10^mult_q */
	SK_APPLY = 1u << 15,       /* allOf, anyOf, oneOf, not or if */
	SK_LEAF = 1u << 16,        /* none of $ref, SK_APPLY, array or object keywords:
				      validating it applies no other schema */
};

/* 1 when the 8 (4) bytes at a and b are equal. */
static inline int schema_eq8(const char *a, const char *b)
{
	uint64_t x, y;

	return memcpy(&x, a, 8), memcpy(&y, b, 8), x == y;
}

static inline int schema_eq4(const char *a, const char *b)
{
	uint32_t x, y;

	return memcpy(&x, a, 4), memcpy(&y, b, 4), x == y;
}

/* Equality of two byte strings of the same length len: for the short member
 * names and enum values validation compares, a (possibly overlapping) word
 * from each end instead of a call to memcmp. */
static inline int schema_bytes_equal(const char *a, const char *b, size_t len)
{
	if (len >= 8 && len <= 16)
		return schema_eq8(a, b) & schema_eq8(a + len - 8, b + len - 8);
	if (len >= 4 && len < 8)
		return schema_eq4(a, b) & schema_eq4(a + len - 4, b + len - 4);
	if (len < 4) {
		for (size_t i = 0; i < len; i++)
			if (a[i] != b[i])
				return 0;
		return 1;
	}
	return memcmp(a, b, len) == 0;
}

struct sslot;

struct sprop {
	const char *name; /* borrowed from the schema JSON */
	size_t len;
	struct snode *node;
	const struct sslot *slot; /* its entry in the name table */
};

/* A string borrowed from the schema JSON, with its length. */
struct sstr {
	const char *s;
	size_t len;
};

struct spattern {
	struct sregex re;
	const char *source; /* borrowed, for messages */
	struct snode *node;
};

/* Open-addressed table of the member names an object schema cares about
 * ("properties" and "required"), so validation does one lookup per instance
 * member instead of a jansson lookup per keyword and name. */
struct sslot {
	const char *name; /* borrowed; NULL for an empty slot */
	size_t len;
	uint32_t hash;
	int prop; /* index in props, or -1 */
	int req;  /* bit in the required mask, or -1 */
};

uint32_t schema_name_hash(const char *s, size_t len);

struct sdep {
	const char *name;     /* borrowed */
	struct snode *node;   /* schema dependency, or NULL */
	const char **names;   /* property dependency (borrowed strings) */
	size_t nnames;
};

/* Fields in the order validation reads them: what every value needs first
 * (a leaf string or number is decided within the first two cache lines),
 * the exact decimals and the applicators, read on failure or rarely, last. */
struct snode {
	int boolean; /* -1: an object schema; 0: false; 1: true */
	unsigned flags;
	unsigned types;
	struct snode *ref; /* "$ref": when set, every other keyword is ignored */

	long long min_length, max_length; /* -1 when absent */
	struct sregex pattern;
	int has_pattern;
	enum sformat format;
	/* The four bounds as doubles, and which of them are exactly integers
	 * of magnitude <= 2^53 (bit i for bound i, in the order of the sdecs
	 * below): for those, comparing the instance's double gives the exact
	 * answer, because rounding to double is monotone. */
	double bound_d[4];
	unsigned bounds_exact;
	int mult_q;
	unsigned long long mult_b; /* multiple = mult_b * 10^mult_q (SK_MULTFAST) */
	struct sstr *enum_strs; /* the enum when enum_strings, in order */
	const json_t *enum_values;
	int enum_strings; /* every enum value is a string: compare bytes */

	/* objects */
	int required_in_table; /* nrequired <= 64: required checked by mask */
	struct sslot *names; /* properties and required names */
	uint32_t names_mask; /* table size - 1 */
	struct sprop *props;
	size_t nprops;
	const char **required;
	size_t nrequired;
	struct spattern *pattern_props;
	size_t npattern_props;
	struct snode *additional_props;
	struct snode *property_names;
	long long min_props, max_props;
	struct sdep *deps;
	size_t ndeps;

	/* arrays */
	struct snode *items;        /* items as one schema */
	struct snode **items_array; /* items as an array */
	size_t nitems;
	int items_is_array;
	struct snode *additional_items;
	long long min_items, max_items;
	struct snode *contains;

	const json_t *const_value; /* borrowed from the schema JSON */
	struct snode **all_of, **any_of, **one_of;
	size_t nall_of, nany_of, none_of;
	struct snode *not_;
	struct snode *if_, *then_, *else_;

	struct sdec minimum, maximum, xminimum, xmaximum, multiple;
	const char *ref_text;
	const char *pattern_source;
	const char *format_name; /* borrowed, for messages */
};

struct schema {
	unsigned magic;
	unsigned flags;
	struct snode *root;
	struct snode **nodes; /* every node, for freeing */
	size_t nnodes, cap_nodes;
	json_t **docs; /* references held: the schema and remote documents */
	size_t ndocs;
	pcre2_match_context *mctx;
	int uses_regex;
};

#define SCHEMA_MAGIC 0x5c4e3a07u

/* The compiled draft-07 meta-schema, built once per process; NULL only if
 * that failed (out of memory). Owned by the module. */
const struct schema *schema_metaschema(void);

#endif
