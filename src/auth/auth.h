/*
 * Request authentication, run by the server before every non-public
 * route: the bearer API key (format and checksum first, then one indexed
 * read and a constant-time hash comparison), the org's rate limit, and the
 * optional X-Agent-ID. On failure the request is answered (401/403/429) and
 * the error returned; on success r->auth holds the key and its org.
 */
#ifndef NEXRA_AUTH_AUTH_H
#define NEXRA_AUTH_AUTH_H

#include "http/req.h"

int auth_request(struct req *r);

/* Changes to org configuration (keys, policies) need a live key: test keys
 * read and get decisions, never change live data. 0, or 403 answered;
 * what names the action ("managing keys"). */
int auth_require_live(struct req *r, const char *what);

/* Extract the token of "Authorization: Bearer <token>" (case-insensitive
 * scheme, one space or more). Pure; NULL if absent or another scheme. */
const char *auth_bearer(const char *header, size_t *len);

/* Agent ids: 1..AGENT_ID_MAX of [A-Za-z0-9._:-], first a letter or digit. */
int agent_id_valid(const char *s);

#endif
