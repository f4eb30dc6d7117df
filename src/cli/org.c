/*
 * `nexra org register` and `nexra org me`.
 *
 * Registering an org is the one call made without an API key: it is what
 * creates the first keys, which the server shows exactly once, so the
 * command reminds the user on stderr to store them. Under
 * `--signup admin` the server wants the operator's admin token as the
 * bearer; it comes from --admin-token or NEXRA_ADMIN_TOKEN (prefer the
 * environment: argv is visible to other users).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli/cmd.h"

#include "core/banned.h"

static int org_register(const struct cli_ctx *ctx, const struct cli_group *g, int argc, char **argv)
{
	const char *name = NULL;
	const char *plan = NULL;
	const char *token = NULL;
	const struct cli_opt opts[] = {
	    {.name = "--name", .value = &name},
	    {.name = "--plan", .value = &plan},
	    {.name = "--admin-token", .value = &token},
	    {0},
	};
	json_t *body = NULL;
	char *text = NULL;
	int ret;

	ret = cli_opts_parse(g, argc, argv, opts, NULL, 0);
	if (ret != 0)
		goto out;
	if (!name || !plan) {
		ret = cli_usage_error(g, "org register needs --name and --plan");
		goto out;
	}
	if (!token) {
		token = getenv("NEXRA_ADMIN_TOKEN");
		if (token && !token[0])
			token = NULL;
	}
	body = json_pack("{s:s, s:s}", "name", name, "plan", plan);
	if (body)
		text = json_dumps(body, JSON_COMPACT);
	if (!text) {
		fprintf(stderr, "error: cannot encode the request (is --name "
		                "valid UTF-8?)\n");
		ret = CLI_EXIT_FAIL;
		goto out;
	}
	ret =
	    cli_run(ctx, "POST", "/v1/orgs/register", text, strlen(text), CLI_AUTH_OPTIONAL, token);
	if (ret == CLI_EXIT_OK)
		fprintf(stderr, "note: api_key and test_api_key are shown only "
		                "once; store them now (export "
		                "NEXRA_API_KEY=...)\n");
out:
	free(text);
	json_decref(body);
	return ret;
}

static int org_me(const struct cli_ctx *ctx, const struct cli_group *g, int argc, char **argv)
{
	const struct cli_opt opts[] = {{0}};
	int ret;

	ret = cli_opts_parse(g, argc, argv, opts, NULL, 0);
	if (ret != 0)
		return ret;
	return cli_run(ctx, "GET", "/v1/orgs/me", NULL, 0, CLI_AUTH_KEY, NULL);
}

static const struct cli_cmd org_cmds[] = {
    {"register", org_register},
    {"me", org_me},
    {0},
};

const struct cli_group cli_org_group = {
    .name = "org",
    .usage = "organisation:\n"
             "  nexra org register --name NAME --plan starter|growth "
             "[--admin-token T]\n"
             "  nexra org me\n",
    .cmds = org_cmds,
};
