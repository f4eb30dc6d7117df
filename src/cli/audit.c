/*
 * `nexra audit verify EXPORT_FILE --public-key KEY [--checkpoint OLD]`:
 * offline, no server or API key involved (docs/audit.md). The work is
 * audit/verify.c; this file reads the key and the old checkpoint from the
 * forms people will have them in and prints the outcome.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/verify.h"
#include "cli/cmd.h"
#include "cli/file.h"
#include "core/banned.h"

#define SMALL_FILE_MAX (64 * 1024)

/* The object a saved API answer holds: itself, its "data", or its
 * "checkpoint" (an export's last line). Borrowed from o. */
static json_t *unwrap(json_t *o)
{
	if (json_is_object(json_object_get(o, "data")))
		return json_object_get(o, "data");
	if (json_is_object(json_object_get(o, "checkpoint")))
		return json_object_get(o, "checkpoint");
	return o;
}

/* KEY: the key itself (base64 or hex), or a file holding it or the
 * GET /v1/audit/public-key answer. */
static int read_key(const char *arg, unsigned char pk[CHECKPOINT_PK_LEN])
{
	char *text = NULL, *t;
	size_t len;
	json_t *o;
	int rc;

	if (!checkpoint_pk_parse(arg, pk))
		return 0;
	if (cli_file_read(arg, SMALL_FILE_MAX, &text, &len))
		return -1;
	o = json_loads(text, 0, NULL);
	if (o && json_is_string(json_object_get(unwrap(o), "public_key"))) {
		rc = checkpoint_pk_parse(json_string_value(json_object_get(unwrap(o), "public_key")), pk);
	} else {
		for (t = text + len; t > text && strchr(" \t\r\n", t[-1]); t--)
			t[-1] = '\0';
		t = text + strspn(text, " \t\r\n");
		rc = checkpoint_pk_parse(t, pk);
	}
	json_decref(o);
	free(text);
	return rc;
}

static int read_checkpoint(const char *path, struct checkpoint *c, char *err, size_t errsz)
{
	char *text = NULL, *inner = NULL;
	size_t len;
	json_t *o;
	int rc = -1;

	if (cli_file_read(path, SMALL_FILE_MAX, &text, &len)) {
		snprintf(err, errsz, "cannot read %s: %s", path, strerror(errno));
		return -1;
	}
	o = json_loads(text, 0, NULL);
	inner = o ? json_dumps(unwrap(o), 0) : NULL;
	if (inner)
		rc = checkpoint_parse(inner, strlen(inner), c, err, errsz);
	else
		snprintf(err, errsz, "%s is not JSON", path);
	free(inner);
	json_decref(o);
	free(text);
	return rc;
}

static int audit_verify(const struct cli_ctx *ctx, const struct cli_group *g, int argc,
			char **argv)
{
	const char *key = NULL, *old_path = NULL, *file = NULL;
	const struct cli_opt opts[] = {
		{.name = "--public-key", .value = &key},
		{.name = "--checkpoint", .value = &old_path},
		{0},
	};
	unsigned char pk[CHECKPOINT_PK_LEN];
	struct audit_verify_result res;
	struct checkpoint old;
	char err[300];
	FILE *f;
	int ret = cli_opts_parse(g, argc, argv, opts, &file, 1);

	(void)ctx;
	if (ret)
		return ret;
	if (!key)
		return cli_usage_error(g, "--public-key is required");
	if (read_key(key, pk)) {
		fprintf(stderr, "error: --public-key: not an Ed25519 public key (base64 or hex) nor "
				"a file holding one\n");
		return CLI_EXIT_FAIL;
	}
	if (old_path && read_checkpoint(old_path, &old, err, sizeof(err))) {
		fprintf(stderr, "error: --checkpoint: %s\n", err);
		return CLI_EXIT_FAIL;
	}
	f = strcmp(file, "-") ? fopen(file, "r") : stdin;
	if (!f) {
		fprintf(stderr, "error: cannot open %s: %s\n", file, strerror(errno));
		return CLI_EXIT_FAIL;
	}
	ret = audit_verify_stream(f, pk, old_path ? &old : NULL, &res);
	if (f != stdin)
		fclose(f);
	if (ret) {
		printf("FAIL %s\n", res.message);
		if (res.event_id)
			printf("first bad entry: event %lld (line %lld)\n", (long long)res.event_id,
			       (long long)res.line);
		return CLI_EXIT_FAIL;
	}
	printf("OK %lld entries verified, tree size %llu%s\n", (long long)res.entries,
	       (unsigned long long)res.tree_size,
	       old_path ? ", extends the old checkpoint" : "");
	return CLI_EXIT_OK;
}

static const struct cli_cmd audit_cmds[] = {
	{"verify", audit_verify},
	{0},
};

const struct cli_group cli_audit_group = {
	.name = "audit",
	.usage = "audit:\n"
		 "  nexra audit verify EXPORT_FILE --public-key KEY [--checkpoint OLD]\n",
	.cmds = audit_cmds,
};
