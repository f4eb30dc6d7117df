/*
 * The verifiable audit log on SQLite (store.h, audit_extend and the audit
 * reads; migration 0006), beside the ledger that writes the entries
 * (sqlite_ledger.c), which it does not touch.
 *
 * The tree appender runs under the process's writer mutex and the
 * database's write lock (BEGIN IMMEDIATE): it reads the tree's size and
 * its frontier (the stored roots of the perfect subtrees on its right
 * edge), hashes the next entries of audit_log in event_id order, stores
 * every subtree they complete, and moves the size, in one transaction. No
 * other appender in any process can run meanwhile, so a tree has one
 * history. Batches are kept small (the caller's max) because the ledger
 * waits for the same lock.
 *
 * These operations are not on the request hot path, so their statements
 * are prepared per call instead of taking slots in the connection.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "audit/entry.h"
#include "audit/merkle.h"
#include "core/err.h"
#include "store/sqlite_int.h"
#include "store/store.h"
#include "core/banned.h"

#define ENTRY_COLS                                                                      \
	"a.org_id, a.event_id, a.delegation_id, a.ts, a.caller_id, a.callee_id, "       \
	"a.policy_ref, a.decision, a.status, a.cost_micros, a.budget_remaining_micros, " \
	"a.trust_before, a.trust_after, a.approval"

static sqlite3_stmt *prep(struct sconn *c, const char *q)
{
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(c->db, q, -1, &st, NULL)) {
		store_set_error("sqlite prepare: %s", sqlite3_errmsg(c->db));
		sqlite3_finalize(st);
		return NULL;
	}
	return st;
}

static int exec(struct sconn *c, const char *q)
{
	if (sqlite3_exec(c->db, q, NULL, NULL, NULL)) {
		store_set_error("sqlite: %s", sqlite3_errmsg(c->db));
		return E(INTERNAL);
	}
	return 0;
}

static int step_err(struct sconn *c)
{
	store_set_error("sqlite: %s", sqlite3_errmsg(c->db));
	return E(INTERNAL);
}

static double col_real(sqlite3_stmt *st, int i)
{
	return sqlite3_column_type(st, i) == SQLITE_NULL ? NAN : sqlite3_column_double(st, i);
}

/* An ENTRY_COLS row (optionally followed by the leaf hash at column 14). */
static void read_entry(sqlite3_stmt *st, struct audit_entry *e, int with_leaf)
{
	memset(e, 0, sizeof(*e));
	col_copy(st, 0, e->org_id, sizeof(e->org_id));
	e->event_id = sqlite3_column_int64(st, 1);
	col_copy(st, 2, e->delegation_id, sizeof(e->delegation_id));
	e->ts = sqlite3_column_int64(st, 3);
	col_copy(st, 4, e->caller_id, sizeof(e->caller_id));
	col_copy(st, 5, e->callee_id, sizeof(e->callee_id));
	col_copy(st, 6, e->policy_ref, sizeof(e->policy_ref));
	col_copy(st, 7, e->decision, sizeof(e->decision));
	col_copy(st, 8, e->status, sizeof(e->status));
	e->cost_micros = sqlite3_column_int64(st, 9);
	e->budget_remaining_micros = sqlite3_column_int64(st, 10);
	e->trust_before = col_real(st, 11);
	e->trust_after = col_real(st, 12);
	e->approval = (const char *)sqlite3_column_text(st, 13); /* NULL for NULL */
	if (with_leaf && sqlite3_column_bytes(st, 14) == 32) {
		memcpy(e->leaf, sqlite3_column_blob(st, 14), 32);
		e->has_leaf = 1;
	}
}

/* ---- the appender --------------------------------------------------------- */

struct extend {
	struct sconn *c;
	sqlite3_stmt *put;
	int64_t tree_id;
};

static int put_node(void *ctx, int level, uint64_t index, const merkle_hash h)
{
	struct extend *x = ctx;
	int src;

	sqlite3_bind_int64(x->put, 1, x->tree_id);
	sqlite3_bind_int(x->put, 2, level);
	sqlite3_bind_int64(x->put, 3, (int64_t)index);
	sqlite3_bind_blob(x->put, 4, h, MERKLE_HASH_LEN, SQLITE_STATIC);
	src = sqlite3_step(x->put);
	sqlite3_reset(x->put);
	return src == SQLITE_DONE ? 0 : step_err(x->c);
}

/* The tree row of org (created at size 0 when missing). */
static int tree_row(struct sconn *c, const char *org_id, int64_t now, int64_t *tree_id,
		    int64_t *size)
{
	sqlite3_stmt *st = prep(c, "SELECT tree_id, size FROM audit_trees WHERE org_id = ?1");
	int src, rc = 0;

	if (!st)
		return E(INTERNAL);
	bind_text(st, 1, org_id);
	src = sqlite3_step(st);
	if (src == SQLITE_ROW) {
		*tree_id = sqlite3_column_int64(st, 0);
		*size = sqlite3_column_int64(st, 1);
	} else if (src != SQLITE_DONE) {
		rc = step_err(c);
	}
	sqlite3_finalize(st);
	if (rc || src == SQLITE_ROW)
		return rc;
	st = prep(c, "INSERT INTO audit_trees (org_id, size, updated_at) VALUES (?1, 0, ?2)");
	if (!st)
		return E(INTERNAL);
	bind_text(st, 1, org_id);
	sqlite3_bind_int64(st, 2, now);
	src = sqlite3_step(st);
	if (src != SQLITE_DONE)
		rc = sqlite3_extended_errcode(c->db) == SQLITE_CONSTRAINT_FOREIGNKEY ? E(NOT_FOUND)
										     : step_err(c);
	sqlite3_finalize(st);
	*tree_id = sqlite3_last_insert_rowid(c->db);
	*size = 0;
	return rc;
}

static int load_frontier(struct sconn *c, int64_t tree_id, struct merkle_frontier *f)
{
	int levels[MERKLE_MAX_LEVELS], n, rc = 0;
	uint64_t idx[MERKLE_MAX_LEVELS];
	sqlite3_stmt *st = prep(c, "SELECT hash FROM audit_nodes WHERE tree_id = ?1 AND level = ?2 "
				   "AND idx = ?3");

	if (!st)
		return E(INTERNAL);
	merkle_frontier_nodes(f->size, levels, idx, &n);
	for (int i = 0; i < n && !rc; i++) {
		sqlite3_bind_int64(st, 1, tree_id);
		sqlite3_bind_int(st, 2, levels[i]);
		sqlite3_bind_int64(st, 3, (int64_t)idx[i]);
		if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 0) == 32) {
			memcpy(f->h[levels[i]], sqlite3_column_blob(st, 0), 32);
		} else {
			store_set_error("audit tree %lld: frontier node %d/%llu missing",
					(long long)tree_id, levels[i], (unsigned long long)idx[i]);
			rc = E(INTERNAL);
		}
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	return rc;
}

static int extend_locked(struct sconn *c, const char *org_id, int max, int64_t now,
			 int64_t *size, int *appended)
{
	struct extend x = {.c = c};
	struct merkle_frontier f;
	struct audit_entry e;
	struct buf b;
	merkle_hash leaf;
	sqlite3_stmt *st = NULL, *up;
	int rc, src;

	merkle_frontier_init(&f);
	rc = tree_row(c, org_id, now, &x.tree_id, size);
	if (rc || max <= 0)
		return rc;
	f.size = (uint64_t)*size;
	rc = load_frontier(c, x.tree_id, &f);
	if (rc)
		return rc;
	x.put = prep(c, "INSERT INTO audit_nodes (tree_id, level, idx, hash) VALUES (?1, ?2, ?3, ?4)");
	st = prep(c, "SELECT " ENTRY_COLS " FROM audit_log a WHERE a.org_id = ?1 AND a.event_id > ?2 "
		     "ORDER BY a.event_id LIMIT ?3");
	buf_init(&b, AUDIT_ENTRY_MAX);
	if (!x.put || !st) {
		rc = E(INTERNAL);
		goto out;
	}
	bind_text(st, 1, org_id);
	sqlite3_bind_int64(st, 2, *size);
	sqlite3_bind_int(st, 3, max);
	while (!rc && (src = sqlite3_step(st)) == SQLITE_ROW) {
		read_entry(st, &e, 0);
		if (e.event_id != (int64_t)f.size + 1)
			break; /* a gap: the tree waits (docs/audit.md) */
		rc = audit_entry_bytes(&e, &b);
		if (rc) {
			store_set_error("audit entry %lld too large", (long long)e.event_id);
			break;
		}
		merkle_leaf(b.data, b.len, leaf);
		rc = merkle_frontier_append(&f, leaf, put_node, &x);
		if (!rc)
			(*appended)++;
	}
	if (!rc && src != SQLITE_ROW && src != SQLITE_DONE)
		rc = step_err(c);
	if (rc || !*appended)
		goto out;
	up = prep(c, "UPDATE audit_trees SET size = ?2, updated_at = ?3 WHERE tree_id = ?1");
	if (!up) {
		rc = E(INTERNAL);
		goto out;
	}
	sqlite3_bind_int64(up, 1, x.tree_id);
	sqlite3_bind_int64(up, 2, (int64_t)f.size);
	sqlite3_bind_int64(up, 3, now);
	if (sqlite3_step(up) != SQLITE_DONE)
		rc = step_err(c);
	sqlite3_finalize(up);
	*size = (int64_t)f.size;
out:
	buf_release(&b);
	sqlite3_finalize(st);
	sqlite3_finalize(x.put);
	return rc;
}

int sqlite_audit_extend(struct store *s, const char *org_id, int max, int64_t now,
			int64_t *size, int *appended)
{
	int rc;

	*size = 0;
	*appended = 0;
	WITH_WRITER(s, c);
	rc = exec(c, "BEGIN IMMEDIATE");
	if (!rc) {
		rc = extend_locked(c, org_id, max, now, size, appended);
		if (!rc)
			rc = exec(c, "COMMIT");
		if (rc && !sqlite3_get_autocommit(c->db))
			sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
	}
	if (rc) {
		*appended = 0;
		*size = 0;
	}
	END_WRITER(s, c);
	return rc;
}

/* ---- reads ---------------------------------------------------------------- */

int sqlite_audit_sizes(struct store *s, const char *org_id, int64_t *size, int64_t *seq)
{
	WITH_CONN(s, c);
	sqlite3_stmt *st = prep(c, "SELECT o.audit_seq, coalesce(t.size, 0) FROM orgs o "
				   "LEFT JOIN audit_trees t ON t.org_id = o.org_id WHERE o.org_id = ?1");
	int rc = E(INTERNAL), src;

	*size = *seq = 0;
	if (st) {
		bind_text(st, 1, org_id);
		src = sqlite3_step(st);
		if (src == SQLITE_ROW) {
			*seq = sqlite3_column_int64(st, 0);
			*size = sqlite3_column_int64(st, 1);
			rc = 0;
		} else {
			rc = src == SQLITE_DONE ? E(NOT_FOUND) : step_err(c);
		}
		sqlite3_finalize(st);
	}
	END_CONN(s, c);
	return rc;
}

int sqlite_audit_nodes(struct store *s, const char *org_id, size_t n, const int *level,
		       const uint64_t *idx, unsigned char (*out)[32])
{
	WITH_CONN(s, c);
	sqlite3_stmt *st = prep(c, "SELECT n.hash FROM audit_trees t JOIN audit_nodes n ON "
				   "n.tree_id = t.tree_id AND n.level = ?2 AND n.idx = ?3 "
				   "WHERE t.org_id = ?1");
	int rc = st ? 0 : E(INTERNAL);

	for (size_t i = 0; i < n && !rc; i++) {
		bind_text(st, 1, org_id);
		sqlite3_bind_int(st, 2, level[i]);
		sqlite3_bind_int64(st, 3, (int64_t)idx[i]);
		if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 0) == 32) {
			memcpy(out[i], sqlite3_column_blob(st, 0), 32);
		} else {
			store_set_error("audit tree of %s: node %d/%llu missing", org_id, level[i],
					(unsigned long long)idx[i]);
			rc = E(INTERNAL);
		}
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	END_CONN(s, c);
	return rc;
}

/* Rows of st to cb; 0, cb's result, or a step error. */
static int entry_rows(struct sconn *c, sqlite3_stmt *st, int with_leaf,
		      int (*cb)(void *, const struct audit_entry *), void *ctx)
{
	struct audit_entry e;
	int src, rc = 0;

	while (!rc && (src = sqlite3_step(st)) == SQLITE_ROW) {
		read_entry(st, &e, with_leaf);
		rc = cb(ctx, &e);
	}
	if (!rc && src != SQLITE_DONE)
		rc = step_err(c);
	return rc;
}

int sqlite_audit_list(struct store *s, const struct audit_filter *f, int limit, int offset,
		      int (*cb)(void *ctx, const struct audit_entry *e), void *ctx)
{
	WITH_CONN(s, c);
	sqlite3_stmt *st = prep(c, "SELECT " ENTRY_COLS " FROM audit_log a WHERE a.org_id = ?1 "
				   "AND (?2 IS NULL OR a.delegation_id = ?2) "
				   "AND (?3 IS NULL OR a.caller_id = ?3 OR a.callee_id = ?3) "
				   "AND (?4 IS NULL OR a.callee_id = ?4) "
				   "AND (?5 IS NULL OR a.decision = ?5) "
				   "AND a.ts >= ?6 AND a.ts < ?7 "
				   "ORDER BY a.event_id DESC LIMIT ?8 OFFSET ?9");
	int rc = E(INTERNAL);

	if (st) {
		bind_text(st, 1, f->org_id);
		bind_text(st, 2, f->delegation_id);
		bind_text(st, 3, f->agent_id);
		bind_text(st, 4, f->callee_id);
		bind_text(st, 5, f->decision);
		sqlite3_bind_int64(st, 6, f->from);
		sqlite3_bind_int64(st, 7, f->to);
		sqlite3_bind_int(st, 8, limit);
		sqlite3_bind_int(st, 9, offset);
		rc = entry_rows(c, st, 0, cb, ctx);
		sqlite3_finalize(st);
	}
	END_CONN(s, c);
	return rc;
}

int sqlite_audit_scan(struct store *s, const char *org_id, int64_t after, int64_t last,
		      int limit, int (*cb)(void *ctx, const struct audit_entry *e), void *ctx)
{
	WITH_CONN(s, c);
	sqlite3_stmt *st = prep(c, "SELECT " ENTRY_COLS ", n.hash FROM audit_log a "
				   "LEFT JOIN audit_trees t ON t.org_id = a.org_id "
				   "LEFT JOIN audit_nodes n ON n.tree_id = t.tree_id AND n.level = 0 "
				   "AND n.idx = a.event_id - 1 "
				   "WHERE a.org_id = ?1 AND a.event_id > ?2 AND a.event_id <= ?3 "
				   "ORDER BY a.event_id LIMIT ?4");
	int rc = E(INTERNAL);

	if (st) {
		bind_text(st, 1, org_id);
		sqlite3_bind_int64(st, 2, after);
		sqlite3_bind_int64(st, 3, last);
		sqlite3_bind_int(st, 4, limit);
		rc = entry_rows(c, st, 1, cb, ctx);
		sqlite3_finalize(st);
	}
	END_CONN(s, c);
	return rc;
}

int sqlite_audit_range(struct store *s, const char *org_id, int64_t from, int64_t to,
		       int64_t *first, int64_t *last)
{
	WITH_CONN(s, c);
	sqlite3_stmt *st = prep(c, "SELECT coalesce(min(event_id), 0), coalesce(max(event_id), 0) "
				   "FROM audit_log WHERE org_id = ?1 AND ts >= ?2 AND ts < ?3");
	int rc = E(INTERNAL);

	*first = *last = 0;
	if (st) {
		bind_text(st, 1, org_id);
		sqlite3_bind_int64(st, 2, from);
		sqlite3_bind_int64(st, 3, to);
		if (sqlite3_step(st) == SQLITE_ROW) {
			*first = sqlite3_column_int64(st, 0);
			*last = sqlite3_column_int64(st, 1);
			rc = 0;
		} else {
			rc = step_err(c);
		}
		sqlite3_finalize(st);
	}
	END_CONN(s, c);
	return rc;
}

int sqlite_audit_lagging(struct store *s, int limit, int (*cb)(void *ctx, const char *org_id),
			 void *ctx)
{
	char org[ID_MAX];
	WITH_CONN(s, c);
	sqlite3_stmt *st = prep(c, "SELECT o.org_id FROM orgs o LEFT JOIN audit_trees t ON "
				   "t.org_id = o.org_id WHERE o.audit_seq > coalesce(t.size, 0) "
				   "LIMIT ?1");
	int rc = E(INTERNAL), src;

	if (st) {
		rc = 0;
		sqlite3_bind_int(st, 1, limit);
		while (!rc && (src = sqlite3_step(st)) == SQLITE_ROW) {
			col_copy(st, 0, org, sizeof(org));
			rc = cb(ctx, org);
		}
		if (!rc && src != SQLITE_DONE)
			rc = step_err(c);
		sqlite3_finalize(st);
	}
	END_CONN(s, c);
	return rc;
}

int sqlite_server_key_get(struct store *s, const char *name, unsigned char **sealed, size_t *len)
{
	WITH_CONN(s, c);
	sqlite3_stmt *st = prep(c, "SELECT sealed FROM server_keys WHERE name = ?1");
	int rc = E(INTERNAL), src;

	*sealed = NULL;
	*len = 0;
	if (st) {
		bind_text(st, 1, name);
		src = sqlite3_step(st);
		if (src == SQLITE_ROW) {
			*len = (size_t)sqlite3_column_bytes(st, 0);
			*sealed = malloc(*len ? *len : 1);
			rc = *sealed ? 0 : E(INTERNAL);
			if (*sealed && *len)
				memcpy(*sealed, sqlite3_column_blob(st, 0), *len);
		} else {
			rc = src == SQLITE_DONE ? E(NOT_FOUND) : step_err(c);
		}
		sqlite3_finalize(st);
	}
	END_CONN(s, c);
	return rc;
}

int sqlite_server_key_add(struct store *s, const char *name, const unsigned char *sealed,
			  size_t len, int64_t now)
{
	WITH_WRITER(s, c);
	sqlite3_stmt *st = prep(c, "INSERT INTO server_keys (name, sealed, created_at) "
				   "VALUES (?1, ?2, ?3)");
	int rc = E(INTERNAL), src;

	if (st) {
		bind_text(st, 1, name);
		sqlite3_bind_blob(st, 2, sealed, (int)len, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, now);
		src = sqlite3_step(st);
		rc = src == SQLITE_DONE ? 0 : (src & 0xff) == SQLITE_CONSTRAINT ? E(CONFLICT)
										  : step_err(c);
		sqlite3_finalize(st);
	}
	END_WRITER(s, c);
	return rc;
}
