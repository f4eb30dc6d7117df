/*
 * Fuzz target: a POST /v1/notifications/channels body, as the server reads
 * it: json_parse_object, then channel_from_json in both modes (--dev or
 * not). Nothing may crash or leak.
 *
 * Invariants checked (abort() when broken): a refusal names a field and
 * its message starts with it; an accepted channel has a known kind and
 * exactly the fields its kind needs (email: a valid address; slack and
 * webhook: a URL; webhook: a secret of 32..256 characters), and renders as
 * JSON jansson reads back, without the secret.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "approvals/channel.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/json.h"

static void check_accepted(const struct channel_input *in)
{
	struct notify_channel ch;
	struct jsonw jw;
	struct buf b;
	json_t *out;
	int email = !strcmp(in->kind, "email"), webhook = !strcmp(in->kind, "webhook");

	if (strcmp(in->kind, "slack") && !email && !webhook)
		abort();
	if (email != !!in->email || email == !!in->url || webhook != !!in->secret || !in->name)
		abort();
	if (email && !channel_email_valid(in->email))
		abort();
	if (webhook && (strlen(in->secret) < CHANNEL_SECRET_MIN ||
			strlen(in->secret) > CHANNEL_SECRET_MAX))
		abort();
	memset(&ch, 0, sizeof(ch));
	memcpy(ch.kind, in->kind, strlen(in->kind) + 1);
	ch.target = email ? in->email : in->url;
	buf_init(&b, 1u << 20);
	jw_init(&jw, &b);
	channel_write_json(&jw, &ch);
	if (jw.rc)
		abort();
	out = json_loadb(b.data, b.len, JSON_REJECT_DUPLICATES, NULL);
	if (!out || json_object_get(out, "secret"))
		abort();
	json_decref(out);
	buf_release(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct channel_input in;
	struct jerr e;
	json_t *body = NULL;

	memset(&e, 0, sizeof(e));
	if (json_parse_object((const char *)data, size, &body, &e))
		return 0;
	for (int dev = 0; dev <= 1; dev++) {
		int rc;

		memset(&e, 0, sizeof(e));
		rc = channel_from_json(body, dev, &in, &e);
		if (rc == 0)
			check_accepted(&in);
		else if (rc != E(VALIDATION) || !e.message[0] ||
			 strncmp(e.message, e.field, strlen(e.field)))
			abort();
	}
	json_decref(body);
	return 0;
}
