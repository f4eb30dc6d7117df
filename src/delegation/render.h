/*
 * A delegation as the API shows it (docs/delegations.md "The delegation
 * object"), and the HTTP answer each state gets: one writer for
 * POST /v1/delegate, GET /v1/delegations[/{id}], idempotent replays and
 * completion callbacks, so they can never disagree.
 */
#ifndef NEXRA_DELEGATION_RENDER_H
#define NEXRA_DELEGATION_RENDER_H

#include "core/jsonw.h"
#include "http/req.h"
#include "store/store.h"

/* The delegation object. Errors are jw's (sticky). */
void delegation_write(struct jsonw *jw, const struct delegation *d);

/*
 * Answer r for d in its current state: completed 200; pending_approval
 * and dispatched 202; blocked 403 POLICY_BLOCKED (402 BUDGET_EXCEEDED
 * when the budget refused it); failed 502 CALLEE_FAILED; timed_out 504
 * CALLEE_TIMEOUT; expired 409; simulated (a test key's allowed one) 200. Errors carry the delegation object in
 * details, with policy_ref and failed_constraints at its top.
 */
int delegation_answer(struct req *r, const struct delegation *d);

/* Answer r with d as data whatever its state: 202 while it is open
 * (pending_approval, dispatched), else 200. For a person's decision, which
 * succeeded even when the callee then failed. */
int delegation_ok(struct req *r, const struct delegation *d);

#endif
