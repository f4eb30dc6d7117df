/*
 * Email over SMTP with libcurl (smtp:// or smtps://), for notification
 * channels of kind email. The server is the operator's relay, configured on
 * `nexra serve` (--smtp-url, --smtp-from, --smtp-user and the password in
 * NEXRA_SMTP_PASSWORD); it is not subject to the outbound address checks
 * since no tenant chooses it. One message per call, blocking up to the
 * timeout: called only from the notifier thread.
 *
 * TLS: smtps:// is TLS from the start; smtp:// upgrades with STARTTLS when
 * the server offers it, and requires it when credentials are configured
 * (outside --dev), so a password never crosses the network in clear.
 */
#ifndef NEXRA_APPROVALS_SMTP_H
#define NEXRA_APPROVALS_SMTP_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

struct smtp_config {
	const char *url;      /* "" : email channels cannot send */
	const char *from;     /* envelope and header sender */
	const char *user;     /* "" : no authentication */
	const char *password;
	int dev;
	long timeout_ms;
};

/* The RFC 5322 message (CRLF line ends, UTF-8 body, a subject with any
 * non-ASCII text as an encoded word) into out. Pure. */
int smtp_message(const char *from, const char *to, const char *subject, const char *text,
		 const char *message_id, int64_t now, struct buf *out);

/* Send one message to one address. 0, or an error with a reason in err. */
int smtp_send(const struct smtp_config *cfg, const char *to, const char *subject,
	      const char *text, const char *message_id, int64_t now, char *err, size_t errsz);

#endif
