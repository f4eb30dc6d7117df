/*
 * approvals/: channel bodies and addresses, what a notification says (the
 * event JSON, the text, the Slack body), the email message, and the retry
 * backoff. All pure: no server, no clock.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "approvals/channel.h"
#include "approvals/message.h"
#include "approvals/notifier.h"
#include "approvals/smtp.h"
#include "core/err.h"
#include "test.h"

TEST(notify_email_addresses)
{
	const char *good[] = {"a@b.co", "ops+nexra@mail.example.com", "o'neil@x-y.org",
			      "A.B@C.IO", NULL};
	const char *bad[] = {"", "a", "a@", "@b.co", "a@b", "a@@b.co", "a b@c.co", ".a@b.co",
			     "a.@b.co", "a..b@c.co", "a@-b.co", "a@b-.co", "a@b..co",
			     "a@b.co\r\nX: y", "<a@b.co>", "\xc3\xa9@b.co", "a\"b@c.co", NULL};

	for (int i = 0; good[i]; i++)
		if (!channel_email_valid(good[i]))
			FAIL_AT("refused %s", good[i]);
	for (int i = 0; bad[i]; i++)
		if (channel_email_valid(bad[i]))
			FAIL_AT("accepted %s", bad[i]);
}

static int parse(const char *text, int dev, struct channel_input *in, struct jerr *e,
		 json_t **body)
{
	*body = json_loads(text, 0, NULL);
	memset(e, 0, sizeof(*e));
	return channel_from_json(*body, dev, in, e);
}

TEST(notify_channel_bodies)
{
	struct channel_input in;
	struct jerr e;
	json_t *b;

	ASSERT_EQ(parse("{\"kind\":\"slack\",\"url\":\"https://hooks.slack.com/services/x\"}", 0,
			&in, &e, &b), 0);
	ASSERT_STR_EQ(in.kind, "slack");
	ASSERT_STR_EQ(in.name, "");
	json_decref(b);
	ASSERT_EQ(parse("{\"kind\":\"slack\",\"url\":\"http://127.0.0.1:9/x\"}", 0, &in, &e, &b),
		  E(VALIDATION));
	ASSERT_STR_EQ(e.field, "url");
	json_decref(b);
	ASSERT_EQ(parse("{\"kind\":\"slack\",\"url\":\"http://127.0.0.1:9/x\"}", 1, &in, &e, &b),
		  0);
	json_decref(b);
	ASSERT_EQ(parse("{\"kind\":\"email\",\"email\":\"a@b.co\",\"url\":\"https://x.co/\"}", 0,
			&in, &e, &b), E(VALIDATION));
	ASSERT_STR_EQ(e.field, "url");
	json_decref(b);
	ASSERT_EQ(parse("{\"kind\":\"webhook\",\"url\":\"https://x.co/h\",\"secret\":"
			"\"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"}", 0, &in, &e, &b), 0);
	json_decref(b);
	ASSERT_EQ(parse("{\"kind\":\"webhook\",\"url\":\"https://x.co/h\",\"secret\":"
			"\"whsec_!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\"}", 0, &in, &e, &b),
		  E(VALIDATION));
	ASSERT_STR_EQ(e.field, "secret");
	json_decref(b);
	ASSERT_EQ(parse("{\"url\":\"https://x.co/h\"}", 0, &in, &e, &b), E(VALIDATION));
	ASSERT_STR_EQ(e.field, "kind");
	json_decref(b);
}

TEST(notify_mask_url)
{
	char out[64];

	channel_mask_url("https://hooks.slack.com/services/T0/B0/secret", out, sizeof(out));
	ASSERT_STR_EQ(out, "https://hooks.slack.com/...");
	channel_mask_url("http://127.0.0.1:9?q", out, sizeof(out));
	ASSERT_STR_EQ(out, "http://127.0.0.1:9/...");
}

static void approval(struct delegation *d, const char *input, const char *policy_result)
{
	memset(d, 0, sizeof(*d));
	snprintf(d->rec.delegation_id, sizeof(d->rec.delegation_id), "del_0123");
	snprintf(d->rec.org_id, sizeof(d->rec.org_id), "org_1");
	snprintf(d->rec.caller_agent_id, sizeof(d->rec.caller_agent_id), "sales<&>");
	snprintf(d->rec.callee_agent_id, sizeof(d->rec.callee_agent_id), "mailer");
	snprintf(d->rec.capability, sizeof(d->rec.capability), "email_send");
	snprintf(d->policy_ref, sizeof(d->policy_ref), "prod");
	d->rec.budget_cap_micros = 250000;
	d->rec.created_at = 1773671000;
	d->task_input = (char *)input;
	d->policy_result = (char *)policy_result;
}

TEST(notify_approval_event_and_text)
{
	struct delegation d;
	struct buf b, t, s;
	char subject[MESSAGE_SUBJECT_MAX];
	json_t *ev;

	approval(&d, "{\"to\":\"x@y.z\"}",
		 "{\"rule_index\":1,\"rule_capability\":\"email_send\",\"hitl_timeout_seconds\":900}");
	d.expires_at = d.rec.created_at + 900; /* the approval deadline, as stored */
	buf_init(&b, MESSAGE_PAYLOAD_MAX);
	ASSERT_EQ(message_approval_event(&d, "https://n.example", &b), 0);
	ev = json_loads(b.data, 0, NULL);
	ASSERT(ev != NULL);
	ASSERT_STR_EQ(json_string_value(json_object_get(ev, "expires_at")), "2026-03-16T14:38:20Z");
	ASSERT_EQ(json_integer_value(json_object_get(ev, "rule_index")), 1);
	ASSERT_STR_EQ(json_string_value(json_object_get(ev, "approve_url")),
		      "https://n.example/v1/delegations/del_0123/approve");
	ASSERT(json_number_value(json_object_get(ev, "budget_cap_usd")) == 0.25);
	json_decref(ev);
	buf_init(&t, MESSAGE_PAYLOAD_MAX);
	ASSERT_EQ(message_text(b.data, subject, sizeof(subject), &t), 0);
	ASSERT_STR_EQ(subject, "[Nexra] Approval needed: sales<&> -> mailer (email_send)");
	ASSERT_CONTAINS(t.data, "Budget cap: 0.25 USD\n");
	ASSERT_CONTAINS(t.data, "Rule: prod rules[1] (email_send)\n");
	ASSERT_CONTAINS(t.data, "Expires: 2026-03-16T14:38:20Z\n");
	ASSERT_CONTAINS(t.data, "Task input: {\"to\":\"x@y.z\"}\n");
	ASSERT_CONTAINS(t.data, "Reject: POST https://n.example/v1/delegations/del_0123/reject");
	buf_init(&s, MESSAGE_PAYLOAD_MAX * 5);
	ASSERT_EQ(message_slack_body(b.data, &s), 0);
	ASSERT_CONTAINS(s.data, "sales&lt;&amp;&gt;");
	buf_release(&b);
	buf_release(&t);
	buf_release(&s);

	/* no timeout, no public URL, a long input cut on a character boundary */
	{
		char big[1200];

		memset(big, 0, sizeof(big));
		big[0] = '"';
		for (int i = 1; i < 1100; i += 2)
			memcpy(big + i, "\xc3\xa9", 2);
		big[1101] = '"';
		approval(&d, big, "{\"rule_index\":0,\"rule_capability\":\"*\","
				  "\"hitl_timeout_seconds\":null}");
		buf_init(&b, MESSAGE_PAYLOAD_MAX);
		ASSERT_EQ(message_approval_event(&d, "", &b), 0);
		ev = json_loads(b.data, 0, NULL);
		ASSERT(ev != NULL);
		ASSERT(json_is_null(json_object_get(ev, "expires_at")));
		ASSERT(json_is_null(json_object_get(ev, "approve_url")));
		ASSERT(json_is_true(json_object_get(ev, "task_input_truncated")));
		ASSERT(strlen(json_string_value(json_object_get(ev, "task_input"))) <= MESSAGE_INPUT_MAX);
		json_decref(ev);
		buf_init(&t, MESSAGE_PAYLOAD_MAX);
		ASSERT_EQ(message_text(b.data, subject, sizeof(subject), &t), 0);
		ASSERT_CONTAINS(t.data, "Expires: no expiry\n");
		ASSERT_CONTAINS(t.data, "Approve: POST /v1/delegations/del_0123/approve\n");
		buf_release(&b);
		buf_release(&t);
	}
	ASSERT_EQ(message_text("{\"event\":\"other\"}", subject, sizeof(subject), &t),
		  E(VALIDATION));
	buf_release(&t);
}

TEST(notify_budget_event)
{
	struct budget_alert a = {"org_1", "2026-03", 400000, 150000, 1000000, 0.5};
	char subject[MESSAGE_SUBJECT_MAX];
	struct buf b, t;
	json_t *ev;

	buf_init(&b, MESSAGE_PAYLOAD_MAX);
	buf_init(&t, MESSAGE_PAYLOAD_MAX);
	ASSERT_EQ(message_budget_event(&a, 1773671000, &b), 0);
	ev = json_loads(b.data, 0, NULL);
	ASSERT(json_number_value(json_object_get(ev, "used_usd")) == 0.55);
	ASSERT(json_number_value(json_object_get(ev, "threshold_usd")) == 0.5);
	json_decref(ev);
	ASSERT_EQ(message_text(b.data, subject, sizeof(subject), &t), 0);
	ASSERT_STR_EQ(subject, "[Nexra] Budget alert for 2026-03: 0.55 of 1 USD used");
	ASSERT_CONTAINS(t.data, "Alert threshold: 50% of the monthly budget");
	buf_release(&b);
	buf_release(&t);
}

TEST(notify_smtp_message)
{
	struct buf b;

	buf_init(&b, 1 << 16);
	ASSERT_EQ(smtp_message("n@x.co", "o@y.co", "Hello", "line1\nline2\n", "ntd_1", 0, &b), 0);
	ASSERT_CONTAINS(b.data, "Date: Thu, 01 Jan 1970 00:00:00 +0000\r\n");
	ASSERT_CONTAINS(b.data, "From: <n@x.co>\r\nTo: <o@y.co>\r\nMessage-ID: <ntd_1@nexra>\r\n");
	ASSERT_CONTAINS(b.data, "Subject: Hello\r\n");
	ASSERT_CONTAINS(b.data, "\r\n\r\nline1\r\nline2\r\n");
	buf_reset(&b);
	ASSERT_EQ(smtp_message("n@x.co", "o@y.co", "caf\xc3\xa9\r\nBcc: x", "", "ntd_1", 0, &b), 0);
	ASSERT_CONTAINS(b.data, "Subject: =?UTF-8?B?");
	ASSERT(strstr(b.data, "Bcc:") == NULL);
	buf_release(&b);
}

TEST(notify_backoff)
{
	ASSERT_EQ(notifier_backoff(5, 1), 5);
	ASSERT_EQ(notifier_backoff(5, 2), 10);
	ASSERT_EQ(notifier_backoff(5, 4), 40);
	ASSERT_EQ(notifier_backoff(5, 7), 320);
	ASSERT_EQ(notifier_backoff(5, 8), 600);
	ASSERT_EQ(notifier_backoff(1, 100), 600);
	ASSERT_EQ(notifier_backoff(0, 1), 1);
}
