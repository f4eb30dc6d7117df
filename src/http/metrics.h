/*
 * Prometheus metrics: request counts by route and status, a latency
 * histogram by route, in-flight requests. Counters are atomics updated on
 * the request path without locks; GET /metrics renders the text format.
 * Routes are labelled by their pattern (bounded cardinality); requests that
 * match no route count under route="unmatched".
 */
#ifndef NEXRA_HTTP_METRICS_H
#define NEXRA_HTTP_METRICS_H

#include <stdint.h>

#include "core/buf.h"

struct metrics;
struct route;

struct metrics *metrics_new(void);
void metrics_free(struct metrics *m);

/* Record one finished request. route may be NULL. */
void metrics_observe(struct metrics *m, const struct route *route, int status,
		     uint64_t latency_ns);

/* Render the exposition text into b; in_flight is sampled by the caller. */
int metrics_render(struct metrics *m, struct buf *b, int in_flight, const char *backend);

#endif
