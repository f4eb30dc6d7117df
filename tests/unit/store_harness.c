/* The backend harness of the store conformance suites; see store_harness.h. */
#include "store_harness.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crypto/seal.h"
#include "test.h"

struct store_where store_where;

void store_rm_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char p[512];

	while (d && (e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		unlink(p);
	}
	if (d)
		closedir(d);
	rmdir(dir);
}

void store_on_sqlite(store_case fn)
{
	char dir[] = "/tmp/nexra-unit-store-XXXXXX", msg[512] = "";
	struct store *s = NULL;
	int rc;

	if (seal_global_init() || !mkdtemp(dir))
		FAIL_AT("setup");
	snprintf(store_where.sqlite_path, sizeof(store_where.sqlite_path), "%s/nexra.db", dir);
	store_where.pg_uri = NULL;
	rc = store_sqlite_open(store_where.sqlite_path, 2, &s, msg, sizeof(msg));
	if (!rc) {
		if (strcmp(s->ops->name, "sqlite"))
			snprintf(msg, sizeof(msg), "backend is %s", s->ops->name);
		rc = strcmp(s->ops->name, "sqlite") ? -1 : s->ops->migrate(s);
		if (rc && !msg[0])
			snprintf(msg, sizeof(msg), "migrate: %s", store_last_error());
		else if (!rc)
			fn(s);
		s->ops->close(s);
	}
	store_rm_dir(dir);
	store_where.sqlite_path[0] = '\0';
	if (rc)
		FAIL_AT("sqlite store: %s", msg);
}

void store_on_postgres(const char *suite, int need_ledger, store_case fn)
{
	static int told_store, told_ledger;
	int *told = need_ledger ? &told_ledger : &told_store;
	const char *uri = getenv("NEXRA_TEST_PG_URI");
	char msg[512] = "";
	struct store *s = NULL;
	int rc;

	if (!uri || !uri[0]) {
		if (!(*told)++)
			fprintf(stderr, "%s_postgres_*: skipped (NEXRA_TEST_PG_URI not set)\n", suite);
		return;
	}
	if (seal_global_init())
		FAIL_AT("seal_global_init");
	rc = store_pg_open(uri, 2, &s, msg, sizeof(msg));
	if (rc)
		FAIL_AT("postgres store: %s", msg);
	if (strcmp(s->ops->name, "postgres") ||
	    (need_ledger && (!s->ops->ledger_apply || !s->ops->delegation_get ||
			     !s->ops->delegation_list || !s->ops->delegation_overdue ||
			     !s->ops->budget_get))) {
		s->ops->close(s);
		FAIL_AT("postgres store: not the postgres backend, or ledger operations missing");
	}
	rc = s->ops->migrate(s);
	if (rc) {
		s->ops->close(s);
		FAIL_AT("postgres migrate: %s", store_last_error());
	}
	store_where.sqlite_path[0] = '\0';
	store_where.pg_uri = uri;
	fn(s);
	store_where.pg_uri = NULL;
	s->ops->close(s);
}
