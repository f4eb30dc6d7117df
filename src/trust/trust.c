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

double trust_latency_factor(const struct trust_outcome *o)
{
	return o->sla_p99_ms > 0 ? within(o->latency_ms, o->sla_p99_ms) : 1.0;
}

double trust_cost_factor(const struct trust_outcome *o)
{
	if (o->overrun)
		return 0.0;
	if (o->reported_cost_micros < 0)
		return 1.0;
	return within(o->reported_cost_micros, o->price_micros < 0 ? 0 : o->price_micros);
}

double trust_signal(const struct trust_outcome *o)
{
	if (!o->completed)
		return 0.0;
	return 0.6 + 0.25 * trust_latency_factor(o) + 0.15 * trust_cost_factor(o);
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

void trust_explain(const struct trust_outcome *o, int n, double alpha,
		   struct trust_components *out)
{
	double w = alpha, wall = 0, wdone = 0, lat = 0, cost = 0, sig = 0, done = 0;
	int streak = 1;

	memset(out, 0, sizeof(*out));
	out->sample_size = n;
	for (int i = 0; i < n; i++, w *= 1.0 - alpha) {
		double s = trust_signal(&o[i]);

		wall += w;
		sig += w * s;
		if (o[i].completed) {
			out->completed++;
			streak = 0;
			done += w;
			wdone += w;
			lat += w * trust_latency_factor(&o[i]);
			cost += w * trust_cost_factor(&o[i]);
		} else if (streak) {
			out->failure_streak++;
		}
	}
	out->completion = wall > 0 ? done / wall : 0;
	out->signal = wall > 0 ? sig / wall : 0;
	out->latency = wdone > 0 ? lat / wdone : 1;
	out->cost = wdone > 0 ? cost / wdone : 1;
}
