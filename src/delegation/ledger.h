/*
 * The ledger writer: one thread that turns many small delegation writes
 * into few durable transactions (group commit, DESIGN.md "Durability").
 *
 * Any thread submits a job (one struct ledger_op and a completion
 * callback). The writer takes every job waiting, up to LEDGER_BATCH_MAX,
 * runs them through store->ledger_apply in one transaction (one fsync for
 * the lot), then calls each job's done() on the writer thread, in
 * submission order. While a batch commits, new jobs queue up and form the
 * next batch, so the batch size follows the load by itself: one job when
 * idle (no added latency), hundreds under pressure.
 *
 * done() must be quick and must not submit-and-wait (it may submit).
 */
#ifndef NEXRA_DELEGATION_LEDGER_H
#define NEXRA_DELEGATION_LEDGER_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

#define LEDGER_BATCH_MAX 256

struct ledger_job {
	struct ledger_op op;
	void (*done)(struct ledger_job *job); /* after commit; op.rc set */
	struct ledger_job *next;              /* queue link: the ledger's */
};

struct ledger;

/* Start the writer on st (borrowed; must outlive the ledger). */
int ledger_new(struct store *st, struct ledger **out);

/* Queue job (borrowed until done() runs). 0, or E(UNAVAILABLE) once
 * ledger_free has begun (done is then not called). */
int ledger_submit(struct ledger *l, struct ledger_job *job);

/* Run one op through the writer and wait for it (not from done()). */
int ledger_run(struct ledger *l, struct ledger_op *op);

/* Batches committed and jobs run since start (for /metrics and tests). */
void ledger_stats(struct ledger *l, uint64_t *batches, uint64_t *jobs);

/* Run every queued job, then stop the thread. NULL is fine. */
void ledger_free(struct ledger *l);

#endif
