/*
 * Route matching over the table in routes.c; see router.h. The table is
 * small (tens of rows), so a linear scan segment by segment is both the
 * simplest and, at this size, the fastest structure.
 */
#include "http/router.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/banned.h"

/* Does path match pattern? If so and params != NULL, cut the copy in store
 * into params. */
static int match(const char *pattern, const char *path, char *store, const char **params)
{
	const char *p = pattern, *s = path;
	int np = 0;

	while (*p && *s) {
		if (*p == '{') {
			const char *end = strchr(s, '/');
			size_t n = end ? (size_t)(end - s) : strlen(s);

			if (n == 0 || np >= REQ_MAX_PARAMS)
				return 0;
			if (params) {
				params[np] = store + (s - path);
				store[(s - path) + (long)n] = '\0';
			}
			np++;
			s += n;
			p = strchr(p, '}');
			if (!p)
				return 0;
			p++;
		} else if (*p == *s) {
			p++;
			s++;
		} else {
			return 0;
		}
	}
	return *p == '\0' && *s == '\0';
}

const struct route *router_match(struct req *r, const char *method, const char *path,
				 int *path_known, char *allow, unsigned long allowsz)
{
	size_t used = 0;

	*path_known = 0;
	allow[0] = '\0';
	for (int i = 0; i < routes_count; i++) {
		const struct route *rt = &routes[i];

		if (!match(rt->pattern, path, NULL, NULL))
			continue;
		if (strcmp(rt->method, method)) {
			*path_known = 1;
			if (used < allowsz)
				used += (size_t)snprintf(allow + used, allowsz - used, "%s%s",
							 used ? ", " : "", rt->method);
			continue;
		}
		free(r->param_store);
		r->param_store = strdup(path);
		if (!r->param_store)
			return NULL;
		match(rt->pattern, path, r->param_store, r->params);
		return rt;
	}
	return NULL;
}
