/*
 * struct req: one HTTP request from arrival to response. The server glue
 * (server.c) fills the request side, a handler fills the response side with
 * exactly one of req_ok*() or req_fail(), and the glue renders the envelope
 * ({"data"|"error", "meta"}) and logs one line.
 *
 * A handler returns what req_ok/req_fail returned (0 or the error), so the
 * idiom is `return req_fail(r, E(NOT_FOUND), "agent %s not found", id);`.
 * A handler that returns an error without calling req_fail gets the
 * catalogue's default message.
 */
#ifndef NEXRA_HTTP_REQ_H
#define NEXRA_HTTP_REQ_H

#include <jansson.h>
#include <stdint.h>
#include <sys/types.h>

#include "auth/ratelimit.h"
#include "core/jsonw.h"
#include "core/buf.h"
#include "core/rand.h"
#include "store/store.h"

#define REQ_MAX_BODY (1024 * 1024)
#define REQ_MAX_DISCARD (16 * 1024 * 1024) /* read and dropped after a 413 */
#define REQ_MAX_PARAMS 4

struct app;
struct MHD_Connection;
struct route;

/*
 * A streamed body: called with the offset so far and room for max bytes;
 * returns the bytes written (> 0), REQ_STREAM_END at the end, or
 * REQ_STREAM_ERROR to cut the connection (the client sees a truncated
 * body). The values are libmicrohttpd's content reader's.
 */
typedef ssize_t (*req_stream_fn)(void *ctx, uint64_t pos, char *buf, size_t max);
#define REQ_STREAM_END ((ssize_t)-1)
#define REQ_STREAM_ERROR ((ssize_t)-2)

struct req {
	struct app *app;
	struct MHD_Connection *conn;
	const char *method;
	const char *path;           /* without the query string */
	char request_id[ID_MAX];
	uint64_t start_ns;          /* monotonic */
	int64_t now;                /* wall clock at arrival, unix seconds */
	const struct route *route;  /* matched route (NULL: none) */
	const char *params[REQ_MAX_PARAMS]; /* {placeholders} in route order */
	char *param_store;          /* owned copy of the path the params point into */

	struct buf body;
	int body_too_large;
	int late;                   /* arrived after shutdown began: 503 */
	size_t discarded;           /* body bytes dropped after going too large */
	int answered;               /* a response is queued */
	int suspended;              /* parked by req_suspend: answered on resume */

	/* set by auth */
	int authed;
	struct key_auth auth;
	const char *agent_id;       /* X-Agent-ID when given and valid */
	struct rl_result rl;
	int rl_applied;

	/* response */
	int status;
	int rc;                     /* 0, or the error answered */
	struct buf out;             /* rendered "data" JSON, or error JSON */
	int is_list;
	int has_more;
	int list_limit, list_offset;
	char err_message[400];
	json_t *err_details;        /* owned; NULL: {} */
	char *err_details_raw;      /* owned; rendered details JSON (wins over err_details) */
	char allow[64];             /* Allow header for 405 */
	const char *raw_type;       /* non-NULL: r->out is the whole body, of this type */
	const char *meta_key;       /* non-NULL: one more member of "meta"... */
	char meta_json[512];        /* ...with this JSON value */
	req_stream_fn stream;       /* non-NULL: the body is streamed (req_ok_stream) */
	void *stream_ctx;           /* owned until handed to the server */
	void (*stream_free)(void *ctx);
};

/* Success with a jansson value as data (reference stolen). */
int req_ok(struct req *r, int status, json_t *data);
/* Success with data already rendered into r->out by the handler. */
int req_ok_out(struct req *r, int status);
/* Success with a streamed body of content_type (no envelope): read is
 * called until it ends; ctx is freed with free_ctx afterwards, or when the
 * request ends without it being sent. */
int req_ok_stream(struct req *r, const char *content_type, req_stream_fn read, void *ctx,
		  void (*free_ctx)(void *ctx));
/* List success: data rendered into r->out as an array. */
int req_ok_list(struct req *r, int has_more, int limit, int offset);
/* Failure with the catalogue's code/status and a formatted message. */
int req_fail(struct req *r, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Failure with details (reference stolen; may be NULL). */
int req_fail_details(struct req *r, int rc, json_t *details, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Failure whose details are already rendered JSON text (ownership of
 * details taken; may be NULL). */
int req_fail_raw(struct req *r, int rc, char *details, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* 400 VALIDATION_ERROR from a core/json.h error: its message, and
 * details.field naming the field. */
struct jerr;
int req_fail_jerr(struct req *r, const struct jerr *e);

/*
 * Parking a request that waits on something else (a commit, a callee):
 * the handler calls req_suspend(r) and returns its result; no thread is
 * held meanwhile. Later any thread fills the response with exactly one of
 * req_ok*() / req_fail*() and calls req_resume(r), once; the server then
 * answers it as if the handler had just returned.
 */
int req_suspend(struct req *r);
void req_resume(struct req *r);

/* Header and query helpers (borrowed strings, valid for the request). */
const char *req_header(struct req *r, const char *name);
const char *req_query(struct req *r, const char *name);

/* A query parameter that must be one of allowed (NULL-terminated): *out
 * is the matching entry of allowed, or NULL when absent; 400 otherwise. */
int req_query_enum(struct req *r, const char *name, const char *const *allowed,
		   const char **out);

/* A query parameter holding an RFC 3339 time: *out unix seconds (left as
 * is when absent); 400 otherwise. */
int req_query_time(struct req *r, const char *name, int64_t *out);

/* The from and to query parameters (RFC 3339) as a window from <= t < to:
 * *from and *to are left as they are when absent; 400 when either is not a
 * time or from is not before to. */
int req_query_window(struct req *r, int64_t *from, int64_t *to);

/* A query parameter holding a decimal integer in [min, max]: *out (dflt
 * when absent); 400 otherwise. */
int req_query_int(struct req *r, const char *name, long min, long max, long dflt, long *out);

/* Parse the body as a JSON object (core/json.h rules); on failure the
 * request is answered 400 and the error returned. */
int req_json_body(struct req *r, json_t **out);

/* limit/offset from the query: defaults 50/0, limit 1..200; 400 otherwise. */
int req_page(struct req *r, int *limit, int *offset);

/*
 * Writing a paginated list into r->out: the store is asked for l.limit + 1
 * rows from l.offset, and the extra one only tells has_more. Use: req_list_begin, then
 * per row `if (req_list_item(&l)) write the row into &l.jw`, then
 * req_list_end (which answers 200, or fails with rc or a writer error).
 */
struct req_list {
	struct jsonw jw;
	int n, limit, offset;
};

/* Reads limit/offset from the query (req_page) and opens the array; on a
 * bad page the request is answered 400 and the error returned. */
int req_list_begin(struct req *r, struct req_list *l);
int req_list_item(struct req_list *l); /* 1: write this row (comma done) */
int req_list_end(struct req *r, struct req_list *l, int rc, const char *what);

#endif
