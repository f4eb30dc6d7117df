/*
 * The SQLite backend of store.h: the embedded default.
 *
 * Each pooled connection is opened on the same file in WAL mode with
 * synchronous=FULL (a committed write is fsynced before we answer 2xx) and
 * foreign keys on. Statements are prepared once per connection, on first
 * use, and reset after each call. Writers serialize on SQLite's own write
 * lock (busy_timeout waits for it); operations that read before they write
 * take it up front with BEGIN IMMEDIATE so their check and their write are
 * one atomic step. Within one process, writers first take a mutex: SQLite's
 * busy handler waits by sleeping (1, 2, 5, 10... ms), so two of our own
 * connections contending for the write lock would cost milliseconds each.
 *
 * Key and agent reads, on every authenticated request, are served from
 * caches whose validity is tied to generation counters shared by every
 * process on the file (store/keycache.h, store/shmgen.h): writes that can
 * change a cached row bump their counter after they commit.
 *
 * The delegation ledger (ledger_apply and its reads) is in sqlite_ledger.c,
 * billing delivery in sqlite_billing.c; sqlite_int.h holds what they share.
 */
#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "store/keycache.h"
#include "store/migrations.h"
#include "store/pool.h"
#include "store/sqlite_int.h"
#include "store/store.h"
#include "core/banned.h"

#define BUSY_TIMEOUT_MS 10000

enum stmt {
	S_BEGIN, S_COMMIT, S_ROLLBACK,
	S_ORG_INSERT, S_ORG_GET,
	S_KEY_INSERT, S_KEY_BY_LOOKUP, S_KEY_LIST, S_KEY_GET, S_KEY_LIVE_OTHERS, S_KEY_REVOKE,
	S_AGENT_INSERT, S_AGENT_UPDATE, S_AGENT_GET, S_AGENT_LIST, S_AGENT_STATUS,
	S_AGENT_PAUSE, S_AGENT_RESUME,
	S_POL_FIND, S_POL_SEQ, S_POL_INSERT, S_POL_BUMP, S_POLV_INSERT, S_POL_GET, S_POLV_LIST,
	S_POLV_GET, S_POL_LIST, S_POL_PATCH, S_POL_STACK, S_POL_STAMP,
	S_DEL_INSERT, S_DEL_SCAN,
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

static const char *const sql[S__COUNT] = {
	[S_BEGIN] = "BEGIN IMMEDIATE",
	[S_COMMIT] = "COMMIT",
	[S_ROLLBACK] = "ROLLBACK",
	[S_ORG_INSERT] = "INSERT INTO orgs (org_id, name, plan, created_at) VALUES (?1, ?2, ?3, ?4)",
	[S_ORG_GET] = "SELECT org_id, name, plan, created_at FROM orgs WHERE org_id = ?1",
	[S_KEY_INSERT] = "INSERT INTO api_keys (" KEY_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, NULL)",
	[S_KEY_BY_LOOKUP] = "SELECT k.key_id, k.org_id, k.lookup, k.hash, k.kind, k.name, k.prefix, "
			    "k.created_at, k.revoked_at, o.org_id, o.name, o.plan, o.created_at "
			    "FROM api_keys k JOIN orgs o ON o.org_id = k.org_id WHERE k.lookup = ?1",
	[S_KEY_LIST] = "SELECT " KEY_COLS " FROM api_keys WHERE org_id = ?1 "
		       "ORDER BY created_at DESC, key_id DESC LIMIT ?2 OFFSET ?3",
	[S_KEY_GET] = "SELECT kind, revoked_at FROM api_keys WHERE org_id = ?1 AND key_id = ?2",
	[S_KEY_LIVE_OTHERS] = "SELECT count(*) FROM api_keys WHERE org_id = ?1 AND kind = 0 "
			      "AND revoked_at IS NULL AND key_id <> ?2",
	[S_KEY_REVOKE] = "UPDATE api_keys SET revoked_at = ?3 WHERE org_id = ?1 AND key_id = ?2",
	[S_AGENT_INSERT] = "INSERT INTO agents (" AGENT_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, "
			   "?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)",
	[S_AGENT_UPDATE] = "UPDATE agents SET name = ?3, description = ?4, capability_type = ?5, "
			   "webhook_url = ?6, secret_sealed = ?7, per_call_micros = ?8, "
			   "p99_latency_ms = ?9, availability = ?10, input_schema = ?11, "
			   "output_schema = ?12, is_public = ?13, embedding_id = ?17, updated_at = ?19 "
			   "WHERE org_id = ?1 AND agent_id = ?2",
	[S_AGENT_GET] = "SELECT " AGENT_COLS " FROM agents WHERE org_id = ?1 AND agent_id = ?2",
	[S_AGENT_LIST] = "SELECT " AGENT_COLS " FROM agents WHERE org_id = ?1 "
			 "AND (?2 IS NULL OR status = ?2) AND (?3 IS NULL OR capability_type = ?3) "
			 "ORDER BY registered_at, agent_id LIMIT ?4 OFFSET ?5",
	[S_AGENT_STATUS] = "SELECT status FROM agents WHERE org_id = ?1 AND agent_id = ?2",
	[S_AGENT_PAUSE] = "UPDATE agents SET prior_status = status, status = 'paused', updated_at = ?3 "
			  "WHERE org_id = ?1 AND agent_id = ?2 AND status <> 'paused'",
	[S_POL_FIND] = "SELECT policy_id, version FROM policies WHERE org_id = ?1 AND name = ?2",
	[S_POL_SEQ] = "SELECT coalesce(max(seq), 0) + 1 FROM policies",
	[S_POL_INSERT] = "INSERT INTO policies (policy_id, org_id, name, version, priority, enabled, "
			 "seq, created_at, updated_at) VALUES (?1, ?2, ?3, 1, ?4, ?5, ?6, ?7, ?7)",
	[S_POL_BUMP] = "UPDATE policies SET version = ?3, priority = ?4, enabled = ?5, updated_at = ?6 "
		       "WHERE org_id = ?1 AND policy_id = ?2",
	[S_POLV_INSERT] = "INSERT INTO policy_versions (policy_id, version, yaml, created_at) "
			  "VALUES (?1, ?2, ?3, ?4)",
	[S_POL_GET] = "SELECT " POL_COLS ", v.yaml FROM policies p " POL_CURRENT
		      "WHERE p.org_id = ?1 AND p.policy_id = ?2",
	[S_POLV_LIST] = "SELECT v.version, v.created_at FROM policy_versions v JOIN policies p "
			"ON p.policy_id = v.policy_id WHERE p.org_id = ?1 AND v.policy_id = ?2 "
			"ORDER BY v.version",
	[S_POLV_GET] = "SELECT v.yaml FROM policy_versions v JOIN policies p ON p.policy_id = "
		       "v.policy_id WHERE p.org_id = ?1 AND v.policy_id = ?2 AND v.version = ?3",
	[S_POL_LIST] = "SELECT " POL_COLS ", NULL FROM policies p WHERE p.org_id = ?1 "
		       "ORDER BY p.priority, p.seq LIMIT ?2 OFFSET ?3",
	[S_POL_PATCH] = "UPDATE policies SET enabled = coalesce(?3, enabled), "
			"priority = coalesce(?4, priority), updated_at = ?5 "
			"WHERE org_id = ?1 AND policy_id = ?2",
	[S_POL_STACK] = "SELECT " POL_COLS ", v.yaml FROM policies p " POL_CURRENT
			"WHERE p.org_id = ?1 AND p.enabled = 1 ORDER BY p.priority, p.seq",
	[S_POL_STAMP] = "SELECT policy_gen FROM orgs WHERE org_id = ?1",
	[S_DEL_INSERT] = "INSERT INTO delegations (" DEL_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, "
			 "?7, ?8, ?9, ?10, ?11, ?12)",
	[S_DEL_SCAN] = "SELECT " DEL_COLS " FROM delegations WHERE org_id = ?1 AND created_at >= ?2 "
		       "AND created_at < ?3 ORDER BY created_at, delegation_id LIMIT ?4",
	[S_AGENT_RESUME] = "UPDATE agents SET status = CASE prior_status WHEN '' THEN 'probationary' "
			   "ELSE prior_status END, prior_status = '', updated_at = ?3 "
			   "WHERE org_id = ?1 AND agent_id = ?2 AND status = 'paused'",
};

/* The prepared statement id on c, reset and ready to bind; NULL on error. */
static sqlite3_stmt *stmt(struct sconn *c, enum stmt id)
{
	return prepared(c, &c->st[id], sql[id]);
}

static int txn(struct sconn *c, enum stmt id)
{
	sqlite3_stmt *st = stmt(c, id);

	return st ? run(c, st) : E(INTERNAL);
}

static void read_org(sqlite3_stmt *st, int i, struct org *o)
{
	col_copy(st, i, o->org_id, sizeof(o->org_id));
	col_copy(st, i + 1, o->name, sizeof(o->name));
	col_copy(st, i + 2, o->plan, sizeof(o->plan));
	o->created_at = sqlite3_column_int64(st, i + 3);
}

static void read_key(sqlite3_stmt *st, struct api_key *k)
{
	const void *h = sqlite3_column_blob(st, 3);

	col_copy(st, 0, k->key_id, sizeof(k->key_id));
	col_copy(st, 1, k->org_id, sizeof(k->org_id));
	col_copy(st, 2, k->lookup, sizeof(k->lookup));
	memset(k->hash, 0, sizeof(k->hash));
	if (h && sqlite3_column_bytes(st, 3) == (int)sizeof(k->hash))
		memcpy(k->hash, h, sizeof(k->hash));
	k->kind = sqlite3_column_int(st, 4);
	col_copy(st, 5, k->name, sizeof(k->name));
	col_copy(st, 6, k->prefix, sizeof(k->prefix));
	k->created_at = sqlite3_column_int64(st, 7);
	k->revoked_at = sqlite3_column_int64(st, 8); /* NULL reads as 0 */
}

/* 0 or E(INTERNAL) (out of memory); a is released on failure. */
static int read_agent(sqlite3_stmt *st, struct agent *a)
{
	int n = sqlite3_column_bytes(st, 6);

	memset(a, 0, sizeof(*a));
	col_copy(st, 0, a->org_id, sizeof(a->org_id));
	col_copy(st, 1, a->agent_id, sizeof(a->agent_id));
	a->name = col_dup(st, 2);
	a->description = col_dup(st, 3);
	col_copy(st, 4, a->capability_type, sizeof(a->capability_type));
	a->webhook_url = col_dup(st, 5);
	a->secret_sealed = malloc(n > 0 ? (size_t)n : 1);
	if (a->secret_sealed && n > 0)
		memcpy(a->secret_sealed, sqlite3_column_blob(st, 6), (size_t)n);
	a->secret_sealed_len = (size_t)n;
	a->per_call_micros = sqlite3_column_int64(st, 7);
	a->p99_latency_ms = sqlite3_column_int64(st, 8);
	a->availability = sqlite3_column_double(st, 9);
	a->input_schema = col_dup(st, 10);
	a->output_schema = col_dup(st, 11);
	a->is_public = sqlite3_column_int(st, 12);
	col_copy(st, 13, a->status, sizeof(a->status));
	col_copy(st, 14, a->prior_status, sizeof(a->prior_status));
	a->trust_score = sqlite3_column_double(st, 15);
	a->embedding_id = col_dup(st, 16);
	a->registered_at = sqlite3_column_int64(st, 17);
	a->updated_at = sqlite3_column_int64(st, 18);
	if (!a->name || !a->description || !a->webhook_url || !a->secret_sealed ||
	    !a->input_schema || !a->output_schema) {
		agent_release(a);
		store_set_error("out of memory reading agent");
		return E(INTERNAL);
	}
	return 0;
}

static void bind_agent(sqlite3_stmt *st, const struct agent *a)
{
	bind_text(st, 1, a->org_id);
	bind_text(st, 2, a->agent_id);
	bind_text(st, 3, a->name);
	bind_text(st, 4, a->description);
	bind_text(st, 5, a->capability_type);
	bind_text(st, 6, a->webhook_url);
	sqlite3_bind_blob(st, 7, a->secret_sealed, (int)a->secret_sealed_len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 8, a->per_call_micros);
	sqlite3_bind_int64(st, 9, a->p99_latency_ms);
	sqlite3_bind_double(st, 10, a->availability);
	bind_text(st, 11, a->input_schema);
	bind_text(st, 12, a->output_schema);
	sqlite3_bind_int(st, 13, a->is_public ? 1 : 0);
	bind_text(st, 14, a->status);
	bind_text(st, 15, a->prior_status);
	sqlite3_bind_double(st, 16, a->trust_score);
	bind_text(st, 17, a->embedding_id);
	sqlite3_bind_int64(st, 18, a->registered_at);
	sqlite3_bind_int64(st, 19, a->updated_at);
}

/* ---- operations -------------------------------------------------------- */

static int key_insert(struct sconn *c, const struct api_key *k)
{
	sqlite3_stmt *st = stmt(c, S_KEY_INSERT);

	if (!st)
		return E(INTERNAL);
	bind_text(st, 1, k->key_id);
	bind_text(st, 2, k->org_id);
	bind_text(st, 3, k->lookup);
	sqlite3_bind_blob(st, 4, k->hash, sizeof(k->hash), SQLITE_STATIC);
	sqlite3_bind_int(st, 5, k->kind);
	bind_text(st, 6, k->name);
	bind_text(st, 7, k->prefix);
	sqlite3_bind_int64(st, 8, k->created_at);
	return run(c, st);
}

static int op_org_create(struct store *s, const struct org *o, const struct api_key *live,
			 const struct api_key *test)
{
	WITH_WRITER(s, c);
	sqlite3_stmt *st;
	int rc = txn(c, S_BEGIN);

	if (rc)
		goto out;
	st = stmt(c, S_ORG_INSERT);
	rc = st ? 0 : E(INTERNAL);
	if (!rc) {
		bind_text(st, 1, o->org_id);
		bind_text(st, 2, o->name);
		bind_text(st, 3, o->plan);
		sqlite3_bind_int64(st, 4, o->created_at);
		rc = run(c, st);
	}
	if (!rc)
		rc = key_insert(c, live);
	if (!rc)
		rc = key_insert(c, test);
	if (!rc)
		rc = txn(c, S_COMMIT);
	if (rc)
		txn(c, S_ROLLBACK);
out:
	END_WRITER(s, c);
	return rc;
}

static int op_org_get(struct store *s, const char *org_id, struct org *out)
{
	WITH_CONN(s, c);
	sqlite3_stmt *st = stmt(c, S_ORG_GET);
	int rc = E(INTERNAL), src;

	if (!st)
		goto out;
	bind_text(st, 1, org_id);
	src = sqlite3_step(st);
	if (src == SQLITE_ROW) {
		read_org(st, 0, out);
		rc = 0;
	} else {
		rc = src == SQLITE_DONE ? E(NOT_FOUND) : fail(c, src);
	}
	done(st);
out:
	END_CONN(s, c);
	return rc;
}

static int op_key_create(struct store *s, const struct api_key *k)
{
	WITH_WRITER(s, c);
	int rc = key_insert(c, k);

	END_WRITER(s, c);
	return rc;
}

static int op_key_by_lookup(struct store *s, const char *lookup, struct key_auth *out)
{
	uint64_t gen;

	if (keycache_get(&ss(s)->cache, lookup, out))
		return 0;
	gen = shmgen_get(&ss(s)->cache.gen, GEN_KEYS); /* before the read: shmgen.h */
	WITH_CONN(s, c);
	sqlite3_stmt *st = stmt(c, S_KEY_BY_LOOKUP);
	int rc = E(INTERNAL), src;

	if (!st)
		goto out;
	bind_text(st, 1, lookup);
	src = sqlite3_step(st);
	if (src == SQLITE_ROW) {
		read_key(st, &out->key);
		read_org(st, 9, &out->org);
		keycache_put(&ss(s)->cache, gen, out);
		rc = 0;
	} else {
		rc = src == SQLITE_DONE ? E(NOT_FOUND) : fail(c, src);
	}
	done(st);
out:
	END_CONN(s, c);
	return rc;
}

static int op_key_list(struct store *s, const char *org_id, int limit, int offset,
		       int (*cb)(void *, const struct api_key *), void *ctx)
{
	WITH_CONN(s, c);
	sqlite3_stmt *st = stmt(c, S_KEY_LIST);
	struct api_key k;
	int rc = E(INTERNAL), src;

	if (!st)
		goto out;
	bind_text(st, 1, org_id);
	sqlite3_bind_int(st, 2, limit);
	sqlite3_bind_int(st, 3, offset);
	rc = 0;
	while (!rc && (src = sqlite3_step(st)) == SQLITE_ROW) {
		read_key(st, &k);
		rc = cb(ctx, &k);
	}
	if (!rc && src != SQLITE_DONE)
		rc = fail(c, src);
	done(st);
out:
	END_CONN(s, c);
	return rc;
}

static int op_key_revoke(struct store *s, const char *org_id, const char *key_id, int64_t now,
			 int64_t *revoked_at)
{
	WITH_WRITER(s, c);
	sqlite3_stmt *st;
	int rc = txn(c, S_BEGIN), src, kind = 0;
	int64_t prev = 0, others = 0;

	if (rc)
		goto out;
	st = stmt(c, S_KEY_GET);
	if (!st) {
		rc = E(INTERNAL);
		goto rollback;
	}
	bind_text(st, 1, org_id);
	bind_text(st, 2, key_id);
	src = sqlite3_step(st);
	if (src == SQLITE_ROW) {
		kind = sqlite3_column_int(st, 0);
		prev = sqlite3_column_int64(st, 1);
	}
	rc = src == SQLITE_ROW ? 0 : src == SQLITE_DONE ? E(NOT_FOUND) : fail(c, src);
	done(st);
	if (rc)
		goto rollback;
	if (prev) {
		*revoked_at = prev;
		goto rollback; /* nothing to write */
	}
	if (kind == KEY_LIVE) {
		st = stmt(c, S_KEY_LIVE_OTHERS);
		if (!st) {
			rc = E(INTERNAL);
			goto rollback;
		}
		bind_text(st, 1, org_id);
		bind_text(st, 2, key_id);
		src = sqlite3_step(st);
		if (src == SQLITE_ROW)
			others = sqlite3_column_int64(st, 0);
		else
			rc = fail(c, src);
		done(st);
		if (!rc && others == 0)
			rc = E(CONFLICT);
		if (rc)
			goto rollback;
	}
	st = stmt(c, S_KEY_REVOKE);
	if (!st) {
		rc = E(INTERNAL);
		goto rollback;
	}
	bind_text(st, 1, org_id);
	bind_text(st, 2, key_id);
	sqlite3_bind_int64(st, 3, now);
	rc = run(c, st);
	if (!rc)
		rc = txn(c, S_COMMIT);
	if (!rc) {
		*revoked_at = now;
		shmgen_bump(&ss(s)->cache.gen, GEN_KEYS); /* after the commit: shmgen.h */
		goto out;
	}
rollback:
	txn(c, S_ROLLBACK);
out:
	END_WRITER(s, c);
	return rc;
}

static int agent_write(struct store *s, const struct agent *a, enum stmt id)
{
	WITH_WRITER(s, c);
	sqlite3_stmt *st = stmt(c, id);
	int rc = E(INTERNAL);

	if (!st)
		goto out;
	bind_agent(st, a);
	rc = run(c, st);
	if (!rc && id == S_AGENT_UPDATE && sqlite3_changes(c->db) == 0)
		rc = E(NOT_FOUND);
	if (!rc) /* an insert too: discovery indexes follow the counter */
		shmgen_bump(&ss(s)->cache.gen, GEN_AGENTS);
out:
	END_WRITER(s, c);
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
	uint64_t gen;

	if (agentcache_get(&ss(s)->cache, org_id, agent_id, out))
		return 0;
	gen = shmgen_get(&ss(s)->cache.gen, GEN_AGENTS);
	WITH_CONN(s, c);
	sqlite3_stmt *st = stmt(c, S_AGENT_GET);
	int rc = E(INTERNAL), src;

	if (!st)
		goto out;
	bind_text(st, 1, org_id);
	bind_text(st, 2, agent_id);
	src = sqlite3_step(st);
	if (src == SQLITE_ROW) {
		rc = read_agent(st, out);
		if (!rc)
			agentcache_put(&ss(s)->cache, gen, out);
	} else
		rc = src == SQLITE_DONE ? E(NOT_FOUND) : fail(c, src);
	done(st);
out:
	END_CONN(s, c);
	return rc;
}

static int op_agent_list(struct store *s, const struct agent_filter *f, int limit, int offset,
			 int (*cb)(void *, const struct agent *), void *ctx)
{
	WITH_CONN(s, c);
	sqlite3_stmt *st = stmt(c, S_AGENT_LIST);
	struct agent a;
	int rc = E(INTERNAL), src;

	if (!st)
		goto out;
	bind_text(st, 1, f->org_id);
	bind_text(st, 2, f->status);
	bind_text(st, 3, f->capability_type);
	sqlite3_bind_int(st, 4, limit);
	sqlite3_bind_int(st, 5, offset);
	rc = 0;
	while (!rc && (src = sqlite3_step(st)) == SQLITE_ROW) {
		rc = read_agent(st, &a);
		if (rc)
			break;
		rc = cb(ctx, &a);
		agent_release(&a);
	}
	if (!rc && src != SQLITE_DONE)
		rc = fail(c, src);
	done(st);
out:
	END_CONN(s, c);
	return rc;
}

static int status_on(struct sconn *c, const char *org_id, const char *agent_id,
		     char status[16])
{
	sqlite3_stmt *st = stmt(c, S_AGENT_STATUS);
	int rc, src;

	if (!st)
		return E(INTERNAL);
	bind_text(st, 1, org_id);
	bind_text(st, 2, agent_id);
	src = sqlite3_step(st);
	if (src == SQLITE_ROW) {
		col_copy(st, 0, status, 16);
		rc = 0;
	} else {
		rc = src == SQLITE_DONE ? E(NOT_FOUND) : fail(c, src);
	}
	done(st);
	return rc;
}

static int op_agent_status(struct store *s, const char *org_id, const char *agent_id,
			   char status[16])
{
	if (agentcache_status(&ss(s)->cache, org_id, agent_id, status))
		return 0;
	WITH_CONN(s, c);
	int rc = status_on(c, org_id, agent_id, status);

	END_CONN(s, c);
	return rc;
}

static int op_agent_set_paused(struct store *s, const char *org_id, const char *agent_id,
			       int paused, int64_t now)
{
	WITH_WRITER(s, c);
	sqlite3_stmt *st = stmt(c, paused ? S_AGENT_PAUSE : S_AGENT_RESUME);
	char status[16];
	int rc = E(INTERNAL);

	if (!st)
		goto out;
	bind_text(st, 1, org_id);
	bind_text(st, 2, agent_id);
	sqlite3_bind_int64(st, 3, now);
	rc = run(c, st);
	if (!rc && sqlite3_changes(c->db) > 0)
		shmgen_bump(&ss(s)->cache.gen, GEN_AGENTS);
	else if (!rc)
		rc = status_on(c, org_id, agent_id, status); /* no-op or missing */
out:
	END_WRITER(s, c);
	return rc;
}

/* ---- policies ---------------------------------------------------------- */

/* 0 or E(INTERNAL); p->yaml from column 9 when present. */
static int read_policy(sqlite3_stmt *st, struct policy *p)
{
	memset(p, 0, sizeof(*p));
	col_copy(st, 0, p->policy_id, sizeof(p->policy_id));
	col_copy(st, 1, p->org_id, sizeof(p->org_id));
	col_copy(st, 2, p->name, sizeof(p->name));
	p->version = sqlite3_column_int(st, 3);
	p->priority = sqlite3_column_int(st, 4);
	p->enabled = sqlite3_column_int(st, 5);
	p->seq = sqlite3_column_int64(st, 6);
	p->created_at = sqlite3_column_int64(st, 7);
	p->updated_at = sqlite3_column_int64(st, 8);
	p->yaml = col_dup(st, 9);
	if (!p->yaml && sqlite3_column_type(st, 9) != SQLITE_NULL) {
		store_set_error("out of memory reading policy");
		return E(INTERNAL);
	}
	return 0;
}

/* One row of statement st into *out (NOT_FOUND when none). */
static int policy_row(struct sconn *c, sqlite3_stmt *st, struct policy *out)
{
	int src = sqlite3_step(st), rc;

	if (src == SQLITE_ROW)
		rc = read_policy(st, out);
	else
		rc = src == SQLITE_DONE ? E(NOT_FOUND) : fail(c, src);
	done(st);
	return rc;
}

static int policy_get_on(struct sconn *c, const char *org_id, const char *policy_id,
			 struct policy *out)
{
	sqlite3_stmt *st = stmt(c, S_POL_GET);

	if (!st)
		return E(INTERNAL);
	bind_text(st, 1, org_id);
	bind_text(st, 2, policy_id);
	return policy_row(c, st, out);
}

/* The next version of an existing policy, or a new one; in a transaction. */
static int policy_write(struct sconn *c, const char *org_id, const char *name, const char *yaml,
			int priority, int enabled, int64_t now, const char *new_id, char *id_out)
{
	sqlite3_stmt *st = stmt(c, S_POL_FIND);
	int src, version = 1, rc;
	int64_t seq = 0;

	if (!st)
		return E(INTERNAL);
	bind_text(st, 1, org_id);
	bind_text(st, 2, name);
	src = sqlite3_step(st);
	if (src == SQLITE_ROW) {
		col_copy(st, 0, id_out, ID_MAX);
		version = sqlite3_column_int(st, 1) + 1;
	}
	rc = src == SQLITE_ROW || src == SQLITE_DONE ? 0 : fail(c, src);
	done(st);
	if (rc)
		return rc;
	if (version > 1) {
		st = stmt(c, S_POL_BUMP);
		if (!st)
			return E(INTERNAL);
		bind_text(st, 1, org_id);
		bind_text(st, 2, id_out);
		sqlite3_bind_int(st, 3, version);
		sqlite3_bind_int(st, 4, priority);
		sqlite3_bind_int(st, 5, enabled ? 1 : 0);
		sqlite3_bind_int64(st, 6, now);
	} else {
		snprintf(id_out, ID_MAX, "%s", new_id);
		st = stmt(c, S_POL_SEQ);
		if (!st)
			return E(INTERNAL);
		src = sqlite3_step(st);
		seq = src == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
		done(st);
		if (src != SQLITE_ROW)
			return fail(c, src);
		st = stmt(c, S_POL_INSERT);
		if (!st)
			return E(INTERNAL);
		bind_text(st, 1, id_out);
		bind_text(st, 2, org_id);
		bind_text(st, 3, name);
		sqlite3_bind_int(st, 4, priority);
		sqlite3_bind_int(st, 5, enabled ? 1 : 0);
		sqlite3_bind_int64(st, 6, seq);
		sqlite3_bind_int64(st, 7, now);
	}
	rc = run(c, st);
	if (rc)
		return rc;
	st = stmt(c, S_POLV_INSERT);
	if (!st)
		return E(INTERNAL);
	bind_text(st, 1, id_out);
	sqlite3_bind_int(st, 2, version);
	bind_text(st, 3, yaml);
	sqlite3_bind_int64(st, 4, now);
	return run(c, st);
}

static int op_policy_put(struct store *s, const char *org_id, const char *name, const char *yaml,
			 int priority, int enabled, int64_t now, const char *new_policy_id,
			 struct policy *out)
{
	WITH_WRITER(s, c);
	char id[ID_MAX] = "";
	int rc = txn(c, S_BEGIN);

	if (rc)
		goto out;
	rc = policy_write(c, org_id, name, yaml, priority, enabled, now, new_policy_id, id);
	if (!rc)
		rc = txn(c, S_COMMIT);
	if (rc) {
		txn(c, S_ROLLBACK);
		goto out;
	}
	rc = policy_get_on(c, org_id, id, out);
out:
	END_WRITER(s, c);
	return rc;
}

static int op_policy_get(struct store *s, const char *org_id, const char *policy_id,
			 struct policy *out)
{
	WITH_CONN(s, c);
	int rc = policy_get_on(c, org_id, policy_id, out);

	END_CONN(s, c);
	return rc;
}

static int op_policy_versions(struct store *s, const char *org_id, const char *policy_id,
			      int (*cb)(void *, int, int64_t), void *ctx)
{
	WITH_CONN(s, c);
	sqlite3_stmt *st = stmt(c, S_POLV_LIST);
	int rc = E(INTERNAL), src, n = 0;

	if (!st)
		goto out;
	bind_text(st, 1, org_id);
	bind_text(st, 2, policy_id);
	rc = 0;
	while (!rc && (src = sqlite3_step(st)) == SQLITE_ROW) {
		n++;
		rc = cb(ctx, sqlite3_column_int(st, 0), sqlite3_column_int64(st, 1));
	}
	if (!rc && src != SQLITE_DONE)
		rc = fail(c, src);
	if (!rc && n == 0)
		rc = E(NOT_FOUND);
	done(st);
out:
	END_CONN(s, c);
	return rc;
}

static int op_policy_version_yaml(struct store *s, const char *org_id, const char *policy_id,
				  int version, char **yaml)
{
	WITH_CONN(s, c);
	sqlite3_stmt *st = stmt(c, S_POLV_GET);
	int rc = E(INTERNAL), src;

	*yaml = NULL;
	if (!st)
		goto out;
	bind_text(st, 1, org_id);
	bind_text(st, 2, policy_id);
	sqlite3_bind_int(st, 3, version);
	src = sqlite3_step(st);
	if (src == SQLITE_ROW) {
		*yaml = col_dup(st, 0);
		rc = *yaml ? 0 : E(INTERNAL);
	} else {
		rc = src == SQLITE_DONE ? E(NOT_FOUND) : fail(c, src);
	}
	done(st);
out:
	END_CONN(s, c);
	return rc;
}

/* Rows of a policy statement to cb (each released after the call). */
static int policy_rows(struct sconn *c, sqlite3_stmt *st,
		       int (*cb)(void *, const struct policy *), void *ctx)
{
	struct policy p;
	int rc = 0, src;

	while (!rc && (src = sqlite3_step(st)) == SQLITE_ROW) {
		rc = read_policy(st, &p);
		if (!rc)
			rc = cb(ctx, &p);
		policy_release(&p);
	}
	if (!rc && src != SQLITE_DONE)
		rc = fail(c, src);
	done(st);
	return rc;
}

static int op_policy_list(struct store *s, const char *org_id, int limit, int offset,
			  int (*cb)(void *, const struct policy *), void *ctx)
{
	WITH_CONN(s, c);
	sqlite3_stmt *st = stmt(c, S_POL_LIST);
	int rc = E(INTERNAL);

	if (st) {
		bind_text(st, 1, org_id);
		sqlite3_bind_int(st, 2, limit);
		sqlite3_bind_int(st, 3, offset);
		rc = policy_rows(c, st, cb, ctx);
	}
	END_CONN(s, c);
	return rc;
}

static int op_policy_stack(struct store *s, const char *org_id,
			   int (*cb)(void *, const struct policy *), void *ctx)
{
	WITH_CONN(s, c);
	sqlite3_stmt *st = stmt(c, S_POL_STACK);
	int rc = E(INTERNAL);

	if (st) {
		bind_text(st, 1, org_id);
		rc = policy_rows(c, st, cb, ctx);
	}
	END_CONN(s, c);
	return rc;
}

static int op_policy_patch(struct store *s, const char *org_id, const char *policy_id,
			   const int *enabled, const int *priority, int64_t now)
{
	WITH_WRITER(s, c);
	sqlite3_stmt *st = stmt(c, S_POL_PATCH);
	int rc = E(INTERNAL);

	if (!st)
		goto out;
	bind_text(st, 1, org_id);
	bind_text(st, 2, policy_id);
	if (enabled)
		sqlite3_bind_int(st, 3, *enabled ? 1 : 0);
	else
		sqlite3_bind_null(st, 3);
	if (priority)
		sqlite3_bind_int(st, 4, *priority);
	else
		sqlite3_bind_null(st, 4);
	sqlite3_bind_int64(st, 5, now);
	rc = run(c, st);
	if (!rc && sqlite3_changes(c->db) == 0)
		rc = E(NOT_FOUND);
out:
	END_WRITER(s, c);
	return rc;
}

/* ---- delegations ------------------------------------------------------- */

static int op_delegation_insert(struct store *s, const struct delegation_record *d)
{
	WITH_WRITER(s, c);
	sqlite3_stmt *st = stmt(c, S_DEL_INSERT);
	int rc = E(INTERNAL);

	if (!st)
		goto out;
	bind_text(st, 1, d->delegation_id);
	bind_text(st, 2, d->org_id);
	bind_text(st, 3, d->caller_agent_id);
	bind_text(st, 4, d->callee_agent_id[0] ? d->callee_agent_id : NULL);
	bind_text(st, 5, d->capability);
	sqlite3_bind_int64(st, 6, d->budget_cap_micros);
	if (d->has_trust)
		sqlite3_bind_double(st, 7, d->callee_trust);
	else
		sqlite3_bind_null(st, 7);
	sqlite3_bind_int(st, 8, d->callee_circuit_open ? 1 : 0);
	bind_text(st, 9, d->decision);
	bind_text(st, 10, d->policy_id[0] ? d->policy_id : NULL);
	if (d->policy_id[0])
		sqlite3_bind_int(st, 11, d->policy_version);
	else
		sqlite3_bind_null(st, 11);
	sqlite3_bind_int64(st, 12, d->created_at);
	rc = run(c, st);
out:
	END_WRITER(s, c);
	return rc;
}

static int op_delegation_scan(struct store *s, const char *org_id, int64_t from, int64_t to,
			      int limit, int (*cb)(void *, const struct delegation_record *),
			      void *ctx)
{
	WITH_CONN(s, c);
	sqlite3_stmt *st = stmt(c, S_DEL_SCAN);
	struct delegation_record d;
	int rc = E(INTERNAL), src;

	if (!st)
		goto out;
	bind_text(st, 1, org_id);
	sqlite3_bind_int64(st, 2, from);
	sqlite3_bind_int64(st, 3, to);
	sqlite3_bind_int(st, 4, limit);
	rc = 0;
	while (!rc && (src = sqlite3_step(st)) == SQLITE_ROW) {
		memset(&d, 0, sizeof(d));
		col_copy(st, 0, d.delegation_id, sizeof(d.delegation_id));
		col_copy(st, 1, d.org_id, sizeof(d.org_id));
		col_copy(st, 2, d.caller_agent_id, sizeof(d.caller_agent_id));
		col_copy(st, 3, d.callee_agent_id, sizeof(d.callee_agent_id));
		col_copy(st, 4, d.capability, sizeof(d.capability));
		d.budget_cap_micros = sqlite3_column_int64(st, 5);
		d.has_trust = sqlite3_column_type(st, 6) != SQLITE_NULL;
		d.callee_trust = sqlite3_column_double(st, 6);
		d.callee_circuit_open = sqlite3_column_int(st, 7);
		col_copy(st, 8, d.decision, sizeof(d.decision));
		col_copy(st, 9, d.policy_id, sizeof(d.policy_id));
		d.policy_version = sqlite3_column_int(st, 10);
		d.created_at = sqlite3_column_int64(st, 11);
		rc = cb(ctx, &d);
	}
	if (!rc && src != SQLITE_DONE)
		rc = fail(c, src);
	done(st);
out:
	END_CONN(s, c);
	return rc;
}

static int op_policy_stamp(struct store *s, const char *org_id, int64_t *stamp)
{
	WITH_CONN(s, c);
	sqlite3_stmt *st = stmt(c, S_POL_STAMP);
	int rc = E(INTERNAL), src;

	if (!st)
		goto out;
	bind_text(st, 1, org_id);
	src = sqlite3_step(st);
	if (src == SQLITE_ROW) {
		*stamp = sqlite3_column_int64(st, 0);
		rc = 0;
	} else {
		rc = src == SQLITE_DONE ? E(NOT_FOUND) : fail(c, src);
	}
	done(st);
out:
	END_CONN(s, c);
	return rc;
}

/* ---- lifecycle ---------------------------------------------------------- */

static int exec(struct sconn *c, const char *q)
{
	char *msg = NULL;
	int src = sqlite3_exec(c->db, q, NULL, NULL, &msg);

	if (src) {
		store_set_error("sqlite: %s", msg ? msg : sqlite3_errstr(src));
		sqlite3_free(msg);
		return E(INTERNAL);
	}
	return 0;
}

static int op_migrate(struct store *s)
{
	WITH_WRITER(s, c);
	sqlite3_stmt *st = NULL;
	int rc, have = 0;
	char q[160];

	rc = exec(c, "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
		     "name TEXT NOT NULL, applied_at INTEGER NOT NULL)");
	if (!rc)
		rc = exec(c, "BEGIN IMMEDIATE");
	if (rc)
		goto out;
	if (sqlite3_prepare_v2(c->db, "SELECT coalesce(max(version), 0) FROM schema_migrations",
			       -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		have = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	for (const struct migration *m = migrations; m->backend && !rc; m++) {
		if (strcmp(m->backend, "sqlite") || m->version <= have)
			continue;
		rc = exec(c, m->sql);
		snprintf(q, sizeof(q),
			 "INSERT INTO schema_migrations VALUES (%d, '%s', strftime('%%s','now'))",
			 m->version, m->name);
		if (!rc)
			rc = exec(c, q);
	}
	if (!rc)
		rc = exec(c, "COMMIT");
	else
		exec(c, "ROLLBACK");
out:
	END_WRITER(s, c);
	return rc;
}

static void conn_close(struct sconn *c)
{
	if (!c)
		return;
	for (int i = 0; i < S__COUNT; i++)
		sqlite3_finalize(c->st[i]);
	for (int i = 0; i < SQLITE_LEDGER_STMTS; i++)
		sqlite3_finalize(c->ledger[i]);
	for (int i = 0; i < SQLITE_DISC_STMTS; i++)
		sqlite3_finalize(c->disc[i]);
	for (int i = 0; i < SQLITE_BILLING_STMTS; i++)
		sqlite3_finalize(c->billing[i]);
	sqlite3_close(c->db);
	free(c);
}

static void op_close(struct store *s)
{
	struct sqlite_store *x = ss(s);

	for (int i = 0; i < x->pool.n; i++)
		conn_close(x->pool.items[i]);
	pool_release(&x->pool);
	rowcache_release(&x->cache);
	pthread_mutex_destroy(&x->writer);
	free(x);
}

static const struct store_ops sqlite_ops = {
	.name = "sqlite",
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
	.ledger_apply = sqlite_ledger_apply,
	.delegation_get = sqlite_delegation_get,
	.delegation_list = sqlite_delegation_list,
	.delegation_overdue = sqlite_delegation_overdue,
	.budget_get = sqlite_budget_get,
	.agent_stamp = sqlite_agent_stamp,
	.agent_changes = sqlite_agent_changes,
	.agent_search = sqlite_agent_search,
	.embedding_put = sqlite_embedding_put,
	.channel_create = sqlite_channel_create,
	.channel_list = sqlite_channel_list,
	.channel_delete = sqlite_channel_delete,
	.notify_unsent_approvals = sqlite_notify_unsent_approvals,
	.notify_enqueue = sqlite_notify_enqueue,
	.budget_alert_candidates = sqlite_budget_alert_candidates,
	.budget_alert_record = sqlite_budget_alert_record,
	.notify_claim = sqlite_notify_claim,
	.notify_finish = sqlite_notify_finish,
	.notify_delivery_list = sqlite_notify_delivery_list,
	.audit_extend = sqlite_audit_extend,
	.audit_sizes = sqlite_audit_sizes,
	.audit_nodes = sqlite_audit_nodes,
	.audit_list = sqlite_audit_list,
	.audit_scan = sqlite_audit_scan,
	.audit_range = sqlite_audit_range,
	.audit_lagging = sqlite_audit_lagging,
	.server_key_get = sqlite_server_key_get,
	.server_key_add = sqlite_server_key_add,
	.billing_settings_put = sqlite_billing_settings_put,
	.billing_settings_get = sqlite_billing_settings_get,
	.billing_settings_delete = sqlite_billing_settings_delete,
	.billing_claim = sqlite_billing_claim,
	.billing_finish = sqlite_billing_finish,
	.billing_list = sqlite_billing_list,
	.billing_retry = sqlite_billing_retry,
	.billing_count = sqlite_billing_count,
};

static int conn_open(const char *path, struct sconn **out, char *msg, size_t msgsz)
{
	struct sconn *c = calloc(1, sizeof(*c) + S__COUNT * sizeof(c->st[0]));
	int src;

	*out = NULL;
	if (!c)
		return E(INTERNAL);
	src = sqlite3_open_v2(path, &c->db,
			      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (src) {
		snprintf(msg, msgsz, "cannot open sqlite database %s: %s", path,
			 c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(src));
		conn_close(c);
		return E(INTERNAL);
	}
	sqlite3_busy_timeout(c->db, BUSY_TIMEOUT_MS);
	if (exec(c, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; "
		     "PRAGMA mmap_size=268435456;")) {
		snprintf(msg, msgsz, "cannot configure sqlite database %s: %s", path,
			 store_last_error());
		conn_close(c);
		return E(INTERNAL);
	}
	*out = c;
	return 0;
}

int store_sqlite_open(const char *path, int pool, struct store **out, char *msg, size_t msgsz)
{
	struct sqlite_store *x;
	struct sconn *c;
	char genpath[4096];
	int rc;

	*out = NULL;
	/* Each pooled connection is used by one thread at a time, so SQLite's
	 * own mutexes are not needed; memory statistics would take a global
	 * mutex on every allocation. Both are process-wide settings that must
	 * precede sqlite3_initialize(), so they only apply on the first open. */
	sqlite3_config(SQLITE_CONFIG_MULTITHREAD);
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
	if (!sqlite3_compileoption_used("ENABLE_FTS5")) {
		snprintf(msg, msgsz, "this SQLite library was built without FTS5");
		return E(INTERNAL);
	}
	x = calloc(1, sizeof(*x));
	if (!x || pool_init(&x->pool, pool)) {
		free(x);
		snprintf(msg, msgsz, "out of memory");
		return E(INTERNAL);
	}
	x->base.ops = &sqlite_ops;
	pthread_mutex_init(&x->writer, NULL);
	snprintf(genpath, sizeof(genpath), "%s-nexra-gen", path);
	if (rowcache_init(&x->cache, genpath)) {
		snprintf(msg, msgsz, "cannot create %s: %s", genpath, strerror(errno));
		op_close(&x->base);
		return E(INTERNAL);
	}
	for (int i = 0; i < pool; i++) {
		rc = conn_open(path, &c, msg, msgsz);
		if (rc) {
			op_close(&x->base);
			return rc;
		}
		pool_put_initial(&x->pool, i, c);
	}
	*out = &x->base;
	return 0;
}
