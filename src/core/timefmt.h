/*
 * Time: wall-clock and monotonic readings (the only place that asks the OS)
 * and RFC 3339 UTC formatting. Core logic takes times as arguments so tests
 * control them; only the outer layers call the *_now functions.
 */
#ifndef NEXRA_CORE_TIMEFMT_H
#define NEXRA_CORE_TIMEFMT_H

#include <stdint.h>

#define RFC3339_LEN 32

int64_t time_now_unix(void);   /* wall clock, seconds */
int64_t time_now_ms(void);     /* wall clock, milliseconds */
uint64_t time_mono_ns(void);   /* monotonic, nanoseconds */

/* "2026-03-13T21:00:00Z" into out (>= RFC3339_LEN bytes). */
void time_rfc3339(int64_t unix_s, char *out);

/* Parse "2026-03-13T21:00:00Z" (optionally with fractional seconds, which
 * are dropped) into unix seconds. 0, or E(VALIDATION). Pure. */
int time_parse_rfc3339(const char *s, int64_t *out);

/* The UTC calendar month of unix_s, "2026-03", into out (>= 8 bytes). */
void time_month(int64_t unix_s, char *out);

/* Millisecond form "2026-03-13T21:00:00.123Z" (for logs). */
void time_rfc3339_ms(int64_t unix_ms, char *out);

#endif
