/* Building outbound webhooks and callbacks; see webhook.h. */
#include "delegation/webhook.h"

#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "core/jsonw.h"
#include "delegation/sign.h"
#include "delegation/token.h"
#include "core/banned.h"

static void init(struct webhook *w)
{
	memset(w, 0, sizeof(*w));
	buf_init(&w->body, WEBHOOK_BODY_MAX);
	buf_init(&w->jwt, TOKEN_MAX_LEN);
	buf_init(&w->lines, 16 * 1024);
}

/* Header lines are appended NUL-separated; pointers are fixed at the end
 * (the buffer may move while it grows). */
static int line(struct webhook *w, const char *name, const char *value)
{
	int rc;

	if (w->nheaders + 1 >= OUTBOUND_MAX_HEADERS)
		return E(INTERNAL);
	rc = buf_addf(&w->lines, "%s: %s", name, value);
	if (!rc)
		rc = buf_add(&w->lines, "", 1);
	w->nheaders++;
	return rc;
}

static void fix_pointers(struct webhook *w)
{
	const char *p = w->lines.data;

	for (size_t i = 0; i < w->nheaders; i++) {
		w->headers[i] = p;
		p += strlen(p) + 1;
	}
	w->headers[w->nheaders] = NULL;
}

/* The signature headers over w->body, shared by both kinds. */
static int sign_lines(struct webhook *w, const char *msg_id, const char *secret,
		      size_t secret_len, int64_t now)
{
	char sig[SIGN_NEXRA_LEN + 1], std[SIGN_STANDARD_LEN + 1], ts[24];
	int rc;

	sign_nexra(secret, secret_len, w->body.data, w->body.len, sig);
	rc = sign_standard(secret, secret_len, msg_id, now, w->body.data, w->body.len, std);
	if (rc)
		return rc;
	snprintf(ts, sizeof(ts), "%lld", (long long)now);
	rc = line(w, "Content-Type", "application/json");
	if (!rc)
		rc = line(w, "X-Nexra-Signature", sig);
	if (!rc)
		rc = line(w, "webhook-id", msg_id);
	if (!rc)
		rc = line(w, "webhook-timestamp", ts);
	if (!rc)
		rc = line(w, "webhook-signature", std);
	return rc;
}

int webhook_for_delegation(struct webhook *w, const struct delegation *d, const char *secret,
			   size_t secret_len, int64_t now)
{
	struct token_claims c = {
		.sub = d->rec.caller_agent_id,
		.aud = d->rec.callee_agent_id,
		.org_id = d->rec.org_id,
		.scope = d->rec.capability,
		.jti = d->rec.delegation_id,
		.budget_cap_micros = d->rec.budget_cap_micros,
		.iat = now,
		.nbf = now,
		.exp = d->expires_at,
	};
	struct jsonw jw;
	int rc;

	init(w);
	jw_init(&jw, &w->body);
	jw_obj_open(&jw);
	jw_kstr(&jw, "delegation_id", d->rec.delegation_id);
	jw_kstr(&jw, "capability", d->rec.capability);
	jw_kraw(&jw, "task", d->task_input);
	jw_key(&jw, "budget_cap");
	jw_money(&jw, d->rec.budget_cap_micros);
	jw_kint(&jw, "expires_at", d->expires_at);
	jw_obj_close(&jw);
	rc = jw.rc;
	if (!rc)
		rc = buf_adds(&w->jwt, "Bearer ");
	if (!rc)
		rc = token_sign(&c, (const unsigned char *)secret, secret_len, &w->jwt);
	if (!rc)
		rc = line(w, "Authorization", w->jwt.data);
	if (!rc)
		rc = line(w, "X-Nexra-Delegation", d->rec.delegation_id);
	if (!rc)
		rc = sign_lines(w, d->rec.delegation_id, secret, secret_len, now);
	if (!rc)
		fix_pointers(w);
	return rc;
}

int webhook_for_callback(struct webhook *w, const char *delegation_id, const char *body,
			 size_t body_len, const char *secret, size_t secret_len, int64_t now)
{
	char msg_id[ID_MAX + 16];
	int rc;

	init(w);
	snprintf(msg_id, sizeof(msg_id), "%s.callback", delegation_id);
	rc = buf_add(&w->body, body, body_len);
	if (!rc)
		rc = line(w, "X-Nexra-Delegation", delegation_id);
	if (!rc)
		rc = sign_lines(w, msg_id, secret, secret_len, now);
	if (!rc)
		fix_pointers(w);
	return rc;
}

void webhook_release(struct webhook *w)
{
	buf_release(&w->body);
	buf_release(&w->jwt);
	buf_release(&w->lines);
}
