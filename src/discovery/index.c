/*
 * The discovery index; see index.h. Layout: a growable array of entries
 * (slot = position, never reused: agents are paused, not deleted), an
 * open-addressing map org/agent -> slot, and an open-addressing map
 * feature id -> posting list. A query accumulates built-in cosines over the
 * postings of its features into a per-query array (only touched slots are
 * visited afterwards), adds the full-text hits, filters, ranks, and keeps
 * the best limit with a small heap.
 */
#include "discovery/index.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/hash.h"
#include "registry/agent.h"
#include "core/banned.h"

#define SYNC_BATCH 2000
#define COMMON_MIN_AGENTS 2000 /* from this size on, features of more than */
#define COMMON_SHARE 10        /* 1/COMMON_SHARE of the agents are skipped */
#define EMB_ID_MAX 48
#define PDIM_MAX 8192

enum { ST_PROBATIONARY, ST_ACTIVE, ST_PAUSED };

struct posting {
	uint32_t slot;
	uint16_t ver; /* the entry's version when posted, mod 2^16 */
	uint16_t w;   /* weight in [0, 1] times 65535 */
};

struct plist {
	uint32_t fid; /* feature id; 0 empty (ids are never 0) */
	uint32_t n, cap;
	struct posting *p;
};

/* What filters and ranks an agent: kept apart from its ids so that a query
 * over many candidates stays in cache. */
struct hot {
	int64_t price;
	uint32_t org_no; /* index in the org table: compared, not the string */
	uint32_t p99;
	float trust;
	uint8_t cap, status, is_public, pad;
};

struct entry {
	char org_id[ID_MAX];
	char agent_id[AGENT_ID_MAX + 1];
	char embedding_id[EMB_ID_MAX];
	uint8_t has_pvec;
	int8_t *pvec; /* provider vector, pdim values; NULL none */
	float pscale;
};

struct dindex {
	pthread_rwlock_t lock;
	pthread_mutex_t sync_lock; /* one syncer at a time */
	const struct lexicon *lx;
	char *pmodel;            /* provider model or NULL */
	int pdim;                /* provider dimension, from the first vector */
	struct entry *e;
	struct hot *hot;         /* per slot */
	uint16_t *vers;          /* per slot: the entry's vector version (0: none
				  * yet; wraps past 0 after a sweep); apart from
				  * the entries so the postings' check stays in cache */
	uint32_t n, cap;
	uint32_t *kmap;          /* slot + 1; 0 empty */
	uint32_t kslots;
	struct plist *fmap;
	uint32_t fslots, nfeat;
	size_t postings, stale;
	uint32_t *df_id, *df_n;  /* stem feature -> agents whose text has it */
	char (*orgs)[ID_MAX];    /* org table: number -> id */
	uint32_t norgs, orgs_cap;
	uint32_t *omap, oslots;  /* org id -> number + 1 */
	int64_t *rows;           /* per slot: the store's row number, 0 none */
	uint32_t *rmap, rslots;  /* row -> slot + 1 */
	uint32_t df_slots, df_used;
	int64_t seq, stamp;
	int synced;
};

int dindex_cap(const char *type)
{
	for (int i = 0; agent_capability_types[i]; i++)
		if (!strcmp(agent_capability_types[i], type))
			return i;
	return -1;
}

static uint32_t key_hash(const char *org, const char *agent)
{
	uint32_t h = hash_fnv1a(HASH_FNV_INIT, org, strlen(org));

	return hash_fnv1a(hash_fnv1a(h, "/", 1), agent, strlen(agent));
}

static uint32_t *kfind(const struct dindex *ix, const char *org, const char *agent)
{
	uint32_t mask = ix->kslots - 1;

	for (uint32_t i = key_hash(org, agent) & mask;; i = (i + 1) & mask) {
		uint32_t *s = &ix->kmap[i];

		if (!*s || (!strcmp(ix->e[*s - 1].agent_id, agent) &&
			    !strcmp(ix->e[*s - 1].org_id, org)))
			return s;
	}
}

static int kgrow(struct dindex *ix)
{
	uint32_t old = ix->kslots, *om = ix->kmap;

	ix->kslots = old ? old * 2 : 1024;
	ix->kmap = calloc(ix->kslots, sizeof(uint32_t));
	if (!ix->kmap) {
		ix->kmap = om;
		ix->kslots = old;
		return E(INTERNAL);
	}
	for (uint32_t i = 0; i < old; i++)
		if (om[i])
			*kfind(ix, ix->e[om[i] - 1].org_id, ix->e[om[i] - 1].agent_id) = om[i];
	free(om);
	return 0;
}

static uint32_t *ofind(const struct dindex *ix, const char *org_id)
{
	uint32_t mask = ix->oslots - 1;

	for (uint32_t i = hash_fnv1a(HASH_FNV_INIT, org_id, strlen(org_id)) & mask;;
	     i = (i + 1) & mask)
		if (!ix->omap[i] || !strcmp(ix->orgs[ix->omap[i] - 1], org_id))
			return &ix->omap[i];
}

/* The org's number (UINT32_MAX: no agent of it is indexed). */
static uint32_t org_lookup(const struct dindex *ix, const char *org_id)
{
	uint32_t *s = ix->oslots ? ofind(ix, org_id) : NULL;

	return s && *s ? *s - 1 : UINT32_MAX;
}

static int org_intern(struct dindex *ix, const char *org_id, uint32_t *no)
{
	uint32_t *s;

	if ((ix->norgs + 1) * 2 > ix->oslots) {
		uint32_t old = ix->oslots, *om = ix->omap;

		ix->oslots = old ? old * 2 : 256;
		ix->omap = calloc(ix->oslots, sizeof(uint32_t));
		if (!ix->omap) {
			ix->omap = om;
			ix->oslots = old;
			return E(INTERNAL);
		}
		for (uint32_t i = 0; i < old; i++)
			if (om[i])
				*ofind(ix, ix->orgs[om[i] - 1]) = om[i];
		free(om);
	}
	s = ofind(ix, org_id);
	if (!*s) {
		if (ix->norgs == ix->orgs_cap) {
			uint32_t c = ix->orgs_cap ? ix->orgs_cap * 2 : 64;
			char(*n)[ID_MAX] = realloc(ix->orgs, c * sizeof(*n));

			if (!n)
				return E(INTERNAL);
			ix->orgs = n;
			ix->orgs_cap = c;
		}
		snprintf(ix->orgs[ix->norgs], ID_MAX, "%s", org_id);
		*s = ++ix->norgs;
	}
	*no = *s - 1;
	return 0;
}

static uint32_t *rfind(const struct dindex *ix, int64_t row)
{
	uint32_t mask = ix->rslots - 1;

	for (uint32_t i = (uint32_t)((uint64_t)row * 0x9e3779b97f4a7c15ULL >> 32) & mask;;
	     i = (i + 1) & mask)
		if (!ix->rmap[i] || ix->rows[ix->rmap[i] - 1] == row)
			return &ix->rmap[i];
}

/* Remember that the store's row names slot (rows do not change). */
static int row_set(struct dindex *ix, uint32_t slot, int64_t row)
{
	if (!row || ix->rows[slot] == row)
		return 0;
	if ((ix->n + 1) * 2 > ix->rslots) {
		uint32_t old = ix->rslots, *om = ix->rmap;

		ix->rslots = old ? old * 2 : 1024;
		while ((ix->n + 1) * 2 > ix->rslots)
			ix->rslots *= 2;
		ix->rmap = calloc(ix->rslots, sizeof(uint32_t));
		if (!ix->rmap) {
			ix->rmap = om;
			ix->rslots = old;
			return E(INTERNAL);
		}
		for (uint32_t i = 0; i < old; i++)
			if (om[i])
				*rfind(ix, ix->rows[om[i] - 1]) = om[i];
		free(om);
	}
	ix->rows[slot] = row;
	*rfind(ix, row) = slot + 1;
	return 0;
}

/* The slot of a full-text hit, or UINT32_MAX (committed after our sync). */
static uint32_t hit_slot(const struct dindex *ix, const struct dx_hit *h)
{
	uint32_t *s;

	if (h->row) {
		if (!ix->rslots)
			return UINT32_MAX;
		s = rfind(ix, h->row);
	} else {
		s = kfind(ix, h->org_id, h->agent_id);
	}
	return *s ? *s - 1 : UINT32_MAX;
}

static struct plist *ffind(const struct dindex *ix, uint32_t fid)
{
	uint32_t mask = ix->fslots - 1, h = fid * 0x9e3779b1U;

	for (uint32_t i = h & mask;; i = (i + 1) & mask)
		if (ix->fmap[i].fid == fid || !ix->fmap[i].fid)
			return &ix->fmap[i];
}

static int fgrow(struct dindex *ix)
{
	uint32_t old = ix->fslots;
	struct plist *om = ix->fmap;

	ix->fslots = old ? old * 2 : 4096;
	ix->fmap = calloc(ix->fslots, sizeof(struct plist));
	if (!ix->fmap) {
		ix->fmap = om;
		ix->fslots = old;
		return E(INTERNAL);
	}
	for (uint32_t i = 0; i < old; i++)
		if (om[i].fid)
			*ffind(ix, om[i].fid) = om[i];
	free(om);
	return 0;
}

static int post(struct dindex *ix, uint32_t fid, uint32_t slot, uint16_t ver, float w)
{
	struct plist *l;

	if ((ix->nfeat + 1) * 2 > ix->fslots && fgrow(ix))
		return E(INTERNAL);
	l = ffind(ix, fid);
	if (!l->fid) {
		l->fid = fid;
		ix->nfeat++;
	}
	if (l->n == l->cap) {
		uint32_t c = l->cap ? l->cap * 2 : 4;
		struct posting *p = realloc(l->p, c * sizeof(*p));

		if (!p)
			return E(INTERNAL);
		l->p = p;
		l->cap = c;
	}
	l->p[l->n++] = (struct posting){slot, ver, (uint16_t)lrintf(w * 65535.0f)};
	ix->postings++;
	return 0;
}

/* Drop postings of replaced vectors. */
static void sweep(struct dindex *ix)
{
	for (uint32_t i = 0; i < ix->fslots; i++) {
		struct plist *l = &ix->fmap[i];
		uint32_t k = 0;

		for (uint32_t j = 0; j < l->n; j++)
			if (ix->vers[l->p[j].slot] == l->p[j].ver)
				l->p[k++] = l->p[j];
		ix->postings -= l->n - k;
		l->n = k;
	}
	ix->stale = 0;
}

int dindex_new(const struct lexicon *lx, const char *provider_model, struct dindex **out)
{
	struct dindex *ix = calloc(1, sizeof(*ix));

	*out = NULL;
	if (!ix)
		return E(INTERNAL);
	ix->lx = lx;
	if (provider_model && !(ix->pmodel = strdup(provider_model)))
		goto fail;
	if (kgrow(ix) || fgrow(ix))
		goto fail;
	pthread_rwlock_init(&ix->lock, NULL);
	pthread_mutex_init(&ix->sync_lock, NULL);
	*out = ix;
	return 0;
fail:
	free(ix->pmodel);
	free(ix->kmap);
	free(ix->fmap);
	free(ix);
	return E(INTERNAL);
}

void dindex_free(struct dindex *ix)
{
	if (!ix)
		return;
	for (uint32_t i = 0; i < ix->fslots; i++)
		free(ix->fmap[i].p);
	for (uint32_t i = 0; i < ix->n; i++)
		free(ix->e[i].pvec);
	free(ix->fmap);
	free(ix->kmap);
	free(ix->df_id);
	free(ix->df_n);
	free(ix->orgs);
	free(ix->omap);
	free(ix->e);
	free(ix->rows);
	free(ix->rmap);
	free(ix->hot);
	free(ix->vers);
	free(ix->pmodel);
	pthread_rwlock_destroy(&ix->lock);
	pthread_mutex_destroy(&ix->sync_lock);
	free(ix);
}

/* ---- sync --------------------------------------------------------------- */

/* A changed row, prepared outside the lock (embedding is the costly part). */
#define CHANGE_STEMS 256

struct change {
	struct agent_brief b; /* strings below are owned copies */
	uint32_t stems[CHANGE_STEMS];
	int nstems;
	char embedding_id[EMB_ID_MAX];
	int text_changed;     /* decided under the lock */
	struct svec v;
	int8_t *pvec;
	float pscale;
	int pdim;
};

struct batch {
	struct dindex *ix;
	struct change *c;
	int n;
	int rc;
};

static int status_code(const char *s)
{
	return !strcmp(s, "active") ? ST_ACTIVE : !strcmp(s, "paused") ? ST_PAUSED : ST_PROBATIONARY;
}

/* Built-in text of an agent (name, capability type, description): its
 * vector and its stems. */
static int embed_agent(const struct lexicon *lx, const struct agent_brief *b, struct change *c)
{
	char text[EMBED_TEXT_MAX];
	int n = snprintf(text, sizeof(text), "%s. %s. %s", b->name, b->capability_type,
			 b->description);
	size_t len;

	if (n < 0)
		return E(INTERNAL);
	len = (size_t)n < sizeof(text) ? (size_t)n : sizeof(text) - 1;
	c->nstems = embed_stems(text, len, c->stems, CHANGE_STEMS);
	return embed_text(lx, text, len, &c->v);
}

static uint32_t *df_find(const struct dindex *ix, uint32_t fid)
{
	uint32_t mask = ix->df_slots - 1;

	for (uint32_t i = (fid * 0x9e3779b1U) & mask;; i = (i + 1) & mask)
		if (ix->df_id[i] == fid || !ix->df_id[i])
			return &ix->df_id[i];
}

static int df_grow(struct dindex *ix)
{
	uint32_t old = ix->df_slots, *oi = ix->df_id, *on = ix->df_n;

	ix->df_slots = old ? old * 2 : 4096;
	ix->df_id = calloc(ix->df_slots, sizeof(uint32_t));
	ix->df_n = calloc(ix->df_slots, sizeof(uint32_t));
	if (!ix->df_id || !ix->df_n) {
		free(ix->df_id);
		free(ix->df_n);
		ix->df_id = oi;
		ix->df_n = on;
		ix->df_slots = old;
		return E(INTERNAL);
	}
	for (uint32_t i = 0; i < old; i++)
		if (oi[i]) {
			uint32_t *s = df_find(ix, oi[i]);

			*s = oi[i];
			ix->df_n[s - ix->df_id] = on[i];
		}
	free(oi);
	free(on);
	return 0;
}

/* Count a new text's stems. A replaced text's stay counted until the next
 * start: the figure is an upper bound, which is what a cost estimate needs. */
static int df_add(struct dindex *ix, const uint32_t *ids, int n)
{
	for (int i = 0; i < n; i++) {
		uint32_t *s;

		if ((ix->df_used + 1) * 2 > ix->df_slots && df_grow(ix))
			return E(INTERNAL);
		s = df_find(ix, ids[i]);
		if (!*s) {
			*s = ids[i];
			ix->df_used++;
		}
		ix->df_n[s - ix->df_id]++;
	}
	return 0;
}

static int collect(void *ctx, const struct agent_brief *b)
{
	struct batch *bt = ctx;
	struct change *c = &bt->c[bt->n];

	memset(c, 0, sizeof(*c));
	c->b = *b;
	c->b.name = c->b.description = NULL;
	snprintf(c->embedding_id, sizeof(c->embedding_id), "%s", b->embedding_id ? b->embedding_id : "");
	c->b.embedding_id = c->embedding_id;
	c->b.vec = NULL;
	c->b.vec_model = NULL;
	if (embed_agent(bt->ix->lx, b, c))
		return E(INTERNAL);
	if (b->vec && bt->ix->pmodel && b->vec_model && !strcmp(b->vec_model, bt->ix->pmodel)) {
		float *tmp = (float *)b->vec;

		c->pvec = malloc((size_t)b->vec_dim);
		if (!c->pvec)
			return E(INTERNAL);
		qvec_quantize(tmp, (size_t)b->vec_dim, c->pvec, &c->pscale);
		c->pdim = b->vec_dim;
	}
	bt->n++;
	return 0;
}

static int apply(struct dindex *ix, struct change *c)
{
	uint32_t *s, slot;
	uint16_t *ver;
	struct hot *h;
	struct entry *e;
	int text_changed;

	if ((ix->n + 1) * 2 > ix->kslots && kgrow(ix))
		return E(INTERNAL);
	s = kfind(ix, c->b.org_id, c->b.agent_id);
	if (!*s) {
		if (ix->n == ix->cap) {
			uint32_t nc = ix->cap ? ix->cap * 2 : 1024;
			struct entry *ne = realloc(ix->e, nc * sizeof(*ne));
			struct hot *nh = ne ? realloc(ix->hot, nc * sizeof(*nh)) : NULL;
			uint16_t *nv = nh ? realloc(ix->vers, nc * sizeof(*nv)) : NULL;
			int64_t *nr = nv ? realloc(ix->rows, nc * sizeof(*nr)) : NULL;

			if (ne)
				ix->e = ne;
			if (nh)
				ix->hot = nh;
			if (nv)
				ix->vers = nv;
			if (!nr)
				return E(INTERNAL);
			ix->rows = nr;
			ix->cap = nc;
		}
		ix->vers[ix->n] = 0;
		ix->rows[ix->n] = 0;
		memset(&ix->hot[ix->n], 0, sizeof(ix->hot[0]));
		memset(&ix->e[ix->n], 0, sizeof(ix->e[0]));
		if (org_intern(ix, c->b.org_id, &ix->hot[ix->n].org_no))
			return E(INTERNAL);
		snprintf(ix->e[ix->n].org_id, ID_MAX, "%s", c->b.org_id);
		snprintf(ix->e[ix->n].agent_id, AGENT_ID_MAX + 1, "%s", c->b.agent_id);
		*s = ++ix->n;
	}
	slot = *s - 1;
	e = &ix->e[slot];
	if (row_set(ix, slot, c->b.row))
		return E(INTERNAL);
	ver = &ix->vers[slot];
	text_changed = strcmp(e->embedding_id, c->embedding_id) || *ver == 0;
	h = &ix->hot[slot];
	h->price = c->b.per_call_micros;
	h->p99 = (uint32_t)c->b.p99_latency_ms;
	h->trust = (float)c->b.trust_score;
	h->cap = (uint8_t)(dindex_cap(c->b.capability_type) < 0 ? 6 : dindex_cap(c->b.capability_type));
	h->status = (uint8_t)status_code(c->b.status);
	h->is_public = (uint8_t)(c->b.is_public != 0);
	if (text_changed) {
		if (*ver)
			ix->stale += (size_t)c->v.n;
		if (++*ver == 0) { /* wrapped: at 0, which no posting carries, */
			sweep(ix); /* every old posting of e goes */
			*ver = 1;
		}
		snprintf(e->embedding_id, sizeof(e->embedding_id), "%s", c->embedding_id);
		for (int i = 0; i < c->v.n; i++)
			if (post(ix, c->v.id[i], slot, *ver, c->v.w[i]))
				return E(INTERNAL);
		if (df_add(ix, c->stems, c->nstems))
			return E(INTERNAL);
	}
	/* the provider vector goes with the text it was made for */
	if (text_changed || c->pvec) {
		free(e->pvec);
		e->pvec = NULL;
		e->has_pvec = 0;
	}
	if (c->pvec && (!ix->pdim || ix->pdim == c->pdim)) {
		ix->pdim = c->pdim;
		e->pvec = c->pvec;
		e->pscale = c->pscale;
		e->has_pvec = 1;
		c->pvec = NULL;
	}
	if (c->b.seq > ix->seq)
		ix->seq = c->b.seq;
	return 0;
}

int dindex_sync(struct dindex *ix, struct store *st)
{
	struct batch bt = {.ix = ix};
	int64_t stamp = 0, from;
	int rc;

	rc = st->ops->agent_stamp(st, &stamp); /* before the read: see index.h */
	if (rc)
		return rc;
	pthread_rwlock_rdlock(&ix->lock);
	rc = ix->synced && ix->stamp == stamp;
	pthread_rwlock_unlock(&ix->lock);
	if (rc)
		return 0;
	pthread_mutex_lock(&ix->sync_lock);
	bt.c = malloc(SYNC_BATCH * sizeof(*bt.c));
	rc = bt.c ? 0 : E(INTERNAL);
	pthread_rwlock_rdlock(&ix->lock);
	from = ix->seq;
	pthread_rwlock_unlock(&ix->lock);
	while (!rc) {
		bt.n = 0;
		rc = st->ops->agent_changes(st, from, SYNC_BATCH, collect, &bt);
		pthread_rwlock_wrlock(&ix->lock);
		for (int i = 0; i < bt.n; i++) {
			if (!rc)
				rc = apply(ix, &bt.c[i]);
			free(bt.c[i].pvec);
		}
		if (ix->stale > ix->postings / 2 + 65536)
			sweep(ix);
		from = ix->seq;
		pthread_rwlock_unlock(&ix->lock);
		if (bt.n < SYNC_BATCH)
			break;
	}
	if (!rc) {
		pthread_rwlock_wrlock(&ix->lock);
		ix->stamp = stamp;
		ix->synced = 1;
		pthread_rwlock_unlock(&ix->lock);
	}
	free(bt.c);
	pthread_mutex_unlock(&ix->sync_lock);
	return rc;
}

/* ---- query -------------------------------------------------------------- */

static int visible(const struct dindex *ix, uint32_t slot, const struct dx_query *q)
{
	const struct hot *h = &ix->hot[slot];

	if (h->status == ST_PAUSED)
		return 0;
	if (h->org_no != q->org_no) {
		if (!q->cross_org || !h->is_public)
			return 0;
	} else {
		for (int i = 0; i < q->nexclude; i++)
			if (!strcmp(q->exclude[i], ix->e[slot].agent_id))
				return 0;
	}
	if (q->cap >= 0 && h->cap != q->cap)
		return 0;
	if (q->budget_cap_micros >= 0 && h->price > q->budget_cap_micros)
		return 0;
	if (q->max_latency_ms >= 0 && h->p99 > q->max_latency_ms)
		return 0;
	return 1;
}

/* A bounded min-heap of the best results so far. */
struct topk {
	struct dx_result *r;
	int n, k;
};

/* 1 if a ranks before b: higher score, then agent id, then org id. */
static int better(const struct dx_result *a, const struct dx_result *b)
{
	int c;

	if (a->r.score != b->r.score)
		return a->r.score > b->r.score;
	c = strcmp(a->agent_id, b->agent_id);
	return c ? c < 0 : strcmp(a->org_id, b->org_id) < 0;
}

static void sift_down(struct topk *t, int i)
{
	for (;;) {
		int l = 2 * i + 1, r = l + 1, m = i;
		struct dx_result tmp;

		if (l < t->n && better(&t->r[m], &t->r[l]))
			m = l;
		if (r < t->n && better(&t->r[m], &t->r[r]))
			m = r;
		if (m == i)
			return;
		tmp = t->r[i];
		t->r[i] = t->r[m];
		t->r[m] = tmp;
		i = m;
	}
}

static void sift_up(struct topk *t, int i)
{
	while (i > 0) {
		int p = (i - 1) / 2;
		struct dx_result tmp;

		if (!better(&t->r[p], &t->r[i]))
			return;
		tmp = t->r[i];
		t->r[i] = t->r[p];
		t->r[p] = tmp;
		i = p;
	}
}

static void topk_offer(struct topk *t, const struct entry *e, const struct rank_out *ro,
		       int provider)
{
	struct dx_result c;

	if (t->n == t->k && t->r[0].r.score > ro->score)
		return; /* cheap reject before copying ids */
	memcpy(c.org_id, e->org_id, sizeof(c.org_id));
	memcpy(c.agent_id, e->agent_id, sizeof(c.agent_id));
	c.r = *ro;
	c.provider = provider;
	if (t->n < t->k) {
		t->r[t->n] = c;
		sift_up(t, t->n++);
	} else if (better(&c, &t->r[0])) {
		t->r[0] = c;
		sift_down(t, 0);
	}
}

static int by_rank(const void *a, const void *b)
{
	return better(a, b) ? -1 : better(b, a) ? 1 : 0;
}

struct scratch {
	float *sem;      /* per slot: built-in cosine */
	float *lex;      /* per slot: full-text score */
	uint32_t *touched;
	uint32_t nt;
	uint8_t *mark;
};

static void touch(struct scratch *s, uint32_t slot)
{
	if (!s->mark[slot]) {
		s->mark[slot] = 1;
		s->touched[s->nt++] = slot;
	}
}

static void score_entry(const struct dindex *ix, const struct dx_query *q, uint32_t slot,
			double sem, double lex, double sem_best, double lex_best, int provider,
			struct topk *t)
{
	struct rank_in in = {
		.has_text = q->has_text,
		.lexical_raw = lex, .lexical_best = lex_best,
		.semantic_raw = sem, .semantic_best = sem_best,
		.price_micros = ix->hot[slot].price, .budget_cap_micros = q->budget_cap_micros,
		.p99_ms = ix->hot[slot].p99, .max_latency_ms = q->max_latency_ms,
		.trust_score = ix->hot[slot].trust,
		.probationary = ix->hot[slot].status == ST_PROBATIONARY,
	};
	struct rank_out ro;

	rank_score(&in, &ro);
	if (q->has_text && ro.relevance < RANK_MIN_RELEVANCE)
		return;
	topk_offer(t, &ix->e[slot], &ro, provider);
}

/* Provider cosine of e, or -1 when e has no provider vector. */
static double provider_cos(const struct dindex *ix, const struct entry *e, const int8_t *pq,
			   float pscale)
{
	if (!pq || !e->has_pvec)
		return -1;
	return (double)qdot(pq, e->pvec, (size_t)ix->pdim) * e->pscale * pscale;
}

/* Inverse document frequency of a feature in df of n agents. */
static float idf(uint32_t n, uint32_t df)
{
	return logf(1.0f + (float)n / (float)(df ? df : 1));
}

/* As rank_score computes it. */
static double relevance_of(const struct scratch *s, uint32_t slot, double sem_best,
			   double lex_best)
{
	return RANK_W_SEMANTIC * (sem_best > 0 ? s->sem[slot] / sem_best : 0) +
	       RANK_W_LEXICAL * (lex_best > 0 ? s->lex[slot] / lex_best : 0);
}

/* The k-th largest relevance among the (filtered) touched candidates, 0
 * when there are fewer: a min-heap of k values. */
static double kth_relevance(const struct scratch *s, int k, double sem_best, double lex_best)
{
	double h[DX_RESULTS_MAX];
	int n = 0;

	for (uint32_t i = 0; i < s->nt; i++) {
		double r = relevance_of(s, s->touched[i], sem_best, lex_best);
		int j;

		if (n < k) {
			for (j = n++; j > 0 && h[(j - 1) / 2] > r; j = (j - 1) / 2)
				h[j] = h[(j - 1) / 2];
			h[j] = r;
		} else if (r > h[0]) {
			for (j = 0;;) { /* replace the root, sift down */
				int c = 2 * j + 1;

				if (c >= n)
					break;
				if (c + 1 < n && h[c + 1] < h[c])
					c++;
				if (h[c] >= r)
					break;
				h[j] = h[c];
				j = c;
			}
			h[j] = r;
		}
	}
	return n == k ? h[0] : 0;
}

static int query_text(struct dindex *ix, const struct dx_query *q, struct scratch *s,
		      const int8_t *pq, float pscale, struct topk *t)
{
	double sem_best = 0, lex_best = 0, floor;

	/* built-in similarity over the postings of the query's features, each
	 * weighted by its rarity among agents (a concept every description
	 * shares says little) */
	for (int i = 0; q->q && i < q->q->n; i++) {
		struct plist *l = ffind(ix, q->q->id[i]);
		float w;

		if (!l->fid || !l->n)
			continue;
		if (ix->n >= COMMON_MIN_AGENTS && l->n > ix->n / COMMON_SHARE)
			continue; /* in a tenth of all agents: little weight, much work */
		w = q->q->w[i] * idf(ix->n, l->n);
		for (uint32_t j = 0; j < l->n; j++) {
			const struct posting *p = &l->p[j];

			if (ix->vers[p->slot] != p->ver)
				continue;
			if (!s->mark[p->slot])
				touch(s, p->slot);
			s->sem[p->slot] += w * (float)p->w * (1.0f / 65535.0f);
		}
	}
	for (int i = 0; i < q->nlex; i++) {
		uint32_t slot = hit_slot(ix, &q->lex[i]);

		if (slot == UINT32_MAX)
			continue; /* committed after our sync: next time */
		touch(s, slot);
		s->lex[slot] = (float)q->lex[i].score;
	}
	/* the provider's vectors replace the built-in ones where they exist */
	if (pq)
		for (uint32_t i = 0; i < ix->n; i++)
			if (ix->e[i].has_pvec && visible(ix, i, q)) {
				double c = provider_cos(ix, &ix->e[i], pq, pscale);

				touch(s, i);
				s->sem[i] = c > 0 ? (float)c : 0;
			}
	/* drop what the filters refuse, find the bests */
	{
		uint32_t k = 0;

		for (uint32_t i = 0; i < s->nt; i++) {
			uint32_t slot = s->touched[i];

			if (!visible(ix, slot, q) || (s->sem[slot] <= 0 && s->lex[slot] <= 0))
				continue;
			s->touched[k++] = slot;
			if (s->sem[slot] > sem_best)
				sem_best = s->sem[slot];
			if (s->lex[slot] > lex_best)
				lex_best = s->lex[slot];
		}
		s->nt = k;
	}
	/* Only candidates whose relevance could still place them in the top
	 * limit are ranked: the limit-th best relevance R means limit
	 * candidates score at least W_REL * R, and the other signals add at
	 * most their weights. */
	floor = kth_relevance(s, q->limit, sem_best, lex_best) -
		(RANK_W_BUDGET + RANK_W_LATENCY + RANK_W_TRUST) / RANK_W_REL;
	for (uint32_t i = 0; i < s->nt; i++) {
		uint32_t slot = s->touched[i];

		if (relevance_of(s, slot, sem_best, lex_best) < floor)
			continue;
		score_entry(ix, q, slot, s->sem[slot], s->lex[slot], sem_best, lex_best,
			    pq && ix->e[slot].has_pvec, t);
	}
	return 0;
}

int dindex_query(struct dindex *ix, const struct dx_query *query, struct dx_result *out, int *n)
{
	struct dx_query qq = *query, *q = &qq;
	struct topk t = {.r = out, .n = 0, .k = q->limit};
	struct scratch s = {0};
	int8_t *pq = NULL;
	float pscale = 0;
	int rc = 0;

	pthread_rwlock_rdlock(&ix->lock);
	qq.org_no = org_lookup(ix, q->org_id);
	if (q->pq && ix->pdim == q->pq_dim && q->pq_dim > 0) {
		pq = malloc((size_t)q->pq_dim);
		if (pq)
			qvec_quantize(q->pq, (size_t)q->pq_dim, pq, &pscale);
	}
	if (!q->has_text) {
		for (uint32_t i = 0; i < ix->n; i++)
			if (visible(ix, i, q))
				score_entry(ix, q, i, 0, 0, 0, 0, 0, &t);
		goto done;
	}
	s.sem = calloc(ix->n + 1, sizeof(float));
	s.lex = calloc(ix->n + 1, sizeof(float));
	s.mark = calloc(ix->n + 1, 1);
	s.touched = malloc((ix->n + 1) * sizeof(uint32_t));
	if (!s.sem || !s.lex || !s.mark || !s.touched) {
		rc = E(INTERNAL);
		goto done;
	}
	rc = query_text(ix, q, &s, pq, pscale, &t);
done:
	pthread_rwlock_unlock(&ix->lock);
	free(s.sem);
	free(s.lex);
	free(s.mark);
	free(s.touched);
	free(pq);
	qsort(out, (size_t)t.n, sizeof(out[0]), by_rank);
	*n = t.n;
	return rc;
}

int dindex_missing_provider(struct dindex *ix, int limit,
			    void (*cb)(void *ctx, const char *org_id, const char *agent_id,
				       const char *embedding_id),
			    void *ctx)
{
	int k = 0;

	pthread_rwlock_rdlock(&ix->lock);
	for (uint32_t i = 0; ix->pmodel && i < ix->n && k < limit; i++)
		if (!ix->e[i].has_pvec && ix->e[i].embedding_id[0]) {
			cb(ctx, ix->e[i].org_id, ix->e[i].agent_id, ix->e[i].embedding_id);
			k++;
		}
	pthread_rwlock_unlock(&ix->lock);
	return k;
}

uint32_t dindex_df(struct dindex *ix, uint32_t fid)
{
	uint32_t n = 0, *s;

	pthread_rwlock_rdlock(&ix->lock);
	if (ix->df_slots) {
		s = df_find(ix, fid);
		n = *s ? ix->df_n[s - ix->df_id] : 0;
	}
	pthread_rwlock_unlock(&ix->lock);
	return n;
}

void dindex_stats(struct dindex *ix, struct dx_stats *st)
{
	pthread_rwlock_rdlock(&ix->lock);
	memset(st, 0, sizeof(*st));
	st->agents = ix->n;
	for (uint32_t i = 0; i < ix->n; i++)
		st->live += ix->hot[i].status != ST_PAUSED;
	st->postings = ix->postings;
	st->features = ix->nfeat;
	st->seq = ix->seq;
	st->bytes = (size_t)ix->cap * (sizeof(struct entry) + sizeof(struct hot) + 2 + 8) +
		    (size_t)ix->kslots * 4 + (size_t)ix->rslots * 4 +
		    (size_t)ix->fslots * sizeof(struct plist);
	for (uint32_t i = 0; i < ix->fslots; i++)
		st->bytes += (size_t)ix->fmap[i].cap * sizeof(struct posting);
	for (uint32_t i = 0; i < ix->n; i++)
		st->bytes += ix->e[i].has_pvec ? (size_t)ix->pdim : 0;
	st->bytes += (size_t)ix->df_slots * 8;
	pthread_rwlock_unlock(&ix->lock);
}
