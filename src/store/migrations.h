/*
 * Numbered SQL migrations, one folder per backend
 * (src/store/migrations/<backend>/NNNN_name.sql), embedded into the binary
 * by scripts/embed-migrations.sh. Each backend applies, in version order,
 * those of its own name that are newer than its schema_migrations table says.
 */
#ifndef NEXRA_STORE_MIGRATIONS_H
#define NEXRA_STORE_MIGRATIONS_H

struct migration {
	const char *backend; /* "sqlite" | "postgres"; NULL ends the table */
	int version;
	const char *name;
	const char *sql;
};

extern const struct migration migrations[];

#endif
