/*
 * In-process policy decisions per second on one core, for stacks of 10,
 * 1,000 and 10,000 rules over 100 distinct capabilities, beside two
 * baselines measured in the same run over the same requests: an empty
 * loop (what the harness itself costs) and one hash-map lookup of the
 * request's capability in a plain table of the 100 names (the least a
 * capability-indexed decision can do). Absolute numbers drift between
 * runs on a shared machine; the ratios to the baselines do not, much.
 *
 * Stacks are built the way the server builds them: YAML text per policy,
 * policy_parse, policy_stack_add, policy_stack_compile. A policy holds 100
 * rules (one per capability, in a shuffled order, with budget, trust,
 * allowlist and HiTL constraints varying); 10 rules is one policy naming
 * 10 capabilities, 1,000 is 10 policies, 10,000 is 100 policies. Requests
 * cycle over 128 capabilities (28 named by no rule: default-deny) with
 * varying budgets, trust scores and callers, so every verdict occurs.
 *
 * Each figure is the median of 5 timed runs of about 0.2 s each. Goals
 * (issue #3): >= 1,000,000 decisions/s at 1,000 rules, and 10,000 rules
 * no more than 2x slower than 1,000.
 *
 * Usage: policy_bench [seconds per run, default 0.2]
 * Exit status: 0 (a measurement), 1 when a stack could not be built.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "policy/stack.h"
#include "core/banned.h"

#define NCAPS 100
#define NREQ_CAPS 128
#define NREQ 4096
#define RUNS 5

static char caps[NREQ_CAPS][16];
static struct policy_request reqs[NREQ];
static volatile uint64_t sink;
static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One policy's YAML: rules for the capabilities perm[0..n), varying. */
static char *policy_yaml(const int *perm, int n, int salt)
{
	size_t cap = (size_t)n * 256 + 64, len = 0;
	char *s = malloc(cap);

	if (!s)
		return NULL;
	len += (size_t)snprintf(s + len, cap - len, "rules:\n");
	for (int j = 0; j < n; j++) {
		int k = perm[j], v = (k + salt) % 4;

		len += (size_t)snprintf(s + len, cap - len,
					"  - capability: %s\n    max_budget_usd: %d.%02d\n", caps[k],
					v, 5 + k % 90);
		if (v != 3)
			len += (size_t)snprintf(s + len, cap - len, "    min_trust_score: 0.%d\n",
						5 + v);
		if (v == 1)
			len += (size_t)snprintf(s + len, cap - len,
						"    caller_allowlist: [sales-agent, ops-agent, "
						"caller-%d, caller-%d]\n",
						k, k + 1);
		if (v == 2)
			len += (size_t)snprintf(s + len, cap - len,
						"    hitl_required: true\n    hitl_timeout_seconds: "
						"600\n    circuit_breaker: {max_failures: 3, "
						"window_seconds: 300}\n");
	}
	return s;
}

static struct policy_stack *build(int nrules)
{
	struct policy_stack *s = NULL;
	int per = nrules < NCAPS ? nrules : NCAPS, npol = nrules / per;
	int perm[NCAPS];

	if (policy_stack_new(&s))
		return NULL;
	for (int p = 0; p < npol; p++) {
		struct policy_doc *doc = NULL;
		struct policy_err err;
		char id[32];
		struct policy_meta m = {id, 1, p % 7, 1, p, NULL};
		char *y;

		for (int k = 0; k < NCAPS; k++)
			perm[k] = k;
		for (int k = NCAPS - 1; k > 0; k--) {
			int r = (int)(next_rand() % (uint64_t)(k + 1)), t = perm[k];

			perm[k] = perm[r];
			perm[r] = t;
		}
		snprintf(id, sizeof(id), "pol_%d", p);
		y = policy_yaml(perm, per, p);
		if (!y || policy_parse(y, strlen(y), &doc, &err)) {
			fprintf(stderr, "policy_bench: %s\n", y ? err.message : "out of memory");
			free(y);
			policy_stack_free(s);
			return NULL;
		}
		free(y);
		if (policy_stack_add(s, &m, doc)) {
			policy_stack_free(s);
			return NULL;
		}
	}
	if (policy_stack_compile(s)) {
		policy_stack_free(s);
		return NULL;
	}
	return s;
}

/* ------------------------------------------------- the three loops -- */

static void run_empty(uint64_t n)
{
	uint64_t acc = 0;

	for (uint64_t i = 0; i < n; i++)
		acc += (unsigned char)reqs[i & (NREQ - 1)].capability[0];
	sink += acc;
}

/* The baseline table: FNV-1a and linear probing, as a plain map would. */
struct bslot {
	uint64_t h;
	const char *key;
	int value;
};
static struct bslot btab[256];

static uint64_t fnv(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

static void btab_init(void)
{
	for (int k = 0; k < NCAPS; k++) {
		uint64_t h = fnv(caps[k]);
		size_t i = h & 255;

		while (btab[i].key)
			i = (i + 1) & 255;
		btab[i].h = h;
		btab[i].key = caps[k];
		btab[i].value = k;
	}
}

static void run_hash(uint64_t n)
{
	uint64_t acc = 0;

	for (uint64_t i = 0; i < n; i++) {
		const char *c = reqs[i & (NREQ - 1)].capability;
		uint64_t h = fnv(c);
		size_t j = h & 255;

		while (btab[j].key && (btab[j].h != h || strcmp(btab[j].key, c)))
			j = (j + 1) & 255;
		acc += btab[j].key ? (uint64_t)btab[j].value : 1000;
	}
	sink += acc;
}

static const struct policy_stack *cur;

static void run_decide(uint64_t n)
{
	uint64_t acc = 0;
	struct policy_decision d;

	for (uint64_t i = 0; i < n; i++) {
		policy_decide(cur, &reqs[i & (NREQ - 1)], &d);
		acc += (uint64_t)d.verdict + d.failed;
	}
	sink += acc;
}

/* Median operations/s over RUNS runs of about secs each. */
static double measure(void (*fn)(uint64_t), double secs)
{
	double rates[RUNS];
	uint64_t n = 1000;
	double t0, t;

	for (;;) { /* calibrate */
		t0 = now_s();
		fn(n);
		t = now_s() - t0;
		if (t > secs / 10)
			break;
		n *= 4;
	}
	n = (uint64_t)((double)n * secs / t) + 1;
	for (int r = 0; r < RUNS; r++) {
		t0 = now_s();
		fn(n);
		rates[r] = (double)n / (now_s() - t0);
	}
	for (int a = 1; a < RUNS; a++)
		for (int b = a; b > 0 && rates[b - 1] > rates[b]; b--) {
			double x = rates[b];

			rates[b] = rates[b - 1];
			rates[b - 1] = x;
		}
	return rates[RUNS / 2];
}

int main(int argc, char **argv)
{
	static const int sizes[] = {10, 1000, 10000};
	static const char *const callers[] = {"sales-agent", "ops-agent", "intruder", "caller-7"};
	double secs = argc > 1 ? strtod(argv[1], NULL) : 0.2;
	double empty, hash, rate[3];
	int rc = 0;

	if (!(secs > 0.001 && secs < 60))
		secs = 0.2;
	for (int k = 0; k < NREQ_CAPS; k++)
		snprintf(caps[k], sizeof(caps[k]), k < NCAPS ? "cap_%03d" : "other_%03d", k);
	for (int i = 0; i < NREQ; i++) {
		struct policy_request *r = &reqs[i];

		r->capability = caps[next_rand() % NREQ_CAPS];
		r->caller_agent_id = callers[next_rand() % 4];
		r->callee_agent_id = "callee";
		r->budget_cap_micros = (int64_t)(next_rand() % 4000000);
		r->callee_trust_score = (double)(next_rand() % 1000) / 1000.0;
		r->callee_circuit_open = next_rand() % 50 == 0;
		r->now = 1742137358;
	}
	btab_init();

	empty = measure(run_empty, secs);
	hash = measure(run_hash, secs);
	printf("policy decisions, one core, %d requests over %d capabilities (%d named by rules), "
	       "median of %d x %.2fs\n",
	       NREQ, NREQ_CAPS, NCAPS, RUNS, secs);
	printf("%-44s %14.0f /s\n", "baseline: empty loop over the requests", empty);
	printf("%-44s %14.0f /s\n", "baseline: one hash-map lookup of capability", hash);
	for (int i = 0; i < 3; i++) {
		struct policy_stack *s = build(sizes[i]);
		char label[64];

		if (!s) {
			fprintf(stderr, "policy_bench: cannot build a stack of %d rules\n", sizes[i]);
			return 1;
		}
		cur = s;
		rate[i] = measure(run_decide, secs);
		snprintf(label, sizeof(label), "policy_decide, %d rules (%zu policies)", sizes[i],
			 policy_stack_enabled(s));
		printf("%-44s %14.0f /s  %5.2fx the hash lookup's time\n", label, rate[i],
		       hash / rate[i]);
		policy_stack_free(s);
	}
	printf("goal: >= 1000000 decisions/s at 1,000 rules: %.0f  %s\n", rate[1],
	       rate[1] >= 1e6 ? "PASS" : "FAIL");
	printf("goal: 10,000 rules no more than 2x slower than 1,000: %.2fx  %s\n",
	       rate[1] / rate[2], rate[1] / rate[2] <= 2.0 ? "PASS" : "FAIL");
	return rc;
}
