/*
 * The option parser every CLI subcommand uses: a table of long options, a
 * number of required positionals, nothing else.
 *
 * getopt_long would do, but it permutes argv, keeps global state and
 * prints its own messages; a subcommand here has a handful of long options
 * and one or two positionals, so a table walk is shorter than the glue and
 * its errors read the same as every other CLI error.
 */
#include "cli/cmd.h"

#include <string.h>

#include "core/banned.h"

static const struct cli_opt *opt_find(const struct cli_opt *opts, const char *arg, size_t len)
{
	const struct cli_opt *o;

	for (o = opts; o->name; o++) {
		if (strlen(o->name) == len && strncmp(o->name, arg, len) == 0)
			return o;
	}
	return NULL;
}

int cli_opts_parse(const struct cli_group *g, int argc, char **argv, const struct cli_opt *opts,
                   const char **pos, int npos)
{
	const struct cli_opt *o;
	const char *arg;
	const char *eq;
	int have = 0;
	int only_pos = 0;
	int i;

	for (i = 1; i < argc; i++) {
		arg = argv[i];
		if (only_pos || arg[0] != '-' || strcmp(arg, "-") == 0) {
			if (have >= npos)
				return cli_usage_error(g, "unexpected argument '%s'", arg);
			pos[have++] = arg;
			continue;
		}
		if (strcmp(arg, "--") == 0) {
			only_pos = 1;
			continue;
		}
		eq = strchr(arg, '=');
		o = opt_find(opts, arg, eq ? (size_t)(eq - arg) : strlen(arg));
		if (!o)
			return cli_usage_error(g, "unknown option '%s'", arg);
		if (o->flag) {
			if (eq)
				return cli_usage_error(g, "%s takes no value", o->name);
			*o->flag = 1;
			continue;
		}
		if (eq) {
			*o->value = eq + 1;
			continue;
		}
		if (i + 1 >= argc)
			return cli_usage_error(g, "%s needs a value", o->name);
		*o->value = argv[++i];
	}
	if (have < npos)
		return cli_usage_error(g, "%s %s: missing argument", g->name, argv[0]);
	return 0;
}
