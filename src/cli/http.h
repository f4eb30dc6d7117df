/*
 * The CLI's one HTTP request helper, over libcurl's easy interface, and a
 * bounded builder for request paths.
 *
 * A CLI process sends one request and exits, so the blocking easy
 * interface is the right tool (the server's outbound calls use curl multi).
 * Everything read from the network is bounded: the response body by
 * CLI_HTTP_RESPONSE_MAX, the path by CLI_PATH_MAX. Path segments and query
 * values from the user are percent-encoded here, so an agent id can never
 * change which route is called.
 */
#ifndef NEXRA_CLI_HTTP_H
#define NEXRA_CLI_HTTP_H

#include <stddef.h>

#include <jansson.h>

#define CLI_HTTP_RESPONSE_MAX ((size_t)16 << 20) /* 16 MiB */
#define CLI_HTTP_CONNECT_TIMEOUT_S 10L
#define CLI_HTTP_TIMEOUT_S 60L
#define CLI_PATH_MAX 4096

/* What to send. All strings borrowed; NULL means "leave out". */
struct cli_http_request {
	const char *server; /* base URL without trailing slash */
	const char *method; /* "GET", "POST", "PUT", "DELETE" */
	const char *path;   /* escaped path and query, starting with '/' */
	const char *body;   /* sent as application/json; NULL: no body */
	size_t body_len;
	const char *bearer;   /* Authorization: Bearer ... */
	const char *agent_id; /* X-Agent-ID */
};

/* What came back. Release with cli_http_response_release. */
struct cli_http_response {
	long status;     /* HTTP status; 0 when no response arrived */
	json_t *body;    /* owned; NULL when empty or not JSON */
	char error[320]; /* why cli_http_send failed */
	int local;       /* the request could not be built (nothing was sent) */
};

/*
 * Performs the request. Returns 0 when a response arrived (any status;
 * res->status and res->body set), or -1 with res->error describing why not:
 * connection refused, timeout, response over CLI_HTTP_RESPONSE_MAX, or,
 * with res->local set, a request that could not be built (URL too long, a
 * header value too long or holding a control character).
 * res is initialised either way and must be released.
 */
int cli_http_send(const struct cli_http_request *req, struct cli_http_response *res);

/* Frees res->body; res may be reused after. Accepts NULL. */
void cli_http_response_release(struct cli_http_response *res);

/*
 * A request path under construction in a fixed buffer. Overflowing it (or
 * an allocation failure while escaping) sets `failed`; the path is then
 * unusable and the caller reports "argument too long".
 */
struct cli_path {
	char buf[CLI_PATH_MAX];
	size_t len;
	int failed;
	int nquery; /* query parameters added so far */
};

/* Starts p with a literal, already-safe prefix such as "/v1/agents". */
void cli_path_init(struct cli_path *p, const char *literal);
/* Appends a literal, already-safe piece such as "/activate". */
void cli_path_add(struct cli_path *p, const char *literal);
/* Appends "/" and the percent-encoded raw segment. */
void cli_path_add_segment(struct cli_path *p, const char *raw);
/* Appends "?name=value" or "&name=value", value percent-encoded; does
 * nothing when value is NULL. name must be safe as is. */
void cli_path_add_query(struct cli_path *p, const char *name, const char *value);

#endif
