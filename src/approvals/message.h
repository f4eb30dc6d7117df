/*
 * What a notification says. An event is built once, as JSON (the payload
 * stored with each delivery and the body a webhook channel receives), and
 * each channel kind renders it at send time: Slack gets {"text": ...},
 * email a subject and a plain-text body, a webhook the JSON itself. Pure:
 * no clock (times are arguments), no I/O.
 *
 * approval_requested: {"event", "org_id", "delegation_id",
 * "caller_agent_id", "callee_agent_id", "capability", "budget_cap_usd",
 * "policy_ref", "rule_index", "rule_capability", "created_at",
 * "expires_at" (RFC 3339, null: no expiry), "task_input" (the compact JSON
 * text, cut at MESSAGE_INPUT_MAX bytes), "task_input_truncated",
 * "approve_path", "reject_path", "approve_url", "reject_url" (null without
 * --public-url)}.
 *
 * budget_alert: {"event", "org_id", "period", "monthly_budget_usd",
 * "alert_threshold", "threshold_usd", "spent_usd", "held_usd", "used_usd",
 * "created_at"}.
 */
#ifndef NEXRA_APPROVALS_MESSAGE_H
#define NEXRA_APPROVALS_MESSAGE_H

#include <stdint.h>

#include "core/buf.h"
#include "store/store.h"

#define MESSAGE_INPUT_MAX 500    /* bytes of task input in a notification */
#define MESSAGE_PAYLOAD_MAX (64 * 1024)
#define MESSAGE_SUBJECT_MAX 200

/* The approval_requested event of a pending delegation d (rec, task_input,
 * policy_result, policy_ref), into out. public_url ("" none) prefixes the
 * approve/reject paths. */
int message_approval_event(const struct delegation *d, const char *public_url, struct buf *out);

/* The budget_alert event of a, at now, into out. */
int message_budget_event(const struct budget_alert *a, int64_t now, struct buf *out);

/* An event rendered for people: a one-line subject and a plain-text body
 * ("\n" line ends). E(VALIDATION) when payload is not an event. */
int message_text(const char *payload, char *subject, size_t subjectsz, struct buf *text);

/* The Slack incoming-webhook body {"text": ...} for payload (text with
 * &, < and > escaped as Slack requires). */
int message_slack_body(const char *payload, struct buf *out);

#endif
