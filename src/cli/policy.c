/*
 * `nexra policy ...`: upload (apply), list, get, enable/disable, evaluate
 * (eval), and the offline `check`. `apply` runs the same parser the server
 * runs before sending anything, so a broken file is reported with its
 * line and column without a round trip (and a key is not needed for it).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli/cmd.h"
#include "cli/file.h"
#include "cli/http.h"
#include "cli/policy_check.h"
#include "cli/send.h"
#include "policy/policy.h"
#include "core/banned.h"

/* Send a JSON object; body reference consumed. */
static int send_json(const struct cli_ctx *ctx, const char *method, const char *path,
		     json_t *body)
{
	return cli_send_json(ctx, method, path, body, NULL, NULL);
}

static int policy_apply(const struct cli_ctx *ctx, const struct cli_group *g, int argc,
			char **argv)
{
	const char *file = NULL, *name = NULL, *priority = NULL;
	int disabled = 0;
	const struct cli_opt opts[] = {
		{.name = "-f", .value = &file},
		{.name = "--name", .value = &name},
		{.name = "--priority", .value = &priority},
		{.name = "--disabled", .flag = &disabled},
		{0},
	};
	struct policy_doc *doc = NULL;
	struct policy_err err;
	char *text = NULL, *end = NULL;
	size_t len = 0;
	long prio = 0;
	json_t *body;
	int ret = cli_opts_parse(g, argc, argv, opts, NULL, 0);

	if (ret)
		return ret;
	if (!file || !name)
		return cli_usage_error(g, "apply needs -f FILE and --name NAME");
	if (priority) {
		errno = 0;
		prio = strtol(priority, &end, 10);
		if (errno || !*priority || *end || prio < POLICY_PRIORITY_MIN ||
		    prio > POLICY_PRIORITY_MAX)
			return cli_usage_error(g, "--priority must be an integer from %d to %d",
					       POLICY_PRIORITY_MIN, POLICY_PRIORITY_MAX);
	}
	if (cli_file_read(file, POLICY_MAX_BYTES + 1, &text, &len)) {
		fprintf(stderr, "error: cannot read %s: %s\n", file, strerror(errno));
		return CLI_EXIT_FAIL;
	}
	if (policy_parse(text, len, &doc, &err)) { /* the server would say the same */
		fprintf(stderr, "%s:%s%s\n", strcmp(file, "-") ? file : "<stdin>",
			err.line ? "" : " ", err.message);
		free(text);
		return CLI_EXIT_FAIL;
	}
	policy_doc_free(doc);
	body = json_pack("{s:s, s:s}", "name", name, "yaml", text);
	free(text);
	if (body && priority)
		json_object_set_new(body, "priority", json_integer(prio));
	if (body && disabled)
		json_object_set_new(body, "enabled", json_false());
	return send_json(ctx, "POST", "/v1/policies", body);
}

static int policy_list(const struct cli_ctx *ctx, const struct cli_group *g, int argc,
		       char **argv)
{
	return cli_run_list(ctx, g, argc, argv, "/v1/policies", NULL, NULL);
}

static int policy_get(const struct cli_ctx *ctx, const struct cli_group *g, int argc,
		      char **argv)
{
	const char *version = NULL;
	const struct cli_opt opts[] = {{.name = "--version", .value = &version}, {0}};
	const char *pos[1];
	struct cli_path p;
	int ret = cli_opts_parse(g, argc, argv, opts, pos, 1);

	if (ret)
		return ret;
	cli_path_init(&p, "/v1/policies");
	cli_path_add_segment(&p, pos[0]);
	if (version) {
		cli_path_add(&p, "/versions");
		cli_path_add_segment(&p, version);
	}
	if (p.failed)
		return cli_usage_error(g, "argument too long");
	return cli_run(ctx, "GET", p.buf, NULL, 0, CLI_AUTH_KEY, NULL);
}

static int set_enabled(const struct cli_ctx *ctx, const struct cli_group *g, int argc,
		       char **argv, int enabled)
{
	const struct cli_opt opts[] = {{0}};
	const char *pos[1];
	struct cli_path p;
	int ret = cli_opts_parse(g, argc, argv, opts, pos, 1);

	if (ret)
		return ret;
	cli_path_init(&p, "/v1/policies");
	cli_path_add_segment(&p, pos[0]);
	if (p.failed)
		return cli_usage_error(g, "argument too long");
	return send_json(ctx, "PATCH", p.buf, json_pack("{s:b}", "enabled", enabled));
}

static int policy_enable(const struct cli_ctx *ctx, const struct cli_group *g, int argc,
			 char **argv)
{
	return set_enabled(ctx, g, argc, argv, 1);
}

static int policy_disable(const struct cli_ctx *ctx, const struct cli_group *g, int argc,
			  char **argv)
{
	return set_enabled(ctx, g, argc, argv, 0);
}

static int policy_eval(const struct cli_ctx *ctx, const struct cli_group *g, int argc,
		       char **argv)
{
	const char *caller = NULL, *callee = NULL, *cap = NULL, *budget = NULL;
	const struct cli_opt opts[] = {
		{.name = "--caller", .value = &caller},
		{.name = "--callee", .value = &callee},
		{.name = "--capability", .value = &cap},
		{.name = "--budget", .value = &budget},
		{0},
	};
	json_t *body;
	int ret = cli_opts_parse(g, argc, argv, opts, NULL, 0);

	if (ret)
		return ret;
	if (!caller || !budget || (!callee && !cap))
		return cli_usage_error(g, "eval needs --caller, --budget and --callee or --capability");
	if (!cli_decimal_ok(budget))
		return cli_usage_error(g, "--budget must be a plain decimal USD amount like 0.25");
	body = json_pack("{s:s}", "caller_agent_id", caller);
	if (body && callee)
		json_object_set_new(body, "callee_agent_id", json_string(callee));
	if (body && cap)
		json_object_set_new(body, "capability", json_string(cap));
	return cli_send_json(ctx, "POST", "/v1/policies/evaluate", body, "budget_cap_usd", budget);
}

static int policy_check(const struct cli_ctx *ctx, const struct cli_group *g, int argc,
			char **argv)
{
	(void)ctx;
	(void)g;
	return policy_check_main(argc, argv); /* offline: no server, no key */
}

static const struct cli_cmd policy_cmds[] = {
	{"apply", policy_apply},
	{"list", policy_list},
	{"get", policy_get},
	{"enable", policy_enable},
	{"disable", policy_disable},
	{"eval", policy_eval},
	{"check", policy_check},
	{0},
};

const struct cli_group cli_policy_group = {
	.name = "policy",
	.usage = "policy:\n"
		 "  nexra policy apply -f FILE --name NAME [--priority P] [--disabled]\n"
		 "  nexra policy list [--limit N] [--offset N]\n"
		 "  nexra policy get POLICY_ID [--version N]\n"
		 "  nexra policy enable|disable POLICY_ID\n"
		 "  nexra policy eval --caller ID (--callee ID | --capability C) --budget USD\n"
		 "  nexra policy check FILE        (offline: no server, no key)\n",
	.cmds = policy_cmds,
};
