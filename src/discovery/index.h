/*
 * The in-memory index discovery ranks from (docs/discovery.md "Index"):
 * every agent of every org with what filters and ranks it (org, type,
 * price, p99, status, visibility, trust) and its vectors: the built-in
 * sparse vector in an inverted index (feature -> postings), and the
 * provider's dense int8 vector when there is one for the configured model.
 *
 * It is rebuilt from the store at start and follows the store's change
 * feed (store.h agent_stamp / agent_changes): dindex_sync checks the stamp
 * (SQLite: a shared counter, no query; PostgreSQL: max(disc_seq)) and
 * applies the rows changed since the last sync, so writes of this process,
 * of other processes and of the ledger (trust, circuit breaker pauses) are
 * all seen by the next discover.
 *
 * Postings of a replaced vector are left in place and skipped (each
 * carries its entry's version); they are swept when they outnumber the
 * live ones. Readers share a rwlock; sync takes it for writing per batch.
 */
#ifndef NEXRA_DISCOVERY_INDEX_H
#define NEXRA_DISCOVERY_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "discovery/embed.h"
#include "discovery/rank.h"
#include "store/store.h"

#define DX_RESULTS_MAX 100
#define DX_EXCLUDE_MAX 100

struct dindex;

/* A full-text hit from the store: by ids, or by row (store.h). */
struct dx_hit {
	char org_id[ID_MAX];
	char agent_id[AGENT_ID_MAX + 1];
	int64_t row;
	double score;
};

struct dx_query {
	const char *org_id;      /* the caller's org */
	int cross_org;           /* plus other orgs' public agents */
	int cap;                 /* capability type index, -1 any */
	int64_t budget_cap_micros; /* -1 none: filter and budget fit */
	int64_t max_latency_ms;    /* -1 none: filter and latency fit */
	const char *const *exclude; /* agent ids of the caller's org */
	int nexclude;
	int has_text;
	const struct svec *q;      /* built-in query vector (has_text) */
	const float *pq;           /* provider query vector, NULL: none */
	int pq_dim;
	const struct dx_hit *lex;  /* full-text hits */
	int nlex;
	int limit;                 /* 1..DX_RESULTS_MAX */
	uint32_t org_no;           /* dindex_query's own: org_id's number */
};

struct dx_result {
	char org_id[ID_MAX];
	char agent_id[AGENT_ID_MAX + 1];
	struct rank_out r;
	int provider; /* semantic from the provider's vectors */
};

/* provider_model: the configured provider model, or NULL (provider vectors
 * of another model are ignored). 0 or E(INTERNAL). */
int dindex_new(const struct lexicon *lx, const char *provider_model, struct dindex **out);
void dindex_free(struct dindex *ix);

/* Bring the index up to date with the store. 0 or the store's error. */
int dindex_sync(struct dindex *ix, struct store *st);

/* Rank for q: up to q->limit results, best first, into out; *n set. */
int dindex_query(struct dindex *ix, const struct dx_query *q, struct dx_result *out, int *n);

/* Agents that need a provider vector for the configured model (their text
 * has none): cb gets each (borrowed strings); at most limit. */
int dindex_missing_provider(struct dindex *ix, int limit,
			    void (*cb)(void *ctx, const char *org_id, const char *agent_id,
				       const char *embedding_id),
			    void *ctx);

/* How many agents' texts have the stem feature fid (embed_stems; texts
 * replaced since the start still count: an upper bound). */
uint32_t dindex_df(struct dindex *ix, uint32_t fid);

struct dx_stats {
	size_t agents, live, postings, features, bytes;
	int64_t seq;
};
void dindex_stats(struct dindex *ix, struct dx_stats *s);

/* Capability type name -> index (-1 unknown). */
int dindex_cap(const char *type);

#endif
