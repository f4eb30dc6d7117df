/*
 * Read-through caches for the SQLite backend's hottest reads: API keys
 * (every authenticated request) and agents (every request that names one).
 * Both are direct-mapped tables (a collision just evicts) whose entries are
 * valid only while their shared generation counter is unchanged (shmgen.h):
 * correct across every process on the database file.
 *
 * Callers read the generation with shmgen_get() *before* reading the row
 * they then put.
 */
#ifndef NEXRA_STORE_KEYCACHE_H
#define NEXRA_STORE_KEYCACHE_H

#include <pthread.h>
#include <stdint.h>

#include "store/shmgen.h"
#include "store/store.h"

#define ROWCACHE_SLOTS 4096

struct keycache_slot {
	uint64_t gen; /* 0: empty */
	struct key_auth ka;
};

struct agentcache_slot {
	uint64_t gen; /* 0: empty */
	struct agent a; /* owned copy */
};

struct rowcache {
	pthread_rwlock_t lock;
	struct shmgen gen;
	struct keycache_slot *keys;     /* owned */
	struct agentcache_slot *agents; /* owned */
};

/* 0 or E(INTERNAL). genpath: the counters file. */
int rowcache_init(struct rowcache *rc, const char *genpath);
void rowcache_release(struct rowcache *rc);

/* 1 and *out on a valid hit, 0 on a miss. */
int keycache_get(struct rowcache *rc, const char *lookup, struct key_auth *out);
void keycache_put(struct rowcache *rc, uint64_t gen, const struct key_auth *ka);

/* Hits fill *out with an owned copy (agent_release it); 0 on a miss or
 * when the copy could not be allocated. */
int agentcache_get(struct rowcache *rc, const char *org_id, const char *agent_id,
		   struct agent *out);
void agentcache_put(struct rowcache *rc, uint64_t gen, const struct agent *a);
/* Just the status of a cached agent (no copy); 1 on a hit. */
int agentcache_status(struct rowcache *rc, const char *org_id, const char *agent_id,
		      char status[16]);

#endif
