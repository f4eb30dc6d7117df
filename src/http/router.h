/*
 * The route table: every endpoint is one row (method, path pattern,
 * handler, flags), declared in routes.c. Patterns are literal segments and
 * {name} placeholders matching one non-empty segment; a placeholder's value
 * is r->params[i] in the order they appear. Matching is pure.
 */
#ifndef NEXRA_HTTP_ROUTER_H
#define NEXRA_HTTP_ROUTER_H

#include "http/req.h"

enum route_flags {
	ROUTE_PUBLIC = 1, /* no API key needed */
};

struct route {
	const char *method;
	const char *pattern;
	int (*handler)(struct req *r);
	unsigned flags;
};

extern const struct route routes[];
extern const int routes_count;

/* Find the route for method and path. Returns the route, or NULL with
 * *path_known set when another method matches the path (405) and allow
 * filled with the allowed methods ("GET, PUT"). On a match the params are
 * copied into an owned store (r->param_store). */
const struct route *router_match(struct req *r, const char *method, const char *path,
				 int *path_known, char *allow, unsigned long allowsz);

#endif
