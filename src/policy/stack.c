/*
 * Ordering, compiling and deciding with a policy stack; see stack.h for
 * the semantics and why the index is shaped as it is.
 *
 * The compiled form is three things: `flat`, the rules that can ever
 * decide (the first rule of each capability before the first "*", and
 * that "*"), in stack order; `tab`, an open-addressing table (linear
 * probing, load <= 1/2) from capability to its position in flat; and
 * `star`, the position of the first "*" in flat. Because flat is in stack
 * order, "which rule comes first" is a comparison of two positions.
 */
#include "policy/stack.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/money.h"
#include "core/banned.h"

#define NONE UINT32_MAX

struct entry {
	char id[POLICY_ID_MAX];
	char *name; /* owned */
	int64_t version, priority, created;
	size_t seq; /* order of policy_stack_add */
	int enabled;
	struct policy_doc *doc; /* owned */
};

struct flat {
	const struct policy_rule *rule;
	uint32_t entry; /* index in entries */
	uint32_t index; /* rule index in its policy */
};

struct slot {
	uint64_t hash;
	const char *cap; /* NULL: empty */
	uint32_t flat;
};

struct policy_stack {
	struct entry *entries;
	size_t n, cap;
	int compiled;
	/* compiled */
	struct flat *flat;
	size_t nflat;
	struct slot *tab;
	size_t mask; /* slots - 1 */
	uint32_t star;
	size_t nrules, nenabled;
	int64_t org_entry; /* -1: none */
};

static uint64_t hash_cap(const char *s)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

int policy_stack_new(struct policy_stack **out)
{
	*out = calloc(1, sizeof(**out));
	if (!*out)
		return E(INTERNAL);
	(*out)->star = NONE;
	(*out)->org_entry = -1;
	return 0;
}

void policy_stack_free(struct policy_stack *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++) {
		policy_doc_free(s->entries[i].doc);
		free(s->entries[i].name);
	}
	free(s->entries);
	free(s->flat);
	free(s->tab);
	free(s);
}

int policy_stack_add(struct policy_stack *s, const struct policy_meta *meta,
		     struct policy_doc *doc)
{
	struct entry *e;
	size_t idlen;
	int rc = 0;

	if (s->compiled) {
		rc = E(INTERNAL);
		goto out;
	}
	idlen = meta->policy_id ? strlen(meta->policy_id) : 0;
	if (!doc || !idlen || idlen >= POLICY_ID_MAX || s->n >= POLICY_STACK_MAX_POLICIES) {
		rc = E(VALIDATION);
		goto out;
	}
	if (s->n == s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 8;
		struct entry *ne = realloc(s->entries, ncap * sizeof(*ne));

		if (!ne) {
			rc = E(INTERNAL);
			goto out;
		}
		s->entries = ne;
		s->cap = ncap;
	}
	e = &s->entries[s->n];
	memset(e, 0, sizeof(*e));
	memcpy(e->id, meta->policy_id, idlen + 1);
	e->name = strdup(meta->name ? meta->name : meta->policy_id);
	if (!e->name) {
		rc = E(INTERNAL);
		goto out;
	}
	e->version = meta->version;
	e->priority = meta->priority;
	e->created = meta->created;
	e->enabled = !!meta->enabled;
	e->seq = s->n;
	e->doc = doc;
	doc = NULL;
	s->n++;
out:
	policy_doc_free(doc);
	return rc;
}

/* qsort context-free: compare entries through a pointer array. */
static int by_order(const void *a, const void *b)
{
	const struct entry *x = *(const struct entry *const *)a;
	const struct entry *y = *(const struct entry *const *)b;

	if (x->priority != y->priority)
		return x->priority < y->priority ? -1 : 1;
	if (x->created != y->created)
		return x->created < y->created ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Position in tab of cap: its slot, or the empty slot where it would go. */
static size_t probe(const struct slot *tab, size_t mask, uint64_t h, const char *cap)
{
	size_t i = (size_t)h & mask;

	while (tab[i].cap && (tab[i].hash != h || strcmp(tab[i].cap, cap)))
		i = (i + 1) & mask;
	return i;
}

static int tab_grow(struct policy_stack *s)
{
	size_t nslots = s->tab ? (s->mask + 1) * 2 : 16;
	struct slot *nt = calloc(nslots, sizeof(*nt));

	if (!nt)
		return E(INTERNAL);
	for (size_t i = 0; s->tab && i <= s->mask; i++) {
		if (s->tab[i].cap)
			nt[probe(nt, nslots - 1, s->tab[i].hash, s->tab[i].cap)] = s->tab[i];
	}
	free(s->tab);
	s->tab = nt;
	s->mask = nslots - 1;
	return 0;
}

/* Appends r to flat and, unless it is "*", to tab. Callers skip rules
 * whose capability is already in tab. */
static int index_rule(struct policy_stack *s, const struct policy_rule *r, size_t entry,
		      size_t index, uint64_t h)
{
	int rc;

	s->flat[s->nflat].rule = r;
	s->flat[s->nflat].entry = (uint32_t)entry;
	s->flat[s->nflat].index = (uint32_t)index;
	if (!strcmp(r->capability, "*")) {
		s->star = (uint32_t)s->nflat++;
		return 0;
	}
	if (!s->tab || 2 * (s->nflat + 1) > s->mask + 1) {
		rc = tab_grow(s);
		if (rc)
			return rc;
	}
	{
		size_t i = probe(s->tab, s->mask, h, r->capability);

		s->tab[i].cap = r->capability;
		s->tab[i].hash = h;
		s->tab[i].flat = (uint32_t)s->nflat++;
	}
	return 0;
}

int policy_stack_compile(struct policy_stack *s)
{
	const struct entry **order = NULL;
	size_t nord = 0;
	int rc = 0;

	if (s->compiled)
		return 0;
	order = calloc(s->n ? s->n : 1, sizeof(*order));
	if (!order) {
		rc = E(INTERNAL);
		goto out;
	}
	for (size_t i = 0; i < s->n; i++) {
		if (s->entries[i].enabled) {
			order[nord++] = &s->entries[i];
			s->nrules += s->entries[i].doc->n_rules;
		}
	}
	qsort(order, nord, sizeof(*order), by_order);
	s->nenabled = nord;
	s->flat = calloc(s->nrules ? s->nrules : 1, sizeof(*s->flat));
	if (!s->flat) {
		rc = E(INTERNAL);
		goto out;
	}
	rc = tab_grow(s);
	if (rc)
		goto out;
	for (size_t o = 0; o < nord; o++) {
		const struct entry *e = order[o];
		size_t ei = (size_t)(e - s->entries);

		if (s->org_entry < 0 && e->doc->has_org)
			s->org_entry = (int64_t)ei;
		for (size_t j = 0; j < e->doc->n_rules && s->star == NONE; j++) {
			const struct policy_rule *r = &e->doc->rules[j];
			uint64_t h = hash_cap(r->capability);

			if (s->tab[probe(s->tab, s->mask, h, r->capability)].cap)
				continue; /* an earlier rule has this capability */
			rc = index_rule(s, r, ei, j, h);
			if (rc)
				goto out;
		}
	}
	s->compiled = 1;
out:
	free(order);
	return rc;
}

size_t policy_stack_rules(const struct policy_stack *s)
{
	return s->nrules;
}

size_t policy_stack_enabled(const struct policy_stack *s)
{
	return s->nenabled;
}

const struct policy_org *policy_stack_org(const struct policy_stack *s, const char **policy_id,
					  int64_t *version)
{
	const struct entry *e;

	if (!s->compiled || s->org_entry < 0)
		return NULL;
	e = &s->entries[s->org_entry];
	if (policy_id)
		*policy_id = e->id;
	if (version)
		*version = e->version;
	return &e->doc->org;
}

int policy_circuit_open(int64_t max_failures, int64_t window_seconds, const int64_t *times,
			size_t n, int64_t now, int64_t *in_window)
{
	int64_t count = 0;

	for (size_t i = 0; times && i < n; i++) {
		/* now - t computed unsigned: exact whenever t <= now */
		if (times[i] <= now && (uint64_t)now - (uint64_t)times[i] < (uint64_t)window_seconds)
			count++;
	}
	if (in_window)
		*in_window = count;
	return max_failures >= 1 && window_seconds >= 1 && count >= max_failures;
}

static int in_allowlist(const struct policy_rule *r, const char *caller)
{
	size_t lo = 0, hi = r->n_allowlist;

	if (!caller || !caller[0])
		return 0;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(r->caller_allowlist[mid], caller);

		if (!c)
			return 1;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

/* The rule's constraints against the request. */
static void check_rule(const struct policy_rule *r, const struct policy_request *req,
		       struct policy_decision *d)
{
	if (r->has & POLICY_RULE_MAX_BUDGET) {
		d->max_budget_micros = r->max_budget_micros;
		if (req->budget_cap_micros > r->max_budget_micros)
			d->failed |= POLICY_CHECK_BUDGET;
	}
	if (r->has & POLICY_RULE_MIN_TRUST) {
		d->min_trust_score = r->min_trust_score;
		if (!req->callee_agent_id)
			d->unchecked |= POLICY_CHECK_TRUST;
		else if (!(req->callee_trust_score >= r->min_trust_score))
			d->failed |= POLICY_CHECK_TRUST;
	}
	if ((r->has & POLICY_RULE_ALLOWLIST) && !in_allowlist(r, req->caller_agent_id))
		d->failed |= POLICY_CHECK_CALLER;
	if (r->has & POLICY_RULE_CIRCUIT) {
		d->cb_max_failures = r->cb_max_failures;
		d->cb_window_seconds = r->cb_window_seconds;
	}
	if (!req->callee_agent_id) {
		d->unchecked |= POLICY_CHECK_CIRCUIT;
	} else if (req->callee_circuit_open) {
		d->failed |= POLICY_CHECK_CIRCUIT;
	} else if ((r->has & POLICY_RULE_CIRCUIT) && req->failure_times &&
		   policy_circuit_open(r->cb_max_failures, r->cb_window_seconds,
				       req->failure_times, req->n_failure_times, req->now,
				       &d->cb_failures_in_window)) {
		d->failed |= POLICY_CHECK_CIRCUIT;
	}
}

int policy_decide(const struct policy_stack *s, const struct policy_request *req,
		  struct policy_decision *out)
{
	uint32_t pick = NONE;
	const struct flat *f;
	const struct entry *e;

	memset(out, 0, sizeof(*out));
	out->verdict = POLICY_BLOCK;
	out->basis = POLICY_BASIS_NO_POLICY;
	if (!s->compiled)
		return E(INTERNAL);
	if (!req->capability)
		return E(VALIDATION);
	out->budget_cap_micros = req->budget_cap_micros;
	out->trust_score = req->callee_trust_score;
	out->caller_agent_id = req->caller_agent_id;
	if (!s->nenabled)
		return 0;
	out->basis = POLICY_BASIS_DEFAULT_DENY;
	if (s->nflat > (s->star == NONE ? 0u : 1u)) {
		uint64_t h = hash_cap(req->capability);
		size_t i = probe(s->tab, s->mask, h, req->capability);

		if (s->tab[i].cap)
			pick = s->tab[i].flat;
	}
	if (s->star < pick)
		pick = s->star;
	if (pick == NONE)
		return 0;
	f = &s->flat[pick];
	e = &s->entries[f->entry];
	out->basis = POLICY_BASIS_RULE;
	out->policy_id = e->id;
	out->policy_name = e->name;
	out->policy_version = e->version;
	out->rule_index = f->index;
	out->rule = f->rule;
	out->rule_capability = f->rule->capability;
	out->hitl_timeout_seconds = f->rule->hitl_timeout_seconds;
	check_rule(f->rule, req, out);
	if (out->failed)
		out->verdict = POLICY_BLOCK;
	else if (f->rule->hitl_required)
		out->verdict = POLICY_PENDING_APPROVAL;
	else
		out->verdict = POLICY_ALLOW;
	return 0;
}

/* ------------------------------------------------------- presentation -- */

const char *policy_verdict_name(enum policy_verdict v)
{
	static const char *const names[] = {"allow", "block", "pending_approval"};

	return (unsigned)v < 3 ? names[v] : "block";
}

const char *policy_basis_name(enum policy_basis b)
{
	static const char *const names[] = {"rule", "default_deny", "no_enabled_policy"};

	return (unsigned)b < 3 ? names[b] : "rule";
}

const char *policy_check_name(enum policy_check c)
{
	switch (c) {
	case POLICY_CHECK_BUDGET:
		return "budget";
	case POLICY_CHECK_TRUST:
		return "trust";
	case POLICY_CHECK_CALLER:
		return "caller_allowlist";
	case POLICY_CHECK_CIRCUIT:
		return "circuit";
	}
	return "unknown";
}

/* One failed constraint in words. */
static int explain_check(const struct policy_decision *d, unsigned c, char *buf, size_t sz)
{
	char a[40], b[40];

	switch (c) {
	case POLICY_CHECK_BUDGET:
		money_format(d->budget_cap_micros, a, sizeof(a));
		money_format(d->max_budget_micros, b, sizeof(b));
		return snprintf(buf, sz, "budget_cap_usd %s over max_budget_usd %s", a, b);
	case POLICY_CHECK_TRUST:
		return snprintf(buf, sz, "callee trust %.6g under min_trust_score %.6g",
				d->trust_score, d->min_trust_score);
	case POLICY_CHECK_CALLER:
		return snprintf(buf, sz, "caller %.128s not in caller_allowlist",
				d->caller_agent_id && d->caller_agent_id[0] ? d->caller_agent_id
									  : "(none)");
	default:
		if (d->cb_max_failures)
			return snprintf(buf, sz,
					"callee circuit open (circuit_breaker %lld failures in "
					"%lld s)",
					(long long)d->cb_max_failures,
					(long long)d->cb_window_seconds);
		return snprintf(buf, sz, "callee circuit open");
	}
}

/* Appends to buf at *n (snprintf semantics; stops growing when full). */
static void add(size_t sz, size_t *n, int w)
{
	if (w > 0)
		*n += (size_t)w;
	if (*n >= sz)
		*n = sz - 1;
}

void policy_decision_explain(const struct policy_decision *d, char *buf, size_t sz)
{
	size_t n = 0;
	unsigned k = 0;

	if (!sz)
		return;
	buf[0] = '\0';
	if (d->basis == POLICY_BASIS_NO_POLICY) {
		snprintf(buf, sz, "block: no enabled policy");
		return;
	}
	if (d->basis == POLICY_BASIS_DEFAULT_DENY) {
		snprintf(buf, sz, "block: no rule matches this capability (default-deny)");
		return;
	}
	add(sz, &n,
	    snprintf(buf, sz, "%s by %s v%lld rules[%zu] (%s)", policy_verdict_name(d->verdict),
		     d->policy_id, (long long)d->policy_version, d->rule_index,
		     d->rule_capability));
	for (unsigned c = 1; c < (1u << POLICY_NCHECKS); c <<= 1) {
		if (!(d->failed & c))
			continue;
		add(sz, &n, snprintf(buf + n, sz - n, "%s", k++ ? "; " : ": "));
		add(sz, &n, explain_check(d, c, buf + n, sz - n));
	}
}

void policy_decision_write(struct jsonw *jw, const struct policy_decision *d)
{
	char msg[512];
	int first = 1;

	jw_obj_open(jw);
	jw_kstr(jw, "decision", policy_verdict_name(d->verdict));
	jw_kstr(jw, "reason", policy_basis_name(d->basis));
	jw_kstr(jw, "policy_id", d->policy_id);
	if (d->basis == POLICY_BASIS_RULE) {
		jw_kstr(jw, "policy_ref", d->policy_name);
		jw_kint(jw, "policy_version", d->policy_version);
		jw_kint(jw, "rule_index", (int64_t)d->rule_index);
		jw_kstr(jw, "rule_capability", d->rule_capability);
		if (d->hitl_timeout_seconds)
			jw_kint(jw, "hitl_timeout_seconds", d->hitl_timeout_seconds);
		else
			jw_kraw(jw, "hitl_timeout_seconds", "null");
	} else {
		jw_kraw(jw, "policy_ref", "null");
		jw_kraw(jw, "policy_version", "null");
		jw_kraw(jw, "rule_index", "null");
		jw_kraw(jw, "rule_capability", "null");
		jw_kraw(jw, "hitl_timeout_seconds", "null");
	}
	jw_key(jw, "failed_constraints");
	jw_raw(jw, "[");
	for (unsigned c = 1; c < (1u << POLICY_NCHECKS); c <<= 1) {
		if (!(d->failed & c))
			continue;
		if (!first)
			jw_raw(jw, ",");
		first = 0;
		jw_obj_open(jw);
		jw_kstr(jw, "constraint", policy_check_name((enum policy_check)c));
		if (c == POLICY_CHECK_BUDGET) {
			jw_key(jw, "budget_cap_usd");
			jw_money(jw, d->budget_cap_micros);
			jw_key(jw, "max_budget_usd");
			jw_money(jw, d->max_budget_micros);
		} else if (c == POLICY_CHECK_TRUST) {
			jw_key(jw, "trust_score");
			jw_num(jw, isfinite(d->trust_score) ? d->trust_score : 0);
			jw_key(jw, "min_trust_score");
			jw_num(jw, d->min_trust_score);
		} else if (c == POLICY_CHECK_CALLER) {
			jw_kstr(jw, "caller_agent_id", d->caller_agent_id);
		} else if (d->cb_max_failures) {
			jw_kint(jw, "max_failures", d->cb_max_failures);
			jw_kint(jw, "window_seconds", d->cb_window_seconds);
			jw_kint(jw, "failures_in_window", d->cb_failures_in_window);
		}
		jw_obj_close(jw);
	}
	jw_raw(jw, "]");
	jw_key(jw, "unchecked");
	jw_raw(jw, "[");
	first = 1;
	for (unsigned c = 1; c < (1u << POLICY_NCHECKS); c <<= 1) {
		if (!(d->unchecked & c))
			continue;
		if (!first)
			jw_raw(jw, ",");
		first = 0;
		jw_str(jw, policy_check_name((enum policy_check)c));
	}
	jw_raw(jw, "]");
	policy_decision_explain(d, msg, sizeof(msg));
	jw_kstr(jw, "message", msg);
	jw_obj_close(jw);
}
