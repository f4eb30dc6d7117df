/* The notifier thread; see notifier.h. */
#include "approvals/notifier.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "approvals/message.h"
#include "approvals/notifier_int.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"
#include "core/timefmt.h"
#include "policy/stack.h"
#include "serve/app.h"
#include "core/banned.h"

#define DISCOVER_BATCH 100
#define ALERT_BATCH 100
#define ALERT_SLACK_S 60 /* a delegation committed this long after its created_at is still seen */

int64_t notifier_backoff(int base_s, int64_t attempts)
{
	int64_t d = base_s > 0 ? base_s : 1;

	for (int64_t i = 1; i < attempts && d < NOTIFY_BACKOFF_MAX_S; i++)
		d *= 2;
	return d < NOTIFY_BACKOFF_MAX_S ? d : NOTIFY_BACKOFF_MAX_S;
}

/* 1. Record the outcome of every finished send. */
static void record_done(struct notifier *n)
{
	struct store *st = n->app->store;
	struct send_job *j;
	int64_t now = time_now_unix();
	int rc;

	pthread_mutex_lock(&n->mu);
	j = n->done;
	n->done = NULL;
	pthread_mutex_unlock(&n->mu);
	while (j) {
		struct send_job *next = j->next;
		const char *state = j->ok ? "sent" : j->attempts >= NOTIFY_ATTEMPTS ? "dead" : "pending";
		int64_t due = j->ok ? now : now + notifier_backoff(n->app->cfg->notify_retry_s,
								    j->attempts);

		rc = st->ops->notify_finish(st, j->delivery_id, state, due, j->ok ? "" : j->error,
					    now);
		if (rc)
			log_msg("error", "notify", "delivery %s: recording its outcome failed: %s",
				j->delivery_id, store_last_error());
		if (j->ok) {
			atomic_fetch_add(&n->sent, 1);
		} else if (!strcmp(state, "dead")) {
			atomic_fetch_add(&n->dead, 1);
			log_msg("warn", "notify", "delivery %s to channel %s given up after %lld "
				"attempts: %s", j->delivery_id, j->channel_id,
				(long long)j->attempts, j->error);
		} else {
			atomic_fetch_add(&n->retried, 1);
			log_msg("info", "notify", "delivery %s to channel %s failed (attempt %lld), "
				"retrying: %s", j->delivery_id, j->channel_id,
				(long long)j->attempts, j->error);
		}
		send_job_free(j);
		j = next;
	}
}

/* 2. Pending approvals without deliveries. */
struct found {
	char org_id[ID_MAX];
	char delegation_id[ID_MAX];
	int64_t created_at;
	char *payload;
};

struct found_list {
	struct found items[DISCOVER_BATCH];
	int n;
	const char *public_url;
};

static int found_one(void *ctx, const struct delegation *d)
{
	struct found_list *l = ctx;
	struct found *f = &l->items[l->n];
	struct buf b;

	if (l->n >= DISCOVER_BATCH)
		return 1;
	buf_init(&b, MESSAGE_PAYLOAD_MAX);
	if (message_approval_event(d, l->public_url, &b)) {
		buf_release(&b);
		log_msg("error", "notify", "delegation %s: cannot build its notification",
			d->rec.delegation_id);
		return 0;
	}
	snprintf(f->org_id, sizeof(f->org_id), "%s", d->rec.org_id);
	snprintf(f->delegation_id, sizeof(f->delegation_id), "%s", d->rec.delegation_id);
	f->created_at = d->rec.created_at;
	f->payload = buf_detach(&b, NULL);
	l->n++;
	return 0;
}

static void discover(struct notifier *n)
{
	struct store *st = n->app->store;
	struct found_list *l = calloc(1, sizeof(*l));
	int rc, created;

	if (!l)
		return;
	l->public_url = n->app->cfg->public_url;
	rc = st->ops->notify_unsent_approvals(st, DISCOVER_BATCH, found_one, l);
	if (rc < 0)
		log_msg("error", "notify", "finding pending approvals failed: %s", store_last_error());
	for (int i = 0; i < l->n; i++) {
		struct found *f = &l->items[i];

		if (f->payload &&
		    !st->ops->notify_enqueue(st, f->org_id, "approval_requested", f->delegation_id,
					     f->created_at, f->payload, time_now_unix(), &created))
			atomic_fetch_add(&n->enqueued_approvals, (unsigned)created);
		else
			log_msg("error", "notify", "delegation %s: enqueueing failed: %s",
				f->delegation_id, store_last_error());
		free(f->payload);
	}
	free(l);
}

/* 3. Budget alerts. */
struct cand {
	char org_id[ID_MAX];
	int64_t spent, held;
};

struct cand_list {
	struct cand items[ALERT_BATCH];
	int n;
};

static int cand_one(void *ctx, const char *org_id, int64_t spent, int64_t held)
{
	struct cand_list *l = ctx;

	if (l->n >= ALERT_BATCH)
		return 1;
	snprintf(l->items[l->n].org_id, ID_MAX, "%s", org_id);
	l->items[l->n].spent = spent;
	l->items[l->n].held = held;
	l->n++;
	return 0;
}

static void alert_org(struct notifier *n, const struct cand *c, const char *period, int64_t now)
{
	struct app *app = n->app;
	const struct policy_stack *stack;
	const struct policy_org *org;
	struct stackref *ref;
	struct budget_alert a;
	char msg[256];
	struct buf b;
	int created = 0, rc;

	if (stackcache_get(&app->stacks, app->store, c->org_id, &stack, &ref, msg, sizeof(msg))) {
		log_msg("error", "notify", "org %s: cannot load its policy stack: %s", c->org_id,
			msg);
		return;
	}
	org = policy_stack_org(stack, NULL, NULL);
	memset(&a, 0, sizeof(a));
	if (org && org->has_alert_threshold && org->monthly_budget_micros > 0) {
		a.limit_micros = org->monthly_budget_micros;
		a.threshold = org->alert_threshold;
	}
	stackcache_put(&app->stacks, ref);
	if (!a.limit_micros ||
	    c->spent + c->held < llround(a.threshold * (double)a.limit_micros))
		return;
	a.org_id = c->org_id;
	a.period = period;
	a.spent_micros = c->spent;
	a.held_micros = c->held;
	buf_init(&b, MESSAGE_PAYLOAD_MAX);
	rc = message_budget_event(&a, now, &b);
	if (!rc)
		rc = app->store->ops->budget_alert_record(app->store, &a, b.data, now, &created);
	if (rc)
		log_msg("error", "notify", "org %s: recording the budget alert failed: %s",
			c->org_id, store_last_error());
	else if (created) {
		atomic_fetch_add(&n->alerts, 1);
		log_msg("info", "notify", "org %s: budget alert for %s (spent+held %lld of %lld "
			"micro-USD)", c->org_id, period, (long long)(c->spent + c->held),
			(long long)a.limit_micros);
	}
	buf_release(&b);
}

static void check_budgets(struct notifier *n)
{
	struct store *st = n->app->store;
	struct cand_list *l = calloc(1, sizeof(*l));
	int64_t now = time_now_unix(), since = n->alert_since;
	char period[PERIOD_LEN];

	if (!l)
		return;
	time_month(now, period);
	n->alert_since = now - ALERT_SLACK_S;
	if (st->ops->budget_alert_candidates(st, period, since, ALERT_BATCH, cand_one, l) < 0)
		log_msg("error", "notify", "finding budget alert candidates failed: %s",
			store_last_error());
	for (int i = 0; i < l->n; i++)
		alert_org(n, &l->items[i], period, now);
	free(l);
}

/* 4. Claim what is due and send it. */
struct claimed {
	struct send_job *jobs;
	const unsigned char *key;
};

static int claim_one(void *ctx, const struct notify_delivery *d)
{
	struct claimed *c = ctx;
	struct send_job *j;

	if (send_job_new(d, c->key, &j)) {
		log_msg("error", "notify", "delivery %s: cannot read its channel", d->delivery_id);
		return 0; /* its lease ends and it is tried again */
	}
	j->next = c->jobs;
	c->jobs = j;
	return 0;
}

static void send_due(struct notifier *n)
{
	struct store *st = n->app->store;
	struct claimed c = {NULL, n->app->master_key};
	int64_t now = time_now_unix();
	int room;

	pthread_mutex_lock(&n->mu);
	room = NOTIFY_IN_FLIGHT_MAX - n->in_flight;
	pthread_mutex_unlock(&n->mu);
	if (room <= 0)
		return;
	if (st->ops->notify_claim(st, now, now + NOTIFY_LEASE_S, room, claim_one, &c) < 0)
		log_msg("error", "notify", "claiming deliveries failed: %s", store_last_error());
	while (c.jobs) {
		struct send_job *j = c.jobs;

		c.jobs = j->next;
		send_start(n, j);
	}
}

static void *run(void *arg)
{
	struct notifier *n = arg;
	struct timespec ts;

	pthread_mutex_lock(&n->mu);
	while (!n->stopping) {
		if (!n->poked && !n->done) {
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += NOTIFY_TICK_MS / 1000;
			pthread_cond_timedwait(&n->cv, &n->mu, &ts);
		}
		if (n->stopping)
			break;
		n->poked = 0;
		pthread_mutex_unlock(&n->mu);
		record_done(n);
		discover(n);
		check_budgets(n);
		send_due(n);
		record_done(n); /* emails finish at once */
		pthread_mutex_lock(&n->mu);
	}
	pthread_mutex_unlock(&n->mu);
	return NULL;
}

int notifier_new(struct app *app, struct notifier **out)
{
	struct notifier *n = calloc(1, sizeof(*n));
	int rc;

	*out = NULL;
	if (!n)
		return E(INTERNAL);
	n->app = app;
	pthread_mutex_init(&n->mu, NULL);
	pthread_cond_init(&n->cv, NULL);
	rc = outbound_new(&n->out);
	if (!rc && pthread_create(&n->thread, NULL, run, n))
		rc = E(INTERNAL);
	if (rc) {
		outbound_free(n->out);
		pthread_mutex_destroy(&n->mu);
		pthread_cond_destroy(&n->cv);
		free(n);
		return rc;
	}
	*out = n;
	return 0;
}

void notifier_poke(struct notifier *n)
{
	if (!n)
		return;
	pthread_mutex_lock(&n->mu);
	n->poked = 1;
	pthread_cond_signal(&n->cv);
	pthread_mutex_unlock(&n->mu);
}

void notifier_free(struct notifier *n)
{
	struct store *st;
	struct send_job *j;
	int64_t now;

	if (!n)
		return;
	pthread_mutex_lock(&n->mu);
	n->stopping = 1;
	pthread_cond_signal(&n->cv);
	pthread_mutex_unlock(&n->mu);
	pthread_join(n->thread, NULL);
	outbound_free(n->out); /* in-flight sends complete as cancelled */
	st = n->app->store;
	now = time_now_unix();
	while ((j = n->done)) {
		n->done = j->next;
		if (j->ok)
			st->ops->notify_finish(st, j->delivery_id, "sent", now, "", now);
		else /* due again at once: the next process to run sends it */
			st->ops->notify_finish(st, j->delivery_id, "pending", now, j->error, now);
		send_job_free(j);
	}
	pthread_mutex_destroy(&n->mu);
	pthread_cond_destroy(&n->cv);
	free(n);
}

int notifier_metrics(struct notifier *n, struct buf *out)
{
	return buf_addf(out,
			"# HELP nexra_notifications_enqueued_total Approval notifications enqueued "
			"(one per channel), by this process.\n"
			"# TYPE nexra_notifications_enqueued_total counter\n"
			"nexra_notifications_enqueued_total %llu\n"
			"# HELP nexra_budget_alerts_total Monthly budget alerts recorded by this "
			"process.\n"
			"# TYPE nexra_budget_alerts_total counter\n"
			"nexra_budget_alerts_total %llu\n"
			"# HELP nexra_notification_sends_total Notification send attempts by "
			"outcome (this process).\n"
			"# TYPE nexra_notification_sends_total counter\n"
			"nexra_notification_sends_total{result=\"sent\"} %llu\n"
			"nexra_notification_sends_total{result=\"retry\"} %llu\n"
			"nexra_notification_sends_total{result=\"dead\"} %llu\n",
			(unsigned long long)atomic_load(&n->enqueued_approvals),
			(unsigned long long)atomic_load(&n->alerts),
			(unsigned long long)atomic_load(&n->sent),
			(unsigned long long)atomic_load(&n->retried),
			(unsigned long long)atomic_load(&n->dead));
}
