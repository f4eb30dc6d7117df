/*
 * auth/ratelimit: the sliding log checked against a naive model that keeps
 * every admitted time and counts those inside the window, plus the
 * per-org table and its locking.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "auth/ratelimit.h"
#include "core/err.h"
#include "core/rand.h"
#include "test.h"

#define W 60000 /* ms */

static uint64_t rng = 0x2545f4914f6cdd1dull;

static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* Admitted times in the window (now - W, now] of the naive model. */
static int naive_count(const int64_t *admitted, int n, int64_t now)
{
	int c = 0;

	for (int i = n - 1; i >= 0 && admitted[i] > now - W; i--)
		c++;
	return c;
}

/* A copy of l (the test probes the future without disturbing l). */
static int log_clone(const struct rl_log *l, struct rl_log *out)
{
	if (rl_log_init(out, l->cap))
		return -1;
	memcpy(out->t, l->t, (size_t)l->cap * sizeof(*l->t));
	out->head = l->head;
	out->count = l->count;
	return 0;
}

/* 1 if a request at t would be admitted by a copy of l. */
static int would_admit(const struct rl_log *l, int limit, int64_t t)
{
	struct rl_log c;
	struct rl_result r;

	if (log_clone(l, &c))
		return -1;
	rl_log_check(&c, limit, W, t, &r);
	rl_log_release(&c);
	return r.allowed;
}

static void against_model(int limit, int arrivals)
{
	struct rl_log l;
	struct rl_result r;
	int64_t *admitted = malloc((size_t)arrivals * sizeof(*admitted));
	int64_t now = 1700000000000LL;
	int nadm = 0, refused = 0;
	/* mean gap a bit under W / limit, so both outcomes are common */
	uint64_t spread = (uint64_t)(2 * W / limit) * 3 / 4 + 2;

	ASSERT(admitted);
	if (rl_log_init(&l, limit)) {
		free(admitted);
		FAIL_AT("rl_log_init(%d)", limit);
	}
	for (int i = 0; i < arrivals; i++) {
		int inwin = naive_count(admitted, nadm, now), want = inwin < limit;

		rl_log_check(&l, limit, W, now, &r);
		if (r.allowed != want || r.limit != limit) {
			rl_log_release(&l);
			free(admitted);
			FAIL_AT("limit %d arrival %d at %lld: allowed %d, model says %d", limit, i,
				(long long)now, r.allowed, want);
		}
		if (r.allowed) {
			admitted[nadm++] = now;
			if (r.remaining != limit - (inwin + 1) || r.retry_after_s != 0)
				FAIL_AT("remaining %d retry %lld", r.remaining,
					(long long)r.retry_after_s);
			if (naive_count(admitted, nadm, now) > limit)
				FAIL_AT("more than %d in a window", limit);
		} else {
			int64_t next = now + r.retry_after_s * 1000;

			refused++;
			if (r.remaining != 0 || r.retry_after_s < 1 || r.retry_after_s > W / 1000)
				FAIL_AT("refused with remaining %d retry %lld", r.remaining,
					(long long)r.retry_after_s);
			/* admitted at now + retry_after, and not a second earlier */
			if (would_admit(&l, limit, next) != 1)
				FAIL_AT("not admitted %lld s later as promised",
					(long long)r.retry_after_s);
			if (r.retry_after_s > 1 && would_admit(&l, limit, next - 1000) != 0)
				FAIL_AT("admitted before retry_after (%lld s)",
					(long long)r.retry_after_s);
		}
		if (r.reset_s < 0 || r.reset_s > W / 1000)
			FAIL_AT("reset_s %lld", (long long)r.reset_s);
		/* several arrivals in the same millisecond now and then */
		if (next_rand() % 8)
			now += (int64_t)(next_rand() % spread);
	}
	rl_log_release(&l);
	free(admitted);
	ASSERT(refused > arrivals / 10);
	ASSERT(nadm > arrivals / 10);
}

TEST(ratelimit_log_matches_naive_model_limit_1)
{
	against_model(1, 5000);
}

TEST(ratelimit_log_matches_naive_model_limit_3)
{
	against_model(3, 5000);
}

TEST(ratelimit_log_matches_naive_model_limit_100)
{
	against_model(100, 20000);
}

TEST(ratelimit_log_window_edges)
{
	struct rl_log l;
	struct rl_result r;

	ASSERT_EQ(rl_log_init(&l, 2), 0);
	rl_log_check(&l, 2, W, 1000, &r);
	ASSERT(r.allowed);
	ASSERT_EQ(r.remaining, 1);
	ASSERT_EQ(r.reset_s, 60);
	rl_log_check(&l, 2, W, 1500, &r);
	ASSERT(r.allowed);
	ASSERT_EQ(r.remaining, 0);
	rl_log_check(&l, 2, W, 60999, &r); /* 1 ms before the first leaves */
	ASSERT(!r.allowed);
	ASSERT_EQ(r.retry_after_s, 1);
	rl_log_check(&l, 2, W, 61000, &r); /* exactly W after: out of the window */
	ASSERT(r.allowed);
	ASSERT_EQ(r.remaining, 0);
	rl_log_check(&l, 2, W, 61000, &r);
	ASSERT(!r.allowed);
	ASSERT_EQ(r.retry_after_s, 1); /* 1500 + 60000 - 61000 = 500 ms -> 1 s */
	rl_log_check(&l, 2, W, 2000, &r); /* far in the past still counts all */
	ASSERT(!r.allowed);
	ASSERT_EQ(r.retry_after_s, 60);
	rl_log_release(&l);
	ASSERT_EQ(rl_log_init(&l, 0), E(INTERNAL));
	ASSERT_EQ(rl_log_init(&l, RL_MAX_LIMIT + 1), E(INTERNAL));
}

TEST(ratelimiter_orgs_independent_and_limit_change_resets)
{
	struct ratelimiter rl;
	struct rl_result r;
	int64_t now = 5000000;

	ASSERT_EQ(ratelimiter_init(&rl, W), 0);
	for (int i = 0; i < 3; i++) {
		ASSERT_EQ(ratelimiter_check(&rl, "org_a", 3, now, &r), 0);
		ASSERT(r.allowed);
		ASSERT_EQ(r.remaining, 2 - i);
	}
	ASSERT_EQ(ratelimiter_check(&rl, "org_a", 3, now, &r), 0);
	ASSERT(!r.allowed);
	ASSERT(r.retry_after_s >= 1);
	/* another org is unaffected */
	ASSERT_EQ(ratelimiter_check(&rl, "org_b", 3, now, &r), 0);
	ASSERT(r.allowed);
	ASSERT_EQ(r.remaining, 2);
	ASSERT_EQ(ratelimiter_check(&rl, "org_a", 3, now + 1, &r), 0);
	ASSERT(!r.allowed);
	/* the plan changed: a fresh log at the new limit */
	ASSERT_EQ(ratelimiter_check(&rl, "org_a", 5, now + 2, &r), 0);
	ASSERT(r.allowed);
	ASSERT_EQ(r.limit, 5);
	ASSERT_EQ(r.remaining, 4);
	/* unlimited */
	for (int i = 0; i < 100; i++) {
		ASSERT_EQ(ratelimiter_check(&rl, "org_c", 0, now, &r), 0);
		ASSERT(r.allowed);
		ASSERT_EQ(r.remaining, -1);
		ASSERT_EQ(ratelimiter_check(&rl, "org_c", -5, now, &r), 0);
		ASSERT(r.allowed);
	}
	/* the window passes */
	ASSERT_EQ(ratelimiter_check(&rl, "org_b", 3, now + W, &r), 0);
	ASSERT(r.allowed);
	ASSERT_EQ(r.remaining, 2);
	/* many orgs sharing slots of the hash table */
	for (int i = 0; i < 10000; i++) {
		char id[32];

		snprintf(id, sizeof(id), "org_%08x", i);
		ASSERT_EQ(ratelimiter_check(&rl, id, 1, now, &r), 0);
		ASSERT(r.allowed);
	}
	for (int i = 0; i < 10000; i += 7) {
		char id[32];

		snprintf(id, sizeof(id), "org_%08x", i);
		ASSERT_EQ(ratelimiter_check(&rl, id, 1, now, &r), 0);
		ASSERT(!r.allowed);
	}
	ratelimiter_release(&rl);
}

/* An org id too long to be one of ours is refused, not stored cut short
 * (a truncated id would never match itself and never be limited). */
TEST(ratelimiter_refuses_overlong_org_id)
{
	struct ratelimiter rl;
	struct rl_result r;
	char id[ID_MAX + 10];

	memset(id, 'x', sizeof(id) - 1);
	id[sizeof(id) - 1] = '\0';
	ASSERT_EQ(ratelimiter_init(&rl, W), 0);
	ASSERT_EQ(ratelimiter_check(&rl, id, 1, 1000, &r), E(VALIDATION));
	id[ID_MAX - 1] = '\0'; /* the longest that fits */
	ASSERT_EQ(ratelimiter_check(&rl, id, 1, 1000, &r), 0);
	ASSERT(r.allowed);
	ASSERT_EQ(ratelimiter_check(&rl, id, 1, 1000, &r), 0);
	ASSERT(!r.allowed);
	ratelimiter_release(&rl);
}

static int entries(const struct ratelimiter *rl)
{
	int n = 0;

	for (unsigned i = 0; i < rl->nslots; i++)
		for (const struct rl_entry *e = rl->slots[i]; e; e = e->next)
			n++;
	return n;
}

/* Idle orgs are swept: memory follows the orgs active in the window, and
 * an org that is still inside its window keeps its log (and its limit). */
TEST(ratelimiter_sweeps_idle_orgs)
{
	struct ratelimiter rl;
	struct rl_result r;
	char id[32];

	ASSERT_EQ(ratelimiter_init(&rl, W), 0);
	ASSERT_EQ(ratelimiter_check(&rl, "org_busy", 1, 5 * W, &r), 0);
	for (int i = 0; i < RL_SWEEP_EVERY - 2; i++) {
		snprintf(id, sizeof(id), "org_%08x", i);
		ASSERT_EQ(ratelimiter_check(&rl, id, 10, 1000, &r), 0);
	}
	ASSERT_EQ(entries(&rl), RL_SWEEP_EVERY - 1);
	/* the next new org triggers a sweep at 5W: only org_busy is recent */
	ASSERT_EQ(ratelimiter_check(&rl, "org_new", 10, 5 * W, &r), 0);
	ASSERT_EQ(entries(&rl), 2);
	ASSERT_EQ(ratelimiter_check(&rl, "org_busy", 1, 5 * W + 1, &r), 0);
	ASSERT(!r.allowed);
	ratelimiter_release(&rl);
}

struct race {
	struct ratelimiter *rl;
	pthread_barrier_t *go;
	const char *org;
	int admitted;
	int errors;
};

static void *hammer(void *arg)
{
	struct race *x = arg;
	struct rl_result r;

	pthread_barrier_wait(x->go);
	for (int i = 0; i < 1000; i++) {
		if (ratelimiter_check(x->rl, x->org, 100, 42000000, &r))
			x->errors++;
		else if (r.allowed)
			x->admitted++;
	}
	return NULL;
}

/* 4 threads x 1000 calls for one org at one instant, started together
 * (several rounds, each on a fresh org so the entry is created under
 * contention too): exactly the limit is admitted. */
TEST(ratelimiter_threads_admit_exactly_the_limit)
{
	struct ratelimiter rl;
	pthread_barrier_t go;

	ASSERT_EQ(ratelimiter_init(&rl, W), 0);
	for (int round = 0; round < 20; round++) {
		struct race x[4];
		pthread_t th[4];
		char org[32];
		int total = 0, errors = 0;

		snprintf(org, sizeof(org), "org_race_%d", round);
		pthread_barrier_init(&go, NULL, 4);
		for (int i = 0; i < 4; i++) {
			x[i] = (struct race){&rl, &go, org, 0, 0};
			if (pthread_create(&th[i], NULL, hammer, &x[i]))
				FAIL_AT("pthread_create");
		}
		for (int i = 0; i < 4; i++) {
			pthread_join(th[i], NULL);
			total += x[i].admitted;
			errors += x[i].errors;
		}
		pthread_barrier_destroy(&go);
		if (total != 100 || errors) {
			ratelimiter_release(&rl);
			FAIL_AT("round %d: %d admitted (limit 100), %d errors", round, total, errors);
		}
	}
	ratelimiter_release(&rl);
}
