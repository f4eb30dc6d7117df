/*
 * Exact USD <-> micro-USD conversion; see money.h. The shortest round-trip
 * representation is found by asking printf for 1..17 significant digits in
 * %e form and keeping the first that parses back to the same double.
 */
#include "core/money.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/banned.h"

int money_from_int(long long v, int64_t max_micros, int64_t *out)
{
	if (v < 0 || v > max_micros / MONEY_SCALE)
		return E(VALIDATION);
	*out = (int64_t)v * MONEY_SCALE;
	return 0;
}

int money_from_double(double d, int64_t max_micros, int64_t *out)
{
	char s[40], digits[24];
	int p, exp10, nd = 0, shift;
	const char *c;
	int64_t v = 0;

	if (!isfinite(d) || d < 0)
		return E(VALIDATION);
	if (d == 0) {
		*out = 0;
		return 0;
	}
	if (d > (double)max_micros / (double)MONEY_SCALE * 1.0000001 + 1)
		return E(VALIDATION);
	for (p = 1; p <= 17; p++) {
		snprintf(s, sizeof(s), "%.*e", p - 1, d);
		if (strtod(s, NULL) == d)
			break;
	}
	/* s = "D.DDDDe[+-]XX": collect the mantissa digits and the exponent */
	for (c = s; *c && *c != 'e'; c++)
		if (*c >= '0' && *c <= '9')
			digits[nd++] = *c;
	if (*c != 'e')
		return E(VALIDATION);
	exp10 = (int)strtol(c + 1, NULL, 10);
	while (nd > 1 && digits[nd - 1] == '0')
		nd--;
	/* value = digits * 10^(exp10 - (nd - 1)); micros need shift >= 0 */
	shift = exp10 - (nd - 1) + 6;
	if (shift < 0)
		return E(VALIDATION); /* more than six decimals */
	for (int i = 0; i < nd; i++) {
		if (v > (INT64_MAX - 9) / 10)
			return E(VALIDATION);
		v = v * 10 + (digits[i] - '0');
	}
	for (int i = 0; i < shift; i++) {
		if (v > INT64_MAX / 10)
			return E(VALIDATION);
		v *= 10;
	}
	if (v > max_micros)
		return E(VALIDATION);
	*out = v;
	return 0;
}

void money_format(int64_t micros, char *out, unsigned long outsz)
{
	char tmp[32], *p = tmp + sizeof(tmp);
	uint64_t m = micros < 0 ? (uint64_t)0 - (uint64_t)micros : (uint64_t)micros;
	uint64_t whole = m / MONEY_SCALE, frac = m % MONEY_SCALE;
	int digits = 6;
	size_t n;

	*--p = '\0';
	if (frac) { /* fraction without trailing zeros */
		while (frac % 10 == 0) {
			frac /= 10;
			digits--;
		}
		for (int i = 0; i < digits; i++, frac /= 10)
			*--p = (char)('0' + frac % 10);
		*--p = '.';
	}
	do {
		*--p = (char)('0' + whole % 10);
		whole /= 10;
	} while (whole);
	if (micros < 0)
		*--p = '-';
	n = (size_t)(tmp + sizeof(tmp) - p);
	if (n > outsz) { /* callers pass >= 32: never a wrong number, at worst "" */
		if (outsz)
			out[0] = '\0';
		return;
	}
	memcpy(out, p, n);
}

double money_to_double(int64_t micros)
{
	char s[40];

	money_format(micros, s, sizeof(s));
	return strtod(s, NULL);
}
