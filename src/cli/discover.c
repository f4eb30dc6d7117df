/*
 * `nexra discover QUERY [--type T] [--budget USD] [--max-latency MS]
 * [--exclude ID,ID] [--cross-org] [--limit N]`: POST
 * /v1/capabilities/discover with the query and the filters given; the
 * results (with their scores) print as JSON. An empty QUERY ("") ranks by
 * price, latency and trust alone. Like every command it leaves validation
 * to the server, except what it must encode: the budget as a plain
 * decimal, the limit and latency as integers.
 */
#include <stdlib.h>
#include <string.h>

#include "cli/cmd.h"
#include "cli/send.h"
#include "core/banned.h"

/* A non-negative integer argument, 1 if s is one. */
static int integer_ok(const char *s, long long *out)
{
	char *end;

	if (!*s || *s == '-' || *s == '+')
		return 0;
	*out = strtoll(s, &end, 10);
	return *end == '\0';
}

/* "a,b,c" -> ["a","b","c"] (empty items skipped). */
static json_t *id_list(const char *s)
{
	json_t *arr = json_array();
	const char *p = s;

	while (arr && *p) {
		size_t n = strcspn(p, ",");

		if (n)
			json_array_append_new(arr, json_stringn(p, n));
		p += n;
		if (*p == ',')
			p++;
	}
	return arr;
}

static int discover_run_cmd(const struct cli_ctx *ctx, const struct cli_group *g, int argc,
			    char **argv)
{
	const char *type = NULL, *budget = NULL, *latency = NULL, *exclude = NULL, *limit = NULL;
	const char *pos[1];
	int cross = 0;
	const struct cli_opt opts[] = {
		{.name = "--type", .value = &type},
		{.name = "--budget", .value = &budget},
		{.name = "--max-latency", .value = &latency},
		{.name = "--exclude", .value = &exclude},
		{.name = "--limit", .value = &limit},
		{.name = "--cross-org", .flag = &cross},
		{0},
	};
	long long n;
	json_t *body;
	int ret = cli_opts_parse(g, argc, argv, opts, pos, 1);

	if (ret)
		return ret;
	if (budget && !cli_decimal_ok(budget))
		return cli_usage_error(g, "--budget must be a plain decimal USD amount like 0.5");
	body = json_pack("{s:s}", "query", pos[0]);
	if (body && type)
		json_object_set_new(body, "capability_type", json_string(type));
	if (body && latency) {
		if (!integer_ok(latency, &n)) {
			json_decref(body);
			return cli_usage_error(g, "--max-latency must be milliseconds, like 5000");
		}
		json_object_set_new(body, "max_latency_ms", json_integer(n));
	}
	if (body && limit) {
		if (!integer_ok(limit, &n)) {
			json_decref(body);
			return cli_usage_error(g, "--limit must be a number, like 5");
		}
		json_object_set_new(body, "limit", json_integer(n));
	}
	if (body && exclude)
		json_object_set_new(body, "exclude_agents", id_list(exclude));
	if (body && cross)
		json_object_set_new(body, "include_cross_org", json_true());
	return cli_send_json(ctx, "POST", "/v1/capabilities/discover", body,
			     budget ? "budget_cap_usd" : NULL, budget);
}

static const struct cli_cmd discover_cmds[] = {
	{"", discover_run_cmd}, /* the group is the command */
	{NULL, NULL},
};

const struct cli_group cli_discover_group = {
	.name = "discover",
	.usage = "  nexra discover QUERY [--type T] [--budget USD] [--max-latency MS]\n"
		 "                 [--exclude ID,...] [--cross-org] [--limit N]\n",
	.cmds = discover_cmds,
};
