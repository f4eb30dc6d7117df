/*
 * make bench helper (bench/discover.sh): fill a SQLite database with N
 * synthetic agents for an existing org, in one transaction (the rows and,
 * through migration 0008's triggers, the full-text index and change
 * sequence that registering them over HTTP would write, far faster). Each is
 * an evaluation-set description (tests/data/discovery_agents.tsv) with a
 * random audience and specialty appended, a random price, p99, trust,
 * status and visibility, so postings and filters look like a real registry.
 *
 * usage: discover_load sqlite:PATH ORG_ID AGENTS.tsv FIRST COUNT
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "discovery/discovery.h"

#define BASE_MAX 1000

static const char *const audience[] = {
	"for healthcare providers", "for retail chains", "for law firms", "for banks",
	"for startups", "for universities", "for logistics companies", "for insurers",
	"for government agencies", "for manufacturers", "for media publishers", "for hotels",
	"for energy utilities", "for software teams", "for nonprofits", "for farmers"};
static const char *const extra[] = {
	"with audit trails", "in several languages", "at high volume", "with human review",
	"in real time", "overnight in batches", "with detailed explanations", "on premises",
	"with strict privacy", "using public data only", "with confidence scores",
	"for small budgets"};

#define INSERT_SQL                                                                      \
	"INSERT INTO agents (org_id, agent_id, name, description, capability_type, "     \
	"webhook_url, secret_sealed, per_call_micros, p99_latency_ms, availability, "     \
	"input_schema, output_schema, is_public, status, prior_status, trust_score, "      \
	"embedding_id, registered_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, "           \
	"'https://example.com/hook', x'00', ?6, ?7, 0.99, '{}', '{}', ?8, ?9, '', ?10, "  \
	"?11, ?12, ?12)"

static unsigned long long rng = 88172645463325252ULL;

static unsigned rnd(unsigned n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (unsigned)(rng % n);
}

int main(int argc, char **argv)
{
	static char type[BASE_MAX][16], name[BASE_MAX][128], desc[BASE_MAX][512];
	char line[1024], d[1024], nm[200], id[64], emb[EMBEDDING_ID_LEN];
	sqlite3 *db = NULL;
	sqlite3_stmt *ins = NULL;
	long first, count;
	int nb = 0;
	FILE *f;

	if (argc != 6) {
		fprintf(stderr, "usage: discover_load sqlite:PATH ORG_ID AGENTS.tsv FIRST COUNT\n");
		return 2;
	}
	first = atol(argv[4]);
	count = atol(argv[5]);
	f = fopen(argv[3], "r");
	while (f && fgets(line, sizeof(line), f) && nb < BASE_MAX) {
		char *t1, *t2, *t3;

		if (line[0] == '#' || !(t1 = strchr(line, '\t')) || !(t2 = strchr(t1 + 1, '\t')) ||
		    !(t3 = strchr(t2 + 1, '\t')))
			continue;
		*t1 = *t2 = *t3 = '\0';
		t3[1 + strcspn(t3 + 1, "\r\n")] = '\0';
		snprintf(type[nb], sizeof(type[nb]), "%.15s", t1 + 1);
		snprintf(name[nb], sizeof(name[nb]), "%.127s", t2 + 1);
		snprintf(desc[nb], sizeof(desc[nb]), "%.511s", t3 + 1);
		nb++;
	}
	if (f)
		fclose(f);
	if (!nb || sqlite3_open(argv[1] + strlen("sqlite:"), &db) != SQLITE_OK ||
	    sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, INSERT_SQL, -1, &ins, NULL) != SQLITE_OK) {
		fprintf(stderr, "discover_load: %s\n", db ? sqlite3_errmsg(db) : "no agents");
		return 1;
	}
	rng ^= (unsigned long long)first * 2654435761ULL;
	for (long i = first; i < first + count; i++) {
		int b = (int)(i % nb);

		snprintf(d, sizeof(d), "%s %s %s", desc[b],
			 audience[rnd(sizeof(audience) / sizeof(audience[0]))],
			 extra[rnd(sizeof(extra) / sizeof(extra[0]))]);
		snprintf(nm, sizeof(nm), "%s %ld", name[b], i);
		snprintf(id, sizeof(id), "bench-%ld", i);
		embedding_id_new(emb);
		sqlite3_bind_text(ins, 1, argv[2], -1, SQLITE_STATIC);
		sqlite3_bind_text(ins, 2, id, -1, SQLITE_STATIC);
		sqlite3_bind_text(ins, 3, nm, -1, SQLITE_STATIC);
		sqlite3_bind_text(ins, 4, d, -1, SQLITE_STATIC);
		sqlite3_bind_text(ins, 5, type[b], -1, SQLITE_STATIC);
		sqlite3_bind_int64(ins, 6, 10000 + (int64_t)rnd(2000) * 1000);
		sqlite3_bind_int64(ins, 7, 200 + rnd(20000));
		sqlite3_bind_int(ins, 8, (int)rnd(2));
		sqlite3_bind_text(ins, 9, rnd(4) ? "active" : "probationary", -1, SQLITE_STATIC);
		sqlite3_bind_double(ins, 10, 0.3 + rnd(66) / 100.0);
		sqlite3_bind_text(ins, 11, emb, -1, SQLITE_STATIC);
		sqlite3_bind_int64(ins, 12, 1700000000 + i);
		if (sqlite3_step(ins) != SQLITE_DONE) {
			fprintf(stderr, "discover_load: insert: %s\n", sqlite3_errmsg(db));
			return 1;
		}
		sqlite3_reset(ins);
	}
	sqlite3_finalize(ins);
	if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		fprintf(stderr, "discover_load: commit: %s\n", sqlite3_errmsg(db));
		return 1;
	}
	sqlite3_close(db);
	return 0;
}
