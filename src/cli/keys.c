/*
 * `nexra keys create|list|revoke`.
 *
 * A new key's secret is in the response exactly once, like the keys an org
 * starts with; `keys list` shows only key ids and non-secret prefixes.
 * Creating and revoking keys needs a live key (the server answers 403 to a
 * test key); the CLI does not guess, it reports what the server says.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli/cmd.h"
#include "cli/http.h"

#include "core/banned.h"

static int keys_create(const struct cli_ctx *ctx, const struct cli_group *g, int argc, char **argv)
{
	int test = 0;
	const char *name = NULL;
	const struct cli_opt opts[] = {
	    {.name = "--test", .flag = &test},
	    {.name = "--name", .value = &name},
	    {0},
	};
	json_t *body = NULL;
	char *text = NULL;
	int ret;

	ret = cli_opts_parse(g, argc, argv, opts, NULL, 0);
	if (ret != 0)
		goto out;
	body = json_pack("{s:s}", "kind", test ? "test" : "live");
	if (body && name && json_object_set_new(body, "name", json_string(name)) != 0) {
		json_decref(body);
		body = NULL;
	}
	if (body)
		text = json_dumps(body, JSON_COMPACT);
	if (!text) {
		fprintf(stderr, "error: cannot encode the request (is --name "
		                "valid UTF-8?)\n");
		ret = CLI_EXIT_FAIL;
		goto out;
	}
	ret = cli_run(ctx, "POST", "/v1/keys", text, strlen(text), CLI_AUTH_KEY, NULL);
	if (ret == CLI_EXIT_OK)
		fprintf(stderr, "note: api_key is shown only once; store it "
		                "now\n");
out:
	free(text);
	json_decref(body);
	return ret;
}

static int keys_list(const struct cli_ctx *ctx, const struct cli_group *g, int argc, char **argv)
{
	return cli_run_list(ctx, g, argc, argv, "/v1/keys", NULL, NULL);
}

static int keys_revoke(const struct cli_ctx *ctx, const struct cli_group *g, int argc, char **argv)
{
	const struct cli_opt opts[] = {{0}};
	const char *pos[1];
	struct cli_path p;
	int ret;

	ret = cli_opts_parse(g, argc, argv, opts, pos, 1);
	if (ret != 0)
		return ret;
	cli_path_init(&p, "/v1/keys");
	cli_path_add_segment(&p, pos[0]);
	if (p.failed)
		return cli_usage_error(g, "argument too long");
	return cli_run(ctx, "DELETE", p.buf, NULL, 0, CLI_AUTH_KEY, NULL);
}

static const struct cli_cmd keys_cmds[] = {
    {"create", keys_create},
    {"list", keys_list},
    {"revoke", keys_revoke},
    {0},
};

const struct cli_group cli_keys_group = {
    .name = "keys",
    .usage = "keys:\n"
             "  nexra keys create [--test] [--name NAME]\n"
             "  nexra keys list [--limit N] [--offset N]\n"
             "  nexra keys revoke KEY_ID\n",
    .cmds = keys_cmds,
};
