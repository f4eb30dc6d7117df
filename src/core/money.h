/*
 * Money: an int64 count of micro-USD everywhere inside Nexra. JSON carries
 * USD numbers; this module is the only place that converts between the two,
 * exactly, without float arithmetic on amounts.
 *
 * Conversion from a JSON number goes through the shortest decimal string
 * that reproduces the parsed double (the text the client most plausibly
 * wrote), then reads its digits as an integer. A value with more than six
 * decimals, a negative value, NaN/Inf or one above the caller's maximum is
 * refused.
 */
#ifndef NEXRA_CORE_MONEY_H
#define NEXRA_CORE_MONEY_H

#include <stdint.h>

#define MONEY_SCALE 1000000LL

/* Shortest round-trip decimal of d into micro-USD. 0, or E(VALIDATION) when
 * d is negative, not finite, has more than 6 decimals or exceeds max_micros. */
int money_from_double(double d, int64_t max_micros, int64_t *out);

/* Whole USD integer into micros, same bounds. */
int money_from_int(long long v, int64_t max_micros, int64_t *out);

/* Decimal text of micros ("0.15", "12", "0.000001") into out (>= 32 bytes). */
void money_format(int64_t micros, char *out, unsigned long outsz);

/* micros as a double for JSON output only (never for arithmetic). */
double money_to_double(int64_t micros);

#endif
