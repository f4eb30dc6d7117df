/*
 * A discover request body (docs/api.md "Discover capabilities"), read and
 * checked without I/O: every field of the seed, optional ones absent or
 * null. The query's lexical terms are extracted here too (lowercase
 * [a-z0-9] words without stopwords, deduplicated), so what reaches the
 * database's full-text syntax is only ever plain words.
 */
#ifndef NEXRA_DISCOVERY_REQUEST_H
#define NEXRA_DISCOVERY_REQUEST_H

#include <jansson.h>

#include "core/json.h"
#include "discovery/index.h"
#include "discovery/stem.h"
#include "store/store.h"

#define DISCOVER_QUERY_MAX 1000 /* characters */
#define DISCOVER_LIMIT_DEFAULT 5

struct discover_req {
	const char *query;           /* borrowed from the body; "" when absent */
	const char *capability_type; /* NULL: any */
	int64_t budget_cap_micros;   /* -1: none */
	int64_t max_latency_ms;      /* -1: none */
	const char *exclude[DX_EXCLUDE_MAX];
	int nexclude;
	int include_cross_org;
	int limit;
	/* the query's words for full-text search */
	char term_buf[SEARCH_TERMS_MAX][STEM_WORD_MAX + 1];
	int nterms;
};

/* Fill q from body; 0 or E(VALIDATION) with e naming the field. */
int discover_req_from_json(const json_t *body, struct discover_req *q, struct jerr *e);

#endif
