/*
 * What a callee's answer means, pure: the outbound result (status, body,
 * or why there was none), the callee's compiled output schema and the
 * delegation's cap go in; the settlement fields come out
 * (docs/delegations.md "Outcome"):
 *
 *  - a 2xx whose body is a JSON object with `result` (valid against the
 *    output schema) and `cost_usd` (a money amount), optionally
 *    `llm_tokens` (an integer >= 0): completed, charged min(cost, cap),
 *    with an overrun recorded when the cost was above the cap;
 *  - no answer before the deadline: timed_out (CALLEE_TIMEOUT);
 *  - anything else (non-2xx, a body that is not such an object, a result
 *    the schema refuses, a refused address, a reset or closed connection,
 *    an oversized body): failed (CALLEE_FAILED), with the reason.
 */
#ifndef NEXRA_DELEGATION_OUTCOME_H
#define NEXRA_DELEGATION_OUTCOME_H

#include <stdint.h>

#include "delegation/outbound.h"
#include "schema/schema.h"

#define OUTCOME_COST_MAX_MICROS (1000000LL * 1000000LL)

struct outcome {
	const char *status;           /* "completed" | "failed" | "timed_out" */
	int err;                      /* 0, E(CALLEE_FAILED) or E(CALLEE_TIMEOUT) */
	char message[1024];           /* why, when err */
	char *result;                 /* owned compact JSON of `result` (completed) */
	int64_t cost_micros;          /* charged: min(reported, cap); 0 unless completed */
	int64_t reported_cost_micros; /* -1 when none was read */
	int overrun;
	int64_t llm_tokens;           /* -1 when absent */
};

/* out_schema may be NULL (any result accepted). */
void outcome_from_response(const struct outbound_response *res, const struct schema *out_schema,
			   int64_t cap_micros, struct outcome *o);
void outcome_release(struct outcome *o);

#endif
