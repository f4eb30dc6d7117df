/*
 * Notification endpoints: POST/GET /v1/notifications/channels,
 * DELETE /v1/notifications/channels/{channel_id} and
 * GET /v1/notifications/deliveries. Changing channels needs a live key
 * (they decide where an org's data goes); reading works with either.
 * Another org's channel answers like a missing one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "approvals/api.h"
#include "approvals/channel.h"
#include "auth/auth.h"
#include "core/err.h"
#include "crypto/seal.h"
#include "serve/app.h"
#include "core/banned.h"

#define CHANNEL_ID_BYTES 8
#define WHAT "managing notification channels"

static const char *const states[] = {"pending", "sent", "dead", NULL};

int api_channel_create(struct req *r)
{
	struct store *st = r->app->store;
	struct jerr e = {{0}, {0}};
	struct channel_input in;
	struct notify_channel ch;
	char ad[2 * ID_MAX + 16], masked[CHANNEL_URL_MAX + 8];
	const char *secret;
	unsigned char *sealed = NULL;
	size_t sealed_len = 0;
	json_t *body = NULL;
	struct jsonw jw;
	int rc = auth_require_live(r, WHAT);

	if (!rc)
		rc = req_json_body(r, &body);
	if (rc)
		return rc;
	if (channel_from_json(body, r->app->cfg->dev, &in, &e)) {
		json_decref(body);
		return req_fail_jerr(r, &e);
	}
	memset(&ch, 0, sizeof(ch));
	snprintf(ch.org_id, sizeof(ch.org_id), "%s", r->auth.org.org_id);
	snprintf(ch.kind, sizeof(ch.kind), "%s", in.kind);
	snprintf(ch.name, sizeof(ch.name), "%s", in.name);
	ch.created_at = r->now;
	rc = rand_id(ch.channel_id, "nch_", CHANNEL_ID_BYTES);
	secret = !strcmp(in.kind, "slack") ? in.url : in.secret;
	if (!strcmp(in.kind, "slack")) {
		channel_mask_url(in.url, masked, sizeof(masked));
		ch.target = masked;
	} else {
		ch.target = in.email ? in.email : in.url;
	}
	snprintf(ad, sizeof(ad), "notify:%s/%s", ch.org_id, ch.channel_id);
	if (!rc && secret)
		rc = seal(r->app->master_key, secret, strlen(secret), ad, &sealed, &sealed_len);
	ch.secret_sealed = sealed;
	ch.secret_sealed_len = sealed_len;
	if (!rc)
		rc = st->ops->channel_create(st, &ch, CHANNELS_PER_ORG);
	if (!rc) {
		jw_init(&jw, &r->out);
		channel_write_json(&jw, &ch);
		rc = jw.rc ? jw.rc : req_ok_out(r, 201);
	} else if (rc == E(CONFLICT)) {
		rc = req_fail(r, rc, "the organization has %d notification channels, the most "
			      "allowed; delete one first", CHANNELS_PER_ORG);
	} else {
		rc = req_fail(r, E(INTERNAL), "could not create the channel: %s",
			      store_last_error());
	}
	free(sealed);
	json_decref(body); /* in pointed into it */
	return rc;
}

static int channel_one(void *ctx, const struct notify_channel *ch)
{
	struct req_list *l = ctx;

	if (req_list_item(l))
		channel_write_json(&l->jw, ch);
	return l->jw.rc;
}

int api_channel_list(struct req *r)
{
	struct store *st = r->app->store;
	struct req_list l;
	int rc = req_list_begin(r, &l);

	if (rc)
		return rc;
	rc = st->ops->channel_list(st, r->auth.org.org_id, l.limit + 1, l.offset, channel_one, &l);
	return req_list_end(r, &l, rc, "listing notification channels");
}

int api_channel_delete(struct req *r)
{
	struct store *st = r->app->store;
	const char *id = r->params[0];
	struct jsonw jw;
	int rc = auth_require_live(r, WHAT);

	if (rc)
		return rc;
	rc = rand_id_valid(id, "nch_", CHANNEL_ID_BYTES)
		     ? st->ops->channel_delete(st, r->auth.org.org_id, id, r->now)
		     : E(NOT_FOUND);
	if (rc == E(NOT_FOUND))
		return req_fail(r, rc, "notification channel %s not found", id);
	if (rc)
		return req_fail(r, rc, "deleting the channel failed: %s", store_last_error());
	jw_init(&jw, &r->out);
	jw_obj_open(&jw);
	jw_kstr(&jw, "channel_id", id);
	jw_ktime(&jw, "deleted_at", r->now);
	jw_obj_close(&jw);
	return jw.rc ? jw.rc : req_ok_out(r, 200);
}

static int delivery_one(void *ctx, const struct notify_delivery *d)
{
	struct req_list *l = ctx;
	struct jsonw *jw = &l->jw;
	int approval = !strcmp(d->event, "approval_requested");

	if (!req_list_item(l))
		return 0;
	jw_obj_open(jw);
	jw_kstr(jw, "delivery_id", d->delivery_id);
	jw_kstr(jw, "channel_id", d->channel_id);
	jw_kstr(jw, "channel_kind", d->channel_kind);
	jw_kstr(jw, "event", d->event);
	jw_kstr(jw, "delegation_id", approval ? d->subject_id : NULL);
	jw_kstr(jw, "period", approval ? NULL : d->subject_id);
	jw_kstr(jw, "status", d->state);
	jw_kint(jw, "attempts", d->attempts);
	jw_kstr(jw, "last_error", d->last_error && d->last_error[0] ? d->last_error : NULL);
	jw_ktime(jw, "next_attempt_at", strcmp(d->state, "pending") ? 0 : d->next_attempt_at);
	jw_ktime(jw, "created_at", d->created_at);
	jw_ktime(jw, "sent_at", d->sent_at);
	jw_kraw(jw, "payload", d->payload && d->payload[0] ? d->payload : "null");
	jw_obj_close(jw);
	return jw->rc;
}

int api_delivery_list(struct req *r)
{
	struct store *st = r->app->store;
	const char *state = NULL;
	struct req_list l;
	int rc = req_query_enum(r, "status", states, &state);

	if (!rc)
		rc = req_list_begin(r, &l);
	if (rc)
		return rc;
	rc = st->ops->notify_delivery_list(st, r->auth.org.org_id, state, l.limit + 1, l.offset,
					   delivery_one, &l);
	return req_list_end(r, &l, rc, "listing notification deliveries");
}
