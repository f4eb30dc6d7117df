/*
 * Structured logs: one JSON object per line on stderr. Only the outer layer
 * (server, main) logs; library code returns errors. Lines are written with
 * a single write(2) so concurrent threads never interleave within a line.
 */
#ifndef NEXRA_CORE_LOG_H
#define NEXRA_CORE_LOG_H

#include <stddef.h>

#include "core/buf.h"

/* Write a prebuilt JSON object (without newline) as one line. */
void log_write(const char *json, size_t len);

/* {"ts","level","event","detail"} with detail formatted printf-style. */
void log_msg(const char *level, const char *event, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
