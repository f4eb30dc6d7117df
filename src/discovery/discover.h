/*
 * One discovery without HTTP (discover.c): sync the index, embed the query
 * (the provider's model when configured and answering), full-text search,
 * rank. signals chooses the relevance signals: both for the API; one alone
 * for the evaluation's baselines (bench/discover_eval.c), so its figures
 * come from the code that answers requests.
 */
#ifndef NEXRA_DISCOVERY_DISCOVER_H
#define NEXRA_DISCOVERY_DISCOVER_H

#include "discovery/discovery.h"
#include "discovery/request.h"

#define LEXICAL_MATCH_BUDGET 250 /* rows full-text search may rank */
/* hits read: every row the budget allows (the rarest word may match up to
 * 4 budgets alone), so unfiltered hits lose nothing */
#define DISCOVER_LEXICAL_CANDIDATES (5 * LEXICAL_MATCH_BUDGET)
enum { DISCOVER_LEXICAL = 1, DISCOVER_SEMANTIC = 2, DISCOVER_HYBRID = 3 };

struct discover_out {
	struct dx_result res[DX_RESULTS_MAX];
	int n;
	int has_text;
	char model[256];              /* the model that embedded the query */
	int fallback;                 /* the provider failed: built-in used */
	char why[PROVIDER_WHY_MAX];   /* why, when fallback */
	int store_failed;             /* rc came from the store (else the index) */
};

/* 0, or the store's / index's error (out->store_failed tells which). */
int discover_run(struct discovery *d, const char *org_id, const struct discover_req *q,
		 int signals, struct discover_out *out);

#endif
