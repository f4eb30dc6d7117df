/*
 * core/jsonw: values escaped so that jansson reads back exactly what was
 * written, commas placed by the writer, numbers that round-trip.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/err.h"
#include "core/jsonw.h"
#include "test.h"

/* Render one string value and return the buffer text (caller frees). */
static char *render_str(const char *s)
{
	struct buf b;
	struct jsonw jw;

	buf_init(&b, 4096);
	jw_init(&jw, &b);
	jw_str(&jw, s);
	if (jw.rc) {
		buf_release(&b);
		return NULL;
	}
	return buf_detach(&b, NULL);
}

static char *render_num(double v)
{
	struct buf b;
	struct jsonw jw;

	buf_init(&b, 64);
	jw_init(&jw, &b);
	jw_num(&jw, v);
	return buf_detach(&b, NULL);
}

TEST(jsonw_escapes)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{"plain", "\"plain\""},
		{"", "\"\""},
		{"a\"b", "\"a\\\"b\""},
		{"back\\slash", "\"back\\\\slash\""},
		{"nl\ncr\rtab\t", "\"nl\\ncr\\rtab\\t\""},
		{"\x01", "\"\\u0001\""},
		{"\x1f\x08\x0c", "\"\\u001f\\u0008\\u000c\""},
		{"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\""},
		{"</script>\x7f", "\"</script>\x7f\""},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *s = render_str(cases[i].in);

		if (!s || strcmp(s, cases[i].out)) {
			FAIL_AT("jw_str(%s) = %s, want %s", cases[i].in, s ? s : "(null)",
				cases[i].out);
		}
		free(s);
	}
	{
		char *s = render_str(NULL);

		ASSERT_STR_EQ(s, "null");
		free(s);
	}
}

TEST(jsonw_every_control_char_reads_back)
{
	char in[64], *out;
	size_t n = 0;
	json_t *v;
	json_error_t je;

	for (int c = 1; c < 0x20; c++)
		in[n++] = (char)c;
	memcpy(in + n, "\"\\/x", 5);
	out = render_str(in);
	ASSERT(out);
	v = json_loads(out, JSON_DECODE_ANY, &je);
	free(out);
	ASSERT(v);
	ASSERT(json_is_string(v));
	ASSERT_STR_EQ(json_string_value(v), in);
	json_decref(v);
}

TEST(jsonw_nested_objects_commas)
{
	struct buf b;
	struct jsonw jw;
	char *s;

	buf_init(&b, 4096);
	jw_init(&jw, &b);
	jw_obj_open(&jw);
	jw_kstr(&jw, "a", "x");
	jw_key(&jw, "o");
	jw_obj_open(&jw);
	jw_kint(&jw, "i", -5);
	jw_key(&jw, "inner");
	jw_obj_open(&jw);
	jw_obj_close(&jw);
	jw_kbool(&jw, "t", 1);
	jw_obj_close(&jw);
	jw_kbool(&jw, "f", 0);
	jw_kraw(&jw, "r", "[1,2]");
	jw_kraw(&jw, "n", NULL);
	jw_ktime(&jw, "z", 0);
	jw_ktime(&jw, "ts", 1773435600); /* 2026-03-13T21:00:00Z */
	jw_key(&jw, "big");
	jw_int(&jw, INT64_MIN);
	jw_obj_close(&jw);
	ASSERT_EQ(jw.rc, 0);
	s = buf_detach(&b, NULL);
	ASSERT_STR_EQ(s, "{\"a\":\"x\",\"o\":{\"i\":-5,\"inner\":{},\"t\":true},\"f\":false,"
			 "\"r\":[1,2],\"n\":null,\"z\":null,\"ts\":\"2026-03-13T21:00:00Z\","
			 "\"big\":-9223372036854775808}");
	free(s);
}

TEST(jsonw_num_round_trip)
{
	static const struct {
		double v;
		const char *text;
	} cases[] = {
		{0.1, "0.1"}, {0.99, "0.99"}, {0.5, "0.5"}, {1, "1"}, {0, "0"}, {-2.25, "-2.25"},
		{0.999, "0.999"}, {1e-7, "1e-07"}, {0.30000000000000004, "0.30000000000000004"},
	};
	uint64_t x = 88172645463325252ull;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *s = render_num(cases[i].v);

		if (strcmp(s, cases[i].text)) {
			FAIL_AT("jw_num(%.17g) = %s, want %s", cases[i].v, s, cases[i].text);
		}
		free(s);
	}
	{
		char *s = render_num(NAN);

		ASSERT_STR_EQ(s, "null");
		free(s);
		s = render_num(INFINITY);
		ASSERT_STR_EQ(s, "null");
		free(s);
	}
	/* random doubles: the text reads back as the same double and as JSON */
	for (int i = 0; i < 20000; i++) {
		double v;
		char *s;
		json_t *j;
		json_error_t je;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(&v, &x, sizeof(v));
		if (!isfinite(v))
			continue;
		s = render_num(v);
		if (strtod(s, NULL) != v) {
			FAIL_AT("jw_num(%a) = %s does not read back", v, s);
		}
		j = json_loads(s, JSON_DECODE_ANY, &je);
		if (!j || json_number_value(j) != v) {
			json_decref(j);
			FAIL_AT("jw_num(%a) = %s is not JSON for the same number", v, s);
		}
		json_decref(j);
		free(s);
	}
}

/* Regression: the shortest round-trip text, also where 16 digits are
 * needed (1/3), not a jump from 15 to 17. */
TEST(jsonw_num_shortest_at_16_digits)
{
	char *s = render_num(1.0 / 3.0), got[40];

	snprintf(got, sizeof(got), "%s", s);
	free(s);
	ASSERT(strtod("0.3333333333333333", NULL) == 1.0 / 3.0);
	ASSERT_STR_EQ(got, "0.3333333333333333");
}

TEST(jsonw_money)
{
	static const struct {
		int64_t m;
		const char *text;
	} cases[] = {{150000, "0.15"}, {12000000, "12"}, {1, "0.000001"}, {0, "0"},
		     {-1500000, "-1.5"}};
	struct buf b;
	struct jsonw jw;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		buf_init(&b, 64);
		jw_init(&jw, &b);
		jw_money(&jw, cases[i].m);
		ASSERT_EQ(jw.rc, 0);
		if (strcmp(b.data, cases[i].text)) {
			buf_release(&b);
			FAIL_AT("jw_money(%lld) = %s", (long long)cases[i].m, b.data);
		}
		buf_release(&b);
	}
}

TEST(jsonw_errors_are_sticky)
{
	struct buf b;
	struct jsonw jw;

	buf_init(&b, 8);
	jw_init(&jw, &b);
	jw_obj_open(&jw);
	jw_kstr(&jw, "long-key", "value");
	ASSERT_EQ(jw.rc, E(TOO_LARGE));
	jw_raw(&jw, "}");
	ASSERT_EQ(jw.rc, E(TOO_LARGE));
	ASSERT(b.len <= 8);
	ASSERT_EQ(b.data[b.len], '\0');
	buf_release(&b);
}
