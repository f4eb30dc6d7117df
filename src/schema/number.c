/*
 * Exact decimal numbers for minimum/maximum/multipleOf and for equality.
 *
 * JSON numbers are decimal text; jansson hands us an int64 or a double. A
 * double is turned back into the shortest decimal that round-trips to it
 * (at most 17 significant digits), which is the text the author wrote
 * whenever that text was itself the shortest form ("0.1", "19.99", "1e308").
 * From there every comparison is exact decimal arithmetic on digit strings:
 * no division in floating point, so 0.0075 is a multiple of 0.0001 and
 * 1e308 / 0.123456789 does not overflow to infinity.
 *
 * multipleOf: x = a * 10^p and m = b * 10^q with a, b free of trailing
 * zeros. x is a multiple of m iff a * 10^p is divisible by b * 10^q. If
 * q > p that would need a to end in a zero, so it is not; otherwise it is
 * (a * 10^(p-q)) mod b == 0, computed digit by digit in 128-bit arithmetic
 * (b has at most 19 digits, so it fits in 64 bits and r * 10 + 9 in 128).
 */
#include "schema/schema_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/banned.h"

static void sdec_normalize(struct sdec *d)
{
	int lead = 0;

	while (lead < d->ndigits && d->digits[lead] == '0')
		lead++;
	if (lead) {
		memmove(d->digits, d->digits + lead, (size_t)(d->ndigits - lead));
		d->ndigits -= lead;
	}
	while (d->ndigits > 0 && d->digits[d->ndigits - 1] == '0') {
		d->ndigits--;
		d->exp++;
	}
	d->digits[d->ndigits] = '\0';
	if (d->ndigits == 0) {
		d->exp = 0;
		d->neg = 0;
	}
}

static void from_u64(unsigned long long u, int neg, int exp, struct sdec *d)
{
	char tmp[24];
	int n = 0;

	d->neg = neg;
	d->exp = exp;
	while (u) {
		tmp[n++] = (char)('0' + u % 10);
		u /= 10;
	}
	for (int i = 0; i < n; i++)
		d->digits[i] = tmp[n - 1 - i];
	d->ndigits = n;
	sdec_normalize(d);
}

void sdec_from_int(long long x, struct sdec *d)
{
	unsigned long long u = x < 0 ? 0ULL - (unsigned long long)x : (unsigned long long)x;

	from_u64(u, x < 0, 0, d);
}

/*
 * Fast path of sdec_from_double for the common case (|x| < 2^53 with few
 * decimals): the fewest decimals k for which some integer M gives M / 10^k
 * == |x|. For M < 2^53 and k <= 22 both M and 10^k are exact doubles and
 * IEEE division rounds correctly, so M / 10^k is exactly what strtod makes
 * of the text "M e-k": the test is exact, and the smallest k is the
 * shortest round-trip form. 0 with *m and *k set; -1 to fall back to printf.
 */
static int fast_double(double x, unsigned long long *mout, int *kout)
{
	static const double p10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
				     1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
				     1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
	double ax = fabs(x);

	if (!(ax < 9007199254740992.0) || ax < 1e-6)
		return -1;
	for (int k = 0; k <= 22; k++) {
		double y = ax * p10[k];
		long long n;

		if (y >= 9007199254740992.0)
			return -1;
		n = (long long)(y + 0.5); /* within one of the nearest integer */
		for (int d = 0; d < 3; d++) { /* n first: it is the one when any is */
			long long m = n + (d == 0 ? 0 : d == 1 ? -1 : 1);

			if (m > 0 && (double)m / p10[k] == ax) {
				*mout = (unsigned long long)m;
				*kout = k;
				return 0;
			}
		}
	}
	return -1;
}

int sdec_from_double(double x, struct sdec *d)
{
	char tmp[48];
	int prec, n = 0, e, k;
	unsigned long long m;
	const char *p;

	memset(d, 0, sizeof(*d));
	if (!isfinite(x))
		return -1;
	if (x == 0)
		return 0;
	if (!fast_double(x, &m, &k)) {
		from_u64(m, x < 0, -k, d);
		return 0;
	}
	for (prec = 1; prec <= 17; prec++) {
		snprintf(tmp, sizeof(tmp), "%.*e", prec - 1, x);
		if (strtod(tmp, NULL) == x)
			break;
	}
	p = tmp;
	if (*p == '-') {
		d->neg = 1;
		p++;
	}
	for (; *p && *p != 'e'; p++) {
		if (*p >= '0' && *p <= '9' && n < SCHEMA_DEC_DIGITS)
			d->digits[n++] = *p;
	}
	e = *p == 'e' ? (int)strtol(p + 1, NULL, 10) : 0;
	d->ndigits = n;
	d->exp = e - (n - 1);
	sdec_normalize(d);
	return 0;
}

int sdec_from_json(const json_t *v, struct sdec *d)
{
	if (json_is_integer(v)) {
		sdec_from_int((long long)json_integer_value(v), d);
		return 0;
	}
	if (json_is_real(v))
		return sdec_from_double(json_real_value(v), d);
	return -1;
}

int sdec_parts_from_json(const json_t *v, unsigned long long *a, int *p)
{
	unsigned long long m;
	int k;

	if (json_is_integer(v)) {
		json_int_t i = json_integer_value(v);

		m = i < 0 ? 0ULL - (unsigned long long)i : (unsigned long long)i;
		k = 0;
	} else if (json_is_real(v)) {
		double x = json_real_value(v);

		if (x == 0) {
			m = 0;
			k = 0;
		} else if (fast_double(x, &m, &k)) {
			return -1;
		}
	} else {
		return -1;
	}
	*p = -k;
	while (m && m % 10 == 0) {
		m /= 10;
		(*p)++;
	}
	*a = m;
	if (!m)
		*p = 0;
	return 0;
}

int sdec_parts(const struct sdec *m, unsigned long long *b, int *q)
{
	unsigned long long x = 0;

	if (m->ndigits == 0 || m->ndigits > 19)
		return -1;
	for (int i = 0; i < m->ndigits; i++)
		x = x * 10 + (unsigned long long)(m->digits[i] - '0');
	*b = x;
	*q = m->exp;
	return 0;
}

/* r * 10^shift mod b == 0, one decimal place at a time (r < b < 2^64). */
static int shifted_rest_zero(unsigned __int128 r, int shift, unsigned long long b)
{
	for (; shift > 0 && r != 0; shift--)
		r = (r * 10) % b;
	return r == 0;
}

/* x = a * 10^p with a free of trailing zeros, m = b * 10^q: see the top. */
int sdec_parts_multiple(unsigned long long a, int p, unsigned long long b, int q)
{
	if (a == 0)
		return 1;
	if (b == 0 || q > p)
		return 0;
	return shifted_rest_zero(a % b, p - q, b);
}

static int cmp_magnitude(const struct sdec *a, const struct sdec *b)
{
	int ma, mb, i;

	if (a->ndigits == 0 || b->ndigits == 0)
		return (a->ndigits > 0) - (b->ndigits > 0);
	ma = a->ndigits + a->exp; /* position just above the leading digit */
	mb = b->ndigits + b->exp;
	if (ma != mb)
		return ma < mb ? -1 : 1;
	for (i = 0; i < a->ndigits && i < b->ndigits; i++) {
		if (a->digits[i] != b->digits[i])
			return a->digits[i] < b->digits[i] ? -1 : 1;
	}
	return (a->ndigits > b->ndigits) - (a->ndigits < b->ndigits);
}

int sdec_cmp(const struct sdec *a, const struct sdec *b)
{
	int sa = a->ndigits == 0 ? 0 : (a->neg ? -1 : 1);
	int sb = b->ndigits == 0 ? 0 : (b->neg ? -1 : 1);
	int m;

	if (sa != sb)
		return sa < sb ? -1 : 1;
	if (sa == 0)
		return 0;
	m = cmp_magnitude(a, b);
	return sa < 0 ? -m : m;
}

int sdec_is_integer(const struct sdec *d)
{
	return d->ndigits == 0 || d->exp >= 0;
}

int sdec_is_multiple(const struct sdec *x, const struct sdec *m)
{
	unsigned long long b;
	unsigned __int128 r = 0;
	int q;

	if (x->ndigits == 0)
		return 1;
	if (sdec_parts(m, &b, &q) || q > x->exp)
		return 0;
	for (int i = 0; i < x->ndigits; i++)
		r = (r * 10 + (unsigned)(x->digits[i] - '0')) % b;
	return shifted_rest_zero(r, x->exp - q, b);
}

void sdec_format(const struct sdec *d, char *out, size_t outsz)
{
	const char *sign = d->neg ? "-" : "";
	int point = d->ndigits + d->exp; /* digits before the decimal point */

	if (d->ndigits == 0) {
		snprintf(out, outsz, "0");
	} else if (d->exp >= 0 && point <= 21) {
		snprintf(out, outsz, "%s%s%0*d", sign, d->digits, d->exp, 0);
		if (d->exp == 0)
			snprintf(out, outsz, "%s%s", sign, d->digits);
	} else if (d->exp < 0 && point > 0) {
		snprintf(out, outsz, "%s%.*s.%s", sign, point, d->digits, d->digits + point);
	} else if (d->exp < 0 && point > -6) {
		snprintf(out, outsz, "%s0.%0*d%s", sign, -point, 0, d->digits);
		if (point == 0)
			snprintf(out, outsz, "%s0.%s", sign, d->digits);
	} else {
		snprintf(out, outsz, "%s%c%s%.*se%+d", sign, d->digits[0], d->ndigits > 1 ? "." : "",
			 d->ndigits - 1, d->digits + 1, point - 1);
	}
}
