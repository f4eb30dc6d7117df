/*
 * The official JSON-Schema-Test-Suite, draft 7, through Nexra's validator.
 *
 * Every file of tests/draft7/ (required) and tests/draft7/optional/ (with
 * its format/ folder; compiled with SCHEMA_FORMAT_ASSERT) is a list of
 * groups {description, schema, tests: [{description, data, valid}]}. For
 * each group the schema is compiled once and every test's data validated;
 * a test passes when the verdict equals "valid" (a schema that does not
 * compile fails all of its group's tests).
 *
 * Remote references (http://localhost:1234/...) are served from the suite's
 * remotes/ folder through the schema registry hook: nothing goes to the
 * network, exactly as in production where the hook reads the org's schemas.
 *
 * Output: one line per file with its pass count, each failure, and the
 * totals for required and optional tests. Exit status 1 when a required
 * test fails that is not listed in the exceptions file (lines of
 * "FILE :: GROUP :: TEST :: REASON", '#' comments), 2 when the suite cannot
 * be read, 0 otherwise. Optional failures are reported, never fatal.
 *
 * Usage: run_suite [--suite DIR] [--exceptions FILE] [--quiet]
 *   DIR defaults to /usr/share/json-schema-test-suite.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "schema/schema.h"

#define REMOTE_PREFIX "http://localhost:1234/"
#define MAX_FILES 128
#define MAX_EXCEPTIONS 256

struct totals {
	int pass, total;
};

static char suite_dir[1024] = "/usr/share/json-schema-test-suite";
static char *exceptions[MAX_EXCEPTIONS];
static int nexceptions;
static int quiet;

static int remote_lookup(void *ctx, const char *uri, json_t **out)
{
	char path[2048];
	json_error_t jerr;
	const char *rest;

	(void)ctx;
	*out = NULL;
	if (strncmp(uri, REMOTE_PREFIX, strlen(REMOTE_PREFIX)))
		return E(NOT_FOUND);
	rest = uri + strlen(REMOTE_PREFIX);
	if (strstr(rest, ".."))
		return E(NOT_FOUND);
	snprintf(path, sizeof(path), "%s/remotes/%s", suite_dir, rest);
	*out = json_load_file(path, JSON_DECODE_ANY, &jerr);
	return *out ? 0 : E(NOT_FOUND);
}

static int is_exception(const char *file, const char *group, const char *test)
{
	char key[1024];

	snprintf(key, sizeof(key), "%s :: %s :: %s ::", file, group, test);
	for (int i = 0; i < nexceptions; i++)
		if (!strncmp(exceptions[i], key, strlen(key)))
			return 1;
	return 0;
}

static void load_exceptions(const char *path)
{
	FILE *f = fopen(path, "r");
	char line[1024];

	if (!f)
		return;
	while (fgets(line, sizeof(line), f) && nexceptions < MAX_EXCEPTIONS) {
		line[strcspn(line, "\n")] = '\0';
		if (line[0] == '#' || line[0] == '\0')
			continue;
		exceptions[nexceptions++] = strdup(line);
	}
	fclose(f);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Runs one file; returns the number of unexcused failures (required only). */
static int run_file(const char *dir, const char *name, const char *label, unsigned flags,
		    int required, struct totals *t)
{
	char path[2048];
	json_error_t jerr;
	json_t *doc, *group;
	size_t gi;
	int pass = 0, total = 0, bad = 0;
	struct schema_registry reg = {remote_lookup, NULL};
	static struct schema_errors errs;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	doc = json_load_file(path, 0, &jerr);
	if (!doc) /* integers beyond int64 (bignum.json): jansson needs INT_AS_REAL */
		doc = json_load_file(path, JSON_DECODE_INT_AS_REAL, &jerr);
	if (!doc) {
		printf("%s: cannot parse: %s\n", label, jerr.text);
		return required;
	}
	json_array_foreach(doc, gi, group) {
		const char *gdesc = json_string_value(json_object_get(group, "description"));
		json_t *tests = json_object_get(group, "tests"), *test;
		struct schema *s = NULL;
		size_t ti;
		int crc = schema_compile_flags(json_object_get(group, "schema"), &reg, flags, &s, &errs);

		json_array_foreach(tests, ti, test) {
			const char *tdesc = json_string_value(json_object_get(test, "description"));
			int want = json_is_true(json_object_get(test, "valid"));
			int got = -1;

			total++;
			if (!crc)
				got = schema_validate(s, json_object_get(test, "data"), &errs) == 0;
			if (got == want) {
				pass++;
				continue;
			}
			if (required && is_exception(name, gdesc, tdesc)) {
				printf("  excused %s: %s / %s\n", label, gdesc, tdesc);
				continue;
			}
			bad += required;
			if (!quiet || required) {
				printf("  FAIL %s: %s / %s (expected %s, got %s)\n", label, gdesc, tdesc,
				       want ? "valid" : "invalid",
				       got < 0 ? "schema error" : got ? "valid" : "invalid");
				if (crc && errs.count) {
					char line[700];

					schema_error_format(&errs.items[0], line, sizeof(line));
					printf("       compile: %s\n", line);
				}
			}
		}
		schema_free(s);
	}
	json_decref(doc);
	printf("%-40s %d/%d\n", label, pass, total);
	t->pass += pass;
	t->total += total;
	return bad;
}

static int run_dir(const char *sub, unsigned flags, int required, struct totals *t)
{
	char dir[1536], label[512];
	char *names[MAX_FILES];
	int n = 0, bad = 0;
	DIR *d;
	struct dirent *e;

	snprintf(dir, sizeof(dir), "%s/tests/%s", suite_dir, sub);
	d = opendir(dir);
	if (!d) {
		fprintf(stderr, "run_suite: cannot open %s\n", dir);
		return -1;
	}
	while ((e = readdir(d)) && n < MAX_FILES) {
		size_t l = strlen(e->d_name);

		if (l > 5 && !strcmp(e->d_name + l - 5, ".json"))
			names[n++] = strdup(e->d_name);
	}
	closedir(d);
	qsort(names, (size_t)n, sizeof(names[0]), cmp_str);
	for (int i = 0; i < n; i++) {
		snprintf(label, sizeof(label), "%s/%s", sub, names[i]);
		bad += run_file(dir, names[i], label, flags, required, t);
		free(names[i]);
	}
	return bad;
}

int main(int argc, char **argv)
{
	const char *exc = "tests/schema-suite/exceptions.txt";
	struct totals req = {0, 0}, opt = {0, 0};
	int bad, obad;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--suite") && i + 1 < argc)
			snprintf(suite_dir, sizeof(suite_dir), "%s", argv[++i]);
		else if (!strcmp(argv[i], "--exceptions") && i + 1 < argc)
			exc = argv[++i];
		else if (!strcmp(argv[i], "--quiet"))
			quiet = 1;
		else {
			fprintf(stderr, "usage: run_suite [--suite DIR] [--exceptions FILE] [--quiet]\n");
			return 2;
		}
	}
	load_exceptions(exc);
	bad = run_dir("draft7", 0, 1, &req);
	if (bad < 0)
		return 2;
	obad = run_dir("draft7/optional", SCHEMA_FORMAT_ASSERT, 0, &opt);
	if (obad >= 0)
		run_dir("draft7/optional/format", SCHEMA_FORMAT_ASSERT, 0, &opt);
	printf("schema suite draft7 required: %d/%d passed\n", req.pass, req.total);
	printf("schema suite draft7 optional: %d/%d passed\n", opt.pass, opt.total);
	for (int i = 0; i < nexceptions; i++)
		free(exceptions[i]);
	if (bad) {
		printf("schema suite: %d required test(s) failed\n", bad);
		return 1;
	}
	return 0;
}
