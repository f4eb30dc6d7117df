/*
 * The delegation service; see delegator.h. Besides owning the ledger and
 * the outbound client, it runs the sweeper: a thread that wakes every 100 ms
 * (TICK_MS) to resend completion callbacks whose backoff has passed, and every
 * SWEEP_EVERY_S to settle orphans. An orphan is a delegation still
 * `dispatched` DELEGATION_ORPHAN_GRACE_S after its expiry: the process that
 * sent its webhook stopped (or crashed) before the outcome was recorded.
 * It is settled timed_out, not billed, its hold released; the callee's
 * trust is left alone (nothing is known about how it did). With several
 * processes on one database any of them may sweep; the settlement's status
 * guard lets exactly one win.
 */
#include "delegation/delegator.h"

#include <errno.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"
#include "core/timefmt.h"
#include "delegation/delegator_int.h"
#include "delegation/flow.h"
#include "delegation/webhook.h"
#include "serve/app.h"
#include "core/banned.h"

#define SWEEP_EVERY_S 5
#define TICK_MS 100 /* how often due callbacks are looked for */
#define SWEEP_BATCH 200
#define CALLBACK_TIMEOUT_MS 10000
#define ORPHAN_ALPHA 1e-9 /* trust weight of an orphan: effectively none */

struct callback {
	struct callback *next;
	char *url, *body, *secret;
	size_t body_len, secret_len;
	char delegation_id[ID_MAX];
	int attempt;
	int64_t due; /* unix milliseconds of the next attempt */
};

static void callback_free(struct callback *cb)
{
	if (!cb)
		return;
	if (cb->secret)
		sodium_memzero(cb->secret, cb->secret_len);
	free(cb->secret);
	free(cb->url);
	free(cb->body);
	free(cb);
}

struct callback *callback_new(const char *url, const char *delegation_id, const char *body,
			      size_t body_len, const char *secret, size_t secret_len)
{
	struct callback *cb = calloc(1, sizeof(*cb));

	if (!cb)
		return NULL;
	cb->url = strdup(url);
	cb->body = malloc(body_len + 1);
	cb->secret = malloc(secret_len + 1);
	if (!cb->url || !cb->body || !cb->secret) {
		callback_free(cb);
		return NULL;
	}
	memcpy(cb->body, body, body_len);
	cb->body[body_len] = '\0';
	cb->body_len = body_len;
	memcpy(cb->secret, secret, secret_len);
	cb->secret[secret_len] = '\0';
	cb->secret_len = secret_len;
	snprintf(cb->delegation_id, sizeof(cb->delegation_id), "%s", delegation_id);
	return cb;
}

struct cb_ctx {
	struct delegator *dg;
	struct callback *cb;
};

/* Outbound thread: a callback attempt ended. */
static void on_callback_done(void *ctx, const struct outbound_response *res)
{
	struct cb_ctx *c = ctx;
	struct delegator *dg = c->dg;
	struct callback *cb = c->cb;
	int ok = res->result == OUTBOUND_OK && res->status >= 200 && res->status < 300;

	free(c);
	if (ok) {
		atomic_fetch_add(&dg->callbacks_sent, 1);
		callback_free(cb);
		return;
	}
	if (res->result == OUTBOUND_CANCELLED || cb->attempt >= CALLBACK_ATTEMPTS) {
		atomic_fetch_add(&dg->callbacks_failed, 1);
		log_msg("warn", "callback", "delegation %s: callback to its callback_url given up "
			"after %d attempts: %s", cb->delegation_id, cb->attempt,
			res->result == OUTBOUND_OK ? "non-2xx answer" : res->error);
		callback_free(cb);
		return;
	}
	/* backoff: 1, 2, 4, 8 ... seconds */
	cb->due = time_now_ms() + 1000LL * (1LL << (cb->attempt - 1));
	pthread_mutex_lock(&dg->mu);
	cb->next = dg->retry;
	dg->retry = cb;
	pthread_mutex_unlock(&dg->mu);
}

int delegator_submit(struct delegator *dg, const struct outbound_request *req)
{
	int rc;

	pthread_rwlock_rdlock(&dg->out_lock);
	rc = dg->out_closed ? E(UNAVAILABLE) : outbound_submit(dg->out, req);
	pthread_rwlock_unlock(&dg->out_lock);
	return rc;
}

void callback_send(struct delegator *dg, struct callback *cb)
{
	struct outbound_request req = {0};
	struct cb_ctx *c = malloc(sizeof(*c));
	struct webhook w;
	int rc = c ? 0 : E(INTERNAL);

	if (!rc)
		rc = webhook_for_callback(&w, cb->delegation_id, cb->body, cb->body_len, cb->secret,
					  cb->secret_len, time_now_unix());
	if (!rc) {
		c->dg = dg;
		c->cb = cb;
		cb->attempt++;
		req.url = cb->url;
		memcpy(req.headers, w.headers, sizeof(req.headers));
		req.body = w.body.data;
		req.body_len = w.body.len;
		req.timeout_ms = CALLBACK_TIMEOUT_MS;
		req.allow_private = dg->app->cfg->dev;
		req.done = on_callback_done;
		req.ctx = c;
		rc = delegator_submit(dg, &req);
		webhook_release(&w);
	}
	if (rc) {
		free(c);
		atomic_fetch_add(&dg->callbacks_failed, 1);
		log_msg("warn", "callback", "delegation %s: callback not sent: %s",
			cb->delegation_id, err_message(rc));
		callback_free(cb);
	}
}

/* Sweeper: resend the callbacks that are due (now in milliseconds). */
static void resend_due(struct delegator *dg, int64_t now)
{
	struct callback *due = NULL, **pp, *cb;

	pthread_mutex_lock(&dg->mu);
	for (pp = &dg->retry; (cb = *pp);) {
		if (cb->due <= now) {
			*pp = cb->next;
			cb->next = due;
			due = cb;
		} else {
			pp = &cb->next;
		}
	}
	pthread_mutex_unlock(&dg->mu);
	while (due) {
		cb = due;
		due = cb->next;
		callback_send(dg, cb);
	}
}

struct orphans {
	struct delegation d[SWEEP_BATCH];
	int n;
};

static int collect(void *ctx, const struct delegation *d)
{
	struct orphans *o = ctx;

	struct delegation *x;

	if (o->n >= SWEEP_BATCH)
		return 1;
	x = &o->d[o->n];
	/* the keys, the state, and the decision that goes into the audit entry */
	x->rec = d->rec;
	snprintf(x->status, sizeof(x->status), "%s", d->status);
	memcpy(x->decided, d->decided, sizeof(x->decided));
	memcpy(x->decided_by_key_id, d->decided_by_key_id, sizeof(x->decided_by_key_id));
	memcpy(x->decided_by_key_name, d->decided_by_key_name, sizeof(x->decided_by_key_name));
	memcpy(x->approver, d->approver, sizeof(x->approver));
	x->decided_at = d->decided_at;
	if (d->decision_reason && !(x->decision_reason = strdup(d->decision_reason)))
		return 1;
	o->n++;
	return 0;
}

/* Sweeper: the caller's callback for d, settled here, read back whole. */
static void callback_after_sweep(struct delegator *dg, const struct delegation *d)
{
	struct store *st = dg->app->store;
	struct delegation full;

	memset(&full, 0, sizeof(full));
	if (st->ops->delegation_get(st, d->rec.org_id, d->rec.delegation_id, &full))
		return;
	dlg_callback_for(dg->app, &full);
	delegation_release(&full);
}

/* Sweeper: settle delegations whose process went away, and pending
 * approvals whose deadline came. */
static void sweep_orphans(struct delegator *dg, int64_t now)
{
	struct store *st = dg->app->store;
	struct orphans *o = calloc(1, sizeof(*o));
	struct ledger_op op;
	int rc;

	if (!o) {
		free(o);
		return;
	}
	rc = st->ops->delegation_overdue(st, now - DELEGATION_ORPHAN_GRACE_S, now, SWEEP_BATCH,
					 collect, o);
	if (rc < 0)
		log_msg("error", "sweeper", "listing overdue delegations failed: %s",
			store_last_error());
	for (int i = 0; i < o->n; i++) {
		struct delegation *d = &o->d[i];
		int expiring = !strcmp(d->status, "pending_approval");

		if (expiring) {
			snprintf(d->status, sizeof(d->status), "expired");
			snprintf(d->error_code, sizeof(d->error_code), "APPROVAL_EXPIRED");
			d->error_message = strdup("no decision came before the approval deadline "
						  "(hitl_timeout_seconds); not billed");
		} else {
			snprintf(d->status, sizeof(d->status), "timed_out");
			snprintf(d->error_code, sizeof(d->error_code), "CALLEE_TIMEOUT");
			d->error_message = strdup("no outcome was recorded before the deadline (the "
						  "server handling it stopped); not billed");
		}
		d->reported_cost_micros = d->llm_tokens = d->latency_ms = -1;
		d->settled_at = now;
		memset(&op, 0, sizeof(op));
		op.kind = LEDGER_SETTLE;
		op.d = d;
		op.now = now;
		op.trust_signal = 0.5;
		op.trust_alpha = ORPHAN_ALPHA;
		rc = ledger_run(dg->ledger, &op);
		if (!rc && expiring) {
			atomic_fetch_add(&dg->expired, 1);
			log_msg("info", "sweeper", "delegation %s: expired awaiting approval",
				d->rec.delegation_id);
			callback_after_sweep(dg, d);
		} else if (!rc) {
			atomic_fetch_add(&dg->timed_out, 1);
			log_msg("warn", "sweeper", "delegation %s: settled as timed_out (orphaned)",
				d->rec.delegation_id);
		} else if (rc != E(CONFLICT)) {
			log_msg("error", "sweeper", "delegation %s: settling failed: %s",
				d->rec.delegation_id, store_last_error());
		}
		delegation_release(d);
	}
	free(o);
}

static void *sweeper(void *arg)
{
	struct delegator *dg = arg;
	int64_t last_sweep = 0, now;
	struct timespec ts;

	pthread_mutex_lock(&dg->mu);
	while (!dg->stopping) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += TICK_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&dg->cv, &dg->mu, &ts);
		if (dg->stopping)
			break;
		pthread_mutex_unlock(&dg->mu);
		resend_due(dg, time_now_ms());
		now = time_now_unix();
		if (now - last_sweep >= SWEEP_EVERY_S) {
			last_sweep = now;
			sweep_orphans(dg, now);
		}
		pthread_mutex_lock(&dg->mu);
	}
	pthread_mutex_unlock(&dg->mu);
	return NULL;
}

int delegator_new(struct app *app, struct delegator **out)
{
	struct delegator *dg = calloc(1, sizeof(*dg));
	int rc;

	*out = NULL;
	if (!dg)
		return E(INTERNAL);
	dg->app = app;
	pthread_mutex_init(&dg->mu, NULL);
	pthread_cond_init(&dg->cv, NULL);
	pthread_rwlock_init(&dg->out_lock, NULL);
	rc = ledger_new(app->store, &dg->ledger);
	if (!rc)
		rc = outbound_new(&dg->out);
	if (!rc && pthread_create(&dg->sweeper, NULL, sweeper, dg))
		rc = E(INTERNAL);
	if (rc) {
		outbound_free(dg->out);
		ledger_free(dg->ledger);
		pthread_mutex_destroy(&dg->mu);
		pthread_cond_destroy(&dg->cv);
		pthread_rwlock_destroy(&dg->out_lock);
		free(dg);
		return rc;
	}
	*out = dg;
	return 0;
}

void delegator_free(struct delegator *dg)
{
	struct callback *cb;

	if (!dg)
		return;
	pthread_mutex_lock(&dg->mu);
	dg->stopping = 1;
	pthread_cond_signal(&dg->cv);
	pthread_mutex_unlock(&dg->mu);
	pthread_join(dg->sweeper, NULL);
	/* no new submissions, then cancel what is in flight: those settle
	 * (failed, not billed) through the ledger, which drains last */
	pthread_rwlock_wrlock(&dg->out_lock);
	dg->out_closed = 1;
	pthread_rwlock_unlock(&dg->out_lock);
	outbound_free(dg->out);
	dg->out = NULL;
	ledger_free(dg->ledger);
	dg->ledger = NULL;
	while ((cb = dg->retry)) {
		dg->retry = cb->next;
		log_msg("warn", "callback", "delegation %s: callback dropped at shutdown",
			cb->delegation_id);
		callback_free(cb);
	}
	pthread_mutex_destroy(&dg->mu);
	pthread_cond_destroy(&dg->cv);
	pthread_rwlock_destroy(&dg->out_lock);
	free(dg);
}

void delegator_stats(struct delegator *dg, struct delegator_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->opened = atomic_load(&dg->opened);
	out->completed = atomic_load(&dg->completed);
	out->failed = atomic_load(&dg->failed);
	out->timed_out = atomic_load(&dg->timed_out);
	out->blocked = atomic_load(&dg->blocked);
	out->pending = atomic_load(&dg->pending);
	out->expired = atomic_load(&dg->expired);
	out->callbacks_sent = atomic_load(&dg->callbacks_sent);
	out->callbacks_failed = atomic_load(&dg->callbacks_failed);
	ledger_stats(dg->ledger, &out->ledger_batches, &out->ledger_jobs);
	pthread_rwlock_rdlock(&dg->out_lock);
	out->in_flight = dg->out_closed ? 0 : outbound_pending(dg->out);
	pthread_rwlock_unlock(&dg->out_lock);
}

int delegator_metrics(struct delegator *dg, struct buf *out)
{
	struct delegator_stats st;

	delegator_stats(dg, &st);
	return buf_addf(out,
			"# HELP nexra_delegations_total Delegations by how they ended (this process).\n"
			"# TYPE nexra_delegations_total counter\n"
			"nexra_delegations_total{status=\"completed\"} %llu\n"
			"nexra_delegations_total{status=\"failed\"} %llu\n"
			"nexra_delegations_total{status=\"timed_out\"} %llu\n"
			"nexra_delegations_total{status=\"blocked\"} %llu\n"
			"nexra_delegations_total{status=\"pending_approval\"} %llu\n"
			"nexra_delegations_total{status=\"expired\"} %llu\n"
			"# HELP nexra_delegations_in_flight Webhooks queued or waiting on a callee.\n"
			"# TYPE nexra_delegations_in_flight gauge\n"
			"nexra_delegations_in_flight %d\n"
			"# HELP nexra_callbacks_total Completion callbacks by result.\n"
			"# TYPE nexra_callbacks_total counter\n"
			"nexra_callbacks_total{result=\"sent\"} %llu\n"
			"nexra_callbacks_total{result=\"failed\"} %llu\n"
			"# HELP nexra_ledger_batches_total Group commits of the ledger writer.\n"
			"# TYPE nexra_ledger_batches_total counter\n"
			"nexra_ledger_batches_total %llu\n"
			"# HELP nexra_ledger_jobs_total Ledger operations committed in those batches.\n"
			"# TYPE nexra_ledger_jobs_total counter\n"
			"nexra_ledger_jobs_total %llu\n",
			(unsigned long long)st.completed, (unsigned long long)st.failed,
			(unsigned long long)st.timed_out, (unsigned long long)st.blocked,
			(unsigned long long)st.pending, (unsigned long long)st.expired, st.in_flight,
			(unsigned long long)st.callbacks_sent, (unsigned long long)st.callbacks_failed,
			(unsigned long long)st.ledger_batches, (unsigned long long)st.ledger_jobs);
}
