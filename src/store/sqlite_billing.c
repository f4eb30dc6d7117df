/*
 * Billing delivery on SQLite (store.h "Billing delivery"): the orgs' Stripe
 * settings and the outbox rows' lease, state and listing. Split from
 * sqlite.c, whose connections and helpers it shares through sqlite_int.h.
 *
 * A claim is one UPDATE ... RETURNING under BEGIN IMMEDIATE: SQLite has a
 * single writer per database file, so the rows it selects and the lease it
 * writes are one atomic step for every thread and process on the file. It
 * is preceded by a plain read that finds whether anything is due at all,
 * so an idle dispatcher polls without ever taking the write lock (or the
 * process's writer mutex the ledger uses).
 */
#include "store/sqlite_int.h"

#include "core/banned.h"

enum bstmt {
	B_BEGIN, B_COMMIT, B_ROLLBACK,
	B_SET_PUT, B_SET_GET, B_SET_DEL,
	B_DUE, B_CLAIM, B_SENT, B_RETRY, B_DEAD, B_RELEASE,
	B_LIST, B_REVIVE, B_GET, B_COUNT,
	B__COUNT
};

_Static_assert(B__COUNT <= SQLITE_BILLING_STMTS, "raise SQLITE_BILLING_STMTS");

/* Every column of an event, in read_event's order. */
#define EV_COLS                                                                            \
	"billing_id, org_id, delegation_id, caller_agent_id, callee_agent_id, amount_micros, " \
	"currency, period, state, attempts, next_attempt_at, last_error, created_at, sent_at"

/* What is due: pending, its time come, no lease running, its org connected. */
#define EV_DUE                                                                            \
	"e.state = 'pending' AND e.next_attempt_at <= ?1 AND e.lease_until <= ?1 "         \
	"AND EXISTS (SELECT 1 FROM billing_settings s WHERE s.org_id = e.org_id "          \
	"AND s.mode = 'live')"

static const char *const bsql[B__COUNT] = {
	[B_BEGIN] = "BEGIN IMMEDIATE",
	[B_COMMIT] = "COMMIT",
	[B_ROLLBACK] = "ROLLBACK",
	[B_SET_PUT] = "INSERT INTO billing_settings (org_id, mode, secret_sealed, customer_id, "
		      "meter_event_name, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6) "
		      "ON CONFLICT (org_id, mode) DO UPDATE SET secret_sealed = excluded.secret_sealed, "
		      "customer_id = excluded.customer_id, "
		      "meter_event_name = excluded.meter_event_name, updated_at = excluded.updated_at",
	[B_SET_GET] = "SELECT secret_sealed, customer_id, meter_event_name, updated_at "
		      "FROM billing_settings WHERE org_id = ?1 AND mode = ?2",
	[B_SET_DEL] = "DELETE FROM billing_settings WHERE org_id = ?1 AND mode = ?2",
	[B_DUE] = "SELECT 1 FROM billing_events e WHERE " EV_DUE " LIMIT 1",
	[B_CLAIM] = "UPDATE billing_events SET lease_owner = ?2, lease_until = ?3, "
		    "attempts = attempts + 1 WHERE billing_id IN (SELECT e.billing_id "
		    "FROM billing_events e WHERE " EV_DUE
		    " ORDER BY e.next_attempt_at, e.billing_id LIMIT ?4) RETURNING " EV_COLS,
	[B_SENT] = "UPDATE billing_events SET state = 'sent', sent_at = ?2, lease_until = 0, "
		   "lease_owner = '' WHERE billing_id = ?1 AND state = 'pending'",
	[B_RETRY] = "UPDATE billing_events SET next_attempt_at = ?3, last_error = ?4, "
		    "lease_until = 0, lease_owner = '' "
		    "WHERE billing_id = ?1 AND state = 'pending' AND lease_owner = ?2",
	[B_DEAD] = "UPDATE billing_events SET state = 'dead', last_error = ?4, lease_until = 0, "
		   "lease_owner = '' WHERE billing_id = ?1 AND state = 'pending' AND lease_owner = ?2",
	[B_RELEASE] = "UPDATE billing_events SET lease_until = 0, lease_owner = '' "
		      "WHERE billing_id = ?1 AND state = 'pending' AND lease_owner = ?2",
	[B_LIST] = "SELECT " EV_COLS " FROM billing_events WHERE org_id = ?1 "
		   "AND (?2 IS NULL OR state = ?2) "
		   "ORDER BY created_at DESC, billing_id DESC LIMIT ?3 OFFSET ?4",
	[B_REVIVE] = "UPDATE billing_events SET state = 'pending', next_attempt_at = ?3, "
		     "lease_until = 0, lease_owner = '' "
		     "WHERE org_id = ?1 AND billing_id = ?2 AND state = 'dead'",
	[B_GET] = "SELECT " EV_COLS " FROM billing_events WHERE org_id = ?1 AND billing_id = ?2",
	[B_COUNT] = "SELECT count(*) FROM billing_events WHERE state = ?1",
};

/* The statement id on c, prepared on first use; NULL on error. */
static sqlite3_stmt *bstmt(struct sconn *c, enum bstmt id)
{
	if (!c->billing[id] && sqlite3_prepare_v3(c->db, bsql[id], -1, SQLITE_PREPARE_PERSISTENT,
						  &c->billing[id], NULL)) {
		store_set_error("sqlite prepare: %s", sqlite3_errmsg(c->db));
		return NULL;
	}
	return c->billing[id];
}

static int brun(struct sconn *c, enum bstmt id)
{
	sqlite3_stmt *st = bstmt(c, id);

	return st ? run(c, st) : E(INTERNAL);
}

/* End the transaction begun on c: COMMIT when rc is 0, else ROLLBACK.
 * Returns rc, or COMMIT's error. */
static int end_txn(struct sconn *c, int rc)
{
	if (!rc)
		rc = brun(c, B_COMMIT);
	if (rc && !sqlite3_get_autocommit(c->db))
		brun(c, B_ROLLBACK);
	return rc;
}

static void read_event(sqlite3_stmt *st, struct billing_event *e)
{
	col_copy(st, 0, e->billing_id, sizeof(e->billing_id));
	col_copy(st, 1, e->org_id, sizeof(e->org_id));
	col_copy(st, 2, e->delegation_id, sizeof(e->delegation_id));
	col_copy(st, 3, e->caller_agent_id, sizeof(e->caller_agent_id));
	col_copy(st, 4, e->callee_agent_id, sizeof(e->callee_agent_id));
	e->amount_micros = sqlite3_column_int64(st, 5);
	col_copy(st, 6, e->currency, sizeof(e->currency));
	col_copy(st, 7, e->period, sizeof(e->period));
	col_copy(st, 8, e->state, sizeof(e->state));
	e->attempts = sqlite3_column_int64(st, 9);
	e->next_attempt_at = sqlite3_column_int64(st, 10);
	col_copy(st, 11, e->last_error, sizeof(e->last_error));
	e->created_at = sqlite3_column_int64(st, 12);
	e->sent_at = sqlite3_column_int64(st, 13);
}

int sqlite_billing_settings_put(struct store *s, const struct billing_settings *b)
{
	WITH_WRITER(s, c);
	sqlite3_stmt *st = bstmt(c, B_SET_PUT);
	int rc = E(INTERNAL);

	if (st) {
		bind_text(st, 1, b->org_id);
		bind_text(st, 2, b->mode);
		sqlite3_bind_blob(st, 3, b->secret_sealed, (int)b->secret_sealed_len, SQLITE_STATIC);
		bind_text(st, 4, b->customer_id);
		bind_text(st, 5, b->meter_event_name);
		sqlite3_bind_int64(st, 6, b->updated_at);
		rc = run(c, st);
	}
	END_WRITER(s, c);
	return rc;
}

int sqlite_billing_settings_get(struct store *s, const char *org_id, const char *mode,
				struct billing_settings *out)
{
	WITH_CONN(s, c);
	sqlite3_stmt *st = bstmt(c, B_SET_GET);
	int rc = E(INTERNAL), src;

	memset(out, 0, sizeof(*out));
	if (!st)
		goto out;
	bind_text(st, 1, org_id);
	bind_text(st, 2, mode);
	src = sqlite3_step(st);
	if (src == SQLITE_ROW) {
		int n = sqlite3_column_bytes(st, 0);

		snprintf(out->org_id, sizeof(out->org_id), "%s", org_id);
		snprintf(out->mode, sizeof(out->mode), "%s", mode);
		out->secret_sealed = malloc(n > 0 ? (size_t)n : 1);
		rc = out->secret_sealed ? 0 : E(INTERNAL);
		if (!rc) {
			memcpy(out->secret_sealed, sqlite3_column_blob(st, 0), (size_t)n);
			out->secret_sealed_len = (size_t)n;
			col_copy(st, 1, out->customer_id, sizeof(out->customer_id));
			col_copy(st, 2, out->meter_event_name, sizeof(out->meter_event_name));
			out->updated_at = sqlite3_column_int64(st, 3);
		}
	} else {
		rc = src == SQLITE_DONE ? E(NOT_FOUND) : fail(c, src);
	}
	done(st);
out:
	END_CONN(s, c);
	return rc;
}

int sqlite_billing_settings_delete(struct store *s, const char *org_id, const char *mode)
{
	WITH_WRITER(s, c);
	sqlite3_stmt *st = bstmt(c, B_SET_DEL);
	int rc = E(INTERNAL);

	if (st) {
		bind_text(st, 1, org_id);
		bind_text(st, 2, mode);
		rc = run(c, st);
		if (!rc && sqlite3_changes(c->db) == 0)
			rc = E(NOT_FOUND);
	}
	END_WRITER(s, c);
	return rc;
}

/* The first column of statement id's first row as *out (0 without a
 * row), its parameter ?1 bound to text, or to num when text is NULL. */
static int scalar(struct store *s, enum bstmt id, const char *text, int64_t num, int64_t *out)
{
	WITH_CONN(s, c);
	sqlite3_stmt *st = bstmt(c, id);
	int rc = E(INTERNAL), src;

	*out = 0;
	if (st) {
		if (text)
			bind_text(st, 1, text);
		else
			sqlite3_bind_int64(st, 1, num);
		src = sqlite3_step(st);
		if (src == SQLITE_ROW)
			*out = sqlite3_column_int64(st, 0);
		rc = src == SQLITE_ROW || src == SQLITE_DONE ? 0 : fail(c, src);
		done(st);
	}
	END_CONN(s, c);
	return rc;
}

int sqlite_billing_claim(struct store *s, int64_t now, int64_t lease_until, const char *owner,
			 struct billing_event *out, int max, int *n)
{
	sqlite3_stmt *st;
	int64_t due = 0;
	int rc = scalar(s, B_DUE, NULL, now, &due), src;

	*n = 0;
	if (rc || !due)
		return rc;
	WITH_WRITER(s, c);
	rc = brun(c, B_BEGIN);
	st = rc ? NULL : bstmt(c, B_CLAIM);
	if (!rc && !st)
		rc = E(INTERNAL);
	if (!rc) {
		sqlite3_bind_int64(st, 1, now);
		bind_text(st, 2, owner);
		sqlite3_bind_int64(st, 3, lease_until);
		sqlite3_bind_int(st, 4, max);
		while ((src = sqlite3_step(st)) == SQLITE_ROW && *n < max)
			read_event(st, &out[(*n)++]);
		if (src != SQLITE_DONE && src != SQLITE_ROW)
			rc = fail(c, src);
		done(st);
	}
	rc = end_txn(c, rc);
	if (rc)
		*n = 0;
	END_WRITER(s, c);
	return rc;
}

static int finish_one(struct sconn *c, const char *owner, const struct billing_result *r,
		      int64_t now)
{
	static const enum bstmt by_outcome[] = {
		[BILLING_SENT] = B_SENT, [BILLING_RETRY] = B_RETRY,
		[BILLING_DEAD] = B_DEAD, [BILLING_RELEASE] = B_RELEASE,
	};
	sqlite3_stmt *st = bstmt(c, by_outcome[r->outcome]);

	if (!st)
		return E(INTERNAL);
	bind_text(st, 1, r->billing_id);
	if (r->outcome == BILLING_SENT) {
		sqlite3_bind_int64(st, 2, now);
	} else {
		bind_text(st, 2, owner);
		if (r->outcome == BILLING_RETRY)
			sqlite3_bind_int64(st, 3, r->next_attempt_at);
		if (r->outcome != BILLING_RELEASE)
			bind_text(st, 4, r->error ? r->error : "");
	}
	return run(c, st);
}

int sqlite_billing_finish(struct store *s, const char *owner, const struct billing_result *res,
			  size_t n, int64_t now)
{
	int rc;

	if (n == 0)
		return 0;
	WITH_WRITER(s, c);
	rc = brun(c, B_BEGIN);
	for (size_t i = 0; !rc && i < n; i++)
		rc = finish_one(c, owner, &res[i], now);
	rc = end_txn(c, rc);
	END_WRITER(s, c);
	return rc;
}

int sqlite_billing_list(struct store *s, const char *org_id, const char *state, int limit,
			int offset, int (*cb)(void *ctx, const struct billing_event *e), void *ctx)
{
	WITH_CONN(s, c);
	sqlite3_stmt *st = bstmt(c, B_LIST);
	struct billing_event e;
	int rc = E(INTERNAL), src = SQLITE_DONE;

	if (!st)
		goto out;
	bind_text(st, 1, org_id);
	bind_text(st, 2, state);
	sqlite3_bind_int(st, 3, limit);
	sqlite3_bind_int(st, 4, offset);
	rc = 0;
	while (!rc && (src = sqlite3_step(st)) == SQLITE_ROW) {
		read_event(st, &e);
		rc = cb(ctx, &e);
	}
	if (!rc && src != SQLITE_DONE)
		rc = fail(c, src);
	done(st);
out:
	END_CONN(s, c);
	return rc;
}

/* The org's event on c: 0, NOT_FOUND or an error. */
static int get_event(struct sconn *c, const char *org_id, const char *billing_id,
		     struct billing_event *out)
{
	sqlite3_stmt *st = bstmt(c, B_GET);
	int rc, src;

	if (!st)
		return E(INTERNAL);
	bind_text(st, 1, org_id);
	bind_text(st, 2, billing_id);
	src = sqlite3_step(st);
	if (src == SQLITE_ROW)
		read_event(st, out);
	rc = src == SQLITE_ROW ? 0 : src == SQLITE_DONE ? E(NOT_FOUND) : fail(c, src);
	done(st);
	return rc;
}

int sqlite_billing_retry(struct store *s, const char *org_id, const char *billing_id,
			 int64_t now, struct billing_event *out)
{
	WITH_WRITER(s, c);
	sqlite3_stmt *st;
	int rc = brun(c, B_BEGIN), changed = 0;

	st = rc ? NULL : bstmt(c, B_REVIVE);
	if (!rc && !st)
		rc = E(INTERNAL);
	if (!rc) {
		bind_text(st, 1, org_id);
		bind_text(st, 2, billing_id);
		sqlite3_bind_int64(st, 3, now);
		rc = run(c, st);
		changed = sqlite3_changes(c->db);
	}
	if (!rc)
		rc = get_event(c, org_id, billing_id, out);
	if (!rc && !changed)
		rc = E(CONFLICT);
	rc = end_txn(c, rc);
	END_WRITER(s, c);
	return rc;
}

int sqlite_billing_count(struct store *s, const char *state, int64_t *n)
{
	return scalar(s, B_COUNT, state, 0, n);
}
