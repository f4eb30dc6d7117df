/*
 * The PostgreSQL backend of store.h: for several server processes sharing
 * one database. It mirrors sqlite.c operation by operation (same return
 * codes, orderings and no-op rules); only the means differ.
 *
 * Each pooled connection is a libpq connection opened from the URI with
 * synchronous_commit=on (a 0 return means the commit is on disk) and
 * client_min_messages=warning (no NOTICE chatter on stderr). Statements are
 * prepared once per connection, on first use, under a fixed name; the
 * connection remembers which ones it has. A connection found broken when it
 * is taken from the pool is reset first, which also forgets its prepared
 * statements, so a restarted database costs one failed call per pooled
 * connection (the call that finds it broken), not a restart of the server.
 *
 * Parameters go as text (int64 "%lld", double "%.17g", which round-trips)
 * except bytea, which goes as binary so no escaping is involved; results
 * come back as text and bytea is decoded with PQunescapeBytea. A NaN double
 * is sent as NULL and -0.0 as 0, which is what SQLite stores for them.
 * The helpers for both live in pg_int.h, shared with pg_ledger.c (the
 * delegation ledger, which needs pipelining and stored functions).
 *
 * Errors: any integrity-constraint violation (SQLSTATE class 23: unique,
 * foreign key, check, not null) is CONFLICT, as SQLITE_CONSTRAINT is in
 * sqlite.c; no row where one is expected is NOT_FOUND; everything else is
 * INTERNAL with the server's message in store_last_error().
 *
 * Concurrency: READ COMMITTED everywhere. The operations that read before
 * they write take a row lock first: key_revoke locks the org's row (FOR NO
 * KEY UPDATE, which serializes revokes of one org without blocking key or
 * agent inserts that reference it) and only then, in later statements that
 * see everything committed before the lock was granted, counts the live
 * keys, so two processes cannot each revoke one of the last two. migrate
 * holds a session advisory lock so processes starting at once apply each
 * migration exactly once.
 */
#include <assert.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "store/migrations.h"
#include "store/pg_int.h"
#include "store/pool.h"
#include "store/store.h"
#include "core/banned.h"

/* Session advisory lock key that serializes migrate ("nexramig" in ASCII). */
#define MIGRATE_LOCK "7954896749476014439"
#define MSG_MAX 480  /* a server message flattened to one line */

enum stmt {
	S_ORG_INSERT, S_ORG_GET, S_ORG_LOCK,
	S_KEY_INSERT, S_KEY_BY_LOOKUP, S_KEY_LIST, S_KEY_GET, S_KEY_LIVE_OTHERS, S_KEY_REVOKE,
	S_AGENT_INSERT, S_AGENT_UPDATE, S_AGENT_GET, S_AGENT_LIST, S_AGENT_STATUS,
	S_AGENT_PAUSE, S_AGENT_RESUME,
	S_POL_FIND, S_POL_INSERT, S_POL_BUMP, S_POLV_INSERT, S_POL_GET, S_POLV_LIST, S_POLV_GET,
	S_POL_LIST, S_POL_PATCH, S_POL_STACK, S_POL_STAMP,
	S_DEL_INSERT, S_DEL_SCAN,
	S_DISC_STAMP, S_DISC_CHANGES, S_DISC_SEARCH, S_EMB_TOUCH, S_EMB_PUT,
	S__COUNT
};

#define AGENT_COLS                                                                     \
	"org_id, agent_id, name, description, capability_type, webhook_url, secret_sealed, " \
	"per_call_micros, p99_latency_ms, availability, input_schema, output_schema, "      \
	"is_public, status, prior_status, trust_score, embedding_id, registered_at, updated_at"
#define KEY_COLS "key_id, org_id, lookup, hash, kind, name, prefix, created_at, revoked_at"
#define DEL_COLS                                                                          \
	"delegation_id, org_id, caller_agent_id, callee_agent_id, capability, "           \
	"budget_cap_micros, callee_trust, callee_circuit_open, decision, policy_id, "     \
	"policy_version, created_at"
#define POL_COLS \
	"p.policy_id, p.org_id, p.name, p.version, p.priority, p.enabled, p.seq, p.created_at, p.updated_at"
#define POL_CURRENT "JOIN policy_versions v ON v.policy_id = p.policy_id AND v.version = p.version "

/* Each statement: its prepared name (fixed, per connection) and its text. */
static const struct {
	const char *name;
	const char *sql;
} stmts[S__COUNT] = {
	[S_ORG_INSERT] = {"org_insert",
			  "INSERT INTO orgs (org_id, name, plan, created_at) VALUES ($1, $2, $3, $4)"},
	[S_ORG_GET] = {"org_get", "SELECT org_id, name, plan, created_at FROM orgs WHERE org_id = $1"},
	[S_ORG_LOCK] = {"org_lock", "SELECT 1 FROM orgs WHERE org_id = $1 FOR NO KEY UPDATE"},
	[S_KEY_INSERT] = {"key_insert", "INSERT INTO api_keys (" KEY_COLS ") "
					"VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL)"},
	[S_KEY_BY_LOOKUP] = {"key_by_lookup",
			     "SELECT k.key_id, k.org_id, k.lookup, k.hash, k.kind, k.name, k.prefix, "
			     "k.created_at, k.revoked_at, o.org_id, o.name, o.plan, o.created_at "
			     "FROM api_keys k JOIN orgs o ON o.org_id = k.org_id WHERE k.lookup = $1"},
	[S_KEY_LIST] = {"key_list", "SELECT " KEY_COLS " FROM api_keys WHERE org_id = $1 "
				    "ORDER BY created_at DESC, key_id DESC LIMIT $2 OFFSET $3"},
	[S_KEY_GET] = {"key_get",
		       "SELECT kind, revoked_at FROM api_keys WHERE org_id = $1 AND key_id = $2"},
	[S_KEY_LIVE_OTHERS] = {"key_live_others",
			       "SELECT count(*) FROM api_keys WHERE org_id = $1 AND kind = 0 "
			       "AND revoked_at IS NULL AND key_id <> $2"},
	[S_KEY_REVOKE] = {"key_revoke",
			  "UPDATE api_keys SET revoked_at = $3 WHERE org_id = $1 AND key_id = $2"},
	[S_AGENT_INSERT] = {"agent_insert",
			    "INSERT INTO agents (" AGENT_COLS ") VALUES ($1, $2, $3, $4, $5, $6, $7, "
			    "$8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)"},
	[S_AGENT_UPDATE] = {"agent_update",
			    "UPDATE agents SET name = $3, description = $4, capability_type = $5, "
			    "webhook_url = $6, secret_sealed = $7, per_call_micros = $8, "
			    "p99_latency_ms = $9, availability = $10, input_schema = $11, "
			    "output_schema = $12, is_public = $13, updated_at = $14, "
			    "embedding_id = $15 WHERE org_id = $1 AND agent_id = $2"},
	[S_AGENT_GET] = {"agent_get",
			 "SELECT " AGENT_COLS " FROM agents WHERE org_id = $1 AND agent_id = $2"},
	[S_AGENT_LIST] = {"agent_list",
			  "SELECT " AGENT_COLS " FROM agents WHERE org_id = $1 "
			  "AND ($2::text IS NULL OR status = $2::text) "
			  "AND ($3::text IS NULL OR capability_type = $3::text) "
			  "ORDER BY registered_at, agent_id LIMIT $4 OFFSET $5"},
	[S_AGENT_STATUS] = {"agent_status",
			    "SELECT status FROM agents WHERE org_id = $1 AND agent_id = $2"},
	[S_AGENT_PAUSE] = {"agent_pause",
			   "UPDATE agents SET prior_status = status, status = 'paused', updated_at = $3 "
			   "WHERE org_id = $1 AND agent_id = $2 AND status <> 'paused'"},
	[S_POL_FIND] = {"pol_find", "SELECT policy_id, version FROM policies "
				    "WHERE org_id = $1 AND name = $2 FOR UPDATE"},
	[S_POL_INSERT] = {"pol_insert",
			  "INSERT INTO policies (policy_id, org_id, name, version, priority, enabled, "
			  "created_at, updated_at) VALUES ($1, $2, $3, 1, $4, $5, $6, $6)"},
	[S_POL_BUMP] = {"pol_bump", "UPDATE policies SET version = $3, priority = $4, enabled = $5, "
				    "updated_at = $6 WHERE org_id = $1 AND policy_id = $2"},
	[S_POLV_INSERT] = {"polv_insert", "INSERT INTO policy_versions (policy_id, version, yaml, "
					  "created_at) VALUES ($1, $2, $3, $4)"},
	[S_POL_GET] = {"pol_get", "SELECT " POL_COLS ", v.yaml FROM policies p " POL_CURRENT
				  "WHERE p.org_id = $1 AND p.policy_id = $2"},
	[S_POLV_LIST] = {"polv_list", "SELECT v.version, v.created_at FROM policy_versions v "
				      "JOIN policies p ON p.policy_id = v.policy_id "
				      "WHERE p.org_id = $1 AND v.policy_id = $2 ORDER BY v.version"},
	[S_POLV_GET] = {"polv_get", "SELECT v.yaml FROM policy_versions v JOIN policies p "
				    "ON p.policy_id = v.policy_id WHERE p.org_id = $1 "
				    "AND v.policy_id = $2 AND v.version = $3"},
	[S_POL_LIST] = {"pol_list", "SELECT " POL_COLS ", NULL FROM policies p WHERE p.org_id = $1 "
				    "ORDER BY p.priority, p.seq LIMIT $2 OFFSET $3"},
	[S_POL_PATCH] = {"pol_patch", "UPDATE policies SET enabled = coalesce($3::integer, enabled), "
				      "priority = coalesce($4::integer, priority), updated_at = $5 "
				      "WHERE org_id = $1 AND policy_id = $2"},
	[S_POL_STACK] = {"pol_stack", "SELECT " POL_COLS ", v.yaml FROM policies p " POL_CURRENT
				      "WHERE p.org_id = $1 AND p.enabled = 1 "
				      "ORDER BY p.priority, p.seq"},
	[S_POL_STAMP] = {"pol_stamp", "SELECT policy_gen FROM orgs WHERE org_id = $1"},
	[S_DEL_INSERT] = {"del_insert", "INSERT INTO delegations (" DEL_COLS ") VALUES ($1, $2, $3, "
					"$4, $5, $6, $7, $8, $9, $10, $11, $12)"},
	[S_DEL_SCAN] = {"del_scan", "SELECT " DEL_COLS " FROM delegations WHERE org_id = $1 "
				    "AND created_at >= $2 AND created_at < $3 "
				    "ORDER BY created_at, delegation_id LIMIT $4"},
	[S_AGENT_RESUME] = {"agent_resume",
			    "UPDATE agents SET status = CASE prior_status WHEN '' THEN 'probationary' "
			    "ELSE prior_status END, prior_status = '', updated_at = $3 "
			    "WHERE org_id = $1 AND agent_id = $2 AND status = 'paused'"},
	[S_DISC_STAMP] = {"disc_stamp", "SELECT coalesce(max(disc_seq), 0) FROM agents"},
	[S_DISC_CHANGES] = {"disc_changes",
			    "SELECT a.org_id, a.agent_id, a.name, a.description, a.capability_type, "
			    "a.per_call_micros, a.p99_latency_ms, a.is_public, a.status, a.trust_score, "
			    "a.embedding_id, a.disc_seq, e.model, e.dim, e.vec FROM agents a "
			    "LEFT JOIN agent_embeddings e ON e.org_id = a.org_id "
			    "AND e.agent_id = a.agent_id AND e.embedding_id = a.embedding_id "
			    "WHERE a.disc_seq > $1 ORDER BY a.disc_seq LIMIT $2"},
	[S_DISC_SEARCH] = {"disc_search",
			   "SELECT a.org_id, a.agent_id, ts_rank_cd(a.search, q) AS s "
			   "FROM agents a, to_tsquery('english', $1) q WHERE a.search @@ q "
			   "AND (a.org_id = $2 OR ($3 = 1 AND a.is_public = 1)) AND a.status <> 'paused' "
			   "AND ($4::text IS NULL OR a.capability_type = $4) "
			   "AND ($5 < 0 OR a.per_call_micros <= $5) AND ($6 < 0 OR a.p99_latency_ms <= $6) "
			   "ORDER BY s DESC LIMIT $7"},
	[S_EMB_TOUCH] = {"emb_touch",
			 "UPDATE agents SET embedding_id = embedding_id "
			 "WHERE org_id = $1 AND agent_id = $2 AND embedding_id = $3"},
	[S_EMB_PUT] = {"emb_put",
		       "INSERT INTO agent_embeddings (org_id, agent_id, embedding_id, model, dim, vec, "
		       "created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (org_id, agent_id) "
		       "DO UPDATE SET embedding_id = excluded.embedding_id, model = excluded.model, "
		       "dim = excluded.dim, vec = excluded.vec, created_at = excluded.created_at"},
};

struct pconn {
	PGconn *conn;
	int ready;                        /* session settings applied */
	unsigned char prepared[S__COUNT]; /* statement prepared on this session */
	unsigned char ext_prepared[PG_EXT_STMT_MAX]; /* pg_ledger.c's, pg_billing.c's */
};

struct pg_store {
	struct store base; /* first: struct store * converts back */
	struct pool pool;
};

static struct pg_store *ps(struct store *s)
{
	return (struct pg_store *)s;
}

/* ---- messages and errors ------------------------------------------------ */

/* src on one line into dst: newlines and tabs become single spaces, trailing
 * blanks go (libpq messages end in "\n" and may span lines). */
static void oneline(char *dst, size_t dstsz, const char *src)
{
	size_t n = 0;

	for (; *src && n + 1 < dstsz; src++) {
		char ch = (*src == '\n' || *src == '\t' || *src == '\r') ? ' ' : *src;

		if (ch == ' ' && (n == 0 || dst[n - 1] == ' '))
			continue;
		dst[n++] = ch;
	}
	while (n > 0 && dst[n - 1] == ' ')
		n--;
	if (dstsz)
		dst[n] = '\0';
}

static int internal(const char *what)
{
	char m[MSG_MAX];

	oneline(m, sizeof(m), what);
	store_set_error("postgres: %s", m);
	return E(INTERNAL);
}

/* 0 if r is a success, else the error it carries (r may be NULL). */
static int check(struct pconn *c, const PGresult *r, int constraint_conflicts)
{
	ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
	const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;

	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
		return 0;
	if (constraint_conflicts && state && !strncmp(state, "23", 2))
		return E(CONFLICT);
	return internal(r ? PQresultErrorMessage(r) : PQerrorMessage(c->conn));
}

/* Run SQL that returns nothing we read (transaction control, settings,
 * migrations); any failure is INTERNAL. */
static int exec_sql(struct pconn *c, const char *q)
{
	PGresult *r = PQexec(c->conn, q);
	int rc = check(c, r, 0);

	PQclear(r);
	return rc;
}

static void rollback(struct pconn *c)
{
	PQclear(PQexec(c->conn, "ROLLBACK"));
}

/* ---- statements --------------------------------------------------------- */

/* Prepare sql as name on c's session unless *done says it is. */
static int prepare_as(struct pconn *c, unsigned char *done, const char *name, const char *sql)
{
	PGresult *r;
	const char *state;
	int rc;

	if (*done)
		return 0;
	r = PQprepare(c->conn, name, sql, 0, NULL);
	state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	rc = check(c, r, 0);
	if (rc && state && !strcmp(state, "42P05"))
		rc = 0; /* duplicate_prepared_statement: the session has it */
	if (!rc)
		*done = 1;
	PQclear(r);
	return rc;
}

static int prepare(struct pconn *c, enum stmt id)
{
	return prepare_as(c, &c->prepared[id], stmts[id].name, stmts[id].sql);
}

/* Run statement id with p. On 0, *res holds the result (caller PQclears);
 * on error *res is NULL. */
static int query(struct pconn *c, enum stmt id, const struct params *p, PGresult **res)
{
	PGresult *r;
	int rc;

	*res = NULL;
	rc = prepare(c, id);
	if (rc)
		return rc;
	r = PQexecPrepared(c->conn, stmts[id].name, p->n, p->v, p->len, p->fmt, 0);
	rc = check(c, r, 1);
	if (rc)
		PQclear(r);
	else
		*res = r;
	return rc;
}

/* Run a statement whose rows we do not read; *changed gets the row count
 * of an INSERT/UPDATE when not NULL. */
static int run(struct pconn *c, enum stmt id, const struct params *p, long *changed)
{
	PGresult *r;
	int rc = query(c, id, p, &r);

	if (!rc && changed)
		*changed = strtol(PQcmdTuples(r), NULL, 10);
	PQclear(r);
	return rc;
}

/* ---- reading rows ------------------------------------------------------- */

/* A bytea column as a malloc'd buffer (free() frees it; at least 1 byte);
 * NULL when out of memory. */
static unsigned char *col_bytes(const PGresult *r, int row, int col, size_t *len)
{
	size_t n = 0;
	unsigned char *b = PQunescapeBytea((const unsigned char *)PQgetvalue(r, row, col), &n);
	unsigned char *out = b ? malloc(n > 0 ? n : 1) : NULL;

	*len = 0;
	if (out) {
		if (n > 0)
			memcpy(out, b, n);
		*len = n;
	}
	PQfreemem(b);
	return out;
}

static void read_org(const PGresult *r, int row, int i, struct org *o)
{
	col_copy(r, row, i, o->org_id, sizeof(o->org_id));
	col_copy(r, row, i + 1, o->name, sizeof(o->name));
	col_copy(r, row, i + 2, o->plan, sizeof(o->plan));
	o->created_at = col_i64(r, row, i + 3);
}

static void read_key(const PGresult *r, int row, struct api_key *k)
{
	size_t n = 0;
	unsigned char *h = col_bytes(r, row, 3, &n);

	col_copy(r, row, 0, k->key_id, sizeof(k->key_id));
	col_copy(r, row, 1, k->org_id, sizeof(k->org_id));
	col_copy(r, row, 2, k->lookup, sizeof(k->lookup));
	memset(k->hash, 0, sizeof(k->hash));
	if (h && n == sizeof(k->hash))
		memcpy(k->hash, h, sizeof(k->hash));
	free(h);
	k->kind = (int)col_i64(r, row, 4);
	col_copy(r, row, 5, k->name, sizeof(k->name));
	col_copy(r, row, 6, k->prefix, sizeof(k->prefix));
	k->created_at = col_i64(r, row, 7);
	k->revoked_at = col_i64(r, row, 8); /* NULL reads as 0 */
}

/* 0 or E(INTERNAL) (out of memory); a is released on failure. */
static int read_agent(const PGresult *r, int row, struct agent *a)
{
	memset(a, 0, sizeof(*a));
	col_copy(r, row, 0, a->org_id, sizeof(a->org_id));
	col_copy(r, row, 1, a->agent_id, sizeof(a->agent_id));
	a->name = col_dup(r, row, 2);
	a->description = col_dup(r, row, 3);
	col_copy(r, row, 4, a->capability_type, sizeof(a->capability_type));
	a->webhook_url = col_dup(r, row, 5);
	a->secret_sealed = col_bytes(r, row, 6, &a->secret_sealed_len);
	a->per_call_micros = col_i64(r, row, 7);
	a->p99_latency_ms = col_i64(r, row, 8);
	a->availability = col_f64(r, row, 9);
	a->input_schema = col_dup(r, row, 10);
	a->output_schema = col_dup(r, row, 11);
	a->is_public = (int)col_i64(r, row, 12);
	col_copy(r, row, 13, a->status, sizeof(a->status));
	col_copy(r, row, 14, a->prior_status, sizeof(a->prior_status));
	a->trust_score = col_f64(r, row, 15);
	a->embedding_id = col_dup(r, row, 16);
	a->registered_at = col_i64(r, row, 17);
	a->updated_at = col_i64(r, row, 18);
	if (!a->name || !a->description || !a->webhook_url || !a->secret_sealed ||
	    !a->input_schema || !a->output_schema ||
	    (!a->embedding_id && !PQgetisnull(r, row, 16))) {
		agent_release(a);
		store_set_error("out of memory reading agent");
		return E(INTERNAL);
	}
	return 0;
}

/* $1..$13: the key and the definition, shared by insert and update. */
static void params_agent(struct params *p, const struct agent *a)
{
	p_text(p, a->org_id);
	p_text(p, a->agent_id);
	p_text(p, a->name);
	p_text(p, a->description);
	p_text(p, a->capability_type);
	p_text(p, a->webhook_url);
	p_bytes(p, a->secret_sealed, a->secret_sealed_len);
	p_i64(p, a->per_call_micros);
	p_i64(p, a->p99_latency_ms);
	p_f64(p, a->availability);
	p_text(p, a->input_schema);
	p_text(p, a->output_schema);
	p_i64(p, a->is_public ? 1 : 0);
}

/* ---- connections -------------------------------------------------------- */

static int session_setup(struct pconn *c)
{
	return exec_sql(c, "SET synchronous_commit = on; SET client_min_messages = warning");
}

/* A connection from the pool, ready for use: a broken one, or one a failed
 * ledger batch left in pipeline mode, is reset (its prepared statements
 * went with the old session) and a transaction left open by a failed call
 * is rolled back. *out is set even on error and must be handed back with
 * conn_put. */
static int conn_get(struct store *s, struct pconn **out)
{
	struct pconn *c = pool_acquire(&ps(s)->pool);
	PGTransactionStatusType ts;
	int rc = 0;

	*out = c;
	if (PQstatus(c->conn) == CONNECTION_BAD ||
	    PQpipelineStatus(c->conn) != PQ_PIPELINE_OFF) {
		PQreset(c->conn);
		memset(c->prepared, 0, sizeof(c->prepared));
		memset(c->ext_prepared, 0, sizeof(c->ext_prepared));
		c->ready = 0;
		if (PQstatus(c->conn) != CONNECTION_OK)
			return internal(PQerrorMessage(c->conn));
	}
	if (!c->ready) {
		rc = session_setup(c);
		if (rc)
			return rc;
		c->ready = 1;
	}
	ts = PQtransactionStatus(c->conn);
	if (ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR)
		rollback(c);
	return rc;
}

static void conn_put(struct store *s, struct pconn *c)
{
	pool_return(&ps(s)->pool, c);
}

/* ---- for pg_ledger.c (pg_int.h) ------------------------------------------ */

int pg_conn_get(struct store *s, struct pconn **out)
{
	return conn_get(s, out);
}

void pg_conn_put(struct store *s, struct pconn *c)
{
	conn_put(s, c);
}

PGconn *pg_conn_pq(struct pconn *c)
{
	return c->conn;
}

int pg_prepare_ext(struct pconn *c, unsigned slot, const char *name, const char *sql)
{
	assert(slot < PG_EXT_STMT_MAX);
	return prepare_as(c, &c->ext_prepared[slot], name, sql);
}

int pg_check(struct pconn *c, const PGresult *r, int constraint_conflicts)
{
	return check(c, r, constraint_conflicts);
}

int pg_internal(const char *what)
{
	return internal(what);
}

int pg_exec(struct pconn *c, const char *q)
{
	return exec_sql(c, q);
}

unsigned char *pg_col_bytes(const PGresult *r, int row, int col, size_t *len)
{
	return col_bytes(r, row, col, len);
}

/* ---- operations --------------------------------------------------------- */

static int key_insert(struct pconn *c, const struct api_key *k)
{
	struct params p = {0};

	p_text(&p, k->key_id);
	p_text(&p, k->org_id);
	p_text(&p, k->lookup);
	p_bytes(&p, k->hash, sizeof(k->hash));
	p_i64(&p, k->kind);
	p_text(&p, k->name);
	p_text(&p, k->prefix);
	p_i64(&p, k->created_at);
	return run(c, S_KEY_INSERT, &p, NULL);
}

static int op_org_create(struct store *s, const struct org *o, const struct api_key *live,
			 const struct api_key *test)
{
	struct pconn *c;
	struct params p = {0};
	int rc = conn_get(s, &c), open = 0;

	if (rc)
		goto out;
	rc = exec_sql(c, "BEGIN");
	if (rc)
		goto out;
	open = 1;
	p_text(&p, o->org_id);
	p_text(&p, o->name);
	p_text(&p, o->plan);
	p_i64(&p, o->created_at);
	rc = run(c, S_ORG_INSERT, &p, NULL);
	if (!rc)
		rc = key_insert(c, live);
	if (!rc)
		rc = key_insert(c, test);
	if (!rc)
		rc = exec_sql(c, "COMMIT");
	if (!rc)
		open = 0;
out:
	if (open)
		rollback(c);
	conn_put(s, c);
	return rc;
}

static int op_org_get(struct store *s, const char *org_id, struct org *out)
{
	struct pconn *c;
	struct params p = {0};
	PGresult *r = NULL;
	int rc = conn_get(s, &c);

	if (rc)
		goto out;
	p_text(&p, org_id);
	rc = query(c, S_ORG_GET, &p, &r);
	if (rc)
		goto out;
	if (PQntuples(r) == 0)
		rc = E(NOT_FOUND);
	else
		read_org(r, 0, 0, out);
out:
	PQclear(r);
	conn_put(s, c);
	return rc;
}

static int op_key_create(struct store *s, const struct api_key *k)
{
	struct pconn *c;
	int rc = conn_get(s, &c);

	if (!rc)
		rc = key_insert(c, k);
	conn_put(s, c);
	return rc;
}

static int op_key_by_lookup(struct store *s, const char *lookup, struct key_auth *out)
{
	struct pconn *c;
	struct params p = {0};
	PGresult *r = NULL;
	int rc = conn_get(s, &c);

	if (rc)
		goto out;
	p_text(&p, lookup);
	rc = query(c, S_KEY_BY_LOOKUP, &p, &r);
	if (rc)
		goto out;
	if (PQntuples(r) == 0) {
		rc = E(NOT_FOUND);
		goto out;
	}
	read_key(r, 0, &out->key);
	read_org(r, 0, 9, &out->org);
out:
	PQclear(r);
	conn_put(s, c);
	return rc;
}

static int op_key_list(struct store *s, const char *org_id, int limit, int offset,
		       int (*cb)(void *, const struct api_key *), void *ctx)
{
	struct pconn *c;
	struct params p = {0};
	PGresult *r = NULL;
	struct api_key k;
	int rc = conn_get(s, &c);

	if (rc)
		goto out;
	p_text(&p, org_id);
	p_limit(&p, limit, offset);
	rc = query(c, S_KEY_LIST, &p, &r);
	for (int i = 0; !rc && i < PQntuples(r); i++) {
		read_key(r, i, &k);
		rc = cb(ctx, &k);
	}
out:
	PQclear(r);
	conn_put(s, c);
	return rc;
}

static int op_key_revoke(struct store *s, const char *org_id, const char *key_id, int64_t now,
			 int64_t *revoked_at)
{
	struct pconn *c;
	struct params p = {0};
	PGresult *r = NULL;
	int rc = conn_get(s, &c), open = 0, kind;
	int64_t prev;

	if (rc)
		goto out;
	rc = exec_sql(c, "BEGIN");
	if (rc)
		goto out;
	open = 1;
	p_text(&p, org_id);
	rc = run(c, S_ORG_LOCK, &p, NULL); /* no org: the key lookup finds nothing */
	if (rc)
		goto out;
	p_text(&p, key_id);
	rc = query(c, S_KEY_GET, &p, &r);
	if (rc)
		goto out;
	if (PQntuples(r) == 0) {
		rc = E(NOT_FOUND);
		goto out;
	}
	kind = (int)col_i64(r, 0, 0);
	prev = col_i64(r, 0, 1);
	PQclear(r);
	r = NULL;
	if (prev) {
		*revoked_at = prev; /* nothing to write; out rolls back */
		goto out;
	}
	if (kind == KEY_LIVE) {
		rc = query(c, S_KEY_LIVE_OTHERS, &p, &r);
		if (rc)
			goto out;
		if (col_i64(r, 0, 0) == 0) {
			rc = E(CONFLICT);
			goto out;
		}
	}
	p_i64(&p, now);
	rc = run(c, S_KEY_REVOKE, &p, NULL);
	if (!rc)
		rc = exec_sql(c, "COMMIT");
	if (!rc) {
		open = 0;
		*revoked_at = now;
	}
out:
	PQclear(r);
	if (open)
		rollback(c);
	conn_put(s, c);
	return rc;
}

static int agent_write(struct store *s, const struct agent *a, enum stmt id)
{
	struct pconn *c;
	struct params p = {0};
	long changed = 0;
	int rc = conn_get(s, &c);

	if (rc)
		goto out;
	params_agent(&p, a);
	if (id == S_AGENT_INSERT) {
		p_text(&p, a->status);
		p_text(&p, a->prior_status);
		p_f64(&p, a->trust_score);
		p_text(&p, a->embedding_id);
		p_i64(&p, a->registered_at);
	}
	p_i64(&p, a->updated_at); /* $19 of the insert, $14 of the update */
	if (id == S_AGENT_UPDATE)
		p_text(&p, a->embedding_id);
	rc = run(c, id, &p, &changed);
	if (!rc && id == S_AGENT_UPDATE && changed == 0)
		rc = E(NOT_FOUND);
out:
	conn_put(s, c);
	return rc;
}

static int op_agent_insert(struct store *s, const struct agent *a)
{
	return agent_write(s, a, S_AGENT_INSERT);
}

static int op_agent_update(struct store *s, const struct agent *a)
{
	return agent_write(s, a, S_AGENT_UPDATE);
}

static int op_agent_get(struct store *s, const char *org_id, const char *agent_id,
			struct agent *out)
{
	struct pconn *c;
	struct params p = {0};
	PGresult *r = NULL;
	int rc = conn_get(s, &c);

	if (rc)
		goto out;
	p_text(&p, org_id);
	p_text(&p, agent_id);
	rc = query(c, S_AGENT_GET, &p, &r);
	if (rc)
		goto out;
	if (PQntuples(r) == 0)
		rc = E(NOT_FOUND);
	else
		rc = read_agent(r, 0, out);
out:
	PQclear(r);
	conn_put(s, c);
	return rc;
}

static int op_agent_list(struct store *s, const struct agent_filter *f, int limit, int offset,
			 int (*cb)(void *, const struct agent *), void *ctx)
{
	struct pconn *c;
	struct params p = {0};
	PGresult *r = NULL;
	struct agent a;
	int rc = conn_get(s, &c);

	if (rc)
		goto out;
	p_text(&p, f->org_id);
	p_text(&p, f->status);
	p_text(&p, f->capability_type);
	p_limit(&p, limit, offset);
	rc = query(c, S_AGENT_LIST, &p, &r);
	for (int i = 0; !rc && i < PQntuples(r); i++) {
		rc = read_agent(r, i, &a);
		if (rc)
			break;
		rc = cb(ctx, &a);
		agent_release(&a);
	}
out:
	PQclear(r);
	conn_put(s, c);
	return rc;
}

static int status_on(struct pconn *c, const char *org_id, const char *agent_id,
		     char status[16])
{
	struct params p = {0};
	PGresult *r = NULL;
	int rc;

	p_text(&p, org_id);
	p_text(&p, agent_id);
	rc = query(c, S_AGENT_STATUS, &p, &r);
	if (!rc && PQntuples(r) == 0)
		rc = E(NOT_FOUND);
	if (!rc)
		col_copy(r, 0, 0, status, 16);
	PQclear(r);
	return rc;
}

static int op_agent_status(struct store *s, const char *org_id, const char *agent_id,
			   char status[16])
{
	struct pconn *c;
	int rc = conn_get(s, &c);

	if (!rc)
		rc = status_on(c, org_id, agent_id, status);
	conn_put(s, c);
	return rc;
}

static int op_agent_set_paused(struct store *s, const char *org_id, const char *agent_id,
			       int paused, int64_t now)
{
	struct pconn *c;
	struct params p = {0};
	char status[16];
	long changed = 0;
	int rc = conn_get(s, &c);

	if (rc)
		goto out;
	p_text(&p, org_id);
	p_text(&p, agent_id);
	p_i64(&p, now);
	rc = run(c, paused ? S_AGENT_PAUSE : S_AGENT_RESUME, &p, &changed);
	if (!rc && changed == 0)
		rc = status_on(c, org_id, agent_id, status); /* no-op or missing */
out:
	conn_put(s, c);
	return rc;
}

/* ---- policies ---------------------------------------------------------- */

/* Row `row` of a policy result into *p (yaml from column 9 when not NULL). */
static int read_policy(const PGresult *r, int row, struct policy *p)
{
	memset(p, 0, sizeof(*p));
	col_copy(r, row, 0, p->policy_id, sizeof(p->policy_id));
	col_copy(r, row, 1, p->org_id, sizeof(p->org_id));
	col_copy(r, row, 2, p->name, sizeof(p->name));
	p->version = (int)col_i64(r, row, 3);
	p->priority = (int)col_i64(r, row, 4);
	p->enabled = (int)col_i64(r, row, 5);
	p->seq = col_i64(r, row, 6);
	p->created_at = col_i64(r, row, 7);
	p->updated_at = col_i64(r, row, 8);
	p->yaml = col_dup(r, row, 9);
	if (!p->yaml && !PQgetisnull(r, row, 9)) {
		store_set_error("out of memory reading policy");
		return E(INTERNAL);
	}
	return 0;
}

static int policy_get_on(struct pconn *c, const char *org_id, const char *policy_id,
			 struct policy *out)
{
	struct params p = {0};
	PGresult *r = NULL;
	int rc;

	p_text(&p, org_id);
	p_text(&p, policy_id);
	rc = query(c, S_POL_GET, &p, &r);
	if (!rc)
		rc = PQntuples(r) ? read_policy(r, 0, out) : E(NOT_FOUND);
	PQclear(r);
	return rc;
}

static int op_policy_put(struct store *s, const char *org_id, const char *name, const char *yaml,
			 int priority, int enabled, int64_t now, const char *new_policy_id,
			 struct policy *out)
{
	struct pconn *c;
	struct params p = {0}, v = {0};
	PGresult *r = NULL;
	char id[ID_MAX];
	int rc = conn_get(s, &c), open = 0, version = 1;

	if (rc)
		goto out;
	rc = exec_sql(c, "BEGIN");
	if (rc)
		goto out;
	open = 1;
	/* Serialize uploads of one org (two first uploads of a name race on
	 * the UNIQUE constraint otherwise), then find the name. */
	p_text(&p, org_id);
	rc = run(c, S_ORG_LOCK, &p, NULL);
	if (rc)
		goto out;
	p_text(&p, name);
	rc = query(c, S_POL_FIND, &p, &r);
	if (rc)
		goto out;
	if (PQntuples(r)) {
		col_copy(r, 0, 0, id, sizeof(id));
		version = (int)col_i64(r, 0, 1) + 1;
	} else {
		snprintf(id, sizeof(id), "%s", new_policy_id);
	}
	PQclear(r);
	r = NULL;
	p.n = 0;
	if (version > 1) {
		p_text(&p, org_id);
		p_text(&p, id);
		p_i64(&p, version);
		p_i64(&p, priority);
		p_i64(&p, enabled ? 1 : 0);
		p_i64(&p, now);
		rc = run(c, S_POL_BUMP, &p, NULL);
	} else {
		p_text(&p, id);
		p_text(&p, org_id);
		p_text(&p, name);
		p_i64(&p, priority);
		p_i64(&p, enabled ? 1 : 0);
		p_i64(&p, now);
		rc = run(c, S_POL_INSERT, &p, NULL);
	}
	if (rc)
		goto out;
	p_text(&v, id);
	p_i64(&v, version);
	p_text(&v, yaml);
	p_i64(&v, now);
	rc = run(c, S_POLV_INSERT, &v, NULL);
	if (!rc)
		rc = exec_sql(c, "COMMIT");
	if (rc)
		goto out;
	open = 0;
	rc = policy_get_on(c, org_id, id, out);
out:
	PQclear(r);
	if (open)
		rollback(c);
	conn_put(s, c);
	return rc;
}

static int op_policy_get(struct store *s, const char *org_id, const char *policy_id,
			 struct policy *out)
{
	struct pconn *c;
	int rc = conn_get(s, &c);

	if (!rc)
		rc = policy_get_on(c, org_id, policy_id, out);
	conn_put(s, c);
	return rc;
}

static int op_policy_versions(struct store *s, const char *org_id, const char *policy_id,
			      int (*cb)(void *, int, int64_t), void *ctx)
{
	struct pconn *c;
	struct params p = {0};
	PGresult *r = NULL;
	int rc = conn_get(s, &c);

	if (rc)
		goto out;
	p_text(&p, org_id);
	p_text(&p, policy_id);
	rc = query(c, S_POLV_LIST, &p, &r);
	if (!rc && PQntuples(r) == 0)
		rc = E(NOT_FOUND);
	for (int i = 0; !rc && i < PQntuples(r); i++)
		rc = cb(ctx, (int)col_i64(r, i, 0), col_i64(r, i, 1));
out:
	PQclear(r);
	conn_put(s, c);
	return rc;
}

static int op_policy_version_yaml(struct store *s, const char *org_id, const char *policy_id,
				  int version, char **yaml)
{
	struct pconn *c;
	struct params p = {0};
	PGresult *r = NULL;
	int rc = conn_get(s, &c);

	*yaml = NULL;
	if (rc)
		goto out;
	p_text(&p, org_id);
	p_text(&p, policy_id);
	p_i64(&p, version);
	rc = query(c, S_POLV_GET, &p, &r);
	if (!rc && PQntuples(r) == 0)
		rc = E(NOT_FOUND);
	if (!rc) {
		*yaml = col_dup(r, 0, 0);
		rc = *yaml ? 0 : E(INTERNAL);
	}
out:
	PQclear(r);
	conn_put(s, c);
	return rc;
}

/* Rows of a policy result to cb (each released after the call). */
static int policy_rows(const PGresult *r, int (*cb)(void *, const struct policy *), void *ctx)
{
	struct policy p;
	int rc = 0;

	for (int i = 0; !rc && i < PQntuples(r); i++) {
		rc = read_policy(r, i, &p);
		if (!rc)
			rc = cb(ctx, &p);
		policy_release(&p);
	}
	return rc;
}

static int op_policy_list(struct store *s, const char *org_id, int limit, int offset,
			  int (*cb)(void *, const struct policy *), void *ctx)
{
	struct pconn *c;
	struct params p = {0};
	PGresult *r = NULL;
	int rc = conn_get(s, &c);

	if (rc)
		goto out;
	p_text(&p, org_id);
	p_limit(&p, limit, offset);
	rc = query(c, S_POL_LIST, &p, &r);
	if (!rc)
		rc = policy_rows(r, cb, ctx);
out:
	PQclear(r);
	conn_put(s, c);
	return rc;
}

static int op_policy_stack(struct store *s, const char *org_id,
			   int (*cb)(void *, const struct policy *), void *ctx)
{
	struct pconn *c;
	struct params p = {0};
	PGresult *r = NULL;
	int rc = conn_get(s, &c);

	if (rc)
		goto out;
	p_text(&p, org_id);
	rc = query(c, S_POL_STACK, &p, &r);
	if (!rc)
		rc = policy_rows(r, cb, ctx);
out:
	PQclear(r);
	conn_put(s, c);
	return rc;
}

static int op_policy_patch(struct store *s, const char *org_id, const char *policy_id,
			   const int *enabled, const int *priority, int64_t now)
{
	struct pconn *c;
	struct params p = {0};
	long changed = 0;
	int rc = conn_get(s, &c);

	if (rc)
		goto out;
	p_text(&p, org_id);
	p_text(&p, policy_id);
	if (enabled)
		p_i64(&p, *enabled ? 1 : 0);
	else
		p_text(&p, NULL);
	if (priority)
		p_i64(&p, *priority);
	else
		p_text(&p, NULL);
	p_i64(&p, now);
	rc = run(c, S_POL_PATCH, &p, &changed);
	if (!rc && changed == 0)
		rc = E(NOT_FOUND);
out:
	conn_put(s, c);
	return rc;
}

/* ---- delegations ------------------------------------------------------- */

static int op_delegation_insert(struct store *s, const struct delegation_record *d)
{
	struct pconn *c;
	struct params p = {0};
	int rc = conn_get(s, &c);

	if (rc)
		goto out;
	p_text(&p, d->delegation_id);
	p_text(&p, d->org_id);
	p_text(&p, d->caller_agent_id);
	p_text(&p, d->callee_agent_id[0] ? d->callee_agent_id : NULL);
	p_text(&p, d->capability);
	p_i64(&p, d->budget_cap_micros);
	if (d->has_trust)
		p_f64(&p, d->callee_trust);
	else
		p_text(&p, NULL);
	p_i64(&p, d->callee_circuit_open ? 1 : 0);
	p_text(&p, d->decision);
	p_text(&p, d->policy_id[0] ? d->policy_id : NULL);
	if (d->policy_id[0])
		p_i64(&p, d->policy_version);
	else
		p_text(&p, NULL);
	p_i64(&p, d->created_at);
	rc = run(c, S_DEL_INSERT, &p, NULL);
out:
	conn_put(s, c);
	return rc;
}

static int op_delegation_scan(struct store *s, const char *org_id, int64_t from, int64_t to,
			      int limit, int (*cb)(void *, const struct delegation_record *),
			      void *ctx)
{
	struct pconn *c;
	struct params p = {0};
	struct delegation_record d;
	PGresult *r = NULL;
	int rc = conn_get(s, &c);

	if (rc)
		goto out;
	p_text(&p, org_id);
	p_i64(&p, from);
	p_i64(&p, to);
	p_i64(&p, limit);
	rc = query(c, S_DEL_SCAN, &p, &r);
	for (int i = 0; !rc && i < PQntuples(r); i++) {
		memset(&d, 0, sizeof(d));
		col_copy(r, i, 0, d.delegation_id, sizeof(d.delegation_id));
		col_copy(r, i, 1, d.org_id, sizeof(d.org_id));
		col_copy(r, i, 2, d.caller_agent_id, sizeof(d.caller_agent_id));
		col_copy(r, i, 3, d.callee_agent_id, sizeof(d.callee_agent_id));
		col_copy(r, i, 4, d.capability, sizeof(d.capability));
		d.budget_cap_micros = col_i64(r, i, 5);
		d.has_trust = !PQgetisnull(r, i, 6);
		d.callee_trust = d.has_trust ? col_f64(r, i, 6) : 0;
		d.callee_circuit_open = (int)col_i64(r, i, 7);
		col_copy(r, i, 8, d.decision, sizeof(d.decision));
		col_copy(r, i, 9, d.policy_id, sizeof(d.policy_id));
		d.policy_version = (int)col_i64(r, i, 10);
		d.created_at = col_i64(r, i, 11);
		rc = cb(ctx, &d);
	}
out:
	PQclear(r);
	conn_put(s, c);
	return rc;
}

static int op_policy_stamp(struct store *s, const char *org_id, int64_t *stamp)
{
	struct pconn *c;
	struct params p = {0};
	PGresult *r = NULL;
	int rc = conn_get(s, &c);

	if (rc)
		goto out;
	p_text(&p, org_id);
	rc = query(c, S_POL_STAMP, &p, &r);
	if (!rc && PQntuples(r) == 0)
		rc = E(NOT_FOUND);
	if (!rc)
		*stamp = col_i64(r, 0, 0);
out:
	PQclear(r);
	conn_put(s, c);
	return rc;
}

/* ---- lifecycle ---------------------------------------------------------- */

/* One migration and its schema_migrations row, in one transaction. */
static int apply(struct pconn *c, const struct migration *m)
{
	char ver[NUM_MAX];
	const char *v[2] = {ver, m->name};
	PGresult *r;
	int rc = exec_sql(c, "BEGIN");

	if (rc)
		return rc;
	rc = exec_sql(c, m->sql);
	if (!rc) {
		snprintf(ver, sizeof(ver), "%d", m->version);
		r = PQexecParams(c->conn,
				 "INSERT INTO schema_migrations (version, name, applied_at) "
				 "VALUES ($1::integer, $2::text, floor(extract(epoch FROM now()))::bigint)",
				 2, NULL, v, NULL, NULL, 0);
		rc = check(c, r, 0);
		PQclear(r);
	}
	if (!rc)
		rc = exec_sql(c, "COMMIT");
	if (rc)
		rollback(c);
	return rc;
}

static int op_migrate(struct store *s)
{
	struct pconn *c;
	PGresult *r = NULL;
	int rc = conn_get(s, &c), locked = 0, have;

	if (rc)
		goto out;
	rc = exec_sql(c, "SELECT pg_advisory_lock(" MIGRATE_LOCK ")");
	if (rc)
		goto out;
	locked = 1;
	rc = exec_sql(c, "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, "
			 "name text NOT NULL, applied_at bigint NOT NULL)");
	if (rc)
		goto out;
	r = PQexec(c->conn, "SELECT coalesce(max(version), 0) FROM schema_migrations");
	rc = check(c, r, 0);
	if (rc)
		goto out;
	have = (int)col_i64(r, 0, 0);
	for (const struct migration *m = migrations; m->backend && !rc; m++) {
		if (strcmp(m->backend, "postgres") || m->version <= have)
			continue;
		rc = apply(c, m);
	}
out:
	PQclear(r);
	if (locked)
		PQclear(PQexec(c->conn, "SELECT pg_advisory_unlock(" MIGRATE_LOCK ")"));
	conn_put(s, c);
	return rc;
}

static void conn_close(struct pconn *c)
{
	if (!c)
		return;
	PQfinish(c->conn);
	free(c);
}

static void op_close(struct store *s)
{
	struct pg_store *x = ps(s);

	for (int i = 0; i < x->pool.n; i++)
		conn_close(x->pool.items[i]);
	pool_release(&x->pool);
	free(x);
}

/* ---- discovery ---------------------------------------------------------- */

#define VEC_DIM_MAX 8192

static int op_agent_stamp(struct store *s, int64_t *stamp)
{
	struct pconn *c;
	struct params p = {0};
	PGresult *r = NULL;
	int rc = conn_get(s, &c);

	if (rc)
		goto out;
	rc = query(c, S_DISC_STAMP, &p, &r);
	if (!rc)
		*stamp = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
out:
	PQclear(r);
	conn_put(s, c);
	return rc;
}

static const char *col_str(const PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
}

/* Row i of a change feed into b; the vector (bytea, float32) into vec. */
static void read_brief(const PGresult *r, int i, struct agent_brief *b, float *vec)
{
	int dim = PQgetisnull(r, i, 13) ? 0 : (int)strtol(PQgetvalue(r, i, 13), NULL, 10);

	memset(b, 0, sizeof(*b));
	col_copy(r, i, 0, b->org_id, sizeof(b->org_id));
	col_copy(r, i, 1, b->agent_id, sizeof(b->agent_id));
	b->name = PQgetvalue(r, i, 2);
	b->description = PQgetvalue(r, i, 3);
	col_copy(r, i, 4, b->capability_type, sizeof(b->capability_type));
	b->per_call_micros = strtoll(PQgetvalue(r, i, 5), NULL, 10);
	b->p99_latency_ms = strtoll(PQgetvalue(r, i, 6), NULL, 10);
	b->is_public = PQgetvalue(r, i, 7)[0] == '1';
	col_copy(r, i, 8, b->status, sizeof(b->status));
	b->trust_score = strtod(PQgetvalue(r, i, 9), NULL);
	b->embedding_id = col_str(r, i, 10);
	b->seq = strtoll(PQgetvalue(r, i, 11), NULL, 10);
	if (dim > 0 && dim <= VEC_DIM_MAX && !PQgetisnull(r, i, 14)) {
		size_t n = 0;
		unsigned char *raw = PQunescapeBytea((const unsigned char *)PQgetvalue(r, i, 14), &n);

		if (raw && n == (size_t)dim * sizeof(float)) {
			memcpy(vec, raw, n);
			b->vec = vec;
			b->vec_dim = dim;
			b->vec_model = col_str(r, i, 12);
		}
		PQfreemem(raw);
	}
}

static int op_agent_changes(struct store *s, int64_t after, int limit,
			    int (*cb)(void *, const struct agent_brief *), void *ctx)
{
	struct pconn *c;
	struct params p = {0};
	PGresult *r = NULL;
	struct agent_brief b;
	float *vec = malloc(VEC_DIM_MAX * sizeof(float));
	int rc = conn_get(s, &c);

	if (rc)
		goto out;
	rc = E(INTERNAL);
	if (!vec)
		goto out;
	p_i64(&p, after);
	p_i64(&p, limit);
	rc = query(c, S_DISC_CHANGES, &p, &r);
	for (int i = 0; !rc && i < PQntuples(r); i++) {
		read_brief(r, i, &b, vec);
		rc = cb(ctx, &b);
	}
out:
	PQclear(r);
	conn_put(s, c);
	free(vec);
	return rc;
}

static int op_agent_search(struct store *s, const struct agent_search *q, int limit,
			   int (*cb)(void *, const char *, const char *, int64_t, double), void *ctx)
{
	char text[SEARCH_TERMS_MAX * 70];
	struct pconn *c = NULL;
	struct params p = {0};
	PGresult *r = NULL;
	int rc;

	if (q->nterms == 0)
		return 0;
	/* to_tsquery: t1 | t2 ... (terms are [a-z0-9]: no operator inside) */
	rc = store_search_text(q, "", " | ", text, sizeof(text));
	if (rc)
		return internal("search terms too long");
	rc = conn_get(s, &c);
	if (rc)
		goto out;
	p_text(&p, text);
	p_text(&p, q->org_id);
	p_i64(&p, q->cross_org ? 1 : 0);
	p_text(&p, q->capability_type);
	p_i64(&p, q->max_price_micros);
	p_i64(&p, q->max_p99_ms);
	p_i64(&p, limit);
	rc = query(c, S_DISC_SEARCH, &p, &r);
	for (int i = 0; !rc && i < PQntuples(r); i++)
		rc = cb(ctx, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), 0,
			strtod(PQgetvalue(r, i, 2), NULL));
out:
	PQclear(r);
	conn_put(s, c);
	return rc;
}

static int op_embedding_put(struct store *s, const char *org_id, const char *agent_id,
			    const char *embedding_id, const char *model, const float *vec, int dim,
			    int64_t now)
{
	struct pconn *c;
	struct params p = {0};
	long changed = 0;
	int rc = conn_get(s, &c);

	if (rc)
		goto out;
	rc = exec_sql(c, "BEGIN");
	if (rc)
		goto out;
	p_text(&p, org_id);
	p_text(&p, agent_id);
	p_text(&p, embedding_id);
	rc = run(c, S_EMB_TOUCH, &p, &changed);
	if (!rc && changed == 0)
		rc = E(NOT_FOUND);
	if (!rc) {
		p_text(&p, model);
		p_i64(&p, dim);
		p_bytes(&p, vec, (size_t)dim * sizeof(float));
		p_i64(&p, now);
		rc = run(c, S_EMB_PUT, &p, NULL);
	}
	if (!rc)
		rc = exec_sql(c, "COMMIT");
	else
		rollback(c);
out:
	conn_put(s, c);
	return rc;
}

static const struct store_ops pg_ops = {
	.name = "postgres",
	.close = op_close,
	.migrate = op_migrate,
	.org_create = op_org_create,
	.org_get = op_org_get,
	.key_create = op_key_create,
	.key_by_lookup = op_key_by_lookup,
	.key_list = op_key_list,
	.key_revoke = op_key_revoke,
	.agent_insert = op_agent_insert,
	.agent_update = op_agent_update,
	.agent_get = op_agent_get,
	.agent_list = op_agent_list,
	.agent_set_paused = op_agent_set_paused,
	.agent_status = op_agent_status,
	.policy_put = op_policy_put,
	.policy_get = op_policy_get,
	.policy_versions = op_policy_versions,
	.policy_version_yaml = op_policy_version_yaml,
	.policy_list = op_policy_list,
	.policy_patch = op_policy_patch,
	.policy_stack = op_policy_stack,
	.policy_stamp = op_policy_stamp,
	.delegation_insert = op_delegation_insert,
	.delegation_scan = op_delegation_scan,
	.agent_stamp = op_agent_stamp,
	.agent_changes = op_agent_changes,
	.agent_search = op_agent_search,
	.embedding_put = op_embedding_put,
	.ledger_apply = pg_ledger_apply,
	.delegation_get = pg_delegation_get,
	.delegation_list = pg_delegation_list,
	.delegation_overdue = pg_delegation_overdue,
	.budget_get = pg_budget_get,
	.channel_create = pg_channel_create,
	.channel_list = pg_channel_list,
	.channel_delete = pg_channel_delete,
	.notify_unsent_approvals = pg_notify_unsent_approvals,
	.notify_enqueue = pg_notify_enqueue,
	.budget_alert_candidates = pg_budget_alert_candidates,
	.budget_alert_record = pg_budget_alert_record,
	.notify_claim = pg_notify_claim,
	.notify_finish = pg_notify_finish,
	.notify_delivery_list = pg_notify_delivery_list,
	.audit_extend = pg_audit_extend,
	.audit_sizes = pg_audit_sizes,
	.audit_nodes = pg_audit_nodes,
	.audit_list = pg_audit_list,
	.audit_scan = pg_audit_scan,
	.audit_range = pg_audit_range,
	.audit_lagging = pg_audit_lagging,
	.server_key_get = pg_server_key_get,
	.server_key_add = pg_server_key_add,
	.billing_settings_put = pg_billing_settings_put,
	.billing_settings_get = pg_billing_settings_get,
	.billing_settings_delete = pg_billing_settings_delete,
	.billing_claim = pg_billing_claim,
	.billing_finish = pg_billing_finish,
	.billing_list = pg_billing_list,
	.billing_retry = pg_billing_retry,
	.billing_count = pg_billing_count,
};

static int conn_open(const char *conninfo, struct pconn **out, char *msg, size_t msgsz)
{
	struct pconn *c = calloc(1, sizeof(*c));
	char m[MSG_MAX];
	int rc = E(INTERNAL);

	*out = NULL;
	if (!c) {
		snprintf(msg, msgsz, "out of memory");
		goto out;
	}
	c->conn = PQconnectdb(conninfo);
	if (!c->conn) {
		snprintf(msg, msgsz, "out of memory");
		goto out;
	}
	if (PQstatus(c->conn) != CONNECTION_OK) {
		oneline(m, sizeof(m), PQerrorMessage(c->conn));
		snprintf(msg, msgsz, "cannot connect to postgres: %s", m);
		goto out;
	}
	rc = session_setup(c);
	if (rc) {
		snprintf(msg, msgsz, "cannot configure postgres connection: %s", store_last_error());
		goto out;
	}
	c->ready = 1;
	*out = c;
out:
	if (rc)
		conn_close(c);
	return rc;
}

int store_pg_open(const char *conninfo, int pool, struct store **out, char *msg, size_t msgsz)
{
	struct pg_store *x;
	struct pconn *c;
	int rc;

	*out = NULL;
	x = calloc(1, sizeof(*x));
	if (!x || pool_init(&x->pool, pool)) {
		free(x);
		snprintf(msg, msgsz, "out of memory");
		return E(INTERNAL);
	}
	x->base.ops = &pg_ops;
	for (int i = 0; i < pool; i++) {
		rc = conn_open(conninfo, &c, msg, msgsz);
		if (rc) {
			op_close(&x->base);
			return rc;
		}
		pool_put_initial(&x->pool, i, c);
	}
	*out = &x->base;
	return 0;
}
