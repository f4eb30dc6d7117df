/*
 * CLI entry point: global options, the environment, dispatch to a command
 * group, and the usage text.
 *
 * Global options may stand before or after the group (`nexra --server U
 * agents list` and `nexra agents list --server U` are the same), so they
 * are lifted out of argv first and what remains is `GROUP COMMAND ARGS`.
 * Flags win over the environment, the environment over defaults, as
 * everywhere in Nexra. There is deliberately no --api-key flag: a key in
 * argv is visible to every local user through ps and lands in shell
 * history, so the key comes only from NEXRA_API_KEY.
 */
#include "cli/cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "cli/cmd.h"

#include "core/banned.h"

#define CLI_DEFAULT_SERVER "http://127.0.0.1:8000"
#define CLI_SERVER_MAX 2048

static const struct cli_group *const groups[] = {
    &cli_org_group,
    &cli_agents_group,
    &cli_keys_group,
    &cli_approvals_group,
    &cli_policy_group,
    &cli_discover_group,
    &cli_audit_group,
};
#define NGROUPS (sizeof(groups) / sizeof(groups[0]))

static const char usage_head[] =
    "usage: nexra [--server URL] [--agent-id ID] GROUP COMMAND [ARGS]\n"
    "       nexra GROUP --help\n"
    "       nexra serve [OPTIONS]   run the server (nexra serve --help)\n"
    "\n";

static const char usage_tail[] =
    "\n"
    "global options (before or after GROUP):\n"
    "  --server URL     server base URL (env NEXRA_SERVER,\n"
    "                   default " CLI_DEFAULT_SERVER ")\n"
    "  --agent-id ID    send X-Agent-ID: ID (env NEXRA_AGENT_ID)\n"
    "  --help           this text\n"
    "\n"
    "environment:\n"
    "  NEXRA_API_KEY      the API key (nx_live_... or nx_test_...); there\n"
    "                     is no flag for it, argv is visible to ps\n"
    "  NEXRA_ADMIN_TOKEN  admin token for `org register` under --signup admin\n"
    "\n"
    "output: the response's data as JSON on stdout; errors on stderr as\n"
    "`error: CODE: message`. exit status: 0 success, 1 error response,\n"
    "2 usage error, 3 server unreachable.\n";

static void print_usage(FILE *f, const struct cli_group *only)
{
	size_t i;

	fputs(usage_head, f);
	for (i = 0; i < NGROUPS; i++) {
		if (!only || only == groups[i])
			fputs(groups[i]->usage, f);
	}
	fputs(usage_tail, f);
}

int cli_usage_error(const struct cli_group *g, const char *fmt, ...)
{
	va_list ap;

	fputs("error: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\n\n", stderr);
	print_usage(stderr, g);
	return CLI_EXIT_USAGE;
}

static const struct cli_group *group_find(const char *name)
{
	size_t i;

	for (i = 0; i < NGROUPS; i++) {
		if (strcmp(groups[i]->name, name) == 0)
			return groups[i];
	}
	return NULL;
}

/* Global settings lifted out of argv. */
struct globals {
	const char *server;
	const char *agent_id;
	int help;
};

/*
 * If arg is `NAME` or `NAME=VALUE`, stores the value (the next argument for
 * the first form, advancing *i) and returns 1; returns 0 when arg is some
 * other option, -1 when NAME lacks its value.
 */
static int take_value(const char *name, int argc, char **argv, int *i, const char **value)
{
	size_t n = strlen(name);
	const char *arg = argv[*i];

	if (strncmp(arg, name, n) != 0)
		return 0;
	if (arg[n] == '=') {
		*value = arg + n + 1;
		return 1;
	}
	if (arg[n] != '\0')
		return 0;
	if (*i + 1 >= argc)
		return -1;
	*value = argv[++*i];
	return 1;
}

/*
 * Moves the global options out of argv into gl; the other arguments are
 * copied in order to rest (which has room for argc + 1 pointers). Returns
 * how many remain, or -CLI_EXIT_USAGE after printing a usage error.
 */
static int split_globals(int argc, char **argv, struct globals *gl, char **rest)
{
	const char *ignored;
	int nrest = 0;
	int r;
	int i;

	for (i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0) {
			while (i < argc)
				rest[nrest++] = argv[i++];
			break;
		}
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			gl->help = 1;
			continue;
		}
		r = take_value("--server", argc, argv, &i, &gl->server);
		if (r == 0)
			r = take_value("--agent-id", argc, argv, &i, &gl->agent_id);
		if (r < 0)
			return -cli_usage_error(NULL, "%s needs a value", argv[i]);
		if (r > 0)
			continue;
		if (take_value("--api-key", argc, argv, &i, &ignored) != 0)
			return -cli_usage_error(NULL, "there is no --api-key option: a key on the "
			                              "command line is visible to other users; "
			                              "set NEXRA_API_KEY instead");
		rest[nrest++] = argv[i];
	}
	rest[nrest] = NULL;
	return nrest;
}

/* NULL for an unset or empty variable. */
static const char *env_value(const char *name)
{
	const char *v = getenv(name);

	return v && v[0] ? v : NULL;
}

/*
 * Copies the server URL into buf without trailing slashes, after checking
 * it is an http(s) URL. Returns 0 or CLI_EXIT_USAGE (message printed).
 */
static int server_resolve(const char *url, char *buf, size_t cap)
{
	size_t n = strlen(url);

	if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
		return cli_usage_error(NULL,
		                       "server URL must start with http:// "
		                       "or https://: '%s'",
		                       url);
	while (n > 0 && url[n - 1] == '/')
		n--;
	if (n >= cap)
		return cli_usage_error(NULL, "server URL too long");
	memcpy(buf, url, n);
	buf[n] = '\0';
	return 0;
}

static int dispatch(const struct cli_ctx *ctx, const struct cli_group *g, int argc, char **argv)
{
	const struct cli_cmd *c;

	if (g->cmds[0].name && !g->cmds[0].name[0])
		return g->cmds[0].run(ctx, g, argc + 1, argv - 1);
	if (argc < 1)
		return cli_usage_error(g, "%s: missing command", g->name);
	for (c = g->cmds; c->name; c++) {
		if (strcmp(c->name, argv[0]) == 0)
			return c->run(ctx, g, argc, argv);
	}
	return cli_usage_error(g, "%s: unknown command '%s'", g->name, argv[0]);
}

int cli_main(int argc, char **argv)
{
	struct globals gl = {0};
	struct cli_ctx ctx = {0};
	const struct cli_group *g = NULL;
	char server[CLI_SERVER_MAX];
	char **rest;
	int nrest;
	int ret;

	rest = calloc((size_t)argc + 1, sizeof(*rest));
	if (!rest) {
		fprintf(stderr, "error: out of memory\n");
		return CLI_EXIT_FAIL;
	}
	nrest = split_globals(argc, argv, &gl, rest);
	if (nrest < 0) {
		ret = -nrest;
		goto out;
	}
	if (nrest > 0 && strcmp(rest[0], "help") == 0) {
		gl.help = 1;
		nrest--;
		memmove(rest, rest + 1, (size_t)nrest * sizeof(*rest));
	}
	if (nrest > 0) {
		g = group_find(rest[0]);
		if (!g) {
			ret = cli_usage_error(NULL, "unknown command '%s'", rest[0]);
			goto out;
		}
	}
	if (gl.help) {
		print_usage(stdout, g);
		ret = CLI_EXIT_OK;
		goto out;
	}
	if (!g) {
		ret = cli_usage_error(NULL, "missing command");
		goto out;
	}

	if (!gl.server)
		gl.server = env_value("NEXRA_SERVER");
	ret = server_resolve(gl.server ? gl.server : CLI_DEFAULT_SERVER, server, sizeof(server));
	if (ret != 0)
		goto out;
	ctx.server = server;
	ctx.api_key = env_value("NEXRA_API_KEY");
	ctx.agent_id = gl.agent_id && gl.agent_id[0] ? gl.agent_id : env_value("NEXRA_AGENT_ID");

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "error: cannot initialise libcurl\n");
		ret = CLI_EXIT_FAIL;
		goto out;
	}
	ret = dispatch(&ctx, g, nrest - 1, rest + 1);
	curl_global_cleanup();
out:
	free(rest);
	return ret;
}
