/* Compiled agent schemas per process; see schemacache.h. */
#include "registry/schemacache.h"

#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/hash.h"
#include "core/banned.h"

struct schemaref {
	char org_id[ID_MAX];
	char agent_id[AGENT_ID_MAX + 1];
	char *in_text, *out_text; /* what was compiled */
	struct schema *in, *out;
	int refs; /* guarded by the cache's mutex */
};

int schemacache_init(struct schemacache *c)
{
	c->slots = calloc(SCHEMACACHE_SLOTS, sizeof(*c->slots));
	if (!c->slots)
		return E(INTERNAL);
	pthread_mutex_init(&c->mu, NULL);
	return 0;
}

static void ref_free(struct schemaref *r)
{
	schema_free(r->in);
	schema_free(r->out);
	free(r->in_text);
	free(r->out_text);
	free(r);
}

/* Drop one reference; called with c->mu held (or alone). */
static void unref(struct schemaref *r)
{
	if (r && --r->refs == 0)
		ref_free(r);
}

void schemacache_release(struct schemacache *c)
{
	if (!c->slots)
		return;
	for (int i = 0; i < SCHEMACACHE_SLOTS; i++)
		unref(c->slots[i]);
	free(c->slots);
	c->slots = NULL;
	pthread_mutex_destroy(&c->mu);
}

static unsigned slot_of(const struct agent *a)
{
	uint64_t h = hash_fnv1a(HASH_FNV_INIT, a->org_id, strlen(a->org_id));

	h = hash_fnv1a(h, a->agent_id, strlen(a->agent_id));
	return (unsigned)(h % SCHEMACACHE_SLOTS);
}

static int same(const struct schemaref *r, const struct agent *a)
{
	return r && !strcmp(r->org_id, a->org_id) && !strcmp(r->agent_id, a->agent_id) &&
	       !strcmp(r->in_text, a->input_schema) && !strcmp(r->out_text, a->output_schema);
}

static int compile_text(const char *text, struct schema **out)
{
	json_t *doc = json_loads(text, 0, NULL);
	int rc = doc ? schema_compile(doc, NULL, out, NULL) : E(INTERNAL);

	json_decref(doc);
	return rc ? E(INTERNAL) : 0;
}

static struct schemaref *build(const struct agent *a)
{
	struct schemaref *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	memcpy(r->org_id, a->org_id, sizeof(r->org_id));
	memcpy(r->agent_id, a->agent_id, sizeof(r->agent_id));
	r->in_text = strdup(a->input_schema);
	r->out_text = strdup(a->output_schema);
	if (!r->in_text || !r->out_text || compile_text(a->input_schema, &r->in) ||
	    compile_text(a->output_schema, &r->out)) {
		ref_free(r);
		return NULL;
	}
	return r;
}

int schemacache_get(struct schemacache *c, const struct agent *a, struct schemaref **ref)
{
	struct schemaref **s = &c->slots[slot_of(a)];
	struct schemaref *r = NULL;

	pthread_mutex_lock(&c->mu);
	if (same(*s, a)) {
		r = *s;
		r->refs++;
	}
	pthread_mutex_unlock(&c->mu);
	if (!r) {
		r = build(a);
		if (!r)
			return E(INTERNAL);
		r->refs = 2; /* the cache's and the caller's */
		pthread_mutex_lock(&c->mu);
		unref(*s);
		*s = r;
		pthread_mutex_unlock(&c->mu);
	}
	*ref = r;
	return 0;
}

const struct schema *schemaref_input(const struct schemaref *ref)
{
	return ref->in;
}

const struct schema *schemaref_output(const struct schemaref *ref)
{
	return ref->out;
}

void schemacache_put(struct schemacache *c, struct schemaref *ref)
{
	if (!ref)
		return;
	pthread_mutex_lock(&c->mu);
	unref(ref);
	pthread_mutex_unlock(&c->mu);
}
