/*
 * What the CLI's command groups share: the resolved global settings, the
 * exit statuses, a table-driven option parser and the one call that sends a
 * request and prints its outcome.
 *
 * Each group (org.c, agents.c, keys.c) is a table of subcommands plus a
 * usage text; cli.c owns dispatch and the global options. A command builds
 * a path and maybe a body, then calls cli_run(), which returns the exit
 * status directly, so every command ends in `return cli_run(...)`.
 */
#ifndef NEXRA_CLI_CMD_H
#define NEXRA_CLI_CMD_H

#include <stddef.h>

enum cli_exit {
	CLI_EXIT_OK = 0,    /* 2xx */
	CLI_EXIT_FAIL = 1,  /* error envelope, or a local input file unusable */
	CLI_EXIT_USAGE = 2, /* bad command line, missing NEXRA_API_KEY */
	CLI_EXIT_CONN = 3,  /* server unreachable, timeout, oversized reply */
};

/* Settings resolved from global options and the environment. All strings
 * are borrowed (argv or environ) and outlive the command. */
struct cli_ctx {
	const char *server;   /* base URL, no trailing slash */
	const char *api_key;  /* NEXRA_API_KEY, NULL when unset or empty */
	const char *agent_id; /* sent as X-Agent-ID; NULL for none */
};

struct cli_group;

/* One subcommand: `nexra GROUP NAME ...`; argv[0] is NAME. */
struct cli_cmd {
	const char *name;
	int (*run)(const struct cli_ctx *ctx, const struct cli_group *g, int argc, char **argv);
};

/* A command group and its subcommands (table ends with a NULL name). A
 * group whose only command is named "" is itself the command: its run gets
 * the group name as argv[0]. */
struct cli_group {
	const char *name;
	const char *usage; /* the group's lines of the usage text */
	const struct cli_cmd *cmds;
};

extern const struct cli_group cli_org_group;
extern const struct cli_group cli_agents_group;
extern const struct cli_group cli_keys_group;
extern const struct cli_group cli_approvals_group;
extern const struct cli_group cli_policy_group;
extern const struct cli_group cli_discover_group; /* one command: `nexra discover ...` */
extern const struct cli_group cli_audit_group;

/* Prints `error: MESSAGE` and the group's usage (all usage when g is NULL)
 * to stderr. Returns CLI_EXIT_USAGE so callers can `return` it. */
int cli_usage_error(const struct cli_group *g, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * One option of a subcommand. Exactly one of value and flag is set: value
 * receives the option's argument (borrowed from argv), flag is set to 1.
 */
struct cli_opt {
	const char *name; /* "--name" */
	const char **value;
	int *flag;
};

/*
 * Parses argv[1..argc) (argv[0] is the subcommand) against opts, a table
 * ended by a NULL name. Accepts `--opt VALUE` and `--opt=VALUE`; `--` ends
 * the options; `-` is a positional (stdin). Positionals are stored in pos
 * (borrowed); exactly npos of them are required. Returns 0, or prints a
 * usage error for group g and returns CLI_EXIT_USAGE.
 */
int cli_opts_parse(const struct cli_group *g, int argc, char **argv, const struct cli_opt *opts,
                   const char **pos, int npos);

/* What cli_run sends as the bearer token. */
enum cli_auth {
	CLI_AUTH_KEY,      /* NEXRA_API_KEY, required */
	CLI_AUTH_OPTIONAL, /* the given token if non-NULL, else nothing */
};

/*
 * Sends one request and prints its outcome: `data` as pretty JSON on
 * stdout for a 2xx, `error: CODE: message` on stderr otherwise. path is
 * already escaped (see cli_path in http.h); body may be NULL. token is used
 * only with CLI_AUTH_OPTIONAL. Returns the exit status.
 */
int cli_run(const struct cli_ctx *ctx, const char *method, const char *path, const char *body,
            size_t body_len, enum cli_auth auth, const char *token);

/*
 * A paged list: `[--limit N] [--offset N]` from argv, then GET path with
 * those (and the fixed query pair name=value when name is non-NULL), as
 * cli_run. Returns the exit status.
 */
int cli_run_list(const struct cli_ctx *ctx, const struct cli_group *g, int argc, char **argv,
                 const char *path, const char *name, const char *value);

#endif
