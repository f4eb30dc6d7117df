/*
 * libmicrohttpd glue; see server.h.
 *
 * libmicrohttpd calls the access handler several times per request: once
 * with the headers (we allocate struct req and check Content-Length), once
 * per chunk of body (appended to a bounded buffer), and once at the end,
 * when we route, authenticate, run the handler and queue the response. A
 * body declared over REQ_MAX_BODY by Content-Length is answered 413 before
 * anything is read, and the connection closed. A chunked body that grows
 * past it is read on and discarded (up to REQ_MAX_DISCARD) and answered 413
 * at its end, so the client is reading when the answer comes. The completion callback frees the request
 * and keeps the in-flight count that graceful shutdown waits on.
 */
#include "http/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "auth/auth.h"
#include "core/err.h"
#include "core/json.h"
#include "core/jsonw.h"
#include "core/log.h"
#include "core/timefmt.h"
#include "http/metrics.h"
#include "http/router.h"
#include "serve/app.h"
#include "core/banned.h"

#define CONNECTION_TIMEOUT_S 30
#define CONNECTION_LIMIT 4096
/* Per-connection pool for the request line, headers and response headers.
 * libmicrohttpd zeroes it between requests, so its size is paid on every
 * request: 16 KiB (twice nginx's default header buffer) instead of 32. */
#define CONNECTION_MEMORY (16 * 1024)

struct server {
	struct MHD_Daemon *d;
	struct app *app;
	int fd;
};

static void req_free(struct req *r)
{
	if (!r)
		return;
	buf_release(&r->body);
	buf_release(&r->out);
	json_decref(r->err_details);
	free(r->err_details_raw);
	free(r->param_store);
	if (r->stream_ctx && r->stream_free)
		r->stream_free(r->stream_ctx);
	free(r);
}

static struct req *req_new(struct app *app, struct MHD_Connection *c, const char *method,
			   const char *url)
{
	struct req *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->app = app;
	r->conn = c;
	r->method = method;
	r->path = url;
	r->start_ns = time_mono_ns();
	r->now = time_now_unix();
	buf_init(&r->body, REQ_MAX_BODY);
	buf_init(&r->out, 64 * 1024 * 1024);
	buf_reserve(&r->out, 2048);
	rand_fast_id(r->request_id, "req_");
	return r;
}

/* The whole response body: envelope around r->out, or r->out itself. */
static int render(struct req *r, struct buf *body, long long latency_ms)
{
	struct jsonw jw;
	char *details = NULL;

	if (r->raw_type)
		return buf_add(body, r->out.data ? r->out.data : "", r->out.len);
	jw_init(&jw, body);
	jw_obj_open(&jw);
	if (r->rc) {
		jw_key(&jw, "error");
		jw_obj_open(&jw);
		jw_kstr(&jw, "code", err_code(r->rc));
		/* 5xx detail (database text) goes to the log line, not the client */
		jw_kstr(&jw, "message", r->err_message[0] && r->status < 500 ? r->err_message
									      : err_message(r->rc));
		details = r->err_details ? json_dumps(r->err_details, JSON_DUMP_FLAGS) : NULL;
		jw_kraw(&jw, "details", r->err_details_raw ? r->err_details_raw
							   : details ? details : "{}");
		free(details);
		jw_obj_close(&jw);
	} else {
		jw_kraw(&jw, "data", r->out.len ? r->out.data : "null");
	}
	jw_key(&jw, "meta");
	jw_obj_open(&jw);
	jw_kstr(&jw, "request_id", r->request_id);
	jw_kint(&jw, "latency_ms", latency_ms);
	if (r->is_list && !r->rc) {
		jw_kbool(&jw, "has_more", r->has_more);
		jw_kint(&jw, "limit", r->list_limit);
		jw_kint(&jw, "offset", r->list_offset);
	}
	if (r->meta_key && r->meta_json[0])
		jw_kraw(&jw, r->meta_key, r->meta_json);
	jw_obj_close(&jw);
	jw_obj_close(&jw);
	return jw.rc;
}

/* The log line is built in r->out: the response was rendered from it and
 * handed to libmicrohttpd already, and its memory saves a malloc here. */
static void log_request(struct req *r, uint64_t latency_us, size_t bytes)
{
	char ts[RFC3339_LEN];
	struct buf *b = &r->out;
	struct jsonw jw;
	char lat[8];

	time_rfc3339_ms(time_now_ms(), ts);
	buf_reset(b);
	jw_init(&jw, b);
	jw_obj_open(&jw);
	jw_kstr(&jw, "ts", ts);
	jw_kstr(&jw, "level", r->status >= 500 ? "error" : "info");
	jw_kstr(&jw, "event", "request");
	jw_kstr(&jw, "request_id", r->request_id);
	jw_kstr(&jw, "method", r->method);
	jw_kstr(&jw, "path", r->path);
	jw_kint(&jw, "status", r->status);
	jw_key(&jw, "latency_ms"); /* milliseconds with 3 decimals, no printf */
	jw_int(&jw, (int64_t)(latency_us / 1000));
	lat[0] = '.';
	lat[1] = (char)('0' + latency_us / 100 % 10);
	lat[2] = (char)('0' + latency_us / 10 % 10);
	lat[3] = (char)('0' + latency_us % 10);
	lat[4] = '\0';
	jw_raw(&jw, lat);
	jw_kint(&jw, "bytes", (int64_t)bytes);
	if (r->authed) {
		jw_kstr(&jw, "org_id", r->auth.org.org_id);
		jw_kstr(&jw, "key_id", r->auth.key.key_id);
	}
	if (r->rc) {
		jw_kstr(&jw, "code", err_code(r->rc));
		if (r->status >= 500)
			jw_kstr(&jw, "message", r->err_message);
	}
	jw_obj_close(&jw);
	if (!jw.rc)
		log_write(b->data, b->len);
}

static void add_headers(struct req *r, struct MHD_Response *resp)
{
	char v[32];

	MHD_add_response_header(resp, "Content-Type",
				r->raw_type ? r->raw_type : "application/json");
	MHD_add_response_header(resp, "X-Request-ID", r->request_id);
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	if (r->rl_applied && r->rl.limit > 0) {
		snprintf(v, sizeof(v), "%d", r->rl.limit);
		MHD_add_response_header(resp, "RateLimit-Limit", v);
		snprintf(v, sizeof(v), "%d", r->rl.remaining);
		MHD_add_response_header(resp, "RateLimit-Remaining", v);
		snprintf(v, sizeof(v), "%lld", (long long)r->rl.reset_s);
		MHD_add_response_header(resp, "RateLimit-Reset", v);
		snprintf(v, sizeof(v), "%d;w=60", r->rl.limit);
		MHD_add_response_header(resp, "RateLimit-Policy", v);
		if (!r->rl.allowed) {
			snprintf(v, sizeof(v), "%lld", (long long)r->rl.retry_after_s);
			MHD_add_response_header(resp, "Retry-After", v);
		}
	}
	if (r->allow[0])
		MHD_add_response_header(resp, "Allow", r->allow);
	if (atomic_load(&r->app->shutting_down))
		MHD_add_response_header(resp, "Connection", "close");
}

/* A streamed answer: the body comes from r->stream as the client reads;
 * the log line is written when it starts (bytes unknown: 0). */
static enum MHD_Result respond_stream(struct req *r)
{
	struct MHD_Response *resp;
	enum MHD_Result ok;
	uint64_t ns;

	resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024, r->stream,
						 r->stream_ctx, r->stream_free);
	if (!resp)
		return MHD_NO; /* req_free frees the context */
	r->stream_ctx = NULL; /* the response owns it now */
	add_headers(r, resp);
	ok = MHD_queue_response(r->conn, (unsigned)r->status, resp);
	r->answered = 1;
	MHD_destroy_response(resp);
	ns = time_mono_ns() - r->start_ns;
	metrics_observe(r->app->metrics, r->route, r->status, ns);
	log_request(r, ns / 1000, 0);
	return ok;
}

static enum MHD_Result respond(struct req *r)
{
	uint64_t ns = time_mono_ns() - r->start_ns;
	struct MHD_Response *resp;
	struct buf body;
	enum MHD_Result ok;
	size_t len;
	char *data;

	if (!r->status)
		req_fail(r, E(INTERNAL), "handler produced no response");
	if (r->stream && !r->rc)
		return respond_stream(r);
	buf_init(&body, (size_t)96 * 1024 * 1024);
	buf_reserve(&body, r->out.len + 256);
	if (render(r, &body, (long long)(ns / 1000000))) {
		buf_reset(&body);
		req_fail(r, E(INTERNAL), "response too large");
		r->raw_type = NULL;
		render(r, &body, (long long)(ns / 1000000));
	}
	data = buf_detach(&body, &len);
	resp = MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(data);
		return MHD_NO;
	}
	add_headers(r, resp);
	ok = MHD_queue_response(r->conn, (unsigned)r->status, resp);
	r->answered = 1;
	MHD_destroy_response(resp);
	ns = time_mono_ns() - r->start_ns;
	metrics_observe(r->app->metrics, r->route, r->status, ns);
	log_request(r, ns / 1000, len);
	return ok;
}

static int content_type_ok(struct req *r)
{
	const char *ct = req_header(r, "Content-Type");
	size_t n = strlen("application/json");

	if (!r->body.len || !ct)
		return 1;
	return !strncasecmp(ct, "application/json", n) && (ct[n] == '\0' || ct[n] == ';');
}

static void dispatch(struct req *r)
{
	int path_known = 0, rc;
	const char *method;

	/* HEAD is GET without a body (libmicrohttpd drops the body itself) */
	method = strcmp(r->method, "HEAD") ? r->method : "GET";

	r->route = router_match(r, method, r->path, &path_known, r->allow, sizeof(r->allow));
	if (!r->route) {
		if (path_known)
			req_fail(r, E(METHOD), "method %s is not allowed on %s", r->method, r->path);
		else
			req_fail(r, E(NOT_FOUND), "no route for %s %s", r->method, r->path);
		return;
	}
	r->allow[0] = '\0';
	if (!content_type_ok(r)) {
		req_fail(r, E(MEDIA_TYPE), "Content-Type must be application/json");
		return;
	}
	if (!(r->route->flags & ROUTE_PUBLIC)) {
		rc = auth_request(r);
		if (rc)
			return;
	}
	rc = r->route->handler(r);
	if (rc && !r->rc)
		req_fail(r, rc, NULL);
}

int req_suspend(struct req *r)
{
	r->suspended = 1;
	MHD_suspend_connection(r->conn);
	return 0;
}

void req_resume(struct req *r)
{
	MHD_resume_connection(r->conn);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version,
				  const char *upload_data, size_t *upload_size, void **con_cls)
{
	struct app *app = cls;
	struct req *r = *con_cls;
	const char *cl;

	(void)version;
	if (!r) {
		r = req_new(app, c, method, url);
		if (!r)
			return MHD_NO;
		*con_cls = r;
		atomic_fetch_add(&app->in_flight, 1);
		r->late = atomic_load(&app->shutting_down);
		cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
		if (cl && strtoull(cl, NULL, 10) > REQ_MAX_BODY) {
			r->body_too_large = 1;
			req_fail(r, E(TOO_LARGE), "request body is larger than %d bytes",
				 REQ_MAX_BODY);
			return respond(r);
		}
		return MHD_YES;
	}
	if (*upload_size) {
		if (r->body_too_large) {
			/* Discard the rest so the client can read our 413: closing
			 * with unread data would reset the connection and lose it.
			 * Past REQ_MAX_DISCARD, answer at once anyway. */
			r->discarded += *upload_size;
			*upload_size = 0;
			if (r->discarded > REQ_MAX_DISCARD && !r->answered)
				return respond(r);
			return MHD_YES;
		}
		if (buf_add(&r->body, upload_data, *upload_size)) {
			r->body_too_large = 1;
			r->discarded = *upload_size;
			buf_release(&r->body);
			req_fail(r, E(TOO_LARGE), "request body is larger than %d bytes",
				 REQ_MAX_BODY);
		}
		*upload_size = 0;
		return MHD_YES;
	}
	if (r->answered)
		return MHD_YES;
	if (r->suspended) /* called again after req_resume: the answer is ready */
		return respond(r);
	if (r->body_too_large)
		return respond(r);
	if (r->late) {
		req_fail(r, E(UNAVAILABLE), "the server is shutting down; retry on another instance");
		return respond(r);
	}
	dispatch(r);
	if (r->suspended)
		return MHD_YES;
	return respond(r);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct app *app = cls;
	struct req *r = *con_cls;

	(void)c;
	(void)toe;
	if (!r)
		return;
	*con_cls = NULL;
	req_free(r);
	atomic_fetch_sub(&app->in_flight, 1);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	size_t n;

	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		msg[--n] = '\0';
	log_msg("warn", "http", "%s", msg);
}

/* Split "host:port" / "[v6]:port", bind and listen. */
static int bind_listen(const char *listen_on, int *fd_out, char *addr, size_t addrsz, char *msg,
		       size_t msgsz)
{
	char host[256], port[16], shost[INET6_ADDRSTRLEN];
	struct addrinfo hints = {0}, *ai = NULL;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	const char *colon = strrchr(listen_on, ':');
	size_t hl;
	int fd = -1, one = 1, gai;

	if (!colon || strlen(colon + 1) >= sizeof(port)) {
		snprintf(msg, msgsz, "bad listen address '%s'", listen_on);
		return E(VALIDATION);
	}
	hl = (size_t)(colon - listen_on);
	if (hl >= 2 && listen_on[0] == '[' && listen_on[hl - 1] == ']') {
		listen_on++;
		hl -= 2;
	}
	if (hl >= sizeof(host)) {
		snprintf(msg, msgsz, "bad listen address");
		return E(VALIDATION);
	}
	memcpy(host, listen_on, hl);
	host[hl] = '\0';
	snprintf(port, sizeof(port), "%s", colon + 1);
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	gai = getaddrinfo(hl ? host : NULL, port, &hints, &ai);
	if (gai) {
		snprintf(msg, msgsz, "cannot resolve listen address %s: %s", host,
			 gai_strerror(gai));
		return E(VALIDATION);
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, 1024) ||
	    getsockname(fd, (struct sockaddr *)&ss, &sl)) {
		snprintf(msg, msgsz, "cannot listen on %s: %s", listen_on, strerror(errno));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(ai);
		return E(INTERNAL);
	}
	freeaddrinfo(ai);
	if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		inet_ntop(AF_INET6, &s6->sin6_addr, shost, sizeof(shost));
		snprintf(addr, addrsz, "[%s]:%u", shost, ntohs(s6->sin6_port));
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		inet_ntop(AF_INET, &s4->sin_addr, shost, sizeof(shost));
		snprintf(addr, addrsz, "%s:%u", shost, ntohs(s4->sin_port));
	}
	*fd_out = fd;
	return 0;
}

int server_start(struct app *app, const char *listen_on, struct server **out, char *addr,
		 size_t addrsz, char *msg, size_t msgsz)
{
	struct server *s = calloc(1, sizeof(*s));
	int rc;

	*out = NULL;
	if (!s)
		return E(INTERNAL);
	rc = bind_listen(listen_on, &s->fd, addr, addrsz, msg, msgsz);
	if (rc) {
		free(s);
		return rc;
	}
	s->app = app;
	s->d = MHD_start_daemon(
		MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC |
			MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG,
		0, NULL, NULL, on_request, app,
		MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
		MHD_OPTION_LISTEN_SOCKET, s->fd,
		MHD_OPTION_THREAD_POOL_SIZE, (unsigned)app->cfg->threads,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)CONNECTION_TIMEOUT_S,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned)CONNECTION_LIMIT,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONNECTION_MEMORY,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, app,
		MHD_OPTION_END);
	if (!s->d) {
		snprintf(msg, msgsz, "cannot start the HTTP server on %s", addr);
		close(s->fd);
		free(s);
		return E(INTERNAL);
	}
	*out = s;
	return 0;
}

static void wait_idle(struct server *s, uint64_t deadline)
{
	while (atomic_load(&s->app->in_flight) > 0 && time_mono_ns() < deadline)
		usleep(10000);
}

/*
 * The listener stays open while in-flight requests finish: a request that
 * arrives meanwhile is answered 503 (on_request) with Connection: close.
 * MHD_quiesce_daemon is not used: in libmicrohttpd 0.9.75 with a thread
 * pool and epoll it removes the listen socket from each worker's epoll set
 * while that worker may be removing it too, and the loser aborts the
 * process ("Failed to remove listen FD from epoll set").
 */
void server_drain(struct server *s, int grace_s)
{
	if (!s)
		return;
	wait_idle(s, time_mono_ns() + (uint64_t)grace_s * 1000000000ull);
}

void server_free(struct server *s)
{
	if (!s)
		return;
	wait_idle(s, time_mono_ns() + 2000000000ull);
	if (atomic_load(&s->app->in_flight) > 0)
		log_msg("warn", "shutdown", "%d requests still in flight at stop",
			atomic_load(&s->app->in_flight));
	MHD_stop_daemon(s->d);
	free(s);
}
