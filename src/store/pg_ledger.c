/*
 * The delegation ledger on PostgreSQL (store.h, struct ledger_op): batches
 * of OPEN and SETTLE ops in one transaction, and the reads of delegations
 * and budget months. Split from postgres.c, whose connections, pool and
 * helpers it shares through pg_int.h.
 *
 * Round trips and fsyncs are the fixed cost of a PostgreSQL transaction
 * (~190 us per round trip on loopback), so each op is one call of a
 * stored function (nexra_ledger_open, nexra_ledger_settle; migration 0004)
 * that does all its reads and writes server-side, and a whole batch goes
 * out as one libpq pipeline: BEGIN, nexra_ledger_begin per org (it locks
 * the org's row), one prepared call per op, nexra_ledger_end per org,
 * COMMIT, sync. The batch costs one round trip and one fsync whatever its
 * size; what is left per op is the server's own work.
 *
 * Deadlocks: every row an op writes belongs to the op's org, and the orgs
 * are locked first, in one order (strcmp) that every process shares. Two
 * batches that touch a common org then meet at that org's row, in the
 * same order, and never wait on each other in a cycle, whatever order
 * their ops come in. Holds, settles and audit appends of one org are
 * serialized anyway (one budget row, one audit sequence), so the lock
 * costs no concurrency; it is also what lets the functions write the hot
 * rows without locking them first (see the migration).
 *
 * Each op's function catches its own failure in a subtransaction and
 * reports it as a row (rc and message), so a failing op rolls back alone
 * and the pipeline never aborts on it. What the functions let through is
 * what must abort the whole transaction: a deadlock that comes from
 * outside the ledger's lock order (another transaction on these rows, a
 * delegation id reused across orgs) or a serialization failure. Then the
 * batch is rolled back and run again, up to LEDGER_TRIES times with a
 * short random pause, so callers never see them. Outcomes are written into
 * the ops only once COMMIT has succeeded, so a retried or failed attempt
 * leaves no trace in them.
 *
 * Correctness across processes rests on the database, not on this file:
 * a hold is an UPDATE of the (org, period) row conditioned on the room
 * left, under the org's lock; a settle locks its delegation row and finds
 * it final if another settler got there first; audit ids are numbered
 * under the org's lock, and a failed op takes its number back with it.
 * See the migration.
 *
 * The pipeline is written with the socket in non-blocking mode and read
 * while it drains, so a large batch cannot deadlock against a server
 * blocked on sending its results. A connection left in pipeline mode by
 * a failure this file could not clean up is reset by the next
 * pg_conn_get.
 */
#include <errno.h>
#include <poll.h>
#include <time.h>

#include "core/err.h"
#include "core/rand.h"
#include "store/pg_int.h"
#include "core/banned.h"

#define LEDGER_TRIES 5         /* attempts of a batch that deadlocked */
#define LEDGER_BACKOFF_US 2000 /* pause before retry k: up to k times this */

enum lstmt {
	L_BEGIN_ORG, L_OPEN, L_SETTLE, L_DECIDE, L_END, /* the batch's statements */
	L_GET, L_LIST, L_OVERDUE, L_BUDGET, L__COUNT
};

/* Every column of a delegation, in read_delegation's order. */
#define DLG_COLS                                                                            \
	"delegation_id, org_id, caller_agent_id, callee_agent_id, capability, "             \
	"budget_cap_micros, callee_trust, callee_circuit_open, decision, policy_id, "       \
	"policy_version, created_at, status, key_id, task_type, task_input, context_scope, " \
	"policy_result, policy_ref, timeout_ms, callback_url, period, hold_micros, "        \
	"budget_limit_micros, cost_micros, reported_cost_micros, overrun, llm_tokens, "     \
	"latency_ms, result, error_code, error_message, audit_event, trust_before, "        \
	"trust_after, budget_remaining_micros, dispatched_at, expires_at, settled_at, "       \
	"decided, decided_by_key_id, decided_by_key_name, approver, decided_at, "           \
	"decision_reason"

static const struct {
	const char *name;
	const char *sql;
} lstmts[L__COUNT] = {
	[L_BEGIN_ORG] = {"ledger_begin_org", "SELECT nexra_ledger_begin($1)"},
	[L_END] = {"ledger_end", "SELECT nexra_ledger_end($1)"},
	[L_OPEN] = {"ledger_open",
		    "SELECT * FROM nexra_ledger_open($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, "
		    "$11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, "
		    "$26, $27, $28, $29, $30)"},
	[L_SETTLE] = {"ledger_settle",
		      "SELECT * FROM nexra_ledger_settle($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, "
		      "$11, $12, $13, $14, $15, $16, $17, $18, $19)"},
	[L_DECIDE] = {"ledger_decide",
		      "SELECT * FROM nexra_ledger_decide($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, "
		      "$11, $12, $13)"},
	[L_GET] = {"dlg_get", "SELECT " DLG_COLS " FROM delegations "
			      "WHERE org_id = $1 AND delegation_id = $2"},
	[L_LIST] = {"dlg_list",
		    "SELECT " DLG_COLS " FROM delegations WHERE org_id = $1 "
		    "AND ($2::text IS NULL OR caller_agent_id = $2::text "
		    "OR callee_agent_id = $2::text) "
		    "AND ($3::text IS NULL OR status = $3::text) "
		    "AND created_at >= $4 AND created_at < $5 "
		    "ORDER BY created_at DESC, delegation_id DESC LIMIT $6 OFFSET $7"},
	[L_OVERDUE] = {"dlg_overdue",
		       "SELECT " DLG_COLS " FROM delegations "
		       "WHERE status IN ('dispatched', 'pending_approval') "
		       "AND ((status = 'dispatched' AND expires_at < $1) OR "
		       "(status = 'pending_approval' AND expires_at > 0 AND expires_at <= $3)) "
		       "ORDER BY expires_at, delegation_id LIMIT $2"},
	[L_BUDGET] = {"budget_get", "SELECT spent_micros, held_micros FROM budget_periods "
				    "WHERE org_id = $1 AND period = $2"},
};

_Static_assert(L__COUNT <= PG_BILLING_SLOT0, "pg_int.h: raise PG_BILLING_SLOT0");

/* Run statement id with p. On 0, *res holds the result (caller PQclears). */
static int lquery(struct pconn *c, enum lstmt id, const struct params *p, PGresult **res)
{
	PGresult *r;
	int rc = pg_prepare_ext(c, id, lstmts[id].name, lstmts[id].sql);

	*res = NULL;
	if (rc)
		return rc;
	r = PQexecPrepared(pg_conn_pq(c), lstmts[id].name, p->n, p->v, p->len, p->fmt, 0);
	rc = pg_check(c, r, 1);
	if (rc)
		PQclear(r);
	else
		*res = r;
	return rc;
}

/* ---- ledger_apply -------------------------------------------------------- */

/* What one op's function returned (its row; columns as in the migration). */
struct outcome {
	int rc; /* 0 or E(...) */
	int idem, refused, circuit;
	char idem_id[ID_MAX];
	char status[DELEGATION_STATUS_MAX];
	char error_code[32];
	int64_t hold, event, remaining, settled_at, cost;
	double before, after;
};

enum { O_RC, O_MESSAGE, O_IDEM, O_IDEM_ID, O_REFUSED, O_STATUS, O_HOLD, O_ERROR_CODE,
       O_EVENT, O_REMAINING, O_BEFORE, O_AFTER, O_SETTLED_AT, O_CIRCUIT, O_COST, O__COUNT };

static void params_open(struct params *p, const struct ledger_op *op)
{
	const struct delegation *d = op->d;
	const struct delegation_record *r = &d->rec;

	p_text(p, r->org_id);
	p_text(p, r->delegation_id);
	p_text(p, r->caller_agent_id);
	p_text(p, r->callee_agent_id[0] ? r->callee_agent_id : NULL);
	p_text(p, r->capability);
	p_i64(p, r->budget_cap_micros);
	if (r->has_trust)
		p_f64(p, r->callee_trust);
	else
		p_text(p, NULL);
	p_i64(p, r->callee_circuit_open ? 1 : 0);
	p_text(p, r->decision);
	p_text(p, r->policy_id[0] ? r->policy_id : NULL);
	if (r->policy_id[0])
		p_i64(p, r->policy_version);
	else
		p_text(p, NULL);
	p_i64(p, r->created_at);
	p_text(p, d->status);
	p_text(p, d->key_id);
	p_text(p, d->task_type);
	p_text(p, d->task_input);
	p_text(p, d->context_scope);
	p_text(p, d->policy_result);
	p_text(p, d->policy_ref);
	p_i64(p, d->timeout_ms);
	p_text(p, d->callback_url);
	p_text(p, d->period);
	p_i64(p, d->budget_limit_micros);
	p_i64(p, d->dispatched_at);
	p_i64(p, d->expires_at);
	p_text(p, d->error_code);
	p_text(p, d->error_message);
	p_text(p, op->idem_key);
	if (op->idem_key)
		p_bytes(p, op->idem_hash, sizeof(op->idem_hash));
	else
		p_text(p, NULL);
	p_i64(p, op->now ? op->now : d->rec.created_at);
}

static void params_settle(struct params *p, const struct ledger_op *op)
{
	const struct delegation *d = op->d;

	p_text(p, d->rec.org_id);
	p_text(p, d->rec.delegation_id);
	p_text(p, d->status);
	p_i64(p, d->cost_micros);
	p_i64(p, d->reported_cost_micros);
	p_i64(p, d->overrun ? 1 : 0);
	p_i64(p, d->llm_tokens);
	p_i64(p, d->latency_ms);
	p_text(p, d->result);
	p_text(p, d->error_code);
	p_text(p, d->error_message);
	p_f64(p, op->trust_signal);
	p_f64(p, op->trust_alpha);
	p_i64(p, op->promote_after);
	p_i64(p, op->cb_max_failures);
	p_i64(p, op->cb_window_seconds);
	p_i64(p, op->now ? op->now : d->settled_at);
	p_i64(p, d->settled_at);
}

static void params_decide(struct params *p, const struct ledger_op *op)
{
	const struct delegation *d = op->d;

	p_text(p, d->rec.org_id);
	p_text(p, d->rec.delegation_id);
	p_text(p, d->decided);
	p_text(p, d->decided_by_key_id);
	p_text(p, d->decided_by_key_name);
	p_text(p, d->approver);
	p_text(p, d->decision_reason);
	p_i64(p, d->decided_at);
	p_i64(p, d->dispatched_at);
	p_i64(p, d->expires_at);
	p_text(p, d->error_message);
	p_text(p, d->error_code);
}

/* Queue op's call on the pipeline; 0 when libpq refused it (or no memory). */
static int send_op(PGconn *pq, const struct ledger_op *op)
{
	struct params p = {0};
	enum lstmt id = op->kind == LEDGER_OPEN ? L_OPEN : op->kind == LEDGER_DECIDE ? L_DECIDE
											: L_SETTLE;
	char *approval = NULL;
	int oom = 0, ok;

	if (id == L_OPEN)
		params_open(&p, op);
	else if (id == L_DECIDE)
		params_decide(&p, op);
	else
		params_settle(&p, op);
	if (id != L_OPEN) { /* the decision for the audit entry */
		approval = delegation_approval_json(op->d, &oom);
		p_text(&p, approval);
	}
	ok = !oom && PQsendQueryPrepared(pq, lstmts[id].name, p.n, p.v, p.len, p.fmt, 0);
	free(approval);
	return ok;
}

/* Write everything queued, taking in what the server sends meanwhile (the
 * connection is non-blocking). 0, or -1 when the connection failed. */
static int flush_all(PGconn *pq)
{
	struct pollfd pfd = {.fd = PQsocket(pq), .events = POLLIN | POLLOUT};
	int f;

	while ((f = PQflush(pq)) == 1) {
		pfd.revents = 0;
		if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
			return -1;
		if ((pfd.revents & POLLIN) && !PQconsumeInput(pq))
			return -1;
	}
	return f;
}

static double col_f64_or_nan(const PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? NAN : col_f64(r, row, col);
}

/* An op's result row into *o. 0, or an error when r is not such a row. */
static int read_outcome(const PGresult *r, struct outcome *o)
{
	int64_t code;

	if (PQntuples(r) != 1 || PQnfields(r) != O__COUNT)
		return pg_internal("ledger function returned an unexpected shape");
	memset(o, 0, sizeof(*o));
	code = col_i64(r, 0, O_RC);
	o->rc = code == 0 ? 0 : code == 1 ? E(CONFLICT) : code == 2 ? E(NOT_FOUND) : E(INTERNAL);
	if (o->rc == E(INTERNAL))
		pg_internal(PQgetvalue(r, 0, O_MESSAGE)); /* the op's own failure, for the log */
	o->idem = (int)col_i64(r, 0, O_IDEM);
	col_copy(r, 0, O_IDEM_ID, o->idem_id, sizeof(o->idem_id));
	o->refused = (int)col_i64(r, 0, O_REFUSED);
	col_copy(r, 0, O_STATUS, o->status, sizeof(o->status));
	o->hold = col_i64(r, 0, O_HOLD);
	col_copy(r, 0, O_ERROR_CODE, o->error_code, sizeof(o->error_code));
	o->event = col_i64(r, 0, O_EVENT);
	o->remaining = col_i64(r, 0, O_REMAINING);
	o->before = col_f64_or_nan(r, 0, O_BEFORE);
	o->after = col_f64_or_nan(r, 0, O_AFTER);
	o->settled_at = col_i64(r, 0, O_SETTLED_AT);
	o->circuit = (int)col_i64(r, 0, O_CIRCUIT);
	o->cost = col_i64(r, 0, O_COST);
	return 0;
}

/* 1 if r failed in a way that running the transaction again may cure. */
static int retryable(const PGresult *r)
{
	const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);

	return state && (!strcmp(state, "40P01") || !strcmp(state, "40001"));
}

/* A batch on its way: the ops, their orgs in lock order, the outcomes. The
 * pipeline's commands are BEGIN (0), nexra_ledger_begin per org
 * (1..norgs), one call per op, nexra_ledger_end per org, COMMIT: ncmd in
 * all. */
struct batch {
	struct ledger_op *ops;
	size_t n;
	const char **orgs;
	size_t norgs;
	struct outcome *out;
};

static int by_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The distinct org ids of the ops into b->orgs, sorted (room for n). */
static void batch_orgs(struct batch *b)
{
	size_t m = 0;

	for (size_t i = 0; i < b->n; i++)
		b->orgs[i] = b->ops[i].d->rec.org_id;
	qsort(b->orgs, b->n, sizeof(*b->orgs), by_str);
	for (size_t i = 0; i < b->n; i++)
		if (m == 0 || strcmp(b->orgs[m - 1], b->orgs[i]))
			b->orgs[m++] = b->orgs[i];
	b->norgs = m;
}

static size_t batch_ncmd(const struct batch *b)
{
	return 2 * b->norgs + b->n + 2;
}

/* Command k's result into b. 0 or an error; *again set when the error is
 * retryable. */
static int take_result(struct pconn *c, PGresult *r, struct batch *b, size_t k, int *again)
{
	ExecStatusType st = PQresultStatus(r);

	if (st == PGRES_PIPELINE_ABORTED)
		return E(INTERNAL); /* after the error already taken */
	if (st == PGRES_FATAL_ERROR && retryable(r))
		*again = 1;
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
		return pg_check(c, r, 0);
	if (k > b->norgs && k <= b->norgs + b->n)
		return read_outcome(r, &b->out[k - 1 - b->norgs]);
	if (k == batch_ncmd(b) - 1 && strcmp(PQcmdStatus(r), "COMMIT"))
		return pg_internal("ledger batch rolled back at COMMIT");
	return 0;
}

/* Read every result up to the pipeline's sync point. 0 when every command
 * succeeded (COMMIT included); else the first error. */
static int read_results(struct pconn *c, struct batch *b, int *again)
{
	PGconn *pq = pg_conn_pq(c);
	size_t k = 0, ncmd = batch_ncmd(b); /* k: command whose results come next */
	int rc = 0, x;

	for (;;) {
		PGresult *r = PQgetResult(pq);

		if (!r) {
			/* end of command k's results, or a lost connection */
			if (PQstatus(pq) == CONNECTION_BAD || ++k > ncmd)
				return rc ? rc : pg_internal(PQerrorMessage(pq));
			continue;
		}
		if (PQresultStatus(r) == PGRES_PIPELINE_SYNC) {
			PQclear(r);
			break;
		}
		x = k < ncmd ? take_result(c, r, b, k, again)
			     : pg_internal("ledger pipeline: result past COMMIT");
		if (!rc)
			rc = x;
		PQclear(r);
	}
	if (!rc && k != ncmd)
		rc = pg_internal("ledger pipeline: results missing");
	return rc;
}

static int send_org(PGconn *pq, enum lstmt id, const char *org_id)
{
	const char *v[1] = {org_id};

	return PQsendQueryPrepared(pq, lstmts[id].name, 1, v, NULL, NULL, 0);
}

/* Queue the batch's commands on the pipeline; 0 when libpq refused (the
 * reason in its error message). */
static int send_batch(PGconn *pq, const struct batch *b)
{
	int ok = PQsendQueryParams(pq, "BEGIN", 0, NULL, NULL, NULL, NULL, 0);

	for (size_t i = 0; ok && i < b->norgs; i++)
		ok = send_org(pq, L_BEGIN_ORG, b->orgs[i]);
	for (size_t i = 0; ok && i < b->n; i++)
		ok = send_op(pq, &b->ops[i]);
	for (size_t i = 0; ok && i < b->norgs; i++)
		ok = send_org(pq, L_END, b->orgs[i]);
	return ok && PQsendQueryParams(pq, "COMMIT", 0, NULL, NULL, NULL, NULL, 0);
}

/* One attempt at the batch in one pipeline. 0 when it committed (outcomes
 * in b->out); else the error, with *again set when a new attempt may
 * succeed. The connection leaves pipeline mode with no transaction open,
 * or is left for pg_conn_get to reset. */
static int attempt(struct pconn *c, struct batch *b, int *again)
{
	PGconn *pq = pg_conn_pq(c);
	int rc = 0, ok, synced = 0;

	*again = 0;
	if (!PQenterPipelineMode(pq))
		return pg_internal(PQerrorMessage(pq));
	ok = PQsetnonblocking(pq, 1) == 0 && send_batch(pq, b);
	synced = ok = ok && PQpipelineSync(pq);
	ok = ok && flush_all(pq) == 0;
	if (PQsetnonblocking(pq, 0))
		ok = 0;
	if (!ok) {
		rc = pg_internal(PQerrorMessage(pq));
		/* whatever went out is ended by a sync, then read and dropped */
		if (PQstatus(pq) == CONNECTION_BAD || (!synced && !PQpipelineSync(pq)))
			return rc;
		read_results(c, b, again);
		*again = 0;
	} else {
		rc = read_results(c, b, again);
	}
	if (PQstatus(pq) == CONNECTION_BAD || !PQexitPipelineMode(pq))
		return rc ? rc : pg_internal(PQerrorMessage(pq));
	if (PQtransactionStatus(pq) != PQTRANS_IDLE)
		PQclear(PQexec(pq, "ROLLBACK"));
	return rc;
}

/* A pause of up to round * LEDGER_BACKOFF_US, random so that two
 * processes that deadlocked do not meet again in step. */
static void backoff(int round)
{
	unsigned short x = 0;
	long us;
	struct timespec ts;

	(void)rand_bytes(&x, sizeof(x));
	us = (long)round * LEDGER_BACKOFF_US * (x % 1000 + 1) / 1000;
	ts.tv_sec = us / 1000000;
	ts.tv_nsec = us % 1000000 * 1000;
	nanosleep(&ts, NULL);
}

/* A committed op's outcome into the op and its delegation. */
static void apply_outcome(struct ledger_op *op, const struct outcome *o)
{
	struct delegation *d = op->d;

	op->rc = o->rc;
	op->idem = o->rc ? IDEM_NEW : o->idem;
	snprintf(op->idem_delegation_id, sizeof(op->idem_delegation_id), "%s",
		 o->rc ? "" : o->idem_id);
	op->budget_refused = o->rc ? 0 : o->refused;
	op->circuit_opened = o->rc ? 0 : o->circuit;
	if (o->rc || o->idem != IDEM_NEW)
		return; /* nothing of d was written */
	snprintf(d->status, sizeof(d->status), "%s", o->status);
	snprintf(d->error_code, sizeof(d->error_code), "%s", o->error_code);
	d->hold_micros = o->hold;
	d->audit_event = o->event;
	d->budget_remaining_micros = o->remaining;
	d->trust_before = o->before;
	d->trust_after = o->after;
	d->settled_at = o->settled_at;
	d->cost_micros = o->cost;
}

int pg_ledger_apply(struct store *s, struct ledger_op *ops, size_t n)
{
	struct pconn *c;
	struct batch b = {.ops = ops, .n = n};
	int rc, again = 0;

	if (n == 0)
		return 0;
	rc = pg_conn_get(s, &c);
	for (enum lstmt id = L_BEGIN_ORG; !rc && id <= L_END; id++)
		rc = pg_prepare_ext(c, id, lstmts[id].name, lstmts[id].sql);
	if (!rc) {
		b.out = calloc(n, sizeof(*b.out));
		b.orgs = calloc(n, sizeof(*b.orgs));
		if (!b.out || !b.orgs)
			rc = pg_internal("out of memory for a ledger batch");
	}
	if (!rc)
		batch_orgs(&b);
	for (int round = 1; !rc; round++) {
		rc = attempt(c, &b, &again);
		if (!rc || !again || round == LEDGER_TRIES)
			break;
		backoff(round);
		rc = 0;
	}
	pg_conn_put(s, c);
	for (size_t i = 0; i < n; i++) {
		if (rc) {
			ops[i].rc = rc;
			ops[i].idem = IDEM_NEW;
			ops[i].idem_delegation_id[0] = '\0';
			ops[i].budget_refused = ops[i].circuit_opened = 0;
		} else {
			apply_outcome(&ops[i], &b.out[i]);
		}
	}
	free(b.out);
	free(b.orgs);
	return rc;
}

/* ---- reads --------------------------------------------------------------- */

/* Row `row` (DLG_COLS) into *d. 0, or E(INTERNAL) when out of memory (d is
 * then released). */
static int read_delegation(const PGresult *r, int row, struct delegation *d)
{
	struct delegation_record *x = &d->rec;
	int bad = 0;

	memset(d, 0, sizeof(*d));
	col_copy(r, row, 0, x->delegation_id, sizeof(x->delegation_id));
	col_copy(r, row, 1, x->org_id, sizeof(x->org_id));
	col_copy(r, row, 2, x->caller_agent_id, sizeof(x->caller_agent_id));
	col_copy(r, row, 3, x->callee_agent_id, sizeof(x->callee_agent_id));
	col_copy(r, row, 4, x->capability, sizeof(x->capability));
	x->budget_cap_micros = col_i64(r, row, 5);
	x->has_trust = !PQgetisnull(r, row, 6);
	x->callee_trust = x->has_trust ? col_f64(r, row, 6) : 0;
	x->callee_circuit_open = (int)col_i64(r, row, 7);
	col_copy(r, row, 8, x->decision, sizeof(x->decision));
	col_copy(r, row, 9, x->policy_id, sizeof(x->policy_id));
	x->policy_version = (int)col_i64(r, row, 10);
	x->created_at = col_i64(r, row, 11);
	col_copy(r, row, 12, d->status, sizeof(d->status));
	col_copy(r, row, 13, d->key_id, sizeof(d->key_id));
	col_copy(r, row, 14, d->task_type, sizeof(d->task_type));
	d->task_input = col_dup(r, row, 15);
	d->context_scope = col_dup(r, row, 16);
	d->policy_result = col_dup(r, row, 17);
	col_copy(r, row, 18, d->policy_ref, sizeof(d->policy_ref));
	d->timeout_ms = col_i64(r, row, 19);
	d->callback_url = col_dup(r, row, 20);
	col_copy(r, row, 21, d->period, sizeof(d->period));
	d->hold_micros = col_i64(r, row, 22);
	d->budget_limit_micros = col_i64(r, row, 23);
	d->cost_micros = col_i64(r, row, 24);
	d->reported_cost_micros = col_i64(r, row, 25);
	d->overrun = (int)col_i64(r, row, 26);
	d->llm_tokens = col_i64(r, row, 27);
	d->latency_ms = col_i64(r, row, 28);
	d->result = col_dup(r, row, 29);
	col_copy(r, row, 30, d->error_code, sizeof(d->error_code));
	/* stored as '' when there is none (NOT NULL column): none reads NULL */
	if (PQgetlength(r, row, 31) > 0) {
		d->error_message = col_dup(r, row, 31);
		bad |= !d->error_message;
	}
	d->audit_event = col_i64(r, row, 32);
	d->trust_before = col_f64_or_nan(r, row, 33);
	d->trust_after = col_f64_or_nan(r, row, 34);
	d->budget_remaining_micros = col_i64(r, row, 35);
	d->dispatched_at = col_i64(r, row, 36);
	d->expires_at = col_i64(r, row, 37);
	d->settled_at = col_i64(r, row, 38);
	col_copy(r, row, 39, d->decided, sizeof(d->decided));
	col_copy(r, row, 40, d->decided_by_key_id, sizeof(d->decided_by_key_id));
	col_copy(r, row, 41, d->decided_by_key_name, sizeof(d->decided_by_key_name));
	col_copy(r, row, 42, d->approver, sizeof(d->approver));
	d->decided_at = col_i64(r, row, 43);
	if (PQgetlength(r, row, 44) > 0) {
		d->decision_reason = col_dup(r, row, 44);
		bad |= !d->decision_reason;
	}
	bad |= !d->task_input || !d->context_scope || !d->policy_result;
	bad |= (!d->callback_url && !PQgetisnull(r, row, 20));
	bad |= (!d->result && !PQgetisnull(r, row, 29));
	if (bad) {
		delegation_release(d);
		return pg_internal("out of memory reading a delegation");
	}
	return 0;
}

/* Rows of a delegation result to cb (each released after the call). */
static int delegation_rows(const PGresult *r, int (*cb)(void *, const struct delegation *),
			   void *ctx)
{
	struct delegation d;
	int rc = 0;

	for (int i = 0; !rc && i < PQntuples(r); i++) {
		rc = read_delegation(r, i, &d);
		if (rc)
			break;
		rc = cb(ctx, &d);
		delegation_release(&d);
	}
	return rc;
}

int pg_delegation_get(struct store *s, const char *org_id, const char *delegation_id,
		      struct delegation *out)
{
	struct pconn *c;
	struct params p = {0};
	PGresult *r = NULL;
	int rc = pg_conn_get(s, &c);

	if (rc)
		goto out;
	p_text(&p, org_id);
	p_text(&p, delegation_id);
	rc = lquery(c, L_GET, &p, &r);
	if (!rc)
		rc = PQntuples(r) ? read_delegation(r, 0, out) : E(NOT_FOUND);
out:
	PQclear(r);
	pg_conn_put(s, c);
	return rc;
}

int pg_delegation_list(struct store *s, const struct delegation_filter *f, int limit,
		       int offset, int (*cb)(void *, const struct delegation *), void *ctx)
{
	struct pconn *c;
	struct params p = {0};
	PGresult *r = NULL;
	int rc = pg_conn_get(s, &c);

	if (rc)
		goto out;
	p_text(&p, f->org_id);
	p_text(&p, f->agent_id);
	p_text(&p, f->status);
	p_i64(&p, f->from);
	p_i64(&p, f->to);
	p_limit(&p, limit, offset);
	rc = lquery(c, L_LIST, &p, &r);
	if (!rc)
		rc = delegation_rows(r, cb, ctx);
out:
	PQclear(r);
	pg_conn_put(s, c);
	return rc;
}

int pg_delegation_overdue(struct store *s, int64_t before, int64_t now, int limit,
			  int (*cb)(void *, const struct delegation *), void *ctx)
{
	struct pconn *c;
	struct params p = {0};
	PGresult *r = NULL;
	int rc = pg_conn_get(s, &c);

	if (rc)
		goto out;
	p_i64(&p, before);
	if (limit < 0)
		p_text(&p, NULL);
	else
		p_i64(&p, limit);
	p_i64(&p, now);
	rc = lquery(c, L_OVERDUE, &p, &r);
	if (!rc)
		rc = delegation_rows(r, cb, ctx);
out:
	PQclear(r);
	pg_conn_put(s, c);
	return rc;
}

int pg_budget_get(struct store *s, const char *org_id, const char *period,
		  int64_t *spent_micros, int64_t *held_micros)
{
	struct pconn *c;
	struct params p = {0};
	PGresult *r = NULL;
	int rc = pg_conn_get(s, &c);

	*spent_micros = *held_micros = 0;
	if (rc)
		goto out;
	p_text(&p, org_id);
	p_text(&p, period);
	rc = lquery(c, L_BUDGET, &p, &r);
	if (!rc && PQntuples(r)) {
		*spent_micros = col_i64(r, 0, 0);
		*held_micros = col_i64(r, 0, 1);
	}
out:
	PQclear(r);
	pg_conn_put(s, c);
	return rc;
}
