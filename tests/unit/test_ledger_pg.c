/*
 * store/pg_ledger.c: what only PostgreSQL has to prove about the ledger,
 * because only there do several `nexra serve` processes share one
 * database. Each racing thread opens its own store (its own connection,
 * as a separate process would have) on NEXRA_TEST_PG_URI and the results
 * are checked against the database afterwards: holds never pass the
 * budget, one settle of a delegation wins, audit ids stay 1..N per org,
 * one idempotency claim and one circuit opening win, batches over several
 * orgs in opposite orders all commit, a deadlock is retried, not
 * reported. Plus one pass over the operations on this backend (field
 * round trips, error codes, the pipeline surviving a failing op and a
 * killed connection). Skipped when NEXRA_TEST_PG_URI is not set; every
 * run makes fresh random orgs and delegation ids, so reruns on one
 * database never clash.
 */
#include <libpq-fe.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/apikey.h"
#include "core/err.h"
#include "core/rand.h"
#include "store/store.h"
#include "test.h"

#define T0 1700000000LL
#define PERIOD "2023-11"
#define RACERS 8 /* threads, each with its own store */

/* ---- fixtures ------------------------------------------------------------ */

/* Random per run: delegation ids are unique database-wide, and reruns
 * share the database. */
static char run_tag[ID_MAX];

static const char *pg_uri(void)
{
	static int told;
	const char *uri = getenv("NEXRA_TEST_PG_URI");

	if (!uri || !uri[0]) {
		if (!told++)
			fprintf(stderr, "ledger_pg_*: skipped (NEXRA_TEST_PG_URI not set)\n");
		return NULL;
	}
	if (!run_tag[0] && rand_id(run_tag, "", 4))
		return NULL;
	return uri;
}

/* A migrated store with pool connections, or NULL (message on stderr). */
static struct store *store_new(const char *uri, int pool)
{
	struct store *s = NULL;
	char msg[512] = "";

	if (store_pg_open(uri, pool, &s, msg, sizeof(msg))) {
		fprintf(stderr, "  postgres store: %s\n", msg);
		return NULL;
	}
	if (s->ops->migrate(s)) {
		fprintf(stderr, "  migrate: %s\n", store_last_error());
		s->ops->close(s);
		return NULL;
	}
	return s;
}

/* A fresh org (random id) with its keys; 0 or an error. */
static int org_new(struct store *s, char org_id[ID_MAX])
{
	struct org o = {0};
	struct api_key live, test;
	char a[APIKEY_LEN + 1], b[APIKEY_LEN + 1];

	if (rand_id(o.org_id, "org_", 8))
		return E(INTERNAL);
	snprintf(o.name, sizeof(o.name), "Ledger %s", o.org_id);
	snprintf(o.plan, sizeof(o.plan), "growth");
	o.created_at = T0;
	if (apikey_new_row(o.org_id, KEY_LIVE, "live", T0, &live, a) ||
	    apikey_new_row(o.org_id, KEY_TEST, "test", T0, &test, b))
		return E(INTERNAL);
	snprintf(org_id, ID_MAX, "%s", o.org_id);
	return s->ops->org_create(s, &o, &live, &test);
}

static int agent_new(struct store *s, const char *org_id, const char *agent_id,
		     const char *status, double trust)
{
	struct agent a;
	unsigned char secret[40] = {1, 2, 3};

	memset(&a, 0, sizeof(a));
	snprintf(a.org_id, sizeof(a.org_id), "%s", org_id);
	snprintf(a.agent_id, sizeof(a.agent_id), "%s", agent_id);
	a.name = (char *)"Agent";
	a.description = (char *)"does things";
	snprintf(a.capability_type, sizeof(a.capability_type), "research");
	a.webhook_url = (char *)"https://agent.example/run";
	a.secret_sealed = secret;
	a.secret_sealed_len = sizeof(secret);
	a.per_call_micros = 1000;
	a.p99_latency_ms = 100;
	a.availability = 0.99;
	a.input_schema = (char *)"{}";
	a.output_schema = (char *)"{}";
	snprintf(a.status, sizeof(a.status), "%s", status);
	a.trust_score = trust;
	a.registered_at = a.updated_at = T0;
	return s->ops->agent_insert(s, &a);
}

/* A delegation to open, id "dlg_" + run tag + name: borrowed strings, so
 * no release is needed. */
static void dlg_make(struct delegation *d, const char *org_id, const char *name,
		     const char *callee, int64_t cap, int64_t limit, const char *status)
{
	memset(d, 0, sizeof(*d));
	snprintf(d->rec.delegation_id, sizeof(d->rec.delegation_id), "dlg_%.8s_%.24s", run_tag,
		 name);
	snprintf(d->rec.org_id, sizeof(d->rec.org_id), "%s", org_id);
	snprintf(d->rec.caller_agent_id, sizeof(d->rec.caller_agent_id), "caller");
	snprintf(d->rec.callee_agent_id, sizeof(d->rec.callee_agent_id), "%s",
		 callee ? callee : "");
	snprintf(d->rec.capability, sizeof(d->rec.capability), "research");
	d->rec.budget_cap_micros = cap;
	d->rec.has_trust = callee != NULL;
	d->rec.callee_trust = 0.5;
	snprintf(d->rec.decision, sizeof(d->rec.decision), "%s",
		 !strcmp(status, "blocked") ? "block" : "allow");
	d->rec.created_at = T0;
	snprintf(d->status, sizeof(d->status), "%s", status);
	snprintf(d->key_id, sizeof(d->key_id), "key_0123");
	snprintf(d->task_type, sizeof(d->task_type), "research");
	d->task_input = (char *)"{\"q\":\"it's \\\"quoted\\\"\"}";
	d->context_scope = (char *)"[\"crm\"]";
	d->policy_result = (char *)"{\"decision\":\"allow\"}";
	d->timeout_ms = 30000;
	snprintf(d->period, sizeof(d->period), PERIOD);
	d->budget_limit_micros = limit;
	d->reported_cost_micros = d->llm_tokens = d->latency_ms = -1;
	d->dispatched_at = T0;
	d->expires_at = T0 + 30;
	d->trust_before = d->trust_after = NAN;
}

static void op_open(struct ledger_op *op, struct delegation *d, int64_t now)
{
	memset(op, 0, sizeof(*op));
	op->kind = LEDGER_OPEN;
	op->d = d;
	op->now = now;
}

/* d becomes the settlement of its delegation (status, cost) at now. */
static void op_settle(struct ledger_op *op, struct delegation *d, const char *status,
		      int64_t cost, int64_t now)
{
	memset(op, 0, sizeof(*op));
	op->kind = LEDGER_SETTLE;
	op->d = d;
	snprintf(d->status, sizeof(d->status), "%s", status);
	d->cost_micros = cost;
	d->reported_cost_micros = cost;
	d->llm_tokens = 12;
	d->latency_ms = 340;
	d->result = !strcmp(status, "completed") ? (char *)"{\"answer\":42}" : NULL;
	d->error_message = !strcmp(status, "completed") ? NULL : (char *)"callee said no";
	op->trust_signal = !strcmp(status, "completed") ? 0.9 : 0.0;
	op->trust_alpha = 0.3;
	op->promote_after = 3;
	op->now = now;
}

/* One op alone; its rc. */
static int apply1(struct store *s, struct ledger_op *op)
{
	int rc = s->ops->ledger_apply(s, op, 1);

	return rc ? rc : op->rc;
}

/* A raw connection for checking what the store wrote (NULL on failure). */
static PGconn *raw_open(const char *uri)
{
	PGconn *c = PQconnectdb(uri);

	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "  raw connection: %s", PQerrorMessage(c));
		PQfinish(c);
		return NULL;
	}
	return c;
}

/* The first column of the first row of sql with $1 = a, $2 = b (NULL:
 * fewer parameters), as an integer; -999 when it fails or finds nothing. */
static long long raw_i64(PGconn *c, const char *sql, const char *a, const char *b)
{
	const char *v[2] = {a, b};
	PGresult *r = PQexecParams(c, sql, b ? 2 : a ? 1 : 0, NULL, v, NULL, NULL, 0);
	long long x = -999;

	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0))
		x = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	else if (PQresultStatus(r) != PGRES_TUPLES_OK)
		fprintf(stderr, "  raw query: %s", PQresultErrorMessage(r));
	PQclear(r);
	return x;
}

/* 1 if the org's audit event ids are exactly 1..n, each once, and the org's
 * counter says n. */
static int audit_is_1_to_n(PGconn *c, const char *org_id, long long n)
{
	long long cnt = raw_i64(c, "SELECT count(*) FROM audit_log WHERE org_id = $1", org_id, NULL);
	long long dist = raw_i64(c, "SELECT count(DISTINCT event_id) FROM audit_log WHERE org_id = $1",
				 org_id, NULL);
	long long lo = raw_i64(c, "SELECT min(event_id) FROM audit_log WHERE org_id = $1", org_id, NULL);
	long long hi = raw_i64(c, "SELECT max(event_id) FROM audit_log WHERE org_id = $1", org_id, NULL);
	long long seq = raw_i64(c, "SELECT audit_seq FROM orgs WHERE org_id = $1", org_id, NULL);

	if (cnt == n && dist == n && (n == 0 || (lo == 1 && hi == n)) && seq == n)
		return 1;
	fprintf(stderr, "  audit of %s: count %lld distinct %lld min %lld max %lld seq %lld, want %lld\n",
		org_id, cnt, dist, lo, hi, seq, n);
	return 0;
}

/* What every test starts from: a migrated store, a raw connection for
 * checking what it wrote, and a fresh org. */
struct fx {
	const char *uri;
	struct store *s;
	PGconn *raw;
	char org[ID_MAX];
};

/* f opened, its store with pool connections; 0, or -1 with a message on
 * stderr. Only once pg_uri() has found a database. */
static int fx_open(struct fx *f, int pool)
{
	int rc;

	memset(f, 0, sizeof(*f));
	f->uri = pg_uri();
	f->s = store_new(f->uri, pool);
	f->raw = raw_open(f->uri);
	if (!f->s || !f->raw)
		return -1;
	rc = org_new(f->s, f->org);
	if (rc)
		fprintf(stderr, "  org: %d %s\n", rc, store_last_error());
	return rc ? -1 : 0;
}

static void fx_close(struct fx *f)
{
	PQfinish(f->raw);
	if (f->s)
		f->s->ops->close(f->s);
}

struct rows {
	int n;
	char id[16][ID_MAX];
};

static int collect(void *ctx, const struct delegation *d)
{
	struct rows *r = ctx;

	if (r->n < 16)
		snprintf(r->id[r->n++], ID_MAX, "%s", d->rec.delegation_id);
	return 0;
}

/* ---- the operations on this backend ------------------------------------------ */

TEST(ledger_pg_open_settle_round_trip)
{
	struct fx pg;
	struct delegation d, g, st;
	struct ledger_op op;
	struct agent a;
	int64_t spent = -1, held = -1;
	double want;

	if (!pg_uri())
		return;
	ASSERT_EQ(fx_open(&pg, 2), 0);
	ASSERT_EQ(agent_new(pg.s, pg.org, "callee", "probationary", 0.1), 0);

	dlg_make(&d, pg.org, "rt1", "callee", 400000, 1000000, "dispatched");
	d.callback_url = (char *)"https://caller.example/cb";
	snprintf(d.policy_ref, sizeof(d.policy_ref), "caps \xe2\x80\x94 'strict'");
	snprintf(d.rec.policy_id, sizeof(d.rec.policy_id), "pol_1");
	d.rec.policy_version = 3;
	d.rec.callee_trust = 0.1 + 0.2; /* not exactly representable in decimal */
	op_open(&op, &d, T0);
	ASSERT_EQ(apply1(pg.s, &op), 0);
	ASSERT_EQ(op.idem, IDEM_NEW);
	ASSERT_STR_EQ(d.status, "dispatched");
	ASSERT_EQ(d.hold_micros, 400000);
	ASSERT_EQ(d.budget_remaining_micros, 600000);
	ASSERT_EQ(d.audit_event, 0);
	ASSERT(isnan(d.trust_before) && isnan(d.trust_after));
	ASSERT_EQ(pg.s->ops->budget_get(pg.s, pg.org, PERIOD, &spent, &held), 0);
	ASSERT_EQ(spent, 0);
	ASSERT_EQ(held, 400000);
	ASSERT_EQ(pg.s->ops->budget_get(pg.s, pg.org, "1999-01", &spent, &held), 0);
	ASSERT_EQ(spent + held, 0);

	ASSERT_EQ(pg.s->ops->delegation_get(pg.s, pg.org, d.rec.delegation_id, &g), 0);
	ASSERT_STR_EQ(g.rec.callee_agent_id, "callee");
	ASSERT(g.rec.has_trust && g.rec.callee_trust == 0.1 + 0.2);
	ASSERT_STR_EQ(g.rec.policy_id, "pol_1");
	ASSERT_EQ(g.rec.policy_version, 3);
	ASSERT_STR_EQ(g.status, "dispatched");
	ASSERT_STR_EQ(g.key_id, "key_0123");
	ASSERT_STR_EQ(g.task_input, d.task_input);
	ASSERT_STR_EQ(g.context_scope, "[\"crm\"]");
	ASSERT_STR_EQ(g.policy_result, d.policy_result);
	ASSERT_STR_EQ(g.policy_ref, d.policy_ref);
	ASSERT_STR_EQ(g.callback_url, "https://caller.example/cb");
	ASSERT_STR_EQ(g.period, PERIOD);
	ASSERT_EQ(g.hold_micros, 400000);
	ASSERT_EQ(g.budget_limit_micros, 1000000);
	ASSERT(!g.result && !g.error_message);
	ASSERT_EQ(g.reported_cost_micros, -1);
	ASSERT_EQ(g.expires_at, T0 + 30);
	ASSERT(isnan(g.trust_before));
	delegation_release(&g);

	/* settle: cost charged, the rest released, trust exact to the bit */
	st = d;
	op_settle(&op, &st, "completed", 250000, T0 + 5);
	op.promote_after = 1;
	ASSERT_EQ(apply1(pg.s, &op), 0);
	want = 0.1 + 0.3 * (0.9 - 0.1);
	ASSERT_EQ(st.audit_event, 1);
	ASSERT_EQ(st.budget_remaining_micros, 750000);
	ASSERT(st.trust_before == 0.1);
	ASSERT(st.trust_after == want);
	ASSERT_EQ(st.settled_at, T0 + 5);
	ASSERT_EQ(st.hold_micros, 0);
	ASSERT_EQ(pg.s->ops->budget_get(pg.s, pg.org, PERIOD, &spent, &held), 0);
	ASSERT_EQ(spent, 250000);
	ASSERT_EQ(held, 0);
	ASSERT_EQ(pg.s->ops->agent_get(pg.s, pg.org, "callee", &a), 0);
	ASSERT(a.trust_score == want);
	ASSERT_STR_EQ(a.status, "active"); /* promote_after 1 */
	agent_release(&a);
	ASSERT_EQ(pg.s->ops->delegation_get(pg.s, pg.org, d.rec.delegation_id, &g), 0);
	ASSERT_STR_EQ(g.status, "completed");
	ASSERT_EQ(g.cost_micros, 250000);
	ASSERT_EQ(g.hold_micros, 0);
	ASSERT_STR_EQ(g.result, "{\"answer\":42}");
	ASSERT_EQ(g.audit_event, 1);
	ASSERT(g.trust_after == want);
	ASSERT_EQ(g.settled_at, T0 + 5);
	delegation_release(&g);

	/* settled already, unknown, another org's */
	op_settle(&op, &st, "failed", 0, T0 + 6);
	ASSERT_EQ(apply1(pg.s, &op), E(CONFLICT));
	snprintf(st.rec.delegation_id, sizeof(st.rec.delegation_id), "dlg_nope");
	ASSERT_EQ(apply1(pg.s, &op), E(NOT_FOUND));
	snprintf(st.rec.delegation_id, sizeof(st.rec.delegation_id), "%s", d.rec.delegation_id);
	snprintf(st.rec.org_id, sizeof(st.rec.org_id), "org_other");
	ASSERT_EQ(apply1(pg.s, &op), E(NOT_FOUND));
	ASSERT_EQ(pg.s->ops->delegation_get(pg.s, "org_other", d.rec.delegation_id, &g),
		  E(NOT_FOUND));
	fx_close(&pg);
}

TEST(ledger_pg_batch_ops_fail_alone)
{
	struct fx pg;
	struct delegation d[6], bogus;
	struct ledger_op op[6];
	int64_t spent, held;

	if (!pg_uri())
		return;
	/* one connection: every batch on the same session */
	ASSERT_EQ(fx_open(&pg, 1), 0);
	ASSERT_EQ(agent_new(pg.s, pg.org, "callee", "active", 0.5), 0);
	dlg_make(&d[0], pg.org, "b0", "callee", 100, 1000, "dispatched");
	dlg_make(&d[1], pg.org, "b0", "callee", 100, 1000, "dispatched"); /* same id */
	dlg_make(&d[2], pg.org, "b2", NULL, 100, 1000, "blocked");        /* audit 1 */
	dlg_make(&d[3], pg.org, "b3", "callee", 100, 1000, "completed");  /* not openable */
	dlg_make(&d[4], pg.org, "b4", "callee", 2000, 1000, "dispatched"); /* too big: audit 2 */
	dlg_make(&d[5], pg.org, "b5", "callee", 900, 1000, "pending_approval");
	for (int i = 0; i < 6; i++)
		op_open(&op[i], &d[i], T0 + 1);
	ASSERT_EQ(pg.s->ops->ledger_apply(pg.s, op, 6), 0);
	ASSERT_EQ(op[0].rc, 0);
	ASSERT_EQ(op[1].rc, E(CONFLICT));
	ASSERT_EQ(op[2].rc, 0);
	ASSERT_STR_EQ(d[2].status, "blocked");
	ASSERT_EQ(d[2].audit_event, 1);
	ASSERT_EQ(d[2].settled_at, T0 + 1);
	ASSERT(isnan(d[2].trust_before)); /* no callee */
	ASSERT_EQ(op[3].rc, E(INTERNAL));
	ASSERT_CONTAINS(store_last_error(), "completed");
	ASSERT_EQ(op[4].rc, 0);
	ASSERT_EQ(op[4].budget_refused, 1);
	ASSERT_STR_EQ(d[4].status, "blocked");
	ASSERT_STR_EQ(d[4].error_code, "BUDGET_EXCEEDED");
	ASSERT_EQ(d[4].hold_micros, 0);
	ASSERT_EQ(d[4].audit_event, 2);
	ASSERT(d[4].trust_before == 0.5 && d[4].trust_after == 0.5);
	ASSERT_EQ(d[4].budget_remaining_micros, 900); /* d[0]'s hold only */
	ASSERT_EQ(op[5].rc, 0);
	ASSERT_STR_EQ(d[5].status, "pending_approval");
	ASSERT_EQ(d[5].hold_micros, 900);
	ASSERT_EQ(d[5].budget_remaining_micros, 0);
	ASSERT_EQ(pg.s->ops->budget_get(pg.s, pg.org, PERIOD, &spent, &held), 0);
	ASSERT_EQ(held, 1000);
	ASSERT(audit_is_1_to_n(pg.raw, pg.org, 2));

	/* the session is clean for the next batch; a failed settle takes
	 * back its audit id: the next one is 3 */
	op_settle(&op[0], &d[0], "failed", 0, T0 + 2);
	op_settle(&op[1], &d[3], "completed", 0, T0 + 2); /* never opened */
	bogus = d[5];
	op_settle(&op[2], &bogus, "bogus", 0, T0 + 2);
	op_settle(&op[3], &d[5], "blocked", 0, T0 + 2);   /* approval refused */
	ASSERT_EQ(pg.s->ops->ledger_apply(pg.s, op, 4), 0);
	ASSERT_EQ(op[0].rc, 0);
	ASSERT_EQ(d[0].audit_event, 3);
	ASSERT(d[0].trust_after == 0.5 + 0.3 * (0.0 - 0.5));
	ASSERT_EQ(op[1].rc, E(NOT_FOUND));
	ASSERT_EQ(op[2].rc, E(INTERNAL));
	ASSERT_EQ(op[3].rc, 0);
	ASSERT_EQ(d[5].audit_event, 4);
	ASSERT(d[5].trust_before == d[0].trust_after && d[5].trust_after == d[0].trust_after);
	ASSERT_EQ(d[5].budget_remaining_micros, 1000);
	ASSERT_EQ(pg.s->ops->budget_get(pg.s, pg.org, PERIOD, &spent, &held), 0);
	ASSERT_EQ(spent + held, 0);
	ASSERT(audit_is_1_to_n(pg.raw, pg.org, 4));
	ASSERT_EQ(raw_i64(pg.raw, "SELECT count(*) FROM audit_log WHERE org_id = $1 "
				  "AND decision = 'BLOCK'", pg.org, NULL), 3);
	ASSERT_EQ(raw_i64(pg.raw, "SELECT settled_count FROM agents WHERE org_id = $1 "
				  "AND agent_id = $2", pg.org, "callee"), 1);
	ASSERT_EQ(raw_i64(pg.raw, "SELECT count(*) FROM billing_events WHERE org_id = $1", pg.org,
			  NULL), 0);
	fx_close(&pg);
}

TEST(ledger_pg_idempotency_billing_circuit)
{
	struct fx pg;
	struct delegation d, e, g, f[3];
	struct ledger_op op;
	struct agent a;
	char bill[ID_MAX + 8];

	if (!pg_uri())
		return;
	ASSERT_EQ(fx_open(&pg, 2), 0);
	ASSERT_EQ(agent_new(pg.s, pg.org, "callee", "active", 0.5), 0);

	dlg_make(&d, pg.org, "i1", "callee", 100, -1, "dispatched");
	op_open(&op, &d, T0);
	op.idem_key = "key-1";
	memset(op.idem_hash, 7, sizeof(op.idem_hash));
	ASSERT_EQ(apply1(pg.s, &op), 0);
	ASSERT_EQ(op.idem, IDEM_NEW);
	ASSERT_EQ(d.budget_remaining_micros, -1);
	dlg_make(&e, pg.org, "i2", "callee", 100, -1, "dispatched");
	op.d = &e;
	op.now = T0 + 86399;
	ASSERT_EQ(apply1(pg.s, &op), 0);
	ASSERT_EQ(op.idem, IDEM_EXISTING);
	ASSERT_STR_EQ(op.idem_delegation_id, d.rec.delegation_id);
	ASSERT_EQ(e.hold_micros, 0); /* untouched */
	op.idem_hash[0] = 8;
	ASSERT_EQ(apply1(pg.s, &op), 0);
	ASSERT_EQ(op.idem, IDEM_MISMATCH);
	ASSERT_EQ(pg.s->ops->delegation_get(pg.s, pg.org, e.rec.delegation_id, &g), E(NOT_FOUND));
	op.now = T0 + 86400; /* a day later the key is free again */
	ASSERT_EQ(apply1(pg.s, &op), 0);
	ASSERT_EQ(op.idem, IDEM_NEW);
	ASSERT_EQ(raw_i64(pg.raw, "SELECT count(*) FROM delegations WHERE org_id = $1", pg.org,
			  NULL), 2);

	/* billing: one pending row per completed delegation, at its cost */
	op_settle(&op, &d, "completed", 60, T0 + 10);
	ASSERT_EQ(apply1(pg.s, &op), 0);
	snprintf(bill, sizeof(bill), "bill_%s", d.rec.delegation_id);
	ASSERT_EQ(raw_i64(pg.raw, "SELECT amount_micros FROM billing_events WHERE billing_id = $1",
			  bill, NULL), 60);
	ASSERT_EQ(raw_i64(pg.raw, "SELECT count(*) FROM billing_events WHERE org_id = $1 "
				  "AND state = 'pending' AND next_attempt_at = $2",
			  pg.org, "1700000010"), 1);

	/* circuit breaker: the second failure within the window pauses */
	for (int i = 0; i < 3; i++) {
		char id[32];

		snprintf(id, sizeof(id), "f%d", i);
		dlg_make(&f[i], pg.org, id, "callee", 10, -1, "dispatched");
		op_open(&op, &f[i], T0);
		ASSERT_EQ(apply1(pg.s, &op), 0);
	}
	op_settle(&op, &f[0], "failed", 0, T0 + 100);
	op.cb_max_failures = 2;
	op.cb_window_seconds = 60;
	ASSERT_EQ(apply1(pg.s, &op), 0);
	ASSERT_EQ(op.circuit_opened, 0);
	op_settle(&op, &f[1], "timed_out", 0, T0 + 161); /* f0 is out of the window */
	op.cb_max_failures = 2;
	op.cb_window_seconds = 60;
	ASSERT_EQ(apply1(pg.s, &op), 0);
	ASSERT_EQ(op.circuit_opened, 0);
	op_settle(&op, &f[2], "failed", 0, T0 + 170);
	op.cb_max_failures = 2;
	op.cb_window_seconds = 60;
	ASSERT_EQ(apply1(pg.s, &op), 0);
	ASSERT_EQ(op.circuit_opened, 1);
	ASSERT_EQ(pg.s->ops->agent_get(pg.s, pg.org, "callee", &a), 0);
	ASSERT_STR_EQ(a.status, "paused");
	/* three failures in a row demoted it first (TRUST_DEMOTE_AFTER) */
	ASSERT_STR_EQ(a.prior_status, "probationary");
	ASSERT_EQ(a.updated_at, T0 + 170);
	agent_release(&a);
	fx_close(&pg);
}

/* The rows of r that are among ids[0..n): their positions in r, in order
 * of r, into pos (-1 padding). */
static void find_ids(const struct rows *r, const char *const *ids, int n, int pos[])
{
	int k = 0;

	for (int i = 0; i < n; i++)
		pos[i] = -1;
	for (int i = 0; i < r->n; i++)
		for (int j = 0; j < n; j++)
			if (!strcmp(r->id[i], ids[j]) && k < n)
				pos[k++] = j;
}

TEST(ledger_pg_list_and_overdue)
{
	struct fx pg;
	struct delegation d[5];
	struct ledger_op op[5];
	struct delegation_filter f = {0};
	struct rows r;
	char other[ID_MAX];
	const char *ids[5];
	int pos[5];
	/* overdue rows of earlier runs stay in the database: this run's
	 * expiries come before all of theirs */
	int64_t base = -(int64_t)time(NULL) * 100;

	if (!pg_uri())
		return;
	ASSERT_EQ(fx_open(&pg, 2), 0);
	ASSERT_EQ(org_new(pg.s, other), 0);
	for (int i = 0; i < 4; i++) {
		char id[32];

		snprintf(id, sizeof(id), "l%d", i);
		dlg_make(&d[i], pg.org, id, i % 2 ? "beta" : "alpha", 1, -1,
			 i == 3 ? "blocked" : "dispatched");
		d[i].rec.created_at = T0 + (i < 2 ? 10 : 20); /* 0, 1 tie on time */
		d[i].expires_at = base + 10 - i;
		op_open(&op[i], &d[i], T0 + 20);
		ids[i] = d[i].rec.delegation_id;
	}
	/* an overdue one of another org */
	dlg_make(&d[4], other, "lx", NULL, 1, -1, "dispatched");
	d[4].expires_at = base + 5;
	ids[4] = d[4].rec.delegation_id;
	ASSERT_EQ(pg.s->ops->ledger_apply(pg.s, op, 4), 0);
	op_open(&op[4], &d[4], T0);
	ASSERT_EQ(apply1(pg.s, &op[4]), 0);

	f.org_id = pg.org;
	f.from = 0;
	f.to = INT64_MAX;
	memset(&r, 0, sizeof(r));
	ASSERT_EQ(pg.s->ops->delegation_list(pg.s, &f, -1, 0, collect, &r), 0);
	ASSERT_EQ(r.n, 4);
	ASSERT_STR_EQ(r.id[0], ids[3]); /* newest first, ties by id, descending */
	ASSERT_STR_EQ(r.id[1], ids[2]);
	ASSERT_STR_EQ(r.id[2], ids[1]);
	ASSERT_STR_EQ(r.id[3], ids[0]);
	f.agent_id = "beta"; /* the callee of 1 and 3 */
	memset(&r, 0, sizeof(r));
	ASSERT_EQ(pg.s->ops->delegation_list(pg.s, &f, 10, 0, collect, &r), 0);
	ASSERT_EQ(r.n, 2);
	f.agent_id = "caller"; /* the caller of all */
	f.status = "blocked";
	memset(&r, 0, sizeof(r));
	ASSERT_EQ(pg.s->ops->delegation_list(pg.s, &f, 10, 0, collect, &r), 0);
	ASSERT_EQ(r.n, 1);
	ASSERT_STR_EQ(r.id[0], ids[3]);
	f.status = NULL;
	f.from = T0 + 10;
	f.to = T0 + 20;
	memset(&r, 0, sizeof(r));
	ASSERT_EQ(pg.s->ops->delegation_list(pg.s, &f, 1, 1, collect, &r), 0);
	ASSERT_EQ(r.n, 1);
	ASSERT_STR_EQ(r.id[0], ids[0]);

	/* overdue: dispatched, expires_at < before, any org, oldest first */
	memset(&r, 0, sizeof(r));
	ASSERT_EQ(pg.s->ops->delegation_overdue(pg.s, base + 11, 0, 16, collect, &r), 0);
	ASSERT_EQ(r.n, 4);
	find_ids(&r, ids, 5, pos);
	ASSERT_EQ(pos[0], 4); /* base + 5, the other org's */
	ASSERT_EQ(pos[1], 2); /* base + 8 */
	ASSERT_EQ(pos[2], 1);
	ASSERT_EQ(pos[3], 0); /* base + 10; 3 is blocked */
	memset(&r, 0, sizeof(r));
	ASSERT_EQ(pg.s->ops->delegation_overdue(pg.s, base + 5, 0, 16, collect, &r), 0);
	ASSERT_EQ(r.n, 0); /* strictly before */
	memset(&r, 0, sizeof(r));
	ASSERT_EQ(pg.s->ops->delegation_overdue(pg.s, base + 11, 0, 2, collect, &r), 0);
	ASSERT_EQ(r.n, 2);

	/* the sweeper's part: expire them; they leave the overdue list */
	for (int i = 0; i < 5; i++) {
		if (i == 3)
			continue;
		op_settle(&op[0], &d[i], "expired", 0, T0 + 40);
		ASSERT_EQ(apply1(pg.s, &op[0]), 0);
		ASSERT(isnan(d[i].trust_before) && isnan(d[i].trust_after)); /* no such agents */
	}
	memset(&r, 0, sizeof(r));
	ASSERT_EQ(pg.s->ops->delegation_overdue(pg.s, base + 11, 0, 16, collect, &r), 0);
	ASSERT_EQ(r.n, 0);
	fx_close(&pg);
}

/* ---- racing stores ----------------------------------------------------------- */

struct racer;

/* What a racer does, on a store of its own. */
typedef void racer_fn(struct racer *r, struct store *s);

struct racer {
	pthread_t t;
	racer_fn *fn;
	const char *uri;
	const char *org;
	int index;
	int n;                  /* delegations this racer opens */
	struct delegation *d;   /* n of them */
	int *won;               /* shared per-delegation win counters (settle race) */
	int nshared;
	struct delegation *shared;
	pthread_mutex_t *mu;
	int opened, refused, settled, errors;
	int64_t charged;
	int rc, idem;           /* idempotency race: the open's rc and outcome, */
	char got[ID_MAX];       /* and the delegation it names */
	char err[200];
};

static void racer_fail(struct racer *r, int rc, const char *what)
{
	r->errors++;
	snprintf(r->err, sizeof(r->err), "%s: %d %s", what, rc, store_last_error());
}

/* A racer's thread: its own store (its own connection, as a separate
 * process would have), r->fn on it, the store closed. */
static void *racer_main(void *arg)
{
	struct racer *r = arg;
	struct store *s = store_new(r->uri, 1);

	if (!s) {
		racer_fail(r, -1, "open store");
		return NULL;
	}
	r->fn(r, s);
	s->ops->close(s);
	return NULL;
}

/*
 * RACERS racers on pg's database and org, each a copy of like with its own
 * index and, when like->d is set, its like->n delegations from
 * like->d + index * like->n; started together, all joined, their counters
 * added up into sum. Returns the racers' errors (each racer's said on
 * stderr), or -1 when one could not be started. Every started racer is
 * joined before this returns: a failed ASSERT returns from the test, and
 * racers still running would write into its frame.
 */
static int races_run(const struct fx *pg, struct racer r[RACERS], const struct racer *like,
		     struct racer *sum)
{
	int started;

	memset(sum, 0, sizeof(*sum));
	for (started = 0; started < RACERS; started++) {
		struct racer *x = &r[started];

		*x = *like;
		x->uri = pg->uri;
		x->org = pg->org;
		x->index = started;
		if (like->d)
			x->d = like->d + started * like->n;
		if (pthread_create(&x->t, NULL, racer_main, x))
			break;
	}
	for (int t = 0; t < started; t++) {
		pthread_join(r[t].t, NULL);
		if (r[t].errors)
			fprintf(stderr, "  racer %d: %d errors, last %s\n", t, r[t].errors,
				r[t].err);
		sum->opened += r[t].opened;
		sum->refused += r[t].refused;
		sum->settled += r[t].settled;
		sum->errors += r[t].errors;
		sum->charged += r[t].charged;
	}
	if (started < RACERS) {
		fprintf(stderr, "  racer %d: pthread_create failed\n", started);
		return -1;
	}
	return sum->errors;
}

/* per delegations for each racer from d + t * per, racer t's i-th named
 * "<tag><t>_<i>": dispatched, in org, to callee (NULL: none), with cap
 * and the org's limit. */
static void racers_deal(struct delegation *d, int per, const char *tag, const char *org,
			const char *callee, int64_t cap, int64_t limit)
{
	for (int t = 0; t < RACERS; t++)
		for (int i = 0; i < per; i++) {
			char id[ID_MAX];

			snprintf(id, sizeof(id), "%s%d_%d", tag, t, i);
			dlg_make(&d[t * per + i], org, id, callee, cap, limit, "dispatched");
		}
}

/* Open r->n delegations in batches of 1..4, then settle the dispatched ones
 * (completed, each charged a little less than its hold). */
static void race_open_settle(struct racer *r, struct store *s)
{
	struct ledger_op op[4];
	int i = 0, rc;

	while (i < r->n) {
		int k = 1 + (i + r->index) % 4;

		if (k > r->n - i)
			k = r->n - i;
		for (int j = 0; j < k; j++)
			op_open(&op[j], &r->d[i + j], T0 + 1);
		rc = s->ops->ledger_apply(s, op, (size_t)k);
		for (int j = 0; j < k; j++) {
			if (rc || op[j].rc)
				racer_fail(r, rc ? rc : op[j].rc, "open");
			else if (op[j].budget_refused)
				r->refused++;
			else
				r->opened++;
		}
		i += k;
	}
	for (i = 0; i < r->n; i++) {
		struct delegation *d = &r->d[i];
		int64_t cost = d->rec.budget_cap_micros - (i % 3);

		if (strcmp(d->status, "dispatched"))
			continue;
		op_settle(&op[0], d, "completed", cost, T0 + 2);
		rc = apply1(s, &op[0]);
		if (rc)
			racer_fail(r, rc, "settle");
		else {
			r->settled++;
			r->charged += cost;
		}
	}
}

TEST(ledger_pg_race_holds_never_pass_the_budget)
{
	enum { PER = 12, K = 29, CAP = 1000 };
	static struct delegation d[RACERS * PER];
	struct racer r[RACERS], sum, like = {.fn = race_open_settle, .d = d, .n = PER};
	struct fx pg;
	int64_t spent = -1, held = -1;

	if (!pg_uri())
		return;
	ASSERT_EQ(fx_open(&pg, 1), 0);
	ASSERT_EQ(agent_new(pg.s, pg.org, "callee", "probationary", 0.5), 0);
	racers_deal(d, PER, "h", pg.org, "callee", CAP, (int64_t)K * CAP);
	ASSERT_EQ(races_run(&pg, r, &like, &sum), 0);
	/* exactly K holds fit, whoever got them */
	ASSERT_EQ(sum.opened, K);
	ASSERT_EQ(sum.refused, RACERS * PER - K);
	ASSERT_EQ(sum.settled, K);
	ASSERT_EQ(pg.s->ops->budget_get(pg.s, pg.org, PERIOD, &spent, &held), 0);
	ASSERT_EQ(held, 0);
	ASSERT_EQ(spent, sum.charged);
	ASSERT(spent <= (int64_t)K * CAP);
	/* one audit entry per refused open and per settle, ids 1..N */
	ASSERT(audit_is_1_to_n(pg.raw, pg.org, RACERS * PER));
	ASSERT_EQ(raw_i64(pg.raw, "SELECT count(*) FROM delegations WHERE org_id = $1 "
				  "AND error_code = 'BUDGET_EXCEEDED' AND status = 'blocked'",
			  pg.org, NULL),
		  RACERS * PER - K);
	ASSERT_EQ(raw_i64(pg.raw, "SELECT completed_count FROM agents WHERE org_id = $1 "
				  "AND agent_id = $2", pg.org, "callee"), K);
	ASSERT_EQ(raw_i64(pg.raw, "SELECT count(*) FROM billing_events WHERE org_id = $1", pg.org,
			  NULL),
		  K);
	fx_close(&pg);
}

/* Watch holds while racers open: spent + held of the org must never pass
 * the limit at any instant another connection can see. */
struct watcher {
	pthread_t t;
	const char *uri;
	const char *org;
	int64_t limit;
	volatile int stop;
	int64_t worst; /* the largest spent + held seen */
	int samples;
};

static void *watch_budget(void *arg)
{
	struct watcher *w = arg;
	PGconn *c = raw_open(w->uri);

	while (c && !w->stop) {
		long long x = raw_i64(c, "SELECT spent_micros + held_micros FROM budget_periods "
					 "WHERE org_id = $1 AND period = '" PERIOD "'",
				      w->org, NULL);

		if (x > w->worst)
			w->worst = x;
		w->samples++;
	}
	PQfinish(c);
	return NULL;
}

TEST(ledger_pg_race_budget_watched_from_outside)
{
	enum { PER = 10, K = 17, CAP = 777 };
	static struct delegation d[RACERS * PER];
	struct racer r[RACERS], sum, like = {.fn = race_open_settle, .d = d, .n = PER};
	struct watcher w = {0};
	struct fx pg;
	int errors;

	if (!pg_uri())
		return;
	ASSERT_EQ(fx_open(&pg, 1), 0);
	w.uri = pg.uri;
	w.org = pg.org;
	w.limit = (int64_t)K * CAP;
	ASSERT_EQ(pthread_create(&w.t, NULL, watch_budget, &w), 0);
	racers_deal(d, PER, "w", pg.org, NULL, CAP, w.limit);
	errors = races_run(&pg, r, &like, &sum);
	w.stop = 1;
	pthread_join(w.t, NULL);
	ASSERT_EQ(errors, 0);
	ASSERT_EQ(sum.opened, K);
	ASSERT(w.samples > 0);
	ASSERT(w.worst <= w.limit);
	fx_close(&pg);
}

/* Settle every shared delegation, in an order of this racer's own, in
 * batches of 1..3; count the wins. */
static void race_settle_all(struct racer *r, struct store *s)
{
	struct delegation mine[3];
	struct ledger_op op[3];
	int idx[3], i = 0, rc;

	while (i < r->nshared) {
		int k = 1 + (i + r->index) % 3;

		if (k > r->nshared - i)
			k = r->nshared - i;
		for (int j = 0; j < k; j++) {
			/* racer t walks the list from a different start */
			idx[j] = (i + j + r->index * 7) % r->nshared;
			mine[j] = r->shared[idx[j]];
			op_settle(&op[j], &mine[j], j % 2 ? "failed" : "completed", 10, T0 + 3);
		}
		rc = s->ops->ledger_apply(s, op, (size_t)k);
		for (int j = 0; j < k; j++) {
			if (rc) {
				racer_fail(r, rc, "batch");
			} else if (op[j].rc == 0) {
				pthread_mutex_lock(r->mu);
				r->won[idx[j]]++;
				pthread_mutex_unlock(r->mu);
				r->settled++;
				r->charged += mine[j].cost_micros;
			} else if (op[j].rc != E(CONFLICT)) {
				racer_fail(r, op[j].rc, "settle");
			}
		}
		i += k;
	}
}

TEST(ledger_pg_race_one_settle_wins)
{
	enum { N = 40 };
	static struct delegation d[N];
	struct ledger_op op[N];
	int won[N] = {0};
	pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	struct racer r[RACERS], sum, like = {
		.fn = race_settle_all, .shared = d, .nshared = N, .won = won, .mu = &mu};
	struct fx pg;
	int64_t spent = -1, held = -1;

	if (!pg_uri())
		return;
	ASSERT_EQ(fx_open(&pg, 1), 0);
	ASSERT_EQ(agent_new(pg.s, pg.org, "callee", "active", 0.5), 0);
	for (int i = 0; i < N; i++) {
		char id[ID_MAX];

		snprintf(id, sizeof(id), "s%d", i);
		dlg_make(&d[i], pg.org, id, "callee", 50, -1, "dispatched");
		op_open(&op[i], &d[i], T0);
	}
	ASSERT_EQ(pg.s->ops->ledger_apply(pg.s, op, N), 0);
	for (int i = 0; i < N; i++)
		ASSERT_EQ(op[i].rc, 0);
	ASSERT_EQ(races_run(&pg, r, &like, &sum), 0);
	for (int i = 0; i < N; i++)
		ASSERT_EQ(won[i], 1);
	ASSERT_EQ(sum.settled, N);
	ASSERT_EQ(pg.s->ops->budget_get(pg.s, pg.org, PERIOD, &spent, &held), 0);
	ASSERT_EQ(held, 0);
	ASSERT_EQ(spent, sum.charged);
	ASSERT(audit_is_1_to_n(pg.raw, pg.org, N));
	ASSERT_EQ(raw_i64(pg.raw, "SELECT settled_count FROM agents WHERE org_id = $1 "
				  "AND agent_id = $2", pg.org, "callee"), N);
	ASSERT_EQ(raw_i64(pg.raw, "SELECT count(*) FROM delegations WHERE org_id = $1 "
				  "AND status IN ('completed', 'failed') AND hold_micros = 0",
			  pg.org, NULL), N);
	fx_close(&pg);
}

/* Racers with batches that span two orgs, half of them in the opposite op
 * order (a deadlock unless batches lock their orgs in one order; one that
 * happened anyway would be retried), with failing ops mixed in; every
 * batch commits and audit ids of both orgs stay 1..N. */
static void race_two_orgs(struct racer *r, struct store *s)
{
	struct ledger_op op[4];
	struct delegation ghost, again;
	int rc;

	/* r->d holds pairs (org A, org B); odd racers take B first */
	for (int i = 0; i + 1 < r->n; i += 2) {
		struct delegation *x = &r->d[i + (r->index & 1)];
		struct delegation *y = &r->d[i + 1 - (r->index & 1)];

		op_open(&op[0], x, T0);
		op_open(&op[1], y, T0);
		rc = s->ops->ledger_apply(s, op, 2);
		if (rc || op[0].rc || op[1].rc)
			racer_fail(r, rc ? rc : op[0].rc ? op[0].rc : op[1].rc, "open pair");
		ghost = again = *x;
		snprintf(ghost.rec.delegation_id, sizeof(ghost.rec.delegation_id), "dlg_ghost");
		op_settle(&op[0], x, "completed", 5, T0 + 1);
		op_settle(&op[1], &ghost, "completed", 5, T0 + 1); /* NOT_FOUND: no trace */
		op_settle(&op[2], y, "timed_out", 0, T0 + 1);
		op_settle(&op[3], &again, "failed", 0, T0 + 1);    /* CONFLICT: settled above */
		rc = s->ops->ledger_apply(s, op, 4);
		if (rc || op[0].rc || op[1].rc != E(NOT_FOUND) || op[2].rc ||
		    op[3].rc != E(CONFLICT))
			racer_fail(r, rc ? rc : op[0].rc ? op[0].rc : op[2].rc, "settle pair");
		else
			r->settled += 2;
	}
}

TEST(ledger_pg_race_audit_ids_gapless_across_orgs)
{
	enum { PAIRS = 10 };
	static struct delegation d[RACERS * 2 * PAIRS];
	struct racer r[RACERS], sum, like = {.fn = race_two_orgs, .d = d, .n = 2 * PAIRS};
	struct fx pg;
	char b[ID_MAX];
	int64_t spent, held;

	if (!pg_uri())
		return;
	ASSERT_EQ(fx_open(&pg, 1), 0); /* org A is pg.org */
	ASSERT_EQ(org_new(pg.s, b), 0);
	ASSERT_EQ(agent_new(pg.s, pg.org, "callee", "active", 0.5), 0);
	ASSERT_EQ(agent_new(pg.s, b, "callee", "active", 0.5), 0);
	racers_deal(d, 2 * PAIRS, "g", pg.org, "callee", 5, 1000000);
	for (int i = 1; i < RACERS * 2 * PAIRS; i += 2) /* every racer's odd ones in B */
		snprintf(d[i].rec.org_id, sizeof(d[i].rec.org_id), "%s", b);
	ASSERT_EQ(races_run(&pg, r, &like, &sum), 0);
	ASSERT_EQ(sum.settled, RACERS * 2 * PAIRS);
	ASSERT(audit_is_1_to_n(pg.raw, pg.org, RACERS * PAIRS));
	ASSERT(audit_is_1_to_n(pg.raw, b, RACERS * PAIRS));
	/* even racers complete in A and time out in B, odd ones the reverse */
	ASSERT_EQ(pg.s->ops->budget_get(pg.s, pg.org, PERIOD, &spent, &held), 0);
	ASSERT_EQ(held, 0);
	ASSERT_EQ(spent, 5 * PAIRS * (RACERS / 2));
	ASSERT_EQ(pg.s->ops->budget_get(pg.s, b, PERIOD, &spent, &held), 0);
	ASSERT_EQ(held, 0);
	ASSERT_EQ(spent, 5 * PAIRS * (RACERS / 2));
	fx_close(&pg);
}

/* ---- a deadlock, made on purpose --------------------------------------------- */

struct batch_run {
	pthread_t t;
	struct store *s;
	struct ledger_op *op;
	size_t n;
	int rc;
};

static void *run_batch(void *arg)
{
	struct batch_run *b = arg;

	b->rc = b->s->ops->ledger_apply(b->s, b->op, b->n);
	return NULL;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Backends of this database waiting for a lock. */
static long long lock_waiters(PGconn *raw)
{
	return raw_i64(raw, "SELECT count(DISTINCT l.pid) FROM pg_locks l JOIN pg_stat_activity a "
			    "ON a.pid = l.pid WHERE NOT l.granted AND a.datname = current_database()",
		       NULL, NULL);
}

/*
 * Ledger batches do not deadlock one another (they lock their orgs first,
 * in one order), so the cycle is made with another transaction: `lock`
 * holds the row of the batch's second delegation; the batch, holding its
 * org's row, waits for it; then `lock` asks for the org's row. The batch
 * waited first, so its deadlock check (after deadlock_timeout) finds the
 * cycle and the server aborts the batch's transaction; ledger_apply must
 * run it again, after `lock` is done, and succeed.
 */
TEST(ledger_pg_deadlock_is_retried)
{
	struct fx pg;
	struct store *sp;
	struct delegation d[2];
	struct ledger_op op[2];
	struct batch_run bp;
	PGconn *lock;
	PGresult *res;
	const char *v[1];
	double t0, took;
	long long waiting = 0;
	int64_t spent, held;

	if (!pg_uri())
		return;
	ASSERT_EQ(fx_open(&pg, 1), 0);
	sp = store_new(pg.uri, 1);
	lock = raw_open(pg.uri);
	ASSERT(sp && lock);
	dlg_make(&d[0], pg.org, "p1", NULL, 10, -1, "dispatched");
	dlg_make(&d[1], pg.org, "p2", NULL, 10, -1, "dispatched");
	op_open(&op[0], &d[0], T0);
	op_open(&op[1], &d[1], T0);
	ASSERT_EQ(pg.s->ops->ledger_apply(pg.s, op, 2), 0);
	ASSERT(lock_waiters(pg.raw) == 0);

	v[0] = d[1].rec.delegation_id;
	PQclear(PQexec(lock, "BEGIN"));
	res = PQexecParams(lock, "SELECT 1 FROM delegations WHERE delegation_id = $1 FOR UPDATE",
			   1, NULL, v, NULL, NULL, 0);
	ASSERT_EQ(PQntuples(res), 1);
	PQclear(res);

	op_settle(&op[0], &d[0], "completed", 1, T0 + 1);
	op_settle(&op[1], &d[1], "completed", 2, T0 + 1);
	bp = (struct batch_run){.s = sp, .op = op, .n = 2, .rc = 99};
	t0 = now_s();
	if (pthread_create(&bp.t, NULL, run_batch, &bp)) {
		PQfinish(lock);
		FAIL_AT("pthread_create");
	}
	for (int i = 0; i < 500 && waiting < 1; i++) {
		struct timespec ms = {0, 10 * 1000 * 1000};

		nanosleep(&ms, NULL);
		waiting = lock_waiters(pg.raw);
	}
	/* blocks until the server has broken the cycle by aborting the batch */
	v[0] = pg.org;
	res = PQexecParams(lock, "SELECT 1 FROM orgs WHERE org_id = $1 FOR NO KEY UPDATE", 1, NULL,
			   v, NULL, NULL, 0);
	took = now_s() - t0;
	PQclear(res);
	PQclear(PQexec(lock, "COMMIT"));
	pthread_join(bp.t, NULL);
	ASSERT_EQ(waiting, 1);
	ASSERT(took > 0.5); /* deadlock_timeout passed: there was a cycle */
	ASSERT_EQ(bp.rc, 0);
	ASSERT_EQ(op[0].rc, 0);
	ASSERT_EQ(op[1].rc, 0);
	ASSERT_EQ(d[0].audit_event + d[1].audit_event, 1 + 2);
	ASSERT(audit_is_1_to_n(pg.raw, pg.org, 2));
	ASSERT_EQ(sp->ops->budget_get(sp, pg.org, PERIOD, &spent, &held), 0);
	ASSERT_EQ(spent, 3);
	ASSERT_EQ(held, 0);
	PQfinish(lock);
	sp->ops->close(sp);
	fx_close(&pg);
}

/* ---- idempotency and circuit breakers under races ------------------------------ */

static void race_idem(struct racer *r, struct store *s)
{
	struct delegation d;
	struct ledger_op op;
	char id[ID_MAX];

	snprintf(id, sizeof(id), "idem%d", r->index);
	dlg_make(&d, r->org, id, NULL, 1, -1, "dispatched");
	op_open(&op, &d, T0);
	op.idem_key = "same-key";
	memset(op.idem_hash, 0x42, sizeof(op.idem_hash));
	r->rc = apply1(s, &op);
	r->idem = op.idem;
	snprintf(r->got, sizeof(r->got), "%s",
		 op.idem == IDEM_NEW ? d.rec.delegation_id : op.idem_delegation_id);
}

TEST(ledger_pg_race_idempotency_key_claimed_once)
{
	struct racer r[RACERS], sum, like = {.fn = race_idem};
	struct fx pg;
	int fresh = 0;

	if (!pg_uri())
		return;
	ASSERT_EQ(fx_open(&pg, 1), 0);
	ASSERT_EQ(races_run(&pg, r, &like, &sum), 0);
	for (int t = 0; t < RACERS; t++) {
		ASSERT_EQ(r[t].rc, 0);
		ASSERT(r[t].idem == IDEM_NEW || r[t].idem == IDEM_EXISTING);
		fresh += r[t].idem == IDEM_NEW;
		ASSERT_STR_EQ(r[t].got, r[0].got); /* all name the one delegation */
	}
	ASSERT_EQ(fresh, 1);
	ASSERT_EQ(raw_i64(pg.raw, "SELECT count(*) FROM delegations WHERE org_id = $1", pg.org,
			  NULL), 1);
	ASSERT_EQ(raw_i64(pg.raw, "SELECT held_micros FROM budget_periods WHERE org_id = $1",
			  pg.org, NULL), 1);
	fx_close(&pg);
}

static void race_fail_callee(struct racer *r, struct store *s)
{
	struct ledger_op op;

	for (int i = 0; i < r->n; i++) {
		int rc;

		op_settle(&op, &r->d[i], "failed", 0, T0 + 10);
		op.cb_max_failures = 5;
		op.cb_window_seconds = 60;
		rc = apply1(s, &op);
		if (rc)
			racer_fail(r, rc, "settle");
		r->opened += op.circuit_opened; /* circuits this racer opened */
	}
}

TEST(ledger_pg_race_circuit_opens_once)
{
	enum { PER = 3 };
	static struct delegation d[RACERS * PER];
	struct ledger_op op;
	struct racer r[RACERS], sum, like = {.fn = race_fail_callee, .d = d, .n = PER};
	struct agent ag;
	struct fx pg;

	if (!pg_uri())
		return;
	ASSERT_EQ(fx_open(&pg, 1), 0);
	ASSERT_EQ(agent_new(pg.s, pg.org, "flaky", "probationary", 0.5), 0);
	racers_deal(d, PER, "c", pg.org, "flaky", 1, -1);
	for (int i = 0; i < RACERS * PER; i++) {
		op_open(&op, &d[i], T0);
		ASSERT_EQ(apply1(pg.s, &op), 0);
	}
	ASSERT_EQ(races_run(&pg, r, &like, &sum), 0);
	ASSERT_EQ(sum.opened, 1);
	ASSERT_EQ(pg.s->ops->agent_get(pg.s, pg.org, "flaky", &ag), 0);
	ASSERT_STR_EQ(ag.status, "paused");
	ASSERT_STR_EQ(ag.prior_status, "probationary");
	agent_release(&ag);
	ASSERT_EQ(raw_i64(pg.raw, "SELECT count(*) FROM agent_failures WHERE org_id = $1", pg.org,
			  NULL), RACERS * PER);
	ASSERT_EQ(raw_i64(pg.raw, "SELECT settled_count FROM agents WHERE org_id = $1 "
				  "AND agent_id = $2", pg.org, "flaky"), RACERS * PER);
	fx_close(&pg);
}

/* A connection killed under the store: the call that finds it fails (the
 * commit cannot be known), all its ops with it; the next call resets the
 * connection and works. */
TEST(ledger_pg_survives_a_killed_connection)
{
	struct fx pg;
	struct delegation d[3];
	struct ledger_op op[2];
	int rc;

	if (!pg_uri())
		return;
	ASSERT_EQ(fx_open(&pg, 1), 0);
	dlg_make(&d[0], pg.org, "k0", NULL, 1, -1, "dispatched");
	op_open(&op[0], &d[0], T0);
	ASSERT_EQ(apply1(pg.s, &op[0]), 0);
	/* the store's one connection: idle, its last statement the COMMIT */
	ASSERT_EQ(raw_i64(pg.raw, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
				  "WHERE datname = current_database() AND pid <> pg_backend_pid() "
				  "AND state = 'idle' AND query = 'COMMIT'",
			  NULL, NULL), 1);
	for (int i = 0; i < 200; i++) { /* until it is gone */
		struct timespec ms = {0, 10 * 1000 * 1000};

		if (raw_i64(pg.raw, "SELECT count(*) FROM pg_stat_activity WHERE datname = "
				    "current_database() AND pid <> pg_backend_pid() "
				    "AND query = 'COMMIT'",
			    NULL, NULL) == 0)
			break;
		nanosleep(&ms, NULL);
	}
	dlg_make(&d[1], pg.org, "k1", NULL, 1, -1, "dispatched");
	dlg_make(&d[2], pg.org, "k2", NULL, 1, -1, "dispatched");
	op_open(&op[0], &d[1], T0);
	op_open(&op[1], &d[2], T0);
	rc = pg.s->ops->ledger_apply(pg.s, op, 2);
	ASSERT_EQ(rc, E(INTERNAL));
	ASSERT_EQ(op[0].rc, E(INTERNAL));
	ASSERT_EQ(op[1].rc, E(INTERNAL));
	ASSERT_EQ(pg.s->ops->ledger_apply(pg.s, op, 2), 0);
	ASSERT_EQ(op[0].rc, 0);
	ASSERT_EQ(op[1].rc, 0);
	ASSERT_STR_EQ(d[2].status, "dispatched");
	ASSERT_EQ(raw_i64(pg.raw, "SELECT held_micros FROM budget_periods WHERE org_id = $1",
			  pg.org, NULL), 3);
	fx_close(&pg);
}
