/*
 * discovery/: the ranking formula, the request reader, the built-in
 * embedder (meaning beyond shared words; exact zero for unrelated texts),
 * the provider's response parser, and the index against the store (every
 * filter, visibility, updates seen through the change feed).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "discovery/discovery.h"
#include "discovery/embed.h"
#include "discovery/index.h"
#include "discovery/provider.h"
#include "discovery/rank.h"
#include "discovery/request.h"
#include "store_harness.h"
#include "test.h"

#define NEAR(a, b) ASSERT(fabs((double)(a) - (double)(b)) < 1e-9)

static struct lexicon *lex(void)
{
	static struct lexicon *lx;

	if (!lx && lexicon_load(&lx))
		return NULL;
	return lx;
}

/* ---- rank ---------------------------------------------------------------- */

TEST(discovery_rank_formula_with_text)
{
	struct rank_in in = {.has_text = 1, .lexical_raw = 2, .lexical_best = 4,
			     .semantic_raw = 0.3, .semantic_best = 0.3, .price_micros = 250000,
			     .budget_cap_micros = 500000, .p99_ms = 1000, .max_latency_ms = 4000,
			     .trust_score = 0.5, .probationary = 1};
	struct rank_out o;

	rank_score(&in, &o);
	NEAR(o.lexical, 0.5);
	NEAR(o.semantic, 1.0);
	NEAR(o.relevance, 0.75);
	NEAR(o.budget_fit, 0.5);
	NEAR(o.latency_fit, 0.75);
	NEAR(o.trust, 0.4);
	NEAR(o.score, 0.7 * 0.75 + 0.1 * 0.5 + 0.1 * 0.75 + 0.1 * 0.4);
}

TEST(discovery_rank_without_caps_or_text)
{
	struct rank_in in = {.has_text = 0, .price_micros = 100000, .budget_cap_micros = -1,
			     .p99_ms = 2000, .max_latency_ms = -1, .trust_score = 0.9};
	struct rank_out o;

	rank_score(&in, &o);
	NEAR(o.budget_fit, 0.5); /* 1 / (1 + 0.10 / 0.10) */
	NEAR(o.latency_fit, 0.5);
	NEAR(o.trust, 0.9);
	NEAR(o.score, (0.5 + 0.5 + 0.9) / 3);
	in.budget_cap_micros = 0;
	in.price_micros = 0;
	rank_score(&in, &o);
	NEAR(o.budget_fit, 1.0);
}

TEST(discovery_rank_each_signal_orders)
{
	struct rank_in a = {.has_text = 1, .lexical_raw = 1, .lexical_best = 1, .semantic_raw = 1,
			    .semantic_best = 1, .price_micros = 100, .budget_cap_micros = -1,
			    .p99_ms = 100, .max_latency_ms = -1, .trust_score = 0.8};
	struct rank_in b = a;
	struct rank_out oa, ob;

	b.price_micros = 200;
	rank_score(&a, &oa);
	rank_score(&b, &ob);
	ASSERT(oa.score > ob.score);
	b = a;
	b.p99_ms = 200;
	rank_score(&b, &ob);
	ASSERT(oa.score > ob.score);
	b = a;
	b.probationary = 1;
	rank_score(&b, &ob);
	ASSERT(oa.score > ob.score);
	b = a;
	b.semantic_raw = 0.5;
	rank_score(&b, &ob);
	ASSERT(oa.score > ob.score);
}

/* ---- request --------------------------------------------------------------- */

static int parse(const char *text, struct discover_req *q, struct jerr *e)
{
	json_t *body = json_loads(text, 0, NULL);
	int rc;

	memset(e, 0, sizeof(*e));
	if (!body)
		return -1;
	rc = discover_req_from_json(body, q, e);
	json_decref(body);
	return rc;
}

TEST(discovery_request_defaults_and_terms)
{
	struct discover_req q;
	struct jerr e;

	ASSERT_EQ(parse("{}", &q, &e), 0);
	ASSERT_EQ(q.limit, 5);
	ASSERT_EQ(q.budget_cap_micros, -1);
	ASSERT_EQ(q.max_latency_ms, -1);
	ASSERT_EQ(q.nterms, 0);
	ASSERT_EQ(parse("{\"query\":null,\"capability_type\":null,\"budget_cap_usd\":null}", &q, &e),
		  0);
	ASSERT_EQ(parse("{\"query\":\"The \\\"Research\\\" of research-OR AND firms!\","
			"\"budget_cap_usd\":0.5,\"limit\":100,\"exclude_agents\":[\"a\",\"b\"]}",
			&q, &e), 0);
	/* words only, lowercase, no stopwords, no repeats: nothing FTS syntax */
	ASSERT_EQ(q.nterms, 2); /* "or" and "and" are stopwords, not operators */
	ASSERT_STR_EQ(q.term_buf[0], "research");
	ASSERT_STR_EQ(q.term_buf[1], "firms");
	ASSERT_EQ(q.budget_cap_micros, 500000);
	ASSERT_EQ(q.limit, 100);
	ASSERT_EQ(q.nexclude, 2);
}

TEST(discovery_request_errors_name_the_field)
{
	static const struct {
		const char *body, *field;
	} cases[] = {
		{"{\"limit\":0}", "limit"},
		{"{\"limit\":101}", "limit"},
		{"{\"budget_cap_usd\":-0.1}", "budget_cap_usd"},
		{"{\"max_latency_ms\":0}", "max_latency_ms"},
		{"{\"capability_type\":\"x\"}", "capability_type"},
		{"{\"exclude_agents\":{}}", "exclude_agents"},
		{"{\"exclude_agents\":[\"ok\",\"no space\"]}", "exclude_agents[1]"},
		{"{\"include_cross_org\":1}", "include_cross_org"},
		{"{\"query\":[]}", "query"},
		{"{\"other\":1}", "other"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct discover_req q;
		struct jerr e;

		ASSERT_EQ(parse(cases[i].body, &q, &e), E(VALIDATION));
		ASSERT_STR_EQ(e.field, cases[i].field);
	}
}

/* ---- embedder -------------------------------------------------------------- */

static float cos_of(const char *a, const char *b)
{
	struct svec x, y;

	if (embed_text(lex(), a, strlen(a), &x) || embed_text(lex(), b, strlen(b), &y))
		return -1;
	return svec_dot(&x, &y);
}

TEST(discovery_embed_meaning_beyond_words)
{
	float para = cos_of("look into firms", "researches companies");
	float other = cos_of("look into firms", "translates poems into French");

	ASSERT(lex() != NULL);
	ASSERT(para > 0.05f);
	ASSERT(para > 2 * other);
	ASSERT(cos_of("summarize reports", "summarize reports") > 0.999f);
	ASSERT(cos_of("invoice", "zebra") < 0.01f);
}

TEST(discovery_embed_vector_shape)
{
	struct svec v;
	float norm = 0;

	ASSERT_EQ(embed_text(lex(), "", 0, &v), 0);
	ASSERT_EQ(v.n, 0);
	ASSERT_EQ(embed_text(lex(), "the of and", 10, &v), 0);
	ASSERT_EQ(v.n, 0);
	ASSERT_EQ(embed_text(lex(), "Validates billing statements for mistakes", 41, &v), 0);
	ASSERT(v.n > 0 && v.n <= SVEC_MAX);
	for (int i = 0; i < v.n; i++) {
		norm += v.w[i] * v.w[i];
		if (i)
			ASSERT(v.id[i - 1] < v.id[i]);
	}
	ASSERT(fabsf(norm - 1) < 1e-4f);
}

/* ---- provider responses ------------------------------------------------------ */

TEST(discovery_provider_parse)
{
	static const char *const bad[] = {
		"", "nope", "{}", "{\"data\":[]}", "{\"data\":[{}]}",
		"{\"data\":[{\"embedding\":[]}]}", "{\"data\":[{\"embedding\":[1,\"x\"]}]}",
		"{\"data\":{\"embedding\":[1]}}",
	};
	const char *ok = "{\"object\":\"list\",\"data\":[{\"index\":0,\"embedding\":[0.5,-1,2e-3]}]}";
	char why[PROVIDER_WHY_MAX];
	float *v;
	int dim;

	ASSERT_EQ(provider_parse(ok, strlen(ok), &v, &dim, why), 0);
	ASSERT_EQ(dim, 3);
	ASSERT(v[0] == 0.5f && v[1] == -1.0f);
	free(v);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ASSERT_EQ(provider_parse(bad[i], strlen(bad[i]), &v, &dim, why), E(VALIDATION));
		ASSERT(v == NULL && why[0]);
	}
}

/* ---- the index against a store ------------------------------------------------ */

static void org(struct store *s, const char *id)
{
	struct org o = {0};
	struct api_key l = {0}, t = {0};

	snprintf(o.org_id, sizeof(o.org_id), "%s", id);
	snprintf(o.name, sizeof(o.name), "%s", id);
	snprintf(o.plan, sizeof(o.plan), "growth");
	snprintf(l.key_id, sizeof(l.key_id), "key_l_%s", id);
	snprintf(t.key_id, sizeof(t.key_id), "key_t_%s", id);
	snprintf(l.lookup, sizeof(l.lookup), "l%.11s", id);
	snprintf(t.lookup, sizeof(t.lookup), "t%.11s", id);
	snprintf(l.org_id, sizeof(l.org_id), "%s", id);
	snprintf(t.org_id, sizeof(t.org_id), "%s", id);
	t.kind = KEY_TEST;
	ASSERT_EQ(s->ops->org_create(s, &o, &l, &t), 0);
}

static void agent(struct store *s, const char *org_id, const char *id, const char *desc,
		  const char *type, int64_t price, int64_t p99, int pub, int update)
{
	struct agent a = {0};
	unsigned char sec[1] = {0};
	char emb[EMBEDDING_ID_LEN];

	snprintf(a.org_id, sizeof(a.org_id), "%s", org_id);
	snprintf(a.agent_id, sizeof(a.agent_id), "%s", id);
	a.name = (char *)"Agent";
	a.description = (char *)desc;
	snprintf(a.capability_type, sizeof(a.capability_type), "%s", type);
	a.webhook_url = (char *)"https://example.com/h";
	a.secret_sealed = sec;
	a.secret_sealed_len = 1;
	a.per_call_micros = price;
	a.p99_latency_ms = p99;
	a.availability = 0.9;
	a.input_schema = a.output_schema = (char *)"{}";
	a.is_public = pub;
	snprintf(a.status, sizeof(a.status), "active");
	a.trust_score = 0.7;
	embedding_id_new(emb);
	a.embedding_id = emb;
	ASSERT_EQ(update ? s->ops->agent_update(s, &a) : s->ops->agent_insert(s, &a), 0);
}

static void run_query(struct dindex *ix, struct store *s, struct dx_query *q, const char *text,
		      struct dx_result *res, int *n)
{
	struct svec v;

	*n = -1;
	ASSERT_EQ(dindex_sync(ix, s), 0);
	ASSERT_EQ(embed_text(lex(), text, strlen(text), &v), 0);
	q->q = &v;
	q->has_text = v.n > 0;
	if (q->limit == 0)
		q->limit = 100;
	ASSERT_EQ(dindex_query(ix, q, res, n), 0);
}

static int has(const struct dx_result *res, int n, const char *id)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(res[i].agent_id, id))
			return 1;
	return 0;
}

static void index_case(struct store *s)
{
	static struct dx_result res[DX_RESULTS_MAX];
	struct dindex *ix;
	const char *excl[] = {"a2"};
	int n;

	org(s, "org_a");
	org(s, "org_b");
	agent(s, "org_a", "a1", "Researches companies", "research", 100000, 1000, 0, 0);
	agent(s, "org_a", "a2", "Researches companies", "research", 900000, 9000, 0, 0);
	agent(s, "org_a", "a3", "Translates poems", "generation", 100000, 1000, 0, 0);
	agent(s, "org_b", "b1", "Researches companies", "research", 100000, 1000, 1, 0);
	agent(s, "org_b", "b2", "Researches companies", "research", 100000, 1000, 0, 0);
	ASSERT_EQ(dindex_new(lex(), NULL, &ix), 0);
	{
		struct dx_query q = {.org_id = "org_a", .cap = -1, .budget_cap_micros = -1,
				     .max_latency_ms = -1};

		run_query(ix, s, &q, "look into firms", res, &n);
		ASSERT_EQ(n, 2); /* the poem translator is not a match at all */
		ASSERT_STR_EQ(res[0].agent_id, "a1"); /* cheaper, faster */
		q.cross_org = 1;
		run_query(ix, s, &q, "look into firms", res, &n);
		ASSERT_EQ(n, 3);
		ASSERT(has(res, n, "b1") && !has(res, n, "b2"));
		q.cross_org = 0;
		q.budget_cap_micros = 500000;
		run_query(ix, s, &q, "", res, &n);
		ASSERT(has(res, n, "a1") && !has(res, n, "a2") && has(res, n, "a3"));
		q.budget_cap_micros = -1;
		q.max_latency_ms = 5000;
		run_query(ix, s, &q, "", res, &n);
		ASSERT(!has(res, n, "a2"));
		q.max_latency_ms = -1;
		q.cap = dindex_cap("generation");
		run_query(ix, s, &q, "", res, &n);
		ASSERT_EQ(n, 1);
		ASSERT_STR_EQ(res[0].agent_id, "a3");
		q.cap = -1;
		q.exclude = excl;
		q.nexclude = 1;
		run_query(ix, s, &q, "", res, &n);
		ASSERT(!has(res, n, "a2") && has(res, n, "a1"));
		q.nexclude = 0;
		/* writes after the first sync: pause, and a new text */
		ASSERT_EQ(s->ops->agent_set_paused(s, "org_a", "a1", 1, 5), 0);
		agent(s, "org_a", "a3", "Investigates businesses", "generation", 100000, 1000, 0, 1);
		run_query(ix, s, &q, "look into firms", res, &n);
		ASSERT(!has(res, n, "a1") && has(res, n, "a2") && has(res, n, "a3"));
		run_query(ix, s, &q, "poems", res, &n);
		ASSERT(!has(res, n, "a3"));
	}
	dindex_free(ix);
}

TEST(store_discovery_index_sqlite)
{
	store_on_sqlite(index_case);
}

TEST(store_discovery_index_postgres)
{
	store_on_postgres("discovery", 0, index_case);
}
