/*
 * The requests Nexra sends: the delegation webhook to the callee and the
 * completion callback to the caller, exactly as docs/webhooks.md shows
 * them. Building one is pure (the time is an argument): body bytes, the
 * scoped JWT, and every header line, ready for outbound_submit.
 *
 * Delegation webhook: POST webhook_url, body
 * {"delegation_id","capability","task","budget_cap","expires_at"} (task is
 * the task input; expires_at Unix seconds), headers Authorization: Bearer
 * <jwt>, X-Nexra-Signature, X-Nexra-Delegation, Content-Type, and the
 * Standard Webhooks trio webhook-id (the delegation id), webhook-timestamp,
 * webhook-signature. Callback: the same signatures over the final
 * delegation object, keyed with the caller's secret, no JWT.
 */
#ifndef NEXRA_DELEGATION_WEBHOOK_H
#define NEXRA_DELEGATION_WEBHOOK_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "delegation/outbound.h"
#include "store/store.h"

#define WEBHOOK_BODY_MAX (2 * 1024 * 1024)

struct webhook {
	struct buf body;
	struct buf jwt;
	struct buf lines; /* header lines, NUL-separated; headers[] points in */
	const char *headers[OUTBOUND_MAX_HEADERS];
	size_t nheaders;
};

/* The webhook for d (dispatched at now, expiring at d->expires_at),
 * signed with the callee's secret. 0 or an error from the buffers. */
int webhook_for_delegation(struct webhook *w, const struct delegation *d, const char *secret,
			   size_t secret_len, int64_t now);

/* The callback carrying body (the final delegation object) for
 * delegation_id, signed with the caller's secret. */
int webhook_for_callback(struct webhook *w, const char *delegation_id, const char *body,
			 size_t body_len, const char *secret, size_t secret_len, int64_t now);

void webhook_release(struct webhook *w);

#endif
