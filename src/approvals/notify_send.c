/*
 * Sending one delivery (see notifier_int.h): Slack gets {"text"} at its
 * incoming-webhook URL, a webhook channel gets the event JSON signed like
 * a delegation webhook (docs/webhooks.md: X-Nexra-Signature and the
 * Standard Webhooks trio, webhook-id being the delivery id, stable across
 * retries), email goes over SMTP. HTTP sends go through the notifier's
 * outbound client, so the address checks of delegation webhooks apply.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "approvals/message.h"
#include "approvals/notifier_int.h"
#include "approvals/smtp.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/timefmt.h"
#include "crypto/seal.h"
#include "delegation/sign.h"
#include "serve/app.h"
#include "core/banned.h"

void send_job_free(struct send_job *j)
{
	if (!j)
		return;
	if (j->secret)
		sodium_memzero(j->secret, j->secret_len);
	free(j->secret);
	free(j->payload);
	free(j->target);
	free(j);
}

int send_job_new(const struct notify_delivery *d, const unsigned char *master_key,
		 struct send_job **out)
{
	struct send_job *j = calloc(1, sizeof(*j));
	char ad[2 * ID_MAX + 16];
	int rc = 0;

	*out = NULL;
	if (!j)
		return E(INTERNAL);
	snprintf(j->delivery_id, sizeof(j->delivery_id), "%s", d->delivery_id);
	snprintf(j->org_id, sizeof(j->org_id), "%s", d->org_id);
	snprintf(j->channel_id, sizeof(j->channel_id), "%s", d->channel_id);
	snprintf(j->kind, sizeof(j->kind), "%s", d->channel_kind);
	snprintf(j->event, sizeof(j->event), "%s", d->event);
	j->attempts = d->attempts;
	j->payload = strdup(d->payload ? d->payload : "{}");
	j->target = strdup(d->target ? d->target : "");
	if (!j->payload || !j->target)
		rc = E(INTERNAL);
	if (!rc && d->secret_sealed) {
		snprintf(ad, sizeof(ad), "notify:%s/%s", d->org_id, d->channel_id);
		rc = unseal(master_key, d->secret_sealed, d->secret_sealed_len, ad, &j->secret,
			    &j->secret_len);
	}
	if (rc) {
		send_job_free(j);
		return rc;
	}
	*out = j;
	return 0;
}

static void finished(struct notifier *n, struct send_job *j, int counted)
{
	pthread_mutex_lock(&n->mu);
	j->next = n->done;
	n->done = j;
	if (counted)
		n->in_flight--;
	pthread_cond_signal(&n->cv);
	pthread_mutex_unlock(&n->mu);
}

/* Outbound thread: an HTTP send ended. */
static void on_done(void *ctx, const struct outbound_response *res)
{
	struct send_job *j = ctx;

	j->ok = res->result == OUTBOUND_OK && res->status >= 200 && res->status < 300;
	if (res->result == OUTBOUND_OK && !j->ok)
		snprintf(j->error, sizeof(j->error), "HTTP %ld from the receiver", res->status);
	else if (!j->ok)
		snprintf(j->error, sizeof(j->error), "%s", res->error[0] ? res->error : "failed");
	finished(j->owner, j, 1);
}

/* The signature headers of a webhook channel's request over body. */
static int sign_headers(const struct send_job *j, const char *body, size_t len, int64_t now,
			char lines[][SIGN_STANDARD_LEN + 64], const char **headers)
{
	char sig[SIGN_NEXRA_LEN + 1], std[SIGN_STANDARD_LEN + 1];
	int rc = sign_standard(j->secret, j->secret_len, j->delivery_id, now, body, len, std);

	if (rc)
		return rc;
	sign_nexra(j->secret, j->secret_len, body, len, sig);
	snprintf(lines[0], sizeof(lines[0]), "X-Nexra-Signature: %s", sig);
	snprintf(lines[1], sizeof(lines[1]), "webhook-id: %s", j->delivery_id);
	snprintf(lines[2], sizeof(lines[2]), "webhook-timestamp: %lld", (long long)now);
	snprintf(lines[3], sizeof(lines[3]), "webhook-signature: %s", std);
	snprintf(lines[4], sizeof(lines[4]), "X-Nexra-Event: %s", j->event);
	snprintf(lines[5], sizeof(lines[5]), "X-Nexra-Delivery: %s", j->delivery_id);
	for (int i = 0; i < 6; i++)
		headers[i] = lines[i];
	headers[6] = NULL;
	return 0;
}

static int send_http(struct notifier *n, struct send_job *j)
{
	char lines[6][SIGN_STANDARD_LEN + 64];
	struct outbound_request req = {0};
	struct buf body;
	int slack = !strcmp(j->kind, "slack"), rc;

	buf_init(&body, MESSAGE_PAYLOAD_MAX * 6);
	rc = slack ? message_slack_body(j->payload, &body) : buf_adds(&body, j->payload);
	if (!rc && !slack)
		rc = sign_headers(j, body.data, body.len, time_now_unix(), lines, req.headers);
	if (!rc && slack && !j->secret)
		rc = E(INTERNAL);
	if (rc) {
		buf_release(&body);
		snprintf(j->error, sizeof(j->error), "cannot build the request: %s",
			 err_message(rc));
		return rc;
	}
	req.url = slack ? j->secret : j->target;
	req.body = body.data;
	req.body_len = body.len;
	req.timeout_ms = NOTIFY_HTTP_TIMEOUT_MS;
	req.max_response = 64 * 1024;
	req.allow_private = n->app->cfg->dev;
	req.done = on_done;
	req.ctx = j;
	pthread_mutex_lock(&n->mu);
	n->in_flight++;
	pthread_mutex_unlock(&n->mu);
	rc = outbound_submit(n->out, &req);
	buf_release(&body);
	if (rc) {
		pthread_mutex_lock(&n->mu);
		n->in_flight--;
		pthread_mutex_unlock(&n->mu);
		snprintf(j->error, sizeof(j->error), "not sent: %s", err_message(rc));
	}
	return rc;
}

static void send_email(struct notifier *n, struct send_job *j)
{
	const struct config *cfg = n->app->cfg;
	struct smtp_config sc = {
		.url = cfg->smtp_url,
		.from = cfg->smtp_from,
		.user = cfg->smtp_user,
		.password = cfg->smtp_password,
		.dev = cfg->dev,
		.timeout_ms = NOTIFY_SMTP_TIMEOUT_MS,
	};
	char subject[MESSAGE_SUBJECT_MAX];
	struct buf text;
	int rc;

	buf_init(&text, MESSAGE_PAYLOAD_MAX * 2);
	rc = message_text(j->payload, subject, sizeof(subject), &text);
	if (rc)
		snprintf(j->error, sizeof(j->error), "cannot render the message");
	else
		rc = smtp_send(&sc, j->target, subject, text.data, j->delivery_id,
			       time_now_unix(), j->error, sizeof(j->error));
	j->ok = !rc;
	buf_release(&text);
}

void send_start(struct notifier *n, struct send_job *j)
{
	j->owner = n;
	if (!strcmp(j->kind, "email")) {
		send_email(n, j);
	} else if (!send_http(n, j)) {
		return; /* on_done takes it from here */
	}
	finished(n, j, 0);
}
