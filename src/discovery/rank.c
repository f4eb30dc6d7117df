/* The ranking formula; see rank.h (and docs/discovery.md). */
#include "discovery/rank.h"

#include "core/banned.h"

static double clamp01(double x)
{
	return x < 0 ? 0 : x > 1 ? 1 : x;
}

void rank_score(const struct rank_in *in, struct rank_out *o)
{
	o->lexical = in->lexical_best > 0 ? clamp01(in->lexical_raw / in->lexical_best) : 0;
	o->semantic = in->semantic_best > 0 ? clamp01(in->semantic_raw / in->semantic_best) : 0;
	o->relevance = RANK_W_LEXICAL * o->lexical + RANK_W_SEMANTIC * o->semantic;
	if (in->budget_cap_micros > 0)
		o->budget_fit = clamp01(1.0 - (double)in->price_micros / (double)in->budget_cap_micros);
	else if (in->budget_cap_micros == 0)
		o->budget_fit = 1.0; /* only free agents fit a zero cap */
	else
		o->budget_fit = 1.0 / (1.0 + (double)in->price_micros / RANK_REF_PRICE_MICROS);
	if (in->max_latency_ms > 0)
		o->latency_fit = clamp01(1.0 - (double)in->p99_ms / (double)in->max_latency_ms);
	else
		o->latency_fit = 1.0 / (1.0 + (double)in->p99_ms / RANK_REF_LATENCY_MS);
	o->trust = clamp01(in->trust_score) * (in->probationary ? RANK_PROBATION : 1.0);
	if (in->has_text)
		o->score = RANK_W_REL * o->relevance + RANK_W_BUDGET * o->budget_fit +
			   RANK_W_LATENCY * o->latency_fit + RANK_W_TRUST * o->trust;
	else
		o->score = (o->budget_fit + o->latency_fit + o->trust) / 3.0;
}
