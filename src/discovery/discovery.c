/* Discovery's lifecycle and provider worker; see discovery.h. */
#include "discovery/discovery.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/err.h"
#include "core/log.h"
#include "core/rand.h"
#include "core/banned.h"

#define SWEEP_EVERY_S 10
#define SWEEP_BATCH 256

int embedding_id_new(char out[EMBEDDING_ID_LEN])
{
	unsigned char b[16];
	char hex[33];

	if (rand_bytes(b, sizeof(b)))
		return E(INTERNAL);
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* variant 10 */
	hex_encode(b, sizeof(b), hex);
	snprintf(out, EMBEDDING_ID_LEN, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12,
		 hex + 16, hex + 20);
	return 0;
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Queue a job unless the queue is full or it is already queued. */
static void enqueue(struct discovery *d, const char *org_id, const char *agent_id,
		    const char *embedding_id)
{
	struct disc_job *j;

	if (d->qlen == DISCOVERY_QUEUE_MAX)
		return; /* the sweep finds it later */
	for (int i = 0; i < d->qlen; i++) {
		j = &d->queue[(d->qhead + i) % DISCOVERY_QUEUE_MAX];
		if (!strcmp(j->agent_id, agent_id) && !strcmp(j->org_id, org_id)) {
			snprintf(j->embedding_id, sizeof(j->embedding_id), "%s", embedding_id);
			return;
		}
	}
	j = &d->queue[(d->qhead + d->qlen++) % DISCOVERY_QUEUE_MAX];
	snprintf(j->org_id, sizeof(j->org_id), "%s", org_id);
	snprintf(j->agent_id, sizeof(j->agent_id), "%s", agent_id);
	snprintf(j->embedding_id, sizeof(j->embedding_id), "%s", embedding_id);
}

static void sweep_cb(void *ctx, const char *org_id, const char *agent_id, const char *emb)
{
	enqueue(ctx, org_id, agent_id, emb);
}

/* One provider vector: the agent's current text, if still current. */
static void embed_job(struct discovery *d, const struct disc_job *j)
{
	struct store *st = d->store;
	struct agent a;
	char why[PROVIDER_WHY_MAX] = "", *text = NULL;
	float *vec = NULL;
	int dim = 0, rc, n;

	if (st->ops->agent_get(st, j->org_id, j->agent_id, &a))
		return;
	if (!a.embedding_id || strcmp(a.embedding_id, j->embedding_id))
		goto out; /* changed since: a newer job carries it */
	n = snprintf(NULL, 0, "%s. %s. %s", a.name, a.capability_type, a.description);
	text = n >= 0 ? malloc((size_t)n + 1) : NULL;
	if (!text)
		goto out;
	snprintf(text, (size_t)n + 1, "%s. %s. %s", a.name, a.capability_type, a.description);
	rc = provider_embed(d->prov, text, PROVIDER_WORK_TIMEOUT_MS, &vec, &dim, why);
	if (rc) {
		log_msg("warn", "discovery", "provider embedding of %s/%s failed: %s", j->org_id,
			j->agent_id, why);
		goto out;
	}
	rc = st->ops->embedding_put(st, j->org_id, j->agent_id, j->embedding_id,
				    provider_model(d->prov), vec, dim, (int64_t)time(NULL));
	if (rc && rc != E(NOT_FOUND))
		log_msg("warn", "discovery", "storing the provider embedding of %s/%s failed: %s",
			j->org_id, j->agent_id, store_last_error());
	else if (!rc)
		dindex_sync(d->ix, st);
out:
	free(vec);
	free(text);
	agent_release(&a);
}

static void *worker_main(void *arg)
{
	struct discovery *d = arg;
	time_t last_sweep = 0;

	pthread_mutex_lock(&d->lock);
	while (!d->stopping) {
		struct disc_job j;

		if (time(NULL) - last_sweep >= SWEEP_EVERY_S && d->qlen == 0) {
			pthread_mutex_unlock(&d->lock);
			dindex_sync(d->ix, d->store);
			pthread_mutex_lock(&d->lock);
			dindex_missing_provider(d->ix, SWEEP_BATCH, sweep_cb, d);
			last_sweep = time(NULL);
		}
		/* nothing to do, or a provider known to be down: jobs wait
		 * (instead of failing one by one, each with a log line) */
		if (d->qlen == 0 || !provider_available(d->prov)) {
			struct timespec ts;

			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 1;
			pthread_cond_timedwait(&d->cond, &d->lock, &ts);
			continue;
		}
		j = d->queue[d->qhead];
		d->qhead = (d->qhead + 1) % DISCOVERY_QUEUE_MAX;
		d->qlen--;
		pthread_mutex_unlock(&d->lock);
		embed_job(d, &j);
		pthread_mutex_lock(&d->lock);
	}
	pthread_mutex_unlock(&d->lock);
	return NULL;
}

int discovery_init(struct discovery *d, struct store *st, const char *url, const char *model,
		   const char *api_key, char *msg, size_t msgsz)
{
	double t0 = now_ms();
	int rc;

	memset(d, 0, sizeof(*d));
	d->store = st;
	pthread_mutex_init(&d->lock, NULL);
	pthread_cond_init(&d->cond, NULL);
	rc = lexicon_load(&d->lx);
	if (!rc && url && *url)
		rc = provider_new(url, model, api_key, &d->prov);
	if (!rc)
		rc = dindex_new(d->lx, d->prov ? provider_model(d->prov) : NULL, &d->ix);
	if (rc) {
		snprintf(msg, msgsz, "discovery: out of memory loading the lexicon");
		return rc;
	}
	rc = dindex_sync(d->ix, st);
	if (rc) {
		snprintf(msg, msgsz, "discovery: loading the index failed: %s", store_last_error());
		return rc;
	}
	d->load_ms = now_ms() - t0;
	if (d->prov) {
		d->queue = calloc(DISCOVERY_QUEUE_MAX, sizeof(*d->queue));
		if (!d->queue || pthread_create(&d->worker, NULL, worker_main, d)) {
			snprintf(msg, msgsz, "discovery: cannot start the embeddings worker");
			return E(INTERNAL);
		}
		d->worker_started = 1;
	}
	return 0;
}

void discovery_release(struct discovery *d)
{
	if (d->worker_started) {
		pthread_mutex_lock(&d->lock);
		d->stopping = 1;
		pthread_cond_broadcast(&d->cond);
		pthread_mutex_unlock(&d->lock);
		pthread_join(d->worker, NULL);
		d->worker_started = 0;
	}
	free(d->queue);
	d->queue = NULL;
	dindex_free(d->ix);
	d->ix = NULL;
	provider_free(d->prov);
	d->prov = NULL;
	lexicon_free(d->lx);
	d->lx = NULL;
	pthread_mutex_destroy(&d->lock);
	pthread_cond_destroy(&d->cond);
}

void discovery_agent_written(struct discovery *d, const char *org_id, const char *agent_id,
			     const char *embedding_id)
{
	if (!d || !d->ix)
		return;
	if (dindex_sync(d->ix, d->store))
		log_msg("warn", "discovery", "index sync failed: %s", store_last_error());
	if (d->prov && embedding_id) {
		pthread_mutex_lock(&d->lock);
		enqueue(d, org_id, agent_id, embedding_id);
		pthread_cond_signal(&d->cond);
		pthread_mutex_unlock(&d->lock);
	}
}
