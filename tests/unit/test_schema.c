/*
 * schema/: the draft-07 validator beyond what the official suite checks:
 * the error format and paths Nexra promises ("/company_name: expected
 * string, got number (type)"), all failures up to the limit, every limit
 * (cyclic $ref, deep nesting, catastrophic regex, schema size), exact
 * numbers, ECMA-262 regex semantics, the registry hook, and that a compiled
 * schema is used as is (the JSON can be freed; validation never compiles).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/err.h"
#include "schema/schema.h"
#include "test.h"

static struct schema_errors errs;

static json_t *j(const char *text)
{
	json_error_t e;
	json_t *v = json_loads(text, JSON_DECODE_ANY, &e);

	if (!v)
		fprintf(stderr, "  bad test JSON: %s: %s\n", text, e.text);
	return v;
}

/* Compiles schema text; NULL (and the first error on stderr) on failure. */
static struct schema *compile(const char *text)
{
	json_t *js = j(text);
	struct schema *s = NULL;
	int rc = schema_compile(js, NULL, &s, &errs);

	json_decref(js);
	if (rc && errs.count) {
		char line[600];

		schema_error_format(&errs.items[0], line, sizeof(line));
		fprintf(stderr, "  compile: %s\n", line);
	}
	return s;
}

/* Validates instance text; returns rc, errors in errs. */
static int check(const struct schema *s, const char *instance)
{
	json_t *ji = j(instance);
	int rc = schema_validate(s, ji, &errs);

	json_decref(ji);
	return rc;
}

static const char *line(size_t i)
{
	static char buf[600];

	if (i >= errs.count)
		return "(no such error)";
	schema_error_format(&errs.items[i], buf, sizeof(buf));
	return buf;
}

TEST(schema_error_names_path_and_keyword)
{
	struct schema *s = compile("{\"type\":\"object\",\"properties\":{"
				   "\"company_name\":{\"type\":\"string\"}}}");

	ASSERT(s);
	ASSERT_EQ(check(s, "{\"company_name\": 42}"), E(VALIDATION));
	ASSERT_EQ(errs.count, 1);
	ASSERT_STR_EQ(line(0), "/company_name: expected string, got number (type)");
	ASSERT_STR_EQ(errs.items[0].path, "/company_name");
	ASSERT_STR_EQ(errs.items[0].keyword, "type");
	ASSERT_EQ(check(s, "{\"company_name\": \"Acme\"}"), 0);
	ASSERT_EQ(errs.count, 0);
	ASSERT_EQ(check(s, "[]"), E(VALIDATION));
	ASSERT_STR_EQ(line(0), "/: expected object, got array (type)");
	schema_free(s);
}

TEST(schema_reports_all_failures_with_paths)
{
	struct schema *s = compile(
		"{\"type\":\"object\",\"required\":[\"id\",\"name\"],"
		"\"additionalProperties\":false,"
		"\"properties\":{\"id\":{\"type\":\"integer\",\"minimum\":1},"
		"\"name\":{\"type\":\"string\",\"maxLength\":3},"
		"\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}},"
		"\"a/b~c\":{\"enum\":[1,2]}}}");

	ASSERT(s);
	ASSERT_EQ(check(s, "{\"id\":0,\"tags\":[\"x\",5,true],\"extra\":1,\"a/b~c\":3}"),
		  E(VALIDATION));
	ASSERT_EQ(errs.count, 6);
	/* members in the instance's order, then what is missing */
	ASSERT_STR_EQ(line(0), "/id: expected >= 1, got 0 (minimum)");
	ASSERT_STR_EQ(line(1), "/tags/1: expected string, got number (type)");
	ASSERT_STR_EQ(line(2), "/tags/2: expected string, got boolean (type)");
	ASSERT_STR_EQ(line(3), "/extra: property not allowed (additionalProperties)");
	ASSERT_STR_EQ(line(4), "/a~1b~0c: expected one of the 2 allowed values (enum)");
	ASSERT_STR_EQ(line(5), "/: missing required property \"name\" (required)");
	ASSERT_EQ(check(s, "{\"id\":1,\"name\":\"abcd\"}"), E(VALIDATION));
	ASSERT_STR_EQ(line(0), "/name: expected at most 3 characters, got 4 (maxLength)");
	/* without an error list: the same verdict, first failure only */
	{
		json_t *ji = j("{\"id\":0}");

		ASSERT_EQ(schema_validate(s, ji, NULL), E(VALIDATION));
		json_decref(ji);
	}
	schema_free(s);
}

TEST(schema_errors_stop_at_the_limit)
{
	struct schema *s = compile("{\"items\":{\"type\":\"string\"}}");
	char inst[1024];
	size_t o = 0;

	ASSERT(s);
	o += (size_t)snprintf(inst + o, sizeof(inst) - o, "[");
	for (int i = 0; i < 100; i++)
		o += (size_t)snprintf(inst + o, sizeof(inst) - o, "%s%d", i ? "," : "", i);
	snprintf(inst + o, sizeof(inst) - o, "]");
	ASSERT_EQ(check(s, inst), E(VALIDATION));
	ASSERT_EQ(errs.count, SCHEMA_MAX_ERRORS);
	ASSERT(errs.truncated);
	schema_free(s);
}

TEST(schema_compile_rejects_invalid_schema_with_schema_path)
{
	json_t *js = j("{\"properties\":{\"a\":{\"type\":\"strin\"}},\"minLength\":-1}");
	struct schema *s = NULL;

	ASSERT_EQ(schema_compile(js, NULL, &s, &errs), E(VALIDATION));
	ASSERT(!s);
	ASSERT_EQ(errs.count, 2);
	ASSERT(strstr(line(0), "/properties/a/type: ") || strstr(line(1), "/properties/a/type: "));
	ASSERT(strstr(line(0), "/minLength: ") || strstr(line(1), "/minLength: "));
	json_decref(js);

	js = j("{\"pattern\":\"(unclosed\"}");
	ASSERT_EQ(schema_compile(js, NULL, &s, &errs), E(VALIDATION));
	ASSERT_CONTAINS(line(0), "/pattern: invalid regular expression");
	json_decref(js);

	js = j("{\"$ref\":\"#/definitions/missing\"}");
	ASSERT_EQ(schema_compile(js, NULL, &s, &errs), E(VALIDATION));
	ASSERT_CONTAINS(line(0), "points nowhere");
	json_decref(js);
}

TEST(schema_cyclic_ref_does_not_hang)
{
	struct schema *s = compile("{\"$ref\":\"#\"}");

	ASSERT(s);
	ASSERT_EQ(check(s, "{}"), E(VALIDATION));
	ASSERT_CONTAINS(line(0), "loops");
	schema_free(s);

	s = compile("{\"definitions\":{\"a\":{\"$ref\":\"#/definitions/b\"},"
		    "\"b\":{\"allOf\":[{\"$ref\":\"#/definitions/a\"}]}},"
		    "\"$ref\":\"#/definitions/a\"}");
	ASSERT(s);
	ASSERT_EQ(check(s, "1"), E(VALIDATION));
	ASSERT_CONTAINS(line(0), "($ref)");
	schema_free(s);

	/* recursion that consumes the instance is fine */
	s = compile("{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"},"
		    "\"children\":{\"type\":\"array\",\"items\":{\"$ref\":\"#\"}}}}");
	ASSERT(s);
	ASSERT_EQ(check(s, "{\"name\":\"a\",\"children\":[{\"name\":\"b\",\"children\":"
			   "[{\"name\":\"c\"}]}]}"), 0);
	ASSERT_EQ(check(s, "{\"children\":[{\"children\":[{\"name\":7}]}]}"), E(VALIDATION));
	ASSERT_STR_EQ(line(0), "/children/0/children/0/name: expected string, got number (type)");
	schema_free(s);
}

TEST(schema_deep_instance_is_bounded)
{
	struct schema *s = compile("{\"items\":{\"$ref\":\"#\"}}");
	json_t *v = json_array(), *cur = v;

	ASSERT(s);
	for (int i = 0; i < 1000; i++) {
		json_t *next = json_array();

		json_array_append_new(cur, next);
		cur = next;
	}
	ASSERT_EQ(schema_validate(s, v, &errs), E(VALIDATION));
	ASSERT_CONTAINS(line(0), "deeper than");
	json_decref(v);
	schema_free(s);
}

TEST(schema_catastrophic_regex_is_bounded)
{
	struct schema *s = compile("{\"pattern\":\"^(a+)+$\"}");
	char inst[128];
	struct timespec t0, t1;
	double secs;

	ASSERT(s);
	snprintf(inst, sizeof(inst), "\"%s!\"", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ASSERT_EQ(check(s, inst), E(VALIDATION));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	ASSERT(secs < 1.0);
	ASSERT_CONTAINS(line(0), "match limit");
	ASSERT_EQ(check(s, "\"aaaa\""), 0);
	/* a limit hit is a failure even where a mismatch would pass */
	schema_free(s);
	s = compile("{\"not\":{\"pattern\":\"^(a+)+$\"}}");
	ASSERT(s);
	ASSERT_EQ(check(s, inst), E(VALIDATION));
	schema_free(s);
}

TEST(schema_schema_size_is_bounded)
{
	json_t *js = json_object(), *cur = js;
	struct schema *s = NULL;

	for (int i = 0; i < SCHEMA_MAX_DEPTH + 5; i++) {
		json_t *next = json_object();

		json_object_set_new(cur, "not", next);
		cur = next;
	}
	ASSERT_EQ(schema_compile(js, NULL, &s, &errs), E(TOO_LARGE));
	ASSERT(!s);
	json_decref(js);
}

TEST(schema_compiles_once_and_needs_no_json_after)
{
	json_t *js = j("{\"type\":\"object\",\"properties\":{\"n\":{\"type\":\"integer\","
		       "\"multipleOf\":3},\"s\":{\"pattern\":\"^x\"}},\"required\":[\"n\"]}");
	struct schema *s = NULL;
	unsigned long before;

	ASSERT_EQ(schema_compile(js, NULL, &s, &errs), 0);
	/* the caller's reference goes; keys/enum stay alive through the schema */
	json_decref(js);
	before = schema_stat_compiles();
	for (int i = 0; i < 1000; i++) {
		ASSERT_EQ(check(s, "{\"n\":9,\"s\":\"xy\"}"), 0);
		ASSERT_EQ(check(s, "{\"n\":10}"), E(VALIDATION));
	}
	ASSERT_EQ(schema_stat_compiles(), before);
	schema_free(s);
}

TEST(schema_numbers_are_exact)
{
	struct schema *s = compile("{\"multipleOf\":0.01}");

	ASSERT(s);
	ASSERT_EQ(check(s, "19.99"), 0);
	ASSERT_EQ(check(s, "0.075"), E(VALIDATION));
	ASSERT_EQ(check(s, "123456789"), 0);
	schema_free(s);
	s = compile("{\"multipleOf\":0.1}");
	ASSERT_EQ(check(s, "0.3"), 0);
	ASSERT_EQ(check(s, "1e308"), 0);
	schema_free(s);
	s = compile("{\"multipleOf\":0.123456789}");
	ASSERT_EQ(check(s, "1e308"), E(VALIDATION));
	schema_free(s);
	s = compile("{\"maximum\":9007199254740993}");
	ASSERT_EQ(check(s, "9007199254740993"), 0);
	ASSERT_EQ(check(s, "9007199254740994"), E(VALIDATION));
	schema_free(s);
	s = compile("{\"const\":1}");
	ASSERT_EQ(check(s, "1.0"), 0);
	ASSERT_EQ(check(s, "true"), E(VALIDATION));
	schema_free(s);
	s = compile("{\"type\":\"integer\"}");
	ASSERT_EQ(check(s, "2.0"), 0);
	ASSERT_EQ(check(s, "2.5"), E(VALIDATION));
	ASSERT_STR_EQ(line(0), "/: expected integer, got number (type)");
	schema_free(s);
}

TEST(schema_regex_is_ecma262)
{
	struct schema *s = compile("{\"pattern\":\"^\\\\d+$\"}");

	ASSERT(s);
	ASSERT_EQ(check(s, "\"123\""), 0);
	ASSERT_EQ(check(s, "\"\\u0661\""), E(VALIDATION)); /* Arabic-Indic one */
	ASSERT_EQ(check(s, "\"12\\n\""), E(VALIDATION));   /* $ is end of input */
	schema_free(s);
	s = compile("{\"pattern\":\"^\\\\s$\"}");
	ASSERT_EQ(check(s, "\"\\u00a0\""), 0);
	ASSERT_EQ(check(s, "\"\\ufeff\""), 0);
	schema_free(s);
	s = compile("{\"pattern\":\"^.$\"}");
	ASSERT_EQ(check(s, "\"\\u00e9\""), 0);
	ASSERT_EQ(check(s, "\"\\n\""), E(VALIDATION));
	schema_free(s);
	s = compile("{\"pattern\":\"b\"}"); /* not anchored */
	ASSERT_EQ(check(s, "\"abc\""), 0);
	schema_free(s);
	s = compile("{\"pattern\":\"^\\\\u00e9[^]$\"}");
	ASSERT_EQ(check(s, "\"\\u00e9\\n\""), 0);
	schema_free(s);
}

struct fake_reg {
	int calls;
};

static int lookup(void *ctx, const char *uri, json_t **out)
{
	struct fake_reg *r = ctx;

	r->calls++;
	if (!strcmp(uri, "https://nexra.test/acme/money.json")) {
		*out = j("{\"type\":\"number\",\"minimum\":0}");
		return 0;
	}
	return E(NOT_FOUND);
}

TEST(schema_registry_is_the_only_way_out)
{
	json_t *js = j("{\"$id\":\"https://nexra.test/acme/task.json\","
		       "\"properties\":{\"price\":{\"$ref\":\"money.json\"}}}");
	struct fake_reg fr = {0};
	struct schema_registry reg = {lookup, &fr};
	struct schema *s = NULL;

	ASSERT_EQ(schema_compile(js, NULL, &s, &errs), E(VALIDATION));
	ASSERT_CONTAINS(line(0), "cannot resolve $ref");
	ASSERT_EQ(schema_compile(js, &reg, &s, &errs), 0);
	ASSERT_EQ(fr.calls, 1);
	ASSERT_EQ(check(s, "{\"price\":1.5}"), 0);
	ASSERT_EQ(check(s, "{\"price\":-1}"), E(VALIDATION));
	ASSERT_STR_EQ(line(0), "/price: expected >= 0, got -1 (minimum)");
	ASSERT_EQ(fr.calls, 1); /* never during validation */
	schema_free(s);
	json_decref(js);

	js = j("{\"$ref\":\"https://elsewhere.test/x.json\"}");
	ASSERT_EQ(schema_compile(js, &reg, &s, &errs), E(VALIDATION));
	ASSERT_CONTAINS(line(0), "no schema");
	json_decref(js);

	/* the meta-schema is built in */
	s = compile("{\"$ref\":\"http://json-schema.org/draft-07/schema#\"}");
	ASSERT(s);
	ASSERT_EQ(check(s, "{\"type\":\"string\"}"), 0);
	ASSERT_EQ(check(s, "{\"type\":12}"), E(VALIDATION));
	schema_free(s);
}

TEST(schema_formats_only_when_asked)
{
	json_t *js = j("{\"format\":\"date-time\"}");
	struct schema *s = NULL;

	ASSERT_EQ(schema_compile(js, NULL, &s, &errs), 0);
	ASSERT_EQ(check(s, "\"yesterday\""), 0);
	schema_free(s);
	ASSERT_EQ(schema_compile_flags(js, NULL, SCHEMA_FORMAT_ASSERT, &s, &errs), 0);
	ASSERT_EQ(check(s, "\"yesterday\""), E(VALIDATION));
	ASSERT_EQ(check(s, "\"2024-02-29T12:00:00Z\""), 0);
	ASSERT_EQ(check(s, "\"2023-02-29T12:00:00Z\""), E(VALIDATION));
	schema_free(s);
	json_decref(js);
}
