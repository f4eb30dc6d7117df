/*
 * A read-through cache of API key lookups for backends whose readers all
 * share one host (SQLite: WAL mode requires it). Authentication reads the
 * key row on every request; serving it from memory removes a database read
 * transaction from the hottest path.
 *
 * Correctness across processes rests on a generation counter in a small
 * shared file (mmap'd, MAP_SHARED) beside the database: a cached entry is
 * used only while the counter still has the value it had *before* the row
 * was read, and every change that can make a cached row wrong (revoking a
 * key) bumps the counter after it commits. So a request that starts after
 * a revoke has been answered, in any process, misses the cache and reads
 * the revoked row.
 */
#ifndef NEXRA_STORE_KEYCACHE_H
#define NEXRA_STORE_KEYCACHE_H

#include <pthread.h>
#include <stdint.h>

#include "store/store.h"

#define KEYCACHE_SLOTS 4096 /* direct-mapped; a collision just evicts */

struct keycache_slot {
	uint64_t gen; /* 0: empty */
	struct key_auth ka;
};

struct keycache {
	pthread_rwlock_t lock;
	struct keycache_slot *slots; /* owned */
	uint64_t *gen;               /* shared counter (mmap), never 0 */
	int fd;
};

/* Map (creating if needed) the counter file at path. 0 or E(INTERNAL). */
int keycache_init(struct keycache *kc, const char *path);
void keycache_release(struct keycache *kc);

/* The counter now: read it before reading a row to cache. */
uint64_t keycache_gen(struct keycache *kc);

/* 1 and *out on a valid hit, 0 on a miss. */
int keycache_get(struct keycache *kc, const char *lookup, struct key_auth *out);

/* Remember ka as read while the counter was gen. */
void keycache_put(struct keycache *kc, uint64_t gen, const struct key_auth *ka);

/* Invalidate every cached entry in every process (after a commit). */
void keycache_bump(struct keycache *kc);

#endif
