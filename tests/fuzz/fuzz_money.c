/*
 * Fuzz target: USD amounts. The bytes are read as text with strtod (as a
 * JSON number would be) and, when there are at least 8 of them, also as a
 * raw double; each is converted with money_from_double under two ceilings.
 * An accepted amount must be in [0, max], within rounding of d * 10^6, and
 * survive money_format -> strtod -> money_from_double unchanged; abort()
 * otherwise.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/money.h"

static void check(double d, int64_t max)
{
	int64_t m = -1, back = -1;
	char s[40];

	if (money_from_double(d, max, &m))
		return;
	if (m < 0 || m > max)
		abort();
	if (fabs((double)m - d * 1e6) > fabs(d * 1e6) * 1e-12 + 1)
		abort();
	money_format(m, s, sizeof(s));
	if (money_from_double(strtod(s, NULL), max, &back) || back != m)
		abort();
	if (money_to_double(m) != strtod(s, NULL))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char text[512];
	size_t n = size < sizeof(text) - 1 ? size : sizeof(text) - 1;
	double d;

	memcpy(text, data, n);
	text[n] = '\0';
	d = strtod(text, NULL);
	check(d, 1000000LL * 1000000LL);
	check(d, INT64_MAX);
	check(d, 1);
	if (size >= 8) {
		memcpy(&d, data, sizeof(d));
		check(d, 1000000LL * 1000000LL);
		check(d, INT64_MAX);
	}
	return 0;
}
