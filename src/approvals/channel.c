/* Reading and writing notification channels; see channel.h. */
#include "approvals/channel.h"

#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "delegation/sign.h"
#include "registry/agent.h"
#include "core/banned.h"

const char *const channel_kinds[] = {"slack", "email", "webhook", NULL};

static const char *const slack_fields[] = {"kind", "name", "url", NULL};
static const char *const email_fields[] = {"kind", "name", "email", NULL};
static const char *const webhook_fields[] = {"kind", "name", "url", "secret", NULL};

static int local_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+/=?^_`{|}~.-", c));
}

static int label_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-';
}

/* Dotted labels of letters, digits and '-' (not at a label's ends), at
 * least two labels. */
static int domain_valid(const char *d)
{
	size_t len = strlen(d), lab = 0, labels = 0;

	if (len < 3 || len > 253)
		return 0;
	for (size_t i = 0; i <= len; i++) {
		if (i == len || d[i] == '.') {
			if (lab == 0 || lab > 63 || d[i - 1] == '-')
				return 0;
			labels++;
			lab = 0;
		} else if (!label_char((unsigned char)d[i]) || (lab == 0 && d[i] == '-')) {
			return 0;
		} else {
			lab++;
		}
	}
	return labels >= 2;
}

int channel_email_valid(const char *s)
{
	const char *at = strchr(s, '@');
	size_t local;

	if (!at || strchr(at + 1, '@') || strlen(s) > CHANNEL_EMAIL_MAX)
		return 0;
	local = (size_t)(at - s);
	if (local == 0 || local > 64 || s[0] == '.' || at[-1] == '.')
		return 0;
	for (size_t i = 0; i < local; i++)
		if (!local_char((unsigned char)s[i]) || (s[i] == '.' && s[i + 1] == '.'))
			return 0;
	return domain_valid(at + 1);
}

static int secret_check(const char *secret, struct jerr *e)
{
	char sig[SIGN_STANDARD_LEN + 1];

	for (const unsigned char *p = (const unsigned char *)secret; *p; p++)
		if (*p < 0x21 || *p > 0x7e)
			return jerr_set(e, "secret", "must be printable ASCII without spaces");
	if (sign_standard(secret, strlen(secret), "check", 0, "", 0, sig))
		return jerr_set(e, "secret", "a whsec_ secret must be base64 after the prefix");
	return 0;
}

int channel_from_json(const json_t *body, int dev, struct channel_input *in, struct jerr *e)
{
	const char *const *fields;
	const char *why;

	memset(in, 0, sizeof(*in));
	in->name = "";
	if (json_get_enum(body, "", "kind", 1, channel_kinds, &in->kind, e))
		return E(VALIDATION);
	fields = !strcmp(in->kind, "slack")   ? slack_fields
		 : !strcmp(in->kind, "email") ? email_fields
					      : webhook_fields;
	if (json_only_keys(body, "", fields, e) ||
	    json_get_string(body, "", "name", 0, 0, NOTIFY_NAME_MAX, &in->name, e) < 0)
		return E(VALIDATION);
	if (!strcmp(in->kind, "email")) {
		if (json_get_string(body, "", "email", 1, 3, CHANNEL_EMAIL_MAX, &in->email, e))
			return E(VALIDATION);
		if (!channel_email_valid(in->email))
			return jerr_set(e, "email", "is not an address Nexra can send to "
					"(local@domain.tld, ASCII)");
		return 0;
	}
	if (json_get_string(body, "", "url", 1, 1, CHANNEL_URL_MAX, &in->url, e))
		return E(VALIDATION);
	if (agent_webhook_url_check(in->url, dev, &why))
		return jerr_set(e, "url", "%s", why);
	if (!strcmp(in->kind, "webhook")) {
		if (json_get_string(body, "", "secret", 1, CHANNEL_SECRET_MIN, CHANNEL_SECRET_MAX,
				    &in->secret, e))
			return E(VALIDATION);
		return secret_check(in->secret, e);
	}
	return 0;
}

void channel_mask_url(const char *url, char *out, size_t outsz)
{
	const char *sep = strstr(url, "://");
	size_t host = sep ? strcspn(sep + 3, "/?#") : 0;

	if (!sep) {
		snprintf(out, outsz, "...");
		return;
	}
	snprintf(out, outsz, "%.*s/...", (int)(sep + 3 + host - url), url);
}

void channel_write_json(struct jsonw *jw, const struct notify_channel *ch)
{
	jw_obj_open(jw);
	jw_kstr(jw, "channel_id", ch->channel_id);
	jw_kstr(jw, "kind", ch->kind);
	jw_kstr(jw, "name", ch->name);
	jw_kstr(jw, !strcmp(ch->kind, "email") ? "email" : "url", ch->target);
	if (!strcmp(ch->kind, "webhook"))
		jw_kbool(jw, "has_secret", 1);
	jw_ktime(jw, "created_at", ch->created_at);
	jw_obj_close(jw);
}
