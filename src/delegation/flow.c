/*
 * The delegation state machine; see flow.h. Each function below is one
 * stage and runs on the thread named in its comment.
 */
#include "delegation/flow.h"

#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/jsonw.h"
#include "core/log.h"
#include "core/timefmt.h"
#include "crypto/seal.h"
#include "delegation/delegator_int.h"
#include "delegation/outcome.h"
#include "delegation/render.h"
#include "delegation/webhook.h"
#include "approvals/notifier.h"
#include "http/req.h"
#include "serve/app.h"
#include "trust/trust.h"
#include "core/banned.h"



struct dlg *dlg_new(struct app *app)
{
	struct dlg *g = calloc(1, sizeof(*g));

	if (!g)
		return NULL;
	g->app = app;
	g->d.trust_before = g->d.trust_after = NAN;
	g->d.reported_cost_micros = -1;
	g->d.llm_tokens = -1;
	g->d.latency_ms = -1;
	g->d.budget_limit_micros = -1;
	g->d.budget_remaining_micros = -1;
	return g;
}

static void wipe_free(char *p, size_t n)
{
	if (p)
		sodium_memzero(p, n);
	free(p);
}

void dlg_free(struct dlg *g)
{
	if (!g)
		return;
	delegation_release(&g->d);
	free(g->webhook_url);
	wipe_free(g->secret, g->secret_len);
	wipe_free(g->caller_secret, g->caller_secret_len);
	schemacache_put(&g->app->schemas, g->schemas);
	free(g);
}

static struct dlg *of_job(struct ledger_job *job)
{
	return (struct dlg *)((char *)job - offsetof(struct dlg, job));
}

static void count(struct delegator *dg, const char *status)
{
	if (!strcmp(status, "completed"))
		atomic_fetch_add(&dg->completed, 1);
	else if (!strcmp(status, "failed"))
		atomic_fetch_add(&dg->failed, 1);
	else if (!strcmp(status, "timed_out"))
		atomic_fetch_add(&dg->timed_out, 1);
	else if (!strcmp(status, "blocked"))
		atomic_fetch_add(&dg->blocked, 1);
	else if (!strcmp(status, "pending_approval"))
		atomic_fetch_add(&dg->pending, 1);
}

/* Any thread: answer the parked request (if still parked) and let go. */
static void answer(struct dlg *g)
{
	struct req *r = g->r;

	if (!r)
		return;
	g->r = NULL;
	if (g->decision)
		delegation_ok(r, &g->d);
	else
		delegation_answer(r, &g->d);
	req_resume(r);
}

static void answer_error(struct dlg *g, int rc, const char *msg)
{
	struct req *r = g->r;

	if (!r)
		return;
	g->r = NULL;
	req_fail(r, rc, "%s", msg);
	req_resume(r);
}

/* Any thread: the completion callback of d, signed with secret. */
static void callback_of(struct app *app, const struct delegation *d, const char *secret,
			size_t secret_len)
{
	struct buf b;
	struct jsonw jw;
	struct callback *cb;

	if (!d->callback_url || !secret)
		return;
	buf_init(&b, 8 * 1024 * 1024);
	jw_init(&jw, &b);
	delegation_write(&jw, d);
	cb = jw.rc ? NULL
		   : callback_new(d->callback_url, d->rec.delegation_id, b.data, b.len, secret,
				  secret_len);
	buf_release(&b);
	if (!cb) {
		log_msg("error", "callback", "delegation %s: cannot build the callback",
			d->rec.delegation_id);
		return;
	}
	callback_send(app->delegator, cb);
}

/* Ledger thread: the completion callback of an asynchronous delegation. */
static void send_callback(struct dlg *g)
{
	callback_of(g->app, &g->d, g->caller_secret, g->caller_secret_len);
}

static int unseal_agent_secret(struct app *app, const struct agent *a, char **out, size_t *len)
{
	char ad[ID_MAX + AGENT_ID_MAX + 16];

	snprintf(ad, sizeof(ad), "agent:%s/%s", a->org_id, a->agent_id);
	return unseal(app->master_key, a->secret_sealed, a->secret_sealed_len, ad, out, len);
}

int dlg_set_callee(struct dlg *g, const struct agent *callee)
{
	free(g->webhook_url);
	g->webhook_url = strdup(callee->webhook_url);
	snprintf(g->callee_status, sizeof(g->callee_status), "%s", callee->status);
	g->price_micros = callee->per_call_micros;
	g->sla_p99_ms = callee->p99_latency_ms;
	return g->webhook_url ? 0 : E(INTERNAL);
}

int dlg_arm(struct dlg *g, const struct agent *callee, const char **what)
{
	struct store *st = g->app->store;
	struct agent caller;
	int rc = 0;

	*what = "the callee's webhook secret cannot be opened";
	if (callee)
		rc = unseal_agent_secret(g->app, callee, &g->secret, &g->secret_len);
	if (rc || !g->d.callback_url)
		return rc;
	*what = "the caller's webhook secret cannot be read";
	memset(&caller, 0, sizeof(caller));
	rc = st->ops->agent_get(st, g->d.rec.org_id, g->d.rec.caller_agent_id, &caller);
	if (!rc)
		rc = unseal_agent_secret(g->app, &caller, &g->caller_secret,
					 &g->caller_secret_len);
	agent_release(&caller);
	return rc;
}

void dlg_callback_for(struct app *app, const struct delegation *d)
{
	struct store *st = app->store;
	struct agent caller;
	char *secret = NULL;
	size_t len = 0;
	int rc;

	if (!d->callback_url)
		return;
	memset(&caller, 0, sizeof(caller));
	rc = st->ops->agent_get(st, d->rec.org_id, d->rec.caller_agent_id, &caller);
	if (!rc)
		rc = unseal_agent_secret(app, &caller, &secret, &len);
	agent_release(&caller);
	if (rc)
		log_msg("warn", "callback", "delegation %s: no callback: the caller's secret "
			"cannot be read", d->rec.delegation_id);
	else
		callback_of(app, d, secret, len);
	wipe_free(secret, len);
}

/* Ledger thread: the SETTLE committed (or lost to another settler). */
static void on_settled(struct ledger_job *job)
{
	struct dlg *g = of_job(job);
	struct store *st = g->app->store;
	int rc = job->op.rc;

	if (rc == E(CONFLICT) || rc == E(NOT_FOUND)) {
		/* settled elsewhere first (the sweeper): show what was stored */
		delegation_release(&g->d);
		rc = st->ops->delegation_get(st, g->d.rec.org_id, g->d.rec.delegation_id, &g->d);
	}
	if (rc) {
		log_msg("error", "settle", "delegation %s: settlement failed: %s",
			g->d.rec.delegation_id, store_last_error());
		answer_error(g, E(INTERNAL), "recording the outcome failed");
		dlg_free(g);
		return;
	}
	count(g->app->delegator, g->d.status);
	if (g->r)
		answer(g);
	else
		send_callback(g);
	dlg_free(g);
}

/* Any thread: turn the outcome into the SETTLE job. */
static void settle(struct dlg *g, struct outcome *o, uint64_t elapsed_us)
{
	struct trust_outcome to = {
		.completed = o->err == 0,
		.latency_ms = (int64_t)(elapsed_us / 1000),
		.sla_p99_ms = g->sla_p99_ms > 0 ? g->sla_p99_ms : 1,
		.reported_cost_micros = o->reported_cost_micros,
		.price_micros = g->price_micros,
		.overrun = o->overrun,
	};
	struct ledger_op *op = &g->job.op;
	struct delegation *d = &g->d;
	int64_t now = time_now_unix();

	snprintf(d->status, sizeof(d->status), "%s", o->status);
	snprintf(d->error_code, sizeof(d->error_code), "%s", o->err ? err_code(o->err) : "");
	free(d->error_message);
	d->error_message = o->err ? strdup(o->message) : NULL;
	free(d->result);
	d->result = o->result;
	o->result = NULL;
	d->cost_micros = o->cost_micros;
	d->reported_cost_micros = o->reported_cost_micros;
	d->overrun = o->overrun;
	d->llm_tokens = o->llm_tokens;
	d->latency_ms = to.latency_ms;
	d->settled_at = now;

	memset(op, 0, sizeof(*op));
	op->kind = LEDGER_SETTLE;
	op->d = d;
	op->now = now;
	op->trust_signal = trust_signal(&to);
	op->trust_alpha = trust_alpha(g->callee_status);
	op->promote_after = TRUST_PROMOTE_AFTER;
	op->cb_max_failures = g->cb_max_failures;
	op->cb_window_seconds = g->cb_window_seconds;
	g->job.done = on_settled;
	if (ledger_submit(g->app->delegator->ledger, &g->job)) {
		answer_error(g, E(UNAVAILABLE), "the server is stopping");
		dlg_free(g);
	}
}

/* Outbound thread: the callee answered, failed, or ran out of time. */
static void on_callee_done(void *ctx, const struct outbound_response *res)
{
	struct dlg *g = ctx;
	struct outcome o;

	outcome_from_response(res, g->schemas ? schemaref_output(g->schemas) : NULL,
			      g->d.rec.budget_cap_micros, &o);
	settle(g, &o, res->elapsed_us);
	outcome_release(&o);
}

/* Ledger thread: send the webhook. */
static void dispatch(struct dlg *g)
{
	struct delegator *dg = g->app->delegator;
	struct outbound_request req = {0};
	struct webhook w;
	struct outcome o;
	int rc;

	rc = webhook_for_delegation(&w, &g->d, g->secret, g->secret_len, g->d.dispatched_at);
	if (!rc) {
		req.url = g->webhook_url;
		memcpy(req.headers, w.headers, sizeof(req.headers));
		req.body = w.body.data;
		req.body_len = w.body.len;
		req.timeout_ms = g->d.timeout_ms;
		req.allow_private = g->app->cfg->dev;
		req.done = on_callee_done;
		req.ctx = g;
		rc = delegator_submit(dg, &req);
	}
	webhook_release(&w);
	if (rc) {
		memset(&o, 0, sizeof(o));
		o.status = "failed";
		o.err = E(CALLEE_FAILED);
		o.reported_cost_micros = o.llm_tokens = -1;
		snprintf(o.message, sizeof(o.message), "the webhook could not be sent: %s",
			 err_message(rc));
		settle(g, &o, 0);
	}
}

/* Ledger thread: an Idempotency-Key seen before: the first request's
 * answer, from what is stored now. */
static void replay(struct dlg *g, const char *first_id)
{
	struct store *st = g->app->store;
	struct delegation d;
	int rc;

	memset(&d, 0, sizeof(d));
	rc = st->ops->delegation_get(st, g->d.rec.org_id, first_id, &d);
	if (rc)
		answer_error(g, E(INTERNAL), "reading the first delegation of this key failed");
	else if (!strcmp(d.status, "dispatched") && !d.callback_url)
		answer_error(g, E(CONFLICT),
			     "a request with this Idempotency-Key is still in flight");
	else {
		delegation_release(&g->d);
		g->d = d;
		memset(&d, 0, sizeof(d));
		answer(g);
	}
	delegation_release(&d);
}

/* Ledger thread: the OPEN committed. */
static void on_opened(struct ledger_job *job)
{
	struct dlg *g = of_job(job);
	struct delegator *dg = g->app->delegator;
	struct ledger_op *op = &job->op;

	if (op->rc) {
		log_msg("error", "delegate", "delegation %s: opening failed: %s",
			g->d.rec.delegation_id, store_last_error());
		answer_error(g, E(INTERNAL), "recording the delegation failed");
		dlg_free(g);
		return;
	}
	if (op->idem == IDEM_MISMATCH) {
		answer_error(g, E(IDEMPOTENCY_MISMATCH),
			     "this Idempotency-Key was used with a different request body");
		dlg_free(g);
		return;
	}
	if (op->idem == IDEM_EXISTING) {
		replay(g, op->idem_delegation_id);
		dlg_free(g);
		return;
	}
	atomic_fetch_add(&dg->opened, 1);
	if (strcmp(g->d.status, "dispatched")) { /* blocked or pending_approval */
		count(dg, g->d.status);
		if (!strcmp(g->d.status, "pending_approval"))
			notifier_poke(g->app->notifier); /* tell the approvers now */
		answer(g);
		dlg_free(g);
		return;
	}
	if (g->d.callback_url)
		answer(g); /* 202 dispatched now; the callback carries the end */
	dispatch(g);
}

/* Ledger thread: a person's decision committed, or was refused. */
static void on_decided(struct ledger_job *job)
{
	struct dlg *g = of_job(job);
	struct delegator *dg = g->app->delegator;
	int rc = job->op.rc;

	if (rc == E(CONFLICT) || rc == E(NOT_FOUND)) {
		answer_error(g, rc, rc == E(NOT_FOUND)
					    ? "delegation not found"
					    : "the delegation is no longer awaiting a decision (decided "
					      "already, or its approval window has passed)");
		dlg_free(g);
		return;
	}
	if (rc) {
		log_msg("error", "approve", "delegation %s: recording the decision failed: %s",
			g->d.rec.delegation_id, store_last_error());
		answer_error(g, E(INTERNAL), "recording the decision failed");
		dlg_free(g);
		return;
	}
	if (strcmp(g->d.status, "dispatched")) { /* rejected: settled blocked */
		count(dg, g->d.status);
		answer(g);
		send_callback(g);
		dlg_free(g);
		return;
	}
	if (g->d.callback_url)
		answer(g); /* 202 dispatched now; the callback carries the end */
	dispatch(g);
}

void dlg_decide(struct dlg *g)
{
	struct ledger_op *op = &g->job.op;

	memset(op, 0, sizeof(*op));
	op->kind = LEDGER_DECIDE;
	op->d = &g->d;
	op->now = g->d.decided_at;
	g->decision = 1;
	g->job.done = on_decided;
	if (ledger_submit(g->app->delegator->ledger, &g->job)) {
		answer_error(g, E(UNAVAILABLE), "the server is stopping");
		dlg_free(g);
	}
}

void dlg_open(struct dlg *g)
{
	struct ledger_op *op = &g->job.op;

	memset(op, 0, sizeof(*op));
	op->kind = LEDGER_OPEN;
	op->d = &g->d;
	op->now = g->d.rec.created_at;
	if (g->idem_key[0]) {
		op->idem_key = g->idem_key;
		memcpy(op->idem_hash, g->idem_hash, sizeof(op->idem_hash));
	}
	g->job.done = on_opened;
	if (ledger_submit(g->app->delegator->ledger, &g->job)) {
		answer_error(g, E(UNAVAILABLE), "the server is stopping");
		dlg_free(g);
	}
}
