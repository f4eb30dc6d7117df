/*
 * `nexra agents register|update|list|get|pause|activate`.
 *
 * An agent definition is a JSON document the user keeps in a file (or
 * pipes in with `-`); the CLI sends it byte for byte and lets the server
 * validate it, so the CLI never disagrees with the server about what a
 * valid agent is, and the server's error names the offending field. The
 * file is read up to CLI_BODY_MAX, the server's own request limit: a larger
 * file could only earn a 413.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cmd.h"
#include "cli/file.h"
#include "cli/http.h"

#include "core/banned.h"

#define CLI_BODY_MAX ((size_t)1 << 20) /* the server's request body limit */

/* All of path ("-" for stdin), at most CLI_BODY_MAX bytes, into *out
 * (caller frees). 0, or -1 after printing why. */
static int body_read(const char *path, char **out, size_t *len)
{
	if (cli_file_read(path, CLI_BODY_MAX + 1, out, len)) {
		fprintf(stderr, "error: cannot read %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (*len > CLI_BODY_MAX) {
		fprintf(stderr, "error: %s is larger than %zu KiB, the server's request limit\n",
			path, CLI_BODY_MAX >> 10);
		free(*out);
		*out = NULL;
		return -1;
	}
	return 0;
}

/* Sends the agent file to method path; the common part of register and
 * update. */
static int send_file(const struct cli_ctx *ctx, const char *method, const char *path,
                     const char *file)
{
	char *body = NULL;
	size_t len = 0;
	int ret;

	if (body_read(file, &body, &len) < 0)
		return CLI_EXIT_FAIL;
	ret = cli_run(ctx, method, path, body, len, CLI_AUTH_KEY, NULL);
	free(body);
	return ret;
}

static int too_long(const struct cli_group *g)
{
	return cli_usage_error(g, "argument too long");
}

static int agents_register(const struct cli_ctx *ctx, const struct cli_group *g, int argc,
                           char **argv)
{
	const struct cli_opt opts[] = {{0}};
	const char *pos[1];
	int ret;

	ret = cli_opts_parse(g, argc, argv, opts, pos, 1);
	if (ret != 0)
		return ret;
	return send_file(ctx, "POST", "/v1/agents/register", pos[0]);
}

static int agents_update(const struct cli_ctx *ctx, const struct cli_group *g, int argc,
                         char **argv)
{
	const struct cli_opt opts[] = {{0}};
	const char *pos[2];
	struct cli_path p;
	int ret;

	ret = cli_opts_parse(g, argc, argv, opts, pos, 2);
	if (ret != 0)
		return ret;
	cli_path_init(&p, "/v1/agents");
	cli_path_add_segment(&p, pos[0]);
	if (p.failed)
		return too_long(g);
	return send_file(ctx, "PUT", p.buf, pos[1]);
}

static int agents_list(const struct cli_ctx *ctx, const struct cli_group *g, int argc, char **argv)
{
	const char *status = NULL;
	const char *ctype = NULL;
	const char *limit = NULL;
	const char *offset = NULL;
	const struct cli_opt opts[] = {
	    {.name = "--status", .value = &status},
	    {.name = "--capability-type", .value = &ctype},
	    {.name = "--limit", .value = &limit},
	    {.name = "--offset", .value = &offset},
	    {0},
	};
	struct cli_path p;
	int ret;

	ret = cli_opts_parse(g, argc, argv, opts, NULL, 0);
	if (ret != 0)
		return ret;
	cli_path_init(&p, "/v1/agents");
	cli_path_add_query(&p, "status", status);
	cli_path_add_query(&p, "capability_type", ctype);
	cli_path_add_query(&p, "limit", limit);
	cli_path_add_query(&p, "offset", offset);
	if (p.failed)
		return too_long(g);
	return cli_run(ctx, "GET", p.buf, NULL, 0, CLI_AUTH_KEY, NULL);
}

/* get, pause and activate: one agent id, no body. */
static int agent_call(const struct cli_ctx *ctx, const struct cli_group *g, int argc, char **argv,
                      const char *method, const char *suffix)
{
	const struct cli_opt opts[] = {{0}};
	const char *pos[1];
	struct cli_path p;
	int ret;

	ret = cli_opts_parse(g, argc, argv, opts, pos, 1);
	if (ret != 0)
		return ret;
	cli_path_init(&p, "/v1/agents");
	cli_path_add_segment(&p, pos[0]);
	cli_path_add(&p, suffix);
	if (p.failed)
		return too_long(g);
	return cli_run(ctx, method, p.buf, NULL, 0, CLI_AUTH_KEY, NULL);
}

static int agents_get(const struct cli_ctx *ctx, const struct cli_group *g, int argc, char **argv)
{
	return agent_call(ctx, g, argc, argv, "GET", "");
}

static int agents_pause(const struct cli_ctx *ctx, const struct cli_group *g, int argc, char **argv)
{
	return agent_call(ctx, g, argc, argv, "DELETE", "");
}

static int agents_activate(const struct cli_ctx *ctx, const struct cli_group *g, int argc,
                           char **argv)
{
	return agent_call(ctx, g, argc, argv, "POST", "/activate");
}

static const struct cli_cmd agents_cmds[] = {
    {"register", agents_register},
    {"update", agents_update},
    {"list", agents_list},
    {"get", agents_get},
    {"pause", agents_pause},
    {"activate", agents_activate},
    {0},
};

const struct cli_group cli_agents_group = {
    .name = "agents",
    .usage = "agents:\n"
             "  nexra agents register FILE.json      (FILE may be - for stdin)\n"
             "  nexra agents update AGENT_ID FILE.json\n"
             "  nexra agents list [--status S] [--capability-type T] "
             "[--limit N] [--offset N]\n"
             "  nexra agents get AGENT_ID\n"
             "  nexra agents pause AGENT_ID\n"
             "  nexra agents activate AGENT_ID\n",
    .cmds = agents_cmds,
};
