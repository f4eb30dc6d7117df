/* Generation-checked row caches; see keycache.h. */
#include "store/keycache.h"

#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/hash.h"
#include "core/banned.h"

int rowcache_init(struct rowcache *rc, const char *genpath)
{
	memset(rc, 0, sizeof(*rc));
	rc->gen.fd = -1;
	if (shmgen_open(&rc->gen, genpath))
		return E(INTERNAL);
	rc->keys = calloc(ROWCACHE_SLOTS, sizeof(*rc->keys));
	rc->agents = calloc(ROWCACHE_SLOTS, sizeof(*rc->agents));
	if (!rc->keys || !rc->agents) {
		free(rc->keys);
		free(rc->agents);
		shmgen_close(&rc->gen);
		return E(INTERNAL);
	}
	pthread_rwlock_init(&rc->lock, NULL);
	return 0;
}

void rowcache_release(struct rowcache *rc)
{
	if (!rc->keys)
		return;
	for (int i = 0; i < ROWCACHE_SLOTS; i++)
		agent_release(&rc->agents[i].a);
	free(rc->keys);
	free(rc->agents);
	rc->keys = NULL;
	rc->agents = NULL;
	shmgen_close(&rc->gen);
	pthread_rwlock_destroy(&rc->lock);
}

/* The slot of key a (and b, for two-part keys such as org/agent). */
static unsigned hash2(const char *a, const char *b)
{
	uint32_t h = hash_fnv1a(HASH_FNV_INIT, a, strlen(a));

	if (b)
		h = hash_fnv1a(hash_fnv1a(h, "/", 1), b, strlen(b));
	return h % ROWCACHE_SLOTS;
}

int keycache_get(struct rowcache *rc, const char *lookup, struct key_auth *out)
{
	struct keycache_slot *s = &rc->keys[hash2(lookup, NULL)];
	uint64_t now = shmgen_get(&rc->gen, GEN_KEYS);
	int hit;

	pthread_rwlock_rdlock(&rc->lock);
	hit = s->gen == now && !strcmp(s->ka.key.lookup, lookup);
	if (hit)
		*out = s->ka;
	pthread_rwlock_unlock(&rc->lock);
	return hit;
}

void keycache_put(struct rowcache *rc, uint64_t gen, const struct key_auth *ka)
{
	struct keycache_slot *s = &rc->keys[hash2(ka->key.lookup, NULL)];

	pthread_rwlock_wrlock(&rc->lock);
	s->gen = gen;
	s->ka = *ka;
	pthread_rwlock_unlock(&rc->lock);
}

static char *dup(const char *s, int *ok)
{
	char *d;

	if (!s)
		return NULL;
	d = strdup(s);
	if (!d)
		*ok = 0;
	return d;
}

/* Deep copy of src into dst (whose owned fields are empty); 1 on success. */
static int agent_copy(struct agent *dst, const struct agent *src)
{
	int ok = 1;

	*dst = *src;
	dst->name = dup(src->name, &ok);
	dst->description = dup(src->description, &ok);
	dst->webhook_url = dup(src->webhook_url, &ok);
	dst->input_schema = dup(src->input_schema, &ok);
	dst->output_schema = dup(src->output_schema, &ok);
	dst->embedding_id = dup(src->embedding_id, &ok);
	dst->secret_sealed = malloc(src->secret_sealed_len ? src->secret_sealed_len : 1);
	if (dst->secret_sealed)
		memcpy(dst->secret_sealed, src->secret_sealed, src->secret_sealed_len);
	else
		ok = 0;
	if (!ok)
		agent_release(dst);
	return ok;
}

/* The slot holding a valid entry for org_id/agent_id, or NULL. Called
 * with the read lock held. */
static struct agentcache_slot *agent_hit(struct rowcache *rc, const char *org_id,
					 const char *agent_id)
{
	struct agentcache_slot *s = &rc->agents[hash2(org_id, agent_id)];

	if (s->gen == shmgen_get(&rc->gen, GEN_AGENTS) && !strcmp(s->a.org_id, org_id) &&
	    !strcmp(s->a.agent_id, agent_id))
		return s;
	return NULL;
}

int agentcache_get(struct rowcache *rc, const char *org_id, const char *agent_id,
		   struct agent *out)
{
	struct agentcache_slot *s;
	int hit;

	pthread_rwlock_rdlock(&rc->lock);
	s = agent_hit(rc, org_id, agent_id);
	hit = s && agent_copy(out, &s->a);
	pthread_rwlock_unlock(&rc->lock);
	return hit;
}

int agentcache_status(struct rowcache *rc, const char *org_id, const char *agent_id,
		      char status[16])
{
	struct agentcache_slot *s;

	pthread_rwlock_rdlock(&rc->lock);
	s = agent_hit(rc, org_id, agent_id);
	if (s)
		memcpy(status, s->a.status, sizeof(s->a.status));
	pthread_rwlock_unlock(&rc->lock);
	return s != NULL;
}

void agentcache_put(struct rowcache *rc, uint64_t gen, const struct agent *a)
{
	struct agentcache_slot *s = &rc->agents[hash2(a->org_id, a->agent_id)];
	struct agent copy;

	if (!agent_copy(&copy, a))
		return; /* not cached: the next read goes to the database */
	pthread_rwlock_wrlock(&rc->lock);
	agent_release(&s->a);
	s->a = copy;
	s->gen = gen;
	pthread_rwlock_unlock(&rc->lock);
}
