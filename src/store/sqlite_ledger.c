/*
 * The delegation ledger of the SQLite backend: store.h's ledger_apply
 * (LEDGER_OPEN, LEDGER_SETTLE), the delegation reads and the budget read.
 *
 * Group commit. ledger_apply takes the process's writer mutex, then the
 * database's one write lock with BEGIN IMMEDIATE (other processes on the
 * file wait for it in busy_timeout), runs every op of the batch inside its
 * own SAVEPOINT and commits once: one WAL fsync (synchronous=FULL) covers
 * the whole batch. An op that fails is rolled back to its savepoint, so it
 * leaves no trace and its d is given back as it came; the others commit.
 * Should the database end the transaction itself (an I/O error, a full
 * disk: sqlite3_get_autocommit turns true), or a savepoint statement fail,
 * the batch fails as a whole and every rc says so.
 *
 * Atomicity of the rules. Each rule is checked and applied by the same
 * statement or by statements under the same write lock, which no other
 * thread or process can hold meanwhile: a budget hold is one UPDATE whose
 * WHERE is the rule (limit < 0 or spent + held + cap <= limit), a settle's
 * "still open" guard is the WHERE of the UPDATE that closes it, the audit
 * event id is ++orgs.audit_seq. So there is no overspend, no double
 * settlement and no gap or repeat in an org's audit sequence, under any
 * number of threads and processes.
 *
 * Money is int64 micros throughout; only the trust score is a double (the
 * EWMA of store.h, computed here and written back).
 *
 * Where store.h leaves a choice, this file decides (the PostgreSQL twin
 * must decide the same):
 *  - time: op->now; when 0, d->rec.created_at (OPEN) or d->settled_at
 *    (SETTLE). A SETTLE's settled_at is d->settled_at when set, else now;
 *    a delegation blocked at OPEN is settled at now;
 *  - an idempotency key is live while created_at > now - 24 h;
 *  - the charge is min(cost_micros, hold) for completed, 0 for every other
 *    final status (failure, rejection, timeout release everything), and
 *    d->cost_micros is set to what was charged;
 *  - on return from SETTLE d->hold_micros is 0 (what is held now);
 *  - delegation_overdue gives the longest overdue first (expires_at, then
 *    id), which the partial index delegations_open serves;
 *  - an open delegation's budget_remaining_micros is the budget left after
 *    its hold; its trust_before/after are NaN (NULL), audit_event 0;
 *  - a promotion or a pause sets the callee's updated_at to now, a trust
 *    change alone does not; circuit_opened is set only when this settle
 *    paused the callee (not when it already was);
 *  - when the batch fails as a whole the ops' d outputs are meaningless
 *    (nothing was written; every rc is INTERNAL);
 *  - an org that does not exist is NOT_FOUND; an op kind or status outside
 *    the contract is INTERNAL (a caller bug), with the reason in
 *    store_last_error().
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "store/shmgen.h"
#include "store/sqlite_int.h"
#include "store/store.h"
#include "core/banned.h"

#define IDEM_TTL_SECONDS (24 * 3600)

enum lstmt {
	L_BEGIN, L_COMMIT, L_ROLLBACK, L_SAVEPOINT, L_ROLLBACK_TO, L_RELEASE,
	L_IDEM_GET, L_IDEM_PUT,
	L_BUDGET_ENSURE, L_BUDGET_HOLD, L_BUDGET_SETTLE, L_BUDGET_GET,
	L_DEL_INSERT, L_DEL_LOAD, L_DEL_FINISH, L_DEL_GET, L_DEL_LIST, L_DEL_OVERDUE,
	L_DEL_DECIDE,
	L_AUDIT_SEQ, L_AUDIT_INSERT,
	L_AGENT_TRUST, L_AGENT_SETTLE, L_AGENT_PAUSE,
	L_BILLING, L_FAILURE_INSERT, L_FAILURE_COUNT,
	L__COUNT
};

_Static_assert(L__COUNT <= SQLITE_LEDGER_STMTS, "raise SQLITE_LEDGER_STMTS");

/* Every column of a delegation, in read_delegation's order. */
#define DEL_ALL                                                                          \
	"delegation_id, org_id, caller_agent_id, callee_agent_id, capability, "          \
	"budget_cap_micros, callee_trust, callee_circuit_open, decision, policy_id, "    \
	"policy_version, created_at, status, key_id, task_type, task_input, "            \
	"context_scope, policy_result, policy_ref, timeout_ms, callback_url, period, "   \
	"hold_micros, budget_limit_micros, cost_micros, reported_cost_micros, overrun, " \
	"llm_tokens, latency_ms, result, error_code, error_message, audit_event, "       \
	"trust_before, trust_after, budget_remaining_micros, dispatched_at, expires_at, " \
	"settled_at"

/* DEL_ALL and the decision, in read_delegation's order. */
#define DEL_READ DEL_ALL ", decided, decided_by_key_id, decided_by_key_name, approver, " \
	"decided_at, decision_reason"

static const char *const lsql[L__COUNT] = {
	[L_BEGIN] = "BEGIN IMMEDIATE",
	[L_COMMIT] = "COMMIT",
	[L_ROLLBACK] = "ROLLBACK",
	[L_SAVEPOINT] = "SAVEPOINT ledger_op",
	[L_ROLLBACK_TO] = "ROLLBACK TO ledger_op",
	[L_RELEASE] = "RELEASE ledger_op",
	[L_IDEM_GET] = "SELECT body_hash, delegation_id, created_at FROM idempotency_keys "
		       "WHERE org_id = ?1 AND idem_key = ?2",
	[L_IDEM_PUT] = "INSERT INTO idempotency_keys (org_id, idem_key, body_hash, delegation_id, "
		       "created_at) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (org_id, idem_key) DO "
		       "UPDATE SET body_hash = excluded.body_hash, delegation_id = "
		       "excluded.delegation_id, created_at = excluded.created_at",
	[L_BUDGET_ENSURE] = "INSERT OR IGNORE INTO budget_periods (org_id, period) VALUES (?1, ?2)",
	/* spent + held + cap <= limit, written so it cannot overflow */
	[L_BUDGET_HOLD] = "UPDATE budget_periods SET held_micros = held_micros + ?3 "
			  "WHERE org_id = ?1 AND period = ?2 "
			  "AND (?4 < 0 OR ?3 <= ?4 - spent_micros - held_micros) "
			  "RETURNING spent_micros, held_micros",
	[L_BUDGET_SETTLE] = "UPDATE budget_periods SET held_micros = held_micros - ?3, "
			    "spent_micros = spent_micros + ?4 WHERE org_id = ?1 AND period = ?2 "
			    "RETURNING spent_micros, held_micros",
	[L_BUDGET_GET] = "SELECT spent_micros, held_micros FROM budget_periods "
			 "WHERE org_id = ?1 AND period = ?2",
	[L_DEL_INSERT] = "INSERT INTO delegations (" DEL_ALL ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, "
			 "?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, coalesce(?16, '{}'), "
			 "coalesce(?17, '[]'), coalesce(?18, '{}'), ?19, ?20, ?21, ?22, ?23, ?24, "
			 "?25, ?26, ?27, ?28, ?29, ?30, ?31, coalesce(?32, ''), ?33, ?34, ?35, ?36, "
			 "?37, ?38, ?39)",
	[L_DEL_LOAD] = "SELECT status, hold_micros, period, budget_limit_micros, caller_agent_id, "
		       "callee_agent_id, policy_ref FROM delegations "
		       "WHERE org_id = ?1 AND delegation_id = ?2",
	[L_DEL_FINISH] = "UPDATE delegations SET status = ?3, hold_micros = 0, cost_micros = ?4, "
			 "reported_cost_micros = ?5, overrun = ?6, llm_tokens = ?7, latency_ms = ?8, "
			 "result = ?9, error_code = ?10, error_message = coalesce(?11, ''), "
			 "settled_at = ?12, audit_event = ?13, budget_remaining_micros = ?14, "
			 "trust_before = ?15, trust_after = ?16 "
			 "WHERE org_id = ?1 AND delegation_id = ?2 "
			 "AND status IN ('dispatched', 'pending_approval')",
	[L_DEL_GET] = "SELECT " DEL_READ " FROM delegations WHERE org_id = ?1 AND delegation_id = ?2",
	[L_DEL_LIST] = "SELECT " DEL_READ " FROM delegations WHERE org_id = ?1 "
		       "AND (?2 IS NULL OR caller_agent_id = ?2 OR callee_agent_id = ?2) "
		       "AND (?3 IS NULL OR status = ?3) AND created_at >= ?4 AND created_at < ?5 "
		       "ORDER BY created_at DESC, delegation_id DESC LIMIT ?6 OFFSET ?7",
	/* the IN term, implied by the other, lets the partial index delegations_open serve */
	[L_DEL_OVERDUE] = "SELECT " DEL_READ " FROM delegations "
			  "WHERE status IN ('dispatched', 'pending_approval') "
			  "AND ((status = 'dispatched' AND expires_at < ?1) OR "
			  "(status = 'pending_approval' AND expires_at > 0 AND expires_at <= ?3)) "
			  "ORDER BY expires_at, delegation_id LIMIT ?2",
	/* only a pending approval inside its deadline can be decided */
	[L_DEL_DECIDE] = "UPDATE delegations SET decided = ?3, decided_by_key_id = ?4, "
			 "decided_by_key_name = ?5, approver = ?6, decided_at = ?7, "
			 "decision_reason = coalesce(?8, ''), "
			 "status = CASE WHEN ?3 = 'approved' THEN 'dispatched' ELSE status END, "
			 "dispatched_at = CASE WHEN ?3 = 'approved' THEN ?9 ELSE dispatched_at END, "
			 "expires_at = CASE WHEN ?3 = 'approved' THEN ?10 ELSE expires_at END "
			 "WHERE org_id = ?1 AND delegation_id = ?2 AND status = 'pending_approval' "
			 "AND (expires_at = 0 OR expires_at > ?7) "
			 "RETURNING hold_micros, budget_remaining_micros",
	[L_AUDIT_SEQ] = "UPDATE orgs SET audit_seq = audit_seq + 1 WHERE org_id = ?1 "
			"RETURNING audit_seq",
	[L_AUDIT_INSERT] = "INSERT INTO audit_log (org_id, event_id, delegation_id, ts, caller_id, "
			   "callee_id, policy_ref, decision, status, cost_micros, "
			   "budget_remaining_micros, trust_before, trust_after, approval) "
			   "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
	[L_AGENT_TRUST] = "SELECT trust_score FROM agents WHERE org_id = ?1 AND agent_id = ?2",
	/* SET expressions all see the row as it was */
	[L_AGENT_SETTLE] = "UPDATE agents SET trust_score = ?3, settled_count = settled_count + 1, "
			   "completed_count = completed_count + ?4, "
			   "status = CASE WHEN status = 'probationary' AND completed_count + ?4 >= ?5 "
			   "THEN 'active' ELSE status END, "
			   "updated_at = CASE WHEN status = 'probationary' AND completed_count + ?4 >= ?5 "
			   "THEN ?6 ELSE updated_at END "
			   "WHERE org_id = ?1 AND agent_id = ?2",
	[L_AGENT_PAUSE] = "UPDATE agents SET prior_status = status, status = 'paused', "
			  "updated_at = ?3 WHERE org_id = ?1 AND agent_id = ?2 AND status <> 'paused'",
	[L_BILLING] = "INSERT OR IGNORE INTO billing_events (billing_id, org_id, delegation_id, "
		      "caller_agent_id, callee_agent_id, amount_micros, period, next_attempt_at, "
		      "created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
	[L_FAILURE_INSERT] = "INSERT INTO agent_failures (org_id, agent_id, at, delegation_id) "
			     "VALUES (?1, ?2, ?3, ?4)",
	[L_FAILURE_COUNT] = "SELECT count(*) FROM agent_failures "
			    "WHERE org_id = ?1 AND agent_id = ?2 AND at > ?3",
};

/* The ledger statement id on c, prepared on first use; NULL on error. */
static sqlite3_stmt *lstmt(struct sconn *c, enum lstmt id)
{
	if (!c->ledger[id] && sqlite3_prepare_v3(c->db, lsql[id], -1, SQLITE_PREPARE_PERSISTENT,
						 &c->ledger[id], NULL)) {
		store_set_error("sqlite prepare: %s", sqlite3_errmsg(c->db));
		return NULL;
	}
	return c->ledger[id];
}

/* A failed step as an op's rc, read before the statement is reset: a
 * missing org (foreign key) is NOT_FOUND, a duplicate key CONFLICT where
 * dup_is_conflict, anything else INTERNAL (message kept). */
static int lfail(struct sconn *c, int dup_is_conflict)
{
	int x = sqlite3_extended_errcode(c->db);

	store_set_error("sqlite: %s", sqlite3_errmsg(c->db));
	if (x == SQLITE_CONSTRAINT_FOREIGNKEY)
		return E(NOT_FOUND);
	if (dup_is_conflict && (x == SQLITE_CONSTRAINT_PRIMARYKEY || x == SQLITE_CONSTRAINT_UNIQUE))
		return E(CONFLICT);
	return E(INTERNAL);
}

/* Run a statement for its effect (rows ignored) and reset it. */
static int lrun(struct sconn *c, sqlite3_stmt *st, int dup_is_conflict)
{
	int src = sqlite3_step(st);
	int rc = src == SQLITE_DONE || src == SQLITE_ROW ? 0 : lfail(c, dup_is_conflict);

	done(st);
	return rc;
}

static int ltxn(struct sconn *c, enum lstmt id)
{
	sqlite3_stmt *st = lstmt(c, id);

	return st ? lrun(c, st, 0) : E(INTERNAL);
}

/* Step a statement expected to give at most one row: 0 with *have set
 * (the caller reads the row, then calls done(st)), or an error (st reset). */
static int lrow(struct sconn *c, sqlite3_stmt *st, int *have)
{
	int src = sqlite3_step(st), rc = 0;

	*have = src == SQLITE_ROW;
	if (src != SQLITE_ROW && src != SQLITE_DONE) {
		rc = lfail(c, 0);
		done(st);
	}
	return rc;
}

static void bind_real(sqlite3_stmt *st, int i, double v)
{
	if (isnan(v))
		sqlite3_bind_null(st, i);
	else
		sqlite3_bind_double(st, i, v);
}

static double col_real(sqlite3_stmt *st, int i)
{
	return sqlite3_column_type(st, i) == SQLITE_NULL ? NAN : sqlite3_column_double(st, i);
}

static int is_open(const char *status)
{
	return !strcmp(status, "dispatched") || !strcmp(status, "pending_approval");
}

/* Final statuses after a callee ran (trust, counters and breaker apply). */
static int is_outcome(const char *status)
{
	return !strcmp(status, "completed") || !strcmp(status, "failed") ||
	       !strcmp(status, "timed_out");
}

static int is_final(const char *status)
{
	return is_outcome(status) || !strcmp(status, "blocked") || !strcmp(status, "expired");
}

/* ---- reading delegations -------------------------------------------------- */

/* Row of a DEL_ALL statement into *d. 0 or E(INTERNAL) (out of memory,
 * d released). */
static int read_delegation(sqlite3_stmt *st, struct delegation *d)
{
	struct delegation_record *r = &d->rec;

	memset(d, 0, sizeof(*d));
	col_copy(st, 0, r->delegation_id, sizeof(r->delegation_id));
	col_copy(st, 1, r->org_id, sizeof(r->org_id));
	col_copy(st, 2, r->caller_agent_id, sizeof(r->caller_agent_id));
	col_copy(st, 3, r->callee_agent_id, sizeof(r->callee_agent_id));
	col_copy(st, 4, r->capability, sizeof(r->capability));
	r->budget_cap_micros = sqlite3_column_int64(st, 5);
	r->has_trust = sqlite3_column_type(st, 6) != SQLITE_NULL;
	r->callee_trust = sqlite3_column_double(st, 6);
	r->callee_circuit_open = sqlite3_column_int(st, 7);
	col_copy(st, 8, r->decision, sizeof(r->decision));
	col_copy(st, 9, r->policy_id, sizeof(r->policy_id));
	r->policy_version = sqlite3_column_int(st, 10);
	r->created_at = sqlite3_column_int64(st, 11);
	col_copy(st, 12, d->status, sizeof(d->status));
	col_copy(st, 13, d->key_id, sizeof(d->key_id));
	col_copy(st, 14, d->task_type, sizeof(d->task_type));
	d->task_input = col_dup(st, 15);
	d->context_scope = col_dup(st, 16);
	d->policy_result = col_dup(st, 17);
	col_copy(st, 18, d->policy_ref, sizeof(d->policy_ref));
	d->timeout_ms = sqlite3_column_int64(st, 19);
	d->callback_url = col_dup(st, 20);
	col_copy(st, 21, d->period, sizeof(d->period));
	d->hold_micros = sqlite3_column_int64(st, 22);
	d->budget_limit_micros = sqlite3_column_int64(st, 23);
	d->cost_micros = sqlite3_column_int64(st, 24);
	d->reported_cost_micros = sqlite3_column_int64(st, 25);
	d->overrun = sqlite3_column_int(st, 26);
	d->llm_tokens = sqlite3_column_int64(st, 27);
	d->latency_ms = sqlite3_column_int64(st, 28);
	d->result = col_dup(st, 29);
	col_copy(st, 30, d->error_code, sizeof(d->error_code));
	if (sqlite3_column_bytes(st, 31) > 0) /* '' stored for none */
		d->error_message = col_dup(st, 31);
	d->audit_event = sqlite3_column_int64(st, 32);
	d->trust_before = col_real(st, 33);
	d->trust_after = col_real(st, 34);
	d->budget_remaining_micros = sqlite3_column_int64(st, 35);
	d->dispatched_at = sqlite3_column_int64(st, 36);
	d->expires_at = sqlite3_column_int64(st, 37);
	d->settled_at = sqlite3_column_int64(st, 38);
	col_copy(st, 39, d->decided, sizeof(d->decided));
	col_copy(st, 40, d->decided_by_key_id, sizeof(d->decided_by_key_id));
	col_copy(st, 41, d->decided_by_key_name, sizeof(d->decided_by_key_name));
	col_copy(st, 42, d->approver, sizeof(d->approver));
	d->decided_at = sqlite3_column_int64(st, 43);
	if (sqlite3_column_bytes(st, 44) > 0)
		d->decision_reason = col_dup(st, 44);
	if (!d->task_input || !d->context_scope || !d->policy_result ||
	    (!d->callback_url && sqlite3_column_type(st, 20) != SQLITE_NULL) ||
	    (!d->result && sqlite3_column_type(st, 29) != SQLITE_NULL) ||
	    (!d->error_message && sqlite3_column_bytes(st, 31) > 0) ||
	    (!d->decision_reason && sqlite3_column_bytes(st, 44) > 0)) {
		delegation_release(d);
		store_set_error("out of memory reading delegation");
		return E(INTERNAL);
	}
	return 0;
}

int sqlite_delegation_get(struct store *s, const char *org_id, const char *delegation_id,
			  struct delegation *out)
{
	WITH_CONN(s, c);
	sqlite3_stmt *st = lstmt(c, L_DEL_GET);
	int rc = E(INTERNAL), have;

	if (!st)
		goto out;
	bind_text(st, 1, org_id);
	bind_text(st, 2, delegation_id);
	rc = lrow(c, st, &have);
	if (rc)
		goto out;
	rc = have ? read_delegation(st, out) : E(NOT_FOUND);
	done(st);
out:
	END_CONN(s, c);
	return rc;
}

/* Rows of a DEL_ALL statement to cb, each released after its call. */
static int delegation_rows(struct sconn *c, sqlite3_stmt *st,
			   int (*cb)(void *, const struct delegation *), void *ctx)
{
	struct delegation d;
	int rc = 0, src;

	while (!rc && (src = sqlite3_step(st)) == SQLITE_ROW) {
		rc = read_delegation(st, &d);
		if (rc)
			break;
		rc = cb(ctx, &d);
		delegation_release(&d);
	}
	if (!rc && src != SQLITE_DONE)
		rc = fail(c, src);
	done(st);
	return rc;
}

int sqlite_delegation_list(struct store *s, const struct delegation_filter *f, int limit,
			   int offset, int (*cb)(void *, const struct delegation *), void *ctx)
{
	WITH_CONN(s, c);
	sqlite3_stmt *st = lstmt(c, L_DEL_LIST);
	int rc = E(INTERNAL);

	if (st) {
		bind_text(st, 1, f->org_id);
		bind_text(st, 2, f->agent_id);
		bind_text(st, 3, f->status);
		sqlite3_bind_int64(st, 4, f->from);
		sqlite3_bind_int64(st, 5, f->to);
		sqlite3_bind_int(st, 6, limit);
		sqlite3_bind_int(st, 7, offset);
		rc = delegation_rows(c, st, cb, ctx);
	}
	END_CONN(s, c);
	return rc;
}

int sqlite_delegation_overdue(struct store *s, int64_t before, int64_t now, int limit,
			      int (*cb)(void *, const struct delegation *), void *ctx)
{
	WITH_CONN(s, c);
	sqlite3_stmt *st = lstmt(c, L_DEL_OVERDUE);
	int rc = E(INTERNAL);

	if (st) {
		sqlite3_bind_int64(st, 1, before);
		sqlite3_bind_int(st, 2, limit);
		sqlite3_bind_int64(st, 3, now);
		rc = delegation_rows(c, st, cb, ctx);
	}
	END_CONN(s, c);
	return rc;
}

/* spent and held of (org, period) on c: (0, 0) without a row. */
static int budget_on(struct sconn *c, const char *org_id, const char *period, int64_t *spent,
		     int64_t *held)
{
	sqlite3_stmt *st = lstmt(c, L_BUDGET_GET);
	int rc, have;

	*spent = *held = 0;
	if (!st)
		return E(INTERNAL);
	bind_text(st, 1, org_id);
	bind_text(st, 2, period);
	rc = lrow(c, st, &have);
	if (rc)
		return rc;
	if (have) {
		*spent = sqlite3_column_int64(st, 0);
		*held = sqlite3_column_int64(st, 1);
	}
	done(st);
	return 0;
}

int sqlite_budget_get(struct store *s, const char *org_id, const char *period,
		      int64_t *spent_micros, int64_t *held_micros)
{
	WITH_CONN(s, c);
	int rc = budget_on(c, org_id, period, spent_micros, held_micros);

	END_CONN(s, c);
	return rc;
}

/* ---- settlement ----------------------------------------------------------- */

/* What settling needs to know of a delegation, from d (OPEN) or its row. */
struct settle_in {
	const char *org_id, *delegation_id, *caller, *callee, *policy_ref, *period;
	const char *status; /* final */
	const char *approval; /* delegation_approval_json; NULL none */
	int64_t limit, hold, cost, settled_at, now;
};

/* The callee's trust update (or read, for blocked/expired): before and after
 * are NaN without a callee row. *changed when the agent row was written. */
static int settle_trust(struct sconn *c, const struct ledger_op *op, const struct settle_in *in,
			double *before, double *after, int *have_callee, int *changed)
{
	sqlite3_stmt *st;
	int rc, completed = !strcmp(in->status, "completed");
	double next;

	*before = *after = NAN;
	*have_callee = 0;
	if (!in->callee[0])
		return 0;
	st = lstmt(c, L_AGENT_TRUST);
	if (!st)
		return E(INTERNAL);
	bind_text(st, 1, in->org_id);
	bind_text(st, 2, in->callee);
	rc = lrow(c, st, have_callee);
	if (rc)
		return rc;
	if (*have_callee)
		*before = *after = sqlite3_column_double(st, 0);
	done(st);
	if (!*have_callee || !is_outcome(in->status))
		return 0;
	next = *before + op->trust_alpha * (op->trust_signal - *before);
	if (!isfinite(next)) {
		store_set_error("ledger settle: trust update is not a number");
		return E(INTERNAL);
	}
	*after = next < 0 ? 0 : next > 1 ? 1 : next;
	st = lstmt(c, L_AGENT_SETTLE);
	if (!st)
		return E(INTERNAL);
	bind_text(st, 1, in->org_id);
	bind_text(st, 2, in->callee);
	sqlite3_bind_double(st, 3, *after);
	sqlite3_bind_int(st, 4, completed);
	sqlite3_bind_int64(st, 5, op->promote_after);
	sqlite3_bind_int64(st, 6, in->now);
	rc = lrun(c, st, 0);
	if (!rc)
		*changed = 1;
	return rc;
}

/* The circuit breaker after a failure or timeout of an existing callee. */
static int settle_breaker(struct sconn *c, struct ledger_op *op, const struct settle_in *in,
			  int *changed)
{
	sqlite3_stmt *st = lstmt(c, L_FAILURE_INSERT);
	int64_t failures = 0;
	int rc, have;

	if (!st)
		return E(INTERNAL);
	bind_text(st, 1, in->org_id);
	bind_text(st, 2, in->callee);
	sqlite3_bind_int64(st, 3, in->now);
	bind_text(st, 4, in->delegation_id);
	rc = lrun(c, st, 0);
	if (rc)
		return rc;
	st = lstmt(c, L_FAILURE_COUNT);
	if (!st)
		return E(INTERNAL);
	bind_text(st, 1, in->org_id);
	bind_text(st, 2, in->callee);
	sqlite3_bind_int64(st, 3, in->now - op->cb_window_seconds);
	rc = lrow(c, st, &have);
	if (rc)
		return rc;
	failures = have ? sqlite3_column_int64(st, 0) : 0;
	done(st);
	if (failures < op->cb_max_failures)
		return 0;
	st = lstmt(c, L_AGENT_PAUSE);
	if (!st)
		return E(INTERNAL);
	bind_text(st, 1, in->org_id);
	bind_text(st, 2, in->callee);
	sqlite3_bind_int64(st, 3, in->now);
	rc = lrun(c, st, 0);
	if (!rc && sqlite3_changes(c->db) > 0) {
		op->circuit_opened = 1;
		*changed = 1;
	}
	return rc;
}

/*
 * Everything a settlement does besides writing the delegation row itself:
 * budget, trust and counters, the audit entry, billing, the breaker. The
 * outputs go to op->d (audit_event, budget_remaining_micros, trust_before,
 * trust_after, settled_at, cost_micros, hold_micros).
 */
static int settle_effects(struct sconn *c, struct ledger_op *op, const struct settle_in *in,
			  int *changed)
{
	struct delegation *d = op->d;
	sqlite3_stmt *st;
	int64_t spent = 0, held = 0, event = 0;
	double before, after;
	int rc, have, have_callee;
	int allow = is_outcome(in->status);

	st = lstmt(c, L_BUDGET_SETTLE);
	if (!st)
		return E(INTERNAL);
	bind_text(st, 1, in->org_id);
	bind_text(st, 2, in->period);
	sqlite3_bind_int64(st, 3, in->hold);
	sqlite3_bind_int64(st, 4, in->cost);
	rc = lrow(c, st, &have);
	if (rc)
		return rc;
	if (have) {
		spent = sqlite3_column_int64(st, 0);
		held = sqlite3_column_int64(st, 1);
	}
	done(st);
	if (!have && (in->hold || in->cost)) {
		store_set_error("ledger settle: no budget row %s/%s for a hold", in->org_id,
				in->period);
		return E(INTERNAL);
	}

	rc = settle_trust(c, op, in, &before, &after, &have_callee, changed);
	if (rc)
		return rc;

	st = lstmt(c, L_AUDIT_SEQ);
	if (!st)
		return E(INTERNAL);
	bind_text(st, 1, in->org_id);
	rc = lrow(c, st, &have);
	if (rc)
		return rc;
	event = have ? sqlite3_column_int64(st, 0) : 0;
	done(st);
	if (!have) {
		store_set_error("ledger: no org %s", in->org_id);
		return E(NOT_FOUND);
	}

	d->audit_event = event;
	d->budget_remaining_micros = in->limit < 0 ? -1 : in->limit - spent - held;
	d->trust_before = before;
	d->trust_after = after;
	d->settled_at = in->settled_at;
	d->cost_micros = in->cost;
	d->hold_micros = 0;

	st = lstmt(c, L_AUDIT_INSERT);
	if (!st)
		return E(INTERNAL);
	bind_text(st, 1, in->org_id);
	sqlite3_bind_int64(st, 2, event);
	bind_text(st, 3, in->delegation_id);
	sqlite3_bind_int64(st, 4, in->settled_at);
	bind_text(st, 5, in->caller);
	bind_text(st, 6, in->callee);
	bind_text(st, 7, in->policy_ref);
	bind_text(st, 8, allow ? "ALLOW" : "BLOCK");
	bind_text(st, 9, in->status);
	sqlite3_bind_int64(st, 10, in->cost);
	sqlite3_bind_int64(st, 11, d->budget_remaining_micros);
	bind_real(st, 12, before);
	bind_real(st, 13, after);
	bind_text(st, 14, in->approval);
	rc = lrun(c, st, 0);
	if (rc)
		return rc;

	if (!strcmp(in->status, "completed")) {
		char billing_id[BILLING_ID_MAX];

		snprintf(billing_id, sizeof(billing_id), "bill_%s", in->delegation_id);
		st = lstmt(c, L_BILLING);
		if (!st)
			return E(INTERNAL);
		bind_text(st, 1, billing_id);
		bind_text(st, 2, in->org_id);
		bind_text(st, 3, in->delegation_id);
		bind_text(st, 4, in->caller);
		bind_text(st, 5, in->callee);
		sqlite3_bind_int64(st, 6, in->cost);
		bind_text(st, 7, in->period);
		sqlite3_bind_int64(st, 8, in->now);
		rc = lrun(c, st, 0);
		if (rc)
			return rc;
	}
	if (allow && strcmp(in->status, "completed") && op->cb_max_failures > 0 && have_callee)
		rc = settle_breaker(c, op, in, changed);
	return rc;
}

/* ---- the two ops ---------------------------------------------------------- */

static void bind_delegation(sqlite3_stmt *st, const struct delegation *d)
{
	const struct delegation_record *r = &d->rec;

	bind_text(st, 1, r->delegation_id);
	bind_text(st, 2, r->org_id);
	bind_text(st, 3, r->caller_agent_id);
	bind_text(st, 4, r->callee_agent_id[0] ? r->callee_agent_id : NULL);
	bind_text(st, 5, r->capability);
	sqlite3_bind_int64(st, 6, r->budget_cap_micros);
	if (r->has_trust)
		sqlite3_bind_double(st, 7, r->callee_trust);
	else
		sqlite3_bind_null(st, 7);
	sqlite3_bind_int(st, 8, r->callee_circuit_open ? 1 : 0);
	bind_text(st, 9, r->decision);
	bind_text(st, 10, r->policy_id[0] ? r->policy_id : NULL);
	if (r->policy_id[0])
		sqlite3_bind_int(st, 11, r->policy_version);
	else
		sqlite3_bind_null(st, 11);
	sqlite3_bind_int64(st, 12, r->created_at);
	bind_text(st, 13, d->status);
	bind_text(st, 14, d->key_id);
	bind_text(st, 15, d->task_type);
	bind_text(st, 16, d->task_input);
	bind_text(st, 17, d->context_scope);
	bind_text(st, 18, d->policy_result);
	bind_text(st, 19, d->policy_ref);
	sqlite3_bind_int64(st, 20, d->timeout_ms);
	bind_text(st, 21, d->callback_url);
	bind_text(st, 22, d->period);
	sqlite3_bind_int64(st, 23, d->hold_micros);
	sqlite3_bind_int64(st, 24, d->budget_limit_micros);
	sqlite3_bind_int64(st, 25, d->cost_micros);
	sqlite3_bind_int64(st, 26, d->reported_cost_micros);
	sqlite3_bind_int(st, 27, d->overrun ? 1 : 0);
	sqlite3_bind_int64(st, 28, d->llm_tokens);
	sqlite3_bind_int64(st, 29, d->latency_ms);
	bind_text(st, 30, d->result);
	bind_text(st, 31, d->error_code);
	bind_text(st, 32, d->error_message);
	sqlite3_bind_int64(st, 33, d->audit_event);
	bind_real(st, 34, d->trust_before);
	bind_real(st, 35, d->trust_after);
	sqlite3_bind_int64(st, 36, d->budget_remaining_micros);
	sqlite3_bind_int64(st, 37, d->dispatched_at);
	sqlite3_bind_int64(st, 38, d->expires_at);
	sqlite3_bind_int64(st, 39, d->settled_at);
}

/* The org's idempotency key: *claimed = 1 when it is now d's (new or an
 * expired one replaced), 0 when a live one answered (op->idem set). */
static int open_idem(struct sconn *c, struct ledger_op *op, int64_t now, int *claimed)
{
	const struct delegation *d = op->d;
	sqlite3_stmt *st = lstmt(c, L_IDEM_GET);
	int rc, have, live = 0, same = 0;

	*claimed = 0;
	if (!st)
		return E(INTERNAL);
	bind_text(st, 1, d->rec.org_id);
	bind_text(st, 2, op->idem_key);
	rc = lrow(c, st, &have);
	if (rc)
		return rc;
	if (have && sqlite3_column_int64(st, 2) > now - IDEM_TTL_SECONDS) {
		live = 1;
		same = sqlite3_column_bytes(st, 0) == (int)sizeof(op->idem_hash) &&
		       !memcmp(sqlite3_column_blob(st, 0), op->idem_hash, sizeof(op->idem_hash));
		col_copy(st, 1, op->idem_delegation_id, sizeof(op->idem_delegation_id));
	}
	done(st);
	if (live) {
		op->idem = same ? IDEM_EXISTING : IDEM_MISMATCH;
		return 0;
	}
	st = lstmt(c, L_IDEM_PUT);
	if (!st)
		return E(INTERNAL);
	bind_text(st, 1, d->rec.org_id);
	bind_text(st, 2, op->idem_key);
	sqlite3_bind_blob(st, 3, op->idem_hash, sizeof(op->idem_hash), SQLITE_STATIC);
	bind_text(st, 4, d->rec.delegation_id);
	sqlite3_bind_int64(st, 5, now);
	rc = lrun(c, st, 0);
	if (!rc)
		*claimed = 1;
	return rc;
}

/* The hold of an open delegation: d->hold_micros is the cap, or d turns
 * blocked with BUDGET_EXCEEDED when the cap does not fit. */
static int open_hold(struct sconn *c, struct ledger_op *op)
{
	struct delegation *d = op->d;
	sqlite3_stmt *st = lstmt(c, L_BUDGET_ENSURE);
	int64_t spent = 0, held = 0;
	int rc, have;

	if (!st)
		return E(INTERNAL);
	bind_text(st, 1, d->rec.org_id);
	bind_text(st, 2, d->period);
	rc = lrun(c, st, 0);
	if (rc)
		return rc;
	st = lstmt(c, L_BUDGET_HOLD);
	if (!st)
		return E(INTERNAL);
	bind_text(st, 1, d->rec.org_id);
	bind_text(st, 2, d->period);
	sqlite3_bind_int64(st, 3, d->rec.budget_cap_micros);
	sqlite3_bind_int64(st, 4, d->budget_limit_micros);
	rc = lrow(c, st, &have);
	if (rc)
		return rc;
	if (have) {
		spent = sqlite3_column_int64(st, 0);
		held = sqlite3_column_int64(st, 1);
	}
	done(st);
	if (!have) {
		snprintf(d->status, sizeof(d->status), "blocked");
		snprintf(d->error_code, sizeof(d->error_code), "BUDGET_EXCEEDED");
		op->budget_refused = 1;
		return 0;
	}
	d->hold_micros = d->rec.budget_cap_micros;
	if (d->budget_limit_micros >= 0)
		d->budget_remaining_micros = d->budget_limit_micros - spent - held;
	return 0;
}

static int ledger_open(struct sconn *c, struct ledger_op *op, int *changed)
{
	struct delegation *d = op->d;
	int64_t now = op->now ? op->now : d->rec.created_at;
	sqlite3_stmt *st;
	int rc, claimed;

	if (!is_open(d->status) && strcmp(d->status, "blocked")) {
		store_set_error("ledger open: status %s", d->status);
		return E(INTERNAL);
	}
	if (d->rec.budget_cap_micros < 0) {
		store_set_error("ledger open: negative cap");
		return E(INTERNAL);
	}
	if (op->idem_key) {
		rc = open_idem(c, op, now, &claimed);
		if (rc || !claimed)
			return rc;
	}
	d->hold_micros = 0;
	d->cost_micros = 0;
	d->audit_event = 0;
	d->trust_before = d->trust_after = NAN;
	d->budget_remaining_micros = -1;
	d->settled_at = 0;
	if (is_open(d->status)) {
		rc = open_hold(c, op);
		if (rc)
			return rc;
	}
	if (!strcmp(d->status, "blocked")) {
		struct settle_in in = {
			.org_id = d->rec.org_id,
			.delegation_id = d->rec.delegation_id,
			.caller = d->rec.caller_agent_id,
			.callee = d->rec.callee_agent_id,
			.policy_ref = d->policy_ref,
			.period = d->period,
			.status = "blocked",
			.limit = d->budget_limit_micros,
			.settled_at = now,
			.now = now,
		};

		rc = settle_effects(c, op, &in, changed);
		if (rc)
			return rc;
	}
	st = lstmt(c, L_DEL_INSERT);
	if (!st)
		return E(INTERNAL);
	bind_delegation(st, d);
	return lrun(c, st, 1);
}

/* d's row by L_DEL_LOAD: *have, and *st stepped on it (done() it after a 0). */
static int del_load(struct sconn *c, const struct delegation *d, sqlite3_stmt **st, int *have)
{
	*st = lstmt(c, L_DEL_LOAD);
	if (!*st)
		return E(INTERNAL);
	bind_text(*st, 1, d->rec.org_id);
	bind_text(*st, 2, d->rec.delegation_id);
	return lrow(c, *st, have);
}

static int ledger_settle(struct sconn *c, struct ledger_op *op, int *changed)
{
	struct delegation *d = op->d;
	char status[DELEGATION_STATUS_MAX], period[PERIOD_LEN];
	char caller[AGENT_ID_MAX + 1], callee[AGENT_ID_MAX + 1];
	char policy_ref[sizeof(d->policy_ref)];
	struct settle_in in = {
		.org_id = d->rec.org_id,
		.delegation_id = d->rec.delegation_id,
		.caller = caller,
		.callee = callee,
		.policy_ref = policy_ref,
		.period = period,
		.status = d->status,
	};
	sqlite3_stmt *st;
	char *approval;
	int rc, have, oom;

	if (!is_final(d->status)) {
		store_set_error("ledger settle: status %s is not final", d->status);
		return E(INTERNAL);
	}
	rc = del_load(c, d, &st, &have);
	if (rc)
		return rc;
	if (have) {
		col_copy(st, 0, status, sizeof(status));
		in.hold = sqlite3_column_int64(st, 1);
		col_copy(st, 2, period, sizeof(period));
		in.limit = sqlite3_column_int64(st, 3);
		col_copy(st, 4, caller, sizeof(caller));
		col_copy(st, 5, callee, sizeof(callee));
		col_copy(st, 6, policy_ref, sizeof(policy_ref));
	}
	done(st);
	if (!have)
		return E(NOT_FOUND);
	if (!is_open(status))
		return E(CONFLICT);
	in.now = op->now ? op->now : d->settled_at;
	in.settled_at = d->settled_at ? d->settled_at : in.now;
	in.cost = 0;
	if (!strcmp(d->status, "completed"))
		in.cost = d->cost_micros < 0 ? 0 : d->cost_micros > in.hold ? in.hold : d->cost_micros;
	in.approval = approval = delegation_approval_json(d, &oom);
	rc = oom ? E(INTERNAL) : settle_effects(c, op, &in, changed);
	free(approval);
	if (rc)
		return rc;
	st = lstmt(c, L_DEL_FINISH);
	if (!st)
		return E(INTERNAL);
	bind_text(st, 1, d->rec.org_id);
	bind_text(st, 2, d->rec.delegation_id);
	bind_text(st, 3, d->status);
	sqlite3_bind_int64(st, 4, d->cost_micros);
	sqlite3_bind_int64(st, 5, d->reported_cost_micros);
	sqlite3_bind_int(st, 6, d->overrun ? 1 : 0);
	sqlite3_bind_int64(st, 7, d->llm_tokens);
	sqlite3_bind_int64(st, 8, d->latency_ms);
	bind_text(st, 9, d->result);
	bind_text(st, 10, d->error_code);
	bind_text(st, 11, d->error_message);
	sqlite3_bind_int64(st, 12, d->settled_at);
	sqlite3_bind_int64(st, 13, d->audit_event);
	sqlite3_bind_int64(st, 14, d->budget_remaining_micros);
	bind_real(st, 15, d->trust_before);
	bind_real(st, 16, d->trust_after);
	rc = lrun(c, st, 0);
	if (!rc && sqlite3_changes(c->db) == 0)
		rc = E(CONFLICT); /* closed meanwhile: cannot happen under the write lock */
	return rc;
}

static int ledger_decide(struct sconn *c, struct ledger_op *op, int *changed)
{
	struct delegation *d = op->d;
	int approve = !strcmp(d->decided, "approved");
	sqlite3_stmt *st;
	int rc, have;

	if (!approve && strcmp(d->decided, "rejected")) {
		store_set_error("ledger decide: decision '%s'", d->decided);
		return E(INTERNAL);
	}
	st = lstmt(c, L_DEL_DECIDE);
	if (!st)
		return E(INTERNAL);
	bind_text(st, 1, d->rec.org_id);
	bind_text(st, 2, d->rec.delegation_id);
	bind_text(st, 3, d->decided);
	bind_text(st, 4, d->decided_by_key_id);
	bind_text(st, 5, d->decided_by_key_name);
	bind_text(st, 6, d->approver);
	sqlite3_bind_int64(st, 7, d->decided_at);
	bind_text(st, 8, d->decision_reason);
	sqlite3_bind_int64(st, 9, d->dispatched_at);
	sqlite3_bind_int64(st, 10, d->expires_at);
	rc = lrow(c, st, &have);
	if (rc)
		return rc;
	if (have) {
		d->hold_micros = sqlite3_column_int64(st, 0);
		d->budget_remaining_micros = sqlite3_column_int64(st, 1);
	}
	done(st);
	if (!have) { /* not open, past its deadline, or no such delegation */
		rc = del_load(c, d, &st, &have);
		if (rc)
			return rc;
		done(st);
		return have ? E(CONFLICT) : E(NOT_FOUND);
	}
	if (approve) {
		snprintf(d->status, sizeof(d->status), "dispatched");
		return 0;
	}
	snprintf(d->status, sizeof(d->status), "blocked");
	d->cost_micros = 0;
	d->settled_at = d->decided_at;
	return ledger_settle(c, op, changed);
}

/* One op in its savepoint. Returns non-zero only when the batch cannot go
 * on (the transaction is gone or a savepoint statement failed); the op's
 * own outcome is op->rc, and a failed op's d is restored. */
static int apply_one(struct sconn *c, struct ledger_op *op, int *changed)
{
	struct delegation saved = *op->d; /* shallow: owned pointers are never replaced */
	int rc, agents = 0;

	op->rc = 0;
	op->idem = IDEM_NEW;
	op->idem_delegation_id[0] = '\0';
	op->budget_refused = 0;
	op->circuit_opened = 0;
	rc = ltxn(c, L_SAVEPOINT);
	if (rc)
		return rc;
	if (op->kind == LEDGER_OPEN) {
		op->rc = ledger_open(c, op, &agents);
	} else if (op->kind == LEDGER_SETTLE) {
		op->rc = ledger_settle(c, op, &agents);
	} else if (op->kind == LEDGER_DECIDE) {
		op->rc = ledger_decide(c, op, &agents);
	} else {
		store_set_error("ledger: unknown op kind %d", (int)op->kind);
		op->rc = E(INTERNAL);
	}
	if (!op->rc) {
		*changed |= agents;
		return ltxn(c, L_RELEASE);
	}
	if (sqlite3_get_autocommit(c->db))
		return E(INTERNAL); /* the database rolled the whole transaction back */
	*op->d = saved;
	op->budget_refused = 0;
	op->circuit_opened = 0;
	rc = ltxn(c, L_ROLLBACK_TO);
	if (!rc)
		rc = ltxn(c, L_RELEASE);
	return rc;
}

int sqlite_ledger_apply(struct store *s, struct ledger_op *ops, size_t n)
{
	char msg[512];
	int rc, changed = 0;

	if (n == 0)
		return 0;
	WITH_WRITER(s, c);
	rc = ltxn(c, L_BEGIN);
	for (size_t i = 0; !rc && i < n; i++)
		rc = apply_one(c, &ops[i], &changed);
	if (!rc)
		rc = ltxn(c, L_COMMIT);
	if (rc) {
		snprintf(msg, sizeof(msg), "%s", store_last_error());
		if (!sqlite3_get_autocommit(c->db))
			ltxn(c, L_ROLLBACK);
		store_set_error("ledger batch: %s", msg);
		rc = E(INTERNAL);
		for (size_t i = 0; i < n; i++)
			ops[i].rc = rc;
	} else if (changed) {
		shmgen_bump(&ss(s)->cache.gen, GEN_AGENTS); /* after the commit: shmgen.h */
	}
	END_WRITER(s, c);
	return rc;
}
