/*
 * struct buf: a growable byte buffer with a hard maximum, after curl's
 * dynbuf. Every buffer that grows from outside input names its limit at
 * init; growing past it fails with E(TOO_LARGE) and leaves the contents
 * as they were. The contents are always NUL-terminated (not counted in len).
 */
#ifndef NEXRA_CORE_BUF_H
#define NEXRA_CORE_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
	char *data; /* NULL until the first append; owned */
	size_t len;
	size_t cap;
	size_t max; /* contents may never exceed this many bytes */
};

void buf_init(struct buf *b, size_t max);
void buf_release(struct buf *b); /* frees contents; b may be reused after buf_init */
void buf_reset(struct buf *b);   /* len = 0, keeps memory */

/* Make room for n bytes in all (a hint: avoids regrowth); 0 or an error. */
int buf_reserve(struct buf *b, size_t n);

/* Append; 0, or E(TOO_LARGE) past max, or E(INTERNAL) on out of memory. */
int buf_add(struct buf *b, const void *p, size_t n);
int buf_adds(struct buf *b, const char *s);
int buf_addf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_vaddf(struct buf *b, const char *fmt, va_list ap);

/* Hand the NUL-terminated contents to the caller (who frees them); b is
 * left empty. Returns "" in a fresh allocation when nothing was added. */
char *buf_detach(struct buf *b, size_t *len);

#endif
