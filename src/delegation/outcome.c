/* The callee's answer read into settlement fields; see outcome.h. */
#include "delegation/outcome.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/json.h"
#include "core/banned.h"

static void failed(struct outcome *o, const char *fmt, const char *arg)
{
	o->status = "failed";
	o->err = E(CALLEE_FAILED);
	snprintf(o->message, sizeof(o->message), fmt, arg);
}

/* A 2xx body: {result, cost_usd[, llm_tokens]}. */
static void read_body(const struct outbound_response *res, const struct schema *out_schema,
		      int64_t cap, struct outcome *o)
{
	struct schema_errors *errs = NULL;
	struct jerr e = {{0}, {0}};
	json_t *body = NULL, *result;
	char where[SCHEMA_MESSAGE_MAX + SCHEMA_PATH_MAX + 32];
	int64_t cost, tokens;

	if (json_parse_object(res->body, res->body_len, &body, &e)) {
		failed(o, "callee answered 2xx with a body that is not a JSON object: %s",
		       e.message);
		return;
	}
	result = json_object_get(body, "result");
	if (!result) {
		failed(o, "%s", "callee answered 2xx without \"result\"");
		goto out;
	}
	if (json_get_money(body, "", "cost_usd", 1, OUTCOME_COST_MAX_MICROS, &cost, &e)) {
		failed(o, "callee's answer: %s", e.message);
		goto out;
	}
	if (json_get_int(body, "", "llm_tokens", 0, 0, INT64_MAX, &tokens, &e) < 0) {
		failed(o, "callee's answer: %s", e.message);
		goto out;
	}
	if (out_schema) {
		errs = malloc(sizeof(*errs));
		if (!errs) {
			failed(o, "%s", "out of memory checking the result");
			goto out;
		}
		if (schema_validate(out_schema, result, errs)) {
			if (errs->count)
				schema_error_format(&errs->items[0], where, sizeof(where));
			else
				snprintf(where, sizeof(where), "invalid");
			failed(o, "result does not match the callee's output_schema: %s", where);
			goto out;
		}
	}
	o->result = json_dumps(result, JSON_DUMP_FLAGS | JSON_ENCODE_ANY);
	if (!o->result) {
		failed(o, "%s", "out of memory keeping the result");
		goto out;
	}
	o->status = "completed";
	o->err = 0;
	o->reported_cost_micros = cost;
	o->overrun = cost > cap;
	o->cost_micros = o->overrun ? cap : cost;
	o->llm_tokens = json_object_get(body, "llm_tokens") ? tokens : -1;
out:
	free(errs);
	json_decref(body);
}

void outcome_from_response(const struct outbound_response *res, const struct schema *out_schema,
			   int64_t cap_micros, struct outcome *o)
{
	char code[16];

	memset(o, 0, sizeof(*o));
	o->reported_cost_micros = -1;
	o->llm_tokens = -1;
	switch (res->result) {
	case OUTBOUND_OK:
		if (res->status >= 200 && res->status < 300) {
			read_body(res, out_schema, cap_micros, o);
		} else {
			snprintf(code, sizeof(code), "%ld", res->status);
			failed(o, "callee answered HTTP %s", code);
		}
		return;
	case OUTBOUND_TIMEOUT:
		o->status = "timed_out";
		o->err = E(CALLEE_TIMEOUT);
		snprintf(o->message, sizeof(o->message),
			 "callee did not answer within the delegation's timeout_ms");
		return;
	case OUTBOUND_REFUSED:
		failed(o, "callee's webhook address is not allowed: %s", res->error);
		return;
	case OUTBOUND_TOO_LARGE:
		failed(o, "callee's answer is larger than the limit: %s", res->error);
		return;
	case OUTBOUND_CANCELLED:
		failed(o, "%s", "the server stopped before the callee answered");
		return;
	case OUTBOUND_FAILED:
	default:
		failed(o, "calling the callee failed: %s", res->error);
		return;
	}
}

void outcome_release(struct outcome *o)
{
	free(o->result);
	o->result = NULL;
}
