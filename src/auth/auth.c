/*
 * Request authentication; see auth.h. Every failure to present a valid,
 * unrevoked key gets the same 401 message, so a caller cannot tell a
 * malformed key from an unknown or a revoked one.
 */
#include "auth/auth.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "auth/apikey.h"
#include "core/err.h"
#include "core/timefmt.h"
#include "serve/app.h"
#include "core/banned.h"

#define UNAUTH_MSG "missing, invalid or revoked API key (Authorization: Bearer nx_live_... or nx_test_...)"

const char *auth_bearer(const char *h, size_t *len)
{
	if (!h || strncasecmp(h, "Bearer ", 7))
		return NULL;
	h += 7;
	while (*h == ' ')
		h++;
	*len = strlen(h);
	while (*len && h[*len - 1] == ' ')
		(*len)--;
	return *len ? h : NULL;
}

int agent_id_valid(const char *s)
{
	size_t n = 0;

	if (!s || !isalnum((unsigned char)s[0]))
		return 0;
	for (; s[n]; n++)
		if (!isalnum((unsigned char)s[n]) && !strchr("._:-", s[n]))
			return 0;
	return n <= AGENT_ID_MAX;
}

int auth_require_live(struct req *r, const char *what)
{
	if (r->auth.key.kind != KEY_LIVE)
		return req_fail(r, E(FORBIDDEN),
				"%s needs a live key (nx_live_...); test keys may read and evaluate",
				what);
	return 0;
}

int auth_request(struct req *r)
{
	struct app *app = r->app;
	unsigned char hash[32];
	char lookup[KEY_LOOKUP_LEN + 1], status[16];
	const char *key, *agent;
	size_t len = 0;
	int kind, rc;

	key = auth_bearer(req_header(r, "Authorization"), &len);
	if (!key || apikey_parse(key, len, &kind, lookup))
		return req_fail(r, E(UNAUTHORIZED), UNAUTH_MSG);
	rc = app->store->ops->key_by_lookup(app->store, lookup, &r->auth);
	if (rc == E(NOT_FOUND))
		return req_fail(r, E(UNAUTHORIZED), UNAUTH_MSG);
	if (rc)
		return req_fail(r, rc, "key lookup failed: %s", store_last_error());
	apikey_hash(key, len, hash);
	if (!apikey_hash_equal(hash, r->auth.key.hash) || r->auth.key.revoked_at ||
	    r->auth.key.kind != kind)
		return req_fail(r, E(UNAUTHORIZED), UNAUTH_MSG);
	r->authed = 1;

	rc = ratelimiter_check(&app->rl, r->auth.org.org_id,
			       config_plan_limit(app->cfg, r->auth.org.plan), time_now_ms(), &r->rl);
	if (rc)
		return req_fail(r, rc, "rate limiter out of memory");
	r->rl_applied = 1;
	if (!r->rl.allowed)
		return req_fail(r, E(RATE_LIMITED),
				"rate limit of %d requests per minute for plan %s exceeded; retry in %lld s",
				r->rl.limit, r->auth.org.plan, (long long)r->rl.retry_after_s);

	agent = req_header(r, "X-Agent-ID");
	if (agent) {
		if (!agent_id_valid(agent))
			return req_fail(r, E(FORBIDDEN), "X-Agent-ID is not a valid agent id");
		rc = app->store->ops->agent_status(app->store, r->auth.org.org_id, agent, status);
		if (rc == E(NOT_FOUND))
			return req_fail(r, E(FORBIDDEN),
					"X-Agent-ID %s is not an agent of this organization", agent);
		if (rc)
			return req_fail(r, rc, "agent lookup failed: %s", store_last_error());
		if (!strcmp(status, "paused"))
			return req_fail(r, E(FORBIDDEN), "X-Agent-ID %s is paused", agent);
		r->agent_id = agent;
	}
	return 0;
}
