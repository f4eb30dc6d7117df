/*
 * The built-in embedder's knowledge of English: WordNet 3.0 (Debian package
 * wordnet-base), compiled at build time by scripts/wordnet-lexicon.py into a
 * text table that is linked into the binary (no file is read at run time).
 *
 * At load every lemma is stemmed with the Snowball English stemmer (the same
 * one the embedder applies to text), so "companies", "company" and
 * "company's" meet one entry; collocations keep their words joined by "_"
 * ("look_into"). An entry lists its senses (synset ids with the sense's rank
 * in its part of speech, 0 the most frequent); each synset lists its
 * hypernyms (general ones left out at build time) and its derivationally
 * related synsets ("investigate" -> "investigation").
 *
 * The lexicon is immutable once loaded and shared by every thread.
 */
#ifndef NEXRA_DISCOVERY_LEXICON_H
#define NEXRA_DISCOVERY_LEXICON_H

#include <stddef.h>
#include <stdint.h>

struct lex_sense {
	uint32_t synset;
	uint32_t rank;
};

struct lexicon;

/* Load the linked-in table. 0 or E(INTERNAL) (out of memory or a corrupt
 * table); *out is freed with lexicon_free. */
int lexicon_load(struct lexicon **out);
void lexicon_free(struct lexicon *lx);

/* The senses of a stemmed key (words joined by "_"): *n of them, borrowed
 * for the lexicon's life; NULL when unknown. */
const struct lex_sense *lexicon_senses(const struct lexicon *lx, const char *key, size_t len,
				       size_t *n);
/* A synset's hypernyms and derivations, borrowed; *n set. */
const uint32_t *lexicon_hypernyms(const struct lexicon *lx, uint32_t synset, size_t *n);
const uint32_t *lexicon_derived(const struct lexicon *lx, uint32_t synset, size_t *n);

/* Figures for logs and the bench: keys, synsets, bytes held. */
void lexicon_stats(const struct lexicon *lx, size_t *keys, size_t *synsets, size_t *bytes);

#endif
