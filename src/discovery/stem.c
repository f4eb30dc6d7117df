/* Words and stems; see stem.h. */
#include "discovery/stem.h"

#include <libstemmer.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/banned.h"

int stemmer_init(struct stemmer *st)
{
	st->sb = sb_stemmer_new("english", "UTF_8");
	return st->sb ? 0 : E(INTERNAL);
}

void stemmer_release(struct stemmer *st)
{
	if (st->sb)
		sb_stemmer_delete(st->sb);
	st->sb = NULL;
}

size_t stemmer_stem(struct stemmer *st, const char *word, size_t n, char *out)
{
	const sb_symbol *s = sb_stemmer_stem(st->sb, (const sb_symbol *)word, (int)n);
	size_t len = s ? (size_t)sb_stemmer_length(st->sb) : 0;

	if (!s) { /* out of memory: the word itself still matches itself */
		s = (const sb_symbol *)word;
		len = n;
	}
	if (len > STEM_WORD_MAX)
		len = STEM_WORD_MAX;
	memcpy(out, s, len);
	out[len] = '\0';
	return len;
}

static int is_word_byte(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

size_t stem_next_word(const char *text, size_t len, size_t *pos, char *word)
{
	size_t i = *pos, n = 0;

	while (i < len && !is_word_byte((unsigned char)text[i]))
		i++;
	while (i < len && is_word_byte((unsigned char)text[i])) {
		unsigned char c = (unsigned char)text[i++];

		if (n < STEM_WORD_MAX)
			word[n++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
	}
	word[n] = '\0';
	*pos = i;
	return n;
}

/* Sorted, for bsearch. */
static const char *const stopwords[] = {
	"a", "about", "across", "after", "agent", "agents", "all", "also", "an", "and", "any",
	"are", "as", "at", "automatically", "be", "been", "being", "both", "but", "by", "can",
	"could", "do", "does", "each", "for", "from", "get", "gets", "given", "has", "have",
	"help", "helps", "how", "i", "if", "in", "into", "is", "it", "its", "just", "me", "my",
	"need", "needs", "no", "not", "of", "on", "one", "or", "our", "out", "over", "per",
	"please", "service", "so", "some", "someone", "something", "such", "than", "that",
	"the", "their", "them", "then", "there", "these", "they", "this", "those", "to",
	"up", "us", "using", "via", "want", "was", "we", "were", "what", "when", "where",
	"which", "while", "who", "will", "with", "without", "would", "you", "your",
};

static int cmp_word(const void *key, const void *elem)
{
	return strcmp(key, *(const char *const *)elem);
}

int stem_is_stopword(const char *word, size_t n)
{
	char w[STEM_WORD_MAX + 1];

	if (n > STEM_WORD_MAX)
		return 0;
	memcpy(w, word, n);
	w[n] = '\0';
	return bsearch(w, stopwords, sizeof(stopwords) / sizeof(stopwords[0]),
		       sizeof(stopwords[0]), cmp_word) != NULL;
}
