/*
 * Audit figures for `make bench` (docs/bench.md), in-process on one core:
 *
 * 1. Offline verification speed: a JSONL export of 1,000,000 entries
 *    (written here the way the server writes them, with a signed
 *    checkpoint) is verified from the file with audit_verify_stream, as
 *    `nexra audit verify` does. Entries/s; the goal is >= 1,000,000/s.
 *    Counted in the CPU time of the verifying thread
 *    (CLOCK_THREAD_CPUTIME_ID), as schema_bench does: on a shared 2-vCPU
 *    box the wall clock also counts time the core was given to a
 *    neighbour. The wall-clock rate is printed beside it. The hashing-only
 *    ceiling follows: the same SHA-256 work (a leaf of a 330-byte entry and
 *    the tree nodes, 1,000,000 times) from memory, one message at a time
 *    and in SIMD lanes as the verifier does, so the gap to the goal is
 *    explained by numbers.
 * 2. What the audit append costs a delegation: on a temporary SQLite
 *    database, DELS delegations go through the ledger (OPEN dispatched then
 *    SETTLE completed, one op per transaction, as a lone request does), then
 *    the tree appender hashes their entries and stores the nodes (batches
 *    of AUDIT_BATCH, as the background appender does). Microseconds per
 *    delegation for each, and the ratio.
 */
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "audit/checkpoint.h"
#include "audit/entry.h"
#include "audit/log.h"
#include "audit/verify.h"
#include "core/rand.h"
#include "core/timefmt.h"
#include "store/store.h"
#include "core/banned.h"

#define ENTRIES 1000000
#define DELS 2000

static double secs(void)
{
	return (double)time_mono_ns() / 1e9;
}

static double cpu_secs(void)
{
	struct timespec t;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Entries/s of CPU time that hashing alone allows: 1 = one message at a
 * time (merkle_leaf, merkle_frontier_append), 0 = in batches as the
 * verifier does (merkle_leaves, merkle_frontier_append_many). */
static double hash_ceiling(const unsigned char *entry, size_t n, int one_at_a_time)
{
	static merkle_hash leaves[MERKLE_BATCH], work[MERKLE_BATCH];
	const unsigned char *p[MERKLE_BATCH];
	size_t len[MERKLE_BATCH];
	struct merkle_frontier f;
	double c0 = cpu_secs();

	for (int i = 0; i < MERKLE_BATCH; i++)
		p[i] = entry, len[i] = n;
	merkle_frontier_init(&f);
	for (int64_t done = 0; done < ENTRIES; done += MERKLE_BATCH) {
		size_t b = ENTRIES - done < MERKLE_BATCH ? (size_t)(ENTRIES - done) : MERKLE_BATCH;

		if (one_at_a_time) {
			for (size_t i = 0; i < b; i++) {
				merkle_leaf(entry, n, leaves[i]);
				merkle_frontier_append(&f, leaves[i], NULL, NULL);
			}
		} else {
			merkle_leaves(p, len, b, leaves);
			merkle_frontier_append_many(&f, leaves, b, work);
		}
	}
	return (double)f.size / (cpu_secs() - c0);
}

static void fake_entry(struct audit_entry *e, const char *org, int64_t i)
{
	memset(e, 0, sizeof(*e));
	snprintf(e->org_id, sizeof(e->org_id), "%s", org);
	e->event_id = i;
	snprintf(e->delegation_id, sizeof(e->delegation_id), "del_%024llx", (unsigned long long)i);
	e->ts = 1773670000 + i / 100;
	snprintf(e->caller_id, sizeof(e->caller_id), "sales-agent-%lld", (long long)(i % 7));
	snprintf(e->callee_id, sizeof(e->callee_id), "research-agent-v%lld", (long long)(i % 13));
	snprintf(e->policy_ref, sizeof(e->policy_ref), "prod-policy-v3");
	snprintf(e->decision, sizeof(e->decision), "ALLOW");
	snprintf(e->status, sizeof(e->status), "completed");
	e->cost_micros = (i % 1000) * 140;
	e->budget_remaining_micros = 4860000;
	e->trust_before = 0.5 + (double)(i % 100) / 1000.0;
	e->trust_after = 0.5 + (double)(i % 101) / 1000.0;
}

static int verify_speed(const char *dir)
{
	char path[512], hex[65];
	unsigned char pk[32], sk[64];
	struct merkle_frontier f;
	struct audit_verify_result res;
	struct audit_entry e;
	struct checkpoint cp;
	struct buf b, line;
	struct jsonw jw;
	merkle_hash leaf;
	double t0, t1, c0, c1;
	size_t elen;
	FILE *fp;
	int rc;

	snprintf(path, sizeof(path), "%s/export.jsonl", dir);
	fp = fopen(path, "w");
	if (!fp)
		return 1;
	crypto_sign_keypair(pk, sk);
	merkle_frontier_init(&f);
	buf_init(&b, AUDIT_ENTRY_MAX);
	buf_init(&line, 1 << 20);
	fprintf(fp, "{\"export\":{\"version\":1,\"org_id\":\"org_bench\",\"format\":\"jsonl\","
		    "\"first_event_id\":1,\"last_event_id\":%d,\"prefix_size\":0,\"prefix\":[]}}\n",
		ENTRIES);
	for (int64_t i = 1; i <= ENTRIES; i++) {
		fake_entry(&e, "org_bench", i);
		audit_entry_bytes(&e, &b);
		merkle_leaf(b.data, b.len, leaf);
		merkle_frontier_append(&f, leaf, NULL, NULL);
		hex_encode(leaf, 32, hex);
		fprintf(fp, "{\"entry\":%.*s,\"leaf_hash\":\"%s\"}\n", (int)b.len, b.data, hex);
	}
	memset(&cp, 0, sizeof(cp));
	snprintf(cp.org_id, sizeof(cp.org_id), "org_bench");
	cp.tree_size = ENTRIES;
	cp.timestamp = 1773670000;
	merkle_frontier_root(&f, cp.root);
	checkpoint_sign(&cp, sk);
	jw_init(&jw, &line);
	jw_raw(&jw, "{\"checkpoint\":");
	checkpoint_write(&jw, &cp, pk);
	jw_raw(&jw, "}\n");
	fwrite(line.data, 1, line.len, fp);
	fclose(fp);
	elen = b.len;

	fp = fopen(path, "r");
	if (!fp)
		return 1;
	t0 = secs();
	c0 = cpu_secs();
	rc = audit_verify_stream(fp, pk, NULL, &res);
	c1 = cpu_secs();
	t1 = secs();
	fclose(fp);
	unlink(path);
	if (rc) {
		fprintf(stderr, "audit_bench: verification failed: %s\n", res.message);
		buf_release(&b);
		buf_release(&line);
		return 1;
	}
	printf("audit verify (export file, one core): %lld entries in %.2f s of CPU time = %.0f "
	       "entries/s (goal >= 1000000); wall clock %.2f s = %.0f entries/s\n",
	       (long long)res.entries, c1 - c0, (double)res.entries / (c1 - c0), t1 - t0,
	       (double)res.entries / (t1 - t0));
	printf("audit hashing-only ceiling (%zu-byte entries, leaf + nodes, CPU time): one at a "
	       "time %.0f entries/s, in SIMD lanes %.0f entries/s\n",
	       elen, hash_ceiling((const unsigned char *)b.data, elen, 1),
	       hash_ceiling((const unsigned char *)b.data, elen, 0));
	buf_release(&b);
	buf_release(&line);
	return 0;
}

static void del_init(struct delegation *d, const char *org, int64_t at)
{
	memset(d, 0, sizeof(*d));
	rand_id(d->rec.delegation_id, "del_", 12);
	snprintf(d->rec.org_id, sizeof(d->rec.org_id), "%s", org);
	snprintf(d->rec.caller_agent_id, sizeof(d->rec.caller_agent_id), "sales-agent");
	snprintf(d->rec.capability, sizeof(d->rec.capability), "research");
	snprintf(d->rec.decision, sizeof(d->rec.decision), "allow");
	d->rec.budget_cap_micros = 250000;
	d->rec.created_at = at;
	snprintf(d->status, sizeof(d->status), "dispatched");
	snprintf(d->task_type, sizeof(d->task_type), "research");
	d->task_input = "{\"q\":\"competitors\"}";
	d->context_scope = "[]";
	d->policy_result = "{\"decision\":\"allow\"}";
	d->timeout_ms = 30000;
	time_month(at, d->period);
	d->budget_limit_micros = -1;
	d->reported_cost_micros = -1;
	d->llm_tokens = -1;
	d->latency_ms = -1;
	d->trust_before = d->trust_after = NAN;
	d->budget_remaining_micros = -1;
	d->dispatched_at = at;
	d->expires_at = at + 30;
}

static int append_cost(const char *dir)
{
	char uri[600], msg[300];
	struct store *s = NULL;
	struct org o = {.created_at = 1773670000};
	struct api_key live = {.kind = KEY_LIVE, .created_at = 1773670000};
	struct api_key test = {.kind = KEY_TEST, .created_at = 1773670000};
	struct delegation d, x;
	struct ledger_op op;
	double t0, t1, t2;
	int64_t size = 0, now = 1773670000;
	int appended, rc;

	snprintf(uri, sizeof(uri), "sqlite:%s/bench.db", dir);
	rc = store_open(uri, 2, &s, msg, sizeof(msg));
	if (!rc)
		rc = s->ops->migrate(s);
	rand_id(o.org_id, "org_", 8);
	snprintf(o.name, sizeof(o.name), "bench");
	snprintf(o.plan, sizeof(o.plan), "growth");
	rand_id(live.key_id, "key_", 8);
	rand_id(test.key_id, "key_", 8);
	snprintf(live.org_id, sizeof(live.org_id), "%s", o.org_id);
	snprintf(test.org_id, sizeof(test.org_id), "%s", o.org_id);
	snprintf(live.lookup, sizeof(live.lookup), "bench000live");
	snprintf(test.lookup, sizeof(test.lookup), "bench000test");
	if (!rc)
		rc = s->ops->org_create(s, &o, &live, &test);
	if (rc) {
		fprintf(stderr, "audit_bench: store: %s %s\n", msg, store_last_error());
		goto out;
	}
	t0 = secs();
	for (int i = 0; i < DELS && !rc; i++) {
		del_init(&d, o.org_id, now);
		memset(&op, 0, sizeof(op));
		op.kind = LEDGER_OPEN;
		op.d = &d;
		op.now = now;
		rc = s->ops->ledger_apply(s, &op, 1) || op.rc;
		memset(&x, 0, sizeof(x));
		x.rec = d.rec;
		snprintf(x.status, sizeof(x.status), "completed");
		x.cost_micros = x.reported_cost_micros = 140000;
		x.llm_tokens = x.latency_ms = -1;
		x.settled_at = now;
		memset(&op, 0, sizeof(op));
		op.kind = LEDGER_SETTLE;
		op.d = &x;
		op.now = now;
		op.promote_after = 5;
		if (!rc)
			rc = s->ops->ledger_apply(s, &op, 1) || op.rc;
	}
	t1 = secs();
	while (!rc && size < DELS) {
		rc = s->ops->audit_extend(s, o.org_id, AUDIT_BATCH, now, &size, &appended);
		if (!appended)
			break;
	}
	t2 = secs();
	if (rc || size != DELS) {
		fprintf(stderr, "audit_bench: ledger/appender failed: %s\n", store_last_error());
		rc = 1;
		goto out;
	}
	printf("audit append cost (SQLite, %d delegations): ledger %.1f us/delegation (open + "
	       "settle, one per commit), tree append %.1f us/entry (batches of %d): the audit "
	       "tree adds %.1f%% to a delegation\n",
	       DELS, (t1 - t0) * 1e6 / DELS, (t2 - t1) * 1e6 / DELS, AUDIT_BATCH,
	       100.0 * (t2 - t1) / (t1 - t0));
out:
	if (s)
		s->ops->close(s);
	return rc ? 1 : 0;
}

int main(void)
{
	const char *tmp = getenv("TMPDIR");
	char dir[400], path[600];
	int rc;

	snprintf(dir, sizeof(dir), "%s/nexra-audit-bench-XXXXXX", tmp && *tmp ? tmp : P_tmpdir);
	if (sodium_init() < 0 || !mkdtemp(dir))
		return 1;
	rc = verify_speed(dir);
	if (!rc)
		rc = append_cost(dir);
	for (const char *const *n = (const char *const[]){"bench.db", "bench.db-wal", "bench.db-shm",
							   NULL}; *n; n++) {
		snprintf(path, sizeof(path), "%s/%s", dir, *n);
		unlink(path);
	}
	rmdir(dir);
	return rc;
}
