/*
 * ECMA-262 regular expressions (what JSON Schema's "pattern" speaks) on
 * PCRE2 (what Debian ships).
 *
 * The two dialects agree on most syntax; this file rewrites the places where
 * they differ before handing the pattern to PCRE2, rather than trusting that
 * nobody writes them:
 *
 *   ECMA-262                      PCRE2 rewrite
 *   \s \S (Unicode white space)   explicit class of the ECMA code points
 *   .   (not \n \r U+2028 U+2029) [^\n\r\x{2028}\x{2029}]
 *   \uXXXX, \u{X..}, pairs        \x{X..} (a surrogate pair is combined)
 *   \v  (U+000B only)             \x{0B}  (PCRE2's \v is a class)
 *   \0                            \x{0}
 *   [^] (anything), [] (nothing)  (?s:.) and (?!)
 *   $   (end of input only)       PCRE2_DOLLAR_ENDONLY
 *   \d \w \b (ASCII)              unchanged: PCRE2 without UCP is ASCII too
 *
 * Patterns are compiled with PCRE2_UTF (subjects are JSON strings, valid
 * UTF-8) and are not anchored. Other escapes of letters that ECMA does not
 * define are taken literally for "pattern" (as browsers do outside /u) but
 * rejected by the strict check behind format "regex".
 *
 * Run time is bounded: every match runs under a match context with
 * SCHEMA_REGEX_MATCH_LIMIT and SCHEMA_REGEX_DEPTH_LIMIT, JIT or not, so
 * (a+)+$ against "aaaa...!" returns "limit hit" in microseconds instead of
 * backtracking for hours; the validator reports that as a failure.
 */
#include "schema/schema_int.h"

#include <stdio.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"

#include "core/banned.h"

#define WS_LIST                                                                              \
	"\\t\\n\\x{0B}\\f\\r\\x{20}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}"       \
	"\\x{202F}\\x{205F}\\x{3000}\\x{FEFF}"

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Reads exactly n hex digits at p (bounded by end); -1 when not there. */
static long hexn(const char *p, const char *end, int n)
{
	long v = 0;

	if (end - p < n)
		return -1;
	for (int i = 0; i < n; i++) {
		int h = hexval(p[i]);

		if (h < 0)
			return -1;
		v = v * 16 + h;
	}
	return v;
}

/* \u escapes at p (just after "\u"): sets *cp and returns the bytes used. */
static int read_u(const char *p, const char *end, long *cp)
{
	long hi, lo;

	if (p < end && *p == '{') {
		const char *q = p + 1;
		long v = 0;

		while (q < end && hexval(*q) >= 0 && v <= 0x10FFFF)
			v = v * 16 + hexval(*q++);
		if (q == p + 1 || q >= end || *q != '}' || v > 0x10FFFF)
			return -1;
		*cp = v;
		return (int)(q + 1 - p);
	}
	hi = hexn(p, end, 4);
	if (hi < 0)
		return -1;
	if (hi >= 0xD800 && hi <= 0xDBFF && end - p >= 10 && p[4] == '\\' && p[5] == 'u') {
		lo = hexn(p + 6, end, 4);
		if (lo >= 0xDC00 && lo <= 0xDFFF) {
			*cp = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
			return 10;
		}
	}
	if (hi >= 0xD800 && hi <= 0xDFFF)
		return -1; /* a lone surrogate cannot occur in UTF-8 text */
	*cp = hi;
	return 4;
}

/* ECMA-262 -> PCRE2 into out. strict: refuse identity escapes of letters
 * and digits (what /u mode refuses). 0 or E(VALIDATION) with err. */
static int translate(const char *p, size_t len, int strict, struct buf *out, char *err,
		     size_t errsz)
{
	const char *end = p + len;
	int in_class = 0, rc = 0;

	while (p < end && !rc) {
		char c = *p;

		if (c == '\\') {
			char n;
			long cp;
			int used;

			if (p + 1 >= end) {
				snprintf(err, errsz, "pattern ends with a backslash");
				return E(VALIDATION);
			}
			n = p[1];
			p += 2;
			switch (n) {
			case 's':
				rc = buf_adds(out, in_class ? WS_LIST : "[" WS_LIST "]");
				break;
			case 'S':
				rc = buf_adds(out, in_class ? "\\S" : "[^" WS_LIST "]");
				break;
			case 'v':
				rc = buf_adds(out, "\\x{0B}");
				break;
			case 'u':
				used = read_u(p, end, &cp);
				if (used < 0) {
					if (strict) {
						snprintf(err, errsz, "bad \\u escape");
						return E(VALIDATION);
					}
					rc = buf_adds(out, "u");
					break;
				}
				p += used;
				rc = buf_addf(out, "\\x{%lX}", cp);
				break;
			case 'x':
				cp = hexn(p, end, 2);
				if (cp < 0) {
					if (strict) {
						snprintf(err, errsz, "bad \\x escape");
						return E(VALIDATION);
					}
					rc = buf_adds(out, "x");
					break;
				}
				p += 2;
				rc = buf_addf(out, "\\x{%lX}", cp);
				break;
			case '0':
				if (p < end && *p >= '0' && *p <= '9' && strict) {
					snprintf(err, errsz, "octal escapes are not ECMA-262");
					return E(VALIDATION);
				}
				rc = buf_adds(out, "\\x{0}");
				break;
			case 'c':
				if (p < end && ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z'))) {
					rc = buf_addf(out, "\\x{%X}", (unsigned)(*p & 31));
					p++;
				} else if (strict) {
					snprintf(err, errsz, "bad \\c escape");
					return E(VALIDATION);
				} else {
					rc = buf_adds(out, "\\\\c");
				}
				break;
			case 'd': case 'D': case 'w': case 'W': case 'b': case 'B':
			case 'f': case 'n': case 'r': case 't':
			case '1': case '2': case '3': case '4': case '5': case '6': case '7':
			case '8': case '9':
				rc = buf_add(out, p - 2, 2);
				break;
			case 'k': case 'p': case 'P':
				rc = buf_add(out, p - 2, 2);
				break;
			default:
				if ((unsigned char)n >= 0x80 ||
				    (strict && ((n >= 'a' && n <= 'z') || (n >= 'A' && n <= 'Z') ||
						(n >= '0' && n <= '9') || n == '_'))) {
					if (strict) {
						snprintf(err, errsz, "\\%c is not an ECMA-262 escape", n);
						return E(VALIDATION);
					}
				}
				if ((n >= 'a' && n <= 'z') || (n >= 'A' && n <= 'Z') || n == '_' ||
				    (unsigned char)n >= 0x80)
					rc = buf_add(out, &n, 1); /* identity escape: literal */
				else
					rc = buf_add(out, p - 2, 2); /* escaped punctuation */
				break;
			}
			continue;
		}
		if (in_class) {
			if (c == ']')
				in_class = 0;
			if (c == '[')
				rc = buf_adds(out, "\\["); /* literal in ECMA; POSIX class in PCRE2 */
			else
				rc = buf_add(out, p, 1);
			p++;
			continue;
		}
		if (c == '[') {
			if (end - p >= 3 && p[1] == '^' && p[2] == ']') {
				rc = buf_adds(out, "(?s:.)");
				p += 3;
				continue;
			}
			if (end - p >= 2 && p[1] == ']') {
				rc = buf_adds(out, "(?!)");
				p += 2;
				continue;
			}
			in_class = 1;
			rc = buf_adds(out, "[");
			p++;
			if (p < end && *p == '^') {
				rc = rc ? rc : buf_adds(out, "^");
				p++;
			}
			continue;
		}
		if (c == '.') {
			rc = buf_adds(out, "[^\\n\\r\\x{2028}\\x{2029}]");
			p++;
			continue;
		}
		rc = buf_add(out, p, 1);
		p++;
	}
	if (rc) {
		snprintf(err, errsz, "pattern too long");
		return E(TOO_LARGE);
	}
	return 0;
}

static int compile_strict(struct sregex *re, const char *pattern, size_t len, int strict,
			  char *err, size_t errsz)
{
	struct buf out;
	int rc = 0, ecode;
	PCRE2_SIZE eoff;

	memset(re, 0, sizeof(*re));
	if (len > SCHEMA_MAX_PATTERN) {
		snprintf(err, errsz, "pattern longer than %d bytes", SCHEMA_MAX_PATTERN);
		return E(TOO_LARGE);
	}
	buf_init(&out, 16 * SCHEMA_MAX_PATTERN + 64);
	rc = translate(pattern, len, strict, &out, err, errsz);
	if (rc)
		goto out;
	re->code = pcre2_compile((PCRE2_SPTR)(out.data ? out.data : ""), out.len,
				 PCRE2_UTF | PCRE2_DOLLAR_ENDONLY, &ecode, &eoff, NULL);
	if (!re->code) {
		PCRE2_UCHAR msg[120];

		pcre2_get_error_message(ecode, msg, sizeof(msg));
		snprintf(err, errsz, "invalid regular expression: %s", (const char *)msg);
		rc = E(VALIDATION);
		goto out;
	}
	re->jit = pcre2_jit_compile(re->code, PCRE2_JIT_COMPLETE) == 0;
out:
	buf_release(&out);
	return rc;
}

int sregex_compile(struct sregex *re, const char *pattern, size_t len, char *err, size_t errsz)
{
	return compile_strict(re, pattern, len, 0, err, errsz);
}

void sregex_release(struct sregex *re)
{
	if (!re)
		return;
	pcre2_code_free(re->code);
	re->code = NULL;
}

/* Only ASCII bytes: then s is valid UTF-8 whatever produced it. */
static int all_ascii(const char *s, size_t len)
{
	uint64_t acc = 0, w;
	size_t i = 0;

	for (; i + 8 <= len; i += 8) {
		memcpy(&w, s + i, 8);
		acc |= w;
	}
	for (; i < len; i++)
		acc |= (unsigned char)s[i];
	return (acc & 0x8080808080808080ull) == 0;
}

/*
 * The JIT entry point skips pcre2_match's argument and UTF-8 checks, so it
 * is used only for an ASCII subject (the usual ids, codes, keys); anything
 * else goes through pcre2_match and its UTF check. Both honour the match
 * limit of mctx.
 */
int sregex_match(const struct sregex *re, const char *s, size_t len, pcre2_match_data *md,
		 pcre2_match_context *mctx)
{
	int rc = re->jit && all_ascii(s, len) ?
			 pcre2_jit_match(re->code, (PCRE2_SPTR)s, len, 0, 0, md, mctx) :
			 pcre2_match(re->code, (PCRE2_SPTR)s, len, 0, 0, md, mctx);

	if (rc >= 0)
		return 1;
	if (rc == PCRE2_ERROR_NOMATCH)
		return 0;
	return -1;
}

int sregex_valid(const char *pattern, size_t len)
{
	struct sregex re;
	char err[160];
	int rc = compile_strict(&re, pattern, len, 1, err, sizeof(err));

	sregex_release(&re);
	return rc == 0;
}
