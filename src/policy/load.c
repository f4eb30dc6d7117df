/*
 * The typed reader: a policy_node tree (tree.c) into a struct policy_doc,
 * with every rule of policy.h checked; see policy.h for the contract.
 *
 * Keys are declared once, as tables of name, setter, offset and bounds
 * (after nginx's ngx_command_t): one generic walker checks that a mapping
 * has only known keys, each once, and the required ones, then calls each
 * key's setter with the value node and the key path. Adding a field is a
 * row in a table and, if its type is new, one setter.
 *
 * Scalars follow the YAML 1.2 core schema for plain text, narrowed as
 * policy.h says; classify() is the one place that decides what a plain
 * scalar is. Money never passes through a double: parse_money() reads the
 * decimal digits into micro-USD and refuses a seventh significant decimal.
 */
#include "policy/policy.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/money.h"
#include "policy/tree.h"
#include "core/banned.h"

/* What a scalar is, by the (narrowed) core schema. */
enum kind {
	K_STRING,
	K_NULL,
	K_BOOL,     /* exactly true / false */
	K_BADBOOL,  /* True, TRUE, False, FALSE: core-schema booleans we refuse */
	K_INT,      /* [-+]?[0-9]+ */
	K_FLOAT,    /* [-+]?(.[0-9]+|[0-9]+(.[0-9]*)?)([eE][-+]?[0-9]+)? */
	K_NONDEC,   /* 0x.., 0o.., .inf, .nan: numbers we refuse */
};

static int all_digits(const char *s, size_t n)
{
	if (!n)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return 0;
	return 1;
}

static int is_float(const char *s, size_t n)
{
	size_t i = 0, d1 = 0, d2 = 0;

	if (i < n && (s[i] == '+' || s[i] == '-'))
		i++;
	while (i < n && isdigit((unsigned char)s[i]))
		i++, d1++;
	if (i < n && s[i] == '.') {
		i++;
		while (i < n && isdigit((unsigned char)s[i]))
			i++, d2++;
	}
	if (!d1 && !d2)
		return 0;
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < n && (s[i] == '+' || s[i] == '-'))
			i++;
		if (!all_digits(s + i, n - i))
			return 0;
		return 1;
	}
	return i == n;
}

static enum kind classify(const struct policy_node *v)
{
	const char *s = v->text;
	size_t n = v->len;
	static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};
	static const char *const badbools[] = {"True", "TRUE", "False", "FALSE"};
	static const char *const nondec[] = {".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF",
					     "-.inf", "-.Inf", "-.INF", ".nan", ".NaN", ".NAN"};

	if (v->quoted)
		return K_STRING;
	for (size_t i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++)
		if (!strcmp(s, nulls[i]) && strlen(nulls[i]) == n)
			return K_NULL;
	if ((n == 4 && !memcmp(s, "true", 4)) || (n == 5 && !memcmp(s, "false", 5)))
		return K_BOOL;
	for (size_t i = 0; i < sizeof(badbools) / sizeof(badbools[0]); i++)
		if (strlen(badbools[i]) == n && !memcmp(s, badbools[i], n))
			return K_BADBOOL;
	for (size_t i = 0; i < sizeof(nondec) / sizeof(nondec[0]); i++)
		if (strlen(nondec[i]) == n && !memcmp(s, nondec[i], n))
			return K_NONDEC;
	if (n > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'o'))
		return K_NONDEC;
	if (all_digits(s + (n && (s[0] == '+' || s[0] == '-')), n - (n && (s[0] == '+' || s[0] == '-'))))
		return K_INT;
	if (is_float(s, n))
		return K_FLOAT;
	return K_STRING;
}

/* What the user wrote, for "got ..." in messages: plain text as is,
 * quoted text in quotes, containers by kind; control bytes as '?' and
 * long texts cut. */
static const char *shown(const struct policy_node *v, char *buf, size_t sz)
{
	char t[44];
	size_t n = 0;

	if (v->kind == POLICY_NODE_SEQ)
		return "a list";
	if (v->kind == POLICY_NODE_MAP)
		return "a mapping";
	for (size_t i = 0; i < v->len && n < 40; i++) {
		unsigned char c = (unsigned char)v->text[i];

		t[n++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	t[n] = '\0';
	if (!v->quoted && !v->len)
		snprintf(buf, sz, "null (an empty value)");
	else
		snprintf(buf, sz, "%s%s%s%s", v->quoted ? "\"" : "", t, v->len > 40 ? "..." : "",
			 v->quoted ? "\"" : "");
	return buf;
}

struct load {
	struct policy_err *err;
	struct policy_doc *doc;
};

static int fail(struct load *L, const struct policy_node *at, const char *path, const char *fmt,
		...) __attribute__((format(printf, 4, 5)));

static int fail(struct load *L, const struct policy_node *at, const char *path, const char *fmt,
		...)
{
	char problem[POLICY_PROBLEM_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(problem, sizeof(problem), fmt, ap);
	va_end(ap);
	return policy_err_set(L->err, at->line, at->col, path, "%s", problem);
}

/* ------------------------------------------------------------ tables -- */

struct policy_key;
typedef int (*policy_setter)(struct load *L, const struct policy_node *v, void *obj,
			     const struct policy_key *k, const char *path);

struct policy_key {
	const char *name;
	policy_setter set;
	size_t off;       /* of the field in the struct being filled */
	int64_t min, max; /* integer bounds, or the money ceiling in max */
	unsigned bit;     /* set in the struct's presence mask when seen */
	int required;
};

static int set_rules(struct load *, const struct policy_node *, void *, const struct policy_key *,
		     const char *);
static int set_org(struct load *, const struct policy_node *, void *, const struct policy_key *,
		   const char *);
static int set_int(struct load *, const struct policy_node *, void *, const struct policy_key *,
		   const char *);
static int set_bool(struct load *, const struct policy_node *, void *, const struct policy_key *,
		    const char *);
static int set_money(struct load *, const struct policy_node *, void *,
		     const struct policy_key *, const char *);
static int set_fraction(struct load *, const struct policy_node *, void *,
			const struct policy_key *, const char *);
static int set_capability(struct load *, const struct policy_node *, void *,
			  const struct policy_key *, const char *);
static int set_allowlist(struct load *, const struct policy_node *, void *,
			 const struct policy_key *, const char *);
static int set_circuit(struct load *, const struct policy_node *, void *,
		       const struct policy_key *, const char *);

enum { DOC_RULES = 1u << 0, DOC_ORG = 1u << 1, DOC_PRIORITY = 1u << 2, DOC_ENABLED = 1u << 3 };
enum { ORG_MONTHLY = 1u << 0, ORG_ALERT = 1u << 1 };
enum { CB_FAILURES = 1u << 0, CB_WINDOW = 1u << 1 };

#define DOC_OFF(f) offsetof(struct policy_doc, f)
#define RULE_OFF(f) offsetof(struct policy_rule, f)
#define ORG_OFF(f) offsetof(struct policy_org, f)

static const struct policy_key doc_keys[] = {
	{"rules", set_rules, 0, 0, POLICY_MAX_RULES, DOC_RULES, 1},
	{"organization", set_org, DOC_OFF(org), 0, 0, DOC_ORG, 0},
	{"priority", set_int, DOC_OFF(priority), POLICY_PRIORITY_MIN, POLICY_PRIORITY_MAX,
	 DOC_PRIORITY, 0},
	{"enabled", set_bool, DOC_OFF(enabled), 0, 0, DOC_ENABLED, 0},
	{NULL, NULL, 0, 0, 0, 0, 0},
};

static const struct policy_key rule_keys[] = {
	{"capability", set_capability, RULE_OFF(capability), 0, 0, POLICY_RULE_CAPABILITY, 1},
	{"max_budget_usd", set_money, RULE_OFF(max_budget_micros), 0, POLICY_BUDGET_MAX_MICROS,
	 POLICY_RULE_MAX_BUDGET, 0},
	{"min_trust_score", set_fraction, RULE_OFF(min_trust_score), 0, 0, POLICY_RULE_MIN_TRUST,
	 0},
	{"hitl_required", set_bool, RULE_OFF(hitl_required), 0, 0, POLICY_RULE_HITL, 0},
	{"hitl_timeout_seconds", set_int, RULE_OFF(hitl_timeout_seconds), 1,
	 POLICY_HITL_TIMEOUT_MAX, POLICY_RULE_HITL_TIMEOUT, 0},
	{"caller_allowlist", set_allowlist, 0, 1, POLICY_MAX_ALLOWLIST, POLICY_RULE_ALLOWLIST, 0},
	{"circuit_breaker", set_circuit, 0, 0, 0, POLICY_RULE_CIRCUIT, 0},
	{NULL, NULL, 0, 0, 0, 0, 0},
};

static const struct policy_key org_keys[] = {
	{"monthly_budget_usd", set_money, ORG_OFF(monthly_budget_micros), 0,
	 POLICY_MONTHLY_MAX_MICROS, ORG_MONTHLY, 1},
	{"alert_threshold", set_fraction, ORG_OFF(alert_threshold), 0, 0, ORG_ALERT, 0},
	{NULL, NULL, 0, 0, 0, 0, 0},
};

static const struct policy_key cb_keys[] = {
	{"max_failures", set_int, RULE_OFF(cb_max_failures), 1, POLICY_CB_FAILURES_MAX,
	 CB_FAILURES, 1},
	{"window_seconds", set_int, RULE_OFF(cb_window_seconds), 1, POLICY_CB_WINDOW_MAX,
	 CB_WINDOW, 1},
	{NULL, NULL, 0, 0, 0, 0, 0},
};

/* "a, b, c" of a table's names, for unknown-key messages. */
static void key_names(const struct policy_key *keys, char *buf, size_t sz)
{
	size_t n = 0;

	buf[0] = '\0';
	for (const struct policy_key *k = keys; k->name && n < sz; k++) {
		int w = snprintf(buf + n, sz - n, "%s%s", k == keys ? "" : ", ", k->name);

		if (w < 0)
			break;
		n += (size_t)w;
	}
}

/* "path.key" (or "key" at the top) into out; cut at sz, which the
 * POLICY_PATH_MAX bound on every path the schema can produce avoids. */
static void child_path(char *out, size_t sz, const char *path, const char *key)
{
	int w = snprintf(out, sz, "%s%s%s", path, path[0] ? "." : "", key);

	if (w < 0)
		out[0] = '\0';
}

/* The generic walker: a mapping whose keys come from table keys. *has
 * gets the bit of every key seen. */
static int load_map(struct load *L, const struct policy_node *map, const char *path,
		    const struct policy_key *keys, void *obj, unsigned *has)
{
	const struct policy_node *first[16] = {0};
	char sub[POLICY_PATH_MAX], buf[64], names[256];
	const struct policy_node *k, *v;
	int rc;

	if (map->kind != POLICY_NODE_MAP)
		return fail(L, map, path, "must be a mapping, got %s", shown(map, buf, sizeof(buf)));
	for (k = map->child; k && k->next; k = v->next) {
		const struct policy_key *key = NULL;
		size_t i = 0;

		v = k->next;
		if (k->kind != POLICY_NODE_SCALAR)
			return fail(L, k, path, "keys must be strings, got %s",
				    shown(k, buf, sizeof(buf)));
		for (const struct policy_key *c = keys; c->name; c++, i++) {
			if (strlen(c->name) == k->len && !memcmp(c->name, k->text, k->len)) {
				key = c;
				break;
			}
		}
		if (!key) {
			char shown_key[64];

			key_names(keys, names, sizeof(names));
			child_path(sub, sizeof(sub), path, shown(k, shown_key, sizeof(shown_key)));
			return fail(L, k, sub, "unknown key (expected one of: %s)", names);
		}
		child_path(sub, sizeof(sub), path, key->name);
		if (first[i])
			return fail(L, k, sub, "duplicate key (first at %d:%d)", first[i]->line,
				    first[i]->col);
		first[i] = k;
		rc = key->set(L, v, obj, key, sub);
		if (rc)
			return rc;
		*has |= key->bit;
	}
	for (const struct policy_key *c = keys; c->name; c++) {
		if (c->required && !(*has & c->bit)) {
			child_path(sub, sizeof(sub), path, c->name);
			return fail(L, map, sub, "is required");
		}
	}
	return 0;
}

/* ----------------------------------------------------------- setters -- */

static int want_scalar(struct load *L, const struct policy_node *v, const char *path,
		       const char *what)
{
	char buf[64];

	if (v->kind != POLICY_NODE_SCALAR)
		return fail(L, v, path, "must be %s, got %s", what, shown(v, buf, sizeof(buf)));
	return 0;
}

static int set_int(struct load *L, const struct policy_node *v, void *obj,
		   const struct policy_key *k, const char *path)
{
	char buf[64];
	int64_t x = 0;
	int neg = 0;
	size_t i = 0;

	if (want_scalar(L, v, path, "an integer"))
		return E(VALIDATION);
	if (classify(v) != K_INT)
		goto bad;
	if (v->text[0] == '+' || v->text[0] == '-')
		neg = v->text[i++] == '-';
	for (; i < v->len; i++) {
		if (x > (INT64_MAX - 9) / 10)
			goto bad;
		x = x * 10 + (v->text[i] - '0');
	}
	if (neg)
		x = -x;
	if (x < k->min || x > k->max)
		goto bad;
	*(int64_t *)((char *)obj + k->off) = x;
	return 0;
bad:
	return fail(L, v, path, "must be an integer between %lld and %lld, got %s",
		    (long long)k->min, (long long)k->max, shown(v, buf, sizeof(buf)));
}

static int set_bool(struct load *L, const struct policy_node *v, void *obj,
		    const struct policy_key *k, const char *path)
{
	char buf[64];
	enum kind kd;

	if (want_scalar(L, v, path, "true or false"))
		return E(VALIDATION);
	kd = classify(v);
	if (kd == K_BADBOOL)
		return fail(L, v, path, "must be true or false (lowercase), got %s",
			    shown(v, buf, sizeof(buf)));
	if (kd != K_BOOL)
		return fail(L, v, path, "must be true or false, got %s%s",
			    shown(v, buf, sizeof(buf)), v->quoted ? " (a quoted string)" : "");
	*(int *)((char *)obj + k->off) = v->text[0] == 't';
	return 0;
}

/*
 * Decimal USD text into micros, exactly: digits, optionally a point and
 * more digits. Decimals past the sixth must be zeros. 0, or a problem
 * written into why.
 */
static int parse_money(const struct policy_node *v, int64_t max, int64_t *out, const char **why)
{
	const char *s = v->text;
	size_t n = v->len, i = 0, frac = 0;
	int64_t whole = 0, micros = 0;
	int digits = 0;

	*why = "must be a number of USD like 0.50";
	if (v->quoted)
		return -1;
	if (n && s[0] == '-') {
		*why = "must not be negative";
		return -1;
	}
	for (; i < n && isdigit((unsigned char)s[i]); i++, digits++) {
		if (whole > max / MONEY_SCALE) {
			*why = "is above the limit";
			return -1;
		}
		whole = whole * 10 + (s[i] - '0');
	}
	if (i < n && s[i] == '.') {
		for (i++; i < n && isdigit((unsigned char)s[i]); i++, digits++) {
			if (frac < 6)
				micros = micros * 10 + (s[i] - '0');
			else if (s[i] != '0') {
				*why = "must have at most 6 decimals";
				return -1;
			}
			frac++;
		}
	}
	if (i != n || !digits) {
		if (is_float(s, n))
			*why = "must be written as a plain decimal like 0.50 (no exponent, no sign)";
		return -1;
	}
	for (; frac < 6; frac++)
		micros *= 10;
	if (whole > max / MONEY_SCALE || whole * MONEY_SCALE > max - micros) {
		*why = "is above the limit";
		return -1;
	}
	*out = whole * MONEY_SCALE + micros;
	return 0;
}

static int set_money(struct load *L, const struct policy_node *v, void *obj,
		     const struct policy_key *k, const char *path)
{
	char buf[64], lim[40];
	const char *why;
	int64_t m = 0;

	if (want_scalar(L, v, path, "a number of USD"))
		return E(VALIDATION);
	if (parse_money(v, k->max, &m, &why)) {
		if (!strcmp(why, "is above the limit")) {
			money_format(k->max, lim, sizeof(lim));
			return fail(L, v, path, "must be at most %s, got %s", lim,
				    shown(v, buf, sizeof(buf)));
		}
		return fail(L, v, path, "%s, got %s", why, shown(v, buf, sizeof(buf)));
	}
	*(int64_t *)((char *)obj + k->off) = m;
	return 0;
}

/* A number in [0, 1] (trust scores, the alert threshold). */
static int set_fraction(struct load *L, const struct policy_node *v, void *obj,
			const struct policy_key *k, const char *path)
{
	char buf[64];
	enum kind kd;
	double d;

	if (want_scalar(L, v, path, "a number between 0 and 1"))
		return E(VALIDATION);
	kd = classify(v);
	if (kd != K_INT && kd != K_FLOAT)
		return fail(L, v, path, "must be a number between 0 and 1, got %s",
			    shown(v, buf, sizeof(buf)));
	d = strtod(v->text, NULL); /* text is NUL-terminated and fully a number */
	if (!(d >= 0 && d <= 1))
		return fail(L, v, path, "must be between 0 and 1, got %s",
			    shown(v, buf, sizeof(buf)));
	*(double *)((char *)obj + k->off) = d;
	return 0;
}

int policy_capability_valid(const char *s, size_t len)
{
	if (len == 1 && s[0] == '*')
		return 1;
	if (!len || len > POLICY_CAPABILITY_MAX || !(islower((unsigned char)s[0]) ||
						      isdigit((unsigned char)s[0])))
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!(islower(c) || isdigit(c) || c == '_' || c == '.' || c == ':' || c == '-'))
			return 0;
	}
	return 1;
}

int policy_agent_id_valid(const char *s, size_t len)
{
	if (!len || len > POLICY_AGENT_ID_MAX || !isalnum((unsigned char)s[0]))
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!(isalnum(c) || c == '.' || c == '_' || c == ':' || c == '-'))
			return 0;
	}
	return 1;
}

/* A scalar that is a string (quoted, or plain text the core schema reads
 * as a string). */
static int want_string(struct load *L, const struct policy_node *v, const char *path,
		       const char *what)
{
	char buf[64];
	enum kind kd;

	if (want_scalar(L, v, path, what))
		return E(VALIDATION);
	kd = classify(v);
	if (kd != K_STRING)
		return fail(L, v, path, "must be %s, got %s%s", what, shown(v, buf, sizeof(buf)),
			    kd == K_NULL ? "" : " (quote it to make it a string)");
	return 0;
}

static int set_capability(struct load *L, const struct policy_node *v, void *obj,
			  const struct policy_key *k, const char *path)
{
	char buf[64];

	if (want_string(L, v, path, "a capability string"))
		return E(VALIDATION);
	if (!policy_capability_valid(v->text, v->len))
		return fail(L, v, path,
			    "must be \"*\" or 1 to %d characters of a-z 0-9 _ . : - starting "
			    "with a letter or digit, got %s",
			    POLICY_CAPABILITY_MAX, shown(v, buf, sizeof(buf)));
	memcpy((char *)obj + k->off, v->text, v->len + 1);
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int set_allowlist(struct load *L, const struct policy_node *v, void *obj,
			 const struct policy_key *k, const char *path)
{
	struct policy_rule *r = obj;
	const struct policy_node *it;
	char buf[64], sub[POLICY_PATH_MAX];
	size_t i = 0;

	if (v->kind != POLICY_NODE_SEQ)
		return fail(L, v, path, "must be a list of agent ids, got %s",
			    shown(v, buf, sizeof(buf)));
	if (v->n < (size_t)k->min)
		return fail(L, v, path,
			    "must list at least one agent id (leave the key out to allow any "
			    "caller)");
	if (v->n > (size_t)k->max)
		return fail(L, v, path, "has %zu entries, more than the limit of %lld", v->n,
			    (long long)k->max);
	r->caller_allowlist = calloc(v->n, sizeof(*r->caller_allowlist));
	if (!r->caller_allowlist)
		return E(INTERNAL);
	for (it = v->child; it; it = it->next, i++) {
		snprintf(sub, sizeof(sub), "%s[%zu]", path, i);
		if (want_string(L, it, sub, "an agent id"))
			return E(VALIDATION);
		if (!policy_agent_id_valid(it->text, it->len))
			return fail(L, it, sub,
				    "must be an agent id (1 to %d characters of A-Z a-z 0-9 . _ : "
				    "- starting with a letter or digit), got %s",
				    POLICY_AGENT_ID_MAX, shown(it, buf, sizeof(buf)));
		for (size_t j = 0; j < r->n_allowlist; j++)
			if (!strcmp(r->caller_allowlist[j], it->text))
				return fail(L, it, sub, "duplicate agent id %s",
					    shown(it, buf, sizeof(buf)));
		r->caller_allowlist[r->n_allowlist] = strdup(it->text);
		if (!r->caller_allowlist[r->n_allowlist])
			return E(INTERNAL);
		r->n_allowlist++;
	}
	qsort(r->caller_allowlist, r->n_allowlist, sizeof(*r->caller_allowlist), cmp_str);
	return 0;
}

static int set_circuit(struct load *L, const struct policy_node *v, void *obj,
		       const struct policy_key *k, const char *path)
{
	unsigned has = 0;

	(void)k;
	return load_map(L, v, path, cb_keys, obj, &has);
}

static int set_org(struct load *L, const struct policy_node *v, void *obj,
		   const struct policy_key *k, const char *path)
{
	struct policy_org *org = (struct policy_org *)((char *)obj + k->off);
	unsigned has = 0;
	int rc;

	org->line = v->line;
	org->col = v->col;
	rc = load_map(L, v, path, org_keys, org, &has);
	if (rc)
		return rc;
	org->has_alert_threshold = !!(has & ORG_ALERT);
	return 0;
}

/* Checks across one rule's fields, and against the rules before it. */
static int check_rule(struct load *L, const struct policy_node *rn, size_t idx, const char *path)
{
	struct policy_rule *r = &L->doc->rules[idx];
	char sub[POLICY_PATH_MAX];

	if ((r->has & POLICY_RULE_HITL_TIMEOUT) && !r->hitl_required) {
		const struct policy_node *k = rn->child;

		while (k && !(k->len == 20 && !memcmp(k->text, "hitl_timeout_seconds", 20)))
			k = k->next ? k->next->next : NULL;
		child_path(sub, sizeof(sub), path, "hitl_timeout_seconds");
		return fail(L, k ? k : rn, sub, "is set but hitl_required is not true");
	}
	for (size_t j = 0; j < idx; j++) {
		const struct policy_rule *p = &L->doc->rules[j];

		child_path(sub, sizeof(sub), path, "capability");
		if (!strcmp(p->capability, "*"))
			return policy_err_set(L->err, r->line, r->col, sub,
					      "rule can never match: rules[%zu] (capability \"*\", "
					      "%d:%d) matches every capability first",
					      j, p->line, p->col);
		if (!strcmp(p->capability, r->capability))
			return policy_err_set(L->err, r->line, r->col, sub,
					      "duplicate capability \"%s\" (first in rules[%zu] at "
					      "%d:%d; the first matching rule wins, so this one "
					      "would never apply)",
					      r->capability, j, p->line, p->col);
	}
	return 0;
}

static int set_rules(struct load *L, const struct policy_node *v, void *obj,
		     const struct policy_key *k, const char *path)
{
	struct policy_doc *doc = obj;
	const struct policy_node *it;
	char buf[64], sub[POLICY_PATH_MAX];
	size_t i = 0;
	int rc;

	if (v->kind != POLICY_NODE_SEQ)
		return fail(L, v, path, "must be a list of rules, got %s",
			    shown(v, buf, sizeof(buf)));
	if (v->n > (size_t)k->max)
		return fail(L, v, path, "has %zu rules, more than the limit of %lld", v->n,
			    (long long)k->max);
	if (v->n) {
		doc->rules = calloc(v->n, sizeof(*doc->rules));
		if (!doc->rules)
			return E(INTERNAL);
	}
	for (it = v->child; it; it = it->next, i++) {
		struct policy_rule *r = &doc->rules[i];

		doc->n_rules = i + 1; /* so a failure frees what this rule holds */
		snprintf(sub, sizeof(sub), "%s[%zu]", path, i);
		r->line = it->line;
		r->col = it->col;
		rc = load_map(L, it, sub, rule_keys, r, &r->has);
		if (rc)
			return rc;
		rc = check_rule(L, it, i, sub);
		if (rc)
			return rc;
	}
	return 0;
}

/* ------------------------------------------------------------- entry -- */

void policy_doc_free(struct policy_doc *doc)
{
	if (!doc)
		return;
	for (size_t i = 0; i < doc->n_rules; i++) {
		for (size_t j = 0; j < doc->rules[i].n_allowlist; j++)
			free(doc->rules[i].caller_allowlist[j]);
		free(doc->rules[i].caller_allowlist);
	}
	free(doc->rules);
	free(doc);
}

int policy_parse(const char *yaml, size_t len, struct policy_doc **out, struct policy_err *err)
{
	struct policy_tree t;
	struct policy_doc *doc = NULL;
	struct load L;
	unsigned has = 0;
	int rc;

	*out = NULL;
	memset(err, 0, sizeof(*err));
	rc = policy_tree_parse(yaml, len, &t, err);
	if (rc)
		goto out;
	if (!t.root || (t.root->kind == POLICY_NODE_SCALAR && !t.root->quoted &&
			classify(t.root) == K_NULL)) {
		rc = policy_err_set(err, 1, 1, "",
				    "document is empty (expected a mapping with a rules list)");
		goto out;
	}
	doc = calloc(1, sizeof(*doc));
	if (!doc) {
		rc = E(INTERNAL);
		goto out;
	}
	L.err = err;
	L.doc = doc;
	rc = load_map(&L, t.root, "", doc_keys, doc, &has);
	if (rc)
		goto out;
	doc->has_org = !!(has & DOC_ORG);
	doc->has_priority = !!(has & DOC_PRIORITY);
	doc->has_enabled = !!(has & DOC_ENABLED);
	*out = doc;
	doc = NULL;
out:
	if (rc == E(INTERNAL))
		policy_err_set(err, 0, 0, "", "out of memory");
	policy_doc_free(doc);
	policy_tree_release(&t);
	return rc;
}

void policy_doc_meta(const struct policy_doc *doc, const int64_t *api_priority,
		     const int *api_enabled, int64_t *priority, int *enabled)
{
	if (api_priority)
		*priority = *api_priority;
	else if (doc && doc->has_priority)
		*priority = doc->priority;
	else
		*priority = POLICY_DEFAULT_PRIORITY;
	if (api_enabled)
		*enabled = !!*api_enabled;
	else if (doc && doc->has_enabled)
		*enabled = doc->enabled;
	else
		*enabled = 1;
}
