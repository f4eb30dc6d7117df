/*
 * A small JSON writer into a struct buf, for responses on hot paths where
 * building a jansson tree only to dump it would cost more than the request.
 * The caller writes structure ({ , : }) itself; these helpers write values
 * correctly escaped. Errors from the buffer (size limit, memory) are sticky:
 * check jw->rc once at the end.
 */
#ifndef NEXRA_CORE_JSONW_H
#define NEXRA_CORE_JSONW_H

#include <stdint.h>

#include "core/buf.h"

struct jsonw {
	struct buf *b;
	int rc;   /* first error, 0 if none */
	int first; /* no comma before the next member */
};

void jw_init(struct jsonw *jw, struct buf *b);
void jw_raw(struct jsonw *jw, const char *s);              /* verbatim */
void jw_obj_open(struct jsonw *jw);                        /* "{" */
void jw_obj_close(struct jsonw *jw);                       /* "}" */
void jw_key(struct jsonw *jw, const char *key);            /* [,]"key": */
void jw_str(struct jsonw *jw, const char *s);              /* "escaped" or null when s is NULL */
void jw_int(struct jsonw *jw, int64_t v);
void jw_bool(struct jsonw *jw, int v);
void jw_num(struct jsonw *jw, double v);                   /* shortest round-trip */
void jw_money(struct jsonw *jw, int64_t micros);           /* USD number */
void jw_time(struct jsonw *jw, int64_t unix_s);            /* RFC 3339 string, null if 0 */

/* Member shorthands: key then value. */
void jw_kstr(struct jsonw *jw, const char *key, const char *s);
void jw_kint(struct jsonw *jw, const char *key, int64_t v);
void jw_kbool(struct jsonw *jw, const char *key, int v);
void jw_kraw(struct jsonw *jw, const char *key, const char *json);
void jw_ktime(struct jsonw *jw, const char *key, int64_t unix_s);

#endif
