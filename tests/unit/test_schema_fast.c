/*
 * schema/: the success-path shortcuts of the validator give the answers the
 * general paths give. Each shortcut has a case where it applies and cases
 * where it must step aside: members in and out of the schema's order and
 * names that differ only in one byte, at every length class of the word
 * compare; multipleOf on integer parts and where that does not fit;
 * uniqueItems and string enums without jansson lookups; the PCRE2 JIT entry
 * for ASCII subjects and the checked one for the rest; leaf nodes next to
 * the depth limit. Failures must read exactly as before.
 */
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "schema/schema.h"
#include "test.h"

struct vcase {
	const char *schema;
	const char *instance;
	int valid;
	const char *first; /* the first failure as formatted, or NULL */
};

/* Runs one case with and without an error list; 1 when both agree with it
 * (what went wrong on stderr otherwise). */
static int run_case(const struct vcase *k)
{
	static struct schema_errors errs;
	json_t *js = json_loads(k->schema, JSON_DECODE_ANY, NULL);
	json_t *ji = json_loads(k->instance, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
	struct schema *s = NULL;
	char got[600] = "";
	int rc_list, rc_bare, ok;

	if (!js || !ji || schema_compile(js, NULL, &s, &errs)) {
		fprintf(stderr, "  case %s / %s: does not parse or compile\n", k->schema,
			k->instance);
		json_decref(js);
		json_decref(ji);
		return 0;
	}
	rc_list = schema_validate(s, ji, &errs);
	rc_bare = schema_validate(s, ji, NULL);
	if (errs.count)
		schema_error_format(&errs.items[0], got, sizeof(got));
	ok = rc_list == rc_bare && rc_list == (k->valid ? 0 : E(VALIDATION)) &&
	     (!k->first || !strcmp(got, k->first));
	if (!ok)
		fprintf(stderr, "  case %s / %s: rc %d/%d, first \"%s\"\n", k->schema, k->instance,
			rc_list, rc_bare, got);
	schema_free(s);
	json_decref(js);
	json_decref(ji);
	return ok;
}

static int run_cases(const struct vcase *k, size_t n)
{
	int ok = 1;

	for (size_t i = 0; i < n; i++)
		ok &= run_case(&k[i]);
	return ok;
}

#define NAMES                                                                     \
	"{\"type\":\"object\",\"additionalProperties\":false,"                  \
	"\"required\":[\"k\",\"abcd\",\"abcdefgh\"],\"properties\":{"           \
	"\"k\":{\"type\":\"integer\"},\"abcd\":{\"type\":\"integer\"},"         \
	"\"abcdefg\":{\"type\":\"integer\"},\"abcdefgh\":{\"type\":\"integer\"}," \
	"\"abcdefghijklmnop\":{\"type\":\"integer\"},"                          \
	"\"abcdefghijklmnopq\":{\"type\":\"integer\"}}}"

TEST(schema_fast_member_names)
{
	static const struct vcase cases[] = {
		/* in the schema's order, out of it, and reversed */
		{NAMES, "{\"k\":1,\"abcd\":2,\"abcdefg\":3,\"abcdefgh\":4,"
			"\"abcdefghijklmnop\":5,\"abcdefghijklmnopq\":6}", 1, NULL},
		{NAMES, "{\"abcdefgh\":4,\"k\":1,\"abcdefghijklmnopq\":6,\"abcd\":2}", 1, NULL},
		{NAMES, "{\"abcdefghijklmnopq\":\"x\",\"abcdefgh\":4,\"abcd\":2,\"k\":1}", 0,
		 "/abcdefghijklmnopq: expected integer, got string (type)"},
		/* one byte off, first, middle or last, at lengths 1, 4, 7, 8, 16, 17 */
		{NAMES, "{\"k\":1,\"abcd\":2,\"abcdefgh\":4,\"j\":0}", 0,
		 "/j: property not allowed (additionalProperties)"},
		{NAMES, "{\"k\":1,\"abcd\":2,\"abcdefgh\":4,\"abce\":0}", 0,
		 "/abce: property not allowed (additionalProperties)"},
		{NAMES, "{\"k\":1,\"abcd\":2,\"abcdefgh\":4,\"abcXefg\":0}", 0,
		 "/abcXefg: property not allowed (additionalProperties)"},
		{NAMES, "{\"k\":1,\"abcd\":2,\"abcdefgh\":4,\"Abcdefgh\":0}", 0,
		 "/Abcdefgh: property not allowed (additionalProperties)"},
		{NAMES, "{\"k\":1,\"abcd\":2,\"abcdefgh\":4,\"abcdefghiXklmnop\":0}", 0,
		 "/abcdefghiXklmnop: property not allowed (additionalProperties)"},
		{NAMES, "{\"k\":1,\"abcd\":2,\"abcdefgh\":4,\"abcdefghijklmnopQ\":0}", 0,
		 "/abcdefghijklmnopQ: property not allowed (additionalProperties)"},
		/* a prefix of a name */
		{NAMES, "{\"k\":1,\"abcd\":2,\"abcdefgh\":4,\"abc\":0}", 0,
		 "/abc: property not allowed (additionalProperties)"},
		/* required, found in any order */
		{NAMES, "{\"abcdefgh\":4,\"abcd\":2}", 0,
		 "/: missing required property \"k\" (required)"},
		{NAMES, "{\"abcdefgh\":4,\"abcdefg\":3,\"k\":1}", 0,
		 "/: missing required property \"abcd\" (required)"},
	};

	ASSERT(run_cases(cases, sizeof(cases) / sizeof(cases[0])));
}

/* A member name with a NUL after a known name is another name (jansson's
 * parser refuses such keys; a caller building JSON can make them). */
TEST(schema_fast_member_name_with_nul)
{
	static struct schema_errors errs;
	json_t *js = json_loads(NAMES, 0, NULL), *ji = json_object();
	struct schema *s = NULL;

	ASSERT(js && ji);
	ASSERT_EQ(schema_compile(js, NULL, &s, &errs), 0);
	json_object_set_new(ji, "k", json_integer(1));
	json_object_set_new(ji, "abcd", json_integer(2));
	json_object_set_new(ji, "abcdefgh", json_integer(4));
	ASSERT_EQ(schema_validate(s, ji, NULL), 0);
	json_object_setn_new(ji, "abcdefgh\0x", 10, json_integer(5));
	ASSERT_EQ(schema_validate(s, ji, &errs), E(VALIDATION));
	ASSERT_EQ(errs.count, 1);
	ASSERT_STR_EQ(errs.items[0].keyword, "additionalProperties");
	schema_free(s);
	json_decref(js);
	json_decref(ji);
}

/* multipleOf M: every item of pass is a multiple, no item of fail is (each
 * is reported). */
static int multiples(const char *m, const char *pass, const char *fail)
{
	static struct schema_errors errs;
	char text[128];
	json_t *js, *jp = json_loads(pass, 0, NULL), *jf = json_loads(fail, 0, NULL);
	struct schema *s = NULL;
	int ok;

	snprintf(text, sizeof(text), "{\"items\":{\"multipleOf\":%s}}", m);
	js = json_loads(text, 0, NULL);
	ok = js && jp && jf && !schema_compile(js, NULL, &s, &errs) &&
	     schema_validate(s, jp, NULL) == 0 && schema_validate(s, jf, &errs) == E(VALIDATION) &&
	     errs.count == json_array_size(jf);
	if (!ok)
		fprintf(stderr, "  multipleOf %s: pass %s, fail %s: wrong verdict\n", m, pass,
			fail);
	schema_free(s);
	json_decref(js);
	json_decref(jp);
	json_decref(jf);
	return ok;
}

TEST(schema_fast_multiple_of)
{
	static const struct vcase cases[] = {
		{"{\"multipleOf\":0.01}", "0.075", 0,
		 "/: expected a multiple of 0.01, got 0.075 (multipleOf)"},
		{"{\"multipleOf\":0.01}", "1e-7", 0,
		 "/: expected a multiple of 0.01, got 1e-7 (multipleOf)"},
		{"{\"multipleOf\":7}", "50", 0, "/: expected a multiple of 7, got 50 (multipleOf)"},
		/* bounds decided on doubles next to a multipleOf */
		{"{\"minimum\":0,\"maximum\":1000000,\"multipleOf\":0.01}", "1249.99", 1, NULL},
		{"{\"minimum\":0,\"maximum\":1000000,\"multipleOf\":0.01}", "-0.01", 0,
		 "/: expected >= 0, got -0.01 (minimum)"},
		{"{\"minimum\":0,\"maximum\":1000000,\"multipleOf\":0.01}", "1000000.01", 0,
		 "/: expected <= 1000000, got 1000000.01 (maximum)"},
	};

	ASSERT(run_cases(cases, sizeof(cases) / sizeof(cases[0])));
	ASSERT(multiples("0.01", "[19.99,-19.99,0,0.0,1000000,-9223372036854775808]",
			 "[0.075,1e-7,-0.001,100.001]"));
	ASSERT(multiples("7", "[9223372036854775807,49.0,-14,0]", "[50,7.5,-13]"));
	ASSERT(multiples("1e-5", "[0.00001,3,1.00001]", "[1.000001,1e-6]"));
	ASSERT(multiples("0.3", "[0.9,-0.6,3]", "[1,0.31]"));
	ASSERT(multiples("2.5", "[5e20,12.5,-2.5]", "[1,2.4999]"));
	ASSERT(multiples("1e20", "[2e20,0]", "[100,1.5e20]"));
	ASSERT(multiples("1.5e19", "[3e19]", "[9223372036854775807]"));
	ASSERT(multiples("0.125", "[0.375,1]", "[0.3]"));
}

#define UNIQUE "{\"uniqueItems\":true}"
#define ENUM4 "{\"enum\":[\"x\",\"abcd\",\"abcdefgh\",\"abcdefghijklmnopq\"]}"
#define TASK_ID "{\"pattern\":\"^tsk_[A-Za-z0-9]{8,32}$\"}"
#define A_TO_O                                                                    \
	"\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\",\"i\",\"j\",\"k\",\"l\",\"m\",\"n\",\"o\""
#define X_INT "{\"patternProperties\":{\"^x_\":{\"type\":\"integer\"}}}"

TEST(schema_fast_unique_items_and_enums)
{
	static const struct vcase cases[] = {
		{UNIQUE, "[\"ab\",\"cd\",\"ab\"]", 0,
		 "/: expected unique items, found duplicates (uniqueItems)"},
		{UNIQUE, "[\"abcdefgh1\",\"abcdefgh2\",\"abcdefgh\"]", 1, NULL},
		{UNIQUE, "[\"a\\u0000b\",\"a\\u0000c\"]", 1, NULL},
		{UNIQUE, "[\"x\",1,1.0]", 0, NULL},
		{UNIQUE, "[\"1\",1]", 1, NULL},
		/* 16 items are compared pairwise, 17 through hashes */
		{UNIQUE, "[" A_TO_O ",\"p\"]", 1, NULL},
		{UNIQUE, "[" A_TO_O ",\"a\"]", 0, NULL},
		{UNIQUE, "[" A_TO_O ",\"p\",\"p\"]", 0, NULL},
		{ENUM4, "\"abcdefgh\"", 1, NULL},
		{ENUM4, "\"abcdefghijklmnopq\"", 1, NULL},
		{ENUM4, "\"abcdefgX\"", 0, "/: expected one of the 4 allowed values (enum)"},
		{ENUM4, "\"abcdefghijklmnopX\"", 0, NULL},
		{"{\"enum\":[\"x\",\"abcd\"]}", "\"y\"", 0, NULL},
		{"{\"enum\":[\"1\",\"abcd\"]}", "1", 0, NULL},
		{"{\"type\":\"string\",\"maxLength\":3,\"enum\":[\"abcd\",\"ab\"]}", "\"abcd\"", 0,
		 "/: expected at most 3 characters, got 4 (maxLength)"},
	};

	ASSERT(run_cases(cases, sizeof(cases) / sizeof(cases[0])));
}

TEST(schema_fast_patterns)
{
	static const struct vcase cases[] = {
		{TASK_ID, "\"tsk_9f3Kq2LmZ81xYtA\"", 1, NULL},
		{TASK_ID, "\"tsk_9f3K\"", 0,
		 "/: expected to match ^tsk_[A-Za-z0-9]{8,32}$ (pattern)"},
		{TASK_ID, "\"tsk_9f3Kq2Lm\\u00e9\"", 0, NULL},
		{"{\"pattern\":\"^\\u00e9+x$\"}", "\"\\u00e9\\u00e9x\"", 1, NULL},
		{"{\"pattern\":\"^.{3}$\"}", "\"\\u00e9\\u20ac\\ud83d\\ude00\"", 1, NULL},
		{"{\"pattern\":\"^.{3}$\"}", "\"abcd\"", 0, NULL},
		{X_INT, "{\"x_a\":1,\"x_\\u00e9\":2}", 1, NULL},
		{X_INT, "{\"x_\\u00e9\":\"no\"}", 0,
		 "/x_\xc3\xa9: expected integer, got string (type)"},
	};

	ASSERT(run_cases(cases, sizeof(cases) / sizeof(cases[0])));
}

/* A leaf member at and past the instance depth limit: v_node and the leaf
 * shortcut must report the same bound. */
TEST(schema_fast_leaf_at_depth_limit)
{
	static struct schema_errors errs;
	json_t *js = json_loads("{\"definitions\":{\"n\":{\"type\":\"object\",\"properties\":"
				"{\"c\":{\"$ref\":\"#/definitions/n\"},"
				"\"v\":{\"type\":\"integer\"}}}},\"$ref\":\"#/definitions/n\"}",
				0, NULL);
	struct schema *s = NULL;

	ASSERT(js);
	ASSERT_EQ(schema_compile(js, NULL, &s, &errs), 0);
	for (int depth = SCHEMA_MAX_INSTANCE_DEPTH - 2; depth <= SCHEMA_MAX_INSTANCE_DEPTH + 1;
	     depth++) {
		json_t *root = json_object(), *cur = root;
		char msg[600];
		int rc;

		/* objects nested depth - 1 deep; the innermost has a leaf "v" at depth */
		for (int i = 1; i < depth; i++) {
			json_t *next = json_object();

			json_object_set_new(cur, "c", next);
			cur = next;
		}
		json_object_set_new(cur, "v", json_string("not an integer"));
		rc = schema_validate(s, root, &errs);
		ASSERT_EQ(rc, E(VALIDATION));
		ASSERT_EQ(schema_validate(s, root, NULL), E(VALIDATION));
		schema_error_format(&errs.items[0], msg, sizeof(msg));
		if (depth <= SCHEMA_MAX_INSTANCE_DEPTH)
			ASSERT_CONTAINS(msg, "expected integer, got string (type)");
		else
			ASSERT_CONTAINS(msg, "instance nested deeper than 128 levels (depth)");
		json_decref(root);
	}
	schema_free(s);
	json_decref(js);
}
