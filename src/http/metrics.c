/* Prometheus counters and histograms; see metrics.h. */
#include "http/metrics.h"

#include <stdatomic.h>
#include <stdlib.h>

#include "core/timefmt.h"
#include "http/router.h"
#include "core/banned.h"

static const int statuses[] = {200, 201, 202, 204, 400, 401, 402, 403, 404, 405,
			       409, 413, 415, 429, 500, 502, 503, 504, 0};
#define NSTATUS ((int)(sizeof(statuses) / sizeof(statuses[0]))) /* last: other */
static const double bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
				0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
#define NBOUNDS ((int)(sizeof(bounds) / sizeof(bounds[0])))
#define MAX_ROUTES 128

struct route_stats {
	atomic_ullong by_status[NSTATUS];
	atomic_ullong buckets[NBOUNDS]; /* non-cumulative; summed on render */
	atomic_ullong count;
	atomic_ullong sum_ns;
};

struct metrics {
	struct route_stats routes[MAX_ROUTES + 1]; /* last: unmatched */
	int64_t started;
};

struct metrics *metrics_new(void)
{
	struct metrics *m = calloc(1, sizeof(*m));

	if (m)
		m->started = time_now_unix();
	return m;
}

void metrics_free(struct metrics *m)
{
	free(m);
}

static int route_index(const struct route *rt)
{
	long i = rt ? (long)(rt - routes) : -1;

	return i >= 0 && i < routes_count && i < MAX_ROUTES ? (int)i : MAX_ROUTES;
}

void metrics_observe(struct metrics *m, const struct route *route, int status,
		     uint64_t latency_ns)
{
	struct route_stats *s = &m->routes[route_index(route)];
	double secs = (double)latency_ns / 1e9;
	int i;

	for (i = 0; i < NSTATUS - 1 && statuses[i] != status; i++)
		;
	atomic_fetch_add_explicit(&s->by_status[i], 1, memory_order_relaxed);
	for (i = 0; i < NBOUNDS && secs > bounds[i]; i++)
		;
	if (i < NBOUNDS)
		atomic_fetch_add_explicit(&s->buckets[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&s->count, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&s->sum_ns, latency_ns, memory_order_relaxed);
}

static void label(struct buf *b, int r)
{
	if (r == MAX_ROUTES)
		buf_adds(b, "route=\"unmatched\"");
	else
		buf_addf(b, "route=\"%s %s\"", routes[r].method, routes[r].pattern);
}

int metrics_render(struct metrics *m, struct buf *b, int in_flight, const char *backend)
{
	buf_addf(b, "# HELP nexra_up 1 while the server is serving.\n# TYPE nexra_up gauge\n"
		    "nexra_up{db=\"%s\"} 1\n", backend);
	buf_addf(b, "# HELP nexra_start_time_seconds Unix time the server started.\n"
		    "# TYPE nexra_start_time_seconds gauge\nnexra_start_time_seconds %lld\n",
		 (long long)m->started);
	buf_addf(b, "# HELP nexra_http_in_flight_requests Requests being served.\n"
		    "# TYPE nexra_http_in_flight_requests gauge\nnexra_http_in_flight_requests %d\n",
		 in_flight);
	buf_adds(b, "# HELP nexra_http_requests_total HTTP requests by route and status.\n"
		    "# TYPE nexra_http_requests_total counter\n");
	for (int r = 0; r <= MAX_ROUTES; r++) {
		if (r < MAX_ROUTES && r >= routes_count)
			continue;
		for (int i = 0; i < NSTATUS; i++) {
			unsigned long long n = atomic_load(&m->routes[r].by_status[i]);

			if (!n)
				continue;
			buf_adds(b, "nexra_http_requests_total{");
			label(b, r);
			if (statuses[i])
				buf_addf(b, ",code=\"%d\"} %llu\n", statuses[i], n);
			else
				buf_addf(b, ",code=\"other\"} %llu\n", n);
		}
	}
	buf_adds(b, "# HELP nexra_http_request_duration_seconds Time to answer, by route.\n"
		    "# TYPE nexra_http_request_duration_seconds histogram\n");
	for (int r = 0; r <= MAX_ROUTES; r++) {
		struct route_stats *s = &m->routes[r];
		unsigned long long cum = 0, count = atomic_load(&s->count);

		if (!count)
			continue;
		for (int i = 0; i < NBOUNDS; i++) {
			cum += atomic_load(&s->buckets[i]);
			buf_adds(b, "nexra_http_request_duration_seconds_bucket{");
			label(b, r);
			buf_addf(b, ",le=\"%g\"} %llu\n", bounds[i], cum);
		}
		buf_adds(b, "nexra_http_request_duration_seconds_bucket{");
		label(b, r);
		buf_addf(b, ",le=\"+Inf\"} %llu\n", count);
		buf_adds(b, "nexra_http_request_duration_seconds_sum{");
		label(b, r);
		buf_addf(b, "} %.6f\n", (double)atomic_load(&s->sum_ns) / 1e9);
		buf_adds(b, "nexra_http_request_duration_seconds_count{");
		label(b, r);
		buf_addf(b, "} %llu\n", count);
	}
	return 0;
}
