/*
 * Outbound HTTP on one thread; see outbound.h for the contract.
 *
 * Shape. outbound_submit copies the request into one heap block (struct
 * job: the URL, the body, the header strings and the curl_slist nodes that
 * point at them, all in a single allocation), appends it to a
 * mutex-protected queue and wakes the thread with curl_multi_wakeup only
 * if the thread said it is going to sleep (asleep, set under the lock when
 * it found the queue empty, cleared by the first submit that wakes it; the
 * wake-up pipe is sticky, so a wake-up sent before the poll starts is not
 * lost). A busy thread looks at the queue between passes, so under load a
 * burst of submits costs no wake-up at all.
 *
 * The thread loops: take the whole queue under the lock, give each job a
 * slot (an easy handle, its response buffer and error buffer, reused from
 * a free list so the options that never change are set once), add it to
 * the multi handle, curl_multi_perform, reap completions (call done, free
 * the job, return the slot), then curl_multi_poll until a socket is ready,
 * a curl timer expires or a submit wakes it. Connections live in the multi
 * handle's cache and are reused across transfers to the same host.
 *
 * Address check in two places. CURLOPT_OPENSOCKETFUNCTION judges every
 * resolved address before a socket exists, so a refused address never sees
 * a SYN. CURLOPT_PREREQFUNCTION judges the peer again right before each
 * request, which covers a reused connection: one opened by an
 * allow_private request must not carry a later request that does not
 * allow private addresses. Environment proxies are ignored (CURLOPT_PROXY
 * ""): a proxy would resolve the name itself and defeat both checks.
 *
 * Shutdown. outbound_free sets stopping under the lock (later submits get
 * E(UNAVAILABLE)) and wakes the thread, which completes every queued and
 * in-flight job with OUTBOUND_CANCELLED and returns; then the handles are
 * freed.
 */
#include "delegation/outbound.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/netaddr.h"
#include "core/timefmt.h"
#include "core/banned.h"

#define POLL_MS 1000          /* longest sleep; curl's own timers cut it short */
#define MAX_CONNECTS 512L     /* connection cache of the multi handle */
#define MAX_IDLE_SLOTS 512    /* easy handles kept for reuse */
#define KEEP_BODY_BYTES 65536 /* a reused slot keeps at most this much buffer */
#define USER_AGENT "nexra"

/* A submitted request: one allocation holding everything it points to. */
struct job {
	struct job *next; /* queue */
	const char *url;
	const char *body; /* NULL: GET */
	size_t body_len;
	struct curl_slist *headers;
	int64_t timeout_ms;
	size_t max_response;
	int allow_private;
	void (*done)(void *ctx, const struct outbound_response *res);
	void *ctx;
	uint64_t t_submit_ns;
	struct curl_slist hdr[]; /* then the strings */
};

/* An easy handle and what a transfer on it writes to. */
struct slot {
	struct slot *next, *prev; /* active list, or next in the free list */
	struct outbound *o;
	CURL *easy;
	struct job *job; /* NULL while idle */
	struct buf body;
	int too_large;
	int refused;
	char refused_addr[INET6_ADDRSTRLEN];
	char errbuf[CURL_ERROR_SIZE];
};

struct outbound {
	pthread_mutex_t mu;
	struct job *q_head, *q_tail; /* under mu */
	int stopping;                /* under mu */
	int asleep;                  /* under mu: the thread will poll; wake it */
	atomic_int pending;          /* queued + in flight */

	/* Owned by the outbound thread while it runs. */
	CURLM *multi;
	struct slot *active; /* doubly linked */
	struct slot *idle;   /* singly linked */
	int nidle;
	pthread_t thread;
};

/* ---- request copy ---- */

static int header_ok(const char *h)
{
	for (const char *c = h; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			return 0;
	return strchr(h, ':') != NULL;
}

static int has_header(const struct outbound_request *req, int nh, const char *name)
{
	size_t n = strlen(name);

	for (int i = 0; i < nh; i++)
		if (!strncasecmp(req->headers[i], name, n) && req->headers[i][n] == ':')
			return 1;
	return 0;
}

/* Copies s (n bytes, then a NUL) to *p and advances it. */
static char *put(char **p, const char *s, size_t n)
{
	char *at = *p;

	if (n)
		memcpy(at, s, n);
	at[n] = '\0';
	*p = at + n + 1;
	return at;
}

static int job_new(const struct outbound_request *req, struct job **out)
{
	static const char expect[] = "Expect:";
	static const char ctype[] = "Content-Type: application/json";
	struct job *j = NULL;
	size_t hlen[OUTBOUND_MAX_HEADERS], url_len, size, nnodes;
	int nh = 0, add_ctype, rc = 0;
	char *p;

	*out = NULL;
	if (!req->url || !req->done || req->timeout_ms <= 0 || (!req->body && req->body_len)) {
		rc = E(VALIDATION);
		goto out;
	}
	url_len = strlen(req->url);
	size = url_len + 1;
	while (nh < OUTBOUND_MAX_HEADERS && req->headers[nh]) {
		if (!header_ok(req->headers[nh])) {
			rc = E(VALIDATION);
			goto out;
		}
		hlen[nh] = strlen(req->headers[nh]);
		size += hlen[nh] + 1;
		nh++;
	}
	add_ctype = req->body && !has_header(req, nh, "content-type");
	nnodes = (size_t)nh + 1 + (size_t)add_ctype;
	size += sizeof(expect) + (add_ctype ? sizeof(ctype) : 0);
	if (req->body)
		size += req->body_len + 1;
	j = malloc(sizeof(*j) + nnodes * sizeof(j->hdr[0]) + size);
	if (!j) {
		rc = E(INTERNAL);
		goto out;
	}
	p = (char *)(j->hdr + nnodes);
	j->next = NULL;
	j->url = put(&p, req->url, url_len);
	for (int i = 0; i < nh; i++)
		j->hdr[i].data = put(&p, req->headers[i], hlen[i]);
	j->hdr[nh].data = put(&p, expect, sizeof(expect) - 1);
	if (add_ctype)
		j->hdr[nh + 1].data = put(&p, ctype, sizeof(ctype) - 1);
	for (size_t i = 0; i < nnodes; i++)
		j->hdr[i].next = i + 1 < nnodes ? &j->hdr[i + 1] : NULL;
	j->headers = j->hdr;
	j->body = req->body ? put(&p, req->body, req->body_len) : NULL;
	j->body_len = req->body ? req->body_len : 0;
	j->timeout_ms = req->timeout_ms;
	j->max_response = req->max_response ? req->max_response : OUTBOUND_MAX_RESPONSE;
	j->allow_private = req->allow_private;
	j->done = req->done;
	j->ctx = req->ctx;
	j->t_submit_ns = time_mono_ns();
	*out = j;
out:
	return rc;
}

/* ---- curl callbacks (outbound thread) ---- */

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct slot *s = userdata;
	size_t n = size * nmemb;
	int rc;

	rc = buf_add(&s->body, ptr, n);
	if (rc == E(TOO_LARGE))
		s->too_large = 1;
	return rc ? 0 : n;
}

static void refuse(struct slot *s, const struct sockaddr *sa)
{
	const void *a = NULL;

	s->refused = 1;
	if (sa->sa_family == AF_INET)
		a = &((const struct sockaddr_in *)(const void *)sa)->sin_addr;
	else if (sa->sa_family == AF_INET6)
		a = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
	if (!a || !inet_ntop(sa->sa_family, a, s->refused_addr, sizeof(s->refused_addr)))
		snprintf(s->refused_addr, sizeof(s->refused_addr), "?");
}

static curl_socket_t on_open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *addr)
{
	struct slot *s = clientp;

	if (purpose != CURLSOCKTYPE_IPCXN) /* only FTP uses the others */
		return CURL_SOCKET_BAD;
	if (!s->job->allow_private && !netaddr_is_public(&addr->addr)) {
		refuse(s, &addr->addr);
		return CURL_SOCKET_BAD;
	}
	return socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
}

/* Called before every request, on a new or a reused connection. */
static int on_prereq(void *clientp, char *peer_ip, char *local_ip, int peer_port, int local_port)
{
	struct slot *s = clientp;
	struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};
	struct sockaddr_in in4 = {.sin_family = AF_INET};
	const struct sockaddr *sa;

	(void)local_ip;
	(void)peer_port;
	(void)local_port;
	if (s->job->allow_private)
		return CURL_PREREQFUNC_OK;
	if (inet_pton(AF_INET, peer_ip, &in4.sin_addr) == 1)
		sa = (const struct sockaddr *)&in4;
	else if (inet_pton(AF_INET6, peer_ip, &in6.sin6_addr) == 1)
		sa = (const struct sockaddr *)&in6;
	else
		sa = NULL;
	if (sa && netaddr_is_public(sa))
		return CURL_PREREQFUNC_OK;
	s->refused = 1;
	snprintf(s->refused_addr, sizeof(s->refused_addr), "%s", peer_ip);
	return CURL_PREREQFUNC_ABORT;
}

/* ---- slots ---- */

static void slot_destroy(struct slot *s)
{
	curl_easy_cleanup(s->easy);
	buf_release(&s->body);
	free(s);
}

/* An idle slot, from the free list or new; the options that never change
 * are set when the handle is created. */
static int slot_get(struct outbound *o, struct slot **out)
{
	struct slot *s = o->idle;
	CURL *e;

	*out = NULL;
	if (s) {
		o->idle = s->next;
		o->nidle--;
		*out = s;
		return 0;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return E(INTERNAL);
	e = curl_easy_init();
	if (!e) {
		free(s);
		return E(INTERNAL);
	}
	s->o = o;
	s->easy = e;
	buf_init(&s->body, OUTBOUND_MAX_RESPONSE);
	curl_easy_setopt(e, CURLOPT_PRIVATE, s);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(e, CURLOPT_PROXY, "");
	curl_easy_setopt(e, CURLOPT_USERAGENT, USER_AGENT);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, s->errbuf);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, s);
	curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
	curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, s);
	curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, on_prereq);
	curl_easy_setopt(e, CURLOPT_PREREQDATA, s);
	*out = s;
	return 0;
}

static void slot_put(struct outbound *o, struct slot *s)
{
	s->job = NULL;
	if (s->body.cap > KEEP_BODY_BYTES)
		buf_release(&s->body);
	if (o->nidle >= MAX_IDLE_SLOTS) {
		slot_destroy(s);
		return;
	}
	s->next = o->idle;
	o->idle = s;
	o->nidle++;
}

static void active_link(struct outbound *o, struct slot *s)
{
	s->prev = NULL;
	s->next = o->active;
	if (o->active)
		o->active->prev = s;
	o->active = s;
}

static void active_unlink(struct outbound *o, struct slot *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		o->active = s->next;
	if (s->next)
		s->next->prev = s->prev;
	s->next = s->prev = NULL;
}

/* ---- completion ---- */

static void complete(struct outbound *o, struct job *j, struct outbound_response *res)
{
	res->elapsed_us = (time_mono_ns() - j->t_submit_ns) / 1000;
	if (!res->body)
		res->body = "";
	j->done(j->ctx, res);
	free(j);
	atomic_fetch_sub_explicit(&o->pending, 1, memory_order_release);
}

static void complete_error(struct outbound *o, struct job *j, enum outbound_result r,
                           const char *why)
{
	struct outbound_response res = {.result = r};

	snprintf(res.error, sizeof(res.error), "%s", why);
	complete(o, j, &res);
}

/* A transfer ended with cc: classify, call done, recycle the slot. */
static void finish(struct outbound *o, struct slot *s, CURLcode cc)
{
	struct outbound_response res = {.result = OUTBOUND_OK};
	struct job *j = s->job;

	curl_multi_remove_handle(o->multi, s->easy);
	active_unlink(o, s);
	if (cc == CURLE_OK) {
		curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &res.status);
		res.body = s->body.data;
		res.body_len = s->body.len;
	} else if (s->refused) {
		res.result = OUTBOUND_REFUSED;
		snprintf(res.error, sizeof(res.error), "address not allowed: %s", s->refused_addr);
	} else if (s->too_large || cc == CURLE_FILESIZE_EXCEEDED) {
		res.result = OUTBOUND_TOO_LARGE;
		snprintf(res.error, sizeof(res.error), "response body larger than %zu bytes",
		         j->max_response);
	} else if (cc == CURLE_OPERATION_TIMEDOUT) {
		res.result = OUTBOUND_TIMEOUT;
		snprintf(res.error, sizeof(res.error), "no answer within %lld ms",
		         (long long)j->timeout_ms);
	} else {
		res.result = OUTBOUND_FAILED;
		snprintf(res.error, sizeof(res.error), "%s",
		         s->errbuf[0] ? s->errbuf : curl_easy_strerror(cc));
	}
	complete(o, j, &res);
	slot_put(o, s);
}

/* Puts j on the wire: a slot, the per-request options, the multi handle. */
static void start(struct outbound *o, struct job *j)
{
	struct slot *s;
	CURL *e;

	if (slot_get(o, &s)) {
		complete_error(o, j, OUTBOUND_FAILED, "out of memory");
		return;
	}
	e = s->easy;
	s->job = j;
	s->too_large = 0;
	s->refused = 0;
	s->errbuf[0] = '\0';
	buf_reset(&s->body);
	s->body.max = j->max_response;
	curl_easy_setopt(e, CURLOPT_URL, j->url);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, j->headers);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)j->timeout_ms);
	curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)j->max_response);
	if (j->body) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)j->body_len);
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, j->body);
	} else {
		curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
	}
	if (curl_multi_add_handle(o->multi, e) != CURLM_OK) {
		s->job = NULL;
		slot_put(o, s);
		complete_error(o, j, OUTBOUND_FAILED, "cannot start the transfer");
		return;
	}
	active_link(o, s);
}

static void reap(struct outbound *o)
{
	CURLMsg *m;
	int left;

	for (;;) {
		m = curl_multi_info_read(o->multi, &left);
		if (!m)
			break;
		if (m->msg == CURLMSG_DONE) {
			char *s = NULL;

			curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &s);
			finish(o, (struct slot *)(void *)s, m->data.result);
		}
	}
}

static void cancel_all(struct outbound *o, struct job *queued)
{
	struct job *next;

	while (o->active) {
		struct slot *s = o->active;
		struct job *j = s->job;

		curl_multi_remove_handle(o->multi, s->easy);
		active_unlink(o, s);
		complete_error(o, j, OUTBOUND_CANCELLED, "outbound client shut down");
		slot_put(o, s);
	}
	for (; queued; queued = next) {
		next = queued->next;
		complete_error(o, queued, OUTBOUND_CANCELLED, "outbound client shut down");
	}
}

static void *run(void *arg)
{
	struct outbound *o = arg;
	struct job *q, *next;
	int stop, will_poll, running;

	for (;;) {
		pthread_mutex_lock(&o->mu);
		q = o->q_head;
		o->q_head = o->q_tail = NULL;
		stop = o->stopping;
		/* With nothing new, this pass ends in curl_multi_poll: from here
		 * on a submit must wake the thread. */
		o->asleep = !q;
		will_poll = o->asleep;
		pthread_mutex_unlock(&o->mu);
		if (stop) /* nothing can be queued after this */
			break;
		for (; q; q = next) {
			next = q->next;
			start(o, q);
		}
		curl_multi_perform(o->multi, &running);
		reap(o);
		if (!will_poll)
			continue; /* look at the queue again before sleeping */
		curl_multi_poll(o->multi, NULL, 0, POLL_MS, NULL);
	}
	cancel_all(o, q);
	return NULL;
}

/* ---- API ---- */

int outbound_new(struct outbound **out)
{
	struct outbound *o = NULL;
	sigset_t all, old;
	int rc = 0, global = 0, mutex = 0;

	*out = NULL;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		rc = E(INTERNAL);
		goto out;
	}
	global = 1;
	o = calloc(1, sizeof(*o));
	if (!o || pthread_mutex_init(&o->mu, NULL)) {
		rc = E(INTERNAL);
		goto out;
	}
	mutex = 1;
	atomic_init(&o->pending, 0);
	o->multi = curl_multi_init();
	if (!o->multi) {
		rc = E(INTERNAL);
		goto out;
	}
	curl_multi_setopt(o->multi, CURLMOPT_MAXCONNECTS, MAX_CONNECTS);
	/* The thread takes no signals: they belong to the main thread. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&o->thread, NULL, run, o) ? E(INTERNAL) : 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc)
		goto out;
	*out = o;
	o = NULL;
out:
	if (o) {
		if (o->multi)
			curl_multi_cleanup(o->multi);
		if (mutex)
			pthread_mutex_destroy(&o->mu);
		free(o);
		if (global)
			curl_global_cleanup();
	}
	return rc;
}

int outbound_submit(struct outbound *o, const struct outbound_request *req)
{
	struct job *j = NULL;
	int rc;

	rc = job_new(req, &j);
	if (rc)
		goto out;
	pthread_mutex_lock(&o->mu);
	if (o->stopping ||
	    atomic_load_explicit(&o->pending, memory_order_relaxed) >= OUTBOUND_MAX_PENDING) {
		pthread_mutex_unlock(&o->mu);
		rc = E(UNAVAILABLE);
		goto out;
	}
	atomic_fetch_add_explicit(&o->pending, 1, memory_order_relaxed);
	if (o->q_tail)
		o->q_tail->next = j;
	else
		o->q_head = j;
	o->q_tail = j;
	if (o->asleep) { /* else the thread looks at the queue before it sleeps */
		o->asleep = 0;
		curl_multi_wakeup(o->multi);
	}
	j = NULL;
	pthread_mutex_unlock(&o->mu);
out:
	free(j);
	return rc;
}

int outbound_pending(struct outbound *o)
{
	return atomic_load_explicit(&o->pending, memory_order_acquire);
}

void outbound_free(struct outbound *o)
{
	struct slot *s;

	if (!o)
		return;
	pthread_mutex_lock(&o->mu);
	o->stopping = 1;
	curl_multi_wakeup(o->multi);
	pthread_mutex_unlock(&o->mu);
	pthread_join(o->thread, NULL);
	while (o->idle) {
		s = o->idle;
		o->idle = s->next;
		slot_destroy(s);
	}
	curl_multi_cleanup(o->multi);
	pthread_mutex_destroy(&o->mu);
	free(o);
	curl_global_cleanup();
}
