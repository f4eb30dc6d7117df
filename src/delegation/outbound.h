/*
 * Outbound HTTP: every call Nexra makes to the outside (delegation
 * webhooks, completion callbacks; later notifications and billing) runs on
 * one thread driving a libcurl multi handle, so a thousand slow callees
 * cost a thousand sockets and no thread. Requests are submitted from any
 * thread; the completion callback runs on the outbound thread and must be
 * quick (hand the result to another queue).
 *
 * Safety (DESIGN.md "Outbound safety"): redirects are never followed; only
 * http and https; response bodies are capped (over the cap the transfer
 * ends as OUTBOUND_TOO_LARGE); the whole exchange has a deadline; unless
 * the request allows private addresses (--dev), every address the name
 * resolves to is checked at connect time (CURLOPT_OPENSOCKETFUNCTION with
 * netaddr_is_public) so DNS cannot smuggle loopback, private, link-local or
 * metadata addresses in; the peer of a reused connection is checked again
 * before each request. Proxies from the environment are ignored (a proxy
 * would resolve the name itself). Connections are kept alive and reused
 * per host.
 */
#ifndef NEXRA_DELEGATION_OUTBOUND_H
#define NEXRA_DELEGATION_OUTBOUND_H

#include <stddef.h>
#include <stdint.h>

#define OUTBOUND_MAX_RESPONSE (1024 * 1024) /* default body cap */
#define OUTBOUND_MAX_HEADERS 16
#define OUTBOUND_MAX_PENDING 65536 /* queued + in flight; submit refuses past it */

enum outbound_result {
	OUTBOUND_OK,        /* an HTTP response was received (any status) */
	OUTBOUND_TIMEOUT,   /* no complete answer before the deadline */
	OUTBOUND_REFUSED,   /* address not allowed (private/loopback/...) */
	OUTBOUND_FAILED,    /* DNS, connect, TLS, reset, closed early, bad HTTP */
	OUTBOUND_TOO_LARGE, /* response body over max_response */
	OUTBOUND_CANCELLED, /* the client shut down before it finished */
};

struct outbound_response {
	enum outbound_result result;
	long status;            /* HTTP status when result is OUTBOUND_OK */
	const char *body;       /* borrowed for the callback; NUL-terminated */
	size_t body_len;
	uint64_t elapsed_us;    /* submit to completion */
	char error[256];        /* a reason when result != OUTBOUND_OK */
};

struct outbound_request {
	const char *url;
	const char *headers[OUTBOUND_MAX_HEADERS]; /* "Name: value", NULL-ended */
	/* POST body (method is POST when non-NULL, else GET); sent with
	 * "Content-Type: application/json" unless headers name another. */
	const char *body;
	size_t body_len;
	int64_t timeout_ms;     /* whole exchange, > 0 */
	size_t max_response;    /* 0: OUTBOUND_MAX_RESPONSE */
	int allow_private;      /* --dev: loopback and private addresses allowed */
	/* Called once, on the outbound thread, with ctx. */
	void (*done)(void *ctx, const struct outbound_response *res);
	void *ctx;
};

struct outbound;

/* Start the outbound thread. 0 or E(INTERNAL). */
int outbound_new(struct outbound **out);

/* Queue a request. Every string and the body are copied before return.
 * 0, or E(UNAVAILABLE) after outbound_free began or with
 * OUTBOUND_MAX_PENDING requests pending, E(VALIDATION) for a request
 * without url or done, timeout_ms <= 0, or a header with a control
 * character or no colon, E(INTERNAL) on memory: then done is not called.
 * Safe from any thread, including from done. */
int outbound_submit(struct outbound *o, const struct outbound_request *req);

/* Requests queued or in flight. */
int outbound_pending(struct outbound *o);

/* Stop: requests still in flight complete with OUTBOUND_CANCELLED, then
 * the thread ends. NULL is fine. */
void outbound_free(struct outbound *o);

#endif
