/*
 * The ranking formula of discovery (docs/discovery.md "Ranking"), pure: an
 * agent's components in, its score out. The weights are one table here and
 * the same numbers in the docs.
 *
 *   relevance = W_LEXICAL * lexical + W_SEMANTIC * semantic
 *     lexical  = the agent's full-text score / the best one among the
 *                candidates (0 when the text did not match its words)
 *     semantic = the agent's cosine / the best one among the candidates
 *   budget_fit  = 1 - price / budget_cap        (price <= cap is a filter)
 *               = 1 / (1 + price / $0.10)      without a cap
 *   latency_fit = 1 - p99 / max_latency_ms     (p99 <= max is a filter)
 *               = 1 / (1 + p99 / 2000 ms)      without a maximum
 *   trust       = trust_score, times 0.8 while probationary
 *   score = W_REL * relevance + W_BUDGET * budget_fit
 *         + W_LATENCY * latency_fit + W_TRUST * trust
 * With no query text relevance is absent and the three other signals
 * share the whole weight (a third each). With query text, an agent whose
 * relevance is under RANK_MIN_RELEVANCE is not a result at all: a cheap,
 * fast, trusted agent that does something else is not an answer.
 */
#ifndef NEXRA_DISCOVERY_RANK_H
#define NEXRA_DISCOVERY_RANK_H

#include <stdint.h>

#define RANK_W_LEXICAL 0.5
#define RANK_W_SEMANTIC 0.5
#define RANK_W_REL 0.7
#define RANK_W_BUDGET 0.1
#define RANK_W_LATENCY 0.1
#define RANK_W_TRUST 0.1
#define RANK_REF_PRICE_MICROS 100000 /* $0.10 */
#define RANK_REF_LATENCY_MS 2000
#define RANK_PROBATION 0.8
#define RANK_MIN_RELEVANCE 0.1 /* of the best: weaker matches are not results */

struct rank_in {
	int has_text;              /* the query had content */
	double lexical_raw, lexical_best;   /* >= 0; best 0: no lexical match at all */
	double semantic_raw, semantic_best; /* cosine, >= 0 */
	int64_t price_micros, budget_cap_micros; /* cap -1: none */
	int64_t p99_ms, max_latency_ms;          /* max -1: none */
	double trust_score;
	int probationary;
};

struct rank_out {
	double score, relevance, lexical, semantic, budget_fit, latency_fit, trust;
};

void rank_score(const struct rank_in *in, struct rank_out *out);

#endif
