/*
 * Discovery's operations on the SQLite backend (store.h "Discovery"): the
 * change feed the in-memory index follows (disc_seq, kept by triggers of
 * migration 0008 in commit order, since SQLite has one writer at a time),
 * FTS5 search ranked by bm25, and provider vectors.
 *
 * The stamp is the shared generation counter of agent rows (shmgen.h): every
 * write to agents in any process on the file bumps it after its commit, so
 * an unchanged stamp means there is nothing to fetch and costs no query.
 */
#include "store/shmgen.h"
#include "store/sqlite_int.h"
#include "core/banned.h"

#define VEC_DIM_MAX 8192

enum dstmt { D_CHANGES, D_SEARCH, D_BEGIN, D_TOUCH, D_EMB_PUT, D_COMMIT, D_ROLLBACK, D__COUNT };
_Static_assert(D__COUNT <= SQLITE_DISC_STMTS, "raise SQLITE_DISC_STMTS");

static const char *const dsql[D__COUNT] = {
	[D_CHANGES] = "SELECT a.org_id, a.agent_id, a.name, a.description, a.capability_type, "
		      "a.per_call_micros, a.p99_latency_ms, a.is_public, a.status, a.trust_score, "
		      "a.embedding_id, a.disc_seq, e.model, e.dim, e.vec, a.rowid FROM agents a "
		      "LEFT JOIN agent_embeddings e ON e.org_id = a.org_id "
		      "AND e.agent_id = a.agent_id AND e.embedding_id = a.embedding_id "
		      "WHERE a.disc_seq > ?1 ORDER BY a.disc_seq LIMIT ?2",
	/* bm25 is negative, smaller better; column weights name, description,
	 * type. No join: hits are rowids, the caller's index filters. */
	[D_SEARCH] = "SELECT rowid, -bm25(agents_fts, 3.0, 1.0, 2.0) AS s FROM agents_fts "
		     "WHERE agents_fts MATCH ?1 ORDER BY s DESC LIMIT ?2",
	[D_BEGIN] = "BEGIN IMMEDIATE",
	[D_TOUCH] = "UPDATE agents SET embedding_id = embedding_id "
		    "WHERE org_id = ?1 AND agent_id = ?2 AND embedding_id = ?3",
	[D_EMB_PUT] = "INSERT INTO agent_embeddings (org_id, agent_id, embedding_id, model, dim, "
		      "vec, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) "
		      "ON CONFLICT (org_id, agent_id) DO UPDATE SET embedding_id = excluded.embedding_id, "
		      "model = excluded.model, dim = excluded.dim, vec = excluded.vec, "
		      "created_at = excluded.created_at",
	[D_COMMIT] = "COMMIT",
	[D_ROLLBACK] = "ROLLBACK",
};

static sqlite3_stmt *dstmt(struct sconn *c, enum dstmt id)
{
	return prepared(c, &c->disc[id], dsql[id]);
}

int sqlite_agent_stamp(struct store *s, int64_t *stamp)
{
	*stamp = (int64_t)shmgen_get(&ss(s)->cache.gen, GEN_AGENTS);
	return 0;
}

static const char *col_text(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);

	return t ? (const char *)t : NULL;
}

/* One change row into b (vec into the caller's aligned buffer). */
static void read_brief(sqlite3_stmt *st, struct agent_brief *b, float *vec)
{
	int dim = sqlite3_column_int(st, 13);
	int bytes = sqlite3_column_bytes(st, 14);

	memset(b, 0, sizeof(*b));
	col_copy(st, 0, b->org_id, sizeof(b->org_id));
	col_copy(st, 1, b->agent_id, sizeof(b->agent_id));
	b->name = col_text(st, 2);
	b->description = col_text(st, 3);
	col_copy(st, 4, b->capability_type, sizeof(b->capability_type));
	b->per_call_micros = sqlite3_column_int64(st, 5);
	b->p99_latency_ms = sqlite3_column_int64(st, 6);
	b->is_public = sqlite3_column_int(st, 7);
	col_copy(st, 8, b->status, sizeof(b->status));
	b->trust_score = sqlite3_column_double(st, 9);
	b->embedding_id = col_text(st, 10);
	b->seq = sqlite3_column_int64(st, 11);
	b->row = sqlite3_column_int64(st, 15);
	if (dim > 0 && dim <= VEC_DIM_MAX && bytes == dim * (int)sizeof(float)) {
		memcpy(vec, sqlite3_column_blob(st, 14), (size_t)bytes);
		b->vec = vec;
		b->vec_dim = dim;
		b->vec_model = col_text(st, 12);
	}
}

int sqlite_agent_changes(struct store *s, int64_t after, int limit,
			 int (*cb)(void *ctx, const struct agent_brief *a), void *ctx)
{
	float *vec = malloc(VEC_DIM_MAX * sizeof(float));
	WITH_CONN(s, c);
	sqlite3_stmt *st = dstmt(c, D_CHANGES);
	struct agent_brief b;
	int rc = E(INTERNAL), src = SQLITE_DONE;

	if (!st || !vec)
		goto out;
	sqlite3_bind_int64(st, 1, after);
	sqlite3_bind_int(st, 2, limit);
	rc = 0;
	while (!rc && (src = sqlite3_step(st)) == SQLITE_ROW) {
		read_brief(st, &b, vec);
		if (b.name && b.description)
			rc = cb(ctx, &b);
	}
	if (!rc && src != SQLITE_DONE)
		rc = fail(c, src);
	done(st);
out:
	END_CONN(s, c);
	free(vec);
	return rc;
}

int sqlite_agent_search(struct store *s, const struct agent_search *q, int limit,
			int (*cb)(void *ctx, const char *org_id, const char *agent_id,
				  int64_t row, double score),
			void *ctx)
{
	char match[SEARCH_TERMS_MAX * 70];
	sqlite3_stmt *st;
	int rc, src = SQLITE_DONE;

	if (q->nterms == 0)
		return 0;
	/* FTS5: "t1" OR "t2" ... (terms are [a-z0-9]: quoting is safe) */
	rc = store_search_text(q, "\"", " OR ", match, sizeof(match));
	if (rc) {
		store_set_error("search terms too long");
		return rc;
	}
	WITH_CONN(s, c);
	st = dstmt(c, D_SEARCH);
	rc = E(INTERNAL);
	if (!st)
		goto out;
	bind_text(st, 1, match);
	sqlite3_bind_int(st, 2, limit);
	rc = 0;
	while (!rc && (src = sqlite3_step(st)) == SQLITE_ROW)
		rc = cb(ctx, NULL, NULL, sqlite3_column_int64(st, 0), sqlite3_column_double(st, 1));
	if (!rc && src != SQLITE_DONE)
		rc = fail(c, src);
	done(st);
out:
	END_CONN(s, c);
	return rc;
}

int sqlite_embedding_put(struct store *s, const char *org_id, const char *agent_id,
			 const char *embedding_id, const char *model, const float *vec, int dim,
			 int64_t now)
{
	WITH_WRITER(s, c);
	sqlite3_stmt *touch = dstmt(c, D_TOUCH), *put = dstmt(c, D_EMB_PUT);
	int rc = E(INTERNAL);

	if (!touch || !put || run(c, dstmt(c, D_BEGIN)))
		goto out;
	bind_text(touch, 1, org_id);
	bind_text(touch, 2, agent_id);
	bind_text(touch, 3, embedding_id);
	rc = run(c, touch);
	if (!rc && sqlite3_changes(c->db) == 0)
		rc = E(NOT_FOUND);
	if (!rc) {
		bind_text(put, 1, org_id);
		bind_text(put, 2, agent_id);
		bind_text(put, 3, embedding_id);
		bind_text(put, 4, model);
		sqlite3_bind_int(put, 5, dim);
		sqlite3_bind_blob(put, 6, vec, dim * (int)sizeof(float), SQLITE_STATIC);
		sqlite3_bind_int64(put, 7, now);
		rc = run(c, put);
	}
	if (!rc)
		rc = run(c, dstmt(c, D_COMMIT));
	if (rc)
		run(c, dstmt(c, D_ROLLBACK));
	else
		shmgen_bump(&ss(s)->cache.gen, GEN_AGENTS); /* after the commit: shmgen.h */
out:
	END_WRITER(s, c);
	return rc;
}
