/*
 * Agents' input and output schemas, compiled once per process and reused
 * by every delegation to that agent. Compiling (a meta-schema check, then
 * the compiled form) costs far more than validating, so each delegation
 * would otherwise pay it twice.
 *
 * An entry is keyed by org and agent id and is valid only while the
 * agent's schema texts are byte-for-byte the ones it was compiled from:
 * the texts arrive with the agent row on every delegation, so an update by
 * any process is seen by the next delegation, with no stamp to keep.
 * Entries are reference counted: a delegation keeps its compiled output
 * schema until it settles, even if the agent changes meanwhile.
 */
#ifndef NEXRA_REGISTRY_SCHEMACACHE_H
#define NEXRA_REGISTRY_SCHEMACACHE_H

#include <pthread.h>

#include "schema/schema.h"
#include "store/store.h"

#define SCHEMACACHE_SLOTS 1024 /* direct-mapped; a collision evicts */

struct schemaref; /* both compiled schemas, their texts, a reference count */

struct schemacache {
	pthread_mutex_t mu;
	struct schemaref **slots; /* owned */
};

int schemacache_init(struct schemacache *c);
void schemacache_release(struct schemacache *c);

/* a's compiled schemas: *ref (release with schemacache_put) holds them.
 * 0; E(INTERNAL) when a stored schema does not parse or compile. */
int schemacache_get(struct schemacache *c, const struct agent *a, struct schemaref **ref);
const struct schema *schemaref_input(const struct schemaref *ref);
const struct schema *schemaref_output(const struct schemaref *ref);
void schemacache_put(struct schemacache *c, struct schemaref *ref);

#endif
