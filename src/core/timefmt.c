/* Clock readings and RFC 3339 formatting; see timefmt.h. */
#include "core/timefmt.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/err.h"
#include "core/banned.h"

int64_t time_now_unix(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec;
}

int64_t time_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t time_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static char *digits(char *p, unsigned v, int n)
{
	for (int i = n - 1; i >= 0; i--, v /= 10)
		p[i] = (char)('0' + v % 10);
	return p + n;
}

int time_parse_rfc3339(const char *s, int64_t *out)
{
	static const int mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int y, mo, d, h, mi, sec, n = 0;
	struct tm tm = {0}, back;
	const char *p;
	time_t t;

	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6 || n != 19)
		return E(VALIDATION);
	p = s + n;
	if (*p == '.') {
		p++;
		if (*p < '0' || *p > '9')
			return E(VALIDATION);
		while (*p >= '0' && *p <= '9')
			p++;
	}
	if (p[0] != 'Z' || p[1] || y < 1970 || mo < 1 || mo > 12 || d < 1 ||
	    d > mdays[mo - 1] || h > 23 || mi > 59 || sec > 60)
		return E(VALIDATION);
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	t = timegm(&tm);
	if (!gmtime_r(&t, &back) || back.tm_mday != d) /* Feb 29 of a common year */
		return E(VALIDATION);
	*out = (int64_t)t;
	return 0;
}

void time_rfc3339(int64_t unix_s, char *out)
{
	time_t t = (time_t)unix_s;
	struct tm tm;
	char *p = out;

	gmtime_r(&t, &tm);
	if (tm.tm_year + 1900 < 0 || tm.tm_year + 1900 > 9999) { /* not for us */
		strftime(out, RFC3339_LEN, "%Y-%m-%dT%H:%M:%SZ", &tm);
		return;
	}
	p = digits(p, (unsigned)(tm.tm_year + 1900), 4);
	*p++ = '-';
	p = digits(p, (unsigned)tm.tm_mon + 1, 2);
	*p++ = '-';
	p = digits(p, (unsigned)tm.tm_mday, 2);
	*p++ = 'T';
	p = digits(p, (unsigned)tm.tm_hour, 2);
	*p++ = ':';
	p = digits(p, (unsigned)tm.tm_min, 2);
	*p++ = ':';
	p = digits(p, (unsigned)tm.tm_sec, 2);
	*p++ = 'Z';
	*p = '\0';
}

void time_rfc3339_ms(int64_t unix_ms, char *out)
{
	/* the seconds part is formatted once per second per thread (logs) */
	static _Thread_local int64_t cached_s = -1;
	static _Thread_local char cached[RFC3339_LEN];
	static _Thread_local size_t cached_n;
	int64_t s = unix_ms / 1000;
	unsigned ms = (unsigned)(unix_ms % 1000);

	if (s != cached_s) {
		time_t t = (time_t)s;
		struct tm tm;

		gmtime_r(&t, &tm);
		cached_n = strftime(cached, sizeof(cached), "%Y-%m-%dT%H:%M:%S", &tm);
		cached_s = s;
	}
	memcpy(out, cached, cached_n);
	out[cached_n] = '.';
	out[cached_n + 1] = (char)('0' + ms / 100);
	out[cached_n + 2] = (char)('0' + ms / 10 % 10);
	out[cached_n + 3] = (char)('0' + ms % 10);
	out[cached_n + 4] = 'Z';
	out[cached_n + 5] = '\0';
}

void time_month(int64_t unix_s, char *out)
{
	time_t t = (time_t)unix_s;
	struct tm tm;
	unsigned y, m;

	gmtime_r(&t, &tm);
	y = (unsigned)(tm.tm_year + 1900) % 10000u;
	m = (unsigned)tm.tm_mon + 1u;

	out[0] = (char)('0' + y / 1000);
	out[1] = (char)('0' + y / 100 % 10);
	out[2] = (char)('0' + y / 10 % 10);
	out[3] = (char)('0' + y % 10);
	out[4] = '-';
	out[5] = (char)('0' + m / 10 % 10);
	out[6] = (char)('0' + m % 10);
	out[7] = '\0';
}
