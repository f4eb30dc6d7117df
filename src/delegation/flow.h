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
};

struct dlg *dlg_new(struct app *app);
void dlg_free(struct dlg *g);

/* Submit g's OPEN (g->r already suspended). On failure g->r is answered
 * and resumed and g freed. */
void dlg_open(struct dlg *g);

#endif
