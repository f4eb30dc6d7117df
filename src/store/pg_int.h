/*
 * What the PostgreSQL backend's files share (postgres.c, pg_ledger.c,
 * pg_billing.c): a
 * connection taken from the store's pool, statements prepared once per
 * session, parameters as text, columns read back from text. Not for use
 * outside src/store/.
 *
 * Parameters go as text (int64 "%lld", double "%.17g", which round-trips)
 * except bytea, which goes as binary; a NaN double is sent as NULL and
 * -0.0 as 0, which is what SQLite stores for them.
 */
#ifndef NEXRA_STORE_PG_INT_H
#define NEXRA_STORE_PG_INT_H

#include <assert.h>
#include <libpq-fe.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"

#define PARAM_MAX 30  /* the most any statement takes (nexra_ledger_open) */
#define NUM_MAX 32    /* an int64 as "%lld" or a double as "%.17g" */
#define PG_EXT_STMT_MAX 32 /* statements of pg_ledger.c and pg_billing.c, per session */
#define PG_BILLING_SLOT0 16 /* pg_billing.c's slots start here (pg_ledger.c's below) */

struct pconn; /* one pooled connection (postgres.c) */

/* A connection from s's pool, ready for use (a broken one reset, a
 * transaction left open rolled back). *out is set even on error and must
 * be handed back with pg_conn_put. */
int pg_conn_get(struct store *s, struct pconn **out);
void pg_conn_put(struct store *s, struct pconn *c);
PGconn *pg_conn_pq(struct pconn *c);

/* Prepare sql under name on c's session unless done already; slot
 * (< PG_EXT_STMT_MAX) is the statement's number among pg_ledger.c's. A
 * reset connection forgets them all. 0 or E(INTERNAL). */
int pg_prepare_ext(struct pconn *c, unsigned slot, const char *name, const char *sql);

/* 0 if r is a success, else the error it carries (r may be NULL): CONFLICT
 * for SQLSTATE class 23 when constraint_conflicts, else INTERNAL with the
 * message in store_last_error(). */
int pg_check(struct pconn *c, const PGresult *r, int constraint_conflicts);
/* E(INTERNAL), with "postgres: " + what (on one line) as the last error. */
int pg_internal(const char *what);
/* Run q (no parameters, rows ignored): 0 or the error pg_check gives. */
int pg_exec(struct pconn *c, const char *q);
/* A bytea column as a malloc'd buffer (at least 1 byte; free() frees it);
 * NULL when out of memory. */
unsigned char *pg_col_bytes(const PGresult *r, int row, int col, size_t *len);

/* The ledger operations (pg_ledger.c), for postgres.c's function table. */
int pg_ledger_apply(struct store *s, struct ledger_op *ops, size_t n);
int pg_delegation_get(struct store *s, const char *org_id, const char *delegation_id,
		      struct delegation *out);
int pg_delegation_list(struct store *s, const struct delegation_filter *f, int limit,
		       int offset, int (*cb)(void *ctx, const struct delegation *d), void *ctx);
int pg_delegation_overdue(struct store *s, int64_t before, int64_t now, int limit,
			  int (*cb)(void *ctx, const struct delegation *d), void *ctx);
int pg_budget_get(struct store *s, const char *org_id, const char *period,
		  int64_t *spent_micros, int64_t *held_micros);

/* Notifications (pg_notify.c), for postgres.c's function table. */
int pg_channel_create(struct store *s, const struct notify_channel *ch, int max);
int pg_channel_list(struct store *s, const char *org_id, int limit, int offset,
		    int (*cb)(void *ctx, const struct notify_channel *ch), void *ctx);
int pg_channel_delete(struct store *s, const char *org_id, const char *channel_id, int64_t now);
int pg_notify_unsent_approvals(struct store *s, int limit,
			       int (*cb)(void *ctx, const struct delegation *d), void *ctx);
int pg_notify_enqueue(struct store *s, const char *org_id, const char *event,
		      const char *subject_id, int64_t since, const char *payload, int64_t now,
		      int *created);
int pg_budget_alert_candidates(struct store *s, const char *period, int64_t since, int limit,
			       int (*cb)(void *ctx, const char *org_id, int64_t spent,
					 int64_t held),
			       void *ctx);
int pg_budget_alert_record(struct store *s, const struct budget_alert *a, const char *payload,
			   int64_t now, int *created);
int pg_notify_claim(struct store *s, int64_t now, int64_t lease_until, int limit,
		    int (*cb)(void *ctx, const struct notify_delivery *d), void *ctx);
int pg_notify_finish(struct store *s, const char *delivery_id, const char *state,
		     int64_t next_attempt_at, const char *last_error, int64_t now);
int pg_notify_delivery_list(struct store *s, const char *org_id, const char *state, int limit,
			    int offset, int (*cb)(void *ctx, const struct notify_delivery *d),
			    void *ctx);
/* The verifiable audit log (pg_audit.c), for postgres.c's function table. */
int pg_audit_extend(struct store *s, const char *org_id, int max, int64_t now, int64_t *size,
		    int *appended);
int pg_audit_sizes(struct store *s, const char *org_id, int64_t *size, int64_t *seq);
int pg_audit_nodes(struct store *s, const char *org_id, size_t n, const int *level,
		   const uint64_t *idx, unsigned char (*out)[32]);
int pg_audit_list(struct store *s, const struct audit_filter *f, int limit, int offset,
		  int (*cb)(void *ctx, const struct audit_entry *e), void *ctx);
int pg_audit_scan(struct store *s, const char *org_id, int64_t after, int64_t last, int limit,
		  int (*cb)(void *ctx, const struct audit_entry *e), void *ctx);
int pg_audit_range(struct store *s, const char *org_id, int64_t from, int64_t to, int64_t *first,
		   int64_t *last);
int pg_audit_lagging(struct store *s, int limit, int (*cb)(void *ctx, const char *org_id),
		     void *ctx);
int pg_server_key_get(struct store *s, const char *name, unsigned char **sealed, size_t *len);
int pg_server_key_add(struct store *s, const char *name, const unsigned char *sealed, size_t len,
		      int64_t now);
/* Billing delivery (pg_billing.c). */
int pg_billing_settings_put(struct store *s, const struct billing_settings *b);
int pg_billing_settings_get(struct store *s, const char *org_id, const char *mode,
			    struct billing_settings *out);
int pg_billing_settings_delete(struct store *s, const char *org_id, const char *mode);
int pg_billing_claim(struct store *s, int64_t now, int64_t lease_until, const char *owner,
		     struct billing_event *out, int max, int *n);
int pg_billing_finish(struct store *s, const char *owner, const struct billing_result *res,
		      size_t n, int64_t now);
int pg_billing_list(struct store *s, const char *org_id, const char *state, int limit,
		    int offset, int (*cb)(void *ctx, const struct billing_event *e), void *ctx);
int pg_billing_retry(struct store *s, const char *org_id, const char *billing_id, int64_t now,
		     struct billing_event *out);
int pg_billing_count(struct store *s, const char *state, int64_t *n);

/* ---- parameters --------------------------------------------------------- */

struct params {
	int n;
	const char *v[PARAM_MAX];
	int len[PARAM_MAX];
	int fmt[PARAM_MAX];
	char num[PARAM_MAX][NUM_MAX];
};

static inline void p_text(struct params *p, const char *s) /* NULL: SQL NULL */
{
	assert(p->n < PARAM_MAX);
	p->v[p->n] = s;
	p->len[p->n] = 0;
	p->fmt[p->n] = 0;
	p->n++;
}

static inline void p_i64(struct params *p, int64_t x)
{
	assert(p->n < PARAM_MAX);
	snprintf(p->num[p->n], NUM_MAX, "%lld", (long long)x);
	p_text(p, p->num[p->n]);
}

static inline void p_f64(struct params *p, double x)
{
	assert(p->n < PARAM_MAX);
	if (isnan(x)) {
		p_text(p, NULL);
		return;
	}
	if (x == 0)
		x = 0.0; /* -0.0 reads back from SQLite as 0 */
	if (isinf(x))
		snprintf(p->num[p->n], NUM_MAX, "%s", x > 0 ? "Infinity" : "-Infinity");
	else
		snprintf(p->num[p->n], NUM_MAX, "%.17g", x);
	p_text(p, p->num[p->n]);
}

/* bytea, sent in binary; b NULL is SQL NULL. */
static inline void p_bytes(struct params *p, const void *b, size_t n)
{
	assert(p->n < PARAM_MAX);
	p->v[p->n] = b;
	p->len[p->n] = (int)n;
	p->fmt[p->n] = 1;
	p->n++;
}

/* SQLite reads a negative LIMIT as none and a negative OFFSET as 0. */
static inline void p_limit(struct params *p, int limit, int offset)
{
	if (limit < 0)
		p_text(p, NULL);
	else
		p_i64(p, limit);
	p_i64(p, offset < 0 ? 0 : offset);
}

/* ---- reading rows ------------------------------------------------------- */

static inline void col_copy(const PGresult *r, int row, int col, char *out, size_t outsz)
{
	snprintf(out, outsz, "%s", PQgetvalue(r, row, col)); /* NULL reads as "" */
}

static inline char *col_dup(const PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? NULL : strdup(PQgetvalue(r, row, col));
}

static inline int64_t col_i64(const PGresult *r, int row, int col)
{
	return strtoll(PQgetvalue(r, row, col), NULL, 10); /* NULL reads as 0 */
}

static inline double col_f64(const PGresult *r, int row, int col)
{
	return strtod(PQgetvalue(r, row, col), NULL);
}

#endif
