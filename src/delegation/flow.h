/*
 * One delegation in flight, from the request to its settlement, as a small
 * state machine driven by callbacks on three kinds of threads:
 *
 *   HTTP thread   delegate_api.c validates, decides, fills struct dlg,
 *                 parks the request (req_suspend) and calls dlg_open;
 *   ledger thread the OPEN commits (hold taken or refused, or a blocked
 *                 delegation settled at once): answer, or dispatch the
 *                 webhook (and answer 202 first when there is a callback);
 *   outbound thread the callee answered, failed or timed out: the outcome
 *                 becomes a SETTLE job;
 *   ledger thread the SETTLE commits: answer the parked request with the
 *                 final delegation, or send the completion callback.
 *
 * No thread ever waits for a callee or a commit. struct dlg is owned by
 * whichever stage runs; the last one frees it.
 */
#ifndef NEXRA_DELEGATION_FLOW_H
#define NEXRA_DELEGATION_FLOW_H

#include <stddef.h>
#include <stdint.h>

#include "delegation/ledger.h"
#include "registry/schemacache.h"
#include "store/store.h"

struct agent;
struct app;
struct req;

#define IDEM_KEY_MAX 255

struct dlg {
	struct app *app;
	struct req *r;          /* the parked request; NULL once answered */
	struct delegation d;    /* the row, as stored and settled */
	struct ledger_job job;
	char idem_key[IDEM_KEY_MAX + 1]; /* "" none */
	unsigned char idem_hash[32];
	/* the callee, for the webhook and for settlement */
	char *webhook_url;      /* owned */
	char *secret;           /* owned plaintext, wiped on free */
	size_t secret_len;
	char callee_status[16];
	int64_t price_micros, sla_p99_ms;
	struct schemaref *schemas; /* a reference into app->schemas; NULL: none */
	/* the caller's secret, for the completion callback */
	char *caller_secret;    /* owned, wiped on free */
	size_t caller_secret_len;
	/* the deciding rule's circuit breaker (0: none) */
	int64_t cb_max_failures, cb_window_seconds;
	int decision;           /* answering a person's decision: delegation_ok */
};

struct dlg *dlg_new(struct app *app);
void dlg_free(struct dlg *g);

/* Submit g's OPEN (g->r already suspended). On failure g->r is answered
 * and resumed and g freed. */
void dlg_open(struct dlg *g);

/* The callee's side of g (webhook URL, status, price, SLA) from callee.
 * 0 or E(INTERNAL). */
int dlg_set_callee(struct dlg *g, const struct agent *callee);

/* Open the secrets a dispatch needs: the callee's (when callee is not
 * NULL) and, when g->d has a callback_url, the caller's. 0 or an error:
 * *what says whose secret failed. */
int dlg_arm(struct dlg *g, const struct agent *callee, const char **what);

/* Submit a person's decision on the pending delegation g->d (as stored,
 * with decided, decided_by_*, approver, decision_reason, decided_at set,
 * and for an approval dispatched_at and expires_at; armed for the
 * dispatch). g->r, parked, is answered with delegation_ok: a rejection at
 * once, an approval with the outcome (or dispatched, when the delegation
 * has a callback_url, which then carries the outcome). CONFLICT or
 * NOT_FOUND when the ledger refused. */
void dlg_decide(struct dlg *g);

/* Send d's completion callback, when it has a callback_url, from a
 * thread with no request (the sweeper): reads the caller's secret. */
void dlg_callback_for(struct app *app, const struct delegation *d);

#endif
