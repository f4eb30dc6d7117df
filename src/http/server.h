/*
 * The HTTP server: libmicrohttpd with its internal epoll thread pool.
 * Requests are read (bounded at REQ_MAX_BODY), routed (router.h),
 * authenticated (auth/auth.h) unless the route is public, handed to the
 * route's handler, and answered in the envelope with one JSON log line and
 * a metrics observation each.
 */
#ifndef NEXRA_HTTP_SERVER_H
#define NEXRA_HTTP_SERVER_H

#include <stddef.h>

struct app;
struct server;

/* Bind listen ("HOST:PORT"; port 0 picks a free one) and start serving.
 * The bound address is written to addr ("127.0.0.1:8000"). */
int server_start(struct app *app, const char *listen, struct server **out, char *addr,
		 size_t addrsz, char *msg, size_t msgsz);

/* Stop accepting and let in-flight requests finish, up to grace_s
 * seconds. The server keeps serving the connections it has (parked
 * requests can still be answered). */
void server_drain(struct server *s, int grace_s);

/* Give the last answers a moment to go out, then stop the threads and
 * free the server. NULL is fine. */
void server_free(struct server *s);

#endif
