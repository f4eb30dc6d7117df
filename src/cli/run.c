/*
 * Sends a CLI request and turns the response envelope into output and an
 * exit status.
 *
 * Success prints only the envelope's `data`, pretty-printed, so the output
 * pipes straight into jq or a file; anything meant for a person (the
 * "more results" hint of a paginated list, error lines) goes to stderr.
 * Text that came from the server and is printed raw (error code and
 * message) has its control characters replaced, so a hostile or broken
 * server cannot drive the user's terminal with escape sequences; `data` is
 * printed by jansson, which escapes them anyway.
 */
#include "cli/cmd.h"

#include <stdio.h>
#include <stdlib.h>

#include <jansson.h>

#include "cli/http.h"

#include "core/banned.h"

/* Prints s to f with control characters shown as '?'. */
static void print_clean(FILE *f, const char *s)
{
	for (; *s; s++)
		fputc(((unsigned char)*s < 0x20 || *s == 0x7f) ? '?' : *s, f);
}

static int print_json(FILE *f, const json_t *v, size_t flags)
{
	char *text;

	text = json_dumps(v, flags | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
	if (!text)
		return -1;
	fputs(text, f);
	fputc('\n', f);
	free(text);
	return 0;
}

/* The "there is another page" hint for lists, on stderr. */
static void print_more_hint(const json_t *meta)
{
	json_int_t limit;
	json_int_t offset;

	if (!json_is_true(json_object_get(meta, "has_more")))
		return;
	limit = json_integer_value(json_object_get(meta, "limit"));
	offset = json_integer_value(json_object_get(meta, "offset"));
	fprintf(stderr, "note: more results; next page with --offset %lld\n",
	        (long long)(offset + limit));
}

static int print_success(const struct cli_http_response *res)
{
	const json_t *data;

	if (!json_is_object(res->body)) {
		fprintf(stderr,
		        "error: server answered HTTP %ld without a JSON "
		        "envelope\n",
		        res->status);
		return CLI_EXIT_FAIL;
	}
	data = json_object_get(res->body, "data");
	if (print_json(stdout, data ? data : res->body, JSON_INDENT(2)) < 0) {
		fprintf(stderr, "error: cannot print the response\n");
		return CLI_EXIT_FAIL;
	}
	if (json_is_array(data))
		print_more_hint(json_object_get(res->body, "meta"));
	return CLI_EXIT_OK;
}

static int print_failure(const struct cli_http_response *res)
{
	const json_t *err = json_object_get(res->body, "error");
	const json_t *details = json_object_get(err, "details");
	const char *code = json_string_value(json_object_get(err, "code"));
	const char *msg = json_string_value(json_object_get(err, "message"));
	const char *rid;

	if (!code) {
		fprintf(stderr,
		        "error: HTTP %ld: unexpected response from the "
		        "server\n",
		        res->status);
		return CLI_EXIT_FAIL;
	}
	fputs("error: ", stderr);
	print_clean(stderr, code);
	fputs(": ", stderr);
	print_clean(stderr, msg ? msg : "(no message)");
	fputc('\n', stderr);
	if (json_is_object(details) && json_object_size(details) > 0) {
		fputs("details: ", stderr);
		print_json(stderr, details, JSON_COMPACT);
	}
	/* Server faults are logged under the request id: show it. */
	rid = json_string_value(json_object_get(json_object_get(res->body, "meta"), "request_id"));
	if (res->status >= 500 && rid) {
		fputs("request_id: ", stderr);
		print_clean(stderr, rid);
		fputc('\n', stderr);
	}
	return CLI_EXIT_FAIL;
}

int cli_run_list(const struct cli_ctx *ctx, const struct cli_group *g, int argc, char **argv,
                 const char *path, const char *name, const char *value)
{
	const char *limit = NULL, *offset = NULL;
	const struct cli_opt opts[] = {
	    {.name = "--limit", .value = &limit},
	    {.name = "--offset", .value = &offset},
	    {0},
	};
	struct cli_path p;
	int ret = cli_opts_parse(g, argc, argv, opts, NULL, 0);

	if (ret != 0)
		return ret;
	cli_path_init(&p, path);
	if (name)
		cli_path_add_query(&p, name, value);
	cli_path_add_query(&p, "limit", limit);
	cli_path_add_query(&p, "offset", offset);
	if (p.failed)
		return cli_usage_error(g, "argument too long");
	return cli_run(ctx, "GET", p.buf, NULL, 0, CLI_AUTH_KEY, NULL);
}

int cli_run(const struct cli_ctx *ctx, const char *method, const char *path, const char *body,
            size_t body_len, enum cli_auth auth, const char *token)
{
	struct cli_http_request req = {
	    .server = ctx->server,
	    .method = method,
	    .path = path,
	    .body = body,
	    .body_len = body_len,
	    .agent_id = ctx->agent_id,
	};
	struct cli_http_response res;
	int sent;
	int ret;

	if (auth == CLI_AUTH_KEY) {
		if (!ctx->api_key) {
			fprintf(stderr, "error: NEXRA_API_KEY is not set (API "
			                "keys are read only from the "
			                "environment)\n");
			return CLI_EXIT_USAGE;
		}
		req.bearer = ctx->api_key;
	} else {
		req.bearer = token;
	}

	sent = cli_http_send(&req, &res);
	if (sent < 0 && res.local) {
		fprintf(stderr, "error: %s\n", res.error);
		ret = CLI_EXIT_USAGE;
		goto out;
	}
	if (sent < 0) {
		fprintf(stderr, "error: cannot reach the server at %s: ", ctx->server);
		print_clean(stderr, res.error);
		fputc('\n', stderr);
		ret = CLI_EXIT_CONN;
		goto out;
	}
	if (res.status >= 200 && res.status < 300)
		ret = print_success(&res);
	else
		ret = print_failure(&res);
out:
	cli_http_response_release(&res);
	return ret;
}
