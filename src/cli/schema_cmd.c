/*
 * `nexra schema ...`: local schema commands (see schema_cmd.h). The files
 * are read with a hard size limit (SCHEMA_CMD_MAX_FILE) and parsed as any
 * JSON value ("-" reads standard input); the schema is compiled exactly as
 * registration does it, then the instance validated as dispatch does.
 */
#include "cli/schema_cmd.h"

#include <stdio.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"
#include "schema/schema.h"

#include "core/banned.h"

#define SCHEMA_CMD_MAX_FILE (16u << 20)

enum { EXIT_VALID = 0, EXIT_INVALID = 1, EXIT_USAGE = 2 };

static const char usage[] =
	"usage: nexra schema validate [--assert-format] SCHEMA_FILE INSTANCE_FILE\n"
	"  exit 0 valid, 1 invalid (errors on stdout, one per line),\n"
	"  2 usage error, unreadable file or invalid schema.\n"
	"  --assert-format   check \"format\" (date-time, email, uri, ...) too\n";

/* Reads and parses path ("-": stdin) into *out (new reference). 0 or -1
 * after printing what went wrong to stderr. */
static int load(const char *path, const char *what, json_t **out)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
	struct buf b;
	char chunk[65536];
	json_error_t jerr;
	size_t n;
	int rc = 0;

	*out = NULL;
	if (!f) {
		fprintf(stderr, "error: cannot read %s %s\n", what, path);
		return -1;
	}
	buf_init(&b, SCHEMA_CMD_MAX_FILE);
	while (!rc && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		rc = buf_add(&b, chunk, n);
	if (ferror(f) && !rc)
		rc = E(INTERNAL);
	if (f != stdin)
		fclose(f);
	if (rc) {
		fprintf(stderr, "error: cannot read %s %s%s\n", what, path,
			rc == E(TOO_LARGE) ? ": larger than 16 MiB" : "");
		goto out;
	}
	*out = json_loadb(b.data ? b.data : "", b.len, JSON_DECODE_ANY, &jerr);
	if (!*out) {
		fprintf(stderr, "error: %s %s is not JSON: line %d: %s\n", what, path, jerr.line,
			jerr.text);
		rc = -1;
	}
out:
	buf_release(&b);
	return rc ? -1 : 0;
}

static void print_errors(FILE *f, const struct schema_errors *errs)
{
	char line[SCHEMA_PATH_MAX + SCHEMA_MESSAGE_MAX + SCHEMA_KEYWORD_MAX + 16];

	for (size_t i = 0; i < errs->count; i++) {
		schema_error_format(&errs->items[i], line, sizeof(line));
		fprintf(f, "%s\n", line);
	}
	if (errs->truncated)
		fprintf(f, "(more than %d errors; the rest are not shown)\n", SCHEMA_MAX_ERRORS);
}

static int cmd_validate(int argc, char **argv)
{
	const char *files[2];
	int nfiles = 0, assert_format = 0, status = EXIT_USAGE, rc;
	json_t *schema_json = NULL, *instance = NULL;
	struct schema *s = NULL;
	static struct schema_errors errs;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--assert-format")) {
			assert_format = 1;
		} else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			fputs(usage, stdout);
			return EXIT_VALID;
		} else if (argv[i][0] == '-' && argv[i][1] != '\0') {
			fprintf(stderr, "error: unknown option %s\n%s", argv[i], usage);
			return EXIT_USAGE;
		} else if (nfiles < 2) {
			files[nfiles++] = argv[i];
		} else {
			fprintf(stderr, "error: too many arguments\n%s", usage);
			return EXIT_USAGE;
		}
	}
	if (nfiles != 2) {
		fprintf(stderr, "error: need SCHEMA_FILE and INSTANCE_FILE\n%s", usage);
		return EXIT_USAGE;
	}
	if (load(files[0], "schema", &schema_json) || load(files[1], "instance", &instance))
		goto out;
	rc = schema_compile_flags(schema_json, NULL, assert_format ? SCHEMA_FORMAT_ASSERT : 0, &s,
				  &errs);
	if (rc) {
		fprintf(stderr, "error: schema %s is not a valid draft-07 schema:\n", files[0]);
		print_errors(stderr, &errs);
		goto out;
	}
	rc = schema_validate(s, instance, &errs);
	if (rc == E(VALIDATION)) {
		print_errors(stdout, &errs);
		status = EXIT_INVALID;
	} else if (rc) {
		fprintf(stderr, "error: validation failed: %s\n", err_message(rc));
	} else {
		status = EXIT_VALID;
	}
out:
	schema_free(s);
	json_decref(schema_json);
	json_decref(instance);
	return status;
}

int schema_cmd_main(int argc, char **argv)
{
	if (argc < 1 || !strcmp(argv[0], "--help") || !strcmp(argv[0], "-h") ||
	    !strcmp(argv[0], "help")) {
		fputs(usage, argc < 1 ? stderr : stdout);
		return argc < 1 ? EXIT_USAGE : EXIT_VALID;
	}
	if (!strcmp(argv[0], "validate"))
		return cmd_validate(argc, argv);
	fprintf(stderr, "error: unknown schema command %s\n%s", argv[0], usage);
	return EXIT_USAGE;
}
