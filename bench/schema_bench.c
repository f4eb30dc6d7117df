/*
 * make bench: JSON Schema validations per second on one core.
 *
 * A typical task input (an object of about 1 KB: strings, numbers, an enum,
 * a nested address, an array of tags, an ISO date) is validated against a
 * 20-property schema (types, lengths, bounds, a pattern, an enum, required,
 * additionalProperties: false, a nested object and an array) compiled once,
 * as dispatch does. The input is parsed once too: this measures the
 * validator, not jansson. The loop runs for BENCH_SECONDS (default 2) after
 * a short warm-up and prints `schema validations/s: N`.
 *
 * "On one core" is counted in the CPU time of the validating thread
 * (CLOCK_THREAD_CPUTIME_ID): on a shared 2-vCPU box the wall clock also
 * counts the time the scheduler gave the core to a neighbour, which says
 * nothing about the validator. The wall-clock rate and the share of the
 * run the thread was on a CPU are printed too, so a busy run shows as one.
 * Exit status 1 when the fixture does not validate (a broken run).
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "schema/schema.h"

static const char schema_text[] =
	"{\"type\":\"object\",\"additionalProperties\":false,"
	"\"required\":[\"task_id\",\"company_name\",\"country\",\"budget_usd\",\"priority\"],"
	"\"properties\":{"
	"\"task_id\":{\"type\":\"string\",\"pattern\":\"^tsk_[A-Za-z0-9]{8,32}$\"},"
	"\"company_name\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":200},"
	"\"country\":{\"type\":\"string\",\"enum\":[\"US\",\"DE\",\"FR\",\"GB\",\"JP\",\"IN\"]},"
	"\"budget_usd\":{\"type\":\"number\",\"minimum\":0,\"maximum\":1000000,"
	"\"multipleOf\":0.01},"
	"\"priority\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":5},"
	"\"deadline\":{\"type\":\"string\",\"format\":\"date-time\"},"
	"\"contact_email\":{\"type\":\"string\",\"maxLength\":254},"
	"\"website\":{\"type\":\"string\",\"maxLength\":2048},"
	"\"employees\":{\"type\":\"integer\",\"minimum\":0},"
	"\"revenue_usd\":{\"type\":\"number\",\"minimum\":0},"
	"\"industry\":{\"type\":\"string\",\"maxLength\":100},"
	"\"description\":{\"type\":\"string\",\"maxLength\":2000},"
	"\"tags\":{\"type\":\"array\",\"maxItems\":20,\"uniqueItems\":true,"
	"\"items\":{\"type\":\"string\",\"maxLength\":40}},"
	"\"address\":{\"type\":\"object\",\"required\":[\"city\"],\"properties\":{"
	"\"street\":{\"type\":\"string\"},\"city\":{\"type\":\"string\"},"
	"\"postcode\":{\"type\":\"string\",\"maxLength\":16}}},"
	"\"public\":{\"type\":\"boolean\"},"
	"\"language\":{\"type\":\"string\",\"enum\":[\"en\",\"de\",\"fr\",\"ja\"]},"
	"\"max_results\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":100},"
	"\"callback_url\":{\"type\":[\"string\",\"null\"]},"
	"\"notes\":{\"type\":[\"string\",\"null\"],\"maxLength\":500},"
	"\"confidence\":{\"type\":\"number\",\"minimum\":0,\"maximum\":1}}}";

static const char instance_text[] =
	"{\"task_id\":\"tsk_9f3Kq2LmZ81xYtA\",\"company_name\":\"Acme Research Laboratories GmbH\","
	"\"country\":\"DE\",\"budget_usd\":1249.99,\"priority\":3,"
	"\"deadline\":\"2025-03-31T17:00:00Z\",\"contact_email\":\"procurement@acme-labs.example\","
	"\"website\":\"https://www.acme-labs.example/about/company\",\"employees\":1250,"
	"\"revenue_usd\":48500000.5,\"industry\":\"industrial biotechnology\","
	"\"description\":\"Find and summarise every public tender published in the last ninety "
	"days that matches our enzyme catalogue, with the issuing body, the deadline, the "
	"estimated value and a one-paragraph assessment of fit. Prefer primary sources; list "
	"each source URL. Exclude tenders that require an on-site presence outside the EU.\","
	"\"tags\":[\"tenders\",\"biotech\",\"eu\",\"procurement\",\"summaries\",\"weekly\"],"
	"\"address\":{\"street\":\"Industriestrasse 12\",\"city\":\"Heidelberg\","
	"\"postcode\":\"69115\"},\"public\":false,\"language\":\"en\",\"max_results\":50,"
	"\"callback_url\":null,\"notes\":\"Budget approved by finance on 2025-01-14; contact the "
	"procurement team for anything above the ceiling.\",\"confidence\":0.85}";

static double clock_secs(clockid_t id)
{
	struct timespec t;

	clock_gettime(id, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double now(void)
{
	return clock_secs(CLOCK_MONOTONIC);
}

static double cpu_now(void)
{
	return clock_secs(CLOCK_THREAD_CPUTIME_ID);
}

int main(void)
{
	static struct schema_errors errs;
	const char *env = getenv("BENCH_SECONDS");
	double secs = env ? strtod(env, NULL) : 2.0, t0, t1, c0, c1, rate, wall_rate;
	json_t *sj = json_loads(schema_text, 0, NULL);
	json_t *inst = json_loads(instance_text, 0, NULL);
	struct schema *s = NULL;
	unsigned long n = 0, np = 0;
	double parse_rate;

	if (!sj || !inst || schema_compile(sj, NULL, &s, &errs) ||
	    schema_validate(s, inst, &errs)) {
		fprintf(stderr, "schema_bench: fixture does not compile or validate\n");
		return 1;
	}
	if (secs <= 0)
		secs = 2.0;
	for (int i = 0; i < 20000; i++)
		schema_validate(s, inst, NULL);
	/* Baseline, same run: parsing the same input with jansson, which every
	 * request pays before it can validate. The ratio survives a noisy box
	 * far better than the absolute figure does. */
	t0 = now();
	c0 = cpu_now();
	do {
		for (int i = 0; i < 2000; i++) {
			json_t *p = json_loads(instance_text, 0, NULL);

			np += p != NULL;
			json_decref(p);
		}
		t1 = now();
	} while (t1 - t0 < secs / 2);
	parse_rate = (double)np / (cpu_now() - c0);
	t0 = now();
	c0 = cpu_now();
	do {
		for (int i = 0; i < 10000; i++)
			n += schema_validate(s, inst, NULL) == 0;
		t1 = now();
	} while (t1 - t0 < secs);
	c1 = cpu_now();
	rate = (double)n / (c1 - c0);
	wall_rate = (double)n / (t1 - t0);
	printf("schema validations/s: %.0f (per second of CPU time on one core)\n", rate);
	printf("wall clock: %.0f/s, the thread on a CPU %.0f%% of the run\n", wall_rate,
	       100.0 * (c1 - c0) / (t1 - t0));
	printf("baseline: jansson parses of the same input/s: %.0f (a validation costs %.2fx a parse)\n",
	       parse_rate, parse_rate / rate);
	fprintf(stderr, "schema_bench: input %zu bytes, %lu validations in %.2fs (%.2fs CPU)\n",
		sizeof(instance_text) - 1, n, t1 - t0, c1 - c0);
	schema_free(s);
	json_decref(sj);
	json_decref(inst);
	return 0;
}
