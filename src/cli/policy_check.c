/*
 * `nexra policy check FILE`; see policy_check.h.
 *
 * The file is read whole, up to one byte past POLICY_MAX_BYTES, so an
 * oversized file gets the loader's own size message without being read to
 * its end. The error line is prefixed with the file name (the h2o and
 * compiler convention, `file:line:col: ...`) so editors can jump to it;
 * the rest is exactly the API's message.
 */
#include "cli/policy_check.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/file.h"
#include "policy/policy.h"
#include "core/banned.h"

static const char usage[] = "usage: nexra policy check FILE   (FILE may be - for stdin)\n";

int policy_check_main(int argc, char **argv)
{
	struct policy_doc *doc = NULL;
	struct policy_err err;
	const char *path;
	char *text = NULL;
	size_t len = 0;
	int rc;

	if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		fputs(usage, stdout);
		return 0;
	}
	if (argc != 2 || !argv[1][0]) {
		fputs(usage, stderr);
		return 2;
	}
	path = argv[1];
	if (cli_file_read(path, POLICY_MAX_BYTES + 1, &text, &len)) {
		fprintf(stderr, "error: %s: %s\n", path, strerror(errno));
		return 1;
	}
	rc = policy_parse(text, len, &doc, &err);
	if (rc) {
		fprintf(stderr, "%s:%s%s\n", strcmp(path, "-") ? path : "<stdin>",
			err.line ? "" : " ", err.message);
		rc = 1;
		goto out;
	}
	printf("ok: %zu rule%s\n", doc->n_rules, doc->n_rules == 1 ? "" : "s");
out:
	policy_doc_free(doc);
	free(text);
	return rc;
}
