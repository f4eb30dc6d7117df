/*
 * URIs and JSON pointers, the two addressing schemes of $ref.
 *
 * suri_resolve() is RFC 3986 section 5.2 reference resolution (merge paths,
 * remove dot segments) on bounded buffers; it is enough for the URIs schemas
 * use ("http://host/dir/x.json", "urn:uuid:...", "#/definitions/a",
 * "x.json#foo") and makes no attempt at scheme-based normalization beyond
 * treating an empty fragment ("...#") as none, which compile.c does.
 *
 * sptr_eval() follows a JSON pointer (RFC 6901) given as a URI fragment:
 * percent-decoding first, then "~1" -> "/" and "~0" -> "~" per segment.
 * sptr_push() builds the instance paths of error messages the other way.
 */
#include "schema/schema_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"

#include "core/banned.h"

struct uri_parts {
	const char *scheme, *auth, *path, *query, *frag;
	size_t scheme_len, auth_len, path_len, query_len, frag_len;
	int has_scheme, has_auth, has_query, has_frag;
};

static void uri_split(const char *s, struct uri_parts *u)
{
	const char *p = s;

	memset(u, 0, sizeof(*u));
	/* scheme: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":" */
	if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')) {
		const char *q = p + 1;

		while ((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') ||
		       (*q >= '0' && *q <= '9') || *q == '+' || *q == '-' || *q == '.')
			q++;
		if (*q == ':') {
			u->has_scheme = 1;
			u->scheme = p;
			u->scheme_len = (size_t)(q - p);
			p = q + 1;
		}
	}
	if (p[0] == '/' && p[1] == '/') {
		u->has_auth = 1;
		u->auth = p + 2;
		u->auth_len = strcspn(u->auth, "/?#");
		p = u->auth + u->auth_len;
	}
	u->path = p;
	u->path_len = strcspn(p, "?#");
	p += u->path_len;
	if (*p == '?') {
		u->has_query = 1;
		u->query = p + 1;
		u->query_len = strcspn(u->query, "#");
		p = u->query + u->query_len;
	}
	if (*p == '#') {
		u->has_frag = 1;
		u->frag = p + 1;
		u->frag_len = strlen(u->frag);
	}
}

/* RFC 3986 5.2.4 on in[0..n) into out (at most outsz, NUL-terminated). */
static int remove_dots(const char *in, size_t n, char *out, size_t outsz)
{
	size_t o = 0, i = 0;

	while (i < n) {
		if (n - i >= 3 && !memcmp(in + i, "../", 3)) {
			i += 3;
		} else if (n - i >= 2 && !memcmp(in + i, "./", 2)) {
			i += 2;
		} else if (n - i >= 3 && !memcmp(in + i, "/./", 3)) {
			i += 2;
		} else if (n - i == 2 && !memcmp(in + i, "/.", 2)) {
			i += 1;
			if (o + 1 >= outsz)
				return E(TOO_LARGE);
			out[o++] = '/';
			i += 1;
		} else if ((n - i >= 4 && !memcmp(in + i, "/../", 4)) ||
			   (n - i == 3 && !memcmp(in + i, "/..", 3))) {
			int last = n - i == 3;

			i += 3;
			while (o > 0 && out[o - 1] != '/')
				o--;
			if (o > 0)
				o--;
			if (last) {
				if (o + 1 >= outsz)
					return E(TOO_LARGE);
				out[o++] = '/';
			}
		} else if ((n - i == 1 && in[i] == '.') || (n - i == 2 && !memcmp(in + i, "..", 2))) {
			i = n;
		} else {
			size_t seg = 1;

			while (i + seg < n && in[i + seg] != '/')
				seg++;
			if (o + seg >= outsz)
				return E(TOO_LARGE);
			memcpy(out + o, in + i, seg);
			o += seg;
			i += seg;
		}
	}
	out[o] = '\0';
	return 0;
}

static int emit(char *out, size_t outsz, size_t *o, const char *s, size_t n)
{
	if (*o + n >= outsz)
		return E(TOO_LARGE);
	memcpy(out + *o, s, n);
	*o += n;
	out[*o] = '\0';
	return 0;
}

int suri_resolve(const char *base, const char *ref, char *out, size_t outsz)
{
	struct uri_parts b, r;
	char merged[SCHEMA_MAX_URI], path[SCHEMA_MAX_URI];
	const char *q, *f;
	size_t o = 0, ql, fl;
	int rc = 0, hq, hf;

	uri_split(base ? base : "", &b);
	uri_split(ref, &r);
	if (outsz)
		out[0] = '\0';
	q = r.query, ql = r.query_len, hq = r.has_query;
	f = r.frag, fl = r.frag_len, hf = r.has_frag;
	if (r.has_scheme) {
		rc = emit(out, outsz, &o, r.scheme, r.scheme_len);
		rc = rc ? rc : emit(out, outsz, &o, ":", 1);
		if (!rc && r.has_auth) {
			rc = emit(out, outsz, &o, "//", 2);
			rc = rc ? rc : emit(out, outsz, &o, r.auth, r.auth_len);
		}
		rc = rc ? rc : remove_dots(r.path, r.path_len, path, sizeof(path));
		rc = rc ? rc : emit(out, outsz, &o, path, strlen(path));
	} else {
		if (b.has_scheme) {
			rc = emit(out, outsz, &o, b.scheme, b.scheme_len);
			rc = rc ? rc : emit(out, outsz, &o, ":", 1);
		}
		if (!rc && r.has_auth) {
			rc = emit(out, outsz, &o, "//", 2);
			rc = rc ? rc : emit(out, outsz, &o, r.auth, r.auth_len);
			rc = rc ? rc : remove_dots(r.path, r.path_len, path, sizeof(path));
			rc = rc ? rc : emit(out, outsz, &o, path, strlen(path));
		} else if (!rc) {
			if (b.has_auth) {
				rc = emit(out, outsz, &o, "//", 2);
				rc = rc ? rc : emit(out, outsz, &o, b.auth, b.auth_len);
			}
			if (rc) {
				/* fall through to the error below */
			} else if (r.path_len == 0) {
				rc = emit(out, outsz, &o, b.path, b.path_len);
				if (!hq) {
					q = b.query, ql = b.query_len, hq = b.has_query;
				}
			} else if (r.path[0] == '/') {
				rc = remove_dots(r.path, r.path_len, path, sizeof(path));
				rc = rc ? rc : emit(out, outsz, &o, path, strlen(path));
			} else {
				size_t keep = 0;
				int n;

				if (b.has_auth && b.path_len == 0) {
					n = snprintf(merged, sizeof(merged), "/%.*s", (int)r.path_len,
						     r.path);
				} else {
					for (size_t i = 0; i < b.path_len; i++)
						if (b.path[i] == '/')
							keep = i + 1;
					n = snprintf(merged, sizeof(merged), "%.*s%.*s", (int)keep, b.path,
						     (int)r.path_len, r.path);
				}
				if (n < 0 || (size_t)n >= sizeof(merged))
					rc = E(TOO_LARGE);
				rc = rc ? rc : remove_dots(merged, (size_t)n, path, sizeof(path));
				rc = rc ? rc : emit(out, outsz, &o, path, strlen(path));
			}
		}
	}
	if (!rc && hq) {
		rc = emit(out, outsz, &o, "?", 1);
		rc = rc ? rc : emit(out, outsz, &o, q, ql);
	}
	if (!rc && hf) {
		rc = emit(out, outsz, &o, "#", 1);
		rc = rc ? rc : emit(out, outsz, &o, f, fl);
	}
	return rc;
}

/* Percent-decode src into dst (bounded); -1 when it does not fit. */
static int pct_decode(const char *src, char *dst, size_t dstsz)
{
	size_t o = 0;

	for (const char *p = src; *p; p++) {
		char c = *p;

		if (c == '%' && p[1] && p[2]) {
			int hi = -1, lo = -1;
			char h = p[1], l = p[2];

			hi = (h >= '0' && h <= '9') ? h - '0' : (h >= 'a' && h <= 'f') ? h - 'a' + 10 :
			     (h >= 'A' && h <= 'F') ? h - 'A' + 10 : -1;
			lo = (l >= '0' && l <= '9') ? l - '0' : (l >= 'a' && l <= 'f') ? l - 'a' + 10 :
			     (l >= 'A' && l <= 'F') ? l - 'A' + 10 : -1;
			if (hi >= 0 && lo >= 0) {
				c = (char)(hi * 16 + lo);
				p += 2;
			}
		}
		if (o + 1 >= dstsz)
			return -1;
		dst[o++] = c;
	}
	dst[o] = '\0';
	return 0;
}

json_t *sptr_eval(json_t *root, const char *fragment)
{
	char dec[SCHEMA_MAX_URI], seg[SCHEMA_MAX_URI];
	const char *p;
	json_t *cur = root;

	if (pct_decode(fragment, dec, sizeof(dec)))
		return NULL;
	if (dec[0] == '\0')
		return root;
	if (dec[0] != '/')
		return NULL;
	p = dec;
	while (*p == '/' && cur) {
		size_t n = 0;

		p++;
		while (*p && *p != '/') {
			if (p[0] == '~' && p[1] == '1') {
				seg[n++] = '/';
				p += 2;
			} else if (p[0] == '~' && p[1] == '0') {
				seg[n++] = '~';
				p += 2;
			} else {
				seg[n++] = *p++;
			}
		}
		seg[n] = '\0';
		if (json_is_object(cur)) {
			cur = json_object_get(cur, seg);
		} else if (json_is_array(cur)) {
			char *endp;
			unsigned long idx;

			if (n == 0 || (seg[0] == '0' && n > 1) || seg[0] < '0' || seg[0] > '9')
				return NULL;
			idx = strtoul(seg, &endp, 10);
			if (*endp)
				return NULL;
			cur = json_array_get(cur, idx);
		} else {
			return NULL;
		}
	}
	return cur;
}

size_t sptr_push(char *path, size_t pathsz, const char *seg)
{
	size_t old = strlen(path), o = old;

	if (o + 1 < pathsz)
		path[o++] = '/';
	for (const char *p = seg; *p && o + 1 < pathsz; p++) {
		if (*p == '~' || *p == '/') {
			if (o + 2 >= pathsz)
				break;
			path[o++] = '~';
			path[o++] = *p == '~' ? '0' : '1';
		} else {
			path[o++] = *p;
		}
	}
	if (o < pathsz)
		path[o] = '\0';
	return old;
}

size_t sptr_push_index(char *path, size_t pathsz, size_t i)
{
	char num[24];

	snprintf(num, sizeof(num), "%zu", i);
	return sptr_push(path, pathsz, num);
}
