/*
 * core/money: exact USD <-> micro-USD. The conversion from a double must
 * give the micros of the decimal the client wrote, refuse anything finer
 * than a micro, and money_format must be its inverse.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "core/err.h"
#include "core/money.h"
#include "test.h"

#define MAXM (1000000LL * 1000000LL) /* the agent price ceiling: $1,000,000 */

static int from_double(double d, int64_t *out)
{
	return money_from_double(d, MAXM, out);
}

TEST(money_from_double_exact_decimals)
{
	static const struct {
		double d;
		int64_t micros;
	} cases[] = {
		{0.15, 150000},  {0.000001, 1},   {19.99, 19990000},  {0, 0},
		{1, 1000000},    {0.1, 100000},   {0.3, 300000},      {0.29, 290000},
		{1.005, 1005000}, {123456.789012, 123456789012LL}, {0.999999, 999999},
		{4.35, 4350000}, {1000000, MAXM},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t m = -7;

		ASSERT_EQ(from_double(cases[i].d, &m), 0);
		ASSERT_EQ(m, cases[i].micros);
	}
}

TEST(money_from_double_refuses_more_than_six_decimals)
{
	int64_t m = 42;

	ASSERT_EQ(from_double(1e-7, &m), E(VALIDATION));
	ASSERT_EQ(from_double(0.1234567, &m), E(VALIDATION));
	ASSERT_EQ(from_double(0.0000015, &m), E(VALIDATION));
	ASSERT_EQ(from_double(19.9999991, &m), E(VALIDATION));
	ASSERT_EQ(from_double(5e-324, &m), E(VALIDATION));
	ASSERT_EQ(m, 42); /* untouched on failure */
}

TEST(money_from_double_refuses_negative_nan_inf)
{
	int64_t m = 42;

	ASSERT_EQ(from_double(-1, &m), E(VALIDATION));
	ASSERT_EQ(from_double(-0.000001, &m), E(VALIDATION));
	ASSERT_EQ(from_double(NAN, &m), E(VALIDATION));
	ASSERT_EQ(from_double(-NAN, &m), E(VALIDATION));
	ASSERT_EQ(from_double(INFINITY, &m), E(VALIDATION));
	ASSERT_EQ(from_double(-INFINITY, &m), E(VALIDATION));
	ASSERT_EQ(m, 42);
	/* negative zero is zero */
	ASSERT_EQ(from_double(-0.0, &m), 0);
	ASSERT_EQ(m, 0);
}

TEST(money_from_double_max_bound)
{
	int64_t m = 0;

	ASSERT_EQ(from_double(1000000.0, &m), 0);
	ASSERT_EQ(m, MAXM);
	ASSERT_EQ(from_double(1000000.000001, &m), E(VALIDATION));
	ASSERT_EQ(from_double(1000001, &m), E(VALIDATION));
	ASSERT_EQ(from_double(1e300, &m), E(VALIDATION));
	/* a small maximum: exactly at it and one micro over */
	ASSERT_EQ(money_from_double(0.5, 500000, &m), 0);
	ASSERT_EQ(m, 500000);
	ASSERT_EQ(money_from_double(0.500001, 500000, &m), E(VALIDATION));
	/* the whole int64 range: no overflow on the way to the check */
	ASSERT_EQ(money_from_double(9.3e12, INT64_MAX, &m), E(VALIDATION));
	ASSERT_EQ(money_from_double(9e12, INT64_MAX, &m), 0);
	ASSERT_EQ(m, 9000000000000000000LL);
}

TEST(money_from_int_bounds)
{
	int64_t m = 42;

	ASSERT_EQ(money_from_int(0, MAXM, &m), 0);
	ASSERT_EQ(m, 0);
	ASSERT_EQ(money_from_int(12, MAXM, &m), 0);
	ASSERT_EQ(m, 12000000);
	ASSERT_EQ(money_from_int(1000000, MAXM, &m), 0);
	ASSERT_EQ(m, MAXM);
	m = 42;
	ASSERT_EQ(money_from_int(1000001, MAXM, &m), E(VALIDATION));
	ASSERT_EQ(money_from_int(-1, MAXM, &m), E(VALIDATION));
	ASSERT_EQ(money_from_int(-9223372036854775807LL - 1, MAXM, &m), E(VALIDATION));
	ASSERT_EQ(money_from_int(9223372036854775807LL, MAXM, &m), E(VALIDATION));
	ASSERT_EQ(m, 42);
}

TEST(money_format_cases)
{
	static const struct {
		int64_t micros;
		const char *text;
	} cases[] = {
		{150000, "0.15"},   {12000000, "12"},     {1, "0.000001"}, {-1500000, "-1.5"},
		{0, "0"},           {19990000, "19.99"},  {100000, "0.1"}, {1000010, "1.00001"},
		{-1, "-0.000001"},  {MAXM, "1000000"},
		{INT64_MAX, "9223372036854.775807"},
		{INT64_MIN, "-9223372036854.775808"},
	};
	char s[40];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		money_format(cases[i].micros, s, sizeof(s));
		ASSERT_STR_EQ(s, cases[i].text);
	}
}

TEST(money_format_round_trips_through_double)
{
	static const char *const texts[] = {"0.15", "12", "0.000001", "19.99", "0.1", "999999.999999"};
	uint64_t x = 0x9e3779b97f4a7c15ull;
	char s[40];
	int64_t m;

	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		ASSERT_EQ(from_double(strtod(texts[i], NULL), &m), 0);
		money_format(m, s, sizeof(s));
		ASSERT_STR_EQ(s, texts[i]);
	}
	/* negative amounts format (and read back through strtod) exactly */
	money_format(-1500000, s, sizeof(s));
	ASSERT_EQ(strtod(s, NULL), -1.5);

	/* every amount up to the ceiling: format, read as a client would, convert back */
	for (int i = 0; i < 20000; i++) {
		int64_t want, got = -1;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		want = (int64_t)(x % (uint64_t)(MAXM + 1));
		if (i % 3 == 0)
			want %= 100000000; /* small prices are the common case */
		money_format(want, s, sizeof(s));
		ASSERT_EQ(from_double(strtod(s, NULL), &got), 0);
		ASSERT_EQ(got, want);
		ASSERT_EQ(money_to_double(want), strtod(s, NULL));
	}
}
