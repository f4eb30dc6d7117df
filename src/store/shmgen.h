/*
 * Generation counters shared by every process that opens one SQLite file
 * (WAL mode already requires them to be on one host): a small file beside
 * the database, mmap'd MAP_SHARED, holding one 64-bit counter per cached
 * table. A cache entry remembers the counter read *before* its row was
 * read; a writer bumps the counter *after* it commits; an entry is used
 * only while the counter is unchanged. So a read that starts after a write
 * has been answered, in any process, never sees the row from before it.
 */
#ifndef NEXRA_STORE_SHMGEN_H
#define NEXRA_STORE_SHMGEN_H

#include <stdint.h>

enum shmgen_counter { GEN_KEYS, GEN_AGENTS, GEN__COUNT };

struct shmgen {
	uint64_t *c; /* GEN__COUNT counters, mmap'd */
	int fd;
};

/* Map (creating if needed) the counters file. 0 or E(INTERNAL). */
int shmgen_open(struct shmgen *g, const char *path);
void shmgen_close(struct shmgen *g);

/* The counter now, offset by one so 0 can mean "no entry". */
uint64_t shmgen_get(const struct shmgen *g, enum shmgen_counter i);
void shmgen_bump(struct shmgen *g, enum shmgen_counter i);

#endif
