// store_sqlite: the embedded SQLite backend of the store (WAL mode).
//
// Statements are prepared once and cached by their SQL text. Durability:
// synchronous=FULL, so a committed batch survives a power cut, not only a
// crash; group commit makes the fsync cost per batch, not per event.
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "clock.h"
#include "log.h"
#include "map.h"
#include "store.h"

typedef struct store_sqlite {
	weft_store base;
	sqlite3   *db;
	weft_map   stmts; // SQL text -> sqlite3_stmt *
} store_sqlite;

static weft_err
sqlite_fail(store_sqlite *s, int rc, const char *what)
{
	snprintf(s->base.error, sizeof(s->base.error), "sqlite %s: %s (%d)",
	    what, sqlite3_errmsg(s->db), rc);
	s->base.ok = false;
	return (rc == SQLITE_BUSY || rc == SQLITE_LOCKED ? WEFT_EUNAVAIL
	                                                 : WEFT_ESTORE);
}

static weft_err
sqlite_prepare(store_sqlite *s, const char *sql, sqlite3_stmt **out)
{
	sqlite3_stmt *st = weft_map_get(&s->stmts, sql);
	int           rc;

	if (st == NULL) {
		rc = sqlite3_prepare_v3(
		    s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
		if (rc != SQLITE_OK) {
			return (sqlite_fail(s, rc, "prepare"));
		}
		weft_map_put(&s->stmts, sql, st);
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	*out = st;
	return (WEFT_OK);
}

static weft_err
sqlite_bind(store_sqlite *s, sqlite3_stmt *st, const char **params, int n)
{
	for (int i = 0; i < n; i++) {
		int rc = params[i] == NULL
		    ? sqlite3_bind_null(st, i + 1)
		    : sqlite3_bind_text(st, i + 1, params[i], -1, SQLITE_STATIC);
		if (rc != SQLITE_OK) {
			return (sqlite_fail(s, rc, "bind"));
		}
	}
	return (WEFT_OK);
}

static weft_err
sqlite_query(weft_store *base, const char *sql, const char **params,
    int nparams, weft_store_row_fn fn, void *arg)
{
	store_sqlite *s = (store_sqlite *) base;
	sqlite3_stmt *st;
	weft_err      err;
	int           rc;
	const char   *cols[64];

	if ((err = sqlite_prepare(s, sql, &st)) != WEFT_OK ||
	    (err = sqlite_bind(s, st, params, nparams)) != WEFT_OK) {
		return (err);
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int n = sqlite3_column_count(st);
		if (n > 64) {
			n = 64;
		}
		for (int i = 0; i < n; i++) {
			cols[i] = (const char *) sqlite3_column_text(st, i);
		}
		if (fn != NULL && fn(arg, n, cols) != 0) {
			sqlite3_reset(st);
			return (WEFT_OK);
		}
	}
	if (rc != SQLITE_DONE) {
		err = sqlite_fail(s, rc, "step");
		sqlite3_reset(st);
		return (err);
	}
	sqlite3_reset(st);
	base->ok = true;
	return (WEFT_OK);
}

static weft_err
sqlite_exec(weft_store *base, const char *sql, const char **params, int n)
{
	return (sqlite_query(base, sql, params, n, NULL, NULL));
}

static weft_err
sqlite_script(weft_store *base, const char *sql)
{
	store_sqlite *s      = (store_sqlite *) base;
	char         *errmsg = NULL;
	int           rc     = sqlite3_exec(s->db, sql, NULL, NULL, &errmsg);

	if (rc != SQLITE_OK) {
		snprintf(base->error, sizeof(base->error), "sqlite: %s",
		    errmsg ? errmsg : sqlite3_errstr(rc));
		sqlite3_free(errmsg);
		return (WEFT_ESTORE);
	}
	return (WEFT_OK);
}

static weft_err
sqlite_begin(weft_store *base)
{
	return (sqlite_exec(base, "BEGIN IMMEDIATE", NULL, 0));
}

static weft_err
sqlite_commit(weft_store *base)
{
	return (sqlite_exec(base, "COMMIT", NULL, 0));
}

static void
sqlite_rollback(weft_store *base)
{
	store_sqlite *s = (store_sqlite *) base;
	if (!sqlite3_get_autocommit(s->db)) {
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	}
}

static weft_err
sqlite_lock_schema(weft_store *base, bool lock)
{
	// One file, one writer: BEGIN IMMEDIATE in each migration already
	// serializes coordinators sharing a database file.
	(void) base;
	(void) lock;
	return (WEFT_OK);
}

static void
sqlite_close(weft_store *base)
{
	store_sqlite *s = (store_sqlite *) base;
	const char   *k;
	void         *v;

	for (size_t i = 0; weft_map_each(&s->stmts, &i, &k, &v);) {
		sqlite3_finalize(v);
	}
	weft_map_fini(&s->stmts);
	sqlite3_close(s->db);
	free(s);
}

static const weft_store_ops sqlite_ops = {
	.name        = "sqlite",
	.exec        = sqlite_exec,
	.query       = sqlite_query,
	.script      = sqlite_script,
	.begin       = sqlite_begin,
	.commit      = sqlite_commit,
	.rollback    = sqlite_rollback,
	.lock_schema = sqlite_lock_schema,
	.close       = sqlite_close,
};

// How long a connection waits for another's lock, in ms.
#define SQLITE_BUSY_MS 5000

static int
sqlite_mode_row(void *arg, int n, char **cols, char **names)
{
	(void) names;
	snprintf(arg, 16, "%s", n > 0 && cols[0] != NULL ? cols[0] : "");
	return (0);
}

// sqlite_wal puts the database file in WAL mode. Switching a new file's
// mode takes an exclusive lock from inside a read, and there SQLite does
// not call the busy handler (it could deadlock): a second process opening
// the same new file at the same moment gets SQLITE_BUSY at once. That is
// the busy handler's job done here: wait and try again, for as long as
// the busy timeout. Once one process has switched the file, the mode is
// persistent and the others' pragma only reads it.
static weft_err
sqlite_wal(store_sqlite *s)
{
	char    mode[16] = "";
	int64_t deadline = weft_clock_mono_ms() + SQLITE_BUSY_MS;
	int     delay    = 1, rc;

	while ((rc = sqlite3_exec(s->db, "PRAGMA journal_mode=WAL",
	            sqlite_mode_row, mode, NULL)) == SQLITE_BUSY ||
	    rc == SQLITE_LOCKED) {
		if (weft_clock_mono_ms() >= deadline) {
			break;
		}
		weft_clock_sleep_ms(delay);
		delay = delay < 64 ? delay * 2 : 64;
	}
	if (rc != SQLITE_OK) {
		snprintf(s->base.error, sizeof(s->base.error),
		    "sqlite: journal_mode=WAL: %s", sqlite3_errstr(rc));
		return (rc == SQLITE_BUSY || rc == SQLITE_LOCKED ? WEFT_EUNAVAIL
		                                                 : WEFT_ESTORE);
	}
	if (strcmp(mode, "wal") != 0) {
		snprintf(s->base.error, sizeof(s->base.error),
		    "sqlite: the file cannot be put in WAL mode (mode is "
		    "\"%s\"): is it on a filesystem without shared memory?",
		    mode);
		return (WEFT_ESTORE);
	}
	return (WEFT_OK);
}

weft_err
weft_store_sqlite_open(weft_store **out, const char *path, bool readonly,
    char *err, size_t errlen)
{
	store_sqlite *s = weft_xalloc(sizeof(*s));
	int flags = readonly ? SQLITE_OPEN_READONLY
	                     : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
	int rc;

	s->base.ops = &sqlite_ops;
	weft_map_init(&s->stmts);
	snprintf(s->base.url, sizeof(s->base.url), "sqlite:%s", path);
	rc = sqlite3_open_v2(path, &s->db, flags | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "cannot open sqlite database %s: %s", path,
		    s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
		sqlite_close(&s->base);
		return (WEFT_ESTORE);
	}
	sqlite3_busy_timeout(s->db, SQLITE_BUSY_MS);
	if (!readonly &&
	    (sqlite_wal(s) != WEFT_OK ||
	        sqlite_script(&s->base,
	            "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;"
	            "PRAGMA cache_size=-65536; PRAGMA temp_store=MEMORY;") !=
	            WEFT_OK)) {
		snprintf(err, errlen, "cannot configure %s: %s", path,
		    s->base.error);
		sqlite_close(&s->base);
		return (WEFT_ESTORE);
	}
	s->base.ok = true;
	*out       = &s->base;
	return (WEFT_OK);
}
