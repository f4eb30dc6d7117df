/*
 * store/ ledger: the conformance suite of the delegation ledger (store.h
 * ledger_apply with LEDGER_OPEN and LEDGER_SETTLE, delegation_get,
 * delegation_list, delegation_overdue, budget_get), written once against
 * struct store * and run on every backend like test_store.c: SQLite on a
 * fresh temporary file always (ledger_sqlite_*), PostgreSQL too when
 * NEXRA_TEST_PG_URI is set (ledger_postgres_*). Orgs and delegations get
 * random ids, so reruns against one PostgreSQL database never clash.
 *
 * What store.h does not return (audit rows, billing rows, the agents'
 * counters, circuit-breaker rows) is read from the tables directly, with
 * the same SQL on both backends (the migrations keep the column names
 * equal): a second sqlite3 connection on the file, or libpq on the URI.
 */
#include <libpq-fe.h>
#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdint.h>
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
#define PERIOD "2023-11"
#define CAP 250000LL
#define DAY 86400LL

static const unsigned char seal_key[SEAL_KEY_LEN] = "0123456789abcdef0123456789abcde";


#define ASSERT_NEAR(a, b)                                                                  \
	do {                                                                                \
		double a_ = (a), b_ = (b);                                                  \
		if (!(fabs(a_ - b_) < 1e-9))                                                \
			FAIL_AT("ASSERT_NEAR(%s, %s): %.17g != %.17g", #a, #b, a_, b_);     \
	} while (0)

/* One suite function, run as ledger_sqlite_<name> and ledger_postgres_<name>. */
#define LEDGER_CASE(name)                                                                    \
	static void case_##name(struct store *s);                                            \
	TEST(ledger_sqlite_##name) { store_on_sqlite(case_##name); }                               \
	TEST(ledger_postgres_##name) { store_on_postgres("ledger", 1, case_##name); }                           \
	static void case_##name(struct store *s)

/* A second store on the same database (another "process"). */
static int open_twin(struct store **out)
{
	char msg[512];

	if (store_where.pg_uri)
		return store_pg_open(store_where.pg_uri, 2, out, msg, sizeof(msg));
	return store_sqlite_open(store_where.sqlite_path, 2, out, msg, sizeof(msg));
}

/*
 * The first column of the first row of q as text into out (params $1, $2:
 * text, NULL for none). 1 with a value, 0 for no row or NULL, -1 on error.
 */
static int raw(const char *q, const char *a1, const char *a2, char *out, size_t outsz)
{
	int ret = -1;

	out[0] = '\0';
	if (store_where.pg_uri) {
		const char *params[2] = {a1, a2};
		PGconn *pg = PQconnectdb(store_where.pg_uri);
		PGresult *r = NULL;

		if (PQstatus(pg) == CONNECTION_OK)
			r = PQexecParams(pg, q, a2 ? 2 : a1 ? 1 : 0, NULL, params, NULL, NULL, 0);
		if (r && PQresultStatus(r) == PGRES_TUPLES_OK) {
			ret = PQntuples(r) > 0 && !PQgetisnull(r, 0, 0);
			if (ret)
				snprintf(out, outsz, "%s", PQgetvalue(r, 0, 0));
		} else {
			fprintf(stderr, "  raw: %s\n", PQerrorMessage(pg));
		}
		PQclear(r);
		PQfinish(pg);
		return ret;
	}
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int src;

	if (sqlite3_open_v2(store_where.sqlite_path, &db, SQLITE_OPEN_READONLY, NULL) ||
	    sqlite3_prepare_v2(db, q, -1, &st, NULL)) {
		fprintf(stderr, "  raw: %s\n", sqlite3_errmsg(db));
		goto out;
	}
	if (a1)
		sqlite3_bind_text(st, sqlite3_bind_parameter_index(st, "$1"), a1, -1, SQLITE_STATIC);
	if (a2)
		sqlite3_bind_text(st, sqlite3_bind_parameter_index(st, "$2"), a2, -1, SQLITE_STATIC);
	src = sqlite3_step(st);
	if (src == SQLITE_ROW) {
		ret = sqlite3_column_type(st, 0) != SQLITE_NULL;
		if (ret)
			snprintf(out, outsz, "%s", (const char *)sqlite3_column_text(st, 0));
	} else if (src == SQLITE_DONE) {
		ret = 0;
	} else {
		fprintf(stderr, "  raw: %s\n", sqlite3_errmsg(db));
	}
out:
	sqlite3_finalize(st);
	sqlite3_close(db);
	return ret;
}

#define RAW_NONE INT64_MIN

static int64_t raw_i64(const char *q, const char *a1, const char *a2)
{
	char v[64];

	return raw(q, a1, a2, v, sizeof(v)) == 1 ? strtoll(v, NULL, 10) : RAW_NONE;
}

static double raw_f64(const char *q, const char *a1, const char *a2)
{
	char v[64];

	return raw(q, a1, a2, v, sizeof(v)) == 1 ? strtod(v, NULL) : NAN;
}

static int64_t audit_count(const char *org_id)
{
	return raw_i64("SELECT count(*) FROM audit_log WHERE org_id = $1", org_id, NULL);
}

static int64_t audit_rows_of(const char *org_id, const char *delegation_id)
{
	return raw_i64("SELECT count(*) FROM audit_log WHERE org_id = $1 AND delegation_id = $2",
		       org_id, delegation_id);
}

static int64_t billing_rows_of(const char *delegation_id)
{
	return raw_i64("SELECT count(*) FROM billing_events WHERE delegation_id = $1",
		       delegation_id, NULL);
}

static int64_t agent_counter(const char *col, const char *org_id, const char *agent_id)
{
	char q[160];

	snprintf(q, sizeof(q), "SELECT %s FROM agents WHERE org_id = $1 AND agent_id = $2", col);
	return raw_i64(q, org_id, agent_id);
}

/* ---- fixtures --------------------------------------------------------------- */

struct org_fix {
	struct org org;
	struct api_key live, test;
	char live_secret[APIKEY_LEN + 1], test_secret[APIKEY_LEN + 1];
};

static int org_fix_create(struct store *s, struct org_fix *f)
{
	memset(f, 0, sizeof(*f));
	if (rand_id(f->org.org_id, "org_", 8))
		return E(INTERNAL);
	snprintf(f->org.name, sizeof(f->org.name), "Ledger %s", f->org.org_id);
	snprintf(f->org.plan, sizeof(f->org.plan), "growth");
	f->org.created_at = T0;
	if (apikey_new_row(f->org.org_id, KEY_LIVE, "default live", T0, &f->live,
			   f->live_secret) ||
	    apikey_new_row(f->org.org_id, KEY_TEST, "default test", T0, &f->test,
			   f->test_secret))
		return E(INTERNAL);
	return s->ops->org_create(s, &f->org, &f->live, &f->test);
}

/* Store an agent of org in status with trust. */
static int agent_add(struct store *s, const char *org_id, const char *agent_id,
		     const char *status, double trust)
{
	const char *secret = "webhook-secret-0123456789abcdef-0123456789";
	struct agent a;
	char ad[200];
	int rc;

	memset(&a, 0, sizeof(a));
	snprintf(a.org_id, sizeof(a.org_id), "%s", org_id);
	snprintf(a.agent_id, sizeof(a.agent_id), "%s", agent_id);
	a.name = strdup("Research Agent");
	a.description = strdup("Researches");
	snprintf(a.capability_type, sizeof(a.capability_type), "research");
	a.webhook_url = strdup("https://your-agent.com/execute");
	snprintf(ad, sizeof(ad), "agent:%s/%s", org_id, agent_id);
	a.input_schema = strdup("{\"type\":\"object\"}");
	a.output_schema = strdup("{\"type\":\"object\"}");
	if (seal(seal_key, secret, strlen(secret), ad, &a.secret_sealed, &a.secret_sealed_len) ||
	    !a.name || !a.description || !a.webhook_url || !a.input_schema || !a.output_schema) {
		agent_release(&a);
		return E(INTERNAL);
	}
	a.per_call_micros = 150000;
	a.p99_latency_ms = 3000;
	a.availability = 0.99;
	snprintf(a.status, sizeof(a.status), "%s", status);
	a.trust_score = trust;
	a.registered_at = T0;
	a.updated_at = T0;
	rc = s->ops->agent_insert(s, &a);
	agent_release(&a);
	return rc;
}

static double agent_trust(struct store *s, const char *org_id, const char *agent_id)
{
	struct agent a;
	double t = NAN;

	if (!s->ops->agent_get(s, org_id, agent_id, &a)) {
		t = a.trust_score;
		agent_release(&a);
	}
	return t;
}

/* status and prior_status of an agent through agent_get (its cache too). */
static int agent_state(struct store *s, const char *org_id, const char *agent_id,
		       char status[16], char prior[16])
{
	struct agent a;
	int rc = s->ops->agent_get(s, org_id, agent_id, &a);

	if (!rc) {
		snprintf(status, 16, "%s", a.status);
		snprintf(prior, 16, "%s", a.prior_status);
		agent_release(&a);
	}
	return rc;
}

/*
 * A delegation to open: org f, caller "sales-agent", callee (or "" for
 * none), the cap, status (dispatched | pending_approval | blocked), the
 * org's monthly limit (-1 unlimited), created at. Borrowed literals for
 * the text fields: never delegation_release one of these.
 */
static void del_init(struct delegation *d, const char *org_id, const char *callee, int64_t cap,
		     const char *status, int64_t limit, int64_t at)
{
	struct delegation_record *r = &d->rec;

	memset(d, 0, sizeof(*d));
	if (rand_id(r->delegation_id, "del_", 8))
		abort();
	snprintf(r->org_id, sizeof(r->org_id), "%s", org_id);
	snprintf(r->caller_agent_id, sizeof(r->caller_agent_id), "sales-agent");
	snprintf(r->callee_agent_id, sizeof(r->callee_agent_id), "%s", callee);
	snprintf(r->capability, sizeof(r->capability), "research");
	r->budget_cap_micros = cap;
	r->has_trust = callee[0] != '\0';
	r->callee_trust = r->has_trust ? 0.5 : 0;
	snprintf(r->decision, sizeof(r->decision), "%s",
		 !strcmp(status, "blocked")            ? "block"
		 : !strcmp(status, "pending_approval") ? "pending_approval"
						       : "allow");
	r->created_at = at;
	snprintf(d->status, sizeof(d->status), "%s", status);
	snprintf(d->task_type, sizeof(d->task_type), "research");
	d->task_input = "{\"q\":\"competitors\"}";
	d->context_scope = "[\"crm\"]";
	d->policy_result = "{\"decision\":\"allow\"}";
	d->timeout_ms = 30000;
	snprintf(d->period, sizeof(d->period), PERIOD);
	d->budget_limit_micros = limit;
	d->reported_cost_micros = -1;
	d->llm_tokens = -1;
	d->latency_ms = -1;
	d->trust_before = d->trust_after = NAN;
	d->budget_remaining_micros = -1;
	d->dispatched_at = strcmp(status, "dispatched") ? 0 : at;
	d->expires_at = d->dispatched_at ? at + 30 : 0;
}

/* A sparse SETTLE input for the delegation o: ids, final status, cost. */
static void settle_init(struct delegation *x, const struct delegation *o, const char *status,
			int64_t cost)
{
	memset(x, 0, sizeof(*x));
	snprintf(x->rec.org_id, sizeof(x->rec.org_id), "%s", o->rec.org_id);
	snprintf(x->rec.delegation_id, sizeof(x->rec.delegation_id), "%s", o->rec.delegation_id);
	snprintf(x->status, sizeof(x->status), "%s", status);
	x->cost_micros = cost;
	x->reported_cost_micros = cost;
	x->llm_tokens = -1;
	x->latency_ms = -1;
	x->trust_before = x->trust_after = NAN;
}

static void op_open(struct ledger_op *op, struct delegation *d, int64_t now)
{
	memset(op, 0, sizeof(*op));
	op->kind = LEDGER_OPEN;
	op->d = d;
	op->now = now;
}

static void op_settle(struct ledger_op *op, struct delegation *x, double signal, int64_t now)
{
	memset(op, 0, sizeof(*op));
	op->kind = LEDGER_SETTLE;
	op->d = x;
	op->trust_signal = signal;
	op->trust_alpha = 0.2;
	op->promote_after = 5;
	op->now = now;
}

/* One op alone: the batch's failure or the op's own rc. */
static int apply1(struct store *s, struct ledger_op *op)
{
	int rc = s->ops->ledger_apply(s, op, 1);

	return rc ? rc : op->rc;
}

static int open1(struct store *s, struct delegation *d, int64_t now)
{
	struct ledger_op op;

	op_open(&op, d, now);
	return apply1(s, &op);
}

/* Settle o as status with cost (signal for trust); x gets the outputs. */
static int settle1(struct store *s, const struct delegation *o, struct delegation *x,
		   const char *status, int64_t cost, double signal, int64_t now)
{
	struct ledger_op op;

	settle_init(x, o, status, cost);
	op_settle(&op, x, signal, now);
	return apply1(s, &op);
}

static void budget(struct store *s, const char *org_id, int64_t *spent, int64_t *held)
{
	*spent = *held = -1;
	if (s->ops->budget_get(s, org_id, PERIOD, spent, held))
		*spent = *held = -2;
}

/* ---- opening: holds and refusals --------------------------------------------- */

LEDGER_CASE(open_dispatched_holds)
{
	struct org_fix a, b;
	struct delegation d, e, got;
	int64_t spent, held;

	ASSERT_EQ(org_fix_create(s, &a), 0);
	ASSERT_EQ(org_fix_create(s, &b), 0);
	budget(s, a.org.org_id, &spent, &held);
	ASSERT_EQ(spent, 0); /* no row yet */
	ASSERT_EQ(held, 0);

	del_init(&d, a.org.org_id, "", CAP, "dispatched", 1000000, T0);
	ASSERT_EQ(open1(s, &d, T0), 0);
	ASSERT_STR_EQ(d.status, "dispatched");
	ASSERT_EQ(d.hold_micros, CAP);
	ASSERT_STR_EQ(d.error_code, "");
	ASSERT_EQ(d.budget_remaining_micros, 1000000 - CAP);
	budget(s, a.org.org_id, &spent, &held);
	ASSERT_EQ(spent, 0);
	ASSERT_EQ(held, CAP);

	/* pending approval holds too */
	del_init(&e, a.org.org_id, "", 300000, "pending_approval", 1000000, T0 + 1);
	ASSERT_EQ(open1(s, &e, T0 + 1), 0);
	ASSERT_STR_EQ(e.status, "pending_approval");
	ASSERT_EQ(e.hold_micros, 300000);
	budget(s, a.org.org_id, &spent, &held);
	ASSERT_EQ(held, CAP + 300000);

	ASSERT_EQ(s->ops->delegation_get(s, a.org.org_id, d.rec.delegation_id, &got), 0);
	ASSERT_STR_EQ(got.status, "dispatched");
	ASSERT_EQ(got.hold_micros, CAP);
	ASSERT_EQ(got.cost_micros, 0);
	ASSERT_EQ(got.audit_event, 0);
	ASSERT_EQ(got.settled_at, 0);
	ASSERT(isnan(got.trust_before) && isnan(got.trust_after));
	delegation_release(&got);
	ASSERT_EQ(audit_count(a.org.org_id), 0); /* no audit entry until final */

	/* other periods and other orgs are untouched */
	ASSERT_EQ(s->ops->budget_get(s, a.org.org_id, "2023-12", &spent, &held), 0);
	ASSERT_EQ(spent, 0);
	ASSERT_EQ(held, 0);
	budget(s, b.org.org_id, &spent, &held);
	ASSERT_EQ(held, 0);
}

LEDGER_CASE(open_refused_over_budget)
{
	struct org_fix a;
	struct delegation d1, d2, d3, d4, got;
	struct ledger_op op;
	int64_t spent, held;

	ASSERT_EQ(org_fix_create(s, &a), 0);
	del_init(&d1, a.org.org_id, "", 400000, "dispatched", 500000, T0);
	ASSERT_EQ(open1(s, &d1, T0), 0);
	ASSERT_STR_EQ(d1.status, "dispatched");

	/* 400000 held + 200000 > 500000: stored blocked, settled at once */
	del_init(&d2, a.org.org_id, "", 200000, "dispatched", 500000, T0 + 1);
	op_open(&op, &d2, T0 + 1);
	ASSERT_EQ(apply1(s, &op), 0);
	ASSERT_EQ(op.budget_refused, 1);
	ASSERT_STR_EQ(d2.status, "blocked");
	ASSERT_STR_EQ(d2.error_code, "BUDGET_EXCEEDED");
	ASSERT_EQ(d2.hold_micros, 0);
	ASSERT_EQ(d2.cost_micros, 0);
	ASSERT_EQ(d2.audit_event, 1);
	ASSERT_EQ(d2.budget_remaining_micros, 100000);
	ASSERT_EQ(d2.settled_at, T0 + 1);
	budget(s, a.org.org_id, &spent, &held);
	ASSERT_EQ(spent, 0);
	ASSERT_EQ(held, 400000); /* the refused one holds nothing */

	ASSERT_EQ(s->ops->delegation_get(s, a.org.org_id, d2.rec.delegation_id, &got), 0);
	ASSERT_STR_EQ(got.status, "blocked");
	ASSERT_STR_EQ(got.error_code, "BUDGET_EXCEEDED");
	ASSERT_EQ(got.hold_micros, 0);
	ASSERT_EQ(got.audit_event, 1);
	ASSERT_EQ(got.settled_at, T0 + 1);
	ASSERT_EQ(got.budget_remaining_micros, 100000);
	delegation_release(&got);
	ASSERT_EQ(audit_rows_of(a.org.org_id, d2.rec.delegation_id), 1);
	char v[64];
	ASSERT_EQ(raw("SELECT decision FROM audit_log WHERE org_id = $1 AND delegation_id = $2",
		      a.org.org_id, d2.rec.delegation_id, v, sizeof(v)), 1);
	ASSERT_STR_EQ(v, "BLOCK");
	ASSERT_EQ(raw("SELECT status FROM audit_log WHERE org_id = $1 AND delegation_id = $2",
		      a.org.org_id, d2.rec.delegation_id, v, sizeof(v)), 1);
	ASSERT_STR_EQ(v, "blocked");

	/* exactly at the limit fits; one micro more does not */
	del_init(&d3, a.org.org_id, "", 100000, "dispatched", 500000, T0 + 2);
	ASSERT_EQ(open1(s, &d3, T0 + 2), 0);
	ASSERT_STR_EQ(d3.status, "dispatched");
	ASSERT_EQ(d3.budget_remaining_micros, 0);
	del_init(&d4, a.org.org_id, "", 1, "pending_approval", 500000, T0 + 3);
	op_open(&op, &d4, T0 + 3);
	ASSERT_EQ(apply1(s, &op), 0);
	ASSERT_EQ(op.budget_refused, 1);
	ASSERT_STR_EQ(d4.status, "blocked");
	ASSERT_EQ(d4.audit_event, 2);
	budget(s, a.org.org_id, &spent, &held);
	ASSERT_EQ(held, 500000);
}

LEDGER_CASE(open_unlimited_never_refuses)
{
	struct org_fix a;
	struct delegation d;
	struct ledger_op op;
	int64_t spent, held;

	ASSERT_EQ(org_fix_create(s, &a), 0);
	for (int i = 0; i < 5; i++) {
		del_init(&d, a.org.org_id, "", 1000000000000LL, "dispatched", -1, T0 + i);
		op_open(&op, &d, T0 + i);
		ASSERT_EQ(apply1(s, &op), 0);
		ASSERT_EQ(op.budget_refused, 0);
		ASSERT_STR_EQ(d.status, "dispatched");
		ASSERT_EQ(d.hold_micros, 1000000000000LL);
		ASSERT_EQ(d.budget_remaining_micros, -1);
	}
	budget(s, a.org.org_id, &spent, &held);
	ASSERT_EQ(held, 5000000000000LL);
	ASSERT_EQ(spent, 0);
}

/* ---- settling ------------------------------------------------------------------ */

LEDGER_CASE(settle_completed_charges_audits_trusts_bills)
{
	struct org_fix a, b;
	struct delegation d[3], x, got, bd;
	int64_t spent, held;
	char v[128], bill[ID_MAX + 8];

	ASSERT_EQ(org_fix_create(s, &a), 0);
	ASSERT_EQ(org_fix_create(s, &b), 0);
	ASSERT_EQ(agent_add(s, a.org.org_id, "research-1", "probationary", 0.5), 0);
	ASSERT_NEAR(agent_trust(s, a.org.org_id, "research-1"), 0.5); /* cached now */
	for (int i = 0; i < 3; i++) {
		del_init(&d[i], a.org.org_id, "research-1", CAP, "dispatched", 1000000, T0 + i);
		ASSERT_EQ(open1(s, &d[i], T0 + i), 0);
	}

	/* completed at 100000 of a 250000 hold */
	settle_init(&x, &d[0], "completed", 100000);
	x.latency_ms = 1200;
	x.llm_tokens = 4521;
	x.result = "{\"summary\":\"ok\"}";
	{
		struct ledger_op op;

		op_settle(&op, &x, 0.9, T0 + 10);
		ASSERT_EQ(apply1(s, &op), 0);
		ASSERT_EQ(op.circuit_opened, 0);
	}
	ASSERT_EQ(x.audit_event, 1);
	ASSERT_EQ(x.cost_micros, 100000);
	ASSERT_EQ(x.hold_micros, 0);
	ASSERT_EQ(x.settled_at, T0 + 10);
	ASSERT_EQ(x.budget_remaining_micros, 1000000 - 100000 - 2 * CAP);
	ASSERT_NEAR(x.trust_before, 0.5);
	ASSERT_NEAR(x.trust_after, 0.5 + 0.2 * (0.9 - 0.5));
	budget(s, a.org.org_id, &spent, &held);
	ASSERT_EQ(spent, 100000);
	ASSERT_EQ(held, 2 * CAP);
	ASSERT_NEAR(agent_trust(s, a.org.org_id, "research-1"), 0.58); /* cache invalidated */
	ASSERT_EQ(agent_counter("settled_count", a.org.org_id, "research-1"), 1);
	ASSERT_EQ(agent_counter("completed_count", a.org.org_id, "research-1"), 1);

	/* the row */
	ASSERT_EQ(s->ops->delegation_get(s, a.org.org_id, d[0].rec.delegation_id, &got), 0);
	ASSERT_STR_EQ(got.status, "completed");
	ASSERT_EQ(got.cost_micros, 100000);
	ASSERT_EQ(got.reported_cost_micros, 100000);
	ASSERT_EQ(got.hold_micros, 0);
	ASSERT_EQ(got.latency_ms, 1200);
	ASSERT_EQ(got.llm_tokens, 4521);
	ASSERT_STR_EQ(got.result, "{\"summary\":\"ok\"}");
	ASSERT_EQ(got.audit_event, 1);
	ASSERT_EQ(got.settled_at, T0 + 10);
	ASSERT_EQ(got.budget_remaining_micros, 1000000 - 100000 - 2 * CAP);
	ASSERT_NEAR(got.trust_before, 0.5);
	ASSERT_NEAR(got.trust_after, 0.58);
	delegation_release(&got);

	/* exactly one audit entry, as returned */
	ASSERT_EQ(audit_rows_of(a.org.org_id, d[0].rec.delegation_id), 1);
	ASSERT_EQ(raw_i64("SELECT event_id FROM audit_log WHERE org_id = $1 AND delegation_id = $2",
			  a.org.org_id, d[0].rec.delegation_id), 1);
	ASSERT_EQ(raw("SELECT decision FROM audit_log WHERE org_id = $1 AND delegation_id = $2",
		      a.org.org_id, d[0].rec.delegation_id, v, sizeof(v)), 1);
	ASSERT_STR_EQ(v, "ALLOW");
	ASSERT_EQ(raw_i64("SELECT cost_micros FROM audit_log WHERE org_id = $1 AND "
			  "delegation_id = $2", a.org.org_id, d[0].rec.delegation_id), 100000);
	ASSERT_EQ(raw("SELECT callee_id FROM audit_log WHERE org_id = $1 AND delegation_id = $2",
		      a.org.org_id, d[0].rec.delegation_id, v, sizeof(v)), 1);
	ASSERT_STR_EQ(v, "research-1");
	ASSERT_NEAR(raw_f64("SELECT trust_after FROM audit_log WHERE org_id = $1 AND "
			    "delegation_id = $2", a.org.org_id, d[0].rec.delegation_id), 0.58);

	/* exactly one billing row, pending, for the charged amount */
	snprintf(bill, sizeof(bill), "bill_%s", d[0].rec.delegation_id);
	ASSERT_EQ(billing_rows_of(d[0].rec.delegation_id), 1);
	ASSERT_EQ(raw_i64("SELECT amount_micros FROM billing_events WHERE billing_id = $1", bill,
			  NULL), 100000);
	ASSERT_EQ(raw("SELECT state FROM billing_events WHERE billing_id = $1", bill, NULL, v,
		      sizeof(v)), 1);
	ASSERT_STR_EQ(v, "pending");
	ASSERT_EQ(raw_i64("SELECT next_attempt_at FROM billing_events WHERE billing_id = $1", bill,
			  NULL), T0 + 10);

	/* the next ones take the next event ids; trust moves on from 0.58 */
	ASSERT_EQ(settle1(s, &d[1], &x, "completed", CAP, 1.0, T0 + 11), 0);
	ASSERT_EQ(x.audit_event, 2);
	ASSERT_NEAR(x.trust_before, 0.58);
	ASSERT_NEAR(x.trust_after, 0.58 + 0.2 * (1.0 - 0.58));
	ASSERT_EQ(settle1(s, &d[2], &x, "failed", 0, 0.0, T0 + 12), 0);
	ASSERT_EQ(x.audit_event, 3);
	ASSERT_NEAR(x.trust_after, x.trust_before * 0.8);
	budget(s, a.org.org_id, &spent, &held);
	ASSERT_EQ(spent, 100000 + CAP);
	ASSERT_EQ(held, 0);
	ASSERT_EQ(agent_counter("settled_count", a.org.org_id, "research-1"), 3);
	ASSERT_EQ(agent_counter("completed_count", a.org.org_id, "research-1"), 2);
	ASSERT_EQ(audit_count(a.org.org_id), 3);

	/* another org counts from 1 */
	del_init(&bd, b.org.org_id, "", CAP, "dispatched", -1, T0);
	ASSERT_EQ(open1(s, &bd, T0), 0);
	ASSERT_EQ(settle1(s, &bd, &x, "completed", 5, 0.5, T0 + 1), 0);
	ASSERT_EQ(x.audit_event, 1);
	ASSERT(isnan(x.trust_before) && isnan(x.trust_after)); /* no callee */
	ASSERT_EQ(x.budget_remaining_micros, -1);
	ASSERT_EQ(audit_count(b.org.org_id), 1);
	ASSERT_EQ(billing_rows_of(bd.rec.delegation_id), 1);
}

/* The charge never exceeds the hold (store.h: cost_micros <= the hold). */
LEDGER_CASE(settle_charge_capped_at_hold)
{
	struct org_fix a;
	struct delegation d, x, got;
	int64_t spent, held;

	ASSERT_EQ(org_fix_create(s, &a), 0);
	del_init(&d, a.org.org_id, "", CAP, "dispatched", 1000000, T0);
	ASSERT_EQ(open1(s, &d, T0), 0);
	ASSERT_EQ(settle1(s, &d, &x, "completed", CAP + 1, 1.0, T0 + 1), 0);
	ASSERT_EQ(x.cost_micros, CAP);
	budget(s, a.org.org_id, &spent, &held);
	ASSERT_EQ(spent, CAP);
	ASSERT_EQ(held, 0);
	ASSERT_EQ(s->ops->delegation_get(s, a.org.org_id, d.rec.delegation_id, &got), 0);
	ASSERT_EQ(got.cost_micros, CAP);
	ASSERT_EQ(got.reported_cost_micros, CAP + 1);
	delegation_release(&got);
}

LEDGER_CASE(settle_twice_conflicts_and_changes_nothing)
{
	struct org_fix a;
	struct delegation d, e, x, before, after;
	int64_t spent, held, spent2, held2;

	ASSERT_EQ(org_fix_create(s, &a), 0);
	ASSERT_EQ(agent_add(s, a.org.org_id, "research-1", "active", 0.5), 0);
	del_init(&d, a.org.org_id, "research-1", CAP, "dispatched", 1000000, T0);
	ASSERT_EQ(open1(s, &d, T0), 0);
	ASSERT_EQ(settle1(s, &d, &x, "completed", 100000, 1.0, T0 + 1), 0);
	ASSERT_EQ(x.audit_event, 1);
	budget(s, a.org.org_id, &spent, &held);
	ASSERT_EQ(s->ops->delegation_get(s, a.org.org_id, d.rec.delegation_id, &before), 0);
	double trust = agent_trust(s, a.org.org_id, "research-1");

	ASSERT_EQ(settle1(s, &d, &x, "completed", 200000, 1.0, T0 + 2), E(CONFLICT));
	ASSERT_EQ(settle1(s, &d, &x, "failed", 0, 0.0, T0 + 3), E(CONFLICT));
	ASSERT_EQ(settle1(s, &d, &x, "expired", 0, 0.0, T0 + 4), E(CONFLICT));

	budget(s, a.org.org_id, &spent2, &held2);
	ASSERT_EQ(spent2, spent);
	ASSERT_EQ(held2, held);
	ASSERT_EQ(s->ops->delegation_get(s, a.org.org_id, d.rec.delegation_id, &after), 0);
	ASSERT_STR_EQ(after.status, "completed");
	ASSERT_EQ(after.cost_micros, before.cost_micros);
	ASSERT_EQ(after.settled_at, before.settled_at);
	ASSERT_EQ(after.audit_event, 1);
	delegation_release(&before);
	delegation_release(&after);
	ASSERT_NEAR(agent_trust(s, a.org.org_id, "research-1"), trust);
	ASSERT_EQ(agent_counter("settled_count", a.org.org_id, "research-1"), 1);
	ASSERT_EQ(audit_count(a.org.org_id), 1);
	ASSERT_EQ(billing_rows_of(d.rec.delegation_id), 1);

	/* the refused settles consumed no event id */
	del_init(&e, a.org.org_id, "", CAP, "dispatched", 1000000, T0 + 5);
	ASSERT_EQ(open1(s, &e, T0 + 5), 0);
	ASSERT_EQ(settle1(s, &e, &x, "failed", 0, 0.0, T0 + 6), 0);
	ASSERT_EQ(x.audit_event, 2);
}

LEDGER_CASE(settle_failed_and_timed_out_charge_nothing)
{
	struct org_fix a;
	struct delegation d[2], x, got;
	int64_t spent, held;
	char status[16], prior[16], v[64];

	ASSERT_EQ(org_fix_create(s, &a), 0);
	ASSERT_EQ(agent_add(s, a.org.org_id, "research-1", "active", 0.5), 0);
	for (int i = 0; i < 2; i++) {
		del_init(&d[i], a.org.org_id, "research-1", CAP, "dispatched", 1000000, T0 + i);
		ASSERT_EQ(open1(s, &d[i], T0 + i), 0);
	}
	/* a failure releases everything, whatever cost was reported */
	ASSERT_EQ(settle1(s, &d[0], &x, "failed", 100000, 0.0, T0 + 5), 0);
	ASSERT_EQ(x.cost_micros, 0);
	ASSERT_NEAR(x.trust_before, 0.5);
	ASSERT_NEAR(x.trust_after, 0.4);
	budget(s, a.org.org_id, &spent, &held);
	ASSERT_EQ(spent, 0);
	ASSERT_EQ(held, CAP);
	ASSERT_EQ(settle1(s, &d[1], &x, "timed_out", 0, 0.0, T0 + 6), 0);
	ASSERT_EQ(x.cost_micros, 0);
	ASSERT_NEAR(x.trust_after, 0.32);
	budget(s, a.org.org_id, &spent, &held);
	ASSERT_EQ(spent, 0);
	ASSERT_EQ(held, 0);
	ASSERT_EQ(x.budget_remaining_micros, 1000000);

	for (int i = 0; i < 2; i++) {
		ASSERT_EQ(billing_rows_of(d[i].rec.delegation_id), 0);
		ASSERT_EQ(s->ops->delegation_get(s, a.org.org_id, d[i].rec.delegation_id, &got), 0);
		ASSERT_EQ(got.cost_micros, 0);
		ASSERT_EQ(got.hold_micros, 0);
		ASSERT_STR_EQ(got.status, i ? "timed_out" : "failed");
		delegation_release(&got);
		ASSERT_EQ(raw("SELECT decision FROM audit_log WHERE org_id = $1 AND "
			      "delegation_id = $2", a.org.org_id, d[i].rec.delegation_id, v,
			      sizeof(v)), 1);
		ASSERT_STR_EQ(v, "ALLOW");
	}
	ASSERT_EQ(agent_counter("settled_count", a.org.org_id, "research-1"), 2);
	ASSERT_EQ(agent_counter("completed_count", a.org.org_id, "research-1"), 0);
	/* no breaker asked for (cb_max_failures 0): no failure rows, no pause */
	ASSERT_EQ(raw_i64("SELECT count(*) FROM agent_failures WHERE org_id = $1", a.org.org_id,
			  NULL), 0);
	ASSERT_EQ(agent_state(s, a.org.org_id, "research-1", status, prior), 0);
	ASSERT_STR_EQ(status, "active");
}

/* Settle d as failed at now with a breaker of max failures in window. */
static int fail_with_breaker(struct store *s, const struct delegation *d, int64_t now,
			     int64_t max, int64_t window, int *opened)
{
	struct delegation x;
	struct ledger_op op;
	int rc;

	settle_init(&x, d, "failed", 0);
	op_settle(&op, &x, 0.0, now);
	op.cb_max_failures = max;
	op.cb_window_seconds = window;
	rc = apply1(s, &op);
	*opened = op.circuit_opened;
	return rc;
}

LEDGER_CASE(circuit_breaker_window)
{
	struct org_fix a;
	struct delegation d[5];
	char status[16], prior[16];
	int opened;
	const int64_t T = T0 + 1000;

	ASSERT_EQ(org_fix_create(s, &a), 0);
	ASSERT_EQ(agent_add(s, a.org.org_id, "research-1", "active", 0.9), 0);
	for (int i = 0; i < 5; i++) {
		del_init(&d[i], a.org.org_id, "research-1", CAP, "dispatched", -1, T0 + i);
		ASSERT_EQ(open1(s, &d[i], T0 + i), 0);
	}
	ASSERT_EQ(agent_state(s, a.org.org_id, "research-1", status, prior), 0); /* cached */

	/* one failure long before the window, then two inside it: not yet */
	ASSERT_EQ(fail_with_breaker(s, &d[0], T - 100, 3, 60, &opened), 0);
	ASSERT_EQ(opened, 0);
	ASSERT_EQ(fail_with_breaker(s, &d[1], T, 3, 60, &opened), 0);
	ASSERT_EQ(opened, 0);
	ASSERT_EQ(fail_with_breaker(s, &d[2], T + 1, 3, 60, &opened), 0);
	ASSERT_EQ(opened, 0); /* 3 failures in all, only 2 in the window */
	ASSERT_EQ(agent_state(s, a.org.org_id, "research-1", status, prior), 0);
	ASSERT_STR_EQ(status, "probationary"); /* not paused; demoted (TRUST_DEMOTE_AFTER) */
	ASSERT_EQ(raw_i64("SELECT count(*) FROM agent_failures WHERE org_id = $1 AND agent_id = $2",
			  a.org.org_id, "research-1"), 3);

	/* the third in the window opens the circuit */
	ASSERT_EQ(fail_with_breaker(s, &d[3], T + 2, 3, 60, &opened), 0);
	ASSERT_EQ(opened, 1);
	ASSERT_EQ(agent_state(s, a.org.org_id, "research-1", status, prior), 0);
	ASSERT_STR_EQ(status, "paused");
	ASSERT_STR_EQ(prior, "probationary");

	/* already open: not opened again, prior status kept */
	ASSERT_EQ(fail_with_breaker(s, &d[4], T + 3, 3, 60, &opened), 0);
	ASSERT_EQ(opened, 0);
	ASSERT_EQ(agent_state(s, a.org.org_id, "research-1", status, prior), 0);
	ASSERT_STR_EQ(status, "paused");
	ASSERT_STR_EQ(prior, "probationary");

	/* activation restores what it was */
	ASSERT_EQ(s->ops->agent_set_paused(s, a.org.org_id, "research-1", 0, T + 4), 0);
	ASSERT_EQ(agent_state(s, a.org.org_id, "research-1", status, prior), 0);
	ASSERT_STR_EQ(status, "probationary");
}

/* A probationary callee pauses with prior_status probationary. */
LEDGER_CASE(circuit_breaker_keeps_probation)
{
	struct org_fix a;
	struct delegation d[2];
	char status[16], prior[16];
	int opened;

	ASSERT_EQ(org_fix_create(s, &a), 0);
	ASSERT_EQ(agent_add(s, a.org.org_id, "research-1", "probationary", 0.5), 0);
	for (int i = 0; i < 2; i++) {
		del_init(&d[i], a.org.org_id, "research-1", CAP, "dispatched", -1, T0 + i);
		ASSERT_EQ(open1(s, &d[i], T0 + i), 0);
	}
	ASSERT_EQ(fail_with_breaker(s, &d[0], T0 + 10, 2, 60, &opened), 0);
	ASSERT_EQ(opened, 0);
	ASSERT_EQ(fail_with_breaker(s, &d[1], T0 + 11, 2, 60, &opened), 0);
	ASSERT_EQ(opened, 1);
	ASSERT_EQ(agent_state(s, a.org.org_id, "research-1", status, prior), 0);
	ASSERT_STR_EQ(status, "paused");
	ASSERT_STR_EQ(prior, "probationary");
}

LEDGER_CASE(promotion_after_completions)
{
	struct org_fix a;
	struct delegation d[4], x;
	struct ledger_op op;
	char status[16], prior[16];
	const char *outcome[4] = {"completed", "failed", "completed", "completed"};

	ASSERT_EQ(org_fix_create(s, &a), 0);
	ASSERT_EQ(agent_add(s, a.org.org_id, "research-1", "probationary", 0.5), 0);
	for (int i = 0; i < 4; i++) {
		del_init(&d[i], a.org.org_id, "research-1", CAP, "dispatched", -1, T0 + i);
		ASSERT_EQ(open1(s, &d[i], T0 + i), 0);
	}
	ASSERT_EQ(agent_state(s, a.org.org_id, "research-1", status, prior), 0); /* cached */
	for (int i = 0; i < 4; i++) {
		settle_init(&x, &d[i], outcome[i], 1000);
		op_settle(&op, &x, 1.0, T0 + 10 + i);
		op.promote_after = 3;
		ASSERT_EQ(apply1(s, &op), 0);
		ASSERT_EQ(agent_state(s, a.org.org_id, "research-1", status, prior), 0);
		/* completions: 1, 1, 2, 3 */
		ASSERT_STR_EQ(status, i < 3 ? "probationary" : "active");
	}
	ASSERT_EQ(agent_counter("completed_count", a.org.org_id, "research-1"), 3);
	ASSERT_EQ(agent_counter("settled_count", a.org.org_id, "research-1"), 4);
}

/* Three failures in a row send an active callee back to probation, and its
 * completions count again from 0 (TRUST_DEMOTE_AFTER, docs/trust.md). */
LEDGER_CASE(demotion_after_failures)
{
	struct org_fix a;
	struct delegation d[9], x;
	struct ledger_op op;
	char status[16], prior[16];
	const char *outcome[9] = {"failed", "failed", "completed", "failed", "timed_out", "failed",
				  "completed", "completed", "completed"};
	const char *want[9] = {"active", "active", "active", "active", "active", "probationary",
			       "probationary", "probationary", "active"};

	ASSERT_EQ(org_fix_create(s, &a), 0);
	ASSERT_EQ(agent_add(s, a.org.org_id, "research-1", "active", 0.8), 0);
	for (int i = 0; i < 9; i++) {
		del_init(&d[i], a.org.org_id, "research-1", CAP, "dispatched", -1, T0 + i);
		ASSERT_EQ(open1(s, &d[i], T0 + i), 0);
	}
	for (int i = 0; i < 9; i++) {
		settle_init(&x, &d[i], outcome[i], 1000);
		op_settle(&op, &x, outcome[i][0] == 'c' ? 1.0 : 0.0, T0 + 10 + i);
		op.promote_after = 3;
		ASSERT_EQ(apply1(s, &op), 0);
		ASSERT_EQ(agent_state(s, a.org.org_id, "research-1", status, prior), 0);
		ASSERT_STR_EQ(status, want[i]);
	}
	ASSERT_EQ(agent_counter("completed_count", a.org.org_id, "research-1"), 3);
	ASSERT_EQ(agent_counter("failure_streak", a.org.org_id, "research-1"), 0);
	ASSERT_EQ(agent_counter("settled_count", a.org.org_id, "research-1"), 9);
}

LEDGER_CASE(blocked_at_open_is_settled)
{
	struct org_fix a;
	struct delegation d, e, got;
	struct ledger_op op;
	int64_t spent, held;
	char v[64];

	ASSERT_EQ(org_fix_create(s, &a), 0);
	ASSERT_EQ(agent_add(s, a.org.org_id, "research-1", "active", 0.7), 0);
	del_init(&d, a.org.org_id, "research-1", CAP, "blocked", 1000000, T0);
	snprintf(d.error_code, sizeof(d.error_code), "POLICY_BLOCKED");
	d.error_message = "caller not allowed";
	snprintf(d.policy_ref, sizeof(d.policy_ref), "default-deny");
	op_open(&op, &d, T0 + 1);
	ASSERT_EQ(apply1(s, &op), 0);
	ASSERT_EQ(op.budget_refused, 0);
	ASSERT_STR_EQ(d.status, "blocked");
	ASSERT_STR_EQ(d.error_code, "POLICY_BLOCKED");
	ASSERT_EQ(d.hold_micros, 0);
	ASSERT_EQ(d.audit_event, 1);
	ASSERT_EQ(d.settled_at, T0 + 1);
	ASSERT_NEAR(d.trust_before, 0.7);
	ASSERT_NEAR(d.trust_after, 0.7);
	ASSERT_EQ(d.budget_remaining_micros, 1000000);
	budget(s, a.org.org_id, &spent, &held);
	ASSERT_EQ(spent, 0);
	ASSERT_EQ(held, 0);
	ASSERT_NEAR(agent_trust(s, a.org.org_id, "research-1"), 0.7);
	ASSERT_EQ(agent_counter("settled_count", a.org.org_id, "research-1"), 0);
	ASSERT_EQ(audit_rows_of(a.org.org_id, d.rec.delegation_id), 1);
	ASSERT_EQ(raw("SELECT decision FROM audit_log WHERE org_id = $1 AND delegation_id = $2",
		      a.org.org_id, d.rec.delegation_id, v, sizeof(v)), 1);
	ASSERT_STR_EQ(v, "BLOCK");
	ASSERT_EQ(raw("SELECT policy_ref FROM audit_log WHERE org_id = $1 AND delegation_id = $2",
		      a.org.org_id, d.rec.delegation_id, v, sizeof(v)), 1);
	ASSERT_STR_EQ(v, "default-deny");
	ASSERT_NEAR(raw_f64("SELECT trust_before FROM audit_log WHERE org_id = $1 AND "
			    "delegation_id = $2", a.org.org_id, d.rec.delegation_id), 0.7);
	ASSERT_EQ(billing_rows_of(d.rec.delegation_id), 0);

	ASSERT_EQ(s->ops->delegation_get(s, a.org.org_id, d.rec.delegation_id, &got), 0);
	ASSERT_STR_EQ(got.status, "blocked");
	ASSERT_STR_EQ(got.rec.decision, "block");
	ASSERT_STR_EQ(got.error_message, "caller not allowed");
	ASSERT_EQ(got.audit_event, 1);
	ASSERT_NEAR(got.trust_before, 0.7);
	ASSERT_NEAR(got.trust_after, 0.7);
	delegation_release(&got);

	/* without a callee: trust is NaN both sides */
	del_init(&e, a.org.org_id, "", CAP, "blocked", -1, T0 + 2);
	ASSERT_EQ(open1(s, &e, T0 + 2), 0);
	ASSERT_EQ(e.audit_event, 2);
	ASSERT(isnan(e.trust_before) && isnan(e.trust_after));
	ASSERT_EQ(e.budget_remaining_micros, -1);
	ASSERT(isnan(raw_f64("SELECT trust_before FROM audit_log WHERE org_id = $1 AND "
			     "delegation_id = $2", a.org.org_id, e.rec.delegation_id)));
	ASSERT_EQ(s->ops->delegation_get(s, a.org.org_id, e.rec.delegation_id, &got), 0);
	ASSERT(isnan(got.trust_before) && isnan(got.trust_after));
	ASSERT_STR_EQ(got.rec.callee_agent_id, "");
	ASSERT_EQ(got.rec.has_trust, 0);
	delegation_release(&got);
	ASSERT_EQ(audit_count(a.org.org_id), 2);
}

/* Expiring an approval that never came: BLOCK, the hold released. */
LEDGER_CASE(settle_expired_pending_releases_hold)
{
	struct org_fix a;
	struct delegation d, x;
	int64_t spent, held;
	char v[64];

	ASSERT_EQ(org_fix_create(s, &a), 0);
	ASSERT_EQ(agent_add(s, a.org.org_id, "research-1", "active", 0.6), 0);
	del_init(&d, a.org.org_id, "research-1", CAP, "pending_approval", 1000000, T0);
	ASSERT_EQ(open1(s, &d, T0), 0);
	ASSERT_EQ(settle1(s, &d, &x, "expired", 0, 0.0, T0 + 3600), 0);
	ASSERT_EQ(x.audit_event, 1);
	ASSERT_NEAR(x.trust_before, 0.6);
	ASSERT_NEAR(x.trust_after, 0.6);
	budget(s, a.org.org_id, &spent, &held);
	ASSERT_EQ(spent, 0);
	ASSERT_EQ(held, 0);
	ASSERT_EQ(raw("SELECT decision FROM audit_log WHERE org_id = $1 AND delegation_id = $2",
		      a.org.org_id, d.rec.delegation_id, v, sizeof(v)), 1);
	ASSERT_STR_EQ(v, "BLOCK");
	ASSERT_EQ(agent_counter("settled_count", a.org.org_id, "research-1"), 0);
}

/* ---- a person's decision on a pending approval --------------------------------- */

/* Decide o (approved | rejected) at `at` by the key "key_ops"; x gets the
 * input and the outputs. An approval dispatches for 30 s. */
static int decide1(struct store *s, const struct delegation *o, struct delegation *x,
		   const char *decided, int64_t at, char *reason)
{
	struct ledger_op op;

	settle_init(x, o, "blocked", 0);
	snprintf(x->decided, sizeof(x->decided), "%s", decided);
	snprintf(x->decided_by_key_id, sizeof(x->decided_by_key_id), "key_ops");
	snprintf(x->decided_by_key_name, sizeof(x->decided_by_key_name), "ops console");
	snprintf(x->approver, sizeof(x->approver), "dana@acme.test");
	x->decided_at = at;
	x->decision_reason = reason;
	x->dispatched_at = at;
	x->expires_at = at + 30;
	x->error_message = reason;
	memset(&op, 0, sizeof(op));
	op.kind = LEDGER_DECIDE;
	op.d = x;
	op.now = at;
	return apply1(s, &op);
}

LEDGER_CASE(decide_approve_dispatches_and_settles_with_the_decision)
{
	struct org_fix a;
	struct delegation d, x, got, y;
	int64_t spent, held;
	char v[512];

	ASSERT_EQ(org_fix_create(s, &a), 0);
	ASSERT_EQ(agent_add(s, a.org.org_id, "research-1", "active", 0.6), 0);
	del_init(&d, a.org.org_id, "research-1", CAP, "pending_approval", 1000000, T0);
	d.expires_at = T0 + 600; /* the approval deadline */
	ASSERT_EQ(open1(s, &d, T0), 0);
	ASSERT_EQ(decide1(s, &d, &x, "approved", T0 + 10, NULL), 0);
	ASSERT_STR_EQ(x.status, "dispatched");
	ASSERT_EQ(x.hold_micros, CAP);
	ASSERT_EQ(x.audit_event, 0);
	budget(s, a.org.org_id, &spent, &held);
	ASSERT_EQ(held, CAP);
	ASSERT_EQ(s->ops->delegation_get(s, a.org.org_id, d.rec.delegation_id, &got), 0);
	ASSERT_STR_EQ(got.status, "dispatched");
	ASSERT_STR_EQ(got.decided, "approved");
	ASSERT_STR_EQ(got.decided_by_key_id, "key_ops");
	ASSERT_STR_EQ(got.decided_by_key_name, "ops console");
	ASSERT_STR_EQ(got.approver, "dana@acme.test");
	ASSERT_EQ(got.decided_at, T0 + 10);
	ASSERT_EQ(got.dispatched_at, T0 + 10);
	ASSERT_EQ(got.expires_at, T0 + 40);
	ASSERT(got.decision_reason == NULL);
	/* a second decision finds it dispatched */
	ASSERT_EQ(decide1(s, &d, &y, "approved", T0 + 11, NULL), E(CONFLICT));
	ASSERT_EQ(decide1(s, &d, &y, "rejected", T0 + 11, NULL), E(CONFLICT));
	/* its settlement carries the decision into the audit entry */
	settle_init(&x, &d, "completed", 1000);
	memcpy(x.decided, got.decided, sizeof(x.decided));
	memcpy(x.decided_by_key_id, got.decided_by_key_id, sizeof(x.decided_by_key_id));
	memcpy(x.decided_by_key_name, got.decided_by_key_name, sizeof(x.decided_by_key_name));
	memcpy(x.approver, got.approver, sizeof(x.approver));
	x.decided_at = got.decided_at;
	{
		struct ledger_op op;

		op_settle(&op, &x, 1.0, T0 + 12);
		ASSERT_EQ(apply1(s, &op), 0);
	}
	delegation_release(&got);
	ASSERT_EQ(x.audit_event, 1);
	budget(s, a.org.org_id, &spent, &held);
	ASSERT_EQ(spent, 1000);
	ASSERT_EQ(held, 0);
	ASSERT_EQ(billing_rows_of(d.rec.delegation_id), 1);
	ASSERT_EQ(raw("SELECT approval FROM audit_log WHERE org_id = $1 AND delegation_id = $2",
		      a.org.org_id, d.rec.delegation_id, v, sizeof(v)), 1);
	ASSERT_STR_EQ(v, "{\"approver\":\"dana@acme.test\",\"decided_at\":\"2023-11-14T22:13:30Z\","
			 "\"decided_by\":{\"key_id\":\"key_ops\",\"key_name\":\"ops console\"},"
			 "\"decision\":\"approved\",\"reason\":null}");
}

LEDGER_CASE(decide_reject_settles_blocked_and_releases)
{
	struct org_fix a;
	struct delegation d, x, y, got;
	int64_t spent, held;
	char v[512];

	ASSERT_EQ(org_fix_create(s, &a), 0);
	ASSERT_EQ(agent_add(s, a.org.org_id, "research-1", "active", 0.6), 0);
	del_init(&d, a.org.org_id, "research-1", CAP, "pending_approval", 1000000, T0);
	ASSERT_EQ(open1(s, &d, T0), 0); /* no deadline: waits until decided */
	ASSERT_EQ(decide1(s, &d, &x, "rejected", T0 + 7200, "not this quarter"), 0);
	ASSERT_STR_EQ(x.status, "blocked");
	ASSERT_EQ(x.audit_event, 1);
	ASSERT_EQ(x.cost_micros, 0);
	ASSERT_EQ(x.settled_at, T0 + 7200);
	ASSERT_NEAR(x.trust_before, 0.6);
	ASSERT_NEAR(x.trust_after, 0.6);
	budget(s, a.org.org_id, &spent, &held);
	ASSERT_EQ(spent, 0);
	ASSERT_EQ(held, 0);
	ASSERT_EQ(billing_rows_of(d.rec.delegation_id), 0);
	ASSERT_EQ(agent_counter("settled_count", a.org.org_id, "research-1"), 0);
	ASSERT_EQ(s->ops->delegation_get(s, a.org.org_id, d.rec.delegation_id, &got), 0);
	ASSERT_STR_EQ(got.status, "blocked");
	ASSERT_STR_EQ(got.decided, "rejected");
	ASSERT_STR_EQ(got.decision_reason, "not this quarter");
	ASSERT_STR_EQ(got.error_message, "not this quarter");
	ASSERT_EQ(got.dispatched_at, 0);
	delegation_release(&got);
	ASSERT_EQ(raw("SELECT decision FROM audit_log WHERE org_id = $1 AND delegation_id = $2",
		      a.org.org_id, d.rec.delegation_id, v, sizeof(v)), 1);
	ASSERT_STR_EQ(v, "BLOCK");
	ASSERT_EQ(raw("SELECT approval FROM audit_log WHERE org_id = $1 AND delegation_id = $2",
		      a.org.org_id, d.rec.delegation_id, v, sizeof(v)), 1);
	ASSERT(strstr(v, "\"decision\":\"rejected\"") && strstr(v, "\"reason\":\"not this quarter\""));
	ASSERT_EQ(decide1(s, &d, &y, "rejected", T0 + 7201, NULL), E(CONFLICT));
	ASSERT_EQ(decide1(s, &d, &y, "approved", T0 + 7201, NULL), E(CONFLICT));
	ASSERT_EQ(audit_count(a.org.org_id), 1);
}

LEDGER_CASE(decide_after_the_deadline_conflicts_and_the_sweeper_sees_it)
{
	struct org_fix a;
	struct delegation d, x, ghost;
	int64_t spent, held;

	ASSERT_EQ(org_fix_create(s, &a), 0);
	del_init(&d, a.org.org_id, "", CAP, "pending_approval", -1, T0);
	d.expires_at = T0 + 100;
	ASSERT_EQ(open1(s, &d, T0), 0);
	ASSERT_EQ(decide1(s, &d, &x, "approved", T0 + 100, NULL), E(CONFLICT));
	ASSERT_EQ(decide1(s, &d, &x, "rejected", T0 + 150, NULL), E(CONFLICT));
	ghost = d;
	if (rand_id(ghost.rec.delegation_id, "del_", 8))
		abort();
	ASSERT_EQ(decide1(s, &ghost, &x, "approved", T0 + 1, NULL), E(NOT_FOUND));
	budget(s, a.org.org_id, &spent, &held);
	ASSERT_EQ(held, CAP); /* nothing changed */
	ASSERT_EQ(audit_count(a.org.org_id), 0);
}

/* ---- idempotency ------------------------------------------------------------------ */

static int open_idem(struct store *s, struct delegation *d, const char *key, int hash_byte,
		     int64_t now, struct ledger_op *op)
{
	op_open(op, d, now);
	op->idem_key = key;
	memset(op->idem_hash, hash_byte, sizeof(op->idem_hash));
	return apply1(s, op);
}

LEDGER_CASE(idempotency_keys)
{
	struct org_fix a, b;
	struct delegation d1, d2, d3, d4, d5, d6, d7, d8, db, got;
	struct ledger_op op;
	int64_t spent, held;

	ASSERT_EQ(org_fix_create(s, &a), 0);
	ASSERT_EQ(org_fix_create(s, &b), 0);
	del_init(&d1, a.org.org_id, "", CAP, "dispatched", -1, T0);
	ASSERT_EQ(open_idem(s, &d1, "key-1", 0x11, T0, &op), 0);
	ASSERT_EQ(op.idem, IDEM_NEW);

	/* same key, same body: the first delegation, nothing written */
	del_init(&d2, a.org.org_id, "", CAP, "dispatched", -1, T0 + 5);
	ASSERT_EQ(open_idem(s, &d2, "key-1", 0x11, T0 + 5, &op), 0);
	ASSERT_EQ(op.idem, IDEM_EXISTING);
	ASSERT_STR_EQ(op.idem_delegation_id, d1.rec.delegation_id);
	ASSERT_EQ(s->ops->delegation_get(s, a.org.org_id, d2.rec.delegation_id, &got),
		  E(NOT_FOUND));

	/* same key, other body, still within 24 h: mismatch, nothing written */
	del_init(&d3, a.org.org_id, "", CAP, "dispatched", -1, T0 + DAY - 1);
	ASSERT_EQ(open_idem(s, &d3, "key-1", 0x22, T0 + DAY - 1, &op), 0);
	ASSERT_EQ(op.idem, IDEM_MISMATCH);
	ASSERT_EQ(s->ops->delegation_get(s, a.org.org_id, d3.rec.delegation_id, &got),
		  E(NOT_FOUND));
	budget(s, a.org.org_id, &spent, &held);
	ASSERT_EQ(held, CAP); /* d1 only */
	ASSERT_EQ(audit_count(a.org.org_id), 0);

	/* keys are per org */
	del_init(&db, b.org.org_id, "", CAP, "dispatched", -1, T0 + 6);
	ASSERT_EQ(open_idem(s, &db, "key-1", 0x11, T0 + 6, &op), 0);
	ASSERT_EQ(op.idem, IDEM_NEW);

	/* older than 24 h: replaced, the new delegation is stored */
	del_init(&d4, a.org.org_id, "", CAP, "dispatched", -1, T0);
	ASSERT_EQ(open_idem(s, &d4, "key-2", 0x33, T0, &op), 0);
	ASSERT_EQ(op.idem, IDEM_NEW);
	del_init(&d5, a.org.org_id, "", CAP, "dispatched", -1, T0 + DAY + 1);
	ASSERT_EQ(open_idem(s, &d5, "key-2", 0x44, T0 + DAY + 1, &op), 0);
	ASSERT_EQ(op.idem, IDEM_NEW);
	ASSERT_EQ(s->ops->delegation_get(s, a.org.org_id, d5.rec.delegation_id, &got), 0);
	delegation_release(&got);
	del_init(&d6, a.org.org_id, "", CAP, "dispatched", -1, T0 + DAY + 2);
	ASSERT_EQ(open_idem(s, &d6, "key-2", 0x44, T0 + DAY + 2, &op), 0);
	ASSERT_EQ(op.idem, IDEM_EXISTING);
	ASSERT_STR_EQ(op.idem_delegation_id, d5.rec.delegation_id);

	/* a failing open leaves its key unclaimed */
	del_init(&d7, a.org.org_id, "", CAP, "dispatched", -1, T0 + 7);
	snprintf(d7.rec.delegation_id, sizeof(d7.rec.delegation_id), "%s", d1.rec.delegation_id);
	ASSERT_EQ(open_idem(s, &d7, "key-3", 0x55, T0 + 7, &op), E(CONFLICT));
	del_init(&d8, a.org.org_id, "", CAP, "dispatched", -1, T0 + 8);
	ASSERT_EQ(open_idem(s, &d8, "key-3", 0x66, T0 + 8, &op), 0);
	ASSERT_EQ(op.idem, IDEM_NEW);
	ASSERT_EQ(s->ops->delegation_get(s, a.org.org_id, d8.rec.delegation_id, &got), 0);
	delegation_release(&got);
}

/* ---- batches -------------------------------------------------------------------------- */

LEDGER_CASE(batch_failing_ops_roll_back_alone)
{
	struct org_fix a;
	struct delegation old, c1, dup, n1, n2, twin, ghost, x1, x2, xg, got;
	struct ledger_op ops[8];
	int64_t spent, held;

	ASSERT_EQ(org_fix_create(s, &a), 0);
	del_init(&old, a.org.org_id, "", CAP, "dispatched", 10000000, T0);
	ASSERT_EQ(open1(s, &old, T0), 0);
	del_init(&c1, a.org.org_id, "", CAP, "dispatched", 10000000, T0);
	ASSERT_EQ(open1(s, &c1, T0), 0);

	del_init(&n1, a.org.org_id, "", 100000, "dispatched", 10000000, T0 + 1);
	op_open(&ops[0], &n1, T0 + 1);
	/* an id that exists: CONFLICT, its hold rolled back */
	del_init(&dup, a.org.org_id, "", 300000, "dispatched", 10000000, T0 + 1);
	snprintf(dup.rec.delegation_id, sizeof(dup.rec.delegation_id), "%s",
		 old.rec.delegation_id);
	op_open(&ops[1], &dup, T0 + 1);
	settle_init(&x1, &c1, "completed", 50000);
	op_settle(&ops[2], &x1, 1.0, T0 + 2);
	/* a delegation that does not exist */
	del_init(&ghost, a.org.org_id, "", CAP, "dispatched", 10000000, T0);
	settle_init(&xg, &ghost, "completed", 1);
	op_settle(&ops[3], &xg, 1.0, T0 + 2);
	/* open and settle in the same batch */
	del_init(&n2, a.org.org_id, "", 200000, "dispatched", 10000000, T0 + 3);
	op_open(&ops[4], &n2, T0 + 3);
	settle_init(&x2, &n2, "completed", 20000);
	op_settle(&ops[5], &x2, 1.0, T0 + 3);
	/* the same new id twice in one batch: the second conflicts */
	del_init(&twin, a.org.org_id, "", 400000, "dispatched", 10000000, T0 + 4);
	snprintf(twin.rec.delegation_id, sizeof(twin.rec.delegation_id), "%s",
		 n1.rec.delegation_id);
	op_open(&ops[6], &twin, T0 + 4);
	/* c1 again, after ops[2] closed it */
	settle_init(&got, &c1, "failed", 0);
	op_settle(&ops[7], &got, 0.0, T0 + 5);

	ASSERT_EQ(s->ops->ledger_apply(s, ops, 8), 0);
	ASSERT_EQ(ops[0].rc, 0);
	ASSERT_EQ(ops[1].rc, E(CONFLICT));
	ASSERT_EQ(ops[2].rc, 0);
	ASSERT_EQ(ops[3].rc, E(NOT_FOUND));
	ASSERT_EQ(ops[4].rc, 0);
	ASSERT_EQ(ops[5].rc, 0);
	ASSERT_EQ(ops[6].rc, E(CONFLICT));
	ASSERT_EQ(ops[7].rc, E(CONFLICT)); /* c1 was settled by ops[2] */
	/* a failed op's d comes back as it went in */
	ASSERT_EQ(dup.hold_micros, 0);
	ASSERT_EQ(dup.rec.budget_cap_micros, 300000);
	ASSERT_EQ(twin.audit_event, 0);
	ASSERT_EQ(x1.audit_event, 1);
	ASSERT_EQ(x2.audit_event, 2);

	/* held: old + n1; spent: c1's 50000 + n2's 20000 */
	budget(s, a.org.org_id, &spent, &held);
	ASSERT_EQ(held, CAP + 100000);
	ASSERT_EQ(spent, 70000);
	ASSERT_EQ(s->ops->delegation_get(s, a.org.org_id, old.rec.delegation_id, &got), 0);
	ASSERT_EQ(got.rec.budget_cap_micros, CAP); /* untouched by the duplicate */
	ASSERT_STR_EQ(got.status, "dispatched");
	delegation_release(&got);
	ASSERT_EQ(s->ops->delegation_get(s, a.org.org_id, n1.rec.delegation_id, &got), 0);
	ASSERT_EQ(got.rec.budget_cap_micros, 100000); /* not the twin */
	delegation_release(&got);
	ASSERT_EQ(s->ops->delegation_get(s, a.org.org_id, n2.rec.delegation_id, &got), 0);
	ASSERT_STR_EQ(got.status, "completed");
	ASSERT_EQ(got.cost_micros, 20000);
	delegation_release(&got);
	ASSERT_EQ(s->ops->delegation_get(s, a.org.org_id, c1.rec.delegation_id, &got), 0);
	ASSERT_STR_EQ(got.status, "completed");
	delegation_release(&got);
	ASSERT_EQ(audit_count(a.org.org_id), 2);
	ASSERT_EQ(s->ops->ledger_apply(s, ops, 0), 0); /* an empty batch is fine */
}

/* ---- concurrency ------------------------------------------------------------------------ */

#define RACE_THREADS 8
#define RACE_EACH 4
#define RACE_FIT 13 /* caps that fit the budget */

struct racer {
	struct store *s;
	const char *org_id;
	int batch; /* ops per ledger_apply: 1 or 2 */
	int held, refused, errors;
	char ids[RACE_EACH][ID_MAX];
};

static void *race_open(void *arg)
{
	struct racer *r = arg;
	struct delegation d[2];
	struct ledger_op op[2];

	for (int i = 0; i < RACE_EACH; i += r->batch) {
		for (int k = 0; k < r->batch; k++) {
			del_init(&d[k], r->org_id, "", CAP, "dispatched", RACE_FIT * CAP, T0 + i);
			op_open(&op[k], &d[k], T0 + i);
		}
		if (r->s->ops->ledger_apply(r->s, op, (size_t)r->batch)) {
			r->errors += r->batch;
			continue;
		}
		for (int k = 0; k < r->batch; k++) {
			memcpy(r->ids[i + k], d[k].rec.delegation_id, ID_MAX);
			if (op[k].rc)
				r->errors++;
			else if (!strcmp(d[k].status, "dispatched") && d[k].hold_micros == CAP)
				r->held++;
			else if (op[k].budget_refused && !strcmp(d[k].status, "blocked"))
				r->refused++;
			else
				r->errors++;
		}
	}
	return NULL;
}

static void *race_settle(void *arg)
{
	struct racer *r = arg;
	struct delegation d, x;

	for (int i = 0; i < RACE_EACH; i++) {
		memset(&d, 0, sizeof(d));
		snprintf(d.rec.org_id, sizeof(d.rec.org_id), "%s", r->org_id);
		snprintf(d.rec.delegation_id, sizeof(d.rec.delegation_id), "%s", r->ids[i]);
		int rc = settle1(r->s, &d, &x, "completed", CAP / 2, 1.0, T0 + 100);

		if (rc == 0)
			r->held++;
		else if (rc != E(CONFLICT)) /* the blocked ones are final already */
			r->errors++;
	}
	return NULL;
}

struct events {
	int n;
	int64_t seen[RACE_THREADS * RACE_EACH + 1];
};

static int collect_event(void *ctx, const struct delegation *d)
{
	struct events *e = ctx;

	if (e->n < (int)(sizeof(e->seen) / sizeof(e->seen[0])))
		e->seen[e->n] = d->audit_event;
	e->n++;
	return 0;
}

/* Threads on two stores (two "processes") race for a budget that fits
 * RACE_FIT caps: exactly that many are held, never more; then settling
 * them all at once charges exactly and numbers the audit log 1..N. */
LEDGER_CASE(concurrent_holds_never_overspend)
{
	struct org_fix a;
	struct store *twin = NULL;
	struct racer r[RACE_THREADS];
	pthread_t th[RACE_THREADS];
	int held = 0, refused = 0, errors = 0, settled = 0;
	int64_t spent, hold;
	struct delegation_filter f = {.to = INT64_MAX};
	struct events ev = {0};
	char seen[RACE_THREADS * RACE_EACH + 1] = {0};

	ASSERT_EQ(org_fix_create(s, &a), 0);
	ASSERT_EQ(open_twin(&twin), 0);
	for (int i = 0; i < RACE_THREADS; i++) {
		memset(&r[i], 0, sizeof(r[i]));
		r[i].s = i % 2 ? twin : s;
		r[i].org_id = a.org.org_id;
		r[i].batch = i % 4 < 2 ? 1 : 2;
		ASSERT_EQ(pthread_create(&th[i], NULL, race_open, &r[i]), 0);
	}
	for (int i = 0; i < RACE_THREADS; i++) {
		pthread_join(th[i], NULL);
		held += r[i].held;
		refused += r[i].refused;
		errors += r[i].errors;
	}
	ASSERT_EQ(errors, 0);
	ASSERT_EQ(held, RACE_FIT);
	ASSERT_EQ(refused, RACE_THREADS * RACE_EACH - RACE_FIT);
	budget(s, a.org.org_id, &spent, &hold);
	ASSERT_EQ(hold, RACE_FIT * CAP);
	ASSERT_EQ(spent, 0);

	for (int i = 0; i < RACE_THREADS; i++) {
		r[i].held = r[i].errors = 0;
		ASSERT_EQ(pthread_create(&th[i], NULL, race_settle, &r[i]), 0);
	}
	for (int i = 0; i < RACE_THREADS; i++) {
		pthread_join(th[i], NULL);
		settled += r[i].held;
		errors += r[i].errors;
	}
	twin->ops->close(twin);
	ASSERT_EQ(errors, 0);
	ASSERT_EQ(settled, RACE_FIT);
	budget(s, a.org.org_id, &spent, &hold);
	ASSERT_EQ(hold, 0);
	ASSERT_EQ(spent, RACE_FIT * (CAP / 2));

	/* every delegation has one audit entry and the ids are exactly 1..N */
	f.org_id = a.org.org_id;
	ASSERT_EQ(s->ops->delegation_list(s, &f, 1000, 0, collect_event, &ev), 0);
	ASSERT_EQ(ev.n, RACE_THREADS * RACE_EACH);
	for (int i = 0; i < ev.n; i++) {
		ASSERT(ev.seen[i] >= 1 && ev.seen[i] <= ev.n);
		ASSERT_EQ(seen[ev.seen[i]], 0);
		seen[ev.seen[i]] = 1;
	}
	ASSERT_EQ(audit_count(a.org.org_id), ev.n);
}

/* ---- reads ---------------------------------------------------------------------------------- */

static int str_eq(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

static int num_eq(double a, double b)
{
	return (isnan(a) && isnan(b)) || a == b;
}

/* The first field where got differs from want ("" if none). */
static const char *delegation_diff(const struct delegation *a, const struct delegation *b)
{
	const struct delegation_record *x = &a->rec, *y = &b->rec;

	if (strcmp(x->delegation_id, y->delegation_id) || strcmp(x->org_id, y->org_id))
		return "ids";
	if (strcmp(x->caller_agent_id, y->caller_agent_id) ||
	    strcmp(x->callee_agent_id, y->callee_agent_id))
		return "agents";
	if (strcmp(x->capability, y->capability) || x->budget_cap_micros != y->budget_cap_micros)
		return "capability/cap";
	if (x->has_trust != y->has_trust || (x->has_trust && x->callee_trust != y->callee_trust))
		return "callee_trust";
	if (x->callee_circuit_open != y->callee_circuit_open || strcmp(x->decision, y->decision))
		return "circuit/decision";
	if (strcmp(x->policy_id, y->policy_id) || x->policy_version != y->policy_version)
		return "policy";
	if (x->created_at != y->created_at)
		return "created_at";
	if (strcmp(a->status, b->status) || strcmp(a->key_id, b->key_id) ||
	    strcmp(a->task_type, b->task_type))
		return "status/key/task_type";
	if (!str_eq(a->task_input, b->task_input) || !str_eq(a->context_scope, b->context_scope) ||
	    !str_eq(a->policy_result, b->policy_result))
		return "task_input/context_scope/policy_result";
	if (strcmp(a->policy_ref, b->policy_ref) || a->timeout_ms != b->timeout_ms)
		return "policy_ref/timeout";
	if (!str_eq(a->callback_url, b->callback_url) || strcmp(a->period, b->period))
		return "callback_url/period";
	if (a->hold_micros != b->hold_micros || a->budget_limit_micros != b->budget_limit_micros ||
	    a->cost_micros != b->cost_micros || a->reported_cost_micros != b->reported_cost_micros)
		return "money";
	if (a->overrun != b->overrun || a->llm_tokens != b->llm_tokens ||
	    a->latency_ms != b->latency_ms)
		return "usage";
	if (!str_eq(a->result, b->result) || strcmp(a->error_code, b->error_code) ||
	    !str_eq(a->error_message, b->error_message))
		return "result/error";
	if (a->audit_event != b->audit_event || !num_eq(a->trust_before, b->trust_before) ||
	    !num_eq(a->trust_after, b->trust_after) ||
	    a->budget_remaining_micros != b->budget_remaining_micros)
		return "outputs";
	if (a->dispatched_at != b->dispatched_at || a->expires_at != b->expires_at ||
	    a->settled_at != b->settled_at)
		return "times";
	return "";
}

LEDGER_CASE(get_round_trips_every_field)
{
	struct org_fix a;
	struct delegation d, x, got;
	struct ledger_op op;

	ASSERT_EQ(org_fix_create(s, &a), 0);
	ASSERT_EQ(agent_add(s, a.org.org_id, "research-1", "active", 0.5), 0);
	del_init(&d, a.org.org_id, "research-1", CAP, "dispatched", 2000000, T0);
	d.rec.callee_trust = 0.875;
	d.rec.callee_circuit_open = 1;
	snprintf(d.rec.policy_id, sizeof(d.rec.policy_id), "pol_0123456789abcdef");
	d.rec.policy_version = 3;
	snprintf(d.key_id, sizeof(d.key_id), "%s", a.live.key_id);
	snprintf(d.policy_ref, sizeof(d.policy_ref), "research-caps \xe2\x80\x94 v3");
	d.callback_url = "https://caller.example/cb?x='1'";
	d.timeout_ms = 45000;
	d.task_input = "{\"q\":\"it's \\\"quoted\\\"\"}";
	ASSERT_EQ(open1(s, &d, T0), 0);
	ASSERT_EQ(s->ops->delegation_get(s, a.org.org_id, d.rec.delegation_id, &got), 0);
	ASSERT_STR_EQ(delegation_diff(&got, &d), "");
	delegation_release(&got);

	/* settled: the outcome fields and outputs as returned in x */
	settle_init(&x, &d, "completed", 120000);
	x.reported_cost_micros = 120000;
	x.overrun = 0;
	x.llm_tokens = 77;
	x.latency_ms = 812;
	x.result = "{\"a\":[1,2,3]}";
	x.settled_at = T0 + 9;
	op_settle(&op, &x, 0.75, T0 + 10);
	ASSERT_EQ(apply1(s, &op), 0);
	ASSERT_EQ(x.settled_at, T0 + 9); /* the given time is kept */
	d.hold_micros = 0;
	snprintf(d.status, sizeof(d.status), "completed");
	d.cost_micros = 120000;
	d.reported_cost_micros = 120000;
	d.llm_tokens = 77;
	d.latency_ms = 812;
	d.result = x.result;
	d.audit_event = x.audit_event;
	d.trust_before = x.trust_before;
	d.trust_after = x.trust_after;
	d.budget_remaining_micros = x.budget_remaining_micros;
	d.settled_at = x.settled_at;
	ASSERT_EQ(s->ops->delegation_get(s, a.org.org_id, d.rec.delegation_id, &got), 0);
	ASSERT_STR_EQ(delegation_diff(&got, &d), "");
	ASSERT(got.error_message == NULL);
	delegation_release(&got);

	/* another org asking: as if it did not exist */
	struct org_fix b;

	ASSERT_EQ(org_fix_create(s, &b), 0);
	ASSERT_EQ(s->ops->delegation_get(s, b.org.org_id, d.rec.delegation_id, &got),
		  E(NOT_FOUND));
	ASSERT_EQ(s->ops->delegation_get(s, a.org.org_id, "del_00000000deadbeef", &got),
		  E(NOT_FOUND));
}

struct idlist {
	int n;
	char id[16][ID_MAX];
	int64_t created[16];
};

static int collect_ids(void *ctx, const struct delegation *d)
{
	struct idlist *l = ctx;

	if (l->n < 16) {
		snprintf(l->id[l->n], ID_MAX, "%s", d->rec.delegation_id);
		l->created[l->n] = d->rec.created_at;
	}
	l->n++;
	return 0;
}

static int list(struct store *s, const char *org_id, const char *agent, const char *status,
		int64_t from, int64_t to, int limit, int offset, struct idlist *l)
{
	struct delegation_filter f = {org_id, agent, status, from, to};

	memset(l, 0, sizeof(*l));
	return s->ops->delegation_list(s, &f, limit, offset, collect_ids, l);
}

LEDGER_CASE(list_filters_order_paging_tenancy)
{
	struct org_fix a, b;
	struct delegation d[6], other, x;
	struct idlist l, page;
	/* created_at, callee, status */
	const int64_t at[6] = {T0 + 1, T0 + 2, T0 + 3, T0 + 3, T0 + 4, T0 + 5};
	const char *callee[6] = {"research-1", "research-2", "", "research-1", "sales-agent",
				 "research-2"};

	ASSERT_EQ(org_fix_create(s, &a), 0);
	ASSERT_EQ(org_fix_create(s, &b), 0);
	for (int i = 0; i < 6; i++) {
		del_init(&d[i], a.org.org_id, callee[i], CAP, i == 2 ? "blocked" : "dispatched",
			 -1, at[i]);
		if (i == 4) /* ops-agent hires sales-agent */
			snprintf(d[i].rec.caller_agent_id, sizeof(d[i].rec.caller_agent_id),
				 "ops-agent");
		ASSERT_EQ(open1(s, &d[i], at[i]), 0);
	}
	ASSERT_EQ(settle1(s, &d[5], &x, "completed", 1, 1.0, T0 + 9), 0);
	del_init(&other, b.org.org_id, "research-1", CAP, "dispatched", -1, T0 + 3);
	ASSERT_EQ(open1(s, &other, T0 + 3), 0);

	/* everything, newest first, ties by id descending */
	ASSERT_EQ(list(s, a.org.org_id, NULL, NULL, 0, INT64_MAX, 100, 0, &l), 0);
	ASSERT_EQ(l.n, 6);
	ASSERT_STR_EQ(l.id[0], d[5].rec.delegation_id);
	ASSERT_STR_EQ(l.id[1], d[4].rec.delegation_id);
	ASSERT_EQ(l.created[2], T0 + 3);
	ASSERT_EQ(l.created[3], T0 + 3);
	ASSERT(strcmp(l.id[2], l.id[3]) > 0);
	ASSERT_STR_EQ(l.id[4], d[1].rec.delegation_id);
	ASSERT_STR_EQ(l.id[5], d[0].rec.delegation_id);
	for (int i = 0; i < l.n; i++)
		ASSERT(strcmp(l.id[i], other.rec.delegation_id)); /* tenancy */

	/* pages of 2 make up the whole list */
	for (int off = 0; off < 6; off += 2) {
		ASSERT_EQ(list(s, a.org.org_id, NULL, NULL, 0, INT64_MAX, 2, off, &page), 0);
		ASSERT_EQ(page.n, 2);
		ASSERT_STR_EQ(page.id[0], l.id[off]);
		ASSERT_STR_EQ(page.id[1], l.id[off + 1]);
	}
	ASSERT_EQ(list(s, a.org.org_id, NULL, NULL, 0, INT64_MAX, 2, 6, &page), 0);
	ASSERT_EQ(page.n, 0);

	/* an agent as callee or caller */
	ASSERT_EQ(list(s, a.org.org_id, "research-1", NULL, 0, INT64_MAX, 100, 0, &page), 0);
	ASSERT_EQ(page.n, 2);
	ASSERT_STR_EQ(page.id[0], d[3].rec.delegation_id);
	ASSERT_STR_EQ(page.id[1], d[0].rec.delegation_id);
	ASSERT_EQ(list(s, a.org.org_id, "sales-agent", NULL, 0, INT64_MAX, 100, 0, &page), 0);
	ASSERT_EQ(page.n, 6); /* caller of five, callee of one */
	ASSERT_EQ(list(s, a.org.org_id, "ops-agent", NULL, 0, INT64_MAX, 100, 0, &page), 0);
	ASSERT_EQ(page.n, 1);
	ASSERT_STR_EQ(page.id[0], d[4].rec.delegation_id);

	/* status */
	ASSERT_EQ(list(s, a.org.org_id, NULL, "dispatched", 0, INT64_MAX, 100, 0, &page), 0);
	ASSERT_EQ(page.n, 4);
	ASSERT_EQ(list(s, a.org.org_id, NULL, "blocked", 0, INT64_MAX, 100, 0, &page), 0);
	ASSERT_EQ(page.n, 1);
	ASSERT_STR_EQ(page.id[0], d[2].rec.delegation_id);
	ASSERT_EQ(list(s, a.org.org_id, "research-2", "completed", 0, INT64_MAX, 100, 0, &page), 0);
	ASSERT_EQ(page.n, 1);
	ASSERT_STR_EQ(page.id[0], d[5].rec.delegation_id);

	/* from <= created_at < to */
	ASSERT_EQ(list(s, a.org.org_id, NULL, NULL, T0 + 2, T0 + 4, 100, 0, &page), 0);
	ASSERT_EQ(page.n, 3);
	ASSERT_STR_EQ(page.id[2], d[1].rec.delegation_id);

	/* the other org sees only its own */
	ASSERT_EQ(list(s, b.org.org_id, NULL, NULL, 0, INT64_MAX, 100, 0, &page), 0);
	ASSERT_EQ(page.n, 1);
	ASSERT_STR_EQ(page.id[0], other.rec.delegation_id);
	ASSERT_EQ(list(s, b.org.org_id, "sales-agent", NULL, 0, INT64_MAX, 100, 0, &page), 0);
	ASSERT_EQ(page.n, 1);
}

struct overdue {
	const char *org_id;
	int n, mine;
	char id[8][ID_MAX];
	int64_t last_expires;
	int ordered, all_dispatched;
};

static int collect_overdue(void *ctx, const struct delegation *d)
{
	struct overdue *o = ctx;

	if (d->expires_at < o->last_expires)
		o->ordered = 0;
	o->last_expires = d->expires_at;
	if (strcmp(d->status, "dispatched"))
		o->all_dispatched = 0;
	if (!strcmp(d->rec.org_id, o->org_id)) {
		if (o->mine < 8)
			snprintf(o->id[o->mine], ID_MAX, "%s", d->rec.delegation_id);
		o->mine++;
	}
	o->n++;
	return 0;
}

static int overdue_at(struct store *s, const char *org_id, int64_t before, int64_t now,
		      int limit, struct overdue *o)
{
	memset(o, 0, sizeof(*o));
	o->org_id = org_id;
	o->ordered = o->all_dispatched = 1;
	o->last_expires = INT64_MIN;
	return s->ops->delegation_overdue(s, before, now, limit, collect_overdue, o);
}

/* Orphans only: no approval deadline has come at time 0. */
static int overdue(struct store *s, const char *org_id, int64_t before, int limit,
		   struct overdue *o)
{
	return overdue_at(s, org_id, before, 0, limit, o);
}

/* Dispatched and past expiry, any org, oldest first. The rows use tiny
 * expiry times so no other test's open rows qualify, and the test settles
 * its own at the end (a PostgreSQL database is shared across runs). */
LEDGER_CASE(overdue_finds_orphans)
{
	struct org_fix a, b;
	struct delegation d[3], late, pend, done_d, ob, x;
	struct overdue o;

	ASSERT_EQ(org_fix_create(s, &a), 0);
	ASSERT_EQ(org_fix_create(s, &b), 0);
	for (int i = 0; i < 3; i++) {
		del_init(&d[i], a.org.org_id, "", CAP, "dispatched", -1, 100 + i);
		d[i].expires_at = 130 + 2 * i;
		ASSERT_EQ(open1(s, &d[i], 100 + i), 0);
	}
	del_init(&late, a.org.org_id, "", CAP, "dispatched", -1, 110);
	late.expires_at = 500; /* not yet */
	ASSERT_EQ(open1(s, &late, 110), 0);
	del_init(&pend, a.org.org_id, "", CAP, "pending_approval", -1, 101);
	pend.expires_at = 131; /* pending approvals are not the sweeper's */
	ASSERT_EQ(open1(s, &pend, 101), 0);
	del_init(&done_d, a.org.org_id, "", CAP, "dispatched", -1, 100);
	done_d.expires_at = 129;
	ASSERT_EQ(open1(s, &done_d, 100), 0);
	ASSERT_EQ(settle1(s, &done_d, &x, "completed", 1, 1.0, 120), 0); /* settled */
	del_init(&ob, b.org.org_id, "", CAP, "dispatched", -1, 103);
	ob.expires_at = 133; /* another org's: found too */
	ASSERT_EQ(open1(s, &ob, 103), 0);

	ASSERT_EQ(overdue(s, a.org.org_id, 200, 1000, &o), 0);
	ASSERT(o.ordered);
	ASSERT(o.all_dispatched);
	ASSERT_EQ(o.mine, 3);
	for (int i = 0; i < 3; i++)
		ASSERT_STR_EQ(o.id[i], d[i].rec.delegation_id);
	ASSERT_EQ(overdue(s, b.org.org_id, 200, 1000, &o), 0);
	ASSERT_EQ(o.mine, 1);
	ASSERT_STR_EQ(o.id[0], ob.rec.delegation_id);
	/* expires_at < before, strictly */
	ASSERT_EQ(overdue(s, a.org.org_id, 132, 1000, &o), 0);
	ASSERT_EQ(o.mine, 1);
	ASSERT_STR_EQ(o.id[0], d[0].rec.delegation_id);
	/* at most limit */
	ASSERT_EQ(overdue(s, a.org.org_id, 200, 2, &o), 0);
	ASSERT_EQ(o.n, 2);
	ASSERT(o.ordered);

	/* the sweeper's settle takes them out */
	for (int i = 0; i < 3; i++)
		ASSERT_EQ(settle1(s, &d[i], &x, "timed_out", 0, 0.0, 300), 0);
	ASSERT_EQ(settle1(s, &ob, &x, "timed_out", 0, 0.0, 300), 0);
	ASSERT_EQ(settle1(s, &late, &x, "completed", 0, 1.0, 300), 0);
	ASSERT_EQ(settle1(s, &pend, &x, "expired", 0, 0.0, 300), 0);
	ASSERT_EQ(overdue(s, a.org.org_id, 1000, 1000, &o), 0);
	ASSERT_EQ(o.mine, 0);
}

LEDGER_CASE(overdue_finds_expired_approvals)
{
	struct org_fix a;
	struct delegation due, later, forever, x;
	struct overdue o;

	ASSERT_EQ(org_fix_create(s, &a), 0);
	del_init(&due, a.org.org_id, "", CAP, "pending_approval", -1, 100);
	due.expires_at = 160;
	ASSERT_EQ(open1(s, &due, 100), 0);
	del_init(&later, a.org.org_id, "", CAP, "pending_approval", -1, 100);
	later.expires_at = 161;
	ASSERT_EQ(open1(s, &later, 100), 0);
	del_init(&forever, a.org.org_id, "", CAP, "pending_approval", -1, 100);
	ASSERT_EQ(open1(s, &forever, 100), 0); /* no deadline: never expires */
	ASSERT_EQ(overdue_at(s, a.org.org_id, 0, 159, 1000, &o), 0);
	ASSERT_EQ(o.mine, 0);
	ASSERT_EQ(overdue_at(s, a.org.org_id, 0, 160, 1000, &o), 0); /* at the deadline */
	ASSERT_EQ(o.mine, 1);
	ASSERT_STR_EQ(o.id[0], due.rec.delegation_id);
	ASSERT_EQ(overdue_at(s, a.org.org_id, 0, 1000000, 1000, &o), 0);
	ASSERT_EQ(o.mine, 2);
	ASSERT(o.ordered);
	ASSERT_STR_EQ(o.id[0], due.rec.delegation_id);
	ASSERT_STR_EQ(o.id[1], later.rec.delegation_id);
	/* the sweeper expires it: it leaves the list */
	ASSERT_EQ(settle1(s, &due, &x, "expired", 0, 0.0, 170), 0);
	ASSERT_EQ(overdue_at(s, a.org.org_id, 0, 1000000, 1000, &o), 0);
	ASSERT_EQ(o.mine, 1);
	ASSERT_STR_EQ(o.id[0], later.rec.delegation_id);
}

/* ---- billing delivery (store.h "Billing delivery") ----------------------- */

static int list_states(void *ctx, const struct billing_event *e)
{
	char *out = ctx;
	size_t n = strlen(out);

	snprintf(out + n, 256 - n, "%s%c", e->state, ' ');
	return 0;
}

LEDGER_CASE(billing_claim_lease_finish_retry)
{
	struct org_fix a, b;
	struct delegation d[3], x;
	struct ledger_op op;
	struct billing_settings set, got;
	struct billing_event ev[8], one;
	struct billing_result res[2];
	const char *secret = "sk_live_0123456789abcdef";
	char states[256] = "", *opened = NULL;
	int n = -1;
	int64_t cnt = -1;

	ASSERT_EQ(org_fix_create(s, &a), 0);
	ASSERT_EQ(org_fix_create(s, &b), 0);
	for (int i = 0; i < 3; i++) {
		del_init(&d[i], a.org.org_id, "", CAP, "dispatched", -1, T0 + i);
		ASSERT_EQ(open1(s, &d[i], T0 + i), 0);
		settle_init(&x, &d[i], "completed", 1000 * (i + 1));
		op_settle(&op, &x, 1, T0 + i);
		ASSERT_EQ(apply1(s, &op), 0);
	}
	/* not connected: nothing is due, however late */
	ASSERT_EQ(s->ops->billing_claim(s, T0 + 100, T0 + 120, "A", ev, 8, &n), 0);
	ASSERT_EQ(n, 0);
	memset(&set, 0, sizeof(set));
	snprintf(set.org_id, sizeof(set.org_id), "%s", a.org.org_id);
	snprintf(set.mode, sizeof(set.mode), "live");
	snprintf(set.customer_id, sizeof(set.customer_id), "cus_123");
	snprintf(set.meter_event_name, sizeof(set.meter_event_name), "nexra_usage");
	set.updated_at = T0;
	ASSERT_EQ(seal(seal_key, secret, strlen(secret), "stripe:x/live", &set.secret_sealed,
		       &set.secret_sealed_len), 0);
	ASSERT_EQ(s->ops->billing_settings_put(s, &set), 0);
	ASSERT_EQ(s->ops->billing_settings_put(s, &set), 0); /* replaces */
	ASSERT_EQ(s->ops->billing_settings_get(s, a.org.org_id, "live", &got), 0);
	ASSERT_STR_EQ(got.customer_id, "cus_123");
	ASSERT_EQ(got.secret_sealed_len, set.secret_sealed_len);
	ASSERT_EQ(unseal(seal_key, got.secret_sealed, got.secret_sealed_len, "stripe:x/live",
			 &opened, NULL), 0);
	ASSERT_STR_EQ(opened, secret);
	free(opened);
	billing_settings_release(&got);
	ASSERT_EQ(s->ops->billing_settings_get(s, a.org.org_id, "test", &got), E(NOT_FOUND));
	ASSERT_EQ(s->ops->billing_settings_get(s, b.org.org_id, "live", &got), E(NOT_FOUND));
	ASSERT_EQ(s->ops->billing_settings_delete(s, b.org.org_id, "live"), E(NOT_FOUND));

	/* A claims two, oldest first; B gets only the third while A's lease runs */
	ASSERT_EQ(s->ops->billing_claim(s, T0 + 10, T0 + 30, "A", ev, 2, &n), 0);
	ASSERT_EQ(n, 2);
	ASSERT(!strcmp(ev[0].delegation_id, d[0].rec.delegation_id) ||
	       !strcmp(ev[1].delegation_id, d[0].rec.delegation_id));
	ASSERT_EQ(ev[0].attempts, 1);
	ASSERT_STR_EQ(ev[0].state, "pending");
	ASSERT_EQ(s->ops->billing_claim(s, T0 + 10, T0 + 60, "B", ev + 2, 6, &n), 0);
	ASSERT_EQ(n, 1);
	ASSERT_STR_EQ(ev[2].delegation_id, d[2].rec.delegation_id);
	ASSERT_EQ(ev[2].amount_micros, 3000);
	ASSERT_EQ(ev[2].created_at, T0 + 2);
	ASSERT_EQ(s->ops->billing_claim(s, T0 + 29, T0 + 49, "B", ev + 3, 5, &n), 0);
	ASSERT_EQ(n, 0);
	/* A's lease ran out: B takes both over */
	ASSERT_EQ(s->ops->billing_claim(s, T0 + 30, T0 + 50, "B", ev + 3, 5, &n), 0);
	ASSERT_EQ(n, 2);
	ASSERT_EQ(ev[3].attempts, 2);
	/* A's late verdicts: a failure no longer counts, a success does */
	res[0] = (struct billing_result){.billing_id = ev[0].billing_id, .outcome = BILLING_DEAD,
					 .error = "late"};
	res[1] = (struct billing_result){.billing_id = ev[1].billing_id, .outcome = BILLING_SENT};
	ASSERT_EQ(s->ops->billing_finish(s, "A", res, 2, T0 + 31), 0);
	/* B: the first dead, the third retried later */
	res[0] = (struct billing_result){.billing_id = ev[0].billing_id, .outcome = BILLING_DEAD,
					 .error = "Stripe answered 400: no such customer"};
	res[1] = (struct billing_result){.billing_id = ev[2].billing_id, .outcome = BILLING_RETRY,
					 .next_attempt_at = T0 + 100, .error = "HTTP 500"};
	ASSERT_EQ(s->ops->billing_finish(s, "B", res, 2, T0 + 32), 0);
	ASSERT_EQ(s->ops->billing_list(s, a.org.org_id, NULL, 10, 0, list_states, states), 0);
	ASSERT_STR_EQ(states, "pending sent dead "); /* newest first */
	ASSERT_EQ(s->ops->billing_claim(s, T0 + 99, T0 + 200, "C", ev + 5, 3, &n), 0);
	ASSERT_EQ(n, 0); /* the retry is not due yet; dead and sent never are */
	ASSERT_EQ(s->ops->billing_count(s, "dead", &cnt), 0);
	ASSERT(cnt >= 1);

	/* retry: dead only, own org only */
	ASSERT_EQ(s->ops->billing_retry(s, a.org.org_id, ev[1].billing_id, T0 + 40, &one),
		  E(CONFLICT));
	ASSERT_STR_EQ(one.state, "sent");
	ASSERT_EQ(s->ops->billing_retry(s, b.org.org_id, ev[0].billing_id, T0 + 40, &one),
		  E(NOT_FOUND));
	ASSERT_EQ(s->ops->billing_retry(s, a.org.org_id, "bill_nope", T0 + 40, &one),
		  E(NOT_FOUND));
	ASSERT_EQ(s->ops->billing_retry(s, a.org.org_id, ev[0].billing_id, T0 + 40, &one), 0);
	ASSERT_STR_EQ(one.state, "pending");
	ASSERT_EQ(one.attempts, 2);
	ASSERT_STR_EQ(one.last_error, "Stripe answered 400: no such customer");
	/* disconnected: due events wait */
	ASSERT_EQ(s->ops->billing_settings_delete(s, a.org.org_id, "live"), 0);
	ASSERT_EQ(s->ops->billing_claim(s, T0 + 200, T0 + 220, "C", ev + 5, 3, &n), 0);
	ASSERT_EQ(n, 0);
	ASSERT_EQ(s->ops->billing_settings_put(s, &set), 0);
	ASSERT_EQ(s->ops->billing_claim(s, T0 + 200, T0 + 220, "C", ev + 5, 3, &n), 0);
	ASSERT_EQ(n, 2);
	billing_settings_release(&set);
}
