/*
 * Billing delivery on PostgreSQL (store.h "Billing delivery"): the orgs'
 * Stripe settings and the outbox rows' lease, state and listing, for
 * several server processes on one database. Shares postgres.c's
 * connections and helpers through pg_int.h.
 *
 * A claim is one statement: an UPDATE of the rows a sub-select picked
 * with FOR UPDATE SKIP LOCKED, in a MATERIALIZED CTE so that it runs
 * exactly once (as an IN (...) sub-select the planner may run it again
 * and lock and update more than LIMIT rows). Two processes claiming at once lock
 * disjoint rows (each skips what the other holds); a row whose lease was
 * committed by another claim after this statement's snapshot was taken is
 * re-checked against its newest version when it is locked (READ
 * COMMITTED's re-evaluation of the WHERE clause for locked rows), finds
 * lease_until in the future and drops out. So a row is claimed by at most
 * one process per lease, without any process waiting on another.
 */
#include "core/err.h"
#include "store/pg_int.h"
#include "core/banned.h"

enum bstmt {
	B_SET_PUT, B_SET_GET, B_SET_DEL, B_CLAIM, B_SENT, B_RETRY, B_DEAD, B_RELEASE,
	B_LIST, B_REVIVE, B_GET, B_COUNT, B__COUNT
};

_Static_assert(PG_BILLING_SLOT0 + B__COUNT <= PG_EXT_STMT_MAX, "pg_int.h: raise PG_EXT_STMT_MAX");

#define EV_COLS                                                                            \
	"billing_id, org_id, delegation_id, caller_agent_id, callee_agent_id, amount_micros, " \
	"currency, period, state, attempts, next_attempt_at, last_error, created_at, sent_at"

/* The same, of the UPDATE's target b (the claim joins another relation). */
#define EV_COLS_B                                                                           \
	"b.billing_id, b.org_id, b.delegation_id, b.caller_agent_id, b.callee_agent_id, "      \
	"b.amount_micros, b.currency, b.period, b.state, b.attempts, b.next_attempt_at, "      \
	"b.last_error, b.created_at, b.sent_at"

static const struct {
	const char *name;
	const char *sql;
} bstmts[B__COUNT] = {
	[B_SET_PUT] = {"bill_set_put",
		       "INSERT INTO billing_settings (org_id, mode, secret_sealed, customer_id, "
		       "meter_event_name, updated_at) VALUES ($1, $2, $3, $4, $5, $6) "
		       "ON CONFLICT (org_id, mode) DO UPDATE SET "
		       "secret_sealed = excluded.secret_sealed, customer_id = excluded.customer_id, "
		       "meter_event_name = excluded.meter_event_name, updated_at = excluded.updated_at"},
	[B_SET_GET] = {"bill_set_get", "SELECT secret_sealed, customer_id, meter_event_name, "
				       "updated_at FROM billing_settings WHERE org_id = $1 AND mode = $2"},
	[B_SET_DEL] = {"bill_set_del", "DELETE FROM billing_settings WHERE org_id = $1 AND mode = $2"},
	[B_CLAIM] = {"bill_claim",
		     "WITH picked AS MATERIALIZED (SELECT e.billing_id FROM billing_events e "
		     "WHERE e.state = 'pending' AND e.next_attempt_at <= $1 AND e.lease_until <= $1 "
		     "AND EXISTS (SELECT 1 FROM billing_settings s WHERE s.org_id = e.org_id "
		     "AND s.mode = 'live') "
		     "ORDER BY e.next_attempt_at, e.billing_id LIMIT $4 FOR UPDATE OF e SKIP LOCKED) "
		     "UPDATE billing_events b SET lease_owner = $2, lease_until = $3, "
		     "attempts = b.attempts + 1 FROM picked WHERE b.billing_id = picked.billing_id "
		     "RETURNING " EV_COLS_B},
	[B_SENT] = {"bill_sent", "UPDATE billing_events SET state = 'sent', sent_at = $2, "
				 "lease_until = 0, lease_owner = '' "
				 "WHERE billing_id = $1 AND state = 'pending'"},
	[B_RETRY] = {"bill_retry", "UPDATE billing_events SET next_attempt_at = $3, last_error = $4, "
				   "lease_until = 0, lease_owner = '' "
				   "WHERE billing_id = $1 AND state = 'pending' AND lease_owner = $2"},
	[B_DEAD] = {"bill_dead", "UPDATE billing_events SET state = 'dead', last_error = $3, "
				 "lease_until = 0, lease_owner = '' "
				 "WHERE billing_id = $1 AND state = 'pending' AND lease_owner = $2"},
	[B_RELEASE] = {"bill_release", "UPDATE billing_events SET lease_until = 0, lease_owner = '' "
				       "WHERE billing_id = $1 AND state = 'pending' "
				       "AND lease_owner = $2"},
	[B_LIST] = {"bill_list", "SELECT " EV_COLS " FROM billing_events WHERE org_id = $1 "
				 "AND ($2::text IS NULL OR state = $2::text) "
				 "ORDER BY created_at DESC, billing_id DESC LIMIT $3 OFFSET $4"},
	[B_REVIVE] = {"bill_revive", "UPDATE billing_events SET state = 'pending', "
				     "next_attempt_at = $3, lease_until = 0, lease_owner = '' "
				     "WHERE org_id = $1 AND billing_id = $2 AND state = 'dead'"},
	[B_GET] = {"bill_get", "SELECT " EV_COLS " FROM billing_events "
			       "WHERE org_id = $1 AND billing_id = $2"},
	[B_COUNT] = {"bill_count", "SELECT count(*) FROM billing_events WHERE state = $1"},
};

/* Run statement id with p on c. On 0, *res holds the result (caller PQclears). */
static int bquery(struct pconn *c, enum bstmt id, const struct params *p, PGresult **res)
{
	PGresult *r;
	int rc = pg_prepare_ext(c, PG_BILLING_SLOT0 + id, bstmts[id].name, bstmts[id].sql);

	*res = NULL;
	if (rc)
		return rc;
	r = PQexecPrepared(pg_conn_pq(c), bstmts[id].name, p->n, p->v, p->len, p->fmt, 0);
	rc = pg_check(c, r, 1);
	if (rc)
		PQclear(r);
	else
		*res = r;
	return rc;
}

/* One statement on a pooled connection; *changed gets the row count when
 * not NULL. */
static int bexec(struct store *s, enum bstmt id, const struct params *p, long *changed)
{
	struct pconn *c;
	PGresult *r = NULL;
	int rc = pg_conn_get(s, &c);

	if (!rc)
		rc = bquery(c, id, p, &r);
	if (!rc && changed)
		*changed = strtol(PQcmdTuples(r), NULL, 10);
	PQclear(r);
	pg_conn_put(s, c);
	return rc;
}

static void read_event(const PGresult *r, int row, struct billing_event *e)
{
	col_copy(r, row, 0, e->billing_id, sizeof(e->billing_id));
	col_copy(r, row, 1, e->org_id, sizeof(e->org_id));
	col_copy(r, row, 2, e->delegation_id, sizeof(e->delegation_id));
	col_copy(r, row, 3, e->caller_agent_id, sizeof(e->caller_agent_id));
	col_copy(r, row, 4, e->callee_agent_id, sizeof(e->callee_agent_id));
	e->amount_micros = col_i64(r, row, 5);
	col_copy(r, row, 6, e->currency, sizeof(e->currency));
	col_copy(r, row, 7, e->period, sizeof(e->period));
	col_copy(r, row, 8, e->state, sizeof(e->state));
	e->attempts = col_i64(r, row, 9);
	e->next_attempt_at = col_i64(r, row, 10);
	col_copy(r, row, 11, e->last_error, sizeof(e->last_error));
	e->created_at = col_i64(r, row, 12);
	e->sent_at = col_i64(r, row, 13);
}

int pg_billing_settings_put(struct store *s, const struct billing_settings *b)
{
	struct params p = {0};

	p_text(&p, b->org_id);
	p_text(&p, b->mode);
	p_bytes(&p, b->secret_sealed, b->secret_sealed_len);
	p_text(&p, b->customer_id);
	p_text(&p, b->meter_event_name);
	p_i64(&p, b->updated_at);
	return bexec(s, B_SET_PUT, &p, NULL);
}

int pg_billing_settings_get(struct store *s, const char *org_id, const char *mode,
			    struct billing_settings *out)
{
	struct params p = {0};
	struct pconn *c;
	PGresult *r = NULL;
	int rc = pg_conn_get(s, &c);

	memset(out, 0, sizeof(*out));
	p_text(&p, org_id);
	p_text(&p, mode);
	if (!rc)
		rc = bquery(c, B_SET_GET, &p, &r);
	if (!rc && PQntuples(r) == 0)
		rc = E(NOT_FOUND);
	if (!rc) {
		snprintf(out->org_id, sizeof(out->org_id), "%s", org_id);
		snprintf(out->mode, sizeof(out->mode), "%s", mode);
		out->secret_sealed = pg_col_bytes(r, 0, 0, &out->secret_sealed_len);
		col_copy(r, 0, 1, out->customer_id, sizeof(out->customer_id));
		col_copy(r, 0, 2, out->meter_event_name, sizeof(out->meter_event_name));
		out->updated_at = col_i64(r, 0, 3);
		if (!out->secret_sealed)
			rc = E(INTERNAL);
	}
	PQclear(r);
	pg_conn_put(s, c);
	return rc;
}

int pg_billing_settings_delete(struct store *s, const char *org_id, const char *mode)
{
	struct params p = {0};
	long changed = 0;
	int rc;

	p_text(&p, org_id);
	p_text(&p, mode);
	rc = bexec(s, B_SET_DEL, &p, &changed);
	return !rc && changed == 0 ? E(NOT_FOUND) : rc;
}

int pg_billing_claim(struct store *s, int64_t now, int64_t lease_until, const char *owner,
		     struct billing_event *out, int max, int *n)
{
	struct params p = {0};
	struct pconn *c;
	PGresult *r = NULL;
	int rc = pg_conn_get(s, &c);

	*n = 0;
	p_i64(&p, now);
	p_text(&p, owner);
	p_i64(&p, lease_until);
	p_i64(&p, max);
	if (!rc)
		rc = bquery(c, B_CLAIM, &p, &r);
	for (int i = 0; !rc && i < PQntuples(r) && i < max; i++)
		read_event(r, i, &out[(*n)++]);
	PQclear(r);
	pg_conn_put(s, c);
	return rc;
}

static int finish_one(struct pconn *c, const char *owner, const struct billing_result *res,
		      int64_t now)
{
	static const enum bstmt by_outcome[] = {
		[BILLING_SENT] = B_SENT, [BILLING_RETRY] = B_RETRY,
		[BILLING_DEAD] = B_DEAD, [BILLING_RELEASE] = B_RELEASE,
	};
	struct params p = {0};
	PGresult *r = NULL;
	int rc;

	p_text(&p, res->billing_id);
	if (res->outcome == BILLING_SENT) {
		p_i64(&p, now);
	} else {
		p_text(&p, owner);
		if (res->outcome == BILLING_RETRY)
			p_i64(&p, res->next_attempt_at);
		if (res->outcome == BILLING_RETRY || res->outcome == BILLING_DEAD)
			p_text(&p, res->error ? res->error : "");
	}
	rc = bquery(c, by_outcome[res->outcome], &p, &r);
	PQclear(r);
	return rc;
}

int pg_billing_finish(struct store *s, const char *owner, const struct billing_result *res,
		      size_t n, int64_t now)
{
	struct pconn *c;
	int rc;

	if (n == 0)
		return 0;
	rc = pg_conn_get(s, &c);
	if (!rc)
		rc = pg_exec(c, "BEGIN");
	for (size_t i = 0; !rc && i < n; i++)
		rc = finish_one(c, owner, &res[i], now);
	if (!rc)
		rc = pg_exec(c, "COMMIT");
	pg_conn_put(s, c); /* a transaction left open is rolled back by the next get */
	return rc;
}

int pg_billing_list(struct store *s, const char *org_id, const char *state, int limit,
		    int offset, int (*cb)(void *ctx, const struct billing_event *e), void *ctx)
{
	struct params p = {0};
	struct billing_event e;
	struct pconn *c;
	PGresult *r = NULL;
	int rc = pg_conn_get(s, &c);

	p_text(&p, org_id);
	p_text(&p, state);
	p_limit(&p, limit, offset);
	if (!rc)
		rc = bquery(c, B_LIST, &p, &r);
	for (int i = 0; !rc && i < PQntuples(r); i++) {
		read_event(r, i, &e);
		rc = cb(ctx, &e);
	}
	PQclear(r);
	pg_conn_put(s, c);
	return rc;
}

int pg_billing_retry(struct store *s, const char *org_id, const char *billing_id, int64_t now,
		     struct billing_event *out)
{
	struct params p = {0};
	struct pconn *c;
	PGresult *r = NULL;
	long changed = 0;
	int rc = pg_conn_get(s, &c);

	p_text(&p, org_id);
	p_text(&p, billing_id);
	p_i64(&p, now);
	if (!rc)
		rc = bquery(c, B_REVIVE, &p, &r);
	if (!rc)
		changed = strtol(PQcmdTuples(r), NULL, 10);
	PQclear(r);
	r = NULL;
	p.n = 2; /* org, id */
	if (!rc)
		rc = bquery(c, B_GET, &p, &r);
	if (!rc && PQntuples(r) == 0)
		rc = E(NOT_FOUND);
	if (!rc)
		read_event(r, 0, out);
	if (!rc && !changed)
		rc = E(CONFLICT);
	PQclear(r);
	pg_conn_put(s, c);
	return rc;
}

int pg_billing_count(struct store *s, const char *state, int64_t *n)
{
	struct params p = {0};
	struct pconn *c;
	PGresult *r = NULL;
	int rc = pg_conn_get(s, &c);

	*n = 0;
	p_text(&p, state);
	if (!rc)
		rc = bquery(c, B_COUNT, &p, &r);
	if (!rc && PQntuples(r) == 1)
		*n = col_i64(r, 0, 0);
	PQclear(r);
	pg_conn_put(s, c);
	return rc;
}
