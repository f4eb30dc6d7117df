/* Building and rendering notification events; see message.h. */
#include "approvals/message.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/jsonw.h"
#include "core/money.h"
#include "core/timefmt.h"
#include "core/banned.h"

/* The longest prefix of s (len bytes) of at most max bytes that does not
 * cut a UTF-8 sequence. */
static size_t utf8_cut(const char *s, size_t len, size_t max)
{
	if (len <= max)
		return len;
	while (max > 0 && ((unsigned char)s[max] & 0xc0) == 0x80)
		max--;
	return max;
}

static void path_pair(struct jsonw *jw, const char *id, const char *public_url, const char *verb)
{
	char key[32], path[ID_MAX + 64];
	struct buf url;

	snprintf(path, sizeof(path), "/v1/delegations/%s/%s", id, verb);
	snprintf(key, sizeof(key), "%s_path", verb);
	jw_kstr(jw, key, path);
	snprintf(key, sizeof(key), "%s_url", verb);
	if (!public_url[0]) {
		jw_kraw(jw, key, "null");
		return;
	}
	buf_init(&url, 4096);
	if (buf_addf(&url, "%s%s", public_url, path))
		jw->rc = E(INTERNAL);
	jw_kstr(jw, key, url.data);
	buf_release(&url);
}

int message_approval_event(const struct delegation *d, const char *public_url, struct buf *out)
{
	const char *input = d->task_input ? d->task_input : "null";
	size_t len = strlen(input), cut = utf8_cut(input, len, MESSAGE_INPUT_MAX);
	json_t *pr = json_loads(d->policy_result ? d->policy_result : "{}", 0, NULL);
	json_t *ri = json_object_get(pr, "rule_index");
	json_t *rc_ = json_object_get(pr, "rule_capability");
	struct jsonw jw;
	char *shown;

	jw_init(&jw, out);
	jw_obj_open(&jw);
	jw_kstr(&jw, "event", "approval_requested");
	jw_kstr(&jw, "org_id", d->rec.org_id);
	jw_kstr(&jw, "delegation_id", d->rec.delegation_id);
	jw_kstr(&jw, "caller_agent_id", d->rec.caller_agent_id);
	jw_kstr(&jw, "callee_agent_id", d->rec.callee_agent_id);
	jw_kstr(&jw, "capability", d->rec.capability);
	jw_key(&jw, "budget_cap_usd");
	jw_money(&jw, d->rec.budget_cap_micros);
	jw_kstr(&jw, "policy_ref", d->policy_ref[0] ? d->policy_ref : NULL);
	if (json_is_integer(ri))
		jw_kint(&jw, "rule_index", json_integer_value(ri));
	else
		jw_kraw(&jw, "rule_index", "null");
	jw_kstr(&jw, "rule_capability", json_string_value(rc_));
	jw_ktime(&jw, "created_at", d->rec.created_at);
	jw_ktime(&jw, "expires_at", d->expires_at); /* a pending one's approval deadline */
	shown = strndup(input, cut);
	if (!shown)
		jw.rc = E(INTERNAL);
	jw_kstr(&jw, "task_input", shown ? shown : "");
	free(shown);
	jw_kbool(&jw, "task_input_truncated", cut < len);
	path_pair(&jw, d->rec.delegation_id, public_url, "approve");
	path_pair(&jw, d->rec.delegation_id, public_url, "reject");
	jw_obj_close(&jw);
	json_decref(pr);
	return jw.rc;
}

int message_budget_event(const struct budget_alert *a, int64_t now, struct buf *out)
{
	struct jsonw jw;

	jw_init(&jw, out);
	jw_obj_open(&jw);
	jw_kstr(&jw, "event", "budget_alert");
	jw_kstr(&jw, "org_id", a->org_id);
	jw_kstr(&jw, "period", a->period);
	jw_key(&jw, "monthly_budget_usd");
	jw_money(&jw, a->limit_micros);
	jw_key(&jw, "alert_threshold");
	jw_num(&jw, a->threshold);
	jw_key(&jw, "threshold_usd");
	jw_money(&jw, llround(a->threshold * (double)a->limit_micros));
	jw_key(&jw, "spent_usd");
	jw_money(&jw, a->spent_micros);
	jw_key(&jw, "held_usd");
	jw_money(&jw, a->held_micros);
	jw_key(&jw, "used_usd");
	jw_money(&jw, a->spent_micros + a->held_micros);
	jw_ktime(&jw, "created_at", now);
	jw_obj_close(&jw);
	return jw.rc;
}

static const char *str(json_t *ev, const char *key, const char *dflt)
{
	const char *s = json_string_value(json_object_get(ev, key));

	return s ? s : dflt;
}

static void usd(json_t *ev, const char *key, char *out, size_t outsz)
{
	double v = json_number_value(json_object_get(ev, key));

	money_format(llround(v * MONEY_SCALE), out, outsz);
}

static int approval_text(json_t *ev, char *subject, size_t subjectsz, struct buf *t)
{
	const char *approve = str(ev, "approve_url", str(ev, "approve_path", ""));
	const char *reject = str(ev, "reject_url", str(ev, "reject_path", ""));
	json_t *ri = json_object_get(ev, "rule_index");
	char cap[32];
	int rc;

	usd(ev, "budget_cap_usd", cap, sizeof(cap));
	snprintf(subject, subjectsz, "[Nexra] Approval needed: %.64s -> %.64s (%.64s)",
		 str(ev, "caller_agent_id", ""), str(ev, "callee_agent_id", ""),
		 str(ev, "capability", ""));
	rc = buf_addf(t, "Approval needed for delegation %s\n", str(ev, "delegation_id", ""));
	if (!rc)
		rc = buf_addf(t, "Caller: %s\nCallee: %s\nCapability: %s\nBudget cap: %s USD\n",
			      str(ev, "caller_agent_id", ""), str(ev, "callee_agent_id", ""),
			      str(ev, "capability", ""), cap);
	if (!rc && json_is_integer(ri))
		rc = buf_addf(t, "Rule: %s rules[%lld] (%s)\n", str(ev, "policy_ref", "(unnamed)"),
			      (long long)json_integer_value(ri), str(ev, "rule_capability", ""));
	if (!rc)
		rc = buf_addf(t, "Expires: %s\n", str(ev, "expires_at", "no expiry"));
	if (!rc)
		rc = buf_addf(t, "Task input%s: %s\n",
			      json_is_true(json_object_get(ev, "task_input_truncated"))
				      ? " (truncated)"
				      : "",
			      str(ev, "task_input", ""));
	if (!rc)
		rc = buf_addf(t, "Approve: POST %s\nReject: POST %s with {\"reason\": \"...\"}\n",
			      approve, reject);
	return rc;
}

static int budget_text(json_t *ev, char *subject, size_t subjectsz, struct buf *t)
{
	char limit[32], used[32], spent[32], held[32];
	double thr = json_number_value(json_object_get(ev, "alert_threshold"));

	usd(ev, "monthly_budget_usd", limit, sizeof(limit));
	usd(ev, "used_usd", used, sizeof(used));
	usd(ev, "spent_usd", spent, sizeof(spent));
	usd(ev, "held_usd", held, sizeof(held));
	snprintf(subject, subjectsz, "[Nexra] Budget alert for %.16s: %s of %s USD used",
		 str(ev, "period", ""), used, limit);
	return buf_addf(t,
			"Budget alert for organization %s, month %s\n"
			"Spent plus held: %s USD of the %s USD monthly budget "
			"(spent %s, held %s)\n"
			"Alert threshold: %g%% of the monthly budget\n",
			str(ev, "org_id", ""), str(ev, "period", ""), used, limit, spent, held,
			thr * 100);
}

int message_text(const char *payload, char *subject, size_t subjectsz, struct buf *text)
{
	json_t *ev = json_loads(payload, 0, NULL);
	const char *event = str(ev, "event", "");
	int rc;

	if (!strcmp(event, "approval_requested"))
		rc = approval_text(ev, subject, subjectsz, text);
	else if (!strcmp(event, "budget_alert"))
		rc = budget_text(ev, subject, subjectsz, text);
	else
		rc = E(VALIDATION);
	json_decref(ev);
	return rc;
}

int message_slack_body(const char *payload, struct buf *out)
{
	char subject[MESSAGE_SUBJECT_MAX];
	struct buf text, esc;
	struct jsonw jw;
	int rc;

	buf_init(&text, MESSAGE_PAYLOAD_MAX);
	buf_init(&esc, 5 * MESSAGE_PAYLOAD_MAX);
	rc = message_text(payload, subject, sizeof(subject), &text);
	for (size_t i = 0; !rc && i < text.len; i++) {
		char c = text.data[i];

		rc = c == '&'   ? buf_adds(&esc, "&amp;")
		     : c == '<' ? buf_adds(&esc, "&lt;")
		     : c == '>' ? buf_adds(&esc, "&gt;")
				: buf_add(&esc, &c, 1);
	}
	if (!rc) {
		jw_init(&jw, out);
		jw_obj_open(&jw);
		jw_kstr(&jw, "text", esc.data ? esc.data : "");
		jw_obj_close(&jw);
		rc = jw.rc;
	}
	buf_release(&text);
	buf_release(&esc);
	return rc;
}
