/*
 * Notifications on PostgreSQL (store.h documents each operation), for
 * several server processes on one database:
 *  - a delivery is unique per (channel, event, subject): concurrent
 *    enqueues of one event by two processes meet at that constraint (ON
 *    CONFLICT DO NOTHING) and exactly one row exists;
 *  - a claim is one statement that picks due rows FOR UPDATE SKIP LOCKED
 *    and moves them out to the lease's end, so two processes never claim
 *    the same row;
 *  - the per-org channel limit counts under a transaction-scoped advisory
 *    lock on the org (not its row, which the ledger locks).
 * Statements run unprepared (PQexecParams): they run a few times a second.
 */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "store/pg_int.h"
#include "core/banned.h"

static int xq(struct pconn *c, const char *sql, const struct params *p, PGresult **out)
{
	PGresult *r = PQexecParams(pg_conn_pq(c), sql, p->n, NULL, p->v, p->len, p->fmt, 0);
	int rc = pg_check(c, r, 1);

	if (rc || !out)
		PQclear(r);
	else
		*out = r;
	return rc;
}

static int xs(struct pconn *c, const char *sql)
{
	struct params p = {0};

	return xq(c, sql, &p, NULL);
}

/* A connection with a transaction open (*c is set even on error and must
 * go back through end_txn). */
static int begin_txn(struct store *s, struct pconn **c)
{
	int rc = pg_conn_get(s, c);

	return rc ? rc : xs(*c, "BEGIN");
}

/* COMMIT when rc is 0 (else ROLLBACK), the connection handed back; the
 * first error. */
static int end_txn(struct store *s, struct pconn *c, int rc)
{
	if (!rc)
		rc = xs(c, "COMMIT");
	if (rc)
		PQclear(PQexec(pg_conn_pq(c), "ROLLBACK"));
	pg_conn_put(s, c);
	return rc;
}

static long changed(PGresult *r)
{
	return strtol(PQcmdTuples(r), NULL, 10);
}

/* ---- channels ------------------------------------------------------------ */

int pg_channel_create(struct store *s, const struct notify_channel *ch, int max)
{
	struct pconn *c;
	struct params p = {0};
	PGresult *r = NULL;
	int rc = begin_txn(s, &c);

	p_text(&p, ch->org_id);
	if (!rc)
		rc = xq(c, "SELECT pg_advisory_xact_lock(hashtext('nexra-channels:' || $1))", &p, NULL);
	if (!rc)
		rc = xq(c, "SELECT count(*) FROM notification_channels WHERE org_id = $1 AND "
			   "deleted_at = 0", &p, &r);
	if (!rc && col_i64(r, 0, 0) >= max)
		rc = E(CONFLICT);
	PQclear(r);
	memset(&p, 0, sizeof(p));
	p_text(&p, ch->channel_id);
	p_text(&p, ch->org_id);
	p_text(&p, ch->kind);
	p_text(&p, ch->name);
	p_text(&p, ch->target);
	if (ch->secret_sealed)
		p_bytes(&p, ch->secret_sealed, ch->secret_sealed_len);
	else
		p_text(&p, NULL);
	p_i64(&p, ch->created_at);
	if (!rc)
		rc = xq(c, "INSERT INTO notification_channels (channel_id, org_id, kind, name, "
			   "target, secret_sealed, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
			&p, NULL);
	return end_txn(s, c, rc);
}

int pg_channel_list(struct store *s, const char *org_id, int limit, int offset,
		    int (*cb)(void *ctx, const struct notify_channel *ch), void *ctx)
{
	struct pconn *c;
	struct params p = {0};
	struct notify_channel ch;
	PGresult *r = NULL;
	int rc = pg_conn_get(s, &c);

	p_text(&p, org_id);
	p_limit(&p, limit, offset);
	if (!rc)
		rc = xq(c, "SELECT channel_id, org_id, kind, name, target, created_at "
			   "FROM notification_channels WHERE org_id = $1 AND deleted_at = 0 "
			   "ORDER BY created_at, channel_id LIMIT $2 OFFSET $3", &p, &r);
	for (int i = 0; !rc && i < PQntuples(r); i++) {
		memset(&ch, 0, sizeof(ch));
		col_copy(r, i, 0, ch.channel_id, sizeof(ch.channel_id));
		col_copy(r, i, 1, ch.org_id, sizeof(ch.org_id));
		col_copy(r, i, 2, ch.kind, sizeof(ch.kind));
		col_copy(r, i, 3, ch.name, sizeof(ch.name));
		ch.target = PQgetvalue(r, i, 4);
		ch.created_at = col_i64(r, i, 5);
		rc = cb(ctx, &ch);
	}
	PQclear(r);
	pg_conn_put(s, c);
	return rc;
}

int pg_channel_delete(struct store *s, const char *org_id, const char *channel_id, int64_t now)
{
	struct pconn *c;
	struct params p = {0}, q = {0};
	PGresult *r = NULL;
	int rc = begin_txn(s, &c);

	p_i64(&p, now);
	p_text(&p, org_id);
	p_text(&p, channel_id);
	if (!rc)
		rc = xq(c, "UPDATE notification_channels SET deleted_at = $1 WHERE org_id = $2 AND "
		   "channel_id = $3 AND deleted_at = 0", &p, &r);
	if (!rc && changed(r) == 0)
		rc = E(NOT_FOUND);
	PQclear(r);
	p_text(&q, channel_id);
	if (!rc)
		rc = xq(c, "UPDATE notification_deliveries SET state = 'dead', last_error = "
			   "'channel deleted' WHERE channel_id = $1 AND state = 'pending'", &q, NULL);
	return end_txn(s, c, rc);
}

/* ---- finding what to send ------------------------------------------------ */

int pg_notify_unsent_approvals(struct store *s, int limit,
			       int (*cb)(void *ctx, const struct delegation *d), void *ctx)
{
	struct pconn *c;
	struct params p = {0};
	struct delegation d;
	PGresult *r = NULL;
	int rc = pg_conn_get(s, &c);

	p_i64(&p, limit);
	if (!rc)
		rc = xq(c,
			"SELECT d.delegation_id, d.org_id, d.caller_agent_id, "
			"coalesce(d.callee_agent_id, ''), d.capability, d.budget_cap_micros, "
			"d.created_at, d.task_input, d.policy_result, d.policy_ref, d.expires_at "
			"FROM delegations d WHERE d.status = 'pending_approval' AND EXISTS ("
			" SELECT 1 FROM notification_channels c WHERE c.org_id = d.org_id AND "
			" c.deleted_at = 0 AND c.created_at <= d.created_at AND NOT EXISTS ("
			"  SELECT 1 FROM notification_deliveries n WHERE n.channel_id = c.channel_id"
			"  AND n.event = 'approval_requested' AND n.subject_id = d.delegation_id)) "
			"ORDER BY d.created_at, d.delegation_id LIMIT $1", &p, &r);
	for (int i = 0; !rc && i < PQntuples(r); i++) {
		memset(&d, 0, sizeof(d));
		col_copy(r, i, 0, d.rec.delegation_id, sizeof(d.rec.delegation_id));
		col_copy(r, i, 1, d.rec.org_id, sizeof(d.rec.org_id));
		col_copy(r, i, 2, d.rec.caller_agent_id, sizeof(d.rec.caller_agent_id));
		col_copy(r, i, 3, d.rec.callee_agent_id, sizeof(d.rec.callee_agent_id));
		col_copy(r, i, 4, d.rec.capability, sizeof(d.rec.capability));
		d.rec.budget_cap_micros = col_i64(r, i, 5);
		d.rec.created_at = col_i64(r, i, 6);
		d.task_input = PQgetvalue(r, i, 7);
		d.policy_result = PQgetvalue(r, i, 8);
		col_copy(r, i, 9, d.policy_ref, sizeof(d.policy_ref));
		d.expires_at = col_i64(r, i, 10);
		snprintf(d.status, sizeof(d.status), "pending_approval");
		rc = cb(ctx, &d); /* borrowed strings: not released */
	}
	PQclear(r);
	pg_conn_put(s, c);
	return rc;
}

static int enqueue_on(struct pconn *c, const char *org_id, const char *event,
		      const char *subject_id, int64_t since, const char *payload, int64_t now,
		      int *created)
{
	struct params p = {0};
	PGresult *r = NULL;
	int rc;

	p_text(&p, event);
	p_text(&p, subject_id);
	p_text(&p, payload);
	p_i64(&p, now);
	p_text(&p, org_id);
	p_i64(&p, since);
	rc = xq(c, "INSERT INTO notification_deliveries (delivery_id, org_id, channel_id, event, "
		   "subject_id, payload, next_attempt_at, created_at) "
		   "SELECT 'ntd_' || substr(replace(gen_random_uuid()::text, '-', ''), 1, 24), "
		   "org_id, channel_id, $1, $2, $3, $4, $4 FROM notification_channels "
		   "WHERE org_id = $5 AND deleted_at = 0 AND ($6 < 0 OR created_at <= $6) "
		   "ON CONFLICT (channel_id, event, subject_id) DO NOTHING", &p, &r);
	*created = rc ? 0 : (int)changed(r);
	PQclear(r);
	return rc;
}

int pg_notify_enqueue(struct store *s, const char *org_id, const char *event,
		      const char *subject_id, int64_t since, const char *payload, int64_t now,
		      int *created)
{
	struct pconn *c;
	int rc = pg_conn_get(s, &c);

	*created = 0;
	if (!rc)
		rc = enqueue_on(c, org_id, event, subject_id, since, payload, now, created);
	pg_conn_put(s, c);
	return rc;
}

int pg_budget_alert_candidates(struct store *s, const char *period, int64_t since, int limit,
			       int (*cb)(void *ctx, const char *org_id, int64_t spent,
					 int64_t held),
			       void *ctx)
{
	struct pconn *c;
	struct params p = {0};
	PGresult *r = NULL;
	int rc = pg_conn_get(s, &c);

	p_text(&p, period);
	p_i64(&p, since);
	p_i64(&p, limit);
	if (!rc)
		rc = xq(c,
			"SELECT b.org_id, b.spent_micros, b.held_micros FROM budget_periods b "
			"WHERE b.period = $1 AND b.spent_micros + b.held_micros > 0 "
			"AND NOT EXISTS (SELECT 1 FROM budget_alerts a WHERE a.org_id = b.org_id "
			" AND a.period = b.period) "
			"AND EXISTS (SELECT 1 FROM notification_channels c WHERE c.org_id = b.org_id "
			" AND c.deleted_at = 0) "
			"AND EXISTS (SELECT 1 FROM delegations d WHERE d.org_id = b.org_id "
			" AND d.created_at >= $2) "
			"ORDER BY b.org_id LIMIT $3", &p, &r);
	for (int i = 0; !rc && i < PQntuples(r); i++)
		rc = cb(ctx, PQgetvalue(r, i, 0), col_i64(r, i, 1), col_i64(r, i, 2));
	PQclear(r);
	pg_conn_put(s, c);
	return rc;
}

int pg_budget_alert_record(struct store *s, const struct budget_alert *a, const char *payload,
			   int64_t now, int *created)
{
	struct pconn *c;
	struct params p = {0};
	PGresult *r = NULL;
	int rc = begin_txn(s, &c), n = 0;

	*created = 0;
	p_text(&p, a->org_id);
	p_text(&p, a->period);
	p_i64(&p, a->spent_micros);
	p_i64(&p, a->held_micros);
	p_i64(&p, a->limit_micros);
	p_f64(&p, a->threshold);
	p_i64(&p, now);
	if (!rc)
		rc = xq(c, "INSERT INTO budget_alerts (org_id, period, spent_micros, held_micros, "
		   "limit_micros, threshold, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) "
		   "ON CONFLICT (org_id, period) DO NOTHING", &p, &r);
	*created = !rc && changed(r) == 1;
	PQclear(r);
	if (!rc && *created)
		rc = enqueue_on(c, a->org_id, "budget_alert", a->period, -1, payload, now, &n);
	rc = end_txn(s, c, rc);
	if (rc)
		*created = 0;
	return rc;
}

/* ---- claiming and finishing ---------------------------------------------- */

#define DELIVERY_COLS                                                                      \
	"n.delivery_id, n.org_id, n.channel_id, c.kind, n.event, n.subject_id, n.state, "  \
	"n.attempts, n.next_attempt_at, n.last_error, n.payload, n.created_at, n.sent_at, " \
	"c.target, c.secret_sealed "

/* Call cb for every row of r; secrets (column 14) unsealed from bytea
 * when with_secret. */
static int delivery_rows(PGresult *r, int with_secret,
			 int (*cb)(void *ctx, const struct notify_delivery *d), void *ctx)
{
	struct notify_delivery d;
	int rc = 0;

	for (int i = 0; !rc && i < PQntuples(r); i++) {
		unsigned char *sec = NULL;
		size_t len = 0;

		memset(&d, 0, sizeof(d));
		col_copy(r, i, 0, d.delivery_id, sizeof(d.delivery_id));
		col_copy(r, i, 1, d.org_id, sizeof(d.org_id));
		col_copy(r, i, 2, d.channel_id, sizeof(d.channel_id));
		col_copy(r, i, 3, d.channel_kind, sizeof(d.channel_kind));
		col_copy(r, i, 4, d.event, sizeof(d.event));
		col_copy(r, i, 5, d.subject_id, sizeof(d.subject_id));
		col_copy(r, i, 6, d.state, sizeof(d.state));
		d.attempts = col_i64(r, i, 7);
		d.next_attempt_at = col_i64(r, i, 8);
		d.last_error = PQgetvalue(r, i, 9);
		d.payload = PQgetvalue(r, i, 10);
		d.created_at = col_i64(r, i, 11);
		d.sent_at = col_i64(r, i, 12);
		if (with_secret) {
			d.target = PQgetvalue(r, i, 13);
			if (!PQgetisnull(r, i, 14)) {
				sec = PQunescapeBytea((const unsigned char *)PQgetvalue(r, i, 14),
						      &len);
				if (!sec)
					return E(INTERNAL);
				d.secret_sealed = sec;
				d.secret_sealed_len = len;
			}
		}
		rc = cb(ctx, &d);
		PQfreemem(sec);
	}
	return rc;
}

int pg_notify_claim(struct store *s, int64_t now, int64_t lease_until, int limit,
		    int (*cb)(void *ctx, const struct notify_delivery *d), void *ctx)
{
	struct pconn *c;
	struct params p = {0};
	PGresult *r = NULL;
	int rc = pg_conn_get(s, &c);

	p_i64(&p, now);
	p_i64(&p, lease_until);
	p_i64(&p, limit);
	if (!rc)
		rc = xq(c, "WITH due AS (SELECT delivery_id FROM notification_deliveries "
			   "WHERE state = 'pending' AND next_attempt_at <= $1 "
			   "ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED) "
			   "UPDATE notification_deliveries n SET attempts = n.attempts + 1, "
			   "next_attempt_at = $2 FROM due, notification_channels c "
			   "WHERE n.delivery_id = due.delivery_id AND c.channel_id = n.channel_id "
			   "RETURNING " DELIVERY_COLS, &p, &r);
	pg_conn_put(s, c); /* the claim is committed: no connection held while sending */
	if (!rc)
		rc = delivery_rows(r, 1, cb, ctx);
	PQclear(r);
	return rc;
}

int pg_notify_finish(struct store *s, const char *delivery_id, const char *state,
		     int64_t next_attempt_at, const char *last_error, int64_t now)
{
	struct pconn *c;
	struct params p = {0};
	int rc = pg_conn_get(s, &c);

	p_text(&p, state);
	p_i64(&p, next_attempt_at);
	p_text(&p, last_error ? last_error : "");
	p_i64(&p, now);
	p_text(&p, delivery_id);
	if (!rc)
		rc = xq(c, "UPDATE notification_deliveries SET state = $1, next_attempt_at = $2, "
			   "last_error = $3, sent_at = CASE WHEN $1 = 'sent' THEN $4 ELSE 0 END "
			   "WHERE delivery_id = $5 AND state = 'pending'", &p, NULL);
	pg_conn_put(s, c);
	return rc;
}

int pg_notify_delivery_list(struct store *s, const char *org_id, const char *state, int limit,
			    int offset, int (*cb)(void *ctx, const struct notify_delivery *d),
			    void *ctx)
{
	struct pconn *c;
	struct params p = {0};
	PGresult *r = NULL;
	int rc = pg_conn_get(s, &c);

	p_text(&p, org_id);
	p_text(&p, state);
	p_limit(&p, limit, offset);
	if (!rc)
		rc = xq(c, "SELECT " DELIVERY_COLS "FROM notification_deliveries n JOIN "
			   "notification_channels c ON c.channel_id = n.channel_id "
			   "WHERE n.org_id = $1 AND ($2::text IS NULL OR n.state = $2) "
			   "ORDER BY n.created_at DESC, n.delivery_id DESC LIMIT $3 OFFSET $4",
			&p, &r);
	pg_conn_put(s, c);
	if (!rc)
		rc = delivery_rows(r, 0, cb, ctx);
	PQclear(r);
	return rc;
}
