/*
 * Internals shared by the files of the SQLite backend (sqlite.c: the
 * connection pool, the core operations and the function table;
 * sqlite_ledger.c: the delegation ledger; sqlite_billing.c: billing
 * delivery). Nothing outside src/store/sqlite* includes this.
 *
 * A connection carries three tables of prepared statements: sqlite.c's
 * (indexed by its private enum, a flexible array sized when the connection
 * is allocated), sqlite_ledger.c's (SQLITE_LEDGER_STMTS slots) and
 * sqlite_billing.c's (SQLITE_BILLING_STMTS). All are
 * prepared on first use with SQLITE_PREPARE_PERSISTENT and finalized when the
 * connection closes.
 */
#ifndef NEXRA_STORE_SQLITE_INT_H
#define NEXRA_STORE_SQLITE_INT_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "store/keycache.h"
#include "store/pool.h"
#include "store/store.h"

#define SQLITE_LEDGER_STMTS 32 /* statement slots of sqlite_ledger.c */
#define SQLITE_DISC_STMTS 8    /* statement slots of sqlite_discovery.c */
#define SQLITE_BILLING_STMTS 16 /* statement slots of sqlite_billing.c */

struct sconn {
	sqlite3 *db;
	sqlite3_stmt *ledger[SQLITE_LEDGER_STMTS];
	sqlite3_stmt *disc[SQLITE_DISC_STMTS];
	sqlite3_stmt *billing[SQLITE_BILLING_STMTS];
	sqlite3_stmt *st[]; /* sqlite.c's statements (its enum stmt) */
};

struct sqlite_store {
	struct store base; /* first: struct store * converts back */
	struct pool pool;
	pthread_mutex_t writer; /* one writer at a time in this process */
	struct rowcache cache;
};

static inline struct sqlite_store *ss(struct store *s)
{
	return (struct sqlite_store *)s;
}

#define WITH_CONN(s, c) struct sconn *c = pool_acquire(&ss(s)->pool)
#define END_CONN(s, c) pool_return(&ss(s)->pool, c)
/* Writers: the process-wide writer mutex, then a connection. */
#define WITH_WRITER(s, c)                                                              \
	pthread_mutex_lock(&ss(s)->writer);                                            \
	WITH_CONN(s, c)
#define END_WRITER(s, c)                                                               \
	END_CONN(s, c);                                                                \
	pthread_mutex_unlock(&ss(s)->writer)

/* The statement in *slot, prepared from sql on first use; NULL on error. */
static inline sqlite3_stmt *prepared(struct sconn *c, sqlite3_stmt **slot, const char *sql)
{
	if (!*slot && sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, slot, NULL)) {
		store_set_error("sqlite prepare: %s", sqlite3_errmsg(c->db));
		return NULL;
	}
	return *slot;
}

/* Reset a statement after use and drop its bindings. */
static inline void done(sqlite3_stmt *st)
{
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

/* Map a step/exec result to our errors. */
static inline int fail(struct sconn *c, int src)
{
	if ((src & 0xff) == SQLITE_CONSTRAINT)
		return E(CONFLICT);
	store_set_error("sqlite: %s", sqlite3_errmsg(c->db));
	return E(INTERNAL);
}

/* Run a statement that returns no rows. */
static inline int run(struct sconn *c, sqlite3_stmt *st)
{
	int src = sqlite3_step(st);
	int rc = (src == SQLITE_DONE || src == SQLITE_ROW) ? 0 : fail(c, src);

	done(st);
	return rc;
}

/* s bound as text (borrowed until the statement is reset), NULL as NULL. */
static inline void bind_text(sqlite3_stmt *st, int i, const char *s)
{
	if (s)
		sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, i);
}

static inline void col_copy(sqlite3_stmt *st, int i, char *out, size_t outsz)
{
	const unsigned char *t = sqlite3_column_text(st, i);

	snprintf(out, outsz, "%s", t ? (const char *)t : "");
}

/* A malloc'd copy of a text column; NULL for NULL (or out of memory). */
static inline char *col_dup(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);

	return t ? strdup((const char *)t) : NULL;
}

/* The delegation ledger (sqlite_ledger.c); store.h documents each. */
int sqlite_ledger_apply(struct store *s, struct ledger_op *ops, size_t n);
int sqlite_delegation_get(struct store *s, const char *org_id, const char *delegation_id,
			  struct delegation *out);
int sqlite_delegation_list(struct store *s, const struct delegation_filter *f, int limit,
			   int offset, int (*cb)(void *ctx, const struct delegation *d), void *ctx);
int sqlite_delegation_overdue(struct store *s, int64_t before, int64_t now, int limit,
			      int (*cb)(void *ctx, const struct delegation *d), void *ctx);
int sqlite_budget_get(struct store *s, const char *org_id, const char *period,
		      int64_t *spent_micros, int64_t *held_micros);

/* Discovery (sqlite_discovery.c); store.h documents each. */
int sqlite_agent_stamp(struct store *s, int64_t *stamp);
int sqlite_agent_changes(struct store *s, int64_t after, int limit,
			 int (*cb)(void *ctx, const struct agent_brief *a), void *ctx);
int sqlite_agent_search(struct store *s, const struct agent_search *q, int limit,
			int (*cb)(void *ctx, const char *org_id, const char *agent_id,
				  int64_t row, double score),
			void *ctx);
int sqlite_embedding_put(struct store *s, const char *org_id, const char *agent_id,
			 const char *embedding_id, const char *model, const float *vec, int dim,
			 int64_t now);

/* Notifications (sqlite_notify.c); store.h documents each. */
int sqlite_channel_create(struct store *s, const struct notify_channel *ch, int max);
int sqlite_channel_list(struct store *s, const char *org_id, int limit, int offset,
			int (*cb)(void *ctx, const struct notify_channel *ch), void *ctx);
int sqlite_channel_delete(struct store *s, const char *org_id, const char *channel_id,
			  int64_t now);
int sqlite_notify_unsent_approvals(struct store *s, int limit,
				   int (*cb)(void *ctx, const struct delegation *d), void *ctx);
int sqlite_notify_enqueue(struct store *s, const char *org_id, const char *event,
			  const char *subject_id, int64_t since, const char *payload, int64_t now,
			  int *created);
int sqlite_budget_alert_candidates(struct store *s, const char *period, int64_t since,
				   int limit,
				   int (*cb)(void *ctx, const char *org_id, int64_t spent,
					     int64_t held),
				   void *ctx);
int sqlite_budget_alert_record(struct store *s, const struct budget_alert *a,
			       const char *payload, int64_t now, int *created);
int sqlite_notify_claim(struct store *s, int64_t now, int64_t lease_until, int limit,
			int (*cb)(void *ctx, const struct notify_delivery *d), void *ctx);
int sqlite_notify_finish(struct store *s, const char *delivery_id, const char *state,
			 int64_t next_attempt_at, const char *last_error, int64_t now);
int sqlite_notify_delivery_list(struct store *s, const char *org_id, const char *state,
				int limit, int offset,
				int (*cb)(void *ctx, const struct notify_delivery *d), void *ctx);
/* The verifiable audit log (sqlite_audit.c); store.h documents each. */
int sqlite_audit_extend(struct store *s, const char *org_id, int max, int64_t now,
			int64_t *size, int *appended);
int sqlite_audit_sizes(struct store *s, const char *org_id, int64_t *size, int64_t *seq);
int sqlite_audit_nodes(struct store *s, const char *org_id, size_t n, const int *level,
		       const uint64_t *idx, unsigned char (*out)[32]);
int sqlite_audit_list(struct store *s, const struct audit_filter *f, int limit, int offset,
		      int (*cb)(void *ctx, const struct audit_entry *e), void *ctx);
int sqlite_audit_scan(struct store *s, const char *org_id, int64_t after, int64_t last,
		      int limit, int (*cb)(void *ctx, const struct audit_entry *e), void *ctx);
int sqlite_audit_range(struct store *s, const char *org_id, int64_t from, int64_t to,
		       int64_t *first, int64_t *last);
int sqlite_audit_lagging(struct store *s, int limit, int (*cb)(void *ctx, const char *org_id),
			 void *ctx);
int sqlite_server_key_get(struct store *s, const char *name, unsigned char **sealed,
			  size_t *len);
int sqlite_server_key_add(struct store *s, const char *name, const unsigned char *sealed,
			  size_t len, int64_t now);
/* Billing delivery (sqlite_billing.c); store.h documents each. */
int sqlite_billing_settings_put(struct store *s, const struct billing_settings *b);
int sqlite_billing_settings_get(struct store *s, const char *org_id, const char *mode,
				struct billing_settings *out);
int sqlite_billing_settings_delete(struct store *s, const char *org_id, const char *mode);
int sqlite_billing_claim(struct store *s, int64_t now, int64_t lease_until, const char *owner,
			 struct billing_event *out, int max, int *n);
int sqlite_billing_finish(struct store *s, const char *owner, const struct billing_result *res,
			  size_t n, int64_t now);
int sqlite_billing_list(struct store *s, const char *org_id, const char *state, int limit,
			int offset, int (*cb)(void *ctx, const struct billing_event *e), void *ctx);
int sqlite_billing_retry(struct store *s, const char *org_id, const char *billing_id,
			 int64_t now, struct billing_event *out);
int sqlite_billing_count(struct store *s, const char *state, int64_t *n);

#endif
