/* RFC 3339 formatting and parsing (core/timefmt). */
#include "core/err.h"
#include "core/timefmt.h"
#include "test.h"

TEST(timefmt_round_trip_and_bad_times)
{
	char s[RFC3339_LEN];
	int64_t t = 0;

	time_rfc3339(1773435600, s);
	ASSERT_STR_EQ(s, "2026-03-13T21:00:00Z");
	ASSERT_EQ(time_parse_rfc3339(s, &t), 0);
	ASSERT_EQ(t, 1773435600);
	ASSERT_EQ(time_parse_rfc3339("2026-03-13T21:00:00.123Z", &t), 0);
	ASSERT_EQ(t, 1773435600);
	ASSERT_EQ(time_parse_rfc3339("2028-02-29T00:00:00Z", &t), 0); /* leap year */
	ASSERT_EQ(time_parse_rfc3339("2027-02-29T00:00:00Z", &t), E(VALIDATION));
	ASSERT_EQ(time_parse_rfc3339("2026-02-30T00:00:00Z", &t), E(VALIDATION));
	ASSERT_EQ(time_parse_rfc3339("2026-03-13T21:00:00", &t), E(VALIDATION));
	ASSERT_EQ(time_parse_rfc3339("2026-03-13T21:00:00+01:00", &t), E(VALIDATION));
	ASSERT_EQ(time_parse_rfc3339("2026-03-13T24:00:00Z", &t), E(VALIDATION));
	ASSERT_EQ(time_parse_rfc3339("2026-3-13T21:00:00Z", &t), E(VALIDATION));
	ASSERT_EQ(time_parse_rfc3339("2026-03-13T21:00:00.Z", &t), E(VALIDATION));
	ASSERT_EQ(time_parse_rfc3339("2026-03-13T21:00:00Zjunk", &t), E(VALIDATION));
	ASSERT_EQ(time_parse_rfc3339("", &t), E(VALIDATION));
}

TEST(timefmt_month_is_the_utc_calendar_month)
{
	char m[8];

	time_month(1773435600, m); /* 2026-03-13T21:00:00Z */
	ASSERT_STR_EQ(m, "2026-03");
	time_month(1772323199, m); /* 2026-02-28T23:59:59Z */
	ASSERT_STR_EQ(m, "2026-02");
	time_month(1772323200, m); /* 2026-03-01T00:00:00Z */
	ASSERT_STR_EQ(m, "2026-03");
	time_month(1798761599, m); /* 2026-12-31T23:59:59Z */
	ASSERT_STR_EQ(m, "2026-12");
}
