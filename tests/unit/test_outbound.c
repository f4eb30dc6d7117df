/*
 * delegation/outbound against a small HTTP/1.1 server started inside the
 * test: a listening socket on 127.0.0.1 with an accept thread and one
 * thread per connection, keep-alive, answering by path:
 *
 *   /ok        200, a JSON body
 *   /err       500
 *   /slow      answers after SLOW_MS, or as soon as the client hangs up
 *   /big       200 with Content-Length BIG_LEN
 *   /bigchunk  200 chunked, BIG_LEN bytes in all (no length up front)
 *   /close     reads the request and closes without a reply
 *   /redirect  302 to /ok
 *   /echo      200, the body is the request exactly as received
 *
 * The server counts accepted connections and requests, so tests can tell
 * that a refused address was never connected to and that connections were
 * reused.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/err.h"
#include "core/timefmt.h"
#include "delegation/outbound.h"
#include "test.h"

#define SLOW_MS 8000
#define BIG_LEN 5000
#define REQ_MAX (4 * 1024 * 1024)
#define WAIT_MS 8000 /* a test gives up waiting for completions after this */

/* ---- the test server ---- */

struct srv {
	int fd;
	int port;
	pthread_t accept_thread;
	atomic_int accepted;
	atomic_int requests;
	atomic_int slow_waiting; /* /slow handlers currently waiting */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int live; /* connection threads running */
};

struct conn {
	struct srv *srv;
	int fd;
};

static int send_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int send_str(int fd, const char *s)
{
	return send_all(fd, s, strlen(s));
}

/* Reads one request into *b (grown as needed); *len is its full length
 * (head and body). Bytes beyond it stay in the buffer at *have. 0, or -1
 * when the peer closed or the request is malformed. */
static int read_request(int fd, char **b, size_t *cap, size_t *have, size_t *len)
{
	size_t head = 0, clen = 0;
	char *end, *cl;

	for (;;) {
		if (!head) {
			end = memmem(*b, *have, "\r\n\r\n", 4);
			if (end) {
				head = (size_t)(end - *b) + 4;
				(*b)[head - 1] = '\0'; /* temporarily, to search the head */
				cl = strcasestr(*b, "\r\nContent-Length:");
				clen = cl ? strtoul(cl + 17, NULL, 10) : 0;
				(*b)[head - 1] = '\n';
				if (head + clen > REQ_MAX)
					return -1;
			}
		}
		if (head && *have >= head + clen) {
			*len = head + clen;
			return 0;
		}
		if (*have == *cap) {
			char *g;

			if (*cap >= REQ_MAX)
				return -1;
			g = realloc(*b, *cap * 2);
			if (!g)
				return -1;
			*b = g;
			*cap *= 2;
		}
		ssize_t r = recv(fd, *b + *have, *cap - *have, 0);

		if (r <= 0)
			return -1;
		*have += (size_t)r;
	}
}

/* Waits up to ms for the client to hang up; 1 if it did. */
static int client_gone(int fd, int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	char c;

	if (poll(&p, 1, ms) <= 0)
		return 0;
	return recv(fd, &c, 1, MSG_PEEK) <= 0;
}

/* Answers one request; -1 to close the connection. */
static int answer(struct srv *srv, int fd, const char *req, size_t len)
{
	char head[256], chunk[1024 + 16], body[BIG_LEN];
	const char *path = strchr(req, ' ');

	if (!path)
		return -1;
	path++;
	atomic_fetch_add(&srv->requests, 1);
	if (!strncmp(path, "/ok ", 4))
		return send_str(fd, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
		                    "Content-Length: 11\r\n\r\n{\"ok\":true}");
	if (!strncmp(path, "/err ", 5))
		return send_str(fd, "HTTP/1.1 500 Internal Server Error\r\n"
		                    "Content-Length: 7\r\n\r\nbroken\n");
	if (!strncmp(path, "/redirect ", 10))
		return send_str(fd, "HTTP/1.1 302 Found\r\nLocation: /ok\r\n"
		                    "Content-Length: 0\r\n\r\n");
	if (!strncmp(path, "/close ", 7))
		return -1;
	if (!strncmp(path, "/slow ", 6)) {
		atomic_fetch_add(&srv->slow_waiting, 1);
		int gone = client_gone(fd, SLOW_MS);

		atomic_fetch_sub(&srv->slow_waiting, 1);
		if (gone)
			return -1;
		return send_str(fd, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nlate");
	}
	if (!strncmp(path, "/big ", 5)) {
		memset(body, 'x', sizeof(body));
		snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n",
		         BIG_LEN);
		if (send_str(fd, head))
			return -1;
		return send_all(fd, body, sizeof(body));
	}
	if (!strncmp(path, "/bigchunk ", 10)) {
		if (send_str(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"))
			return -1;
		for (int sent = 0; sent < BIG_LEN; sent += 1000) {
			int n = snprintf(chunk, sizeof(chunk), "3e8\r\n");

			memset(chunk + n, 'y', 1000);
			memcpy(chunk + n + 1000, "\r\n", 2);
			if (send_all(fd, chunk, (size_t)n + 1002))
				return -1;
		}
		return send_str(fd, "0\r\n\r\n");
	}
	if (!strncmp(path, "/echo ", 6)) {
		snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", len);
		if (send_str(fd, head))
			return -1;
		return send_all(fd, req, len);
	}
	return send_str(fd, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
}

static void *conn_main(void *arg)
{
	struct conn *c = arg;
	struct srv *srv = c->srv;
	size_t cap = 16384, have = 0, len;
	char *b = malloc(cap);

	while (b && !read_request(c->fd, &b, &cap, &have, &len)) {
		if (answer(srv, c->fd, b, len))
			break;
		memmove(b, b + len, have - len);
		have -= len;
	}
	free(b);
	close(c->fd);
	free(c);
	pthread_mutex_lock(&srv->mu);
	srv->live--;
	pthread_cond_broadcast(&srv->cv);
	pthread_mutex_unlock(&srv->mu);
	return NULL;
}

static void *accept_main(void *arg)
{
	struct srv *srv = arg;
	pthread_attr_t attr;
	pthread_t t;

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	for (;;) {
		int fd = accept(srv->fd, NULL, NULL);
		struct conn *c;

		if (fd < 0)
			break; /* shutdown() of the listening socket */
		atomic_fetch_add(&srv->accepted, 1);
		c = malloc(sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->srv = srv;
		c->fd = fd;
		pthread_mutex_lock(&srv->mu);
		srv->live++;
		pthread_mutex_unlock(&srv->mu);
		if (pthread_create(&t, &attr, conn_main, c)) {
			close(fd);
			free(c);
			pthread_mutex_lock(&srv->mu);
			srv->live--;
			pthread_mutex_unlock(&srv->mu);
		}
	}
	pthread_attr_destroy(&attr);
	return NULL;
}

static int srv_start(struct srv *srv)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t alen = sizeof(a);
	int one = 1;

	memset(srv, 0, sizeof(*srv));
	pthread_mutex_init(&srv->mu, NULL);
	pthread_cond_init(&srv->cv, NULL);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	srv->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (srv->fd < 0)
		return -1;
	setsockopt(srv->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(srv->fd, (struct sockaddr *)&a, sizeof(a)) || listen(srv->fd, 512) ||
	    getsockname(srv->fd, (struct sockaddr *)&a, &alen)) {
		close(srv->fd);
		return -1;
	}
	srv->port = ntohs(a.sin_port);
	if (pthread_create(&srv->accept_thread, NULL, accept_main, srv)) {
		close(srv->fd);
		return -1;
	}
	return 0;
}

/* Stops accepting and waits for the connection threads (their clients
 * must be gone: call after outbound_free). */
static void srv_stop(struct srv *srv)
{
	shutdown(srv->fd, SHUT_RDWR);
	pthread_join(srv->accept_thread, NULL);
	close(srv->fd);
	pthread_mutex_lock(&srv->mu);
	while (srv->live > 0)
		pthread_cond_wait(&srv->cv, &srv->mu);
	pthread_mutex_unlock(&srv->mu);
	pthread_cond_destroy(&srv->cv);
	pthread_mutex_destroy(&srv->mu);
}

/* ---- collecting results ---- */

/* One expected completion: the callback copies the response here. */
struct result {
	struct waiter *w;
	int calls;
	struct outbound_response res; /* body pointer cleared: see body */
	char *body;
	int resubmit_rc; /* see cancel_resubmit */
	struct outbound *o;
};

struct waiter {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int done;
};

static void waiter_init(struct waiter *w)
{
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	w->done = 0;
}

static void waiter_release(struct waiter *w)
{
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
}

/* 0 once n completions arrived, -1 after WAIT_MS. */
static int waiter_wait(struct waiter *w, int n)
{
	struct timespec dl;
	int rc = 0;

	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += WAIT_MS / 1000;
	pthread_mutex_lock(&w->mu);
	while (w->done < n && !rc)
		rc = pthread_cond_timedwait(&w->cv, &w->mu, &dl);
	rc = w->done >= n ? 0 : -1;
	pthread_mutex_unlock(&w->mu);
	return rc;
}

static void on_done(void *ctx, const struct outbound_response *res)
{
	struct result *r = ctx;
	struct waiter *w = r->w;

	pthread_mutex_lock(&w->mu);
	r->calls++;
	r->res = *res;
	r->res.body = NULL;
	free(r->body);
	r->body = malloc(res->body_len + 1);
	if (r->body) {
		memcpy(r->body, res->body, res->body_len);
		r->body[res->body_len] = '\0';
	}
	w->done++;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

static void req_init(struct outbound_request *q, struct srv *srv, const char *path,
                     struct result *r)
{
	static __thread char url[128];

	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", srv->port, path);
	memset(q, 0, sizeof(*q));
	q->url = url;
	q->timeout_ms = 5000;
	q->allow_private = 1;
	q->done = on_done;
	q->ctx = r;
}

/* Submits path and waits: the whole round trip for the simple tests. */
static int fetch(struct outbound *o, struct outbound_request *q, struct result *r)
{
	struct waiter *w = r->w;
	int before;

	pthread_mutex_lock(&w->mu);
	before = w->done;
	pthread_mutex_unlock(&w->mu);
	if (outbound_submit(o, q))
		return -1;
	return waiter_wait(w, before + 1);
}

/* A test's fixture: a server, a client, a waiter. */
struct fx {
	struct srv srv;
	struct outbound *o;
	struct waiter w;
};

static int fx_start(struct fx *f)
{
	waiter_init(&f->w);
	if (srv_start(&f->srv))
		return -1;
	if (outbound_new(&f->o)) {
		srv_stop(&f->srv);
		return -1;
	}
	return 0;
}

static void fx_stop(struct fx *f)
{
	outbound_free(f->o);
	srv_stop(&f->srv);
	waiter_release(&f->w);
}

/* Runs one request to path with the given tweaks; r gets the result. */
#define SIMPLE(f, path, r, ...)                                                                    \
	do {                                                                                       \
		struct outbound_request q_;                                                        \
		(r)->w = &(f)->w;                                                                  \
		req_init(&q_, &(f)->srv, path, r);                                                 \
		__VA_ARGS__;                                                                       \
		if (fetch((f)->o, &q_, r))                                                         \
			FAIL_AT("no completion for %s", path);                                     \
	} while (0)

/* ---- tests ---- */

TEST(outbound_ok_status_and_body)
{
	struct fx f;
	struct result r = {0}, e = {0};

	ASSERT(!fx_start(&f));
	SIMPLE(&f, "/ok", &r, (void)0);
	SIMPLE(&f, "/err", &e, (void)0);
	fx_stop(&f);
	ASSERT_EQ(r.calls, 1);
	ASSERT_EQ(r.res.result, OUTBOUND_OK);
	ASSERT_EQ(r.res.status, 200);
	ASSERT_EQ(r.res.body_len, 11);
	ASSERT_STR_EQ(r.body, "{\"ok\":true}");
	ASSERT(r.res.elapsed_us > 0);
	ASSERT_EQ(e.res.result, OUTBOUND_OK);
	ASSERT_EQ(e.res.status, 500);
	ASSERT_STR_EQ(e.body, "broken\n");
	free(r.body);
	free(e.body);
}

/* The body is over 1 MiB, where curl would otherwise send "Expect:
 * 100-continue" and wait for a 100 that this server never sends. */
TEST(outbound_headers_and_body_sent)
{
	enum { BODY = 1100000 };
	struct fx f;
	struct result r = {0}, g = {0};
	char *body = malloc(BODY);
	const char *split;

	ASSERT(body);
	for (size_t i = 0; i < BODY; i++)
		body[i] = (char)(i * 7 + 1); /* binary, NULs included */
	if (fx_start(&f)) {
		free(body);
		FAIL_AT("fx_start");
	}
	SIMPLE(&f, "/echo", &r, {
		q_.headers[0] = "X-Nexra-Signature: v1,abc=";
		q_.headers[1] = "X-Request-Id: req_42";
		q_.body = body;
		q_.body_len = BODY;
		q_.max_response = 2 * BODY;
	});
	SIMPLE(&f, "/echo", &g, { q_.headers[0] = "Content-Type: text/plain"; });
	fx_stop(&f);
	ASSERT_EQ(r.res.result, OUTBOUND_OK);
	ASSERT_EQ(r.res.status, 200);
	ASSERT_CONTAINS(r.body, "POST /echo HTTP/1.1\r\n");
	ASSERT_CONTAINS(r.body, "\r\nX-Nexra-Signature: v1,abc=\r\n");
	ASSERT_CONTAINS(r.body, "\r\nX-Request-Id: req_42\r\n");
	ASSERT_CONTAINS(r.body, "\r\nContent-Type: application/json\r\n");
	ASSERT_CONTAINS(r.body, "\r\nContent-Length: 1100000\r\n");
	ASSERT(!strcasestr(r.body, "Expect:"));
	split = strstr(r.body, "\r\n\r\n");
	ASSERT(split);
	split += 4;
	ASSERT_EQ(r.res.body_len - (size_t)(split - r.body), BODY);
	ASSERT(!memcmp(split, body, BODY));
	/* a GET: no body, the caller's Content-Type kept */
	ASSERT_CONTAINS(g.body, "GET /echo HTTP/1.1\r\n");
	ASSERT_CONTAINS(g.body, "\r\nContent-Type: text/plain\r\n");
	ASSERT(!strcasestr(g.body, "Content-Length"));
	free(body);
	free(r.body);
	free(g.body);
}

TEST(outbound_timeout)
{
	struct fx f;
	struct result r = {0};

	ASSERT(!fx_start(&f));
	SIMPLE(&f, "/slow", &r, q_.timeout_ms = 200);
	fx_stop(&f);
	ASSERT_EQ(r.calls, 1);
	ASSERT_EQ(r.res.result, OUTBOUND_TIMEOUT);
	ASSERT(r.res.error[0]);
	ASSERT(r.res.elapsed_us >= 150000);
	free(r.body);
}

TEST(outbound_too_large)
{
	struct fx f;
	struct result a = {0}, b = {0}, c = {0};

	ASSERT(!fx_start(&f));
	SIMPLE(&f, "/big", &a, q_.max_response = 1000);      /* Content-Length over */
	SIMPLE(&f, "/bigchunk", &b, q_.max_response = 1000); /* counted as it comes */
	SIMPLE(&f, "/big", &c, q_.max_response = BIG_LEN);   /* exactly at the cap */
	fx_stop(&f);
	ASSERT_EQ(a.res.result, OUTBOUND_TOO_LARGE);
	ASSERT_EQ(b.res.result, OUTBOUND_TOO_LARGE);
	ASSERT_CONTAINS(b.res.error, "1000");
	ASSERT_EQ(c.res.result, OUTBOUND_OK);
	ASSERT_EQ(c.res.body_len, BIG_LEN);
	free(a.body);
	free(b.body);
	free(c.body);
}

TEST(outbound_closed_connection_fails)
{
	struct fx f;
	struct result r = {0};

	ASSERT(!fx_start(&f));
	SIMPLE(&f, "/close", &r, (void)0);
	fx_stop(&f);
	ASSERT_EQ(r.res.result, OUTBOUND_FAILED);
	ASSERT(r.res.error[0]);
	free(r.body);
}

TEST(outbound_redirect_not_followed)
{
	struct fx f;
	struct result r = {0};
	int reqs;

	ASSERT(!fx_start(&f));
	SIMPLE(&f, "/redirect", &r, (void)0);
	reqs = atomic_load(&f.srv.requests);
	fx_stop(&f);
	ASSERT_EQ(r.res.result, OUTBOUND_OK);
	ASSERT_EQ(r.res.status, 302);
	ASSERT_EQ(reqs, 1);
	free(r.body);
}

TEST(outbound_private_refused)
{
	struct fx f;
	struct result r = {0}, l = {0};
	int accepted;

	ASSERT(!fx_start(&f));
	SIMPLE(&f, "/ok", &r, q_.allow_private = 0);
	SIMPLE(&f, "/ok", &l, {
		static char url[64];

		snprintf(url, sizeof(url), "http://localhost:%d/ok", f.srv.port);
		q_.url = url;
		q_.allow_private = 0;
	});
	accepted = atomic_load(&f.srv.accepted);
	fx_stop(&f);
	ASSERT_EQ(r.res.result, OUTBOUND_REFUSED);
	ASSERT_CONTAINS(r.res.error, "127.0.0.1");
	ASSERT_EQ(l.res.result, OUTBOUND_REFUSED);
	ASSERT_EQ(accepted, 0);
	free(r.body);
	free(l.body);
}

/* A connection opened for an allow_private request must not carry a later
 * request that does not allow private addresses. */
TEST(outbound_private_refused_on_reused_connection)
{
	struct fx f;
	struct result a = {0}, b = {0};
	int reqs;

	ASSERT(!fx_start(&f));
	SIMPLE(&f, "/ok", &a, (void)0);
	SIMPLE(&f, "/ok", &b, q_.allow_private = 0);
	reqs = atomic_load(&f.srv.requests);
	fx_stop(&f);
	ASSERT_EQ(a.res.result, OUTBOUND_OK);
	ASSERT_EQ(b.res.result, OUTBOUND_REFUSED);
	ASSERT_EQ(reqs, 1);
	free(a.body);
	free(b.body);
}

TEST(outbound_bad_requests)
{
	struct outbound *o;
	struct outbound_request q;
	struct result r = {0};
	struct srv srv = {.port = 1};
	int pending;

	ASSERT(!outbound_new(&o));
	req_init(&q, &srv, "/ok", &r);
	q.headers[0] = "X-Evil: a\r\nX-Injected: b";
	ASSERT_EQ(outbound_submit(o, &q), E(VALIDATION));
	q.headers[0] = "no colon";
	ASSERT_EQ(outbound_submit(o, &q), E(VALIDATION));
	q.headers[0] = NULL;
	q.timeout_ms = 0;
	ASSERT_EQ(outbound_submit(o, &q), E(VALIDATION));
	q.timeout_ms = 100;
	q.url = NULL;
	ASSERT_EQ(outbound_submit(o, &q), E(VALIDATION));
	pending = outbound_pending(o);
	outbound_free(o);
	outbound_free(NULL);
	ASSERT_EQ(pending, 0);
	ASSERT_EQ(r.calls, 0);
}

struct burst {
	struct outbound *o;
	struct srv *srv;
	struct result *r;
	int from, to;
	int failed;
};

static void *burst_main(void *arg)
{
	struct burst *b = arg;
	struct outbound_request q;

	for (int i = b->from; i < b->to; i++) {
		req_init(&q, b->srv, i % 2 ? "/ok" : "/echo", &b->r[i]);
		q.body = "{\"n\":1}";
		q.body_len = 7;
		if (outbound_submit(b->o, &q))
			b->failed++;
	}
	return NULL;
}

TEST(outbound_concurrent_each_once)
{
	enum { N = 200, T = 4 };
	struct fx f;
	struct result *r = calloc(N, sizeof(*r));
	struct burst b[T];
	pthread_t t[T];
	int waited, pending, bad = 0;

	ASSERT(r);
	if (fx_start(&f)) {
		free(r);
		FAIL_AT("fx_start");
	}
	for (int i = 0; i < N; i++)
		r[i].w = &f.w;
	for (int i = 0; i < T; i++) {
		b[i] = (struct burst){f.o, &f.srv, r, i * N / T, (i + 1) * N / T, 0};
		pthread_create(&t[i], NULL, burst_main, &b[i]);
	}
	for (int i = 0; i < T; i++)
		pthread_join(t[i], NULL);
	waited = waiter_wait(&f.w, N);
	/* The count drops after done returns: allow the last callback to end. */
	for (int i = 0; i < 1000 && outbound_pending(f.o); i++)
		usleep(1000);
	pending = outbound_pending(f.o);
	fx_stop(&f);
	for (int i = 0; i < N; i++) {
		if (r[i].calls != 1 || r[i].res.result != OUTBOUND_OK || r[i].res.status != 200)
			bad++;
		free(r[i].body);
	}
	free(r);
	for (int i = 0; i < T; i++)
		ASSERT_EQ(b[i].failed, 0);
	ASSERT_EQ(waited, 0);
	ASSERT_EQ(f.w.done, N);
	ASSERT_EQ(bad, 0);
	ASSERT_EQ(pending, 0);
}

TEST(outbound_keepalive_reuses_connections)
{
	struct fx f;
	struct result r = {0};
	int accepted, ok = 0;

	ASSERT(!fx_start(&f));
	for (int i = 0; i < 50; i++) {
		SIMPLE(&f, i % 2 ? "/ok" : "/echo", &r, {
			q_.body = "{}";
			q_.body_len = 2;
		});
		ok += r.res.result == OUTBOUND_OK && r.res.status == 200;
	}
	accepted = atomic_load(&f.srv.accepted);
	fx_stop(&f);
	free(r.body);
	ASSERT_EQ(ok, 50);
	ASSERT(accepted >= 1);
	ASSERT(accepted <= 2);
}

static void on_done_resubmit(void *ctx, const struct outbound_response *res)
{
	struct result *r = ctx;
	struct outbound_request q = {
	    .url = "http://127.0.0.1:1/", .timeout_ms = 100, .done = on_done, .ctx = r};

	r->resubmit_rc = outbound_submit(r->o, &q);
	on_done(ctx, res);
}

TEST(outbound_free_cancels_in_flight)
{
	enum { N = 10 };
	struct fx f;
	struct result r[N];
	struct outbound_request q;
	uint64_t t0, took_ms;
	int waiting = 0, bad = 0;

	memset(r, 0, sizeof(r));
	ASSERT(!fx_start(&f));
	for (int i = 0; i < N; i++) {
		r[i].w = &f.w;
		r[i].o = f.o;
		req_init(&q, &f.srv, "/slow", &r[i]);
		q.timeout_ms = 20000;
		q.done = on_done_resubmit;
		if (outbound_submit(f.o, &q))
			bad++;
	}
	/* wait until the server holds every request (or give up after 5 s) */
	for (int i = 0; i < 500 && waiting < N; i++) {
		usleep(10000);
		waiting = atomic_load(&f.srv.slow_waiting);
	}
	t0 = time_mono_ns();
	outbound_free(f.o);
	took_ms = (time_mono_ns() - t0) / 1000000;
	srv_stop(&f.srv);
	waiter_release(&f.w);
	for (int i = 0; i < N; i++) {
		if (r[i].calls != 1 || r[i].res.result != OUTBOUND_CANCELLED ||
		    r[i].resubmit_rc != E(UNAVAILABLE))
			bad++;
		free(r[i].body);
	}
	ASSERT_EQ(waiting, N);
	ASSERT_EQ(bad, 0);
	ASSERT(took_ms < SLOW_MS / 2); /* did not wait for the callee */
}

/* Queued requests that never reached the thread are cancelled as well. */
TEST(outbound_free_cancels_queued)
{
	enum { N = 100 };
	struct outbound *o;
	struct outbound_request q;
	struct waiter w;
	struct result r[N];
	struct srv srv = {.port = 9};
	int bad = 0, accepted = 0;

	memset(r, 0, sizeof(r));
	waiter_init(&w);
	ASSERT(!outbound_new(&o));
	for (int i = 0; i < N; i++) {
		r[i].w = &w;
		req_init(&q, &srv, "/x", &r[i]);
		accepted += !outbound_submit(o, &q);
	}
	outbound_free(o);
	for (int i = 0; i < N; i++) {
		if (r[i].calls != 1)
			bad++;
		free(r[i].body);
	}
	waiter_release(&w);
	ASSERT_EQ(accepted, N);
	ASSERT_EQ(bad, 0);
}
