/*
 * Trust scoring, pure: how one settled delegation moves the callee's trust
 * score (docs/trust.md). The score is an exponentially weighted average of
 * per-delegation signals in [0, 1]:
 *
 *   signal = 0 for a failure or timeout; for a completion
 *            0.6 + 0.25 * latency_factor + 0.15 * cost_factor
 *   latency_factor = 1 when latency <= the SLA p99, falling linearly to 0
 *                    at twice the SLA
 *   cost_factor    = 1 when the reported cost is at most the listed price,
 *                    falling linearly to 0 at twice the price (and 0 for an
 *                    overrun of the cap)
 *   after = before + alpha * (signal - before)
 *
 * alpha is larger while the agent is probationary (its first outcomes
 * establish it quickly) and smaller once active (one bad call does not
 * sink an established agent). A probationary agent becomes active after
 * TRUST_PROMOTE_AFTER completions. Discovery and policy read the score;
 * the store applies the update atomically (store.h LEDGER_SETTLE).
 */
#ifndef NEXRA_TRUST_TRUST_H
#define NEXRA_TRUST_TRUST_H

#include <stdint.h>

#define TRUST_INITIAL 0.5
#define TRUST_ALPHA_PROBATIONARY 0.2
#define TRUST_ALPHA_ACTIVE 0.1
#define TRUST_PROMOTE_AFTER 5
/* Consecutive failures (failed or timed out) that send an active agent
 * back to probationary, its completions counted again from 0. Applied by
 * the database at settlement (migration 0006, trigger
 * agents_failure_streak), which holds the same number. */
#define TRUST_DEMOTE_AFTER 3
#define TRUST_EXPLAIN_WINDOW 50 /* recent outcomes the explanation reads */

struct trust_outcome {
	int completed;                /* 0: failed or timed out */
	int64_t latency_ms;
	int64_t sla_p99_ms;           /* > 0 */
	int64_t reported_cost_micros; /* -1: none reported */
	int64_t price_micros;         /* the callee's per_call price */
	int overrun;                  /* reported above the cap */
};

/* The two quality factors of a completion, each in [0, 1]. */
double trust_latency_factor(const struct trust_outcome *o);
double trust_cost_factor(const struct trust_outcome *o);
/* The outcome's signal in [0, 1]. */
double trust_signal(const struct trust_outcome *o);
/* The weight of one outcome for a callee in status ("probationary" | ...). */
double trust_alpha(const char *status);
/* before moved toward signal by alpha, clamped to [0, 1]. */
double trust_next(double before, double signal, double alpha);

/*
 * The explanation of a score (GET /v1/agents/{agent_id}/trust): the
 * signals of the agent's recent outcomes, newest first, averaged with the
 * weights the score itself gives them (the newest alpha, the one before
 * alpha * (1 - alpha), ...), normalised. completion is the weighted share
 * completed; latency and cost the weighted averages of their factors over
 * the completions (1 when there are none); signal the weighted average of
 * the signals. failure_streak is the run of failures at the head.
 */
struct trust_components {
	int sample_size;
	int completed;
	int failure_streak;
	double completion, latency, cost, signal;
};

void trust_explain(const struct trust_outcome *newest_first, int n, double alpha,
		   struct trust_components *out);

#endif
