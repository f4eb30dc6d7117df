/*
 * Discovery as a service of the server (docs/discovery.md): the lexicon,
 * the index, and the optional provider with its background worker. One per
 * `nexra serve`, owned by the app.
 *
 * Writes to agents go through discovery_agent_written after their commit:
 * the index syncs at once (the built-in vector is computed there, so a
 * registered agent is discoverable when its 201 is sent), and with a
 * provider the agent is queued for a provider vector. The worker thread
 * also sweeps the index for agents missing one (after a start, or a
 * change of model: every agent is re-embedded in the background).
 */
#ifndef NEXRA_DISCOVERY_DISCOVERY_H
#define NEXRA_DISCOVERY_DISCOVERY_H

#include <pthread.h>

#include "discovery/index.h"
#include "discovery/lexicon.h"
#include "discovery/provider.h"
#include "store/store.h"

#define EMBEDDING_ID_LEN 37 /* a UUID and its NUL */
#define DISCOVERY_QUEUE_MAX 4096
#define PROVIDER_QUERY_TIMEOUT_MS 2000
#define PROVIDER_WORK_TIMEOUT_MS 30000

struct disc_job {
	char org_id[ID_MAX];
	char agent_id[AGENT_ID_MAX + 1];
	char embedding_id[EMBEDDING_ID_LEN];
};

struct discovery {
	struct lexicon *lx;
	struct dindex *ix;
	struct provider *prov; /* NULL: built-in only */
	struct store *store;
	/* provider worker */
	pthread_t worker;
	int worker_started;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct disc_job *queue; /* ring of DISCOVERY_QUEUE_MAX */
	int qhead, qlen, stopping;
	double load_ms;         /* start-up: lexicon load + first sync */
};

/* Load the lexicon, build the index from st, start the provider worker
 * when url is set. 0, or an error with a message in msg. */
int discovery_init(struct discovery *d, struct store *st, const char *url, const char *model,
		   const char *api_key, char *msg, size_t msgsz);
void discovery_release(struct discovery *d);

/* After an agent row was written and committed. Errors are logged. */
void discovery_agent_written(struct discovery *d, const char *org_id, const char *agent_id,
			     const char *embedding_id);

/* A new random embedding id (UUID v4 text). 0 or E(INTERNAL). */
int embedding_id_new(char out[EMBEDDING_ID_LEN]);

#endif
