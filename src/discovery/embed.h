/*
 * The built-in embedder: text -> a unit vector of EMBED_DIM int8 values,
 * in-process, no network, no model file (docs/discovery.md "Built-in
 * embeddings").
 *
 * Each content word (stopwords dropped) is stemmed and contributes its stem
 * as a feature, plus the WordNet concepts of the stem (and of the two- and
 * three-word collocations starting at it, "look into"): its most frequent
 * senses, their hypernyms up to three levels at decreasing weight, and
 * derivationally related senses. The vector is sparse: the SVEC_MAX
 * heaviest features (32-bit ids), L2-normalized. Two texts that share no
 * word but share concepts ("look into firms", "researches companies") get
 * a positive cosine; texts that share nothing get exactly 0 (no hashing
 * noise, unlike a dense feature-hashed vector of a few hundred dimensions).
 *
 * Pure and thread-safe given a loaded lexicon (each call uses its own
 * stemmer).
 */
#ifndef NEXRA_DISCOVERY_EMBED_H
#define NEXRA_DISCOVERY_EMBED_H

#include <stddef.h>
#include <stdint.h>

#include "discovery/lexicon.h"

#define SVEC_MAX 128
#define EMBED_MODEL "nexra-builtin-wordnet-1" /* changes when the vectors would */
#define EMBED_TEXT_MAX 8192                   /* bytes of text considered */

/* A sparse unit vector, ids ascending. n == 0: no content words. */
struct svec {
	uint32_t id[SVEC_MAX];
	float w[SVEC_MAX];
	int n;
};

/* Embed text[0..len) into out. 0 or E(INTERNAL) (out of memory for the
 * stemmer). */
int embed_text(const struct lexicon *lx, const char *text, size_t len, struct svec *out);

/* The feature id of a word's stem (as embed_text gives it). */
uint32_t embed_stem_feature(const char *stem, size_t n);

/* The distinct stem features of text's content words (all of them, where
 * the vector keeps only the heaviest): at most max into ids; the count is
 * returned. The index counts agents per stem with them (a document
 * frequency that full-text search's cost is estimated from). */
int embed_stems(const char *text, size_t len, uint32_t *ids, int max);

/* Cosine of two sparse unit vectors. */
float svec_dot(const struct svec *a, const struct svec *b);

/* Provider vectors, dense: quantize n floats to int8 with the scale that
 * makes dot * a_scale * b_scale the cosine; qdot is their integer dot. */
void qvec_quantize(const float *f, size_t n, int8_t *q, float *scale);
int32_t qdot(const int8_t *a, const int8_t *b, size_t n);

#endif
