/*
 * Running one store conformance case on every backend (test_store.c,
 * test_ledger.c): a fresh, migrated SQLite file in a temporary directory
 * always, and the PostgreSQL database of NEXRA_TEST_PG_URI when it is set
 * (skipped otherwise, said once per suite). Failures are reported with the
 * runner's FAIL_AT, so a caller's TEST body is just the call.
 */
#ifndef NEXRA_TEST_STORE_HARNESS_H
#define NEXRA_TEST_STORE_HARNESS_H

#include "store/store.h"

typedef void (*store_case)(struct store *s);

/* Where the running case's database is, for checks that read it directly
 * or open a second store on it: one of the two is set during the case. */
struct store_where {
	char sqlite_path[128]; /* "" unless on SQLite */
	const char *pg_uri;    /* NULL unless on PostgreSQL */
};
extern struct store_where store_where;

/* Remove dir and the files directly in it. */
void store_rm_dir(const char *dir);

void store_on_sqlite(store_case fn);
/* suite names the skip message ("ledger" -> "ledger_postgres_*: skipped");
 * need_ledger fails the case when the backend lacks the ledger operations. */
void store_on_postgres(const char *suite, int need_ledger, store_case fn);

#endif
