// migrations: the schema migrations compiled into the binary, per backend,
// ordered by version and ended by a { 0, NULL, NULL } entry.
#ifndef WEFT_MIGRATIONS_H
#define WEFT_MIGRATIONS_H

typedef struct weft_migration {
	int         version; // NNNN of NNNN_name.sql
	const char *name;
	const char *sql;
} weft_migration;

extern const weft_migration weft_migrations_sqlite[];
extern const weft_migration weft_migrations_postgres[];

#endif
