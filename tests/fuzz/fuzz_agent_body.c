/*
 * Fuzz target: a register/update request body, as the server reads it.
 * The bytes go through json_parse_object (depth pre-check, jansson,
 * duplicate keys) and, when they are an object, through agent_from_json in
 * both modes (--dev or not) and both shapes (register: no path id; update:
 * path id "a1"). Everything is released; nothing may crash or leak.
 *
 * Invariants checked (abort() when broken): a refusal has a message that
 * starts with the field it names; an accepted agent satisfies the documented
 * bounds and renders as JSON that jansson reads back, without a
 * webhook_secret member.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/json.h"
#include "registry/agent.h"

static void check_accepted(const struct agent *a, const char *path_id, const char *secret)
{
	struct buf b;
	struct jsonw jw;
	json_t *out;
	json_error_t je;

	if (!a->name || !a->description || !a->webhook_url || !a->input_schema ||
	    !a->output_schema || !secret)
		abort();
	if (!agent_id_valid(a->agent_id) || (path_id && strcmp(a->agent_id, path_id)))
		abort();
	if (a->per_call_micros < 0 || a->per_call_micros > AGENT_PRICE_MAX_MICROS ||
	    a->p99_latency_ms < 1 || a->p99_latency_ms > AGENT_P99_MAX_MS ||
	    !(a->availability >= 0 && a->availability <= 1))
		abort();
	if (strlen(secret) < AGENT_SECRET_MIN || strlen(secret) > AGENT_SECRET_MAX)
		abort();
	buf_init(&b, 4u << 20);
	jw_init(&jw, &b);
	agent_write_json(&jw, a);
	if (jw.rc)
		abort();
	out = json_loadb(b.data, b.len, JSON_REJECT_DUPLICATES, &je);
	if (!out || json_object_get(out, "webhook_secret"))
		abort();
	json_decref(out);
	buf_release(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const path_ids[2] = {NULL, "a1"};
	struct jerr e;
	json_t *body = NULL;

	memset(&e, 0, sizeof(e));
	if (json_parse_object((const char *)data, size, &body, &e)) {
		if (body || !e.message[0] || strcmp(e.field, "body"))
			abort();
		return 0;
	}
	for (int dev = 0; dev <= 1; dev++)
		for (int p = 0; p < 2; p++) {
			struct agent a;
			const char *secret = NULL;
			int rc;

			memset(&e, 0, sizeof(e));
			rc = agent_from_json(body, path_ids[p], dev, &a, &secret, &e);
			if (rc == 0) {
				check_accepted(&a, path_ids[p], secret);
				agent_release(&a);
			} else if (rc == E(VALIDATION)) {
				/* e.field is "" only for a member named "" (see
				 * bug_agent_empty_member_name in test_agent.c) */
				if (!e.message[0] ||
				    strncmp(e.message, e.field, strlen(e.field)))
					abort();
			} else if (rc != E(INTERNAL)) {
				abort();
			}
		}
	json_decref(body);
	return 0;
}
