/*
 * Agent definitions: reading a register/update body into a struct agent
 * with every rule of docs/api.md checked (pure: no database, no clock), and
 * writing an agent as JSON. The plaintext webhook secret is handed back
 * separately, borrowed from the body, so the caller seals it and nothing
 * else ever holds it.
 */
#ifndef NEXRA_REGISTRY_AGENT_H
#define NEXRA_REGISTRY_AGENT_H

#include <jansson.h>

#include "core/json.h"
#include "core/jsonw.h"
#include "store/store.h"

#define AGENT_NAME_MAX 200
#define AGENT_DESC_MAX 4000
#define AGENT_URL_MAX 2048
#define AGENT_SECRET_MIN 32
#define AGENT_SECRET_MAX 256
#define AGENT_SCHEMA_MAX (64 * 1024)
#define AGENT_PRICE_MAX_MICROS (1000000LL * 1000000LL) /* $1,000,000 per call */
#define AGENT_P99_MAX_MS 86400000LL

extern const char *const agent_capability_types[]; /* NULL-terminated */
extern const char *const agent_statuses[];         /* NULL-terminated */

/* Fill a's definition fields (agent_id, name, description, capability_type,
 * webhook_url, pricing, sla, schemas, is_public) from body. path_agent_id is
 * the id in the URL for an update (the body's agent_id may then be absent
 * but must match if present), NULL for a register. dev relaxes the URL
 * rules. On success *secret points into body. On failure a is released and
 * e names the field. */
int agent_from_json(const json_t *body, const char *path_agent_id, int dev, struct agent *a,
		    const char **secret, struct jerr *e);

/* Check a webhook URL: https (http only when dev), a host, no user info,
 * and outside dev no loopback/private IP literal or localhost name.
 * 0, or E(VALIDATION) with a reason in why. */
int agent_webhook_url_check(const char *url, int dev, const char **why);

/* The agent as the API shows it (never the secret). */
void agent_write_json(struct jsonw *jw, const struct agent *a);
/* Its members only, into an object the caller opened; with_webhook 0
 * leaves out the webhook URL (discovery shows agents of other orgs, and
 * delegations reach callees through Nexra anyway). */
void agent_write_members(struct jsonw *jw, const struct agent *a, int with_webhook);

#endif
