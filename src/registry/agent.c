/*
 * Agent definition validation and rendering; see agent.h. The rules follow
 * the seed's field table; where the seed is silent (lengths, the agent id
 * alphabet, the price ceiling) docs/api.md records the choice.
 */
#include "registry/agent.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "core/err.h"
#include "core/netaddr.h"
#include "schema/schema.h"
#include "core/banned.h"

const char *const agent_capability_types[] = {"research",   "analysis",  "generation",
					      "enrichment", "validation", "execution",
					      "other",      NULL};
const char *const agent_statuses[] = {"probationary", "active", "paused", NULL};

static const char *const fields[] = {"agent_id",       "name",         "description",
				     "capability_type", "webhook_url", "webhook_secret",
				     "pricing",        "sla",          "input_schema",
				     "output_schema",  "is_public",    NULL};
static const char *const pricing_fields[] = {"per_call_usd", NULL};
static const char *const sla_fields[] = {"p99_latency_ms", "availability", NULL};

/* What libcurl's lenient parser lets through but a webhook URL must not
 * have: spaces or control characters, and an empty authority
 * ("https:///x", which curl reads as host "x"). */
static int url_shape_ok(const char *url)
{
	const char *sep = strstr(url, "://");
	size_t auth;

	for (const unsigned char *p = (const unsigned char *)url; *p; p++)
		if (*p <= 0x20 || *p == 0x7f)
			return 0;
	if (!sep)
		return 0;
	auth = strcspn(sep + 3, "/?#");
	return auth > 0 && sep[3 + auth - 1] != ':'; /* "https://x.com:/" */
}

int agent_webhook_url_check(const char *url, int dev, const char **why)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *user = NULL, *pass = NULL, *port = NULL;
	int rc = E(VALIDATION), literal = 0;

	*why = "is not a valid absolute URL";
	if (!u || !url_shape_ok(url) ||
	    curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME))
		goto out;
	if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) || !host[0])
		goto out;
	if (!curl_url_get(u, CURLUPART_PORT, &port, 0) && !strcmp(port, "0")) {
		*why = "must not use port 0";
		goto out;
	}
	if (!curl_url_get(u, CURLUPART_USER, &user, 0) ||
	    !curl_url_get(u, CURLUPART_PASSWORD, &pass, 0)) {
		*why = "must not contain user information";
		goto out;
	}
	if (strcmp(scheme, "https") && !(dev && !strcmp(scheme, "http"))) {
		*why = dev ? "must be an http:// or https:// URL"
			   : "must be an https:// URL (http:// is allowed only with --dev)";
		goto out;
	}
	if (!dev && !netaddr_host_is_public(host, &literal)) {
		*why = "must point to a public host (loopback and private addresses are allowed only with --dev)";
		goto out;
	}
	rc = 0;
out:
	curl_free(scheme);
	curl_free(host);
	curl_free(user);
	curl_free(pass);
	curl_free(port);
	curl_url_cleanup(u);
	return rc;
}

static char *dup_or_fail(const char *s, int *rc)
{
	char *d = strdup(s);

	if (!d)
		*rc = E(INTERNAL);
	return d;
}

/* A JSON Schema field: an object, valid against the draft-7 meta-schema
 * and compilable (refs resolved: only to itself; remote documents are never
 * fetched), at most AGENT_SCHEMA_MAX bytes once serialized. */
static int schema(const json_t *body, const char *key, char **out, struct jerr *e)
{
	struct schema_errors errs;
	struct schema *compiled = NULL;
	json_t *v = NULL;
	char first[SCHEMA_PATH_MAX + SCHEMA_MESSAGE_MAX + 8];
	int rc = json_get_object(body, "", key, 1, &v, e);
	size_t n;

	if (rc)
		return rc;
	schema_errors_init(&errs);
	if (schema_compile(v, NULL, &compiled, &errs)) {
		if (errs.count)
			schema_error_format(&errs.items[0], first, sizeof(first));
		else
			snprintf(first, sizeof(first), "cannot be compiled");
		return jerr_set(e, key, "is not a valid JSON Schema (draft 7): %s%s", first,
				errs.count > 1 ? " (and more)" : "");
	}
	schema_free(compiled);
	*out = json_dumps(v, JSON_DUMP_FLAGS);
	if (!*out)
		return E(INTERNAL);
	n = strlen(*out);
	if (n > AGENT_SCHEMA_MAX)
		return jerr_set(e, key, "must be at most %d bytes of JSON, got %zu",
				AGENT_SCHEMA_MAX, n);
	return 0;
}

int agent_from_json(const json_t *body, const char *path_agent_id, int dev, struct agent *a,
		    const char **secret, struct jerr *e)
{
	const char *id = NULL, *s = NULL, *why = NULL;
	json_t *pricing = NULL, *sla = NULL;
	int rc, pub = 0;

	memset(a, 0, sizeof(*a));
	rc = json_only_keys(body, "", fields, e);
	if (rc)
		goto out;
	rc = json_get_string(body, "", "agent_id", !path_agent_id, 1, AGENT_ID_MAX, &id, e);
	if (rc < 0)
		goto out;
	if (rc == 1)
		id = path_agent_id;
	if (!agent_id_valid(id)) {
		rc = jerr_set(e, "agent_id",
			      "must be 1 to %d characters of letters, digits and . _ : -, starting with a letter or digit",
			      AGENT_ID_MAX);
		goto out;
	}
	if (path_agent_id && strcmp(id, path_agent_id)) {
		rc = jerr_set(e, "agent_id", "must match the agent id in the path (%s)",
			      path_agent_id);
		goto out;
	}
	memcpy(a->agent_id, id, strlen(id) + 1);
	rc = json_get_string(body, "", "name", 1, 1, AGENT_NAME_MAX, &s, e);
	if (!rc)
		a->name = dup_or_fail(s, &rc);
	if (!rc)
		rc = json_get_string(body, "", "description", 1, 1, AGENT_DESC_MAX, &s, e);
	if (!rc)
		a->description = dup_or_fail(s, &rc);
	if (!rc)
		rc = json_get_enum(body, "", "capability_type", 1, agent_capability_types, &s, e);
	if (!rc)
		memcpy(a->capability_type, s, strlen(s) + 1);
	if (!rc)
		rc = json_get_string(body, "", "webhook_url", 1, 1, AGENT_URL_MAX, &s, e);
	if (!rc && agent_webhook_url_check(s, dev, &why))
		rc = jerr_set(e, "webhook_url", "%s", why);
	if (!rc)
		a->webhook_url = dup_or_fail(s, &rc);
	if (!rc)
		rc = json_get_string(body, "", "webhook_secret", 1, AGENT_SECRET_MIN,
				     AGENT_SECRET_MAX, secret, e);
	if (!rc)
		rc = json_get_object(body, "", "pricing", 1, &pricing, e);
	if (!rc)
		rc = json_only_keys(pricing, "pricing", pricing_fields, e);
	if (!rc)
		rc = json_get_money(pricing, "pricing", "per_call_usd", 1, AGENT_PRICE_MAX_MICROS,
				    &a->per_call_micros, e);
	if (!rc)
		rc = json_get_object(body, "", "sla", 1, &sla, e);
	if (!rc)
		rc = json_only_keys(sla, "sla", sla_fields, e);
	if (!rc)
		rc = json_get_int(sla, "sla", "p99_latency_ms", 1, 1, AGENT_P99_MAX_MS,
				  &a->p99_latency_ms, e);
	if (!rc)
		rc = json_get_number(sla, "sla", "availability", 1, 0.0, 1.0, &a->availability, e);
	if (!rc)
		rc = schema(body, "input_schema", &a->input_schema, e);
	if (!rc)
		rc = schema(body, "output_schema", &a->output_schema, e);
	if (!rc) {
		rc = json_get_bool(body, "", "is_public", 0, &pub, e);
		rc = rc == 1 ? 0 : rc;
		a->is_public = pub;
	}
out:
	if (rc)
		agent_release(a);
	return rc;
}

void agent_write_json(struct jsonw *jw, const struct agent *a)
{
	jw_obj_open(jw);
	agent_write_members(jw, a, 1);
	jw_obj_close(jw);
}

void agent_write_members(struct jsonw *jw, const struct agent *a, int with_webhook)
{
	jw_kstr(jw, "agent_id", a->agent_id);
	jw_kstr(jw, "name", a->name);
	jw_kstr(jw, "description", a->description);
	jw_kstr(jw, "capability_type", a->capability_type);
	if (with_webhook)
		jw_kstr(jw, "webhook_url", a->webhook_url);
	jw_key(jw, "pricing");
	jw_obj_open(jw);
	jw_key(jw, "per_call_usd");
	jw_money(jw, a->per_call_micros);
	jw_obj_close(jw);
	jw_key(jw, "sla");
	jw_obj_open(jw);
	jw_kint(jw, "p99_latency_ms", a->p99_latency_ms);
	jw_key(jw, "availability");
	jw_num(jw, a->availability);
	jw_obj_close(jw);
	jw_kraw(jw, "input_schema", a->input_schema);
	jw_kraw(jw, "output_schema", a->output_schema);
	jw_kbool(jw, "is_public", a->is_public);
	jw_kstr(jw, "status", a->status);
	jw_key(jw, "trust_score");
	jw_num(jw, a->trust_score);
	jw_kstr(jw, "embedding_id", a->embedding_id);
	jw_ktime(jw, "registered_at", a->registered_at);
	jw_ktime(jw, "updated_at", a->updated_at);
}
