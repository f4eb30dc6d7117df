/*
 * make bench: discovery quality on the evaluation set (tests/data/
 * discovery_agents.tsv, discovery_queries.tsv). Every agent is registered
 * in one org of a fresh SQLite database (same price, SLA and trust, so only
 * relevance orders them), and every query is run through discover_run --
 * the code behind POST /v1/capabilities/discover -- three times: full-text
 * alone, built-in embeddings alone, and both (hybrid). Prints nDCG@5 and
 * recall@5 per query kind, and checks that each paraphrase shares no
 * content word (after stemming) with its best answer.
 *
 * nDCG@5: gain 2^grade - 1, log2 discount, ideal from the judgments.
 * recall@5: judged agents (any grade) in the top 5 / min(5, judged).
 *
 * usage: discover_eval AGENTS.tsv QUERIES.tsv   (exit 1 on a broken set)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/err.h"
#include "discovery/discover.h"
#include "discovery/stem.h"
#include "store/store.h"

#define AGENTS_MAX 2000
#define QUERIES_MAX 1000
#define JUDGED_MAX 16
#define LINE_MAX_ 4096

struct ev_agent {
	char id[32], type[16], name[128], desc[512];
};

struct ev_query {
	char id[16], kind[16], text[512];
	char judged[JUDGED_MAX][32];
	int grade[JUDGED_MAX];
	int n;
};

static struct ev_agent agents[AGENTS_MAX];
static struct ev_query queries[QUERIES_MAX];
static int nagents, nqueries;

static int split(char *line, char **f, int max)
{
	int n = 0;

	line[strcspn(line, "\r\n")] = '\0';
	f[n++] = line;
	for (char *p = line; *p && n < max; p++)
		if (*p == '\t') {
			*p = '\0';
			f[n++] = p + 1;
		}
	return n;
}

static int load(const char *apath, const char *qpath)
{
	char line[LINE_MAX_], *f[4];
	FILE *a = fopen(apath, "r"), *q = fopen(qpath, "r");

	if (!a || !q) {
		fprintf(stderr, "discover_eval: cannot open %s or %s\n", apath, qpath);
		return -1;
	}
	while (fgets(line, sizeof(line), a))
		if (line[0] != '#' && split(line, f, 4) == 4 && nagents < AGENTS_MAX) {
			struct ev_agent *x = &agents[nagents++];

			snprintf(x->id, sizeof(x->id), "%s", f[0]);
			snprintf(x->type, sizeof(x->type), "%s", f[1]);
			snprintf(x->name, sizeof(x->name), "%s", f[2]);
			snprintf(x->desc, sizeof(x->desc), "%s", f[3]);
		}
	while (fgets(line, sizeof(line), q))
		if (line[0] != '#' && split(line, f, 4) == 4 && nqueries < QUERIES_MAX) {
			struct ev_query *x = &queries[nqueries++];
			char *save = NULL;

			snprintf(x->id, sizeof(x->id), "%s", f[0]);
			snprintf(x->kind, sizeof(x->kind), "%s", f[1]);
			snprintf(x->text, sizeof(x->text), "%s", f[2]);
			for (char *t = strtok_r(f[3], " ", &save); t && x->n < JUDGED_MAX;
			     t = strtok_r(NULL, " ", &save)) {
				char *colon = strchr(t, ':');

				if (!colon)
					continue;
				*colon = '\0';
				snprintf(x->judged[x->n], sizeof(x->judged[0]), "%s", t);
				x->grade[x->n++] = atoi(colon + 1);
			}
		}
	fclose(a);
	fclose(q);
	return 0;
}

static const struct ev_agent *agent_by_id(const char *id)
{
	for (int i = 0; i < nagents; i++)
		if (!strcmp(agents[i].id, id))
			return &agents[i];
	return NULL;
}

/* Content-word stems of text (stopwords dropped), space-joined in out. */
static void stems(struct stemmer *st, const char *text, char out[][STEM_WORD_MAX + 1], int *n)
{
	char w[STEM_WORD_MAX + 1];
	size_t pos = 0, len = strlen(text), k;

	*n = 0;
	while (*n < 64 && (k = stem_next_word(text, len, &pos, w)) > 0)
		if (!stem_is_stopword(w, k))
			stemmer_stem(st, w, k, out[(*n)++]);
}

/* The paraphrase rule: no stem shared with the best answer. */
static int check_paraphrases(void)
{
	struct stemmer st;
	char qs[64][STEM_WORD_MAX + 1], as[64][STEM_WORD_MAX + 1], text[1024];
	int bad = 0, nq, na;

	if (stemmer_init(&st))
		return -1;
	for (int i = 0; i < nqueries; i++) {
		const struct ev_query *q = &queries[i];
		const struct ev_agent *a;

		if (strcmp(q->kind, "paraphrase"))
			continue;
		for (int j = 0; j < q->n; j++) {
			if (q->grade[j] != 3)
				continue;
			a = agent_by_id(q->judged[j]);
			if (!a)
				continue;
			snprintf(text, sizeof(text), "%s %s %s", a->name, a->type, a->desc);
			stems(&st, q->text, qs, &nq);
			stems(&st, text, as, &na);
			for (int x = 0; x < nq; x++)
				for (int y = 0; y < na; y++)
					if (!strcmp(qs[x], as[y])) {
						fprintf(stderr, "discover_eval: paraphrase %s shares '%s' with %s\n",
							q->id, qs[x], a->id);
						bad = 1;
					}
		}
	}
	stemmer_release(&st);
	return bad ? -1 : 0;
}

static int setup(const char *dir, struct store **st, struct discovery *d, char *org_id)
{
	char uri[600], msg[256];
	struct org o = {0};
	struct api_key live = {0}, test = {0};
	int rc;

	snprintf(uri, sizeof(uri), "sqlite:%s/eval.db", dir);
	rc = store_open(uri, 2, st, msg, sizeof(msg));
	if (!rc)
		rc = (*st)->ops->migrate(*st);
	if (rc) {
		fprintf(stderr, "discover_eval: store: %s %s\n", msg, store_last_error());
		return rc;
	}
	snprintf(o.org_id, sizeof(o.org_id), "org_eval");
	snprintf(o.name, sizeof(o.name), "eval");
	snprintf(o.plan, sizeof(o.plan), "growth");
	snprintf(live.key_id, sizeof(live.key_id), "key_live");
	snprintf(test.key_id, sizeof(test.key_id), "key_test");
	snprintf(live.lookup, sizeof(live.lookup), "lookuplive00");
	snprintf(test.lookup, sizeof(test.lookup), "lookuptest00");
	snprintf(live.org_id, sizeof(live.org_id), "org_eval");
	snprintf(test.org_id, sizeof(test.org_id), "org_eval");
	test.kind = KEY_TEST;
	rc = (*st)->ops->org_create(*st, &o, &live, &test);
	for (int i = 0; !rc && i < nagents; i++) {
		struct agent a = {0};
		unsigned char secret[1] = {0};
		char emb[EMBEDDING_ID_LEN];

		snprintf(a.org_id, sizeof(a.org_id), "org_eval");
		snprintf(a.agent_id, sizeof(a.agent_id), "%.31s", agents[i].id);
		a.name = agents[i].name;
		a.description = agents[i].desc;
		snprintf(a.capability_type, sizeof(a.capability_type), "%.15s", agents[i].type);
		a.webhook_url = "https://example.com/hook";
		a.secret_sealed = secret;
		a.secret_sealed_len = 1;
		a.per_call_micros = 100000;
		a.p99_latency_ms = 1000;
		a.availability = 0.99;
		a.input_schema = a.output_schema = "{}";
		snprintf(a.status, sizeof(a.status), "active");
		a.trust_score = 0.8;
		embedding_id_new(emb);
		a.embedding_id = emb;
		rc = (*st)->ops->agent_insert(*st, &a);
	}
	if (rc) {
		fprintf(stderr, "discover_eval: loading agents: %s\n", store_last_error());
		return rc;
	}
	snprintf(org_id, ID_MAX, "org_eval");
	return discovery_init(d, *st, NULL, NULL, NULL, msg, sizeof(msg));
}

struct score {
	double ndcg, recall;
	int n;
};

static void judge(const struct ev_query *q, const struct discover_out *o, struct score *s)
{
	double dcg = 0, idcg = 0;
	int g[JUDGED_MAX], hits = 0;

	for (int i = 0; i < o->n && i < 5; i++)
		for (int j = 0; j < q->n; j++)
			if (!strcmp(o->res[i].agent_id, q->judged[j])) {
				dcg += (pow(2, q->grade[j]) - 1) / log2(i + 2.0);
				hits++;
			}
	memcpy(g, q->grade, sizeof(g));
	for (int i = 0; i < q->n; i++) /* grades descending */
		for (int j = i + 1; j < q->n; j++)
			if (g[j] > g[i]) {
				int t = g[i];

				g[i] = g[j];
				g[j] = t;
			}
	for (int i = 0; i < q->n && i < 5; i++)
		idcg += (pow(2, g[i]) - 1) / log2(i + 2.0);
	s->ndcg += idcg > 0 ? dcg / idcg : 0;
	s->recall += q->n ? (double)hits / (q->n < 5 ? q->n : 5) : 0;
	s->n++;
}

int main(int argc, char **argv)
{
	static const char *const kinds[] = {"direct", "paraphrase", NULL};
	static const char *const mode_names[] = {"", "lexical alone", "embeddings alone",
						 "hybrid"};
	struct discovery d;
	struct store *st = NULL;
	struct score sc[4][3] = {{{0}}};
	struct discover_out *o = malloc(sizeof(*o));
	char dir[] = "/tmp/nexra-eval.XXXXXX", org_id[ID_MAX], path[600];
	int rc = 1;

	memset(&d, 0, sizeof(d));
	if (argc != 3 || !o) {
		fprintf(stderr, "usage: discover_eval AGENTS.tsv QUERIES.tsv\n");
		return 2;
	}
	if (load(argv[1], argv[2]) || check_paraphrases() || !mkdtemp(dir))
		return 1;
	if (setup(dir, &st, &d, org_id))
		goto out;
	for (int i = 0; i < nqueries; i++) {
		struct discover_req q;
		json_t *body = json_pack("{s:s, s:i}", "query", queries[i].text, "limit", 5);
		struct jerr e;
		int k = strcmp(queries[i].kind, "paraphrase") ? 0 : 1;

		if (!body || discover_req_from_json(body, &q, &e)) {
			fprintf(stderr, "discover_eval: query %s: %s\n", queries[i].id, e.message);
			json_decref(body);
			goto out;
		}
		for (int m = DISCOVER_LEXICAL; m <= DISCOVER_HYBRID; m++) {
			if (discover_run(&d, org_id, &q, m, o)) {
				fprintf(stderr, "discover_eval: %s failed\n", queries[i].id);
				json_decref(body);
				goto out;
			}
			judge(&queries[i], o, &sc[m][k]);
			judge(&queries[i], o, &sc[m][2]);
			if (getenv("EVAL_VERBOSE") && m == DISCOVER_HYBRID) {
				printf("%s %-10s %-50s ->", queries[i].id, queries[i].kind,
				       queries[i].text);
				for (int r = 0; r < o->n; r++)
					printf(" %s", o->res[r].agent_id);
				printf("\n");
			}
		}
		json_decref(body);
	}
	printf("discovery quality: %d agents, %d queries (%d direct, %d paraphrases)\n", nagents,
	       nqueries, sc[1][0].n, sc[1][1].n);
	printf("  %-18s %21s %21s %21s\n", "", "direct", "paraphrase", "all");
	printf("  %-18s %10s %10s %10s %10s %10s %10s\n", "", "nDCG@5", "recall@5", "nDCG@5",
	       "recall@5", "nDCG@5", "recall@5");
	for (int m = DISCOVER_LEXICAL; m <= DISCOVER_HYBRID; m++) {
		printf("  %-18s", mode_names[m]);
		for (int k = 0; k < 3; k++)
			printf(" %10.3f %10.3f", sc[m][k].n ? sc[m][k].ndcg / sc[m][k].n : 0,
			       sc[m][k].n ? sc[m][k].recall / sc[m][k].n : 0);
		printf("\n");
	}
	{
		double dp = sc[3][1].ndcg / sc[3][1].n - sc[1][1].ndcg / sc[1][1].n;
		double dd = sc[3][0].ndcg / sc[3][0].n - sc[1][0].ndcg / sc[1][0].n;

		printf("  hybrid - lexical nDCG@5: paraphrases %+.3f (goal >= +0.10), direct %+.3f "
		       "(goal >= 0)\n", dp, dd);
	}
	(void)kinds;
	rc = 0;
out:
	if (st) {
		discovery_release(&d);
		st->ops->close(st);
	}
	snprintf(path, sizeof(path), "rm -rf '%s'", dir);
	if (system(path))
		rc = 1;
	free(o);
	return rc;
}
