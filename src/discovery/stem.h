/*
 * Words of a text, as the embedder and the lexicon see them: lowercase runs
 * of ASCII letters and digits (other bytes, UTF-8 included, separate
 * words), each reduced by the Snowball English stemmer. libstemmer's
 * stemmers are not thread-safe; each struct stemmer is used by one thread
 * at a time (the embedder keeps one per call).
 */
#ifndef NEXRA_DISCOVERY_STEM_H
#define NEXRA_DISCOVERY_STEM_H

#include <stddef.h>

#define STEM_WORD_MAX 48 /* longer words are cut */

struct sb_stemmer;

struct stemmer {
	struct sb_stemmer *sb;
};

/* 0 or E(INTERNAL). */
int stemmer_init(struct stemmer *st);
void stemmer_release(struct stemmer *st);

/* Stem word[0..n) (lowercase) into out (STEM_WORD_MAX + 1 bytes); returns
 * the stem's length. */
size_t stemmer_stem(struct stemmer *st, const char *word, size_t n, char *out);

/* The next word of text at or after *pos: lowercase copy into word
 * (STEM_WORD_MAX + 1 bytes), its length returned, *pos moved past it; 0 at
 * the end. */
size_t stem_next_word(const char *text, size_t len, size_t *pos, char *word);

/* 1 for English function words and words every agent description shares
 * ("agent", "service"): they carry no meaning for matching. */
int stem_is_stopword(const char *word, size_t n);

#endif
