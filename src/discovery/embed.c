/* The built-in embedder; see embed.h. */
#include "discovery/embed.h"

#include <math.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#include <string.h>

#include "core/err.h"
#include "core/hash.h"
#include "discovery/stem.h"
#include "core/banned.h"

/* The weights below were chosen on the evaluation set (make bench prints
 * its figures; docs/discovery.md): more concept mass than stem mass and
 * strong hypernyms are what lets paraphrases meet. */
#define WORDS_MAX 512       /* words of a text considered */
#define W_STEM 1.0f         /* the word's own stem */
#define W_CONCEPT 3.0f      /* the word's concepts together (norm) */
#define W_COLLOCATION 1.3f  /* a collocation's concepts, over its words' own */
#define HYPER_LEVELS 3

static const float sense_w[] = {1.0f, 0.55f, 0.35f};       /* by sense rank */
static const float hyper_w[HYPER_LEVELS] = {0.8f, 0.5f, 0.3f};
static const float derived_w = 0.5f;

/* Features of one text: open addressing on the 32-bit feature id. */
#define ACC_SLOTS 4096 /* > WORDS_MAX * (1 + CONCEPTS_MAX) would be exact; a
			  full table drops further features */
#define ACC_FILL 3072
struct feat_acc {
	uint32_t id[ACC_SLOTS];
	float w[ACC_SLOTS]; /* 0: empty */
	int n;
};

static uint32_t feature_id(char kind, uint32_t id)
{
	uint32_t h = hash_fnv1a(HASH_FNV_INIT, &kind, 1);

	h = hash_fnv1a(h, &id, sizeof(id));
	h ^= h >> 15;
	h *= 0x2c1b3c6dU;
	h ^= h >> 12;
	return h | 1; /* never 0 */
}

uint32_t embed_stem_feature(const char *stem, size_t n)
{
	return feature_id('w', hash_fnv1a(HASH_FNV_INIT, stem, n));
}

/* Add feature (kind, id) with weight w. */
static void add(struct feat_acc *acc, char kind, uint32_t id, float w)
{
	uint32_t h = feature_id(kind, id), i;

	for (i = h % ACC_SLOTS; acc->w[i] != 0; i = (i + 1) % ACC_SLOTS)
		if (acc->id[i] == h) {
			acc->w[i] += w;
			return;
		}
	if (acc->n >= ACC_FILL)
		return;
	acc->id[i] = h;
	acc->w[i] = w;
	acc->n++;
}

/* A word's concepts, gathered before normalizing their mass: a small
 * open-addressing set (slot: index + 1) so each add is O(1). */
#define CONCEPTS_MAX 96
#define CONCEPT_SLOTS 256
struct concepts {
	uint32_t id[CONCEPTS_MAX];
	float w[CONCEPTS_MAX];
	int n;
	uint8_t slot[CONCEPT_SLOTS];
};

static void concept_add(struct concepts *c, uint32_t id, float w)
{
	uint32_t i = (id * 0x9e3779b1U) >> 24;

	for (; c->slot[i]; i = (i + 1) % CONCEPT_SLOTS)
		if (c->id[c->slot[i] - 1] == id) {
			if (w > c->w[c->slot[i] - 1])
				c->w[c->slot[i] - 1] = w;
			return;
		}
	if (c->n < CONCEPTS_MAX) {
		c->id[c->n] = id;
		c->w[c->n++] = w;
		c->slot[i] = (uint8_t)c->n;
	}
}

static void add_hypernyms(const struct lexicon *lx, struct concepts *c, uint32_t syn, float w,
			  int level)
{
	size_t n;
	const uint32_t *h;

	if (level >= HYPER_LEVELS)
		return;
	h = lexicon_hypernyms(lx, syn, &n);
	for (size_t i = 0; i < n; i++) {
		concept_add(c, h[i], w * hyper_w[level]);
		add_hypernyms(lx, c, h[i], w, level + 1);
	}
}

static void gather(const struct lexicon *lx, struct concepts *c, const char *key, size_t len,
		   float scale)
{
	size_t n, nd;
	const struct lex_sense *s = lexicon_senses(lx, key, len, &n);

	for (size_t i = 0; i < n; i++) {
		float w;
		const uint32_t *d;

		if (s[i].rank >= sizeof(sense_w) / sizeof(sense_w[0]))
			continue;
		w = sense_w[s[i].rank] * scale;
		concept_add(c, s[i].synset, w);
		add_hypernyms(lx, c, s[i].synset, w, 0);
		d = lexicon_derived(lx, s[i].synset, &nd);
		for (size_t j = 0; j < nd; j++)
			concept_add(c, d[j], w * derived_w);
	}
}

/* Spend W_CONCEPT of norm on c's concepts. */
static void add_concepts(struct feat_acc *acc, const struct concepts *c)
{
	float norm = 0;

	for (int i = 0; i < c->n; i++)
		norm += c->w[i] * c->w[i];
	if (norm <= 0)
		return;
	norm = W_CONCEPT / sqrtf(norm);
	for (int i = 0; i < c->n; i++)
		add(acc, 'c', c->id[i], c->w[i] * norm);
}

struct words {
	char stem[WORDS_MAX][STEM_WORD_MAX + 1];
	unsigned char len[WORDS_MAX];
	unsigned char stop[WORDS_MAX];
	int n;
};

/* Key of words i..i+k joined by "_" into key (KEY room for 3 words). */
static size_t join(const struct words *w, int i, int k, char *key)
{
	size_t n = 0;

	for (int j = i; j < i + k; j++) {
		if (j > i)
			key[n++] = '_';
		memcpy(key + n, w->stem[j], w->len[j]);
		n += w->len[j];
	}
	key[n] = '\0';
	return n;
}

static void embed_words(const struct lexicon *lx, const struct words *w, struct feat_acc *acc)
{
	char key[3 * (STEM_WORD_MAX + 1)];

	for (int i = 0; i < w->n; i++) {
		struct concepts c;
		int colloc = 0;

		c.n = 0;
		memset(c.slot, 0, sizeof(c.slot));

		for (int k = 3; k >= 2 && !colloc; k--) {
			size_t n, kl;

			if (i + k > w->n)
				continue;
			kl = join(w, i, k, key);
			if (lexicon_senses(lx, key, kl, &n)) {
				gather(lx, &c, key, kl, W_COLLOCATION);
				colloc = 1;
			}
		}
		if (w->stop[i] && !colloc)
			continue;
		if (!w->stop[i]) {
			add(acc, 'w', hash_fnv1a(HASH_FNV_INIT, w->stem[i], w->len[i]), W_STEM);
			gather(lx, &c, w->stem[i], w->len[i], 1.0f);
		}
		add_concepts(acc, &c);
	}
}

struct fw {
	float w;
	uint32_t id;
};

static int by_weight_desc(const void *a, const void *b)
{
	const struct fw *x = a, *y = b;

	if (x->w != y->w)
		return (x->w < y->w) - (x->w > y->w);
	return (x->id > y->id) - (x->id < y->id); /* deterministic */
}

static int by_id(const void *a, const void *b)
{
	const struct fw *x = a, *y = b;

	return (x->id > y->id) - (x->id < y->id);
}

/* Partition all[lo..hi] so that the k heaviest come first (quickselect). */
static void select_top(struct fw *all, int n, int k)
{
	int lo = 0, hi = n - 1;

	while (lo < hi) {
		struct fw pivot = all[lo + (hi - lo) / 2], t;
		int i = lo, j = hi;

		while (i <= j) {
			while (by_weight_desc(&all[i], &pivot) < 0)
				i++;
			while (by_weight_desc(&all[j], &pivot) > 0)
				j--;
			if (i <= j) {
				t = all[i];
				all[i++] = all[j];
				all[j--] = t;
			}
		}
		if (k - 1 <= j)
			hi = j;
		else if (k - 1 >= i)
			lo = i;
		else
			return;
	}
}

/* The SVEC_MAX heaviest features, normalized, ascending ids. */
static void top_features(const struct feat_acc *acc, struct svec *out)
{
	static __thread struct fw all[ACC_FILL];
	int n = 0;
	float norm = 0;

	for (int i = 0; i < ACC_SLOTS; i++)
		if (acc->w[i] > 0)
			all[n++] = (struct fw){acc->w[i], acc->id[i]};
	if (n > SVEC_MAX) {
		select_top(all, n, SVEC_MAX);
		n = SVEC_MAX;
	}
	qsort(all, (size_t)n, sizeof(all[0]), by_id);
	for (int i = 0; i < n; i++)
		norm += all[i].w * all[i].w;
	norm = norm > 0 ? 1.0f / sqrtf(norm) : 0;
	for (int i = 0; i < n; i++) {
		out->id[i] = all[i].id;
		out->w[i] = all[i].w * norm;
	}
	out->n = n;
}

int embed_text(const struct lexicon *lx, const char *text, size_t len, struct svec *out)
{
	static __thread struct words w; /* 25 KB: off the stack */
	static __thread struct feat_acc acc; /* 32 KB */
	struct stemmer st;
	char word[STEM_WORD_MAX + 1];
	size_t pos = 0, n;

	if (stemmer_init(&st))
		return E(INTERNAL);
	if (len > EMBED_TEXT_MAX)
		len = EMBED_TEXT_MAX;
	memset(&acc, 0, sizeof(acc));
	w.n = 0;
	while (w.n < WORDS_MAX && (n = stem_next_word(text, len, &pos, word)) > 0) {
		w.stop[w.n] = (unsigned char)stem_is_stopword(word, n);
		w.len[w.n] = (unsigned char)stemmer_stem(&st, word, n, w.stem[w.n]);
		w.n++;
	}
	stemmer_release(&st);
	embed_words(lx, &w, &acc);
	top_features(&acc, out);
	return 0;
}

int embed_stems(const char *text, size_t len, uint32_t *ids, int max)
{
	struct stemmer st;
	char word[STEM_WORD_MAX + 1], stem[STEM_WORD_MAX + 1];
	size_t pos = 0, n;
	int k = 0;

	if (stemmer_init(&st))
		return 0;
	if (len > EMBED_TEXT_MAX)
		len = EMBED_TEXT_MAX;
	while (k < max && (n = stem_next_word(text, len, &pos, word)) > 0) {
		uint32_t f;
		int dup = 0;

		if (stem_is_stopword(word, n))
			continue;
		f = embed_stem_feature(stem, stemmer_stem(&st, word, n, stem));
		for (int i = 0; i < k && !dup; i++)
			dup = ids[i] == f;
		if (!dup)
			ids[k++] = f;
	}
	stemmer_release(&st);
	return k;
}

float svec_dot(const struct svec *a, const struct svec *b)
{
	float s = 0;
	int i = 0, j = 0;

	while (i < a->n && j < b->n) {
		if (a->id[i] < b->id[j])
			i++;
		else if (a->id[i] > b->id[j])
			j++;
		else
			s += a->w[i++] * b->w[j++];
	}
	return s;
}

void qvec_quantize(const float *f, size_t n, int8_t *q, float *scale)
{
	float max = 0;
	int64_t sq = 0;

	for (size_t i = 0; i < n; i++)
		if (fabsf(f[i]) > max)
			max = fabsf(f[i]);
	for (size_t i = 0; i < n; i++) {
		q[i] = max > 0 ? (int8_t)lrintf(f[i] * 127.0f / max) : 0;
		sq += (int64_t)q[i] * q[i];
	}
	*scale = sq > 0 ? (float)(1.0 / sqrt((double)sq)) : 0.0f;
}

#ifdef __SSE2__
/* 16 values a step: sign-extend to 16 bits, multiply-add pairs to 32. */
int32_t qdot(const int8_t *a, const int8_t *b, size_t n)
{
	__m128i acc = _mm_setzero_si128();
	int32_t s = 0, part[4];
	size_t i = 0;

	for (; i + 16 <= n; i += 16) {
		__m128i x = _mm_loadu_si128((const __m128i *)(a + i));
		__m128i y = _mm_loadu_si128((const __m128i *)(b + i));
		__m128i xl = _mm_srai_epi16(_mm_unpacklo_epi8(x, x), 8);
		__m128i xh = _mm_srai_epi16(_mm_unpackhi_epi8(x, x), 8);
		__m128i yl = _mm_srai_epi16(_mm_unpacklo_epi8(y, y), 8);
		__m128i yh = _mm_srai_epi16(_mm_unpackhi_epi8(y, y), 8);

		acc = _mm_add_epi32(acc, _mm_madd_epi16(xl, yl));
		acc = _mm_add_epi32(acc, _mm_madd_epi16(xh, yh));
	}
	_mm_storeu_si128((__m128i *)part, acc);
	s = part[0] + part[1] + part[2] + part[3];
	for (; i < n; i++)
		s += (int32_t)a[i] * b[i];
	return s;
}
#else
int32_t qdot(const int8_t *a, const int8_t *b, size_t n)
{
	int32_t s = 0;

	for (size_t i = 0; i < n; i++)
		s += (int32_t)a[i] * b[i];
	return s;
}
#endif
