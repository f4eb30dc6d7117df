/* Reading a discover request; see request.h. */
#include "discovery/request.h"

#include <stdio.h>
#include <string.h>

#include "auth/auth.h"
#include "core/err.h"
#include "registry/agent.h"
#include "core/banned.h"

static const char *const fields[] = {"query", "capability_type", "budget_cap_usd",
				     "max_latency_ms", "exclude_agents", "include_cross_org",
				     "limit", NULL};

/* Optional members given as null read as absent. */
static int present(const json_t *body, const char *key)
{
	const json_t *v = json_object_get(body, key);

	return v && !json_is_null(v);
}

static void extract_terms(struct discover_req *q)
{
	size_t pos = 0, len = strlen(q->query), n;
	char w[STEM_WORD_MAX + 1];

	q->nterms = 0;
	while (q->nterms < SEARCH_TERMS_MAX && (n = stem_next_word(q->query, len, &pos, w)) > 0) {
		int dup = 0;

		if (stem_is_stopword(w, n))
			continue;
		for (int i = 0; i < q->nterms && !dup; i++)
			dup = !strcmp(q->term_buf[i], w);
		if (!dup)
			memcpy(q->term_buf[q->nterms++], w, n + 1);
	}
}

static int read_exclude(const json_t *body, struct discover_req *q, struct jerr *e)
{
	const json_t *arr = json_object_get(body, "exclude_agents");
	size_t i;
	json_t *v;

	if (!json_is_array(arr))
		return jerr_set(e, "exclude_agents", "expected an array of agent ids, got %s",
				json_type_name(arr));
	if (json_array_size(arr) > DX_EXCLUDE_MAX)
		return jerr_set(e, "exclude_agents", "at most %d agent ids", DX_EXCLUDE_MAX);
	json_array_foreach(arr, i, v) {
		char f[40];

		snprintf(f, sizeof(f), "exclude_agents[%zu]", i);
		if (!json_is_string(v))
			return jerr_set(e, f, "expected an agent id (string), got %s",
					json_type_name(v));
		if (!agent_id_valid(json_string_value(v)))
			return jerr_set(e, f, "is not a valid agent id");
		q->exclude[q->nexclude++] = json_string_value(v);
	}
	return 0;
}

int discover_req_from_json(const json_t *body, struct discover_req *q, struct jerr *e)
{
	int64_t lim = DISCOVER_LIMIT_DEFAULT;
	int rc;

	memset(q, 0, sizeof(*q));
	q->query = "";
	q->budget_cap_micros = -1;
	q->max_latency_ms = -1;
	rc = json_only_keys(body, "", fields, e);
	if (!rc && present(body, "query"))
		rc = json_get_string(body, "", "query", 0, 0, DISCOVER_QUERY_MAX, &q->query, e);
	if (rc > 0)
		rc = 0;
	if (!rc && present(body, "capability_type"))
		rc = json_get_enum(body, "", "capability_type", 0, agent_capability_types,
				   &q->capability_type, e);
	if (!rc && present(body, "budget_cap_usd"))
		rc = json_get_money(body, "", "budget_cap_usd", 0, AGENT_PRICE_MAX_MICROS,
				    &q->budget_cap_micros, e);
	if (!rc && present(body, "max_latency_ms"))
		rc = json_get_int(body, "", "max_latency_ms", 0, 1, AGENT_P99_MAX_MS,
				  &q->max_latency_ms, e);
	if (!rc && present(body, "exclude_agents"))
		rc = read_exclude(body, q, e);
	if (!rc && present(body, "include_cross_org"))
		rc = json_get_bool(body, "", "include_cross_org", 0, &q->include_cross_org, e);
	if (!rc && present(body, "limit"))
		rc = json_get_int(body, "", "limit", 0, 1, DX_RESULTS_MAX, &lim, e);
	if (rc > 0)
		rc = 0;
	if (rc)
		return E(VALIDATION);
	q->limit = (int)lim;
	extract_terms(q);
	return 0;
}
