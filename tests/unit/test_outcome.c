/* delegation/outcome: what a callee's answer means for settlement. */
#include <jansson.h>
#include <string.h>

#include "core/err.h"
#include "delegation/outcome.h"
#include "test.h"

static struct outbound_response ok(long status, const char *body)
{
	struct outbound_response r = {.result = OUTBOUND_OK, .status = status, .body = body,
				      .body_len = body ? strlen(body) : 0};
	return r;
}

static struct schema *summary_schema(void)
{
	json_t *doc = json_loads("{\"type\":\"object\",\"required\":[\"summary\"],"
				 "\"properties\":{\"summary\":{\"type\":\"string\"}}}", 0, NULL);
	struct schema *s = NULL;

	schema_compile(doc, NULL, &s, NULL);
	json_decref(doc);
	return s;
}

TEST(outcome_completed_charges_the_reported_cost)
{
	struct schema *s = summary_schema();
	struct outbound_response r =
		ok(200, "{\"result\":{\"summary\":\"x\"},\"cost_usd\":0.14,\"llm_tokens\":2400,\"extra\":1}");
	struct outcome o;

	ASSERT(s);
	outcome_from_response(&r, s, 250000, &o);
	ASSERT_STR_EQ(o.status, "completed");
	ASSERT_EQ(o.err, 0);
	ASSERT_STR_EQ(o.result, "{\"summary\":\"x\"}");
	ASSERT_EQ(o.cost_micros, 140000);
	ASSERT_EQ(o.reported_cost_micros, 140000);
	ASSERT_EQ(o.overrun, 0);
	ASSERT_EQ(o.llm_tokens, 2400);
	outcome_release(&o);
	schema_free(s);
}

TEST(outcome_overrun_is_charged_at_the_cap)
{
	struct outbound_response r = ok(201, "{\"result\":[1,2],\"cost_usd\":3}");
	struct outcome o;

	outcome_from_response(&r, NULL, 250000, &o);
	ASSERT_STR_EQ(o.status, "completed");
	ASSERT_EQ(o.cost_micros, 250000);
	ASSERT_EQ(o.reported_cost_micros, 3000000);
	ASSERT_EQ(o.overrun, 1);
	ASSERT_EQ(o.llm_tokens, -1);
	outcome_release(&o);
}

TEST(outcome_failures_are_not_billed)
{
	struct schema *s = summary_schema();
	const char *bodies[] = {
		"not json",
		"[1]",
		"{\"cost_usd\":0.1}",                              /* no result */
		"{\"result\":{\"summary\":\"x\"}}",                 /* no cost */
		"{\"result\":{\"summary\":\"x\"},\"cost_usd\":-1}", /* negative */
		"{\"result\":{\"summary\":\"x\"},\"cost_usd\":0.0000001}",
		"{\"result\":{\"summary\":\"x\"},\"cost_usd\":\"0.1\"}",
		"{\"result\":{\"summary\":\"x\"},\"cost_usd\":0.1,\"llm_tokens\":-5}",
		"{\"result\":{\"summary\":5},\"cost_usd\":0.1}", /* schema */
		"{\"result\":{},\"cost_usd\":0.1}",              /* schema: required */
	};
	struct outcome o;

	ASSERT(s);
	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		struct outbound_response r = ok(200, bodies[i]);

		outcome_from_response(&r, s, 250000, &o);
		if (strcmp(o.status, "failed") || o.err != E(CALLEE_FAILED) || o.cost_micros ||
		    o.result || !o.message[0]) {
			outcome_release(&o);
			schema_free(s);
			FAIL_AT("body %zu (%s) gave %s", i, bodies[i], o.status);
		}
		outcome_release(&o);
	}
	{
		struct outbound_response r = ok(500, "{\"result\":{\"summary\":\"x\"},\"cost_usd\":0.1}");

		outcome_from_response(&r, s, 250000, &o);
		ASSERT_STR_EQ(o.status, "failed");
		ASSERT_CONTAINS(o.message, "HTTP 500");
		outcome_release(&o);
	}
	{
		struct outbound_response r = {.result = OUTBOUND_TIMEOUT};

		outcome_from_response(&r, s, 250000, &o);
		ASSERT_STR_EQ(o.status, "timed_out");
		ASSERT_EQ(o.err, E(CALLEE_TIMEOUT));
		ASSERT_EQ(o.cost_micros, 0);
	}
	{
		enum outbound_result kinds[] = {OUTBOUND_REFUSED, OUTBOUND_FAILED, OUTBOUND_TOO_LARGE,
						OUTBOUND_CANCELLED};

		for (size_t i = 0; i < 4; i++) {
			struct outbound_response r = {.result = kinds[i]};

			outcome_from_response(&r, s, 250000, &o);
			ASSERT_STR_EQ(o.status, "failed");
			ASSERT_EQ(o.err, E(CALLEE_FAILED));
		}
	}
	schema_free(s);
}
