/* Clock readings and RFC 3339 formatting; see timefmt.h. */
#include "core/timefmt.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

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
