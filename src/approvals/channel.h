/*
 * Notification channels: reading a POST /v1/notifications/channels body
 * (pure: no database, no clock) with every rule of docs/notifications.md
 * checked, and writing a channel as the API shows it. Kinds:
 *
 *  - slack: {"kind": "slack", "url": incoming-webhook URL}. The URL is a
 *    credential (it carries the token), so it is sealed at rest like a
 *    secret and shown masked ("https://hooks.slack.com/...").
 *  - email: {"kind": "email", "email": address}.
 *  - webhook: {"kind": "webhook", "url": URL, "secret": 32..256 chars};
 *    requests are signed with the secret exactly like delegation webhooks.
 *
 * URLs follow the agent webhook rules (agent_webhook_url_check: https, no
 * private hosts outside --dev). Every kind takes an optional "name".
 */
#ifndef NEXRA_APPROVALS_CHANNEL_H
#define NEXRA_APPROVALS_CHANNEL_H

#include <jansson.h>

#include "core/json.h"
#include "core/jsonw.h"
#include "store/store.h"

#define CHANNEL_URL_MAX 2048
#define CHANNEL_EMAIL_MAX 254
#define CHANNEL_SECRET_MIN 32
#define CHANNEL_SECRET_MAX 256
#define CHANNELS_PER_ORG 20

extern const char *const channel_kinds[]; /* NULL-terminated */

/* A channel as read from a request: pointers borrow from the body. */
struct channel_input {
	const char *kind;
	const char *name;   /* "" when absent */
	const char *url;    /* slack, webhook */
	const char *email;  /* email */
	const char *secret; /* webhook */
};

/* Fill in from body; dev relaxes the URL rules. 0 or E(VALIDATION) with e
 * naming the field. */
int channel_from_json(const json_t *body, int dev, struct channel_input *in, struct jerr *e);

/* 1 if s is an address Nexra will send to: local@domain, ASCII, at most
 * 254 characters, a dotted domain, nothing SMTP would read specially. */
int channel_email_valid(const char *s);

/* The display form of a Slack URL: scheme://host/... (into out). */
void channel_mask_url(const char *url, char *out, size_t outsz);

/* The channel as the API shows it (never a secret). */
void channel_write_json(struct jsonw *jw, const struct notify_channel *ch);

#endif
