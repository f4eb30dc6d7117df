/*
 * policy/load + policy/tree: reading policy YAML. Valid documents must
 * give exactly the values written (money to the micro); every kind of bad
 * document must give its message with line, column and key path. The
 * error cases are a table (curl's tests/data habit): one row per sentence
 * of docs/policies.md "Errors" and "YAML strictness".
 */
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/policy_check.h"
#include "core/err.h"
#include "policy/policy.h"
#include "test.h"

static const char seed_yaml[] = "rules:\n"
				"  - capability: research\n"
				"    max_budget_usd: 0.50\n"
				"    min_trust_score: 0.85\n"
				"    hitl_required: false\n"
				"\n"
				"  - capability: email_send\n"
				"    max_budget_usd: 0.10\n"
				"    min_trust_score: 0.90\n"
				"    hitl_required: true\n";

static int parse(const char *yaml, struct policy_doc **doc, struct policy_err *err)
{
	return policy_parse(yaml, strlen(yaml), doc, err);
}

TEST(policy_parse_seed_example)
{
	struct policy_doc *d = NULL;
	struct policy_err err;

	ASSERT_EQ(parse(seed_yaml, &d, &err), 0);
	ASSERT_EQ(d->n_rules, 2);
	ASSERT_STR_EQ(d->rules[0].capability, "research");
	ASSERT_EQ(d->rules[0].max_budget_micros, 500000);
	ASSERT(d->rules[0].min_trust_score == 0.85);
	ASSERT_EQ(d->rules[0].hitl_required, 0);
	ASSERT(d->rules[0].has & POLICY_RULE_MAX_BUDGET);
	ASSERT(d->rules[0].has & POLICY_RULE_MIN_TRUST);
	ASSERT(!(d->rules[0].has & POLICY_RULE_ALLOWLIST));
	ASSERT_STR_EQ(d->rules[1].capability, "email_send");
	ASSERT_EQ(d->rules[1].max_budget_micros, 100000);
	ASSERT(d->rules[1].min_trust_score == 0.90);
	ASSERT_EQ(d->rules[1].hitl_required, 1);
	ASSERT_EQ(d->rules[1].hitl_timeout_seconds, 0);
	ASSERT_EQ(d->rules[1].line, 7);
	ASSERT_EQ(d->rules[1].col, 5);
	ASSERT_EQ(d->has_org, 0);
	ASSERT_EQ(d->has_priority, 0);
	ASSERT_EQ(d->has_enabled, 0);
	policy_doc_free(d);
}

TEST(policy_parse_every_field)
{
	static const char y[] = "priority: -5\n"
				"enabled: false\n"
				"organization:\n"
				"  monthly_budget_usd: 100.00\n"
				"  alert_threshold: 0.80\n"
				"rules:\n"
				"  - capability: research\n"
				"    max_budget_usd: 0.000001\n"
				"    min_trust_score: 1\n"
				"    hitl_required: true\n"
				"    hitl_timeout_seconds: 3600\n"
				"    caller_allowlist: [sales-agent, \"ops.agent:2\", A_1]\n"
				"    circuit_breaker:\n"
				"      max_failures: 3\n"
				"      window_seconds: 300\n"
				"  - capability: \"*\"\n";
	struct policy_doc *d = NULL;
	struct policy_err err;
	const struct policy_rule *r;

	ASSERT_EQ(parse(y, &d, &err), 0);
	ASSERT_EQ(d->has_priority, 1);
	ASSERT_EQ(d->priority, -5);
	ASSERT_EQ(d->has_enabled, 1);
	ASSERT_EQ(d->enabled, 0);
	ASSERT_EQ(d->has_org, 1);
	ASSERT_EQ(d->org.monthly_budget_micros, 100000000);
	ASSERT_EQ(d->org.has_alert_threshold, 1);
	ASSERT(d->org.alert_threshold == 0.80);
	ASSERT_EQ(d->n_rules, 2);
	r = &d->rules[0];
	ASSERT_EQ(r->max_budget_micros, 1);
	ASSERT(r->min_trust_score == 1.0);
	ASSERT_EQ(r->hitl_required, 1);
	ASSERT_EQ(r->hitl_timeout_seconds, 3600);
	ASSERT_EQ(r->n_allowlist, 3);
	/* sorted for lookup */
	ASSERT_STR_EQ(r->caller_allowlist[0], "A_1");
	ASSERT_STR_EQ(r->caller_allowlist[1], "ops.agent:2");
	ASSERT_STR_EQ(r->caller_allowlist[2], "sales-agent");
	ASSERT(r->has & POLICY_RULE_CIRCUIT);
	ASSERT_EQ(r->cb_max_failures, 3);
	ASSERT_EQ(r->cb_window_seconds, 300);
	ASSERT_STR_EQ(d->rules[1].capability, "*");
	ASSERT_EQ(d->rules[1].has, POLICY_RULE_CAPABILITY);
	policy_doc_free(d);
}

TEST(policy_parse_org_without_alert_and_empty_rules)
{
	struct policy_doc *d = NULL;
	struct policy_err err;

	ASSERT_EQ(parse("organization: {monthly_budget_usd: 5}\nrules: []\n", &d, &err), 0);
	ASSERT_EQ(d->n_rules, 0);
	ASSERT_EQ(d->has_org, 1);
	ASSERT_EQ(d->org.monthly_budget_micros, 5000000);
	ASSERT_EQ(d->org.has_alert_threshold, 0);
	policy_doc_free(d);
}

/* Money from the YAML text, exactly: no double on the way. */
TEST(policy_parse_money_is_exact)
{
	static const struct {
		const char *text;
		int64_t micros;
	} cases[] = {
		{"0.1", 100000},          {"0.3", 300000},
		{"19.99", 19990000},      {"0.000001", 1},
		{"0.999999", 999999},     {"1000000", 1000000LL * 1000000},
		{"0", 0},                 {"0.50", 500000},
		{"0.1000000", 100000},    {"007", 7000000},
		{"123456.789012", 123456789012LL}, {"1.", 1000000},
		{".5", 500000},           {"999999.999999", 999999999999LL},
	};
	char y[128];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct policy_doc *d = NULL;
		struct policy_err err;

		snprintf(y, sizeof(y), "rules:\n  - capability: x\n    max_budget_usd: %s\n",
			 cases[i].text);
		if (parse(y, &d, &err))
			FAIL_AT("%s: %s", cases[i].text, err.message);
		ASSERT_EQ(d->rules[0].max_budget_micros, cases[i].micros);
		policy_doc_free(d);
	}
}

/* One row per kind of error: the YAML and the exact message. */
static const struct {
	const char *yaml;
	const char *message;
} bad[] = {
	/* out-of-range and wrong numbers */
	{"rules:\n  - capability: x\n    min_trust_score: 1.5\n",
	 "3:22: rules[0].min_trust_score: must be between 0 and 1, got 1.5"},
	{"rules:\n  - capability: x\n    min_trust_score: -0.1\n",
	 "3:22: rules[0].min_trust_score: must be between 0 and 1, got -0.1"},
	{"rules:\n  - capability: x\n    min_trust_score: .nan\n",
	 "3:22: rules[0].min_trust_score: must be a number between 0 and 1, got .nan"},
	{"rules:\n  - capability: x\n    min_trust_score: \"0.9\"\n",
	 "3:22: rules[0].min_trust_score: must be a number between 0 and 1, got \"0.9\""},
	{"rules:\n  - capability: x\n    max_budget_usd: 0.1234567\n",
	 "3:21: rules[0].max_budget_usd: must have at most 6 decimals, got 0.1234567"},
	{"rules:\n  - capability: x\n    max_budget_usd: -1\n",
	 "3:21: rules[0].max_budget_usd: must not be negative, got -1"},
	{"rules:\n  - capability: x\n    max_budget_usd: 1e3\n",
	 "3:21: rules[0].max_budget_usd: must be written as a plain decimal like 0.50 (no "
	 "exponent, no sign), got 1e3"},
	{"rules:\n  - capability: x\n    max_budget_usd: +1\n",
	 "3:21: rules[0].max_budget_usd: must be written as a plain decimal like 0.50 (no "
	 "exponent, no sign), got +1"},
	{"rules:\n  - capability: x\n    max_budget_usd: \"0.5\"\n",
	 "3:21: rules[0].max_budget_usd: must be a number of USD like 0.50, got \"0.5\""},
	{"rules:\n  - capability: x\n    max_budget_usd: 1000000.000001\n",
	 "3:21: rules[0].max_budget_usd: must be at most 1000000, got 1000000.000001"},
	{"rules:\n  - capability: x\n    max_budget_usd: 99999999999999999999999\n",
	 "3:21: rules[0].max_budget_usd: must be at most 1000000, got 99999999999999999999999"},
	{"rules:\n  - capability: x\n    max_budget_usd:\n",
	 "3:20: rules[0].max_budget_usd: must be a number of USD like 0.50, got null (an empty "
	 "value)"},
	{"rules:\n  - capability: x\n    max_budget_usd: [1]\n",
	 "3:21: rules[0].max_budget_usd: must be a number of USD, got a list"},
	{"organization:\n  monthly_budget_usd: 1000000000.01\nrules: []\n",
	 "2:23: organization.monthly_budget_usd: must be at most 1000000000, got 1000000000.01"},
	{"organization:\n  monthly_budget_usd: 10\n  alert_threshold: 2\nrules: []\n",
	 "3:20: organization.alert_threshold: must be between 0 and 1, got 2"},
	{"rules:\n  - capability: x\n    hitl_required: true\n    hitl_timeout_seconds: 0\n",
	 "4:27: rules[0].hitl_timeout_seconds: must be an integer between 1 and 2592000, got 0"},
	{"rules:\n  - capability: x\n    hitl_required: true\n    hitl_timeout_seconds: 2592001\n",
	 "4:27: rules[0].hitl_timeout_seconds: must be an integer between 1 and 2592000, got "
	 "2592001"},
	{"rules:\n  - capability: x\n    hitl_required: true\n    hitl_timeout_seconds: 1.5\n",
	 "4:27: rules[0].hitl_timeout_seconds: must be an integer between 1 and 2592000, got 1.5"},
	{"rules:\n  - capability: x\n    circuit_breaker: {max_failures: 0, window_seconds: 3}\n",
	 "3:37: rules[0].circuit_breaker.max_failures: must be an integer between 1 and 100000, "
	 "got 0"},
	{"rules:\n  - capability: x\n    circuit_breaker: {max_failures: 1, window_seconds: 0}\n",
	 "3:56: rules[0].circuit_breaker.window_seconds: must be an integer between 1 and "
	 "2592000, got 0"},
	{"priority: 0x10\nrules: []\n",
	 "1:11: priority: must be an integer between -1000000 and 1000000, got 0x10"},
	{"priority: 1000001\nrules: []\n",
	 "1:11: priority: must be an integer between -1000000 and 1000000, got 1000001"},
	{"priority: 99999999999999999999999\nrules: []\n",
	 "1:11: priority: must be an integer between -1000000 and 1000000, got "
	 "99999999999999999999999"},
	/* booleans: only true and false */
	{"rules:\n  - capability: x\n    hitl_required: yes\n",
	 "3:20: rules[0].hitl_required: must be true or false, got yes"},
	{"rules:\n  - capability: x\n    hitl_required: on\n",
	 "3:20: rules[0].hitl_required: must be true or false, got on"},
	{"rules:\n  - capability: x\n    hitl_required: True\n",
	 "3:20: rules[0].hitl_required: must be true or false (lowercase), got True"},
	{"rules:\n  - capability: x\n    hitl_required: \"true\"\n",
	 "3:20: rules[0].hitl_required: must be true or false, got \"true\" (a quoted string)"},
	{"rules:\n  - capability: x\n    hitl_required: 1\n",
	 "3:20: rules[0].hitl_required: must be true or false, got 1"},
	{"enabled: ~\nrules: []\n", "1:10: enabled: must be true or false, got ~"},
	/* strings */
	{"rules:\n  - capability: Research\n",
	 "2:17: rules[0].capability: must be \"*\" or 1 to 64 characters of a-z 0-9 _ . : - "
	 "starting with a letter or digit, got Research"},
	{"rules:\n  - capability: 123\n",
	 "2:17: rules[0].capability: must be a capability string, got 123 (quote it to make it a "
	 "string)"},
	{"rules:\n  - capability: \"\"\n",
	 "2:17: rules[0].capability: must be \"*\" or 1 to 64 characters of a-z 0-9 _ . : - "
	 "starting with a letter or digit, got \"\""},
	{"rules:\n  - capability: null\n",
	 "2:17: rules[0].capability: must be a capability string, got null"},
	{"rules:\n  - capability: *\n",
	 "2:18: invalid YAML: did not find expected alphabetic or numeric character (while "
	 "scanning an alias at 2:17)"},
	{"rules:\n  - capability: x\n    caller_allowlist: a\n",
	 "3:23: rules[0].caller_allowlist: must be a list of agent ids, got a"},
	{"rules:\n  - capability: x\n    caller_allowlist: []\n",
	 "3:23: rules[0].caller_allowlist: must list at least one agent id (leave the key out to "
	 "allow any caller)"},
	{"rules:\n  - capability: x\n    caller_allowlist: [a, b, a]\n",
	 "3:30: rules[0].caller_allowlist[2]: duplicate agent id a"},
	{"rules:\n  - capability: x\n    caller_allowlist: [\"-bad\"]\n",
	 "3:24: rules[0].caller_allowlist[0]: must be an agent id (1 to 128 characters of A-Z a-z "
	 "0-9 . _ : - starting with a letter or digit), got \"-bad\""},
	{"rules:\n  - capability: x\n    caller_allowlist: [42]\n",
	 "3:24: rules[0].caller_allowlist[0]: must be an agent id, got 42 (quote it to make it a "
	 "string)"},
	/* structure */
	{"rules:\n  - capability: x\n    foo: 1\n",
	 "3:5: rules[0].foo: unknown key (expected one of: capability, max_budget_usd, "
	 "min_trust_score, hitl_required, hitl_timeout_seconds, caller_allowlist, "
	 "circuit_breaker)"},
	{"rule:\n  - capability: x\n",
	 "1:1: rule: unknown key (expected one of: rules, organization, priority, enabled)"},
	{"organization: {monthly_budget_usd: 1, alert: 0.5}\nrules: []\n",
	 "1:39: organization.alert: unknown key (expected one of: monthly_budget_usd, "
	 "alert_threshold)"},
	{"rules:\n  - capability: x\n    capability: y\n",
	 "3:5: rules[0].capability: duplicate key (first at 2:5)"},
	{"rules: []\nrules: []\n", "2:1: rules: duplicate key (first at 1:1)"},
	{"rules:\n  - max_budget_usd: 1\n", "2:5: rules[0].capability: is required"},
	{"organization: {}\nrules: []\n",
	 "1:15: organization.monthly_budget_usd: is required"},
	{"rules:\n  - capability: x\n    circuit_breaker: {max_failures: 3}\n",
	 "3:22: rules[0].circuit_breaker.window_seconds: is required"},
	{"organization: {monthly_budget_usd: 1}\n", "1:1: rules: is required"},
	{"rules: x\n", "1:8: rules: must be a list of rules, got x"},
	{"rules:\n  - research\n", "2:5: rules[0]: must be a mapping, got research"},
	{"- a\n", "1:1: must be a mapping, got a list"},
	{"hello\n", "1:1: must be a mapping, got hello"},
	{"? [a]\n: 1\nrules: []\n", "1:3: keys must be strings, got a list"},
	{"rules:\n  - capability: x\n    circuit_breaker: 3\n",
	 "3:22: rules[0].circuit_breaker: must be a mapping, got 3"},
	/* rules that could never apply */
	{"rules:\n  - capability: x\n    hitl_timeout_seconds: 30\n",
	 "3:5: rules[0].hitl_timeout_seconds: is set but hitl_required is not true"},
	{"rules:\n  - capability: \"*\"\n  - capability: x\n",
	 "3:5: rules[1].capability: rule can never match: rules[0] (capability \"*\", 2:5) "
	 "matches every capability first"},
	{"rules:\n  - capability: x\n  - capability: y\n  - capability: x\n",
	 "4:5: rules[2].capability: duplicate capability \"x\" (first in rules[0] at 2:5; the "
	 "first matching rule wins, so this one would never apply)"},
	/* YAML strictness */
	{"", "1:1: document is empty (expected a mapping with a rules list)"},
	{"# only a comment\n", "1:1: document is empty (expected a mapping with a rules list)"},
	{"---\n...\n", "1:1: document is empty (expected a mapping with a rules list)"},
	{"rules: []\n---\nrules: []\n", "2:1: only one YAML document is allowed"},
	{"rules: [\n", "2:1: invalid YAML: did not find expected node content (while parsing a "
		       "flow node at 2:1)"},
	{"rules:\n  - capability: x\n   bad: 1\n",
	 "3:4: invalid YAML: did not find expected '-' indicator (while parsing a block "
	 "collection at 2:3)"},
	{"rules:\n  - &a capability: x\n", "2:5: anchors (&a) are not allowed"},
	{"x: &a [1]\nrules: *a\n", "1:4: anchors (&a) are not allowed"},
	{"rules: *a\n", "1:8: aliases (*a) are not allowed"},
	{"rules: !!seq []\n", "1:8: tags (tag:yaml.org,2002:seq) are not allowed"},
	{"rules:\n  - capability: !!str x\n",
	 "2:17: tags (tag:yaml.org,2002:str) are not allowed"},
	{"rules:\n  - capability: x\n\xff\n", "3:1: invalid YAML: invalid leading UTF-8 octet"},
	{"rules: [[[[[[[[[[]]]]]]]]]]\n", "1:15: nesting is deeper than 8 levels (the limit)"},
};

TEST(policy_parse_errors_table)
{
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct policy_doc *d = (struct policy_doc *)1;
		struct policy_err err;
		int rc = parse(bad[i].yaml, &d, &err);

		if (rc != E(VALIDATION))
			FAIL_AT("row %zu: rc %d for:\n%s", i, rc, bad[i].yaml);
		if (d)
			FAIL_AT("row %zu: *out not NULL on error", i);
		if (strcmp(err.message, bad[i].message))
			FAIL_AT("row %zu:\n  got:  %s\n  want: %s", i, err.message, bad[i].message);
	}
}

/* The parts of the error (for the API's details) agree with the message. */
TEST(policy_parse_error_parts)
{
	struct policy_doc *d = NULL;
	struct policy_err err;

	ASSERT_EQ(parse("rules:\n  - capability: x\n    min_trust_score: 1.5\n", &d, &err),
		  E(VALIDATION));
	ASSERT_EQ(err.line, 3);
	ASSERT_EQ(err.col, 22);
	ASSERT_STR_EQ(err.path, "rules[0].min_trust_score");
	ASSERT_STR_EQ(err.problem, "must be between 0 and 1, got 1.5");
}

/* A billion-laughs text stops at the first anchor, whatever follows. */
TEST(policy_parse_refuses_billion_laughs)
{
	static const char y[] = "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n"
				"b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
				"c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
				"d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
				"rules: [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n";
	struct policy_doc *d = NULL;
	struct policy_err err;

	ASSERT_EQ(parse(y, &d, &err), E(VALIDATION));
	ASSERT_STR_EQ(err.message, "1:4: anchors (&a) are not allowed");
}

/* Text with a NUL inside: bytes count, not C strings. */
TEST(policy_parse_nul_byte)
{
	static const char y[] = "rules:\n  - capability: \"a\\0b\"\n";
	static const char raw[] = "rules: []\n\0";
	struct policy_doc *d = NULL;
	struct policy_err err;

	ASSERT_EQ(parse(y, &d, &err), E(VALIDATION));
	ASSERT_STR_EQ(err.message, "2:17: rules[0].capability: must be \"*\" or 1 to 64 "
				   "characters of a-z 0-9 _ . : - starting with a letter or "
				   "digit, got \"a?b\"");
	ASSERT_EQ(policy_parse(raw, sizeof(raw) - 1, &d, &err), E(VALIDATION));
	ASSERT_CONTAINS(err.message, "2:1: invalid YAML: control characters are not allowed");
}

/* ------------------------------------------------------------ limits -- */

/* A text of n copies of unit after head, NUL-terminated (malloc'd). */
static char *repeat(const char *head, const char *unit, size_t n, const char *tail)
{
	size_t hl = strlen(head), ul = strlen(unit), tl = strlen(tail);
	char *s = malloc(hl + ul * n + tl + 1), *p = s;

	if (!s)
		abort();
	memcpy(p, head, hl);
	p += hl;
	for (size_t i = 0; i < n; i++, p += ul)
		memcpy(p, unit, ul);
	memcpy(p, tail, tl + 1);
	return s;
}

TEST(policy_limit_bytes)
{
	char *y = repeat("rules: []\n", "#", POLICY_MAX_BYTES, "\n");
	struct policy_doc *d = NULL;
	struct policy_err err;
	int rc;

	rc = parse(y, &d, &err);
	free(y);
	ASSERT_EQ(rc, E(VALIDATION));
	ASSERT_STR_EQ(err.message, "1:1: document is 262155 bytes, more than the limit of 262144");
	/* exactly at the limit is fine */
	y = repeat("rules: []\n#", "#", POLICY_MAX_BYTES - 11, "");
	ASSERT_EQ(strlen(y), POLICY_MAX_BYTES);
	rc = parse(y, &d, &err);
	free(y);
	ASSERT_EQ(rc, 0);
	policy_doc_free(d);
}

/* Rule documents with capabilities c0, c1, ... cn-1. */
static char *n_rules(size_t n)
{
	char *s = malloc(n * 24 + 16), *p = s;

	if (!s)
		abort();
	p += snprintf(p, 16, "rules:\n");
	for (size_t i = 0; i < n; i++)
		p += snprintf(p, 24, "- capability: c%zu\n", i);
	return s;
}

TEST(policy_limit_rules)
{
	struct policy_doc *d = NULL;
	struct policy_err err;
	char *y = n_rules(POLICY_MAX_RULES);
	int rc = parse(y, &d, &err);

	free(y);
	ASSERT_EQ(rc, 0);
	ASSERT_EQ(d->n_rules, POLICY_MAX_RULES);
	policy_doc_free(d);
	y = n_rules(POLICY_MAX_RULES + 1);
	rc = parse(y, &d, &err);
	free(y);
	ASSERT_EQ(rc, E(VALIDATION));
	ASSERT_STR_EQ(err.message, "2:1: rules: has 2001 rules, more than the limit of 2000");
}

/* "rules:\n- capability: x\n  caller_allowlist: [a0, a1, ...]\n" with n ids. */
static char *n_allowed(size_t n)
{
	size_t cap = n * 16 + 64, len;
	char *s = malloc(cap);

	if (!s)
		abort();
	len = (size_t)snprintf(s, cap, "rules:\n- capability: x\n  caller_allowlist: [");
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(s + len, cap - len, "%sa%zu", i ? ", " : "", i);
	snprintf(s + len, cap - len, "]\n");
	return s;
}

TEST(policy_limit_allowlist)
{
	struct policy_doc *d = NULL;
	struct policy_err err;
	char *y = n_allowed(POLICY_MAX_ALLOWLIST);
	int rc = parse(y, &d, &err);

	free(y);
	ASSERT_EQ(rc, 0);
	ASSERT_EQ(d->rules[0].n_allowlist, POLICY_MAX_ALLOWLIST);
	policy_doc_free(d);
	y = n_allowed(POLICY_MAX_ALLOWLIST + 1);
	rc = parse(y, &d, &err);
	free(y);
	ASSERT_EQ(rc, E(VALIDATION));
	ASSERT_STR_EQ(err.message,
		      "3:21: rules[0].caller_allowlist: has 257 entries, more than the limit of 256");
}

TEST(policy_limit_depth)
{
	struct policy_doc *d = NULL;
	struct policy_err err;
	/* 8 levels: the root mapping and 7 lists; refused for not being a rule,
	 * not for depth */
	ASSERT_EQ(parse("rules: [[[[[[[]]]]]]]\n", &d, &err), E(VALIDATION));
	ASSERT_STR_EQ(err.message, "1:9: rules[0]: must be a mapping, got a list");
	ASSERT_EQ(parse("rules: [[[[[[[[]]]]]]]]\n", &d, &err), E(VALIDATION));
	ASSERT_STR_EQ(err.message, "1:15: nesting is deeper than 8 levels (the limit)");
}

TEST(policy_limit_nodes)
{
	struct policy_doc *d = NULL;
	struct policy_err err;
	char *y = repeat("x: [", "1,", POLICY_MAX_NODES, "1]\n");
	int rc = parse(y, &d, &err);

	free(y);
	ASSERT_EQ(rc, E(VALIDATION));
	ASSERT_STR_EQ(err.message, "1:199999: document has more than 100000 values (the limit)");
}

TEST(policy_capability_and_agent_id_alphabets)
{
	char longcap[POLICY_CAPABILITY_MAX + 2];

	ASSERT(policy_capability_valid("*", 1));
	ASSERT(policy_capability_valid("email_send", 10));
	ASSERT(policy_capability_valid("a.b:c-d_1", 9));
	ASSERT(!policy_capability_valid("**", 2));
	ASSERT(!policy_capability_valid("_x", 2));
	ASSERT(!policy_capability_valid("X", 1));
	ASSERT(!policy_capability_valid("a b", 3));
	ASSERT(!policy_capability_valid("", 0));
	memset(longcap, 'a', sizeof(longcap));
	ASSERT(policy_capability_valid(longcap, POLICY_CAPABILITY_MAX));
	ASSERT(!policy_capability_valid(longcap, POLICY_CAPABILITY_MAX + 1));
	ASSERT(policy_agent_id_valid("Sales-Agent.v2:1_x", 18));
	ASSERT(!policy_agent_id_valid(".x", 2));
	ASSERT(!policy_agent_id_valid("a/b", 3));
}

/* Precedence of priority and enabled: API field, then document, then
 * default. */
TEST(policy_doc_meta_precedence)
{
	struct policy_doc *d = NULL;
	struct policy_err err;
	int64_t prio, api_prio = 7;
	int en, api_en = 1;

	ASSERT_EQ(parse("priority: 3\nenabled: false\nrules: []\n", &d, &err), 0);
	policy_doc_meta(d, NULL, NULL, &prio, &en);
	ASSERT_EQ(prio, 3);
	ASSERT_EQ(en, 0);
	policy_doc_meta(d, &api_prio, &api_en, &prio, &en);
	ASSERT_EQ(prio, 7);
	ASSERT_EQ(en, 1);
	policy_doc_free(d);
	ASSERT_EQ(parse("rules: []\n", &d, &err), 0);
	policy_doc_meta(d, NULL, NULL, &prio, &en);
	ASSERT_EQ(prio, POLICY_DEFAULT_PRIORITY);
	ASSERT_EQ(en, 1);
	policy_doc_free(d);
}

/* Quoted keys are the same keys; plain and flow styles read alike. */
TEST(policy_parse_styles)
{
	struct policy_doc *d = NULL;
	struct policy_err err;

	ASSERT_EQ(parse("{\"rules\": [{capability: 'research', 'max_budget_usd': 0.5}]}", &d,
			&err),
		  0);
	ASSERT_EQ(d->n_rules, 1);
	ASSERT_EQ(d->rules[0].max_budget_micros, 500000);
	policy_doc_free(d);
	ASSERT_EQ(parse("\"rules\": []\nrules: []\n", &d, &err), E(VALIDATION));
	ASSERT_STR_EQ(err.message, "2:1: rules: duplicate key (first at 1:1)");
}

/* ------------------------------------------------ nexra policy check -- */

/* Runs policy_check_main on a file holding text; stdout/stderr go to a
 * temporary file read back into out. Returns the exit status. */
static int run_check(const char *text, char *out, size_t outsz)
{
	char path[] = "/tmp/nexra-policy-XXXXXX", cap[] = "/tmp/nexra-policy-out-XXXXXX";
	int fd = mkstemp(path), cfd = mkstemp(cap), so, se, rc;
	char *argv[] = {"check", path, NULL};
	ssize_t n;

	if (fd < 0 || cfd < 0)
		abort();
	if (write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		abort();
	close(fd);
	fflush(stdout);
	fflush(stderr);
	so = dup(1);
	se = dup(2);
	dup2(cfd, 1);
	dup2(cfd, 2);
	rc = policy_check_main(2, argv);
	fflush(stdout);
	fflush(stderr);
	dup2(so, 1);
	dup2(se, 2);
	close(so);
	close(se);
	n = pread(cfd, out, outsz - 1, 0);
	out[n > 0 ? n : 0] = '\0';
	close(cfd);
	unlink(cap);
	unlink(path);
	/* the file name is random: keep what follows it */
	if (!strncmp(out, path, strlen(path)))
		memmove(out, out + strlen(path), strlen(out + strlen(path)) + 1);
	return rc;
}

TEST(policy_check_cli)
{
	char out[512];
	char *argv[] = {"check", NULL};

	ASSERT_EQ(run_check(seed_yaml, out, sizeof(out)), 0);
	ASSERT_STR_EQ(out, "ok: 2 rules\n");
	ASSERT_EQ(run_check("rules:\n  - capability: x\n", out, sizeof(out)), 0);
	ASSERT_STR_EQ(out, "ok: 1 rule\n");
	ASSERT_EQ(run_check("rules:\n  - capability: x\n    min_trust_score: 1.5\n", out,
			    sizeof(out)),
		  1);
	ASSERT_STR_EQ(out, ":3:22: rules[0].min_trust_score: must be between 0 and 1, got 1.5\n");
	fflush(stderr);
	{
		int se = dup(2), nul = open("/dev/null", O_WRONLY);

		dup2(nul, 2);
		ASSERT_EQ(policy_check_main(1, argv), 2);
		argv[1] = "/nonexistent/policy.yaml";
		ASSERT_EQ(policy_check_main(2, argv), 1);
		dup2(se, 2);
		close(se);
		close(nul);
	}
}
