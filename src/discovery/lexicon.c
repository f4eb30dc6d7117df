/*
 * Loading the linked-in WordNet table (lexicon.h). The text is parsed once:
 * S lines fill two CSR arrays (hypernyms and derivations per synset); L
 * lines are stemmed into keys that are interned in an open-addressing hash
 * table, with their senses collected as (key, sense) pairs and then grouped
 * by key with a counting sort, so the lexicon ends as a handful of flat
 * arrays and no per-entry allocation.
 */
#include "discovery/lexicon.h"

#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/hash.h"
#include "discovery/stem.h"
#include "core/banned.h"

extern const char nx_lexicon[];     /* build/gen/lexicon.S */
extern const char nx_lexicon_end[];

#define KEY_MAX 128 /* a stemmed collocation of at most three words */

struct lexicon {
	/* synsets: CSR */
	uint32_t nsyn;
	uint32_t *hyp_off, *hyp; /* hyp_off[nsyn + 1] */
	uint32_t *der_off, *der;
	/* keys */
	char *arena;             /* NUL-terminated keys */
	size_t arena_len, arena_cap;
	uint32_t nkeys, slots;   /* slots: power of two */
	uint32_t *slot_key;      /* key index + 1, 0 empty */
	uint32_t *key_str;       /* arena offset per key */
	uint32_t *key_off;       /* senses of key i: sense[key_off[i] .. key_off[i + 1]) */
	struct lex_sense *sense;
};

struct pair {
	uint32_t key;
	struct lex_sense s;
};

/* Growable array of T with a named maximum (the table's own size). */
#define GROW(arr, n, cap, extra)                                                        \
	((n) + (extra) <= (cap) ? 0                                                     \
	 : grow((void **)&(arr), &(cap), (n) + (extra), sizeof(*(arr))))

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
	size_t c = *cap ? *cap : 1024;
	void *n;

	while (c < need)
		c *= 2;
	n = realloc(*p, c * elem);
	if (!n)
		return E(INTERNAL);
	*p = n;
	*cap = c;
	return 0;
}

static uint32_t key_hash(const char *k, size_t n)
{
	return hash_fnv1a(HASH_FNV_INIT, k, n);
}

/* The slot of key k: its own, or the empty one where it belongs. */
static uint32_t *find_slot(const struct lexicon *lx, const char *k, size_t n)
{
	uint32_t mask = lx->slots - 1, i = key_hash(k, n) & mask;

	for (;;) {
		uint32_t *s = &lx->slot_key[i];
		const char *have;

		if (!*s)
			return s;
		have = lx->arena + lx->key_str[*s - 1];
		if (strlen(have) == n && !memcmp(have, k, n))
			return s;
		i = (i + 1) & mask;
	}
}

/* Intern key k; its index in *idx. */
static int intern(struct lexicon *lx, size_t *key_cap, const char *k, size_t n, uint32_t *idx)
{
	uint32_t *s = find_slot(lx, k, n);

	if (*s) {
		*idx = *s - 1;
		return 0;
	}
	if (lx->nkeys + 1 > lx->slots / 2)
		return E(INTERNAL); /* sized up front from the line count */
	if (GROW(lx->arena, lx->arena_len, lx->arena_cap, n + 1) ||
	    GROW(lx->key_str, lx->nkeys, *key_cap, 1))
		return E(INTERNAL);
	memcpy(lx->arena + lx->arena_len, k, n);
	lx->arena[lx->arena_len + n] = '\0';
	lx->key_str[lx->nkeys] = (uint32_t)lx->arena_len;
	lx->arena_len += n + 1;
	*s = ++lx->nkeys;
	*idx = lx->nkeys - 1;
	return 0;
}

/* Parse a space-separated list of numbers in [p, end); calls back each. */
static const char *next_num(const char *p, const char *end, uint32_t *v, uint32_t *rank)
{
	uint32_t x = 0, r = 0;

	while (p < end && *p == ' ')
		p++;
	if (p >= end || *p < '0' || *p > '9')
		return NULL;
	while (p < end && *p >= '0' && *p <= '9')
		x = x * 10 + (uint32_t)(*p++ - '0');
	if (p < end && *p == '.') {
		p++;
		while (p < end && *p >= '0' && *p <= '9')
			r = r * 10 + (uint32_t)(*p++ - '0');
	}
	*v = x;
	if (rank)
		*rank = r;
	return p;
}

struct loader {
	struct lexicon *lx;
	size_t hyp_cap, der_cap, nhyp, nder, key_cap, npairs, pairs_cap;
	struct pair *pairs;
	struct stemmer st;
};

static int load_synset(struct loader *L, const char *p, const char *end)
{
	struct lexicon *lx = L->lx;
	const char *tab = memchr(p, '\t', (size_t)(end - p));
	uint32_t v;

	if (!tab)
		return E(INTERNAL);
	for (const char *q = p; (q = next_num(q, tab, &v, NULL));) {
		if (GROW(lx->hyp, L->nhyp, L->hyp_cap, 1))
			return E(INTERNAL);
		lx->hyp[L->nhyp++] = v;
	}
	for (const char *q = tab + 1; (q = next_num(q, end, &v, NULL));) {
		if (GROW(lx->der, L->nder, L->der_cap, 1))
			return E(INTERNAL);
		lx->der[L->nder++] = v;
	}
	lx->nsyn++;
	lx->hyp_off[lx->nsyn] = (uint32_t)L->nhyp;
	lx->der_off[lx->nsyn] = (uint32_t)L->nder;
	return 0;
}

/* Stem each word of lemma[0..n) ("_" or "-" between words) into key. */
static size_t stem_lemma(struct stemmer *st, const char *lemma, size_t n, char *key)
{
	size_t k = 0, i = 0;

	while (i < n) {
		size_t j = i, sl;
		char stem[STEM_WORD_MAX + 1];

		while (j < n && lemma[j] != '_' && lemma[j] != '-')
			j++;
		if (j > i) {
			if (k + STEM_WORD_MAX + 2 > KEY_MAX)
				return 0;
			if (k)
				key[k++] = '_';
			sl = stemmer_stem(st, lemma + i, j - i, stem);
			memcpy(key + k, stem, sl);
			k += sl;
		}
		i = j + 1;
	}
	key[k] = '\0';
	return k;
}

static int load_lemma(struct loader *L, const char *p, const char *end)
{
	const char *tab = memchr(p, '\t', (size_t)(end - p));
	char key[KEY_MAX];
	size_t kn;
	uint32_t idx, v, r;

	if (!tab)
		return E(INTERNAL);
	kn = stem_lemma(&L->st, p, (size_t)(tab - p), key);
	if (!kn)
		return 0;
	if (intern(L->lx, &L->key_cap, key, kn, &idx))
		return E(INTERNAL);
	for (const char *q = tab + 1; (q = next_num(q, end, &v, &r));) {
		if (v >= L->lx->nsyn)
			return E(INTERNAL);
		if (GROW(L->pairs, L->npairs, L->pairs_cap, 1))
			return E(INTERNAL);
		L->pairs[L->npairs++] = (struct pair){idx, {v, r}};
	}
	return 0;
}

/* Group the pairs by key (counting sort): key_off and sense. */
static int group(struct loader *L)
{
	struct lexicon *lx = L->lx;
	uint32_t *fill;

	lx->key_off = calloc((size_t)lx->nkeys + 1, sizeof(*lx->key_off));
	lx->sense = malloc((L->npairs ? L->npairs : 1) * sizeof(*lx->sense));
	fill = calloc((size_t)lx->nkeys + 1, sizeof(*fill));
	if (!lx->key_off || !lx->sense || !fill) {
		free(fill);
		return E(INTERNAL);
	}
	for (size_t i = 0; i < L->npairs; i++)
		lx->key_off[L->pairs[i].key + 1]++;
	for (uint32_t i = 0; i < lx->nkeys; i++)
		lx->key_off[i + 1] += lx->key_off[i];
	for (size_t i = 0; i < L->npairs; i++) {
		uint32_t k = L->pairs[i].key;

		lx->sense[lx->key_off[k] + fill[k]++] = L->pairs[i].s;
	}
	free(fill);
	return 0;
}

int lexicon_load(struct lexicon **out)
{
	const char *p = nx_lexicon, *end = nx_lexicon_end;
	size_t lines = 0;
	struct loader L;
	int rc = E(INTERNAL);

	memset(&L, 0, sizeof(L));
	*out = NULL;
	for (const char *q = p; q < end; q++)
		lines += *q == '\n';
	L.lx = calloc(1, sizeof(*L.lx));
	if (!L.lx || stemmer_init(&L.st))
		goto out;
	for (L.lx->slots = 1024; L.lx->slots < lines * 2; L.lx->slots *= 2)
		;
	L.lx->slot_key = calloc(L.lx->slots, sizeof(uint32_t));
	L.lx->hyp_off = calloc(lines + 1, sizeof(uint32_t));
	L.lx->der_off = calloc(lines + 1, sizeof(uint32_t));
	if (!L.lx->slot_key || !L.lx->hyp_off || !L.lx->der_off)
		goto out;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *e = nl ? nl : end;

		if (e - p > 2 && p[0] == 'S' && p[1] == '\t')
			rc = load_synset(&L, p + 2, e);
		else if (e - p > 2 && p[0] == 'L' && p[1] == '\t')
			rc = load_lemma(&L, p + 2, e);
		else
			rc = E(INTERNAL);
		if (rc)
			goto out;
		p = e + 1;
	}
	rc = group(&L);
out:
	free(L.pairs);
	stemmer_release(&L.st);
	if (rc) {
		lexicon_free(L.lx);
		return E(INTERNAL);
	}
	*out = L.lx;
	return 0;
}

void lexicon_free(struct lexicon *lx)
{
	if (!lx)
		return;
	free(lx->hyp_off);
	free(lx->hyp);
	free(lx->der_off);
	free(lx->der);
	free(lx->arena);
	free(lx->slot_key);
	free(lx->key_str);
	free(lx->key_off);
	free(lx->sense);
	free(lx);
}

const struct lex_sense *lexicon_senses(const struct lexicon *lx, const char *key, size_t len,
				       size_t *n)
{
	uint32_t *s = find_slot(lx, key, len);

	if (!*s) {
		*n = 0;
		return NULL;
	}
	*n = lx->key_off[*s] - lx->key_off[*s - 1];
	return lx->sense + lx->key_off[*s - 1];
}

/* Row synset of a CSR pair (off, vals). */
static const uint32_t *csr_row(const struct lexicon *lx, const uint32_t *off, const uint32_t *vals,
			       uint32_t synset, size_t *n)
{
	if (synset >= lx->nsyn) {
		*n = 0;
		return NULL;
	}
	*n = off[synset + 1] - off[synset];
	return vals + off[synset];
}

const uint32_t *lexicon_hypernyms(const struct lexicon *lx, uint32_t synset, size_t *n)
{
	return csr_row(lx, lx->hyp_off, lx->hyp, synset, n);
}

const uint32_t *lexicon_derived(const struct lexicon *lx, uint32_t synset, size_t *n)
{
	return csr_row(lx, lx->der_off, lx->der, synset, n);
}

void lexicon_stats(const struct lexicon *lx, size_t *keys, size_t *synsets, size_t *bytes)
{
	*keys = lx->nkeys;
	*synsets = lx->nsyn;
	*bytes = lx->arena_cap + (size_t)lx->slots * 4 + (size_t)lx->nkeys * 8 +
		 (size_t)lx->key_off[lx->nkeys] * sizeof(struct lex_sense) +
		 ((size_t)lx->nsyn + 1) * 8 + (size_t)(lx->hyp_off[lx->nsyn] + lx->der_off[lx->nsyn]) * 4;
}
