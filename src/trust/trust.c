/*
 * Trust scoring: the formula of trust.h and nothing else (worked example
 * in docs/trust.md). Pure arithmetic; the store applies the result.
 *
 * The two factors share one shape: 1 up to a limit, 0 from twice the
 * limit, a straight line between. The excess over the limit is taken in
 * int64 (both sides are non-negative, so it cannot overflow) and only then
 * divided as doubles. Where the contract leaves a corner open:
 *  - no SLA (sla_p99_ms <= 0, which the registry does not allow) does not
 *    penalise latency: factor 1;
 *  - no cost reported (reported_cost_micros < 0) is charged the listed
 *    price, which is "at most the price": factor 1;
 *  - a free callee (price 0) that reports any cost is at or past twice
 *    its price: factor 0.
 */
#include "trust/trust.h"

#include <math.h>
#include <string.h>

#include "core/banned.h"

/* 1 when v <= limit, 0 when v >= 2 * limit, linear between. */
static double within(int64_t v, int64_t limit)
{
	if (v <= limit)
		return 1.0;
	if (limit <= 0)
		return 0.0;
	if (v - limit >= limit)
		return 0.0;
	return 1.0 - (double)(v - limit) / (double)limit;
}

double trust_signal(const struct trust_outcome *o)
{
	double latency, cost;

	if (!o->completed)
		return 0.0;
	latency = o->sla_p99_ms > 0 ? within(o->latency_ms, o->sla_p99_ms) : 1.0;
	if (o->overrun)
		cost = 0.0;
	else if (o->reported_cost_micros < 0)
		cost = 1.0;
	else
		cost = within(o->reported_cost_micros, o->price_micros < 0 ? 0 : o->price_micros);
	return 0.6 + 0.25 * latency + 0.15 * cost;
}

double trust_alpha(const char *status)
{
	if (status && !strcmp(status, "probationary"))
		return TRUST_ALPHA_PROBATIONARY;
	return TRUST_ALPHA_ACTIVE;
}

double trust_next(double before, double signal, double alpha)
{
	double after = before + alpha * (signal - before);

	if (isnan(after)) /* a NaN input: keep what we had, or start over */
		after = isnan(before) ? TRUST_INITIAL : before;
	if (after < 0.0)
		return 0.0;
	if (after > 1.0)
		return 1.0;
	return after;
}
