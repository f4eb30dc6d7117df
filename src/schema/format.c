/*
 * "format" checks. Draft 7 makes format an annotation: by default Nexra only
 * records it (the required suite expects that). Compiled with
 * SCHEMA_FORMAT_ASSERT, the formats below become assertions; each check is a
 * small hand-written parser of the grammar the draft points to (RFC 3339
 * dates, RFC 5321 mailboxes simplified, RFC 1123 host names, RFC 3986 URIs,
 * RFC 6570 templates, RFC 6901 pointers), strict enough for the optional
 * suite and never allocating. Formats we do not know are valid, as the
 * specification requires.
 */
#include "schema/schema_int.h"

#include <arpa/inet.h>
#include <string.h>

#include "core/banned.h"

static const struct {
	const char *name;
	enum sformat f;
} formats[] = {
	{"date-time", SFMT_DATE_TIME},
	{"date", SFMT_DATE},
	{"time", SFMT_TIME},
	{"email", SFMT_EMAIL},
	{"idn-email", SFMT_IDN_EMAIL},
	{"hostname", SFMT_HOSTNAME},
	{"idn-hostname", SFMT_IDN_HOSTNAME},
	{"ipv4", SFMT_IPV4},
	{"ipv6", SFMT_IPV6},
	{"uri", SFMT_URI},
	{"uri-reference", SFMT_URI_REFERENCE},
	{"iri", SFMT_IRI},
	{"iri-reference", SFMT_IRI_REFERENCE},
	{"uri-template", SFMT_URI_TEMPLATE},
	{"json-pointer", SFMT_JSON_POINTER},
	{"relative-json-pointer", SFMT_REL_JSON_POINTER},
	{"regex", SFMT_REGEX},
};

enum sformat sformat_lookup(const char *name)
{
	for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++)
		if (!strcmp(formats[i].name, name))
			return formats[i].f;
	return SFMT_NONE;
}

static int digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return 0;
	return 1;
}

static int num(const char *s, size_t n)
{
	int v = 0;

	for (size_t i = 0; i < n; i++)
		v = v * 10 + (s[i] - '0');
	return v;
}

static int check_date(const char *s, size_t len)
{
	static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int y, m, d, leap, max;

	if (len != 10 || s[4] != '-' || s[7] != '-' || !digits(s, 4) || !digits(s + 5, 2) ||
	    !digits(s + 8, 2))
		return 0;
	y = num(s, 4), m = num(s + 5, 2), d = num(s + 8, 2);
	if (m < 1 || m > 12 || d < 1)
		return 0;
	leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	max = mdays[m - 1] + (m == 2 && leap);
	return d <= max;
}

static int check_time(const char *s, size_t len)
{
	size_t i = 8;

	if (len < 9 || s[2] != ':' || s[5] != ':' || !digits(s, 2) || !digits(s + 3, 2) ||
	    !digits(s + 6, 2))
		return 0;
	if (num(s, 2) > 23 || num(s + 3, 2) > 59 || num(s + 6, 2) > 60)
		return 0;
	if (s[i] == '.') {
		size_t start = ++i;

		while (i < len && s[i] >= '0' && s[i] <= '9')
			i++;
		if (i == start)
			return 0;
	}
	if (i < len && (s[i] == 'Z' || s[i] == 'z'))
		return i + 1 == len;
	if (i < len && (s[i] == '+' || s[i] == '-')) {
		const char *o = s + i + 1;

		if (len - i != 6 || o[2] != ':' || !digits(o, 2) || !digits(o + 3, 2))
			return 0;
		return num(o, 2) <= 23 && num(o + 3, 2) <= 59;
	}
	return 0;
}

static int check_date_time(const char *s, size_t len)
{
	if (len < 20 || (s[10] != 'T' && s[10] != 't'))
		return 0;
	return check_date(s, 10) && check_time(s + 11, len - 11);
}

static int check_hostname(const char *s, size_t len, int idn)
{
	size_t label = 0;

	if (len == 0 || len > 253)
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch == '.') {
			if (label == 0 || s[i - 1] == '-')
				return 0;
			label = 0;
			continue;
		}
		if (ch == '-' && label == 0)
			return 0;
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		      ch == '-' || (idn && ch >= 0x80)))
			return 0;
		if (++label > 63)
			return 0;
	}
	return label > 0 && s[len - 1] != '-';
}

static int check_email(const char *s, size_t len, int idn)
{
	const char *at = memchr(s, '@', len);
	size_t local;

	if (!at)
		return 0;
	local = (size_t)(at - s);
	if (local == 0 || local > 64 || s[0] == '.' || s[local - 1] == '.')
		return 0;
	for (size_t i = 0; i < local; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch == '.' && s[i + 1] == '.')
			return 0;
		if (ch <= ' ' || strchr("()<>[]:;@\\,\"", ch) || (ch >= 0x80 && !idn))
			return 0;
	}
	return check_hostname(at + 1, len - local - 1, idn);
}

static int check_ipv4(const char *s, size_t len)
{
	int parts = 0;
	size_t i = 0;

	while (i <= len) {
		size_t start = i;

		while (i < len && s[i] >= '0' && s[i] <= '9')
			i++;
		if (i == start || i - start > 3 || (s[start] == '0' && i - start > 1) ||
		    num(s + start, i - start) > 255)
			return 0;
		parts++;
		if (i == len)
			break;
		if (s[i] != '.' || parts == 4)
			return 0;
		i++;
	}
	return parts == 4;
}

static int check_ipv6(const char *s, size_t len)
{
	char tmp[64];
	unsigned char out[16];

	if (len == 0 || len >= sizeof(tmp))
		return 0;
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	return inet_pton(AF_INET6, tmp, out) == 1;
}

static int uri_char(unsigned char ch, int iri)
{
	if (ch >= 0x80)
		return iri;
	if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'))
		return 1;
	return strchr("-._~:/?#[]@!$&'()*+,;=%", ch) != NULL && ch != '\0';
}

static int check_uri(const char *s, size_t len, int need_scheme, int iri)
{
	size_t i = 0;

	if (need_scheme) {
		if (len == 0 || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
			return 0;
		while (i < len && s[i] != ':') {
			char ch = s[i];

			if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			      (ch >= '0' && ch <= '9') || ch == '+' || ch == '-' || ch == '.'))
				return 0;
			i++;
		}
		if (i == len)
			return 0;
	}
	for (; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (!uri_char(ch, iri))
			return 0;
		if (ch == '%') {
			if (i + 2 >= len || !s[i + 1] || !s[i + 2] ||
			    !strchr("0123456789abcdefABCDEF", s[i + 1]) ||
			    !strchr("0123456789abcdefABCDEF", s[i + 2]))
				return 0;
		}
	}
	/* An authority holds at most one ':' (before the port) outside an
	 * "[IPv6]" literal; a fragment may not hold a second '#'. */
	if (need_scheme && i > 0) {
		const char *a = memchr(s, ':', len);

		if (a && (size_t)(a - s) + 3 <= len && a[1] == '/' && a[2] == '/') {
			int colons = 0, bracket = 0;

			for (const char *q = a + 3; q < s + len && !strchr("/?#", *q); q++) {
				if (*q == '@') /* userinfo may hold colons */
					colons = 0;
				else if (*q == '[')
					bracket = 1;
				else if (*q == ']')
					bracket = 0;
				else if (*q == ':' && !bracket)
					colons++;
			}
			if (colons > 1)
				return 0;
		}
	}
	{
		const char *hash = memchr(s, '#', len);

		if (hash && memchr(hash + 1, '#', len - (size_t)(hash + 1 - s)))
			return 0;
	}
	return 1;
}

static int check_uri_template(const char *s, size_t len)
{
	int open = 0;

	for (size_t i = 0; i < len; i++) {
		if (s[i] == '{') {
			if (open)
				return 0;
			open = 1;
		} else if (s[i] == '}') {
			if (!open)
				return 0;
			open = 0;
		}
	}
	return !open;
}

static int check_json_pointer(const char *s, size_t len)
{
	if (len == 0)
		return 1;
	if (s[0] != '/')
		return 0;
	for (size_t i = 0; i < len; i++)
		if (s[i] == '~' && (i + 1 >= len || (s[i + 1] != '0' && s[i + 1] != '1')))
			return 0;
	return 1;
}

static int check_rel_json_pointer(const char *s, size_t len)
{
	size_t i = 0;

	while (i < len && s[i] >= '0' && s[i] <= '9')
		i++;
	if (i == 0 || (s[0] == '0' && i > 1))
		return 0;
	if (i == len)
		return 1;
	if (s[i] == '#')
		return i + 1 == len;
	return check_json_pointer(s + i, len - i);
}

int sformat_check(enum sformat f, const char *s, size_t len)
{
	switch (f) {
	case SFMT_DATE_TIME:
		return check_date_time(s, len);
	case SFMT_DATE:
		return check_date(s, len);
	case SFMT_TIME:
		return check_time(s, len);
	case SFMT_EMAIL:
		return check_email(s, len, 0);
	case SFMT_IDN_EMAIL:
		return check_email(s, len, 1);
	case SFMT_HOSTNAME:
		return check_hostname(s, len, 0);
	case SFMT_IDN_HOSTNAME:
		return check_hostname(s, len, 1);
	case SFMT_IPV4:
		return check_ipv4(s, len);
	case SFMT_IPV6:
		return check_ipv6(s, len);
	case SFMT_URI:
		return check_uri(s, len, 1, 0);
	case SFMT_URI_REFERENCE:
		return check_uri(s, len, 0, 0);
	case SFMT_IRI:
		return check_uri(s, len, 1, 1);
	case SFMT_IRI_REFERENCE:
		return check_uri(s, len, 0, 1);
	case SFMT_URI_TEMPLATE:
		return check_uri_template(s, len);
	case SFMT_JSON_POINTER:
		return check_json_pointer(s, len);
	case SFMT_REL_JSON_POINTER:
		return check_rel_json_pointer(s, len);
	case SFMT_REGEX:
		return sregex_valid(s, len);
	default:
		return 1;
	}
}
