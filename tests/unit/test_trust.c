/*
 * trust: every branch of the signal formula, the two alphas, and the
 * clamped update, with values worked out by hand from trust.h (the same
 * numbers as docs/trust.md).
 */
#include <math.h>
#include <stdint.h>

#include "test.h"
#include "trust/trust.h"

#define ASSERT_NEAR(a, b)                                                            \
	do {                                                                          \
		double x_ = (a), y_ = (b);                                           \
		if (!(fabs(x_ - y_) < 1e-12))                                        \
			FAIL_AT("ASSERT_NEAR(%s, %s): %.17g != %.17g", #a, #b, x_, y_); \
	} while (0)

/* A completed call on time and at the listed price. */
static struct trust_outcome good(void)
{
	struct trust_outcome o = {
		.completed = 1,
		.latency_ms = 800,
		.sla_p99_ms = 1000,
		.reported_cost_micros = 40000,
		.price_micros = 50000,
		.overrun = 0,
	};
	return o;
}

TEST(trust_signal_failure_is_zero)
{
	struct trust_outcome o = good();

	o.completed = 0;
	ASSERT_NEAR(trust_signal(&o), 0.0);
	o.latency_ms = 100000; /* nothing else matters */
	o.overrun = 1;
	ASSERT_NEAR(trust_signal(&o), 0.0);
}

TEST(trust_signal_perfect_is_one)
{
	struct trust_outcome o = good();

	ASSERT_NEAR(trust_signal(&o), 1.0);
	o.latency_ms = o.sla_p99_ms; /* at the SLA exactly */
	o.reported_cost_micros = o.price_micros;
	ASSERT_NEAR(trust_signal(&o), 1.0);
	o.latency_ms = -5; /* clock skew: still on time */
	o.reported_cost_micros = 0;
	ASSERT_NEAR(trust_signal(&o), 1.0);
}

TEST(trust_signal_latency_line)
{
	struct trust_outcome o = good();

	o.latency_ms = 1001; /* just past: 0.999 */
	ASSERT_NEAR(trust_signal(&o), 0.6 + 0.25 * 0.999 + 0.15);
	o.latency_ms = 1500; /* half way: 0.6 + 0.125 + 0.15 */
	ASSERT_NEAR(trust_signal(&o), 0.875);
	o.latency_ms = 1999;
	ASSERT_NEAR(trust_signal(&o), 0.6 + 0.25 * 0.001 + 0.15);
	o.latency_ms = 2000; /* twice the SLA: factor 0 */
	ASSERT_NEAR(trust_signal(&o), 0.75);
	o.latency_ms = INT64_MAX; /* far past: still 0, no overflow */
	ASSERT_NEAR(trust_signal(&o), 0.75);
	o.sla_p99_ms = 0; /* no SLA: latency not penalised */
	ASSERT_NEAR(trust_signal(&o), 1.0);
}

TEST(trust_signal_cost_line)
{
	struct trust_outcome o = good();

	o.reported_cost_micros = 75000; /* 1.5x the price: 0.6 + 0.25 + 0.075 */
	ASSERT_NEAR(trust_signal(&o), 0.925);
	o.reported_cost_micros = 100000; /* twice: 0 */
	ASSERT_NEAR(trust_signal(&o), 0.85);
	o.reported_cost_micros = INT64_MAX;
	ASSERT_NEAR(trust_signal(&o), 0.85);
	o.reported_cost_micros = -1; /* none reported: charged the price */
	ASSERT_NEAR(trust_signal(&o), 1.0);
}

TEST(trust_signal_overrun_and_free_callee)
{
	struct trust_outcome o = good();

	o.overrun = 1; /* cost factor 0 whatever was reported */
	ASSERT_NEAR(trust_signal(&o), 0.85);
	o.reported_cost_micros = -1;
	ASSERT_NEAR(trust_signal(&o), 0.85);
	o = good();
	o.price_micros = 0; /* free: reporting nothing or 0 is fine, anything else is 2x */
	o.reported_cost_micros = 0;
	ASSERT_NEAR(trust_signal(&o), 1.0);
	o.reported_cost_micros = 1;
	ASSERT_NEAR(trust_signal(&o), 0.85);
}

TEST(trust_signal_worst_completion)
{
	struct trust_outcome o = good();

	o.latency_ms = 5000;
	o.overrun = 1;
	ASSERT_NEAR(trust_signal(&o), 0.6);
}

TEST(trust_alpha_by_status)
{
	ASSERT_NEAR(trust_alpha("probationary"), TRUST_ALPHA_PROBATIONARY);
	ASSERT_NEAR(trust_alpha("active"), TRUST_ALPHA_ACTIVE);
	ASSERT_NEAR(trust_alpha("paused"), TRUST_ALPHA_ACTIVE);
	ASSERT_NEAR(trust_alpha("Probationary"), TRUST_ALPHA_ACTIVE);
	ASSERT_NEAR(trust_alpha(NULL), TRUST_ALPHA_ACTIVE);
}

TEST(trust_next_moves_toward_signal)
{
	ASSERT_NEAR(trust_next(0.5, 1.0, 0.2), 0.6);
	ASSERT_NEAR(trust_next(0.5, 0.0, 0.1), 0.45);
	ASSERT_NEAR(trust_next(0.9, 0.875, 0.1), 0.8975);
	ASSERT_NEAR(trust_next(0.3, 0.3, 0.2), 0.3);
	ASSERT_NEAR(trust_next(0.4, 1.0, 1.0), 1.0); /* alpha 1: the signal */
	ASSERT_NEAR(trust_next(0.4, 1.0, 0.0), 0.4); /* alpha 0: unchanged */
}

TEST(trust_next_clamps)
{
	ASSERT_NEAR(trust_next(1.2, 1.0, 0.1), 1.0);  /* 1.18 */
	ASSERT_NEAR(trust_next(-0.5, 0.0, 0.1), 0.0); /* -0.45 */
	ASSERT_NEAR(trust_next(0.5, 3.0, 0.5), 1.0);  /* 1.75 */
	ASSERT_NEAR(trust_next(0.5, -3.0, 0.5), 0.0); /* -1.25 */
	ASSERT_NEAR(trust_next(0.7, NAN, 0.1), 0.7);
	ASSERT_NEAR(trust_next(NAN, 1.0, 0.1), TRUST_INITIAL);
	ASSERT_NEAR(trust_next(1.5, NAN, 0.1), 1.0);
}

/* The history in docs/trust.md: five perfect calls at the probationary
 * alpha, then, active, one failure and one slow completion. */
TEST(trust_worked_example)
{
	struct trust_outcome o = good();
	double t = TRUST_INITIAL;

	for (int i = 0; i < TRUST_PROMOTE_AFTER; i++)
		t = trust_next(t, trust_signal(&o), trust_alpha("probationary"));
	ASSERT_NEAR(t, 1.0 - 0.5 * pow(0.8, 5)); /* 0.83616 */
	o.completed = 0;
	t = trust_next(t, trust_signal(&o), trust_alpha("active"));
	ASSERT_NEAR(t, 0.752544);
	o = good();
	o.latency_ms = 1500;
	t = trust_next(t, trust_signal(&o), trust_alpha("active"));
	ASSERT_NEAR(t, 0.7647896);
}

/* The explanation's components: each signal on its own, recent outcomes
 * weighted as the score weighs them, the failure run at the head. */
TEST(trust_explain_components)
{
	struct trust_outcome o[3] = {
		{.completed = 0},
		{.completed = 1, .latency_ms = 1500, .sla_p99_ms = 1000, .reported_cost_micros = 40000,
		 .price_micros = 50000},
		{.completed = 1, .latency_ms = 800, .sla_p99_ms = 1000, .reported_cost_micros = 75000,
		 .price_micros = 50000},
	};
	struct trust_components c;
	double w0 = 0.5, w1 = 0.25, w2 = 0.125, all = w0 + w1 + w2;

	trust_explain(o, 3, 0.5, &c);
	ASSERT_EQ(c.sample_size, 3);
	ASSERT_EQ(c.completed, 2);
	ASSERT_EQ(c.failure_streak, 1);
	ASSERT(fabs(c.completion - (w1 + w2) / all) < 1e-12);
	ASSERT(fabs(c.latency - (w1 * 0.5 + w2 * 1.0) / (w1 + w2)) < 1e-12);
	ASSERT(fabs(c.cost - (w1 * 1.0 + w2 * 0.5) / (w1 + w2)) < 1e-12);
	ASSERT(fabs(c.signal - (w1 * 0.875 + w2 * 0.925) / all) < 1e-12);

	trust_explain(o, 0, 0.2, &c); /* no history: nothing to hold against it */
	ASSERT_EQ(c.sample_size, 0);
	ASSERT(c.latency == 1 && c.cost == 1 && c.completion == 0);
	trust_explain(o, 1, 0.2, &c);
	ASSERT_EQ(c.failure_streak, 1);
	ASSERT(c.completion == 0 && c.signal == 0);
}

TEST(trust_factors_alone)
{
	struct trust_outcome o = {.completed = 1, .latency_ms = 2000, .sla_p99_ms = 1000,
				  .reported_cost_micros = -1, .price_micros = 10};

	ASSERT(trust_latency_factor(&o) == 0.0);
	ASSERT(trust_cost_factor(&o) == 1.0);
	o.overrun = 1;
	ASSERT(trust_cost_factor(&o) == 0.0);
	o.latency_ms = 1250;
	ASSERT(trust_latency_factor(&o) == 0.75);
}
