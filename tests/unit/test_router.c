/*
 * http/router: every row of the table matches its own pattern, params come
 * out in order, other methods on a known path give 405 with Allow, and
 * nothing else matches.
 */
#include <stdlib.h>
#include <string.h>

#include "http/router.h"
#include "test.h"

/* Fill path from pattern, replacing the i-th {name} by "v<i>-<name>";
 * names[i] gets the value. */
static int sample_path(const char *pattern, char *path, size_t pathsz,
		       char vals[REQ_MAX_PARAMS][64])
{
	size_t n = 0;
	int np = 0;

	for (const char *p = pattern; *p;) {
		if (*p == '{') {
			const char *end = strchr(p, '}');
			int w = snprintf(vals[np], 64, "v%d-%.*s", np, (int)(end - p - 1), p + 1);

			if (n + (size_t)w >= pathsz)
				return -1;
			memcpy(path + n, vals[np], (size_t)w);
			n += (size_t)w;
			np++;
			p = end + 1;
		} else {
			if (n + 1 >= pathsz)
				return -1;
			path[n++] = *p++;
		}
	}
	path[n] = '\0';
	return np;
}

static const struct route *match(struct req *r, const char *method, const char *path,
				 int *known, char *allow)
{
	return router_match(r, method, path, known, allow, 64);
}

TEST(router_every_row_matches_itself)
{
	ASSERT(routes_count >= 13);
	for (int i = 0; i < routes_count; i++) {
		struct req r;
		char path[256], vals[REQ_MAX_PARAMS][64], allow[64];
		int known = -1, np = sample_path(routes[i].pattern, path, sizeof(path), vals);
		const struct route *rt;

		memset(&r, 0, sizeof(r));
		ASSERT(np >= 0);
		rt = match(&r, routes[i].method, path, &known, allow);
		if (rt != &routes[i]) {
			free(r.param_store);
			FAIL_AT("%s %s matched row %ld, want %d", routes[i].method, path,
				rt ? (long)(rt - routes) : -1L, i);
		}
		ASSERT(rt->handler != NULL);
		for (int j = 0; j < np; j++)
			if (!r.params[j] || strcmp(r.params[j], vals[j])) {
				free(r.param_store);
				FAIL_AT("%s param %d = %s, want %s", path, j,
					r.params[j] ? r.params[j] : "(null)", vals[j]);
			}
		/* the params point into the request's own copy, not the caller's path */
		if (np)
			ASSERT(r.params[0] >= r.param_store &&
			       r.params[0] < r.param_store + strlen(path));
		free(r.param_store);
	}
}

TEST(router_params_extracted)
{
	struct req r;
	char allow[64];
	int known = -1;
	const struct route *rt;

	memset(&r, 0, sizeof(r));
	rt = match(&r, "POST", "/v1/agents/research-agent-v2/activate", &known, allow);
	ASSERT(rt);
	ASSERT_STR_EQ(rt->pattern, "/v1/agents/{agent_id}/activate");
	ASSERT_STR_EQ(r.params[0], "research-agent-v2");
	ASSERT_EQ(known, 0);
	/* a second match on the same request replaces the store */
	rt = match(&r, "DELETE", "/v1/keys/key_0123456789abcdef", &known, allow);
	ASSERT(rt);
	ASSERT_STR_EQ(rt->pattern, "/v1/keys/{key_id}");
	ASSERT_STR_EQ(r.params[0], "key_0123456789abcdef");
	free(r.param_store);
	/* literal rows win over {param} rows of the same shape */
	memset(&r, 0, sizeof(r));
	rt = match(&r, "POST", "/v1/agents/register", &known, allow);
	ASSERT(rt);
	ASSERT_STR_EQ(rt->pattern, "/v1/agents/register");
	free(r.param_store);
	memset(&r, 0, sizeof(r));
	rt = match(&r, "POST", "/v1/orgs/register", &known, allow);
	ASSERT(rt);
	ASSERT(rt->flags & ROUTE_PUBLIC);
	free(r.param_store);
	memset(&r, 0, sizeof(r));
	rt = match(&r, "GET", "/v1/orgs/me", &known, allow);
	ASSERT(rt);
	ASSERT(!(rt->flags & ROUTE_PUBLIC));
	free(r.param_store);
}

TEST(router_405_lists_allowed_methods)
{
	static const struct {
		const char *method, *path, *allow;
	} cases[] = {
		{"POST", "/v1/agents/x", "GET, PUT, DELETE"},
		{"PATCH", "/v1/agents/x", "GET, PUT, DELETE"},
		{"GET", "/v1/agents/x/activate", "POST"},
		{"DELETE", "/v1/keys", "POST, GET"},
		{"GET", "/v1/keys/key_1", "DELETE"},
		{"POST", "/healthz", "GET"},
		{"GET", "/v1/orgs/register", "POST"},
		{"PUT", "/v1/agents", "GET"},
		{"get", "/healthz", "GET"}, /* methods are case-sensitive */
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct req r;
		char allow[64];
		int known = -1;
		const struct route *rt;

		memset(&r, 0, sizeof(r));
		rt = match(&r, cases[i].method, cases[i].path, &known, allow);
		free(r.param_store);
		if (rt || known != 1 || strcmp(allow, cases[i].allow))
			FAIL_AT("%s %s: route %p known %d allow \"%s\", want \"%s\"",
				cases[i].method, cases[i].path, (const void *)rt, known, allow,
				cases[i].allow);
	}
}

TEST(router_unknown_paths)
{
	static const char *const paths[] = {
		"/",           "",          "/v1",            "/v1/agents/",      "/v1/agents//activate",
		"/v1/agents/x/", "/v1/keys/", "/v1/keys/a/b",  "/v1/agents/x/activate/",
		"/healthz/",   "/HEALTHZ",  "/v1/agents/x/y", "//v1/agents",      "/v1/orgs/me/",
		"/metricsx",   "/v1/agent", "healthz",
	};
	static const char *const methods[] = {"GET", "POST", "PUT", "DELETE"};

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		for (size_t m = 0; m < 4; m++) {
			struct req r;
			char allow[64];
			int known = -1;
			const struct route *rt;

			memset(&r, 0, sizeof(r));
			rt = match(&r, methods[m], paths[i], &known, allow);
			free(r.param_store);
			if (rt || known != 0 || allow[0])
				FAIL_AT("%s \"%s\" matched (known %d, allow \"%s\")", methods[m],
					paths[i], known, allow);
		}
}

TEST(router_small_allow_buffer)
{
	struct req r;
	char allow[8];
	int known = 0;

	memset(&r, 0, sizeof(r));
	memset(allow, 'z', sizeof(allow));
	ASSERT(router_match(&r, "POST", "/v1/agents/x", &known, allow, sizeof(allow)) == NULL);
	ASSERT_EQ(known, 1);
	ASSERT(memchr(allow, '\0', sizeof(allow)) != NULL);
	ASSERT(!strncmp(allow, "GET, PU", 7));
}
