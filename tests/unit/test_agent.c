/*
 * registry/agent: the register/update body rules of docs/api.md, one table
 * row per way to get a body wrong, and the agent's JSON rendering.
 */
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"
#include "registry/agent.h"
#include "test.h"

#define SECRET "0123456789abcdef0123456789abcdef01234567" /* 40 chars */

/* The seed's example body, with a secret long enough for our rules. */
static const char seed_body[] =
	"{\"agent_id\":\"research-agent-v2\",\"name\":\"Research Agent\","
	"\"description\":\"Researches competitors and market positioning\","
	"\"capability_type\":\"research\",\"input_schema\":{\"type\":\"object\"},"
	"\"output_schema\":{\"type\":\"object\"},\"pricing\":{\"per_call_usd\":0.15},"
	"\"sla\":{\"p99_latency_ms\":3000,\"availability\":0.99},"
	"\"webhook_url\":\"https://your-agent.com/execute\","
	"\"webhook_secret\":\"" SECRET "\",\"is_public\":false}";

static json_t *seed(void)
{
	json_error_t je;

	return json_loads(seed_body, JSON_REJECT_DUPLICATES, &je);
}

/* Set (value != NULL, JSON text) or delete (value == NULL) the member at a
 * dotted path of root. */
static int set_path(json_t *root, const char *path, const char *value)
{
	char head[64];
	const char *dot = strchr(path, '.');
	json_t *v;
	json_error_t je;

	if (dot) {
		snprintf(head, sizeof(head), "%.*s", (int)(dot - path), path);
		v = json_object_get(root, head);
		return v ? set_path(v, dot + 1, value) : -1;
	}
	if (!value)
		return json_object_del(root, path);
	v = json_loads(value, JSON_DECODE_ANY, &je);
	return v ? json_object_set_new(root, path, v) : -1;
}

TEST(agent_from_json_accepts_seed_body)
{
	json_t *b = seed();
	struct agent a;
	struct jerr e = {0};
	const char *secret = NULL;

	ASSERT(b);
	ASSERT_EQ(agent_from_json(b, NULL, 0, &a, &secret, &e), 0);
	ASSERT_STR_EQ(e.message, "");
	ASSERT_STR_EQ(a.agent_id, "research-agent-v2");
	ASSERT_STR_EQ(a.name, "Research Agent");
	ASSERT_STR_EQ(a.description, "Researches competitors and market positioning");
	ASSERT_STR_EQ(a.capability_type, "research");
	ASSERT_STR_EQ(a.webhook_url, "https://your-agent.com/execute");
	ASSERT_STR_EQ(secret, SECRET);
	ASSERT_EQ(a.per_call_micros, 150000);
	ASSERT_EQ(a.p99_latency_ms, 3000);
	ASSERT(a.availability == 0.99);
	ASSERT_STR_EQ(a.input_schema, "{\"type\":\"object\"}");
	ASSERT_STR_EQ(a.output_schema, "{\"type\":\"object\"}");
	ASSERT_EQ(a.is_public, 0);
	/* left for the caller: ownership, status, trust, times, sealing */
	ASSERT_STR_EQ(a.org_id, "");
	ASSERT_STR_EQ(a.status, "");
	ASSERT(a.secret_sealed == NULL);
	ASSERT(a.embedding_id == NULL);
	agent_release(&a);

	/* is_public true, and absent (optional, default false) */
	set_path(b, "is_public", "true");
	memset(&e, 0, sizeof(e));
	ASSERT_EQ(agent_from_json(b, NULL, 0, &a, &secret, &e), 0);
	ASSERT_EQ(a.is_public, 1);
	agent_release(&a);
	set_path(b, "is_public", NULL);
	ASSERT_EQ(agent_from_json(b, NULL, 0, &a, &secret, &e), 0);
	ASSERT_EQ(a.is_public, 0);
	agent_release(&a);
	json_decref(b);
}

TEST(agent_from_json_edge_values_accepted)
{
	static const struct {
		const char *path, *value;
	} ok[] = {
		{"pricing.per_call_usd", "0"},
		{"pricing.per_call_usd", "1000000"},
		{"pricing.per_call_usd", "0.000001"},
		{"pricing.per_call_usd", "19.99"},
		{"sla.p99_latency_ms", "1"},
		{"sla.p99_latency_ms", "86400000"},
		{"sla.availability", "0"},
		{"sla.availability", "1"},
		{"webhook_secret", "\"" SECRET SECRET "\""},
		{"agent_id", "\"a\""},
		{"agent_id", "\"A.b_c:d-9\""},
		{"input_schema", "{}"},
		{"webhook_url", "\"https://[2606:4700::1]:8443/x?y=1\""},
		{"webhook_url", "\"https://8.8.8.8/\""},
		{"name", "\"caf\\u00e9 \\ud83d\\ude00\""},
	};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		json_t *b = seed();
		struct agent a;
		struct jerr e = {0};
		const char *secret = NULL;
		int rc;

		ASSERT_EQ(set_path(b, ok[i].path, ok[i].value), 0);
		rc = agent_from_json(b, NULL, 0, &a, &secret, &e);
		json_decref(b);
		if (rc)
			FAIL_AT("%s = %s refused: %s", ok[i].path, ok[i].value, e.message);
		agent_release(&a);
	}
}

struct bad {
	const char *path;  /* member to change */
	const char *value; /* JSON text; NULL deletes the member */
	int dev;
	const char *path_id; /* update path id, NULL for a register */
	const char *field;   /* expected e.field; NULL: must be accepted */
	const char *msg;     /* expected in e.message (optional) */
};

static const struct bad bad[] = {
	{"capability_type", "\"bad\"", 0, NULL, "capability_type", "must be one of research"},
	{"capability_type", "\"Research\"", 0, NULL, "capability_type", NULL},
	{"capability_type", "1", 0, NULL, "capability_type", "expected a string"},
	{"webhook_url", "\"http://example.com/x\"", 0, NULL, "webhook_url", "https://"},
	{"webhook_url", "\"http://example.com/x\"", 1, NULL, NULL, NULL},
	{"webhook_url", "\"http://127.0.0.1:9000/x\"", 1, NULL, NULL, NULL},
	{"webhook_url", "\"http://localhost:9000/x\"", 1, NULL, NULL, NULL},
	{"webhook_url", "\"https://127.0.0.1/x\"", 0, NULL, "webhook_url", "public host"},
	{"webhook_url", "\"https://10.0.0.1/x\"", 0, NULL, "webhook_url", "public host"},
	{"webhook_url", "\"https://192.168.1.1/\"", 0, NULL, "webhook_url", "public host"},
	{"webhook_url", "\"https://169.254.169.254/latest\"", 0, NULL, "webhook_url", "public host"},
	{"webhook_url", "\"https://[::1]/\"", 0, NULL, "webhook_url", "public host"},
	{"webhook_url", "\"https://localhost/\"", 0, NULL, "webhook_url", "public host"},
	{"webhook_url", "\"https://agent.localhost/\"", 0, NULL, "webhook_url", "public host"},
	{"webhook_url", "\"https://127.1/\"", 0, NULL, "webhook_url", "public host"},
	{"webhook_url", "\"https://user:pw@x.com/\"", 0, NULL, "webhook_url", "user information"},
	{"webhook_url", "\"https://user@x.com/\"", 1, NULL, "webhook_url", "user information"},
	{"webhook_url", "\"ftp://x.com/\"", 0, NULL, "webhook_url", "https://"},
	{"webhook_url", "\"ftp://x.com/\"", 1, NULL, "webhook_url", "http://"},
	{"webhook_url", "\"not a url\"", 0, NULL, "webhook_url", "valid absolute URL"},
	{"webhook_url", "\"\"", 0, NULL, "webhook_url", "must not be empty"},
	{"webhook_url", "\"https://localhost./\"", 0, NULL, "webhook_url", "public host"},
	{"webhook_url", "\"https://x.com:0/\"", 1, NULL, "webhook_url", "port 0"},
	{"webhook_url", "\"https://x.com:/\"", 1, NULL, "webhook_url", "valid absolute URL"},
	{"webhook_url", "\"https://x.com:8443/hook\"", 0, NULL, NULL, NULL},
	{"webhook_url", "\"https:///x\"", 0, NULL, "webhook_url", "valid absolute URL"},
	{"webhook_url", "\"https://?x\"", 1, NULL, "webhook_url", "valid absolute URL"},
	{"webhook_url", "\"https://x.com/a b\"", 0, NULL, "webhook_url", "valid absolute URL"},
	{"webhook_url", "\"https://x.com/\\u0001\"", 0, NULL, "webhook_url", "valid absolute URL"},
	{"webhook_url", "\"https://x.com/\\u007f\"", 0, NULL, "webhook_url", "valid absolute URL"},
	{"webhook_url", "\"/relative/path\"", 1, NULL, "webhook_url", NULL},
	{"webhook_url", NULL, 0, NULL, "webhook_url", "is required"},
	{"webhook_secret", "\"123456789012345678901234567\"", 0, NULL, "webhook_secret", "32"},
	{"webhook_secret", "\"1234567890123456789012345678901\"", 0, NULL, "webhook_secret", "32"},
	{"webhook_secret", "123", 0, NULL, "webhook_secret",
	 "expected a string"},
	{"pricing.per_call_usd", "-1", 0, NULL, "pricing.per_call_usd", "USD amount"},
	{"pricing.per_call_usd", "-0.5", 0, NULL, "pricing.per_call_usd", "USD amount"},
	{"pricing.per_call_usd", "0.1234567", 0, NULL, "pricing.per_call_usd", "6 decimals"},
	{"pricing.per_call_usd", "1000000.000001", 0, NULL, "pricing.per_call_usd", "1000000"},
	{"pricing.per_call_usd", "1000001", 0, NULL, "pricing.per_call_usd", NULL},
	{"pricing.per_call_usd", "\"0.1\"", 0, NULL, "pricing.per_call_usd", "got string"},
	{"pricing.per_call_usd", "true", 0, NULL, "pricing.per_call_usd", "got boolean"},
	{"pricing.per_call_usd", "null", 0, NULL, "pricing.per_call_usd", "got null"},
	{"pricing.per_call_usd", NULL, 0, NULL, "pricing.per_call_usd", "is required"},
	{"pricing.foo", "1", 0, NULL, "pricing.foo", "unknown field"},
	{"pricing", "[]", 0, NULL, "pricing", "expected an object"},
	{"pricing", "0.15", 0, NULL, "pricing", "expected an object"},
	{"sla.p99_latency_ms", "0", 0, NULL, "sla.p99_latency_ms", "between 1 and 86400000"},
	{"sla.p99_latency_ms", "86400001", 0, NULL, "sla.p99_latency_ms", NULL},
	{"sla.p99_latency_ms", "-5", 0, NULL, "sla.p99_latency_ms", NULL},
	{"sla.p99_latency_ms", "1.5", 0, NULL, "sla.p99_latency_ms", "fractional"},
	{"sla.p99_latency_ms", "\"x\"", 0, NULL, "sla.p99_latency_ms", "got string"},
	{"sla.p99_latency_ms", NULL, 0, NULL, "sla.p99_latency_ms", "is required"},
	{"sla.availability", "1.5", 0, NULL, "sla.availability", "between 0 and 1"},
	{"sla.availability", "-0.1", 0, NULL, "sla.availability", "between 0 and 1"},
	{"sla.availability", "\"0.9\"", 0, NULL, "sla.availability", "expected a number"},
	{"sla.availability", NULL, 0, NULL, "sla.availability", "is required"},
	{"sla.extra", "1", 0, NULL, "sla.extra", "unknown field"},
	{"sla", "null", 0, NULL, "sla", "expected an object"},
	{"input_schema", "[]", 0, NULL, "input_schema", "expected an object, got array"},
	{"input_schema", "\"x\"", 0, NULL, "input_schema", "expected an object, got string"},
	{"output_schema", "[]", 0, NULL, "output_schema", "expected an object"},
	{"output_schema", "null", 0, NULL, "output_schema", "expected an object"},
	{"is_public", "1", 0, NULL, "is_public", "expected a boolean"},
	{"is_public", "\"true\"", 0, NULL, "is_public", "expected a boolean"},
	{"name", "\"\"", 0, NULL, "name", "must not be empty"},
	{"name", "42", 0, NULL, "name", "expected a string"},
	{"description", "\"\"", 0, NULL, "description", "must not be empty"},
	{"foo", "1", 0, NULL, "foo", "unknown field"},
	{"agent_id", "\"research agent\"", 0, NULL, "agent_id", "letters, digits"},
	{"agent_id", "\"-agent\"", 0, NULL, "agent_id", "starting with a letter or digit"},
	{"agent_id", "\"\"", 0, NULL, "agent_id", NULL},
	{"agent_id", "\"a/b\"", 0, NULL, "agent_id", NULL},
	{"agent_id", "7", 0, NULL, "agent_id", "expected a string"},
	{"agent_id", NULL, 0, NULL, "agent_id", "is required"},
	/* updates: the body's id may be omitted, must match when present */
	{"agent_id", "\"other-agent\"", 0, "research-agent-v2", "agent_id", "must match"},
	{"agent_id", NULL, 0, "research-agent-v2", NULL, NULL},
	{"agent_id", "\"research-agent-v2\"", 0, "research-agent-v2", NULL, NULL},
	{"agent_id", NULL, 0, "bad id", "agent_id", NULL},
	/* each required member missing */
	{"name", NULL, 0, NULL, "name", "is required"},
	{"description", NULL, 0, NULL, "description", "is required"},
	{"capability_type", NULL, 0, NULL, "capability_type", "is required"},
	{"webhook_secret", NULL, 0, NULL, "webhook_secret", "is required"},
	{"pricing", NULL, 0, NULL, "pricing", "is required"},
	{"sla", NULL, 0, NULL, "sla", "is required"},
	{"input_schema", NULL, 0, NULL, "input_schema", "is required"},
	{"output_schema", NULL, 0, NULL, "output_schema", "is required"},
};

TEST(agent_from_json_bad_bodies)
{
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const struct bad *t = &bad[i];
		json_t *b = seed();
		struct agent a;
		struct jerr e = {0};
		const char *secret = NULL;
		int rc;

		if (set_path(b, t->path, t->value)) {
			json_decref(b);
			FAIL_AT("row %zu: cannot set %s", i, t->path);
		}
		rc = agent_from_json(b, t->path_id, t->dev, &a, &secret, &e);
		json_decref(b);
		if (!t->field) {
			if (rc)
				FAIL_AT("row %zu: %s = %s (dev %d) refused: %s", i, t->path,
					t->value ? t->value : "(absent)", t->dev, e.message);
			agent_release(&a);
			continue;
		}
		if (rc != E(VALIDATION) || strcmp(e.field, t->field) ||
		    (t->msg && !strstr(e.message, t->msg)))
			FAIL_AT("row %zu: %s = %s (dev %d): rc %d field \"%s\" message \"%s\", "
				"want field \"%s\" with \"%s\"",
				i, t->path, t->value ? t->value : "(absent)", t->dev, rc, e.field,
				e.message, t->field, t->msg ? t->msg : "");
		/* the message starts with the field it names */
		ASSERT(!strncmp(e.message, t->field, strlen(t->field)));
		/* on failure nothing is left allocated in a */
		ASSERT(!a.name && !a.description && !a.webhook_url && !a.input_schema &&
		       !a.output_schema);
	}
}

TEST(agent_from_json_long_values)
{
	static const struct {
		const char *path;
		size_t len;
		int ok;
	} cases[] = {
		{"agent_id", 128, 1}, {"agent_id", 129, 0}, {"name", 200, 1},
		{"name", 201, 0},     {"description", 4000, 1}, {"description", 4001, 0},
		{"webhook_secret", 256, 1}, {"webhook_secret", 257, 0},
	};
	/* lengths are characters: 200 two-byte characters are a valid name */
	static const struct {
		const char *path, *ch;
		size_t count;
		int ok;
	} wide[] = {
		{"name", "\xc3\xa9", 200, 1},          {"name", "\xc3\xa9", 201, 0},
		{"name", "\xf0\x9f\x98\x80", 200, 1},  {"description", "\xe2\x82\xac", 4000, 1},
		{"description", "\xe2\x82\xac", 4001, 0}, {"webhook_secret", "\xc3\xa9", 32, 1},
		{"webhook_secret", "\xc3\xa9", 31, 0},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *v = malloc(cases[i].len + 3);
		json_t *b = seed();
		struct agent a;
		struct jerr e = {0};
		const char *secret;
		int rc;

		v[0] = '"';
		memset(v + 1, 'a', cases[i].len);
		memcpy(v + 1 + cases[i].len, "\"", 2);
		set_path(b, cases[i].path, v);
		free(v);
		rc = agent_from_json(b, NULL, 0, &a, &secret, &e);
		json_decref(b);
		if (cases[i].ok) {
			if (rc)
				FAIL_AT("%s of %zu refused: %s", cases[i].path, cases[i].len,
					e.message);
			agent_release(&a);
		} else if (rc != E(VALIDATION) || strcmp(e.field, cases[i].path)) {
			FAIL_AT("%s of %zu: rc %d field %s", cases[i].path, cases[i].len, rc,
				e.field);
		}
	}
	for (size_t i = 0; i < sizeof(wide) / sizeof(wide[0]); i++) {
		size_t w = strlen(wide[i].ch);
		char *v = malloc(wide[i].count * w + 1);
		json_t *b = seed();
		struct agent a;
		struct jerr e = {0};
		const char *secret;
		int rc;

		for (size_t j = 0; j < wide[i].count; j++)
			memcpy(v + j * w, wide[i].ch, w);
		v[wide[i].count * w] = '\0';
		json_object_set_new(b, wide[i].path, json_string(v));
		free(v);
		rc = agent_from_json(b, NULL, 0, &a, &secret, &e);
		json_decref(b);
		if (wide[i].ok) {
			if (rc)
				FAIL_AT("%s of %zu %zu-byte characters refused: %s", wide[i].path,
					wide[i].count, w, e.message);
			agent_release(&a);
		} else if (rc != E(VALIDATION) || strcmp(e.field, wide[i].path)) {
			FAIL_AT("%s of %zu characters: rc %d field %s", wide[i].path,
				wide[i].count, rc, e.field);
		} else {
			char want[64];

			snprintf(want, sizeof(want), "got %zu", wide[i].count);
			ASSERT_CONTAINS(e.message, want); /* counted in characters */
		}
	}
	/* a URL over 2048 characters */
	{
		char *v = malloc(2100);
		json_t *b = seed();
		struct agent a;
		struct jerr e = {0};
		const char *secret;

		memcpy(v, "\"https://x.com/", 15);
		memset(v + 15, 'p', 2040);
		memcpy(v + 2055, "\"", 2);
		set_path(b, "webhook_url", v);
		free(v);
		ASSERT_EQ(agent_from_json(b, NULL, 0, &a, &secret, &e), E(VALIDATION));
		json_decref(b);
		ASSERT_STR_EQ(e.field, "webhook_url");
		ASSERT_CONTAINS(e.message, "at most 2048");
	}
	/* a schema over 64 KiB serialized */
	{
		json_t *b = seed(), *big = json_object();
		struct agent a;
		struct jerr e = {0};
		const char *secret;
		char key[16];

		for (int i = 0; i < 7000; i++) {
			snprintf(key, sizeof(key), "k%05d", i);
			json_object_set_new(big, key, json_integer(i));
		}
		json_object_set_new(b, "output_schema", big);
		ASSERT_EQ(agent_from_json(b, NULL, 0, &a, &secret, &e), E(VALIDATION));
		json_decref(b);
		ASSERT_STR_EQ(e.field, "output_schema");
		ASSERT_CONTAINS(e.message, "65536");
		ASSERT(a.input_schema == NULL && a.output_schema == NULL);
	}
}

TEST(agent_write_json_parses_and_hides_secret)
{
	json_t *b = seed(), *out, *v;
	struct agent a;
	struct jerr e = {0};
	const char *secret = NULL;
	struct buf buf;
	struct jsonw jw;
	json_error_t je;

	ASSERT_EQ(agent_from_json(b, NULL, 0, &a, &secret, &e), 0);
	/* what the register handler adds */
	memcpy(a.org_id, "org_1", 6);
	memcpy(a.status, "probationary", 13);
	a.trust_score = 0.5;
	a.registered_at = 1773435600;
	a.updated_at = 1773435601;
	a.secret_sealed = (unsigned char *)strdup(SECRET); /* even if it were plaintext */
	a.secret_sealed_len = strlen(SECRET);
	buf_init(&buf, 1 << 20);
	jw_init(&jw, &buf);
	agent_write_json(&jw, &a);
	ASSERT_EQ(jw.rc, 0);
	ASSERT(!strstr(buf.data, SECRET));
	ASSERT(!strstr(buf.data, "webhook_secret"));
	out = json_loads(buf.data, JSON_REJECT_DUPLICATES, &je);
	buf_release(&buf);
	agent_release(&a);
	json_decref(b);
	ASSERT(out);
	ASSERT_STR_EQ(json_string_value(json_object_get(out, "agent_id")), "research-agent-v2");
	ASSERT_STR_EQ(json_string_value(json_object_get(out, "name")), "Research Agent");
	ASSERT_STR_EQ(json_string_value(json_object_get(out, "capability_type")), "research");
	ASSERT_STR_EQ(json_string_value(json_object_get(out, "webhook_url")),
		      "https://your-agent.com/execute");
	ASSERT_STR_EQ(json_string_value(json_object_get(out, "status")), "probationary");
	v = json_object_get(json_object_get(out, "pricing"), "per_call_usd");
	ASSERT(json_is_real(v) && json_real_value(v) == 0.15);
	v = json_object_get(json_object_get(out, "sla"), "p99_latency_ms");
	ASSERT(json_is_integer(v) && json_integer_value(v) == 3000);
	v = json_object_get(json_object_get(out, "sla"), "availability");
	ASSERT(json_number_value(v) == 0.99);
	ASSERT(json_is_object(json_object_get(out, "input_schema")));
	ASSERT(json_is_false(json_object_get(out, "is_public")));
	ASSERT(json_number_value(json_object_get(out, "trust_score")) == 0.5);
	ASSERT(json_is_null(json_object_get(out, "embedding_id")));
	ASSERT_STR_EQ(json_string_value(json_object_get(out, "registered_at")),
		      "2026-03-13T21:00:00Z");
	ASSERT_STR_EQ(json_string_value(json_object_get(out, "updated_at")),
		      "2026-03-13T21:00:01Z");
	ASSERT_EQ(json_object_size(out), 15);
	ASSERT(json_object_get(out, "webhook_secret") == NULL);
	json_decref(out);
}

TEST(agent_write_json_escapes_user_text)
{
	struct agent a;
	struct buf buf;
	struct jsonw jw;
	json_t *out;
	json_error_t je;

	memset(&a, 0, sizeof(a));
	memcpy(a.agent_id, "x", 2);
	a.name = strdup("quote\" back\\ nl\n ctl\x01");
	a.description = strdup("</script>");
	a.webhook_url = strdup("https://x.com/\"");
	a.input_schema = strdup("{\"a\":[1,{\"b\":null}]}");
	a.output_schema = strdup("{}");
	a.embedding_id = strdup("emb_1");
	buf_init(&buf, 1 << 16);
	jw_init(&jw, &buf);
	agent_write_json(&jw, &a);
	out = json_loads(buf.data, 0, &je);
	buf_release(&buf);
	ASSERT(out);
	ASSERT_STR_EQ(json_string_value(json_object_get(out, "name")), a.name);
	ASSERT_STR_EQ(json_string_value(json_object_get(out, "webhook_url")), a.webhook_url);
	ASSERT_STR_EQ(json_string_value(json_object_get(out, "embedding_id")), "emb_1");
	ASSERT(json_is_null(json_object_get(out, "registered_at")));
	ASSERT_EQ(json_array_size(json_object_get(json_object_get(out, "input_schema"), "a")), 2);
	json_decref(out);
	agent_release(&a);
}

/* Regression: a member named "" is refused as unknown and the error still
 * names it (details.field and the message read "<field>: ..."). */
TEST(agent_empty_member_name_is_named)
{
	json_t *b = seed();
	struct agent a;
	struct jerr e = {0};
	const char *secret;
	int rc;

	json_object_set_new(b, "", json_integer(1));
	rc = agent_from_json(b, NULL, 0, &a, &secret, &e);
	json_decref(b);
	ASSERT_EQ(rc, E(VALIDATION));
	ASSERT_CONTAINS(e.message, "unknown field");
	if (!e.field[0] || !strncmp(e.message, "unknown field", 13))
		FAIL_AT("member \"\" refused with field \"%s\" and message \"%s\"", e.field,
			e.message);
}
