/*
 * store/: one conformance suite over the store.h function table, written
 * once against struct store * and run on every backend: SQLite on a fresh
 * temporary file always, PostgreSQL too when NEXRA_TEST_PG_URI is set
 * (`NEXRA_TEST_PG_URI=postgres://... build/unit store`). Every org is made
 * with random ids so reruns against one PostgreSQL database never clash.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/apikey.h"
#include "core/err.h"
#include "core/rand.h"
#include "crypto/seal.h"
#include "store/store.h"
#include "store_harness.h"
#include "test.h"

#define T0 1700000000LL


static const unsigned char seal_key[SEAL_KEY_LEN] = "0123456789abcdef0123456789abcde";

/* One suite function, run as store_sqlite_<name> and store_postgres_<name>. */
#define STORE_CASE(name)                                                                     \
	static void case_##name(struct store *s);                                            \
	TEST(store_sqlite_##name) { store_on_sqlite(case_##name); }                                \
	TEST(store_postgres_##name) { store_on_postgres("store", 0, case_##name); }                            \
	static void case_##name(struct store *s)

/* ---- fixtures ------------------------------------------------------------ */

struct org_fix {
	struct org org;
	struct api_key live, test;
	char live_secret[APIKEY_LEN + 1], test_secret[APIKEY_LEN + 1];
};

/* A fresh org (random ids) with its two keys, not yet stored. */
static int org_fix_make(struct org_fix *f, const char *plan, int64_t created)
{
	memset(f, 0, sizeof(*f));
	if (rand_id(f->org.org_id, "org_", 8))
		return -1;
	snprintf(f->org.name, sizeof(f->org.name), "Acme %s", f->org.org_id);
	snprintf(f->org.plan, sizeof(f->org.plan), "%s", plan);
	f->org.created_at = created;
	if (apikey_new_row(f->org.org_id, KEY_LIVE, "default live", created, &f->live,
			   f->live_secret) ||
	    apikey_new_row(f->org.org_id, KEY_TEST, "default test", created, &f->test,
			   f->test_secret))
		return -1;
	return 0;
}

static int org_fix_create(struct store *s, struct org_fix *f)
{
	if (org_fix_make(f, "growth", T0))
		return E(INTERNAL);
	return s->ops->org_create(s, &f->org, &f->live, &f->test);
}

static int keys_equal(const struct api_key *a, const struct api_key *b)
{
	return !strcmp(a->key_id, b->key_id) && !strcmp(a->org_id, b->org_id) &&
	       !strcmp(a->lookup, b->lookup) && !memcmp(a->hash, b->hash, 32) &&
	       a->kind == b->kind && !strcmp(a->name, b->name) && !strcmp(a->prefix, b->prefix) &&
	       a->created_at == b->created_at && a->revoked_at == b->revoked_at;
}

static int orgs_equal(const struct org *a, const struct org *b)
{
	return !strcmp(a->org_id, b->org_id) && !strcmp(a->name, b->name) &&
	       !strcmp(a->plan, b->plan) && a->created_at == b->created_at;
}

/* An agent owning heap copies of everything (agent_release frees it). */
static int agent_make(struct agent *a, const char *org_id, const char *agent_id,
		      const char *cap, const char *status, int64_t registered)
{
	char ad[200];
	const char *secret = "webhook-secret-0123456789abcdef-0123456789";

	memset(a, 0, sizeof(*a));
	snprintf(a->org_id, sizeof(a->org_id), "%s", org_id);
	snprintf(a->agent_id, sizeof(a->agent_id), "%s", agent_id);
	a->name = strdup("Research Agent");
	a->description = strdup("Researches competitors \xe2\x80\x94 and 'quotes' \"too\"");
	snprintf(a->capability_type, sizeof(a->capability_type), "%s", cap);
	a->webhook_url = strdup("https://your-agent.com/execute");
	snprintf(ad, sizeof(ad), "agent:%s/%s", org_id, agent_id);
	if (seal(seal_key, secret, strlen(secret), ad, &a->secret_sealed, &a->secret_sealed_len))
		return -1;
	a->per_call_micros = 150000;
	a->p99_latency_ms = 3000;
	a->availability = 0.99;
	a->input_schema = strdup("{\"type\":\"object\"}");
	a->output_schema = strdup("{\"properties\":{\"a\":{\"type\":\"string\"}},\"type\":\"object\"}");
	a->is_public = 0;
	snprintf(a->status, sizeof(a->status), "%s", status);
	a->trust_score = 0.5;
	a->registered_at = registered;
	a->updated_at = registered;
	return a->name && a->description && a->webhook_url && a->input_schema && a->output_schema
		       ? 0
		       : -1;
}

static int str_eq(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

/* Which fields differ ("" if none). */
static const char *agent_diff(const struct agent *a, const struct agent *b)
{
	if (strcmp(a->org_id, b->org_id))
		return "org_id";
	if (strcmp(a->agent_id, b->agent_id))
		return "agent_id";
	if (!str_eq(a->name, b->name))
		return "name";
	if (!str_eq(a->description, b->description))
		return "description";
	if (strcmp(a->capability_type, b->capability_type))
		return "capability_type";
	if (!str_eq(a->webhook_url, b->webhook_url))
		return "webhook_url";
	if (a->secret_sealed_len != b->secret_sealed_len ||
	    memcmp(a->secret_sealed, b->secret_sealed, a->secret_sealed_len))
		return "secret_sealed";
	if (a->per_call_micros != b->per_call_micros)
		return "per_call_micros";
	if (a->p99_latency_ms != b->p99_latency_ms)
		return "p99_latency_ms";
	if (a->availability != b->availability)
		return "availability";
	if (!str_eq(a->input_schema, b->input_schema))
		return "input_schema";
	if (!str_eq(a->output_schema, b->output_schema))
		return "output_schema";
	if (a->is_public != b->is_public)
		return "is_public";
	if (strcmp(a->status, b->status))
		return "status";
	if (strcmp(a->prior_status, b->prior_status))
		return "prior_status";
	if (a->trust_score != b->trust_score)
		return "trust_score";
	if (!str_eq(a->embedding_id, b->embedding_id))
		return "embedding_id";
	if (a->registered_at != b->registered_at)
		return "registered_at";
	if (a->updated_at != b->updated_at)
		return "updated_at";
	return "";
}

/* ---- migrations and orgs ---------------------------------------------------- */

STORE_CASE(migrate_twice)
{
	struct org_fix f;
	struct org o;

	ASSERT_EQ(org_fix_create(s, &f), 0);
	ASSERT_EQ(s->ops->migrate(s), 0);
	ASSERT_EQ(s->ops->migrate(s), 0);
	/* data survives a second migrate */
	ASSERT_EQ(s->ops->org_get(s, f.org.org_id, &o), 0);
	ASSERT(orgs_equal(&o, &f.org));
}

STORE_CASE(org_create_get)
{
	struct org_fix f, g;
	struct org o;
	struct key_auth ka;

	ASSERT_EQ(org_fix_create(s, &f), 0);
	memset(&o, 0x5a, sizeof(o));
	ASSERT_EQ(s->ops->org_get(s, f.org.org_id, &o), 0);
	ASSERT(orgs_equal(&o, &f.org));
	ASSERT_EQ(s->ops->org_get(s, "org_doesnotexist00", &o), E(NOT_FOUND));
	/* a name with quotes and UTF-8, and the other plan */
	ASSERT_EQ(org_fix_make(&g, "starter", T0 + 1), 0);
	snprintf(g.org.name, sizeof(g.org.name), "O'Brien \"&\" Caf\xc3\xa9");
	ASSERT_EQ(s->ops->org_create(s, &g.org, &g.live, &g.test), 0);
	ASSERT_EQ(s->ops->org_get(s, g.org.org_id, &o), 0);
	ASSERT(orgs_equal(&o, &g.org));
	/* both keys went in with the org */
	ASSERT_EQ(s->ops->key_by_lookup(s, g.test.lookup, &ka), 0);
	ASSERT(keys_equal(&ka.key, &g.test));

	/* the longest names (limits count characters): 200 and 100 four-byte ones */
	ASSERT_EQ(org_fix_make(&g, "growth", T0 + 2), 0);
	for (int i = 0; i < ORG_NAME_MAX; i++)
		memcpy(g.org.name + 4 * i, "\xf0\x9f\x98\x80", 4);
	g.org.name[4 * ORG_NAME_MAX] = '\0';
	for (int i = 0; i < KEY_NAME_MAX; i++)
		memcpy(g.live.name + 4 * i, "\xe2\x82\xac\x21", 4);
	g.live.name[4 * KEY_NAME_MAX] = '\0';
	ASSERT_EQ(s->ops->org_create(s, &g.org, &g.live, &g.test), 0);
	ASSERT_EQ(s->ops->key_by_lookup(s, g.live.lookup, &ka), 0);
	ASSERT(keys_equal(&ka.key, &g.live));
	ASSERT(orgs_equal(&ka.org, &g.org));
	ASSERT_EQ(strlen(ka.org.name), 4 * ORG_NAME_MAX);
}

STORE_CASE(org_create_conflicts_leave_nothing)
{
	struct org_fix a, b;
	struct org o;
	struct key_auth ka;

	ASSERT_EQ(org_fix_create(s, &a), 0);

	/* b's live key has the lookup id of a's: the whole org_create fails */
	ASSERT_EQ(org_fix_make(&b, "growth", T0), 0);
	memcpy(b.live.lookup, a.live.lookup, sizeof(b.live.lookup));
	ASSERT_EQ(s->ops->org_create(s, &b.org, &b.live, &b.test), E(CONFLICT));
	ASSERT_EQ(s->ops->org_get(s, b.org.org_id, &o), E(NOT_FOUND));
	ASSERT_EQ(s->ops->key_by_lookup(s, b.test.lookup, &ka), E(NOT_FOUND));

	/* same with the test key (the second insert) */
	ASSERT_EQ(org_fix_make(&b, "growth", T0), 0);
	memcpy(b.test.lookup, a.test.lookup, sizeof(b.test.lookup));
	ASSERT_EQ(s->ops->org_create(s, &b.org, &b.live, &b.test), E(CONFLICT));
	ASSERT_EQ(s->ops->org_get(s, b.org.org_id, &o), E(NOT_FOUND));
	ASSERT_EQ(s->ops->key_by_lookup(s, b.live.lookup, &ka), E(NOT_FOUND));

	/* a taken org id */
	ASSERT_EQ(org_fix_make(&b, "growth", T0), 0);
	memcpy(b.org.org_id, a.org.org_id, sizeof(b.org.org_id));
	memcpy(b.live.org_id, a.org.org_id, sizeof(b.org.org_id));
	memcpy(b.test.org_id, a.org.org_id, sizeof(b.org.org_id));
	ASSERT_EQ(s->ops->org_create(s, &b.org, &b.live, &b.test), E(CONFLICT));
	ASSERT_EQ(s->ops->key_by_lookup(s, b.live.lookup, &ka), E(NOT_FOUND));
	ASSERT_EQ(s->ops->org_get(s, a.org.org_id, &o), 0);
	ASSERT(orgs_equal(&o, &a.org)); /* a is untouched */

	/* a taken key id */
	ASSERT_EQ(org_fix_make(&b, "growth", T0), 0);
	memcpy(b.live.key_id, a.test.key_id, sizeof(b.live.key_id));
	ASSERT_EQ(s->ops->org_create(s, &b.org, &b.live, &b.test), E(CONFLICT));
	ASSERT_EQ(s->ops->org_get(s, b.org.org_id, &o), E(NOT_FOUND));

	/* and the store still works afterwards (no transaction left open) */
	ASSERT_EQ(org_fix_create(s, &b), 0);
	ASSERT_EQ(s->ops->org_get(s, b.org.org_id, &o), 0);
}

/* ---- keys ----------------------------------------------------------------------- */

STORE_CASE(key_by_lookup_joins_org)
{
	struct org_fix f;
	struct key_auth ka;

	ASSERT_EQ(org_fix_create(s, &f), 0);
	memset(&ka, 0x5a, sizeof(ka));
	ASSERT_EQ(s->ops->key_by_lookup(s, f.live.lookup, &ka), 0);
	ASSERT(keys_equal(&ka.key, &f.live));
	ASSERT_EQ(ka.key.kind, KEY_LIVE);
	ASSERT_EQ(ka.key.revoked_at, 0);
	ASSERT(orgs_equal(&ka.org, &f.org));
	ASSERT_EQ(s->ops->key_by_lookup(s, f.test.lookup, &ka), 0);
	ASSERT(keys_equal(&ka.key, &f.test));
	ASSERT_EQ(ka.key.kind, KEY_TEST);
	ASSERT(orgs_equal(&ka.org, &f.org));
	ASSERT_EQ(s->ops->key_by_lookup(s, "aaaaaaaaaaaa", &ka), E(NOT_FOUND));
	ASSERT_EQ(s->ops->key_by_lookup(s, "", &ka), E(NOT_FOUND));
	ASSERT_EQ(s->ops->key_by_lookup(s, "' OR '1'='1", &ka), E(NOT_FOUND));
}

#define LIST_MAX 16

struct key_rows {
	int n, stop_after, stop_rc;
	struct api_key k[LIST_MAX];
};

static int collect_key(void *ctx, const struct api_key *k)
{
	struct key_rows *r = ctx;

	if (r->n < LIST_MAX)
		r->k[r->n] = *k;
	r->n++;
	return r->stop_after && r->n == r->stop_after ? r->stop_rc : 0;
}

static int newest_first(const void *a, const void *b)
{
	const struct api_key *x = a, *y = b;

	if (x->created_at != y->created_at)
		return x->created_at > y->created_at ? -1 : 1;
	return -strcmp(x->key_id, y->key_id);
}

STORE_CASE(key_list_order_limit_offset)
{
	struct org_fix f, other;
	struct api_key all[6], k;
	struct key_rows rows;
	char secret[APIKEY_LEN + 1];
	static const int64_t when[4] = {T0 + 10, T0 + 20, T0 + 20, T0 + 5};
	int n = 0;

	ASSERT_EQ(org_fix_create(s, &f), 0);
	ASSERT_EQ(org_fix_create(s, &other), 0);
	all[n++] = f.live;
	all[n++] = f.test;
	for (int i = 0; i < 4; i++) {
		ASSERT_EQ(apikey_new_row(f.org.org_id, i % 2 ? KEY_TEST : KEY_LIVE, "extra", when[i],
					 &k, secret),
			  0);
		ASSERT_EQ(s->ops->key_create(s, &k), 0);
		all[n++] = k;
	}
	/* the same key again, and a key of an org that does not exist */
	ASSERT_EQ(s->ops->key_create(s, &k), E(CONFLICT));
	ASSERT_EQ(apikey_new_row("org_nosuchorg00000", KEY_LIVE, "x", T0, &k, secret), 0);
	ASSERT_EQ(s->ops->key_create(s, &k), E(CONFLICT));
	qsort(all, (size_t)n, sizeof(all[0]), newest_first);

	memset(&rows, 0, sizeof(rows));
	ASSERT_EQ(s->ops->key_list(s, f.org.org_id, 100, 0, collect_key, &rows), 0);
	ASSERT_EQ(rows.n, 6);
	for (int i = 0; i < 6; i++)
		if (!keys_equal(&rows.k[i], &all[i]))
			FAIL_AT("key_list row %d is %s (created %lld), want %s (created %lld)", i,
				rows.k[i].key_id, (long long)rows.k[i].created_at, all[i].key_id,
				(long long)all[i].created_at);

	memset(&rows, 0, sizeof(rows));
	ASSERT_EQ(s->ops->key_list(s, f.org.org_id, 2, 1, collect_key, &rows), 0);
	ASSERT_EQ(rows.n, 2);
	ASSERT(keys_equal(&rows.k[0], &all[1]));
	ASSERT(keys_equal(&rows.k[1], &all[2]));

	memset(&rows, 0, sizeof(rows));
	ASSERT_EQ(s->ops->key_list(s, f.org.org_id, 10, 5, collect_key, &rows), 0);
	ASSERT_EQ(rows.n, 1);
	ASSERT(keys_equal(&rows.k[0], &all[5]));

	memset(&rows, 0, sizeof(rows));
	ASSERT_EQ(s->ops->key_list(s, f.org.org_id, 10, 6, collect_key, &rows), 0);
	ASSERT_EQ(rows.n, 0);

	/* a negative limit is no limit, on every backend */
	memset(&rows, 0, sizeof(rows));
	ASSERT_EQ(s->ops->key_list(s, f.org.org_id, -1, 0, collect_key, &rows), 0);
	ASSERT_EQ(rows.n, 6);

	/* a non-zero callback return stops the listing and is returned */
	memset(&rows, 0, sizeof(rows));
	rows.stop_after = 2;
	rows.stop_rc = 77;
	ASSERT_EQ(s->ops->key_list(s, f.org.org_id, 100, 0, collect_key, &rows), 77);
	ASSERT_EQ(rows.n, 2);

	/* scoped by org */
	memset(&rows, 0, sizeof(rows));
	ASSERT_EQ(s->ops->key_list(s, other.org.org_id, 100, 0, collect_key, &rows), 0);
	ASSERT_EQ(rows.n, 2);
	for (int i = 0; i < 2; i++)
		ASSERT_STR_EQ(rows.k[i].org_id, other.org.org_id);
	memset(&rows, 0, sizeof(rows));
	ASSERT_EQ(s->ops->key_list(s, "org_nosuchorg00000", 100, 0, collect_key, &rows), 0);
	ASSERT_EQ(rows.n, 0);
}

STORE_CASE(key_revoke_rules)
{
	struct org_fix a, b;
	struct api_key live2;
	struct key_auth ka;
	char secret[APIKEY_LEN + 1];
	int64_t at = -1;

	ASSERT_EQ(org_fix_create(s, &a), 0);
	ASSERT_EQ(org_fix_create(s, &b), 0);

	/* a test key can go; again is idempotent with the first time */
	ASSERT_EQ(s->ops->key_revoke(s, a.org.org_id, a.test.key_id, T0 + 100, &at), 0);
	ASSERT_EQ(at, T0 + 100);
	at = -1;
	ASSERT_EQ(s->ops->key_revoke(s, a.org.org_id, a.test.key_id, T0 + 200, &at), 0);
	ASSERT_EQ(at, T0 + 100);
	ASSERT_EQ(s->ops->key_by_lookup(s, a.test.lookup, &ka), 0);
	ASSERT_EQ(ka.key.revoked_at, T0 + 100);

	/* the last live key cannot (test keys do not count) */
	at = -1;
	ASSERT_EQ(s->ops->key_revoke(s, a.org.org_id, a.live.key_id, T0 + 300, &at), E(CONFLICT));
	ASSERT_EQ(s->ops->key_by_lookup(s, a.live.lookup, &ka), 0);
	ASSERT_EQ(ka.key.revoked_at, 0);

	/* with a second live key it can, and then the second is the last */
	ASSERT_EQ(apikey_new_row(a.org.org_id, KEY_LIVE, "second", T0 + 1, &live2, secret), 0);
	ASSERT_EQ(s->ops->key_create(s, &live2), 0);
	ASSERT_EQ(s->ops->key_revoke(s, a.org.org_id, a.live.key_id, T0 + 400, &at), 0);
	ASSERT_EQ(at, T0 + 400);
	/* read just before the revoke (and perhaps cached): the revoke shows */
	ASSERT_EQ(s->ops->key_by_lookup(s, a.live.lookup, &ka), 0);
	ASSERT_EQ(ka.key.revoked_at, T0 + 400);
	ASSERT_EQ(s->ops->key_revoke(s, a.org.org_id, live2.key_id, T0 + 500, &at), E(CONFLICT));
	/* re-revoking the revoked one is still idempotent */
	at = -1;
	ASSERT_EQ(s->ops->key_revoke(s, a.org.org_id, a.live.key_id, T0 + 600, &at), 0);
	ASSERT_EQ(at, T0 + 400);

	/* another org's key, and keys or orgs that do not exist */
	ASSERT_EQ(s->ops->key_revoke(s, b.org.org_id, live2.key_id, T0, &at), E(NOT_FOUND));
	ASSERT_EQ(s->ops->key_revoke(s, b.org.org_id, a.test.key_id, T0, &at), E(NOT_FOUND));
	ASSERT_EQ(s->ops->key_revoke(s, a.org.org_id, "key_0000000000000000", T0, &at),
		  E(NOT_FOUND));
	ASSERT_EQ(s->ops->key_revoke(s, "org_nosuchorg00000", live2.key_id, T0, &at),
		  E(NOT_FOUND));
	ASSERT_EQ(s->ops->key_by_lookup(s, live2.lookup, &ka), 0);
	ASSERT_EQ(ka.key.revoked_at, 0);
	/* b is untouched by all of this */
	ASSERT_EQ(s->ops->key_by_lookup(s, b.live.lookup, &ka), 0);
	ASSERT_EQ(ka.key.revoked_at, 0);
}

struct revoker {
	struct store *s;
	const char *org_id, *key_id;
	int rc;
};

static void *revoke_thread(void *arg)
{
	struct revoker *r = arg;
	int64_t at;

	r->rc = r->s->ops->key_revoke(r->s, r->org_id, r->key_id, T0 + 9, &at);
	return NULL;
}

static int count_live(void *ctx, const struct api_key *k)
{
	if (k->kind == KEY_LIVE && !k->revoked_at)
		(*(int *)ctx)++;
	return 0;
}

/* Two revokes of an org's last two live keys at once: exactly one wins. */
STORE_CASE(key_revoke_last_two_concurrently)
{
	for (int round = 0; round < 8; round++) {
		struct org_fix f;
		struct api_key live2;
		char secret[APIKEY_LEN + 1];
		struct revoker r[2];
		pthread_t th[2];
		int live = 0;

		ASSERT_EQ(org_fix_create(s, &f), 0);
		ASSERT_EQ(apikey_new_row(f.org.org_id, KEY_LIVE, "2", T0, &live2, secret), 0);
		ASSERT_EQ(s->ops->key_create(s, &live2), 0);
		r[0] = (struct revoker){s, f.org.org_id, f.live.key_id, -99};
		r[1] = (struct revoker){s, f.org.org_id, live2.key_id, -99};
		for (int i = 0; i < 2; i++)
			ASSERT_EQ(pthread_create(&th[i], NULL, revoke_thread, &r[i]), 0);
		for (int i = 0; i < 2; i++)
			pthread_join(th[i], NULL);
		if (!((r[0].rc == 0 && r[1].rc == E(CONFLICT)) ||
		      (r[1].rc == 0 && r[0].rc == E(CONFLICT))))
			FAIL_AT("round %d: concurrent revokes gave %d and %d (%s)", round, r[0].rc,
				r[1].rc, store_last_error());
		ASSERT_EQ(s->ops->key_list(s, f.org.org_id, 100, 0, count_live, &live), 0);
		ASSERT_EQ(live, 1);
	}
}

/* ---- agents --------------------------------------------------------------------- */

STORE_CASE(agent_insert_get)
{
	struct org_fix a, b;
	struct agent x, y, got;
	char *plain = NULL, ad[200];
	size_t plen = 0;
	const char *d;

	ASSERT_EQ(org_fix_create(s, &a), 0);
	ASSERT_EQ(org_fix_create(s, &b), 0);
	ASSERT_EQ(agent_make(&x, a.org.org_id, "research-agent-v2", "research", "probationary",
			     T0 + 50),
		  0);
	ASSERT_EQ(s->ops->agent_insert(s, &x), 0);
	ASSERT_EQ(s->ops->agent_insert(s, &x), E(CONFLICT));
	ASSERT_EQ(s->ops->agent_get(s, a.org.org_id, "research-agent-v2", &got), 0);
	d = agent_diff(&got, &x);
	if (d[0]) {
		agent_release(&got);
		agent_release(&x);
		FAIL_AT("agent read back differs in %s", d);
	}
	ASSERT(got.embedding_id == NULL);
	/* the sealed secret still opens under its row's associated data */
	snprintf(ad, sizeof(ad), "agent:%s/%s", a.org.org_id, "research-agent-v2");
	ASSERT_EQ(unseal(seal_key, got.secret_sealed, got.secret_sealed_len, ad, &plain, &plen), 0);
	ASSERT_STR_EQ(plain, "webhook-secret-0123456789abcdef-0123456789");
	free(plain);
	agent_release(&got);

	/* the same agent id in another org is another agent */
	snprintf(x.org_id, sizeof(x.org_id), "%s", b.org.org_id);
	ASSERT_EQ(s->ops->agent_insert(s, &x), 0);
	/* an org that does not exist */
	snprintf(x.org_id, sizeof(x.org_id), "org_nosuchorg00000");
	ASSERT_EQ(s->ops->agent_insert(s, &x), E(CONFLICT));
	agent_release(&x);

	/* every field that can vary, at awkward values */
	ASSERT_EQ(agent_make(&y, a.org.org_id, "A.b_c:d-9", "other", "active", T0 + 60), 0);
	y.embedding_id = strdup("emb_0123");
	y.availability = 0.1 + 0.2; /* 0.30000000000000004 */
	y.trust_score = 1.0 / 3.0;
	y.per_call_micros = 1000000LL * 1000000LL;
	y.p99_latency_ms = 86400000;
	y.is_public = 1;
	snprintf(y.prior_status, sizeof(y.prior_status), "probationary");
	y.updated_at = T0 + 61;
	ASSERT_EQ(s->ops->agent_insert(s, &y), 0);
	ASSERT_EQ(s->ops->agent_get(s, a.org.org_id, "A.b_c:d-9", &got), 0);
	d = agent_diff(&got, &y);
	agent_release(&got);
	agent_release(&y);
	if (d[0])
		FAIL_AT("agent read back differs in %s", d);

	/* missing, and another org's */
	ASSERT_EQ(s->ops->agent_get(s, a.org.org_id, "nope", &got), E(NOT_FOUND));
	ASSERT_EQ(s->ops->agent_get(s, b.org.org_id, "A.b_c:d-9", &got), E(NOT_FOUND));
	ASSERT_EQ(s->ops->agent_get(s, "org_nosuchorg00000", "research-agent-v2", &got),
		  E(NOT_FOUND));
}

STORE_CASE(agent_update_keeps_state)
{
	struct org_fix a, b;
	struct agent x, u, got;
	const char *d;

	ASSERT_EQ(org_fix_create(s, &a), 0);
	ASSERT_EQ(org_fix_create(s, &b), 0);
	ASSERT_EQ(agent_make(&x, a.org.org_id, "agent-1", "research", "active", T0 + 100), 0);
	x.trust_score = 0.8;
	x.embedding_id = strdup("emb_1");
	ASSERT_EQ(s->ops->agent_insert(s, &x), 0);

	/* a new definition; the state fields in u are ignored */
	ASSERT_EQ(agent_make(&u, a.org.org_id, "agent-1", "analysis", "probationary", T0 + 999), 0);
	free(u.name);
	u.name = strdup("Renamed");
	free(u.description);
	u.description = strdup("new description");
	free(u.webhook_url);
	u.webhook_url = strdup("https://new.example.com/hook");
	free(u.input_schema);
	u.input_schema = strdup("{}");
	u.per_call_micros = 1;
	u.p99_latency_ms = 42;
	u.availability = 0.5;
	u.is_public = 1;
	u.trust_score = 0.1;
	snprintf(u.prior_status, sizeof(u.prior_status), "paused");
	u.updated_at = T0 + 200;
	free(u.embedding_id); /* a new definition has a new embedding (discovery) */
	u.embedding_id = strdup("emb_2");
	ASSERT_EQ(s->ops->agent_update(s, &u), 0);
	ASSERT_EQ(s->ops->agent_get(s, a.org.org_id, "agent-1", &got), 0);

	/* what the update may change, it did; the rest is the stored state */
	snprintf(u.status, sizeof(u.status), "active");
	u.prior_status[0] = '\0';
	u.trust_score = 0.8;
	u.registered_at = T0 + 100;
	d = agent_diff(&got, &u);
	agent_release(&got);
	if (d[0]) {
		agent_release(&x);
		agent_release(&u);
		FAIL_AT("after update, %s differs", d);
	}

	/* missing agent, and an agent of another org: NOT_FOUND, nothing written */
	snprintf(u.agent_id, sizeof(u.agent_id), "agent-missing");
	ASSERT_EQ(s->ops->agent_update(s, &u), E(NOT_FOUND));
	snprintf(u.agent_id, sizeof(u.agent_id), "agent-1");
	snprintf(u.org_id, sizeof(u.org_id), "%s", b.org.org_id);
	ASSERT_EQ(s->ops->agent_update(s, &u), E(NOT_FOUND));
	ASSERT_EQ(s->ops->agent_get(s, b.org.org_id, "agent-1", &got), E(NOT_FOUND));
	ASSERT_EQ(s->ops->agent_get(s, a.org.org_id, "agent-1", &got), 0);
	ASSERT_STR_EQ(got.name, "Renamed");
	agent_release(&got);
	agent_release(&x);
	agent_release(&u);
}

struct agent_rows {
	int n, stop_after, stop_rc, bad;
	char ids[LIST_MAX][AGENT_ID_MAX + 1];
};

static int collect_agent(void *ctx, const struct agent *a)
{
	struct agent_rows *r = ctx;

	if (r->n < LIST_MAX)
		snprintf(r->ids[r->n], sizeof(r->ids[0]), "%s", a->agent_id);
	/* rows are whole agents */
	if (!a->name || !a->webhook_url || !a->input_schema || !a->secret_sealed_len)
		r->bad++;
	r->n++;
	return r->stop_after && r->n == r->stop_after ? r->stop_rc : 0;
}

/* "id,id,..." of a listing. */
static void joined(const struct agent_rows *r, char *out, size_t outsz)
{
	size_t n = 0;

	out[0] = '\0';
	for (int i = 0; i < r->n && i < LIST_MAX; i++)
		n += (size_t)snprintf(out + n, outsz - n, "%s%s", i ? "," : "", r->ids[i]);
}

static int list_ids(struct store *s, const char *org_id, const char *status, const char *cap,
		    int limit, int offset, char *out, size_t outsz)
{
	struct agent_filter f = {org_id, status, cap};
	struct agent_rows r;
	int rc;

	memset(&r, 0, sizeof(r));
	rc = s->ops->agent_list(s, &f, limit, offset, collect_agent, &r);
	joined(&r, out, outsz);
	return rc ? rc : r.bad ? -1000 : 0;
}

STORE_CASE(agent_list_filters_and_order)
{
	static const struct {
		const char *id, *cap, *status;
		int64_t reg;
	} rows[] = {
		{"x3", "research", "active", T0 + 300},
		{"x1", "analysis", "probationary", T0 + 100},
		{"x2", "research", "probationary", T0 + 100},
		{"x0", "research", "paused", T0 + 200},
		{"X9", "other", "active", T0 + 100}, /* upper case sorts before lower */
	};
	struct org_fix a, b;
	struct agent x;
	char got[256];

	ASSERT_EQ(org_fix_create(s, &a), 0);
	ASSERT_EQ(org_fix_create(s, &b), 0);
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		ASSERT_EQ(agent_make(&x, a.org.org_id, rows[i].id, rows[i].cap, rows[i].status,
				     rows[i].reg),
			  0);
		ASSERT_EQ(s->ops->agent_insert(s, &x), 0);
		agent_release(&x);
	}
	ASSERT_EQ(agent_make(&x, b.org.org_id, "x1", "research", "active", T0), 0);
	ASSERT_EQ(s->ops->agent_insert(s, &x), 0);
	agent_release(&x);

#define LIST(status, cap, limit, offset, want)                                              \
	do {                                                                                  \
		int rc_ = list_ids(s, a.org.org_id, status, cap, limit, offset, got, sizeof(got)); \
		if (rc_ || strcmp(got, want))                                                 \
			FAIL_AT("list(%s, %s, %d, %d) = %d \"%s\", want \"%s\"", #status, #cap,   \
				limit, offset, rc_, got, want);                               \
	} while (0)

	LIST(NULL, NULL, 50, 0, "X9,x1,x2,x0,x3");
	LIST("probationary", NULL, 50, 0, "x1,x2");
	LIST("active", NULL, 50, 0, "X9,x3");
	LIST("paused", NULL, 50, 0, "x0");
	LIST(NULL, "research", 50, 0, "x2,x0,x3");
	LIST("probationary", "research", 50, 0, "x2");
	LIST("active", "analysis", 50, 0, "");
	LIST(NULL, "validation", 50, 0, "");
	LIST(NULL, NULL, 2, 1, "x1,x2");
	LIST(NULL, NULL, 2, 4, "x3");
	LIST(NULL, NULL, 2, 5, "");
	LIST(NULL, NULL, -1, 0, "X9,x1,x2,x0,x3");
	LIST(NULL, "research", 1, 2, "x3");
#undef LIST
	/* scoped by org */
	ASSERT_EQ(list_ids(s, b.org.org_id, NULL, NULL, 50, 0, got, sizeof(got)), 0);
	ASSERT_STR_EQ(got, "x1");
	ASSERT_EQ(list_ids(s, "org_nosuchorg00000", NULL, NULL, 50, 0, got, sizeof(got)), 0);
	ASSERT_STR_EQ(got, "");
	/* a callback's non-zero return stops the listing and is returned */
	{
		struct agent_filter f = {a.org.org_id, NULL, NULL};
		struct agent_rows r;

		memset(&r, 0, sizeof(r));
		r.stop_after = 3;
		r.stop_rc = 55;
		ASSERT_EQ(s->ops->agent_list(s, &f, 50, 0, collect_agent, &r), 55);
		ASSERT_EQ(r.n, 3);
	}
}

static int status_of(struct store *s, const char *org_id, const char *id, char *status,
		     char *prior, int64_t *updated)
{
	struct agent got;
	int rc = s->ops->agent_get(s, org_id, id, &got);

	if (rc)
		return rc;
	snprintf(status, 16, "%s", got.status);
	snprintf(prior, 16, "%s", got.prior_status);
	*updated = got.updated_at;
	agent_release(&got);
	return 0;
}

STORE_CASE(agent_pause_resume)
{
	struct org_fix a, b;
	struct agent x;
	char st[16], prior[16];
	int64_t upd = 0;

	ASSERT_EQ(org_fix_create(s, &a), 0);
	ASSERT_EQ(org_fix_create(s, &b), 0);
	ASSERT_EQ(agent_make(&x, a.org.org_id, "act", "research", "active", T0), 0);
	ASSERT_EQ(s->ops->agent_insert(s, &x), 0);
	agent_release(&x);
	ASSERT_EQ(agent_make(&x, a.org.org_id, "prob", "research", "probationary", T0), 0);
	ASSERT_EQ(s->ops->agent_insert(s, &x), 0);
	agent_release(&x);
	ASSERT_EQ(agent_make(&x, a.org.org_id, "born-paused", "research", "paused", T0), 0);
	ASSERT_EQ(s->ops->agent_insert(s, &x), 0);
	agent_release(&x);

	/* pause remembers the status it replaced */
	ASSERT_EQ(s->ops->agent_set_paused(s, a.org.org_id, "act", 1, T0 + 500), 0);
	ASSERT_EQ(status_of(s, a.org.org_id, "act", st, prior, &upd), 0);
	ASSERT_STR_EQ(st, "paused");
	ASSERT_STR_EQ(prior, "active");
	ASSERT_EQ(upd, T0 + 500);
	/* pausing again is a no-op: the remembered status is not overwritten */
	ASSERT_EQ(s->ops->agent_set_paused(s, a.org.org_id, "act", 1, T0 + 600), 0);
	ASSERT_EQ(status_of(s, a.org.org_id, "act", st, prior, &upd), 0);
	ASSERT_STR_EQ(st, "paused");
	ASSERT_STR_EQ(prior, "active");
	ASSERT_EQ(upd, T0 + 500);
	/* resume restores it */
	ASSERT_EQ(s->ops->agent_set_paused(s, a.org.org_id, "act", 0, T0 + 700), 0);
	ASSERT_EQ(status_of(s, a.org.org_id, "act", st, prior, &upd), 0);
	ASSERT_STR_EQ(st, "active");
	ASSERT_STR_EQ(prior, "");
	ASSERT_EQ(upd, T0 + 700);
	/* resuming an agent that is not paused is a no-op */
	ASSERT_EQ(s->ops->agent_set_paused(s, a.org.org_id, "act", 0, T0 + 800), 0);
	ASSERT_EQ(status_of(s, a.org.org_id, "act", st, prior, &upd), 0);
	ASSERT_STR_EQ(st, "active");
	ASSERT_EQ(upd, T0 + 700);

	/* probationary round trip */
	ASSERT_EQ(s->ops->agent_set_paused(s, a.org.org_id, "prob", 1, T0 + 900), 0);
	ASSERT_EQ(status_of(s, a.org.org_id, "prob", st, prior, &upd), 0);
	ASSERT_STR_EQ(st, "paused");
	ASSERT_STR_EQ(prior, "probationary");
	ASSERT_EQ(s->ops->agent_set_paused(s, a.org.org_id, "prob", 0, T0 + 901), 0);
	ASSERT_EQ(status_of(s, a.org.org_id, "prob", st, prior, &upd), 0);
	ASSERT_STR_EQ(st, "probationary");

	/* paused with nothing remembered resumes as probationary */
	ASSERT_EQ(s->ops->agent_set_paused(s, a.org.org_id, "born-paused", 0, T0 + 902), 0);
	ASSERT_EQ(status_of(s, a.org.org_id, "born-paused", st, prior, &upd), 0);
	ASSERT_STR_EQ(st, "probationary");

	/* missing agents, and another org's: NOT_FOUND either way */
	ASSERT_EQ(s->ops->agent_set_paused(s, a.org.org_id, "missing", 1, T0), E(NOT_FOUND));
	ASSERT_EQ(s->ops->agent_set_paused(s, a.org.org_id, "missing", 0, T0), E(NOT_FOUND));
	ASSERT_EQ(s->ops->agent_set_paused(s, b.org.org_id, "act", 1, T0 + 1000), E(NOT_FOUND));
	ASSERT_EQ(s->ops->agent_set_paused(s, b.org.org_id, "act", 0, T0 + 1000), E(NOT_FOUND));
	ASSERT_EQ(status_of(s, a.org.org_id, "act", st, prior, &upd), 0);
	ASSERT_STR_EQ(st, "active");
	ASSERT_EQ(upd, T0 + 700);
}

STORE_CASE(agent_status)
{
	struct org_fix a, b;
	struct agent x;
	char st[16];

	ASSERT_EQ(org_fix_create(s, &a), 0);
	ASSERT_EQ(org_fix_create(s, &b), 0);
	ASSERT_EQ(agent_make(&x, a.org.org_id, "ag", "execution", "probationary", T0), 0);
	ASSERT_EQ(s->ops->agent_insert(s, &x), 0);
	agent_release(&x);
	ASSERT_EQ(s->ops->agent_status(s, a.org.org_id, "ag", st), 0);
	ASSERT_STR_EQ(st, "probationary");
	ASSERT_EQ(s->ops->agent_set_paused(s, a.org.org_id, "ag", 1, T0 + 1), 0);
	ASSERT_EQ(s->ops->agent_status(s, a.org.org_id, "ag", st), 0);
	ASSERT_STR_EQ(st, "paused");
	ASSERT_EQ(s->ops->agent_status(s, a.org.org_id, "nope", st), E(NOT_FOUND));
	ASSERT_EQ(s->ops->agent_status(s, b.org.org_id, "ag", st), E(NOT_FOUND));
	ASSERT_EQ(s->ops->agent_status(s, a.org.org_id, "AG", st), E(NOT_FOUND)); /* exact ids */
}

/* ---- backend-specific ----------------------------------------------------------- */

TEST(store_sqlite_reopen_keeps_data)
{
	char dir[] = "/tmp/nexra-unit-store-XXXXXX", path[96], msg[512] = "";
	struct store *s = NULL;
	struct org_fix f;
	struct org o;
	int rc1 = -1, rc2 = -1, rc3 = -1;

	ASSERT(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/nexra.db", dir);
	if (!store_sqlite_open(path, 1, &s, msg, sizeof(msg))) {
		rc1 = s->ops->migrate(s);
		if (!rc1)
			rc1 = org_fix_create(s, &f);
		s->ops->close(s);
	}
	snprintf(path, sizeof(path), "sqlite:%s/nexra.db", dir);
	if (!rc1 && !store_open(path, 3, &s, msg, sizeof(msg))) {
		rc2 = s->ops->migrate(s);
		rc3 = s->ops->org_get(s, f.org.org_id, &o);
		s->ops->close(s);
	}
	store_rm_dir(dir);
	ASSERT_EQ(rc1, 0);
	ASSERT_EQ(rc2, 0);
	ASSERT_EQ(rc3, 0);
	ASSERT(orgs_equal(&o, &f.org));
}

TEST(store_open_by_uri)
{
	struct store *s = (struct store *)1;
	char msg[256] = "";

	ASSERT_EQ(store_open("mysql://x", 1, &s, msg, sizeof(msg)), E(VALIDATION));
	ASSERT(s == NULL);
	ASSERT_CONTAINS(msg, "mysql://x");
	ASSERT_EQ(store_open("sqlite:/nonexistent-dir-nexra/x.db", 1, &s, msg, sizeof(msg)),
		  E(INTERNAL));
	ASSERT(s == NULL);
	ASSERT_CONTAINS(msg, "/nonexistent-dir-nexra/x.db");
}

/* Two stores on one SQLite file stand for two server processes: a key read
 * (and cached) by one and then revoked through the other reads as revoked
 * on the next lookup in the first. */
TEST(store_sqlite_key_cache_sees_revoke_from_another_store)
{
	char dir[] = "/tmp/nexra-unit-store-XXXXXX", path[96], msg[512] = "";
	struct store *a = NULL, *b = NULL;
	struct org_fix f;
	struct api_key live2;
	struct key_auth ka;
	char secret[APIKEY_LEN + 1];
	int64_t at = 0;
	int rc = -1, step = 0;

	ASSERT(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/nexra.db", dir);
	if (store_sqlite_open(path, 2, &a, msg, sizeof(msg)) ||
	    store_sqlite_open(path, 2, &b, msg, sizeof(msg)))
		goto out;
	step = 1;
	if (a->ops->migrate(a) || org_fix_create(a, &f) ||
	    apikey_new_row(f.org.org_id, KEY_LIVE, "2", T0, &live2, secret) ||
	    a->ops->key_create(a, &live2))
		goto out;
	step = 2;
	for (int i = 0; i < 3; i++) /* warm both caches */
		if (a->ops->key_by_lookup(a, f.live.lookup, &ka) || ka.key.revoked_at ||
		    b->ops->key_by_lookup(b, f.live.lookup, &ka) || ka.key.revoked_at)
			goto out;
	step = 3;
	if (b->ops->key_revoke(b, f.org.org_id, f.live.key_id, T0 + 5, &at) || at != T0 + 5)
		goto out;
	step = 4;
	if (a->ops->key_by_lookup(a, f.live.lookup, &ka) || ka.key.revoked_at != T0 + 5)
		goto out;
	step = 5;
	if (b->ops->key_by_lookup(b, f.live.lookup, &ka) || ka.key.revoked_at != T0 + 5)
		goto out;
	rc = 0;
out:
	if (a)
		a->ops->close(a);
	if (b)
		b->ops->close(b);
	store_rm_dir(dir);
	if (rc)
		FAIL_AT("failed at step %d (%s%s)", step, msg, store_last_error());
}

/* The agent cache is shared-generation checked too: a pause, resume or
 * update made through another store on the same file is seen at once by a
 * store whose cache holds the agent. */
TEST(store_sqlite_agent_cache_sees_writes_from_another_store)
{
	char dir[] = "/tmp/nexra-unit-store-XXXXXX", path[96], msg[512] = "", status[16];
	struct store *a = NULL, *b = NULL;
	struct org_fix f;
	struct agent ag, got;
	int rc = -1, step = 0, made = 0;

	memset(&got, 0, sizeof(got));
	ASSERT(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/nexra.db", dir);
	if (store_sqlite_open(path, 2, &a, msg, sizeof(msg)) ||
	    store_sqlite_open(path, 2, &b, msg, sizeof(msg)))
		goto out;
	step = 1;
	if (a->ops->migrate(a) || org_fix_create(a, &f) ||
	    agent_make(&ag, f.org.org_id, "cached-1", "research", "probationary", T0))
		goto out;
	made = 1;
	if (a->ops->agent_insert(a, &ag))
		goto out;
	step = 2;
	for (int i = 0; i < 3; i++) { /* warm a's cache */
		if (a->ops->agent_get(a, f.org.org_id, "cached-1", &got))
			goto out;
		agent_release(&got);
	}
	step = 3;
	if (b->ops->agent_set_paused(b, f.org.org_id, "cached-1", 1, T0 + 1) ||
	    a->ops->agent_status(a, f.org.org_id, "cached-1", status) || strcmp(status, "paused"))
		goto out;
	step = 4;
	if (a->ops->agent_get(a, f.org.org_id, "cached-1", &got) || strcmp(got.status, "paused"))
		goto out;
	agent_release(&got);
	step = 5;
	free(ag.name);
	ag.name = strdup("Renamed elsewhere");
	if (!ag.name || b->ops->agent_update(b, &ag) ||
	    a->ops->agent_get(a, f.org.org_id, "cached-1", &got) ||
	    strcmp(got.name, "Renamed elsewhere"))
		goto out;
	agent_release(&got);
	step = 6;
	if (b->ops->agent_set_paused(b, f.org.org_id, "cached-1", 0, T0 + 2) ||
	    a->ops->agent_get(a, f.org.org_id, "cached-1", &got) ||
	    strcmp(got.status, "probationary"))
		goto out;
	rc = 0;
out:
	agent_release(&got);
	if (made)
		agent_release(&ag);
	if (a)
		a->ops->close(a);
	if (b)
		b->ops->close(b);
	store_rm_dir(dir);
	if (rc)
		FAIL_AT("failed at step %d (%s%s)", step, msg, store_last_error());
}

/* ---- policies ------------------------------------------------------------ */

struct pol_rows {
	int n;
	char ids[16][ID_MAX];
	int versions[16];
	char yaml0[64];
	int yaml_null;
};

static int collect_policy(void *ctx, const struct policy *p)
{
	struct pol_rows *r = ctx;

	if (r->n < 16) {
		snprintf(r->ids[r->n], ID_MAX, "%s", p->policy_id);
		r->versions[r->n] = p->version;
		if (r->n == 0) {
			snprintf(r->yaml0, sizeof(r->yaml0), "%s", p->yaml ? p->yaml : "");
			r->yaml_null = p->yaml == NULL;
		}
	}
	r->n++;
	return 0;
}

struct ver_rows {
	int n, v[8];
	int64_t t[8];
};

static int collect_version(void *ctx, int version, int64_t at)
{
	struct ver_rows *r = ctx;

	if (r->n < 8) {
		r->v[r->n] = version;
		r->t[r->n] = at;
	}
	r->n++;
	return 0;
}

/* Upload creates a policy at version 1; uploading the same name again adds
 * its next version (same id) and moves priority/enabled; every version's
 * text is kept and readable; another org sees none of it. */
STORE_CASE(policy_versions)
{
	struct org_fix a, b;
	struct policy p, q;
	struct ver_rows vr = {0};
	char id[ID_MAX], *yaml = NULL;

	memset(&p, 0, sizeof(p));
	memset(&q, 0, sizeof(q));
	ASSERT_EQ(org_fix_create(s, &a), 0);
	ASSERT_EQ(org_fix_create(s, &b), 0);
	ASSERT_EQ(rand_id(id, "pol_", 8), 0);
	ASSERT_EQ(s->ops->policy_put(s, a.org.org_id, "prod", "rules: []\n", 10, 1, T0, id, &p), 0);
	ASSERT_STR_EQ(p.policy_id, id);
	ASSERT_EQ(p.version, 1);
	ASSERT_EQ(p.priority, 10);
	ASSERT_EQ(p.enabled, 1);
	ASSERT_STR_EQ(p.yaml, "rules: []\n");
	ASSERT_EQ(p.created_at, T0);
	policy_release(&p);

	ASSERT_EQ(s->ops->policy_put(s, a.org.org_id, "prod", "rules:\n  - capability: x\n", 5, 0,
				     T0 + 10, "pol_unused00000000", &q), 0);
	ASSERT_STR_EQ(q.policy_id, id); /* same policy, next version */
	ASSERT_EQ(q.version, 2);
	ASSERT_EQ(q.priority, 5);
	ASSERT_EQ(q.enabled, 0);
	ASSERT_EQ(q.created_at, T0);
	ASSERT_EQ(q.updated_at, T0 + 10);
	ASSERT_STR_EQ(q.yaml, "rules:\n  - capability: x\n");
	policy_release(&q);

	ASSERT_EQ(s->ops->policy_versions(s, a.org.org_id, id, collect_version, &vr), 0);
	ASSERT_EQ(vr.n, 2);
	ASSERT_EQ(vr.v[0], 1);
	ASSERT_EQ(vr.v[1], 2);
	ASSERT_EQ(vr.t[1], T0 + 10);
	ASSERT_EQ(s->ops->policy_version_yaml(s, a.org.org_id, id, 1, &yaml), 0);
	ASSERT_STR_EQ(yaml, "rules: []\n");
	free(yaml);
	yaml = NULL;
	ASSERT_EQ(s->ops->policy_version_yaml(s, a.org.org_id, id, 3, &yaml), E(NOT_FOUND));

	/* tenancy: org b sees nothing, and the same name is its own policy */
	ASSERT_EQ(s->ops->policy_get(s, b.org.org_id, id, &p), E(NOT_FOUND));
	ASSERT_EQ(s->ops->policy_version_yaml(s, b.org.org_id, id, 1, &yaml), E(NOT_FOUND));
	vr.n = 0;
	ASSERT_EQ(s->ops->policy_versions(s, b.org.org_id, id, collect_version, &vr), E(NOT_FOUND));
	ASSERT_EQ(s->ops->policy_patch(s, b.org.org_id, id, NULL, NULL, T0), E(NOT_FOUND));
	ASSERT_EQ(rand_id(id, "pol_", 8), 0);
	ASSERT_EQ(s->ops->policy_put(s, b.org.org_id, "prod", "rules: []\n", 1, 1, T0, id, &p), 0);
	ASSERT_EQ(p.version, 1);
	ASSERT_STR_EQ(p.policy_id, id);
	policy_release(&p);
}

/* The stack is the enabled policies by priority, ties by creation order,
 * each with its current text; lists show all, without text; patch moves
 * one and leaves what it is not given. */
STORE_CASE(policy_stack_order_and_patch)
{
	struct org_fix a;
	struct policy p;
	struct pol_rows r = {0};
	char ids[4][ID_MAX];
	const char *names[4] = {"late-tie", "first", "disabled", "early-tie"};
	const int prio[4] = {20, 1, 0, 20};
	const int enabled[4] = {1, 1, 0, 1};
	int off = 0, ten = 10;

	ASSERT_EQ(org_fix_create(s, &a), 0);
	for (int i = 0; i < 4; i++) {
		char yaml[32];

		snprintf(yaml, sizeof(yaml), "# %s\n", names[i]);
		ASSERT_EQ(rand_id(ids[i], "pol_", 8), 0);
		ASSERT_EQ(s->ops->policy_put(s, a.org.org_id, names[i], yaml, prio[i], enabled[i],
					     T0 + i, ids[i], &p), 0);
		policy_release(&p);
	}
	/* stack: first (1), late-tie (20, created before early-tie), early-tie (20) */
	ASSERT_EQ(s->ops->policy_stack(s, a.org.org_id, collect_policy, &r), 0);
	ASSERT_EQ(r.n, 3);
	ASSERT_STR_EQ(r.ids[0], ids[1]);
	ASSERT_STR_EQ(r.ids[1], ids[0]);
	ASSERT_STR_EQ(r.ids[2], ids[3]);
	ASSERT_STR_EQ(r.yaml0, "# first\n");
	/* list: all four, same order rule, no text */
	memset(&r, 0, sizeof(r));
	ASSERT_EQ(s->ops->policy_list(s, a.org.org_id, 50, 0, collect_policy, &r), 0);
	ASSERT_EQ(r.n, 4);
	ASSERT_STR_EQ(r.ids[0], ids[2]); /* priority 0, disabled */
	ASSERT(r.yaml_null);
	memset(&r, 0, sizeof(r));
	ASSERT_EQ(s->ops->policy_list(s, a.org.org_id, 2, 2, collect_policy, &r), 0);
	ASSERT_EQ(r.n, 2);
	ASSERT_STR_EQ(r.ids[0], ids[0]);
	/* disable "first", move early-tie ahead: stack is early-tie, late-tie */
	ASSERT_EQ(s->ops->policy_patch(s, a.org.org_id, ids[1], &off, NULL, T0 + 50), 0);
	ASSERT_EQ(s->ops->policy_patch(s, a.org.org_id, ids[3], NULL, &ten, T0 + 51), 0);
	memset(&r, 0, sizeof(r));
	ASSERT_EQ(s->ops->policy_stack(s, a.org.org_id, collect_policy, &r), 0);
	ASSERT_EQ(r.n, 2);
	ASSERT_STR_EQ(r.ids[0], ids[3]);
	ASSERT_STR_EQ(r.ids[1], ids[0]);
	ASSERT_EQ(s->ops->policy_get(s, a.org.org_id, ids[1], &p), 0);
	ASSERT_EQ(p.enabled, 0);
	ASSERT_EQ(p.priority, 1); /* not given: kept */
	ASSERT_EQ(p.updated_at, T0 + 50);
	ASSERT_EQ(p.version, 1);
	policy_release(&p);
	ASSERT_EQ(s->ops->policy_patch(s, a.org.org_id, "pol_missing0000000", &off, NULL, T0),
		  E(NOT_FOUND));
}

/* The policy stamp moves with every upload and patch of the org's policies
 * (in the same transaction), and only with those of that org. */
STORE_CASE(policy_stamp_moves_with_changes)
{
	struct org_fix a, b;
	struct policy p;
	int64_t s0 = -1, s1 = -1, s2 = -1, b0 = -1, b1 = -1;
	char id[ID_MAX];
	int off = 0;

	ASSERT_EQ(org_fix_create(s, &a), 0);
	ASSERT_EQ(org_fix_create(s, &b), 0);
	ASSERT_EQ(s->ops->policy_stamp(s, a.org.org_id, &s0), 0);
	ASSERT_EQ(s->ops->policy_stamp(s, b.org.org_id, &b0), 0);
	ASSERT_EQ(rand_id(id, "pol_", 8), 0);
	ASSERT_EQ(s->ops->policy_put(s, a.org.org_id, "p", "rules: []\n", 1, 1, T0, id, &p), 0);
	policy_release(&p);
	ASSERT_EQ(s->ops->policy_stamp(s, a.org.org_id, &s1), 0);
	ASSERT(s1 != s0);
	ASSERT_EQ(s->ops->policy_patch(s, a.org.org_id, id, &off, NULL, T0 + 1), 0);
	ASSERT_EQ(s->ops->policy_stamp(s, a.org.org_id, &s2), 0);
	ASSERT(s2 != s1);
	ASSERT_EQ(s->ops->policy_stamp(s, b.org.org_id, &b1), 0);
	ASSERT_EQ(b1, b0);
	ASSERT_EQ(s->ops->policy_stamp(s, "org_missing00000000", &b1), E(NOT_FOUND));
}

/* ---- delegation records --------------------------------------------------- */

struct del_rows {
	int n;
	struct delegation_record d[8];
};

static int collect_del(void *ctx, const struct delegation_record *d)
{
	struct del_rows *r = ctx;

	if (r->n < 8)
		r->d[r->n] = *d;
	r->n++;
	return 0;
}

static void del_make(struct delegation_record *d, const char *org_id, const char *id,
		     int64_t at, int with_callee)
{
	memset(d, 0, sizeof(*d));
	snprintf(d->delegation_id, sizeof(d->delegation_id), "%s", id);
	snprintf(d->org_id, sizeof(d->org_id), "%s", org_id);
	snprintf(d->caller_agent_id, sizeof(d->caller_agent_id), "sales-agent");
	if (with_callee) {
		snprintf(d->callee_agent_id, sizeof(d->callee_agent_id), "research-1");
		d->has_trust = 1;
		d->callee_trust = 0.875;
	}
	snprintf(d->capability, sizeof(d->capability), "research");
	d->budget_cap_micros = 250000;
	snprintf(d->decision, sizeof(d->decision), "allow");
	if (with_callee) {
		snprintf(d->policy_id, sizeof(d->policy_id), "pol_0123456789abcdef");
		d->policy_version = 3;
	}
	d->created_at = at;
}

/* Records round-trip every field (NULL callee/trust/policy included), scan
 * is [from, to) in time then id order with a limit, and scoped by org. */
STORE_CASE(delegation_records)
{
	struct org_fix a, b;
	struct delegation_record d;
	struct del_rows r = {0};
	char ids[4][ID_MAX];

	ASSERT_EQ(org_fix_create(s, &a), 0);
	ASSERT_EQ(org_fix_create(s, &b), 0);
	for (int i = 0; i < 4; i++) {
		ASSERT_EQ(rand_id(ids[i], "del_", 8), 0);
		del_make(&d, a.org.org_id, ids[i], T0 + (i < 2 ? 10 : 20 + i), i % 2 == 0);
		ASSERT_EQ(s->ops->delegation_insert(s, &d), 0);
	}
	ASSERT_EQ(s->ops->delegation_insert(s, &d), E(CONFLICT));
	ASSERT_EQ(s->ops->delegation_scan(s, a.org.org_id, T0, T0 + 100, 10, collect_del, &r), 0);
	ASSERT_EQ(r.n, 4);
	ASSERT(strcmp(r.d[0].delegation_id, r.d[1].delegation_id) < 0); /* same time: by id */
	for (int i = 0; i < 4; i++) {
		const struct delegation_record *x = &r.d[i];
		int callee = !strcmp(x->delegation_id, ids[0]) || !strcmp(x->delegation_id, ids[2]);

		ASSERT_STR_EQ(x->caller_agent_id, "sales-agent");
		ASSERT_STR_EQ(x->capability, "research");
		ASSERT_EQ(x->budget_cap_micros, 250000);
		ASSERT_STR_EQ(x->decision, "allow");
		ASSERT_EQ(x->has_trust, callee);
		ASSERT_STR_EQ(x->callee_agent_id, callee ? "research-1" : "");
		if (callee) {
			ASSERT(x->callee_trust == 0.875);
			ASSERT_STR_EQ(x->policy_id, "pol_0123456789abcdef");
			ASSERT_EQ(x->policy_version, 3);
		} else {
			ASSERT_STR_EQ(x->policy_id, "");
		}
	}
	memset(&r, 0, sizeof(r));
	ASSERT_EQ(s->ops->delegation_scan(s, a.org.org_id, T0 + 11, T0 + 23, 10, collect_del, &r), 0);
	ASSERT_EQ(r.n, 1); /* only the one at T0 + 22 */
	ASSERT_EQ(r.d[0].created_at, T0 + 22);
	memset(&r, 0, sizeof(r));
	ASSERT_EQ(s->ops->delegation_scan(s, a.org.org_id, T0, T0 + 100, 3, collect_del, &r), 0);
	ASSERT_EQ(r.n, 3);
	memset(&r, 0, sizeof(r));
	ASSERT_EQ(s->ops->delegation_scan(s, b.org.org_id, T0, T0 + 100, 10, collect_del, &r), 0);
	ASSERT_EQ(r.n, 0);
}
