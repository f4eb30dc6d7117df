/*
 * The verifiable audit log on PostgreSQL (store.h, audit_extend and the
 * audit reads; migration 0006), beside the ledger that writes the entries
 * (pg_ledger.c), which it does not touch.
 *
 * The tree appender serializes per org on the org's audit_trees row: it
 * makes sure the row exists, locks it FOR UPDATE, and only then reads the
 * size and the frontier, hashes the next audit_log entries and stores the
 * subtrees they complete, in one transaction. Another appender of the org,
 * in this process or any other on the database, waits at the lock and
 * then sees the new size, so a tree has one history. The lock is not the
 * org row the ledger locks: appending never holds up a settlement.
 *
 * The completed nodes of a batch go to the database in one INSERT of
 * unnest()ed arrays (hashes as hex text), so a batch costs a handful of
 * round trips whatever its size.
 */
#include <stdio.h>
#include <string.h>

#include "audit/checkpoint.h"
#include "audit/entry.h"
#include "audit/merkle.h"
#include "core/buf.h"
#include "core/err.h"
#include "store/pg_int.h"
#include "core/banned.h"

#define NODES_SQL_MAX ((size_t)64 * 1024 * 1024)

#define ENTRY_COLS                                                                      \
	"a.org_id, a.event_id, a.delegation_id, a.ts, a.caller_id, a.callee_id, "       \
	"a.policy_ref, a.decision, a.status, a.cost_micros, a.budget_remaining_micros, " \
	"a.trust_before, a.trust_after, a.approval"

static int q(struct pconn *c, const char *sql, const struct params *p, PGresult **res)
{
	PGresult *r = PQexecParams(pg_conn_pq(c), sql, p ? p->n : 0, NULL, p ? p->v : NULL,
				   p ? p->len : NULL, p ? p->fmt : NULL, 0);
	int rc = pg_check(c, r, 1);

	if (rc) {
		PQclear(r);
		r = NULL;
	}
	*res = r;
	return rc;
}

static int q_run(struct pconn *c, const char *sql, const struct params *p)
{
	PGresult *r;
	int rc = q(c, sql, p, &r);

	PQclear(r);
	return rc;
}

static double col_real(const PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? NAN : col_f64(r, row, col);
}

static void read_entry(const PGresult *r, int row, struct audit_entry *e, int with_leaf)
{
	memset(e, 0, sizeof(*e));
	col_copy(r, row, 0, e->org_id, sizeof(e->org_id));
	e->event_id = col_i64(r, row, 1);
	col_copy(r, row, 2, e->delegation_id, sizeof(e->delegation_id));
	e->ts = col_i64(r, row, 3);
	col_copy(r, row, 4, e->caller_id, sizeof(e->caller_id));
	col_copy(r, row, 5, e->callee_id, sizeof(e->callee_id));
	col_copy(r, row, 6, e->policy_ref, sizeof(e->policy_ref));
	col_copy(r, row, 7, e->decision, sizeof(e->decision));
	col_copy(r, row, 8, e->status, sizeof(e->status));
	e->cost_micros = col_i64(r, row, 9);
	e->budget_remaining_micros = col_i64(r, row, 10);
	e->trust_before = col_real(r, row, 11);
	e->trust_after = col_real(r, row, 12);
	e->approval = PQgetisnull(r, row, 13) ? NULL : PQgetvalue(r, row, 13);
	if (with_leaf && !PQgetisnull(r, row, 14))
		e->has_leaf = !hex_decode(PQgetvalue(r, row, 14), e->leaf, 32);
}

/* ---- the appender --------------------------------------------------------- */

struct nodes {
	struct buf level, idx, hash; /* array literals being built */
	int n;
};

static int add_node(void *ctx, int level, uint64_t index, const merkle_hash h)
{
	struct nodes *x = ctx;
	char hex[2 * MERKLE_HASH_LEN + 1];
	const char *sep = x->n ? "," : "{";

	hex_encode(h, MERKLE_HASH_LEN, hex);
	x->n++;
	if (buf_addf(&x->level, "%s%d", sep, level) ||
	    buf_addf(&x->idx, "%s%llu", sep, (unsigned long long)index) ||
	    buf_addf(&x->hash, "%s%s", sep, hex))
		return E(INTERNAL);
	return 0;
}

static int load_frontier(struct pconn *c, const char *tree_id, struct merkle_frontier *f)
{
	int levels[MERKLE_MAX_LEVELS], n, rc = 0;
	uint64_t idx[MERKLE_MAX_LEVELS];
	struct params p;
	PGresult *r;

	merkle_frontier_nodes(f->size, levels, idx, &n);
	for (int i = 0; i < n && !rc; i++) {
		p.n = 0;
		p_text(&p, tree_id);
		p_i64(&p, levels[i]);
		p_i64(&p, (int64_t)idx[i]);
		rc = q(c, "SELECT encode(hash, 'hex') FROM audit_nodes WHERE tree_id = $1 "
			  "AND level = $2 AND idx = $3", &p, &r);
		if (rc)
			break;
		if (PQntuples(r) != 1 || hex_decode(PQgetvalue(r, 0, 0), f->h[levels[i]], 32))
			rc = pg_internal("audit tree: a frontier node is missing");
		PQclear(r);
	}
	return rc;
}

static int extend_locked(struct pconn *c, const char *org_id, int max, int64_t now,
			 int64_t *size, int *appended)
{
	struct nodes x = {.n = 0};
	struct merkle_frontier f;
	struct audit_entry e;
	char tree_id[NUM_MAX];
	struct params p = {.n = 0};
	merkle_hash leaf;
	struct buf b;
	PGresult *r = NULL;
	int rc;

	p_text(&p, org_id);
	p_i64(&p, now);
	rc = q_run(c, "INSERT INTO audit_trees (org_id, size, updated_at) VALUES ($1, 0, $2) "
		      "ON CONFLICT (org_id) DO NOTHING", &p);
	if (rc == E(CONFLICT))
		rc = E(NOT_FOUND); /* the org does not exist (foreign key) */
	if (rc)
		return rc;
	p.n = 1;
	rc = q(c, "SELECT tree_id, size FROM audit_trees WHERE org_id = $1 FOR UPDATE", &p, &r);
	if (rc)
		return rc;
	if (PQntuples(r) != 1) {
		PQclear(r);
		return E(NOT_FOUND);
	}
	snprintf(tree_id, sizeof(tree_id), "%s", PQgetvalue(r, 0, 0));
	*size = col_i64(r, 0, 1);
	PQclear(r);
	if (max <= 0)
		return 0;
	merkle_frontier_init(&f);
	f.size = (uint64_t)*size;
	rc = load_frontier(c, tree_id, &f);
	if (rc)
		return rc;
	p.n = 1;
	p_i64(&p, *size);
	p_i64(&p, max);
	rc = q(c, "SELECT " ENTRY_COLS " FROM audit_log a WHERE a.org_id = $1 AND a.event_id > $2 "
		  "ORDER BY a.event_id LIMIT $3", &p, &r);
	if (rc)
		return rc;
	buf_init(&b, AUDIT_ENTRY_MAX);
	buf_init(&x.level, NODES_SQL_MAX);
	buf_init(&x.idx, NODES_SQL_MAX);
	buf_init(&x.hash, NODES_SQL_MAX);
	for (int i = 0; i < PQntuples(r) && !rc; i++) {
		read_entry(r, i, &e, 0);
		if (e.event_id != (int64_t)f.size + 1)
			break; /* a gap: the tree waits (docs/audit.md) */
		rc = audit_entry_bytes(&e, &b);
		if (rc) {
			pg_internal("audit entry too large");
			break;
		}
		merkle_leaf(b.data, b.len, leaf);
		rc = merkle_frontier_append(&f, leaf, add_node, &x);
		if (!rc)
			(*appended)++;
	}
	PQclear(r);
	if (rc || !*appended)
		goto out;
	if (buf_adds(&x.level, "}") || buf_adds(&x.idx, "}") || buf_adds(&x.hash, "}")) {
		rc = pg_internal("audit: batch too large");
		goto out;
	}
	p.n = 0;
	p_text(&p, tree_id);
	p_text(&p, x.level.data);
	p_text(&p, x.idx.data);
	p_text(&p, x.hash.data);
	rc = q_run(c, "INSERT INTO audit_nodes (tree_id, level, idx, hash) "
		      "SELECT $1, l, i, decode(h, 'hex') FROM unnest($2::smallint[], $3::bigint[], "
		      "$4::text[]) AS u(l, i, h)", &p);
	if (rc)
		goto out;
	p.n = 0;
	p_text(&p, tree_id);
	p_i64(&p, (int64_t)f.size);
	p_i64(&p, now);
	rc = q_run(c, "UPDATE audit_trees SET size = $2, updated_at = $3 WHERE tree_id = $1", &p);
	*size = (int64_t)f.size;
out:
	buf_release(&b);
	buf_release(&x.level);
	buf_release(&x.idx);
	buf_release(&x.hash);
	return rc;
}

int pg_audit_extend(struct store *s, const char *org_id, int max, int64_t now, int64_t *size,
		    int *appended)
{
	struct pconn *c;
	int rc = pg_conn_get(s, &c);

	*size = 0;
	*appended = 0;
	if (!rc)
		rc = q_run(c, "BEGIN", NULL);
	if (!rc) {
		rc = extend_locked(c, org_id, max, now, size, appended);
		if (!rc)
			rc = q_run(c, "COMMIT", NULL);
		if (rc)
			PQclear(PQexec(pg_conn_pq(c), "ROLLBACK"));
	}
	if (rc) {
		*size = 0;
		*appended = 0;
	}
	pg_conn_put(s, c);
	return rc;
}

/* ---- reads ---------------------------------------------------------------- */

/* One query on a pooled connection; *res on 0 (caller PQclears). */
static int read_q(struct store *s, const char *sql, const struct params *p, PGresult **res)
{
	struct pconn *c;
	int rc = pg_conn_get(s, &c);

	*res = NULL;
	if (!rc)
		rc = q(c, sql, p, res);
	pg_conn_put(s, c);
	return rc;
}

int pg_audit_sizes(struct store *s, const char *org_id, int64_t *size, int64_t *seq)
{
	struct params p = {.n = 0};
	PGresult *r;
	int rc;

	*size = *seq = 0;
	p_text(&p, org_id);
	rc = read_q(s, "SELECT o.audit_seq, coalesce(t.size, 0) FROM orgs o LEFT JOIN audit_trees t "
		       "ON t.org_id = o.org_id WHERE o.org_id = $1", &p, &r);
	if (rc)
		return rc;
	if (PQntuples(r) == 1) {
		*seq = col_i64(r, 0, 0);
		*size = col_i64(r, 0, 1);
	} else {
		rc = E(NOT_FOUND);
	}
	PQclear(r);
	return rc;
}

int pg_audit_nodes(struct store *s, const char *org_id, size_t n, const int *level,
		   const uint64_t *idx, unsigned char (*out)[32])
{
	struct params p = {.n = 0};
	struct buf lv, ix;
	PGresult *r = NULL;
	int rc = 0;

	if (!n)
		return 0;
	buf_init(&lv, NODES_SQL_MAX);
	buf_init(&ix, NODES_SQL_MAX);
	for (size_t i = 0; i < n && !rc; i++)
		rc = buf_addf(&lv, "%s%d", i ? "," : "{", level[i]) ||
		     buf_addf(&ix, "%s%llu", i ? "," : "{", (unsigned long long)idx[i]);
	if (!rc)
		rc = buf_adds(&lv, "}") || buf_adds(&ix, "}");
	if (rc) {
		rc = pg_internal("audit: too many nodes");
		goto out;
	}
	p_text(&p, org_id);
	p_text(&p, lv.data);
	p_text(&p, ix.data);
	rc = read_q(s, "SELECT u.o, encode(n.hash, 'hex') FROM audit_trees t "
		       "CROSS JOIN unnest($2::smallint[], $3::bigint[]) WITH ORDINALITY AS u(l, i, o) "
		       "JOIN audit_nodes n ON n.tree_id = t.tree_id AND n.level = u.l AND n.idx = u.i "
		       "WHERE t.org_id = $1", &p, &r);
	if (rc)
		goto out;
	if ((size_t)PQntuples(r) != n)
		rc = pg_internal("audit tree: a node is missing");
	for (int row = 0; !rc && row < PQntuples(r); row++) {
		int64_t o = col_i64(r, row, 0);

		if (o < 1 || (size_t)o > n || hex_decode(PQgetvalue(r, row, 1), out[o - 1], 32))
			rc = pg_internal("audit tree: a bad node");
	}
out:
	PQclear(r);
	buf_release(&lv);
	buf_release(&ix);
	return rc;
}

static int entry_rows(const PGresult *r, int with_leaf,
		      int (*cb)(void *, const struct audit_entry *), void *ctx)
{
	struct audit_entry e;
	int rc = 0;

	for (int i = 0; i < PQntuples(r) && !rc; i++) {
		read_entry(r, i, &e, with_leaf);
		rc = cb(ctx, &e);
	}
	return rc;
}

int pg_audit_list(struct store *s, const struct audit_filter *f, int limit, int offset,
		  int (*cb)(void *ctx, const struct audit_entry *e), void *ctx)
{
	struct params p = {.n = 0};
	PGresult *r;
	int rc;

	p_text(&p, f->org_id);
	p_text(&p, f->delegation_id);
	p_text(&p, f->agent_id);
	p_text(&p, f->callee_id);
	p_text(&p, f->decision);
	p_i64(&p, f->from);
	p_i64(&p, f->to);
	p_limit(&p, limit, offset);
	rc = read_q(s, "SELECT " ENTRY_COLS " FROM audit_log a WHERE a.org_id = $1 "
		       "AND ($2::text IS NULL OR a.delegation_id = $2::text) "
		       "AND ($3::text IS NULL OR a.caller_id = $3::text OR a.callee_id = $3::text) "
		       "AND ($4::text IS NULL OR a.callee_id = $4::text) "
		       "AND ($5::text IS NULL OR a.decision = $5::text) "
		       "AND a.ts >= $6 AND a.ts < $7 "
		       "ORDER BY a.event_id DESC LIMIT $8 OFFSET $9", &p, &r);
	if (rc)
		return rc;
	rc = entry_rows(r, 0, cb, ctx);
	PQclear(r);
	return rc;
}

int pg_audit_scan(struct store *s, const char *org_id, int64_t after, int64_t last, int limit,
		  int (*cb)(void *ctx, const struct audit_entry *e), void *ctx)
{
	struct params p = {.n = 0};
	PGresult *r;
	int rc;

	p_text(&p, org_id);
	p_i64(&p, after);
	p_i64(&p, last);
	p_i64(&p, limit);
	rc = read_q(s, "SELECT " ENTRY_COLS ", encode(n.hash, 'hex') FROM audit_log a "
		       "LEFT JOIN audit_trees t ON t.org_id = a.org_id "
		       "LEFT JOIN audit_nodes n ON n.tree_id = t.tree_id AND n.level = 0 "
		       "AND n.idx = a.event_id - 1 "
		       "WHERE a.org_id = $1 AND a.event_id > $2 AND a.event_id <= $3 "
		       "ORDER BY a.event_id LIMIT $4", &p, &r);
	if (rc)
		return rc;
	rc = entry_rows(r, 1, cb, ctx);
	PQclear(r);
	return rc;
}

int pg_audit_range(struct store *s, const char *org_id, int64_t from, int64_t to, int64_t *first,
		   int64_t *last)
{
	struct params p = {.n = 0};
	PGresult *r;
	int rc;

	*first = *last = 0;
	p_text(&p, org_id);
	p_i64(&p, from);
	p_i64(&p, to);
	rc = read_q(s, "SELECT coalesce(min(event_id), 0), coalesce(max(event_id), 0) "
		       "FROM audit_log WHERE org_id = $1 AND ts >= $2 AND ts < $3", &p, &r);
	if (rc)
		return rc;
	*first = col_i64(r, 0, 0);
	*last = col_i64(r, 0, 1);
	PQclear(r);
	return 0;
}

int pg_audit_lagging(struct store *s, int limit, int (*cb)(void *ctx, const char *org_id),
		     void *ctx)
{
	struct params p = {.n = 0};
	PGresult *r;
	int rc;

	p_i64(&p, limit);
	rc = read_q(s, "SELECT o.org_id FROM orgs o LEFT JOIN audit_trees t ON t.org_id = o.org_id "
		       "WHERE o.audit_seq > coalesce(t.size, 0) LIMIT $1", &p, &r);
	if (rc)
		return rc;
	for (int i = 0; i < PQntuples(r) && !rc; i++)
		rc = cb(ctx, PQgetvalue(r, i, 0));
	PQclear(r);
	return rc;
}

int pg_server_key_get(struct store *s, const char *name, unsigned char **sealed, size_t *len)
{
	struct params p = {.n = 0};
	PGresult *r;
	size_t n;
	int rc;

	*sealed = NULL;
	*len = 0;
	p_text(&p, name);
	rc = read_q(s, "SELECT encode(sealed, 'hex') FROM server_keys WHERE name = $1", &p, &r);
	if (rc)
		return rc;
	if (PQntuples(r) != 1) {
		PQclear(r);
		return E(NOT_FOUND);
	}
	n = strlen(PQgetvalue(r, 0, 0)) / 2;
	*sealed = malloc(n ? n : 1);
	if (!*sealed || hex_decode(PQgetvalue(r, 0, 0), *sealed, n)) {
		free(*sealed);
		*sealed = NULL;
		rc = pg_internal("server key: out of memory or bad hex");
	}
	*len = *sealed ? n : 0;
	PQclear(r);
	return rc;
}

int pg_server_key_add(struct store *s, const char *name, const unsigned char *sealed, size_t len,
		      int64_t now)
{
	struct params p = {.n = 0};
	struct pconn *c;
	int rc = pg_conn_get(s, &c);

	p_text(&p, name);
	p_bytes(&p, sealed, len);
	p_i64(&p, now);
	if (!rc)
		rc = q_run(c, "INSERT INTO server_keys (name, sealed, created_at) VALUES ($1, $2, $3)",
			   &p);
	pg_conn_put(s, c);
	return rc;
}
