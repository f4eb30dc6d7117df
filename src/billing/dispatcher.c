/*
 * The billing dispatcher; see dispatcher.h. One round:
 *
 *   1. claim up to BILLING_BATCH due events (lease BILLING_LEASE_S);
 *   2. read each org's live settings once and open its secret key;
 *   3. send every event's meter event at once and wait for all answers;
 *   4. judge each answer and commit every verdict in one transaction.
 *
 * Nothing due: the thread sleeps BILLING_IDLE_MS (a stop wakes it). A
 * database error: it logs and sleeps a second. The pending and dead
 * gauges are counted every GAUGE_EVERY_S here, never on a /metrics
 * request.
 */
#include "billing/dispatcher.h"

#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "billing/settings.h"
#include "billing/stripe.h"
#include "billing/stripe_http.h"
#include "core/err.h"
#include "core/log.h"
#include "core/rand.h"
#include "core/timefmt.h"
#include "serve/app.h"
#include "core/banned.h"

#define GAUGE_EVERY_S 5
#define ERROR_PAUSE_MS 1000
#define FORM_MAX 4096

static const double req_bounds[] = {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
static const double lag_bounds[] = {1, 2, 5, 10, 30, 60, 300, 900, 3600, 86400};
#define NB 10

struct histogram {
	atomic_ullong buckets[NB]; /* non-cumulative */
	atomic_ullong count;
	atomic_ullong sum_us;
};

/* One org's live settings for a round. */
struct org_conn {
	char org_id[ID_MAX];
	int rc; /* 0, NOT_FOUND (disconnected) or an error */
	struct billing_settings set;
	char *secret;
	size_t secret_len;
};

struct billing_dispatcher {
	struct app *app;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int stopping;     /* under mu */
	atomic_int stop;  /* the same, for a batch in flight */
	struct stripe_http *http;
	char owner[BILLING_OWNER_MAX];
	char url[sizeof(((struct config *)0)->stripe_api_base) + sizeof(STRIPE_METER_PATH)];

	/* the round (dispatcher thread only) */
	struct billing_event ev[BILLING_BATCH];
	struct stripe_call calls[BILLING_BATCH];
	struct buf forms[BILLING_BATCH];
	struct billing_verdict verdicts[BILLING_BATCH];
	struct billing_result res[BILLING_BATCH];
	struct org_conn orgs[BILLING_BATCH];
	int norgs;

	/* metrics */
	atomic_ullong sent, retried, dead, released;
	atomic_llong pending_now, dead_now; /* -1 until first counted */
	struct histogram req_seconds, lag_seconds;
};

static void observe(struct histogram *h, const double *bounds, double v)
{
	int i = 0;

	while (i < NB && v > bounds[i])
		i++;
	if (i < NB)
		atomic_fetch_add(&h->buckets[i], 1);
	atomic_fetch_add(&h->count, 1);
	atomic_fetch_add(&h->sum_us, (unsigned long long)(v * 1e6));
}

/* The org's connection for this round, read on first use. */
static struct org_conn *org_for(struct billing_dispatcher *d, const char *org_id)
{
	struct store *st = d->app->store;
	struct org_conn *o;
	size_t len = strnlen(org_id, ID_MAX - 1);

	for (int i = 0; i < d->norgs; i++)
		if (!strcmp(d->orgs[i].org_id, org_id))
			return &d->orgs[i];
	o = &d->orgs[d->norgs++];
	memset(o, 0, sizeof(*o));
	memcpy(o->org_id, org_id, len); /* org_id points into d too: no snprintf */
	o->org_id[len] = '\0';
	o->rc = st->ops->billing_settings_get(st, org_id, "live", &o->set);
	if (!o->rc)
		o->rc = billing_open_secret(d->app->master_key, &o->set, &o->secret,
					    &o->secret_len);
	return o;
}

static void orgs_release(struct billing_dispatcher *d)
{
	for (int i = 0; i < d->norgs; i++) {
		struct org_conn *o = &d->orgs[i];

		if (o->secret) {
			sodium_memzero(o->secret, o->secret_len);
			free(o->secret);
		}
		billing_settings_release(&o->set);
	}
	d->norgs = 0;
}

_Static_assert(BILLING_BATCH <= STRIPE_HTTP_MAX_CALLS, "a round is one HTTP batch");

/* Build call c for event i; 0, or the verdict is already decided. */
static int prepare(struct billing_dispatcher *d, int i, struct stripe_call *c, int64_t now)
{
	struct billing_event *e = &d->ev[i];
	struct billing_verdict *v = &d->verdicts[i];
	struct org_conn *o = org_for(d, e->org_id);

	memset(v, 0, sizeof(*v));
	buf_reset(&d->forms[i]);
	if (o->rc == E(NOT_FOUND)) { /* disconnected since the claim: wait for it */
		v->outcome = BILLING_RELEASE;
		return -1;
	}
	if (o->rc || stripe_meter_form(&d->forms[i], e, o->set.customer_id,
				       o->set.meter_event_name)) {
		v->outcome = BILLING_RETRY;
		v->next_attempt_at = now + billing_backoff_s(e->attempts, -1, randombytes_random());
		snprintf(v->error, sizeof(v->error), "%s",
			 o->rc == E(INTERNAL) && o->set.secret_sealed
				 ? "the Stripe secret key cannot be opened with this master key"
				 : "reading the org's Stripe settings failed");
		return -1;
	}
	memset(c, 0, sizeof(*c));
	c->url = d->url;
	c->body = d->forms[i].data;
	c->body_len = d->forms[i].len;
	snprintf(c->auth, sizeof(c->auth), "Authorization: Bearer %s", o->secret);
	snprintf(c->idem, sizeof(c->idem), "Idempotency-Key: %s", e->billing_id);
	return 0;
}

static void round_once(struct billing_dispatcher *d, int n)
{
	struct store *st = d->app->store;
	struct stripe_call *batch = d->calls;
	int idx[BILLING_BATCH], ncalls = 0, rc;
	int64_t now = time_now_unix();

	for (int i = 0; i < n; i++)
		if (!prepare(d, i, &batch[ncalls], now))
			idx[ncalls++] = i;
	rc = ncalls ? stripe_http_run(d->http, batch, ncalls, BILLING_STRIPE_TIMEOUT_MS, &d->stop)
		    : 0;
	now = time_now_unix();
	for (int k = 0; k < ncalls; k++) {
		struct stripe_call *c = &batch[k];
		struct billing_event *e = &d->ev[idx[k]];
		struct billing_verdict *v = &d->verdicts[idx[k]];
		struct stripe_reply r = {
			.answered = c->answered, .status = c->status, .body = c->response.data,
			.body_len = c->response.len,
			.retry_after = c->retry_after[0] ? c->retry_after : NULL,
			.transport_error = rc ? "the HTTP client failed" : c->error,
		};

		if (c->cancelled)
			v->outcome = BILLING_RELEASE;
		else
			billing_judge(&r, e->attempts, now, randombytes_random(), v);
		if (c->answered)
			observe(&d->req_seconds, req_bounds, (double)c->elapsed_ns / 1e9);
		stripe_call_release(c);
	}
	for (int i = 0; i < n; i++) {
		d->res[i] = (struct billing_result){
			.billing_id = d->ev[i].billing_id, .outcome = d->verdicts[i].outcome,
			.next_attempt_at = d->verdicts[i].next_attempt_at,
			.error = d->verdicts[i].error};
	}
	rc = st->ops->billing_finish(st, d->owner, d->res, (size_t)n, now);
	orgs_release(d);
	if (rc) {
		/* the leases run out and the events are sent again: harmless */
		log_msg("error", "billing", "recording %d Stripe answers failed: %s", n,
			store_last_error());
		return;
	}
	for (int i = 0; i < n; i++) {
		const struct billing_verdict *v = &d->verdicts[i];

		switch (v->outcome) {
		case BILLING_SENT:
			atomic_fetch_add(&d->sent, 1);
			observe(&d->lag_seconds, lag_bounds, (double)(now - d->ev[i].created_at));
			break;
		case BILLING_RETRY:
			atomic_fetch_add(&d->retried, 1);
			break;
		case BILLING_DEAD:
			atomic_fetch_add(&d->dead, 1);
			log_msg("warn", "billing", "event %s is dead: %s", d->ev[i].billing_id,
				v->error);
			break;
		case BILLING_RELEASE:
			atomic_fetch_add(&d->released, 1);
			break;
		}
	}
}

static void count_gauges(struct billing_dispatcher *d)
{
	struct store *st = d->app->store;
	int64_t n;

	if (!st->ops->billing_count(st, "pending", &n))
		atomic_store(&d->pending_now, n);
	if (!st->ops->billing_count(st, "dead", &n))
		atomic_store(&d->dead_now, n);
}

/* Sleep ms unless stopped; 1 when stopping. */
static int pause_ms(struct billing_dispatcher *d, long ms)
{
	struct timespec ts;
	int stopping;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&d->mu);
	if (!d->stopping)
		pthread_cond_timedwait(&d->cv, &d->mu, &ts);
	stopping = d->stopping;
	pthread_mutex_unlock(&d->mu);
	return stopping;
}

static void *run(void *arg)
{
	struct billing_dispatcher *d = arg;
	struct store *st = d->app->store;
	int64_t now, last_gauge = 0;
	int n, rc;

	while (!atomic_load(&d->stop)) {
		now = time_now_unix();
		if (now - last_gauge >= GAUGE_EVERY_S) {
			last_gauge = now;
			count_gauges(d);
		}
		rc = st->ops->billing_claim(st, now, now + BILLING_LEASE_S, d->owner, d->ev,
					    BILLING_BATCH, &n);
		if (rc) {
			log_msg("error", "billing", "claiming billing events failed: %s",
				store_last_error());
			if (pause_ms(d, ERROR_PAUSE_MS))
				break;
			continue;
		}
		if (n == 0) {
			if (pause_ms(d, BILLING_IDLE_MS))
				break;
			continue;
		}
		round_once(d, n);
	}
	return NULL;
}

/* What new made besides the thread (the thread has ended or never began). */
static void release_parts(struct billing_dispatcher *d)
{
	stripe_http_free(d->http);
	for (int i = 0; i < BILLING_BATCH; i++)
		buf_release(&d->forms[i]);
	pthread_mutex_destroy(&d->mu);
	pthread_cond_destroy(&d->cv);
	free(d);
}

int billing_dispatcher_new(struct app *app, struct billing_dispatcher **out)
{
	struct billing_dispatcher *d = calloc(1, sizeof(*d));
	int rc;

	*out = NULL;
	if (!d)
		return E(INTERNAL);
	d->app = app;
	atomic_init(&d->pending_now, -1);
	atomic_init(&d->dead_now, -1);
	snprintf(d->url, sizeof(d->url), "%s%s", app->cfg->stripe_api_base, STRIPE_METER_PATH);
	for (int i = 0; i < BILLING_BATCH; i++)
		buf_init(&d->forms[i], FORM_MAX);
	pthread_mutex_init(&d->mu, NULL);
	pthread_cond_init(&d->cv, NULL);
	rc = rand_id(d->owner, "disp_", 12);
	if (!rc)
		rc = stripe_http_new(&d->http);
	if (!rc && pthread_create(&d->thread, NULL, run, d))
		rc = E(INTERNAL);
	if (rc) {
		release_parts(d);
		return rc;
	}
	*out = d;
	return 0;
}

void billing_dispatcher_free(struct billing_dispatcher *d)
{
	if (!d)
		return;
	pthread_mutex_lock(&d->mu);
	d->stopping = 1;
	atomic_store(&d->stop, 1);
	pthread_cond_signal(&d->cv);
	pthread_mutex_unlock(&d->mu);
	pthread_join(d->thread, NULL);
	release_parts(d);
}

static int render_histogram(struct buf *out, const char *name, const char *help,
			    struct histogram *h, const double *bounds)
{
	unsigned long long cum = 0;
	int rc = buf_addf(out, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);

	for (int i = 0; !rc && i < NB; i++) {
		cum += atomic_load(&h->buckets[i]);
		rc = buf_addf(out, "%s_bucket{le=\"%g\"} %llu\n", name, bounds[i], cum);
	}
	if (!rc)
		rc = buf_addf(out, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.6f\n%s_count %llu\n", name,
			      (unsigned long long)atomic_load(&h->count), name,
			      (double)atomic_load(&h->sum_us) / 1e6, name,
			      (unsigned long long)atomic_load(&h->count));
	return rc;
}

int billing_metrics(struct billing_dispatcher *d, struct buf *out)
{
	long long pending = atomic_load(&d->pending_now), dead = atomic_load(&d->dead_now);
	int rc = buf_addf(
		out,
		"# HELP nexra_billing_events Billing outbox rows by state, all processes "
		"(counted every %d s; -1 until first counted).\n"
		"# TYPE nexra_billing_events gauge\n"
		"nexra_billing_events{state=\"pending\"} %lld\n"
		"nexra_billing_events{state=\"dead\"} %lld\n"
		"# HELP nexra_billing_dispatch_total Stripe sends by verdict (this process).\n"
		"# TYPE nexra_billing_dispatch_total counter\n"
		"nexra_billing_dispatch_total{outcome=\"sent\"} %llu\n"
		"nexra_billing_dispatch_total{outcome=\"retry\"} %llu\n"
		"nexra_billing_dispatch_total{outcome=\"dead\"} %llu\n"
		"nexra_billing_dispatch_total{outcome=\"released\"} %llu\n",
		GAUGE_EVERY_S, pending, dead, (unsigned long long)atomic_load(&d->sent),
		(unsigned long long)atomic_load(&d->retried), (unsigned long long)atomic_load(&d->dead),
		(unsigned long long)atomic_load(&d->released));

	if (!rc)
		rc = render_histogram(out, "nexra_billing_request_duration_seconds",
				      "Time Stripe took to answer a meter event (this process).",
				      &d->req_seconds, req_bounds);
	if (!rc)
		rc = render_histogram(out, "nexra_billing_delivery_lag_seconds",
				      "Settlement to Stripe's acceptance of its event (this process).",
				      &d->lag_seconds, lag_bounds);
	return rc;
}
