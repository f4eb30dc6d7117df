/*
 * `nexra approvals list|show|approve|reject`: the pending approvals of the
 * org (GET /v1/delegations?status=pending_approval) and a person's decision
 * on one (docs/approvals.md). Deciding needs a live key; the server says so
 * to a test key.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli/cmd.h"
#include "cli/http.h"

#include "core/banned.h"

static int approvals_list(const struct cli_ctx *ctx, const struct cli_group *g, int argc,
			  char **argv)
{
	return cli_run_list(ctx, g, argc, argv, "/v1/delegations", "status", "pending_approval");
}

static int approvals_show(const struct cli_ctx *ctx, const struct cli_group *g, int argc,
			  char **argv)
{
	const struct cli_opt opts[] = {{0}};
	const char *pos[1];
	struct cli_path p;
	int ret = cli_opts_parse(g, argc, argv, opts, pos, 1);

	if (ret != 0)
		return ret;
	cli_path_init(&p, "/v1/delegations");
	cli_path_add_segment(&p, pos[0]);
	if (p.failed)
		return cli_usage_error(g, "argument too long");
	return cli_run(ctx, "GET", p.buf, NULL, 0, CLI_AUTH_KEY, NULL);
}

/* approve or reject DELEGATION_ID [--approver NAME] [--reason TEXT] */
static int decide(const struct cli_ctx *ctx, const struct cli_group *g, int argc, char **argv,
		  const char *verb)
{
	const char *approver = NULL, *reason = NULL;
	const struct cli_opt opts[] = {
	    {.name = "--approver", .value = &approver},
	    {.name = "--reason", .value = &reason},
	    {0},
	};
	const char *pos[1];
	struct cli_path p;
	json_t *body = json_object();
	char *text = NULL;
	int ret = cli_opts_parse(g, argc, argv, opts, pos, 1);

	if (ret != 0 || !body)
		goto out;
	if ((approver && json_object_set_new(body, "approver", json_string(approver))) ||
	    (reason && json_object_set_new(body, "reason", json_string(reason))) ||
	    !(text = json_dumps(body, JSON_COMPACT))) {
		fprintf(stderr, "error: cannot encode the request (are --approver and --reason "
				"valid UTF-8?)\n");
		ret = CLI_EXIT_FAIL;
		goto out;
	}
	cli_path_init(&p, "/v1/delegations");
	cli_path_add_segment(&p, pos[0]);
	cli_path_add_segment(&p, verb);
	ret = p.failed ? cli_usage_error(g, "argument too long")
		       : cli_run(ctx, "POST", p.buf, text, strlen(text), CLI_AUTH_KEY, NULL);
out:
	free(text);
	json_decref(body);
	return ret;
}

static int approvals_approve(const struct cli_ctx *ctx, const struct cli_group *g, int argc,
			     char **argv)
{
	return decide(ctx, g, argc, argv, "approve");
}

static int approvals_reject(const struct cli_ctx *ctx, const struct cli_group *g, int argc,
			    char **argv)
{
	return decide(ctx, g, argc, argv, "reject");
}

static const struct cli_cmd approvals_cmds[] = {
    {"list", approvals_list},
    {"show", approvals_show},
    {"approve", approvals_approve},
    {"reject", approvals_reject},
    {0},
};

const struct cli_group cli_approvals_group = {
    .name = "approvals",
    .usage = "approvals:\n"
             "  nexra approvals list [--limit N] [--offset N]\n"
             "  nexra approvals show DELEGATION_ID\n"
             "  nexra approvals approve DELEGATION_ID [--approver NAME] [--reason TEXT]\n"
             "  nexra approvals reject DELEGATION_ID [--reason TEXT] [--approver NAME]\n",
    .cmds = approvals_cmds,
};
