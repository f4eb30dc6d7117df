/* JSON value writer; see jsonw.h. */
#include "core/jsonw.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/money.h"
#include "core/timefmt.h"
#include "core/banned.h"

void jw_init(struct jsonw *jw, struct buf *b)
{
	jw->b = b;
	jw->rc = 0;
	jw->first = 1;
}

static void put(struct jsonw *jw, const char *s, size_t n)
{
	if (!jw->rc)
		jw->rc = buf_add(jw->b, s, n);
}

void jw_raw(struct jsonw *jw, const char *s)
{
	put(jw, s, strlen(s));
}

void jw_obj_open(struct jsonw *jw)
{
	put(jw, "{", 1);
	jw->first = 1;
}

void jw_obj_close(struct jsonw *jw)
{
	put(jw, "}", 1);
	jw->first = 0;
}

/* Length of the valid UTF-8 sequence at p (1..4), or 0 if invalid. */
static size_t utf8_len(const unsigned char *p)
{
	size_t n;
	unsigned cp;

	if (p[0] < 0x80)
		return 1;
	if ((p[0] & 0xe0) == 0xc0) {
		n = 2;
		cp = p[0] & 0x1f;
	} else if ((p[0] & 0xf0) == 0xe0) {
		n = 3;
		cp = p[0] & 0x0f;
	} else if ((p[0] & 0xf8) == 0xf0) {
		n = 4;
		cp = p[0] & 0x07;
	} else {
		return 0;
	}
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0; /* overlong, out of range or a surrogate */
	return n;
}

void jw_str(struct jsonw *jw, const char *s)
{
	static const char hx[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;
	const unsigned char *run;
	size_t n;

	if (!s) {
		put(jw, "null", 4);
		return;
	}
	put(jw, "\"", 1);
	while (*p) {
		run = p;
		while (*p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\')
			p++;
		if (p > run)
			put(jw, (const char *)run, (size_t)(p - run));
		if (!*p)
			break;
		if (*p >= 0x80) {
			n = utf8_len(p);
			if (n)
				put(jw, (const char *)p, n);
			else
				put(jw, "\\ufffd", 6); /* never emit invalid UTF-8 */
			p += n ? n : 1;
			continue;
		}
		switch (*p) {
		case '"': put(jw, "\\\"", 2); break;
		case '\\': put(jw, "\\\\", 2); break;
		case '\n': put(jw, "\\n", 2); break;
		case '\r': put(jw, "\\r", 2); break;
		case '\t': put(jw, "\\t", 2); break;
		default: {
			char e[6] = {'\\', 'u', '0', '0', hx[*p >> 4], hx[*p & 15]};
			put(jw, e, 6);
		}
		}
		p++;
	}
	put(jw, "\"", 1);
}

void jw_key(struct jsonw *jw, const char *key)
{
	if (!jw->first)
		put(jw, ",", 1);
	jw->first = 0;
	jw_str(jw, key);
	put(jw, ":", 1);
}

void jw_int(struct jsonw *jw, int64_t v)
{
	char s[24], *p = s + sizeof(s);
	uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;

	do {
		*--p = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0)
		*--p = '-';
	put(jw, p, (size_t)(s + sizeof(s) - p));
}

void jw_bool(struct jsonw *jw, int v)
{
	if (v)
		put(jw, "true", 4);
	else
		put(jw, "false", 5);
}

void jw_num(struct jsonw *jw, double v)
{
	char s[40];
	int n = 0;

	if (!isfinite(v)) {
		put(jw, "null", 4);
		return;
	}
	if (fabs(v) < 1e9) { /* scores, ratios, prices: exact in micro units? */
		double m = nearbyint(v * 1e6);

		if (m / 1e6 == v) {
			jw_money(jw, (int64_t)m);
			return;
		}
	}
	for (int p = 15; p <= 17; p++) { /* 15 is exact for what people write */
		n = snprintf(s, sizeof(s), "%.*g", p, v);
		if (strtod(s, NULL) == v)
			break;
	}
	put(jw, s, (size_t)n);
}

void jw_money(struct jsonw *jw, int64_t micros)
{
	char s[40];

	money_format(micros, s, sizeof(s));
	put(jw, s, strlen(s));
}

void jw_time(struct jsonw *jw, int64_t unix_s)
{
	char t[RFC3339_LEN];

	if (!unix_s) {
		put(jw, "null", 4);
		return;
	}
	time_rfc3339(unix_s, t);
	jw_str(jw, t);
}

void jw_kstr(struct jsonw *jw, const char *key, const char *s)
{
	jw_key(jw, key);
	jw_str(jw, s);
}

void jw_kint(struct jsonw *jw, const char *key, int64_t v)
{
	jw_key(jw, key);
	jw_int(jw, v);
}

void jw_kbool(struct jsonw *jw, const char *key, int v)
{
	jw_key(jw, key);
	jw_bool(jw, v);
}

void jw_kraw(struct jsonw *jw, const char *key, const char *json)
{
	jw_key(jw, key);
	jw_raw(jw, json ? json : "null");
}

void jw_ktime(struct jsonw *jw, const char *key, int64_t unix_s)
{
	jw_key(jw, key);
	jw_time(jw, unix_s);
}
