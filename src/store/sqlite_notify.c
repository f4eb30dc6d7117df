/*
 * Notifications on SQLite (store.h documents each operation). These run at
 * most a few times a second (the notifier's tick, the channel endpoints),
 * so statements are prepared per call rather than cached per connection.
 * Every write takes the process's writer mutex and BEGIN IMMEDIATE, the
 * database's write lock, so a check and its write are one step also across
 * processes: that lock is what makes a claim exclusive.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/sqlite_int.h"
#include "core/banned.h"

#define CLAIM_MAX 256

static int prep(struct sconn *c, const char *sql, sqlite3_stmt **st)
{
	if (sqlite3_prepare_v2(c->db, sql, -1, st, NULL) == SQLITE_OK)
		return 0;
	store_set_error("sqlite: %s", sqlite3_errmsg(c->db));
	*st = NULL;
	return E(INTERNAL);
}

static int exec1(struct sconn *c, const char *sql)
{
	sqlite3_stmt *st;
	int rc = prep(c, sql, &st);

	if (!rc)
		rc = run(c, st);
	sqlite3_finalize(st);
	return rc;
}

/* A write transaction: the writer mutex, a connection, BEGIN IMMEDIATE
 * (*rc its result; end_write must follow either way). */
static struct sconn *begin_write(struct store *s, int *rc)
{
	struct sconn *c;

	pthread_mutex_lock(&ss(s)->writer);
	c = pool_acquire(&ss(s)->pool);
	*rc = exec1(c, "BEGIN IMMEDIATE");
	return c;
}

/* COMMIT when rc is 0 (else ROLLBACK), hand everything back; the first error. */
static int end_write(struct store *s, struct sconn *c, int rc)
{
	if (!rc)
		rc = exec1(c, "COMMIT");
	if (rc)
		exec1(c, "ROLLBACK");
	pool_return(&ss(s)->pool, c);
	pthread_mutex_unlock(&ss(s)->writer);
	return rc;
}

static void bind_limit(sqlite3_stmt *st, int i, int limit, int offset)
{
	sqlite3_bind_int(st, i, limit);
	sqlite3_bind_int(st, i + 1, offset < 0 ? 0 : offset);
}

/* Step through the rows, calling row for each: 0, the callback's stop
 * value, or the error. */
static int each_row(struct sconn *c, sqlite3_stmt *st, int (*row)(sqlite3_stmt *, void *),
		    void *ctx)
{
	int src, rc = 0;

	while (!rc && (src = sqlite3_step(st)) == SQLITE_ROW)
		rc = row(st, ctx);
	if (!rc && src != SQLITE_DONE)
		rc = fail(c, src);
	return rc;
}

/* ---- channels ------------------------------------------------------------ */

int sqlite_channel_create(struct store *s, const struct notify_channel *ch, int max)
{
	sqlite3_stmt *st = NULL;
	int rc, n = 0;
	struct sconn *c = begin_write(s, &rc);

	if (!rc)
		rc = prep(c, "SELECT count(*) FROM notification_channels WHERE org_id = ? AND "
			     "deleted_at = 0", &st);
	if (!rc) {
		bind_text(st, 1, ch->org_id);
		if (sqlite3_step(st) == SQLITE_ROW)
			n = sqlite3_column_int(st, 0);
		sqlite3_finalize(st);
		st = NULL;
	}
	if (!rc && n >= max)
		rc = E(CONFLICT);
	if (!rc)
		rc = prep(c, "INSERT INTO notification_channels (channel_id, org_id, kind, name, "
			     "target, secret_sealed, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)", &st);
	if (!rc) {
		bind_text(st, 1, ch->channel_id);
		bind_text(st, 2, ch->org_id);
		bind_text(st, 3, ch->kind);
		bind_text(st, 4, ch->name);
		bind_text(st, 5, ch->target);
		if (ch->secret_sealed)
			sqlite3_bind_blob(st, 6, ch->secret_sealed, (int)ch->secret_sealed_len,
					  SQLITE_STATIC);
		sqlite3_bind_int64(st, 7, ch->created_at);
		rc = run(c, st);
	}
	sqlite3_finalize(st);
	return end_write(s, c, rc);
}

struct chan_ctx {
	int (*cb)(void *ctx, const struct notify_channel *ch);
	void *ctx;
};

static int chan_row(sqlite3_stmt *st, void *arg)
{
	struct chan_ctx *x = arg;
	struct notify_channel ch;

	memset(&ch, 0, sizeof(ch));
	col_copy(st, 0, ch.channel_id, sizeof(ch.channel_id));
	col_copy(st, 1, ch.org_id, sizeof(ch.org_id));
	col_copy(st, 2, ch.kind, sizeof(ch.kind));
	col_copy(st, 3, ch.name, sizeof(ch.name));
	ch.target = (const char *)sqlite3_column_text(st, 4);
	ch.created_at = sqlite3_column_int64(st, 5);
	return x->cb(x->ctx, &ch);
}

int sqlite_channel_list(struct store *s, const char *org_id, int limit, int offset,
			   int (*cb)(void *ctx, const struct notify_channel *ch), void *ctx)
{
	WITH_CONN(s, c);
	struct chan_ctx x = {cb, ctx};
	sqlite3_stmt *st;
	int rc = prep(c, "SELECT channel_id, org_id, kind, name, target, created_at "
			 "FROM notification_channels WHERE org_id = ? AND deleted_at = 0 "
			 "ORDER BY created_at, channel_id LIMIT ? OFFSET ?", &st);

	if (!rc) {
		bind_text(st, 1, org_id);
		bind_limit(st, 2, limit, offset);
		rc = each_row(c, st, chan_row, &x);
	}
	sqlite3_finalize(st);
	END_CONN(s, c);
	return rc;
}

int sqlite_channel_delete(struct store *s, const char *org_id, const char *channel_id,
			     int64_t now)
{
	sqlite3_stmt *st = NULL;
	int rc;
	struct sconn *c = begin_write(s, &rc);

	if (!rc)
		rc = prep(c, "UPDATE notification_channels SET deleted_at = ? WHERE org_id = ? AND "
		     "channel_id = ? AND deleted_at = 0", &st);
	if (!rc) {
		sqlite3_bind_int64(st, 1, now);
		bind_text(st, 2, org_id);
		bind_text(st, 3, channel_id);
		rc = run(c, st);
		if (!rc && sqlite3_changes(c->db) == 0)
			rc = E(NOT_FOUND);
	}
	sqlite3_finalize(st);
	st = NULL;
	if (!rc)
		rc = prep(c, "UPDATE notification_deliveries SET state = 'dead', "
			     "last_error = 'channel deleted' WHERE channel_id = ? AND state = 'pending'",
			  &st);
	if (!rc) {
		bind_text(st, 1, channel_id);
		rc = run(c, st);
	}
	sqlite3_finalize(st);
	return end_write(s, c, rc);
}

/* ---- finding what to send ------------------------------------------------ */

struct del_ctx {
	int (*cb)(void *ctx, const struct delegation *d);
	void *ctx;
};

static int del_row(sqlite3_stmt *st, void *arg)
{
	struct del_ctx *x = arg;
	struct delegation d;

	memset(&d, 0, sizeof(d));
	col_copy(st, 0, d.rec.delegation_id, sizeof(d.rec.delegation_id));
	col_copy(st, 1, d.rec.org_id, sizeof(d.rec.org_id));
	col_copy(st, 2, d.rec.caller_agent_id, sizeof(d.rec.caller_agent_id));
	col_copy(st, 3, d.rec.callee_agent_id, sizeof(d.rec.callee_agent_id));
	col_copy(st, 4, d.rec.capability, sizeof(d.rec.capability));
	d.rec.budget_cap_micros = sqlite3_column_int64(st, 5);
	d.rec.created_at = sqlite3_column_int64(st, 6);
	d.task_input = (char *)sqlite3_column_text(st, 7);
	d.policy_result = (char *)sqlite3_column_text(st, 8);
	col_copy(st, 9, d.policy_ref, sizeof(d.policy_ref));
	d.expires_at = sqlite3_column_int64(st, 10);
	snprintf(d.status, sizeof(d.status), "pending_approval");
	return x->cb(x->ctx, &d); /* borrowed strings: not released */
}

int sqlite_notify_unsent_approvals(struct store *s, int limit,
			       int (*cb)(void *ctx, const struct delegation *d), void *ctx)
{
	WITH_CONN(s, c);
	struct del_ctx x = {cb, ctx};
	sqlite3_stmt *st;
	int rc = prep(c,
		      "SELECT d.delegation_id, d.org_id, d.caller_agent_id, "
		      "coalesce(d.callee_agent_id, ''), d.capability, d.budget_cap_micros, "
		      "d.created_at, d.task_input, d.policy_result, d.policy_ref, d.expires_at "
		      "FROM delegations d WHERE d.status = 'pending_approval' AND EXISTS ("
		      " SELECT 1 FROM notification_channels c WHERE c.org_id = d.org_id AND "
		      " c.deleted_at = 0 AND c.created_at <= d.created_at AND NOT EXISTS ("
		      "  SELECT 1 FROM notification_deliveries n WHERE n.channel_id = c.channel_id"
		      "  AND n.event = 'approval_requested' AND n.subject_id = d.delegation_id)) "
		      "ORDER BY d.created_at, d.delegation_id LIMIT ?", &st);

	if (!rc) {
		sqlite3_bind_int(st, 1, limit);
		rc = each_row(c, st, del_row, &x);
	}
	sqlite3_finalize(st);
	END_CONN(s, c);
	return rc;
}

/* The enqueue statement, inside a write transaction. */
static int enqueue_on(struct sconn *c, const char *org_id, const char *event,
		      const char *subject_id, int64_t since, const char *payload, int64_t now,
		      int *created)
{
	sqlite3_stmt *st;
	int rc = prep(c, "INSERT OR IGNORE INTO notification_deliveries (delivery_id, org_id, "
			 "channel_id, event, subject_id, payload, next_attempt_at, created_at) "
			 "SELECT 'ntd_' || lower(hex(randomblob(12))), org_id, channel_id, ?, ?, ?, "
			 "?, ? FROM notification_channels WHERE org_id = ? AND deleted_at = 0 AND "
			 "(? < 0 OR created_at <= ?)", &st);

	*created = 0;
	if (!rc) {
		bind_text(st, 1, event);
		bind_text(st, 2, subject_id);
		bind_text(st, 3, payload);
		sqlite3_bind_int64(st, 4, now);
		sqlite3_bind_int64(st, 5, now);
		bind_text(st, 6, org_id);
		sqlite3_bind_int64(st, 7, since);
		sqlite3_bind_int64(st, 8, since);
		rc = run(c, st);
		if (!rc)
			*created = sqlite3_changes(c->db);
	}
	sqlite3_finalize(st);
	return rc;
}

int sqlite_notify_enqueue(struct store *s, const char *org_id, const char *event,
		      const char *subject_id, int64_t since, const char *payload, int64_t now,
		      int *created)
{
	int rc;
	struct sconn *c = begin_write(s, &rc);

	*created = 0;
	if (!rc)
		rc = enqueue_on(c, org_id, event, subject_id, since, payload, now, created);
	return end_write(s, c, rc);
}

struct cand_ctx {
	int (*cb)(void *ctx, const char *org_id, int64_t spent, int64_t held);
	void *ctx;
};

static int cand_row(sqlite3_stmt *st, void *arg)
{
	struct cand_ctx *x = arg;
	char org[ID_MAX];

	col_copy(st, 0, org, sizeof(org));
	return x->cb(x->ctx, org, sqlite3_column_int64(st, 1), sqlite3_column_int64(st, 2));
}

int sqlite_budget_alert_candidates(struct store *s, const char *period, int64_t since, int limit,
			       int (*cb)(void *ctx, const char *org_id, int64_t spent,
					 int64_t held),
			       void *ctx)
{
	WITH_CONN(s, c);
	struct cand_ctx x = {cb, ctx};
	sqlite3_stmt *st;
	int rc = prep(c,
		      "SELECT b.org_id, b.spent_micros, b.held_micros FROM budget_periods b "
		      "WHERE b.period = ? AND b.spent_micros + b.held_micros > 0 "
		      "AND NOT EXISTS (SELECT 1 FROM budget_alerts a WHERE a.org_id = b.org_id "
		      " AND a.period = b.period) "
		      "AND EXISTS (SELECT 1 FROM notification_channels c WHERE c.org_id = b.org_id "
		      " AND c.deleted_at = 0) "
		      "AND EXISTS (SELECT 1 FROM delegations d WHERE d.org_id = b.org_id "
		      " AND d.created_at >= ?) "
		      "ORDER BY b.org_id LIMIT ?", &st);

	if (!rc) {
		bind_text(st, 1, period);
		sqlite3_bind_int64(st, 2, since);
		sqlite3_bind_int(st, 3, limit);
		rc = each_row(c, st, cand_row, &x);
	}
	sqlite3_finalize(st);
	END_CONN(s, c);
	return rc;
}

int sqlite_budget_alert_record(struct store *s, const struct budget_alert *a, const char *payload,
			   int64_t now, int *created)
{
	sqlite3_stmt *st = NULL;
	int rc, n = 0;
	struct sconn *c = begin_write(s, &rc);

	*created = 0;
	if (!rc)
		rc = prep(c, "INSERT OR IGNORE INTO budget_alerts (org_id, period, spent_micros, "
			     "held_micros, limit_micros, threshold, created_at) VALUES "
			     "(?, ?, ?, ?, ?, ?, ?)", &st);
	if (!rc) {
		bind_text(st, 1, a->org_id);
		bind_text(st, 2, a->period);
		sqlite3_bind_int64(st, 3, a->spent_micros);
		sqlite3_bind_int64(st, 4, a->held_micros);
		sqlite3_bind_int64(st, 5, a->limit_micros);
		sqlite3_bind_double(st, 6, a->threshold);
		sqlite3_bind_int64(st, 7, now);
		rc = run(c, st);
		*created = !rc && sqlite3_changes(c->db) == 1;
	}
	sqlite3_finalize(st);
	if (!rc && *created)
		rc = enqueue_on(c, a->org_id, "budget_alert", a->period, -1, payload, now, &n);
	rc = end_write(s, c, rc);
	if (rc)
		*created = 0;
	return rc;
}

/* ---- claiming and finishing ---------------------------------------------- */

static void delivery_cols(sqlite3_stmt *st, struct notify_delivery *d)
{
	memset(d, 0, sizeof(*d));
	col_copy(st, 0, d->delivery_id, sizeof(d->delivery_id));
	col_copy(st, 1, d->org_id, sizeof(d->org_id));
	col_copy(st, 2, d->channel_id, sizeof(d->channel_id));
	col_copy(st, 3, d->channel_kind, sizeof(d->channel_kind));
	col_copy(st, 4, d->event, sizeof(d->event));
	col_copy(st, 5, d->subject_id, sizeof(d->subject_id));
	col_copy(st, 6, d->state, sizeof(d->state));
	d->attempts = sqlite3_column_int64(st, 7);
	d->next_attempt_at = sqlite3_column_int64(st, 8);
	d->last_error = (const char *)sqlite3_column_text(st, 9);
	d->payload = (const char *)sqlite3_column_text(st, 10);
	d->created_at = sqlite3_column_int64(st, 11);
	d->sent_at = sqlite3_column_int64(st, 12);
	d->target = (const char *)sqlite3_column_text(st, 13);
	d->secret_sealed = sqlite3_column_blob(st, 14);
	d->secret_sealed_len = (size_t)sqlite3_column_bytes(st, 14);
}

#define DELIVERY_COLS                                                                      \
	"n.delivery_id, n.org_id, n.channel_id, c.kind, n.event, n.subject_id, n.state, "  \
	"n.attempts, n.next_attempt_at, n.last_error, n.payload, n.created_at, n.sent_at, " \
	"c.target, c.secret_sealed "

/*
 * Claims: the due rows' ids are read and pushed out to lease_until under
 * the write lock, committed, and only then read back with their channels
 * for the callback (outside the lock: sending takes long).
 */
int sqlite_notify_claim(struct store *s, int64_t now, int64_t lease_until, int limit,
		    int (*cb)(void *ctx, const struct notify_delivery *d), void *ctx)
{
	char (*ids)[ID_MAX] = calloc(CLAIM_MAX, sizeof(*ids));
	struct notify_delivery d;
	sqlite3_stmt *st = NULL;
	int rc, n = 0, src;

	if (!ids)
		return E(INTERNAL);
	if (limit > CLAIM_MAX)
		limit = CLAIM_MAX;
	{
		struct sconn *c = begin_write(s, &rc);

		if (!rc)
			rc = prep(c, "UPDATE notification_deliveries SET attempts = attempts + 1, "
				     "next_attempt_at = ? WHERE delivery_id IN (SELECT delivery_id "
				     "FROM notification_deliveries WHERE state = 'pending' AND "
				     "next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ?) "
				     "RETURNING delivery_id", &st);
		if (!rc) {
			sqlite3_bind_int64(st, 1, lease_until);
			sqlite3_bind_int64(st, 2, now);
			sqlite3_bind_int(st, 3, limit);
			while ((src = sqlite3_step(st)) == SQLITE_ROW && n < CLAIM_MAX)
				col_copy(st, 0, ids[n++], ID_MAX);
			if (src != SQLITE_DONE && src != SQLITE_ROW)
				rc = fail(c, src);
		}
		sqlite3_finalize(st);
		st = NULL;
		rc = end_write(s, c, rc);
	}
	if (!rc && n) {
		WITH_CONN(s, c);
		rc = prep(c, "SELECT " DELIVERY_COLS "FROM notification_deliveries n JOIN "
			     "notification_channels c ON c.channel_id = n.channel_id "
			     "WHERE n.delivery_id = ?", &st);
		for (int i = 0; !rc && i < n; i++) {
			bind_text(st, 1, ids[i]);
			if (sqlite3_step(st) == SQLITE_ROW) {
				delivery_cols(st, &d);
				rc = cb(ctx, &d);
			}
			done(st);
		}
		sqlite3_finalize(st);
		END_CONN(s, c);
	}
	free(ids);
	return rc;
}

int sqlite_notify_finish(struct store *s, const char *delivery_id, const char *state,
		     int64_t next_attempt_at, const char *last_error, int64_t now)
{
	sqlite3_stmt *st = NULL;
	int rc;
	struct sconn *c = begin_write(s, &rc);

	if (!rc)
		rc = prep(c, "UPDATE notification_deliveries SET state = ?, next_attempt_at = ?, "
			     "last_error = ?, sent_at = CASE WHEN ? = 'sent' THEN ? ELSE 0 END "
			     "WHERE delivery_id = ? AND state = 'pending'", &st);
	if (!rc) {
		bind_text(st, 1, state);
		sqlite3_bind_int64(st, 2, next_attempt_at);
		bind_text(st, 3, last_error ? last_error : "");
		bind_text(st, 4, state);
		sqlite3_bind_int64(st, 5, now);
		bind_text(st, 6, delivery_id);
		rc = run(c, st);
	}
	sqlite3_finalize(st);
	return end_write(s, c, rc);
}

struct dl_ctx {
	int (*cb)(void *ctx, const struct notify_delivery *d);
	void *ctx;
};

static int dl_row(sqlite3_stmt *st, void *arg)
{
	struct dl_ctx *x = arg;
	struct notify_delivery d;

	delivery_cols(st, &d);
	d.target = NULL; /* lists carry no channel secrets */
	d.secret_sealed = NULL;
	d.secret_sealed_len = 0;
	return x->cb(x->ctx, &d);
}

int sqlite_notify_delivery_list(struct store *s, const char *org_id, const char *state, int limit,
			    int offset, int (*cb)(void *ctx, const struct notify_delivery *d),
			    void *ctx)
{
	WITH_CONN(s, c);
	struct dl_ctx x = {cb, ctx};
	sqlite3_stmt *st;
	int rc = prep(c, "SELECT " DELIVERY_COLS "FROM notification_deliveries n JOIN "
			 "notification_channels c ON c.channel_id = n.channel_id "
			 "WHERE n.org_id = ? AND (? IS NULL OR n.state = ?) "
			 "ORDER BY n.created_at DESC, n.delivery_id DESC LIMIT ? OFFSET ?", &st);

	if (!rc) {
		bind_text(st, 1, org_id);
		bind_text(st, 2, state);
		bind_text(st, 3, state);
		bind_limit(st, 4, limit, offset);
		rc = each_row(c, st, dl_row, &x);
	}
	sqlite3_finalize(st);
	END_CONN(s, c);
	return rc;
}
