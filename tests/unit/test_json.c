/*
 * core/json: the depth pre-check, body parsing, and the field getters whose
 * messages all read "<dotted path>: <what was expected>".
 */
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/json.h"
#include "test.h"

static json_t *obj(const char *text)
{
	json_error_t je;

	return json_loads(text, 0, &je);
}

/* {"a": ... n levels in total ... {}} */
static char *nested(int levels)
{
	size_t cap = (size_t)levels * 6 + 8, n = 0;
	char *s = malloc(cap);

	for (int i = 0; i < levels - 1; i++) {
		memcpy(s + n, "{\"a\":", 5);
		n += 5;
	}
	s[n++] = '{';
	for (int i = 0; i < levels; i++)
		s[n++] = '}';
	s[n] = '\0';
	return s;
}

TEST(json_depth_counts_structure_only)
{
	static const struct {
		const char *text;
		size_t depth;
	} cases[] = {
		{"", 0},
		{"1", 0},
		{"{}", 1},
		{"[[]]", 2},
		{"{\"a\":[{\"b\":[]}],\"c\":{}}", 4},
		{"{\"a\":\"[[[[{{{{\"}", 1},
		{"{\"a\":\"\\\"[[[\"}", 1},         /* escaped quote keeps the string open */
		{"[\"\\\\\",[]]", 2},              /* escaped backslash then a real quote */
		{"[\"\\\\\\\"[\"]", 1},            /* \\ then \" : still inside */
		{"\"]]]]{{\"", 0},
		{"]]][[", 2},                      /* stray closers never go below zero */
		{"[[],[],[[]]]", 3},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t d = json_depth(cases[i].text, strlen(cases[i].text));

		if (d != cases[i].depth)
			FAIL_AT("json_depth(%s) = %zu, want %zu", cases[i].text, d, cases[i].depth);
	}
	/* len is honoured: bytes past it are not looked at */
	ASSERT_EQ(json_depth("[[[[", 2), 2);
}

TEST(json_parse_object_empty_and_malformed)
{
	struct jerr e = {0};
	json_t *v = (json_t *)1;

	ASSERT_EQ(json_parse_object("", 0, &v, &e), E(VALIDATION));
	ASSERT(v == NULL);
	ASSERT_STR_EQ(e.field, "body");
	ASSERT_CONTAINS(e.message, "JSON object is required");

	memset(&e, 0, sizeof(e));
	ASSERT_EQ(json_parse_object("{\"a\":1,}", 8, &v, &e), E(VALIDATION));
	ASSERT_CONTAINS(e.message, "malformed JSON at line 1 column");
	ASSERT_STR_EQ(e.field, "body");

	memset(&e, 0, sizeof(e));
	ASSERT_EQ(json_parse_object("{\n\"a\": tru\n}", 12, &v, &e), E(VALIDATION));
	ASSERT_CONTAINS(e.message, "line 2 column");

	memset(&e, 0, sizeof(e));
	ASSERT_EQ(json_parse_object("{\"a\":1} x", 9, &v, &e), E(VALIDATION));
	ASSERT_CONTAINS(e.message, "malformed JSON");
}

TEST(json_parse_object_refuses_non_objects)
{
	static const char *const bodies[] = {"[1]", "[]"};
	struct jerr e;
	json_t *v;

	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		memset(&e, 0, sizeof(e));
		ASSERT_EQ(json_parse_object(bodies[i], strlen(bodies[i]), &v, &e), E(VALIDATION));
		ASSERT(v == NULL);
		ASSERT_CONTAINS(e.message, "expected a JSON object, got array");
	}
	/* scalars at the top level are refused too (by the parser) */
	memset(&e, 0, sizeof(e));
	ASSERT_EQ(json_parse_object("\"s\"", 3, &v, &e), E(VALIDATION));
	ASSERT(v == NULL);
	memset(&e, 0, sizeof(e));
	ASSERT_EQ(json_parse_object("42", 2, &v, &e), E(VALIDATION));
	ASSERT(v == NULL);
}

TEST(json_parse_object_depth_limit)
{
	char *deep = nested(65), *ok = nested(64);
	struct jerr e = {0};
	json_t *v = NULL;
	int rc;

	ASSERT_EQ(json_depth(deep, strlen(deep)), 65);
	ASSERT_EQ(json_depth(ok, strlen(ok)), 64);
	rc = json_parse_object(deep, strlen(deep), &v, &e);
	free(deep);
	if (rc != E(VALIDATION) || v) {
		free(ok);
		json_decref(v);
		FAIL_AT("65 levels accepted");
	}
	ASSERT_CONTAINS(e.message, "deeper");
	ASSERT_CONTAINS(e.message, "64");
	memset(&e, 0, sizeof(e));
	rc = json_parse_object(ok, strlen(ok), &v, &e);
	free(ok);
	ASSERT_EQ(rc, 0);
	ASSERT(json_is_object(v));
	json_decref(v);

	/* brackets inside strings do not count toward the limit */
	{
		char s[300] = "{\"a\":\"";
		size_t n = strlen(s);

		memset(s + n, '[', 200);
		memcpy(s + n + 200, "\"}", 3);
		memset(&e, 0, sizeof(e));
		ASSERT_EQ(json_parse_object(s, strlen(s), &v, &e), 0);
		json_decref(v);
	}
}

TEST(json_parse_object_refuses_duplicate_keys)
{
	struct jerr e = {0};
	json_t *v = NULL;
	const char *s = "{\"a\":1,\"b\":{\"c\":1,\"c\":2}}";

	ASSERT_EQ(json_parse_object(s, strlen(s), &v, &e), E(VALIDATION));
	ASSERT(v == NULL);
	ASSERT_CONTAINS(e.message, "duplicate");
	memset(&e, 0, sizeof(e));
	s = "{\"a\":1,\"a\":1}";
	ASSERT_EQ(json_parse_object(s, strlen(s), &v, &e), E(VALIDATION));
}

TEST(json_getters_name_the_dotted_path)
{
	json_t *root = obj("{\"pricing\":{\"per_call_usd\":\"x\",\"n\":1.5,\"s\":\"abc\",\"b\":1,"
			   "\"o\":[],\"i\":1.5,\"big\":100,\"e\":\"zzz\",\"neg\":-1,\"frac\":0.1234567}}");
	json_t *p = json_object_get(root, "pricing");
	const char *s = NULL;
	json_t *o = NULL;
	int64_t i64 = 0;
	double d = 0;
	int b = 0;
	static const char *const choices[] = {"research", "analysis", "other", NULL};
	struct jerr e;

	ASSERT(p);
#define CHECK(call, fld, txt)                                                                \
	do {                                                                                  \
		memset(&e, 0, sizeof(e));                                                     \
		if ((call) != E(VALIDATION)) {                                                \
			json_decref(root);                                                    \
			FAIL_AT("%s did not fail", #call);                                    \
		}                                                                             \
		if (strcmp(e.field, fld) || strncmp(e.message, fld ": ", strlen(fld ": ")) ||  \
		    !strstr(e.message, txt)) {                                                \
			json_decref(root);                                                    \
			FAIL_AT("%s: field \"%s\" message \"%s\"", #call, e.field, e.message); \
		}                                                                             \
	} while (0)

	CHECK(json_get_money(p, "pricing", "per_call_usd", 1, 1000000, &i64, &e),
	      "pricing.per_call_usd", "expected a USD amount (number), got string");
	CHECK(json_get_money(p, "pricing", "neg", 1, 1000000, &i64, &e), "pricing.neg",
	      "must be a USD amount >= 0 and <= 1 with at most 6 decimals");
	CHECK(json_get_money(p, "pricing", "frac", 1, 1000000000000LL, &i64, &e), "pricing.frac",
	      "at most 6 decimals");
	CHECK(json_get_string(p, "pricing", "n", 1, 1, 10, &s, &e), "pricing.n",
	      "expected a string, got number");
	CHECK(json_get_string(p, "pricing", "s", 1, 4, 10, &s, &e), "pricing.s",
	      "must be at least 4 characters, got 3");
	CHECK(json_get_string(p, "pricing", "s", 1, 1, 2, &s, &e), "pricing.s",
	      "must be at most 2 characters, got 3");
	CHECK(json_get_bool(p, "pricing", "b", 1, &b, &e), "pricing.b",
	      "expected a boolean, got number");
	CHECK(json_get_object(p, "pricing", "o", 1, &o, &e), "pricing.o",
	      "expected an object, got array");
	CHECK(json_get_int(p, "pricing", "i", 1, 0, 10, &i64, &e), "pricing.i",
	      "expected an integer, got a fractional number");
	CHECK(json_get_int(p, "pricing", "s", 1, 0, 10, &i64, &e), "pricing.s",
	      "expected an integer, got string");
	CHECK(json_get_int(p, "pricing", "big", 1, 1, 10, &i64, &e), "pricing.big",
	      "must be between 1 and 10, got 100");
	CHECK(json_get_number(p, "pricing", "big", 1, 0.0, 1.0, &d, &e), "pricing.big",
	      "must be between 0 and 1, got 100");
	CHECK(json_get_number(p, "pricing", "s", 1, 0.0, 1.0, &d, &e), "pricing.s",
	      "expected a number, got string");
	CHECK(json_get_enum(p, "pricing", "e", 1, choices, &s, &e), "pricing.e",
	      "must be one of research, analysis, other");
	CHECK(json_get_enum(p, "pricing", "n", 1, choices, &s, &e), "pricing.n",
	      "expected a string");
	/* required and absent, for every getter */
	CHECK(json_get_string(p, "pricing", "missing", 1, 0, 9, &s, &e), "pricing.missing",
	      "is required");
	CHECK(json_get_bool(p, "pricing", "missing", 1, &b, &e), "pricing.missing", "is required");
	CHECK(json_get_object(p, "pricing", "missing", 1, &o, &e), "pricing.missing", "is required");
	CHECK(json_get_int(p, "pricing", "missing", 1, 0, 9, &i64, &e), "pricing.missing",
	      "is required");
	CHECK(json_get_number(p, "pricing", "missing", 1, 0, 9, &d, &e), "pricing.missing",
	      "is required");
	CHECK(json_get_money(p, "pricing", "missing", 1, 9, &i64, &e), "pricing.missing",
	      "is required");
	CHECK(json_get_enum(p, "pricing", "missing", 1, choices, &s, &e), "pricing.missing",
	      "is required");
	/* top level: the path is the key alone */
	CHECK(json_get_string(root, "", "pricing", 1, 0, 9, &s, &e), "pricing",
	      "expected a string, got object");
	CHECK(json_get_string(root, NULL, "nope", 1, 0, 9, &s, &e), "nope", "is required");
#undef CHECK
	json_decref(root);
}

TEST(json_getters_optional_absent_returns_1_untouched)
{
	json_t *root = obj("{}");
	struct jerr e = {0};
	const char *s = "keep";
	json_t *o = root;
	int64_t i64 = 7;
	double d = 7.5;
	int b = 7;
	static const char *const choices[] = {"x", NULL};

	ASSERT_EQ(json_get_string(root, "", "k", 0, 1, 9, &s, &e), 1);
	ASSERT_EQ(json_get_bool(root, "", "k", 0, &b, &e), 1);
	ASSERT_EQ(json_get_object(root, "", "k", 0, &o, &e), 1);
	ASSERT_EQ(json_get_int(root, "", "k", 0, 0, 9, &i64, &e), 1);
	ASSERT_EQ(json_get_number(root, "", "k", 0, 0, 9, &d, &e), 1);
	ASSERT_EQ(json_get_money(root, "", "k", 0, 9, &i64, &e), 1);
	ASSERT_EQ(json_get_enum(root, "", "k", 0, choices, &s, &e), 1);
	ASSERT_STR_EQ(s, "keep");
	ASSERT(o == root);
	ASSERT_EQ(i64, 7);
	ASSERT(d == 7.5);
	ASSERT_EQ(b, 7);
	ASSERT_STR_EQ(e.message, "");
	json_decref(root);
}

TEST(json_getters_success_values)
{
	json_t *root = obj("{\"s\":\"h\\u00e9llo\",\"b\":false,\"o\":{\"x\":1},\"i\":-3,\"n\":0.5,"
			   "\"ni\":1,\"m\":0.15,\"mi\":2,\"e\":\"analysis\"}");
	static const char *const choices[] = {"research", "analysis", NULL};
	struct jerr e = {0};
	const char *s = NULL;
	json_t *o = NULL;
	int64_t i64 = 0;
	double d = 0;
	int b = 1;

	ASSERT_EQ(json_get_string(root, "", "s", 1, 5, 5, &s, &e), 0); /* 5 characters, 6 bytes */
	ASSERT_STR_EQ(s, "h\xc3\xa9llo");
	ASSERT_EQ(json_get_string(root, "", "s", 1, 1, 4, &s, &e), E(VALIDATION));
	ASSERT_STR_EQ(e.message, "s: must be at most 4 characters, got 5");
	memset(&e, 0, sizeof(e));
	ASSERT_EQ(json_get_string(root, "", "s", 1, 6, 9, &s, &e), E(VALIDATION));
	ASSERT_STR_EQ(e.message, "s: must be at least 6 characters, got 5");
	memset(&e, 0, sizeof(e));
	ASSERT_EQ(json_get_bool(root, "", "b", 1, &b, &e), 0);
	ASSERT_EQ(b, 0);
	ASSERT_EQ(json_get_object(root, "", "o", 1, &o, &e), 0);
	ASSERT(json_is_object(o));
	ASSERT_EQ(json_get_int(root, "", "i", 1, -3, -3, &i64, &e), 0);
	ASSERT_EQ(i64, -3);
	ASSERT_EQ(json_get_number(root, "", "n", 1, 0, 1, &d, &e), 0);
	ASSERT(d == 0.5);
	ASSERT_EQ(json_get_number(root, "", "ni", 1, 0, 1, &d, &e), 0); /* an integer is a number */
	ASSERT(d == 1.0);
	ASSERT_EQ(json_get_money(root, "", "m", 1, 1000000, &i64, &e), 0);
	ASSERT_EQ(i64, 150000);
	ASSERT_EQ(json_get_money(root, "", "mi", 1, 2000000, &i64, &e), 0);
	ASSERT_EQ(i64, 2000000);
	ASSERT_EQ(json_get_enum(root, "", "e", 1, choices, &s, &e), 0);
	ASSERT(s == choices[1]); /* points at the table, not the document */
	ASSERT_STR_EQ(e.message, "");
	json_decref(root);
}

TEST(json_only_keys_and_first_error_wins)
{
	json_t *root = obj("{\"a\":1,\"sla\":{\"p99_latency_ms\":1,\"foo\":2}}");
	static const char *const top[] = {"a", "sla", NULL};
	static const char *const sla[] = {"p99_latency_ms", "availability", NULL};
	static const char *const none[] = {NULL};
	struct jerr e = {0};

	ASSERT_EQ(json_only_keys(root, "", top, &e), 0);
	ASSERT_EQ(json_only_keys(json_object_get(root, "sla"), "sla", sla, &e), E(VALIDATION));
	ASSERT_STR_EQ(e.field, "sla.foo");
	ASSERT_STR_EQ(e.message, "sla.foo: unknown field");
	/* a later error does not overwrite the first */
	ASSERT_EQ(json_only_keys(root, "", none, &e), E(VALIDATION));
	ASSERT_STR_EQ(e.field, "sla.foo");
	ASSERT_EQ(jerr_set(&e, "x", "y"), E(VALIDATION));
	ASSERT_STR_EQ(e.message, "sla.foo: unknown field");
	memset(&e, 0, sizeof(e));
	ASSERT_EQ(jerr_set(&e, "", "plain %d", 3), E(VALIDATION));
	ASSERT_STR_EQ(e.message, "plain 3");
	json_decref(root);
}

TEST(json_get_enum_lists_every_choice)
{
	json_t *root = obj("{\"capability_type\":\"bad\"}");
	static const char *const choices[] = {"research", "analysis", "generation", "enrichment",
					      "validation", "execution", "other", NULL};
	struct jerr e = {0};
	const char *s = NULL;

	ASSERT_EQ(json_get_enum(root, "", "capability_type", 1, choices, &s, &e), E(VALIDATION));
	ASSERT_STR_EQ(e.field, "capability_type");
	ASSERT_STR_EQ(e.message, "capability_type: must be one of research, analysis, generation, "
				 "enrichment, validation, execution, other");
	json_decref(root);
}

TEST(json_path_and_type_names)
{
	char f[16];
	json_t *v;

	json_path(f, sizeof(f), "", "a");
	ASSERT_STR_EQ(f, "a");
	json_path(f, sizeof(f), "sla", "availability");
	ASSERT_STR_EQ(f, "sla.availabilit"); /* truncated to the buffer, still terminated */
	json_path(f, sizeof(f), NULL, "b");
	ASSERT_STR_EQ(f, "b");
	v = json_null();
	ASSERT_STR_EQ(json_type_name(v), "null");
	v = json_true();
	ASSERT_STR_EQ(json_type_name(v), "boolean");
	v = json_integer(1);
	ASSERT_STR_EQ(json_type_name(v), "number");
	json_decref(v);
	v = json_real(1.5);
	ASSERT_STR_EQ(json_type_name(v), "number");
	json_decref(v);
}
