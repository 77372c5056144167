// store_sqlite: the embedded SQLite backend of the store (WAL mode).
//
// Statements are prepared once and cached by their SQL text. Durability:
// synchronous=FULL, so a committed batch survives a power cut, not only a
// crash; group commit makes the fsync cost per batch, not per event.
//
// Faults: a full disk, an I/O error, a read-only file or a lock held too
// long are the store being *unavailable* (weft_store_sqlite_class), never
// a refusal: the engine retries the batch. After such an error the
// connection is closed and opened again before the next use, so nothing
// of the failed transaction (a WAL index half-updated by an I/O error)
// is carried into the retry. The file is the one we opened only while its
// path still leads to the same inode: a file deleted or replaced under
// us is unavailable for good (writes would go to a file nobody can find).
#include <dirent.h>
#include <errno.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "clock.h"
#include "log.h"
#include "map.h"
#include "store.h"

// The write path runs a few statements thousands of times a batch, each
// from the same static SQL text: a small cache keyed by the text's
// address spares hashing the text (the map keys by content). A hit is
// confirmed by comparing the text, as a caller's buffer may hold other
// SQL at the same address later.
#define SQLITE_HOT 16

typedef struct sqlite_hot {
	const char   *sql; // the caller's pointer, never dereferenced alone
	sqlite3_stmt *st;
} sqlite_hot;

typedef struct store_sqlite {
	weft_store base;
	sqlite3   *db;      // NULL while closed for a reopen
	weft_map   stmts;   // SQL text -> sqlite3_stmt *
	sqlite_hot hot[SQLITE_HOT]; // borrowed from stmts
	char      *path;    // as given; "" or ":memory:" has no file
	bool       readonly;
	bool       reopen;  // an I/O-class error: open again before next use
	bool       has_file; // dev/ino hold the file we opened
	bool       gone;    // the file was found deleted or replaced
	dev_t      dev;
	ino_t      ino;
} store_sqlite;

weft_err
weft_store_sqlite_class(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_BUSY:     // another connection holds the lock too long
	case SQLITE_LOCKED:
	case SQLITE_FULL:     // disk (or quota) full
	case SQLITE_IOERR:    // every extended I/O error
	case SQLITE_READONLY: // read-only file, directory or filesystem
	case SQLITE_CANTOPEN: // the file, its journal or -shm cannot be opened
	case SQLITE_PERM:
	case SQLITE_NOTADB:   // another kind of file put at the path
	case SQLITE_CORRUPT:  // a file replaced or truncated under us
	case SQLITE_PROTOCOL: // WAL lock protocol: transient by definition
	case SQLITE_NOLFS:
		return (WEFT_EUNAVAIL);
	default:
		// Constraints, type mismatches, SQL errors: the batch itself is
		// refused, and retrying it would fail the same way.
		return (WEFT_ESTORE);
	}
}

static weft_err
sqlite_fail(store_sqlite *s, int rc, const char *what)
{
	weft_err rv = weft_store_sqlite_class(rc);

	snprintf(s->base.error, sizeof(s->base.error), "sqlite %s: %s (%d)",
	    what, s->db != NULL ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc),
	    rc);
	s->base.ok = false;
	if (rv == WEFT_EUNAVAIL && (rc & 0xff) != SQLITE_BUSY &&
	    (rc & 0xff) != SQLITE_LOCKED) {
		s->reopen = true;
	}
	return (rv);
}

static weft_err sqlite_ready(store_sqlite *s);

static weft_err
sqlite_prepare(store_sqlite *s, const char *sql, sqlite3_stmt **out)
{
	sqlite3_stmt *st;
	int           rc;
	weft_err      rv;

	if ((rv = sqlite_ready(s)) != WEFT_OK) {
		return (rv);
	}
	sqlite_hot *h = &s->hot[((uintptr_t) sql >> 3) % SQLITE_HOT];
	if (h->sql == sql && strcmp(sqlite3_sql(h->st), sql) == 0) {
		st = h->st;
	} else if ((st = weft_map_get(&s->stmts, sql)) == NULL) {
		rc = sqlite3_prepare_v3(
		    s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
		if (rc != SQLITE_OK) {
			return (sqlite_fail(s, rc, "prepare"));
		}
		weft_map_put(&s->stmts, sql, st);
	}
	h->sql = sql;
	h->st  = st;
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
	sqlite3_stmt *st = NULL;
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
	int           rc;
	weft_err      rv;

	if ((rv = sqlite_ready(s)) != WEFT_OK) {
		return (rv);
	}
	if ((rc = sqlite3_exec(s->db, sql, NULL, NULL, &errmsg)) != SQLITE_OK) {
		rv = sqlite_fail(s, rc, "script");
		snprintf(base->error, sizeof(base->error), "sqlite: %s (%d)",
		    errmsg ? errmsg : sqlite3_errstr(rc), rc);
		sqlite3_free(errmsg);
		return (rv);
	}
	return (WEFT_OK);
}

static weft_err
sqlite_begin(weft_store *base)
{
	store_sqlite *s = (store_sqlite *) base;
	weft_err      rv;

	// Every write transaction first makes sure the path still leads to
	// our file: a stat per commit, against writes into a deleted file.
	if ((rv = sqlite_ready(s)) != WEFT_OK) {
		return (rv);
	}
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
	if (s->db != NULL && !sqlite3_get_autocommit(s->db)) {
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

// sqlite_disconnect closes the connection and its statements; the store
// stays, ready for sqlite_connect.
static void
sqlite_disconnect(store_sqlite *s)
{
	const char *k;
	void       *v;

	for (size_t i = 0; weft_map_each(&s->stmts, &i, &k, &v);) {
		sqlite3_finalize(v);
	}
	weft_map_fini(&s->stmts);
	weft_map_init(&s->stmts);
	memset(s->hot, 0, sizeof(s->hot));
	if (s->db != NULL) {
		sqlite3_close(s->db);
		s->db = NULL;
	}
}

static void
sqlite_close(weft_store *base)
{
	store_sqlite *s = (store_sqlite *) base;

	sqlite_disconnect(s);
	weft_map_fini(&s->stmts);
	free(s->path);
	free(s);
}

static weft_err sqlite_check(weft_store *base);

static const weft_store_ops sqlite_ops = {
	.name        = "sqlite",
	.exec        = sqlite_exec,
	.query       = sqlite_query,
	.script      = sqlite_script,
	.begin       = sqlite_begin,
	.commit      = sqlite_commit,
	.rollback    = sqlite_rollback,
	.lock_schema = sqlite_lock_schema,
	.check       = sqlite_check,
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
		return (weft_store_sqlite_class(rc));
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

// sqlite_connect opens the connection (creating the file only when
// create is set) and configures it; on failure s->base.error says why.
static weft_err
sqlite_connect(store_sqlite *s, bool create)
{
	int flags = s->readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE;
	int rc;

	if (create && !s->readonly) {
		flags |= SQLITE_OPEN_CREATE;
	}
	rc = sqlite3_open_v2(s->path, &s->db, flags | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		snprintf(s->base.error, sizeof(s->base.error),
		    "cannot open sqlite database %s: %s", s->path,
		    s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
		sqlite_disconnect(s);
		return (weft_store_sqlite_class(rc));
	}
	sqlite3_busy_timeout(s->db, SQLITE_BUSY_MS);
	if (!s->readonly) {
		weft_err rv;
		if ((rv = sqlite_wal(s)) != WEFT_OK ||
		    (rv = sqlite_script(&s->base,
		         "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;"
		         "PRAGMA cache_size=-65536; PRAGMA temp_store=MEMORY;")) !=
		        WEFT_OK) {
			char why[sizeof(s->base.error)];
			snprintf(why, sizeof(why), "%s", s->base.error);
			snprintf(s->base.error, sizeof(s->base.error),
			    "cannot configure %.200s: %.290s", s->path, why);
			sqlite_disconnect(s);
			return (rv);
		}
	}
	return (WEFT_OK);
}

// sqlite_deleted_fd finds the descriptor this process still holds on a
// deleted path ("/proc/self/fd/N"), so the log can say how to copy the
// data back while we run. Returns -1 when there is none.
static int
sqlite_deleted_fd(const char *path)
{
	DIR           *d = opendir("/proc/self/fd");
	struct dirent *de;
	char           want[4200], link[4200], name[300];
	int            found = -1;

	if (d == NULL) {
		return (-1);
	}
	snprintf(want, sizeof(want), "%s (deleted)", path);
	while (found < 0 && (de = readdir(d)) != NULL) {
		ssize_t n;
		snprintf(name, sizeof(name), "/proc/self/fd/%s", de->d_name);
		n = readlink(name, link, sizeof(link) - 1);
		if (n > 0) {
			link[n] = '\0';
			if (strcmp(link, want) == 0) {
				found = atoi(de->d_name);
			}
		}
	}
	closedir(d);
	return (found);
}

// sqlite_shm_unwritable tells (base.error) when the WAL index, DB-shm,
// exists but cannot be written (immutable, a read-only mount). SQLite
// maps that file and writes to it through the mapping, readers too (their
// read marks): touching it then is SIGBUS, with no error to return. So it
// is looked at first, and the store is unavailable instead.
static bool
sqlite_shm_unwritable(store_sqlite *s)
{
	char shm[4200];

	snprintf(shm, sizeof(shm), "%s-shm", s->path);
	if (access(shm, W_OK) == 0 || errno == ENOENT) {
		return (false);
	}
	snprintf(s->base.error, sizeof(s->base.error),
	    "the database's WAL index %.200s cannot be written: %s (made "
	    "immutable? chattr -i it)", shm, strerror(errno));
	s->base.ok = false;
	return (true);
}

// sqlite_identity checks that the path still leads to the file we opened.
static weft_err
sqlite_identity(store_sqlite *s)
{
	struct stat st;
	char        abs[4096];
	int         fd;

	if (!s->has_file) {
		return (WEFT_OK);
	}
	if (stat(s->path, &st) == 0 && st.st_dev == s->dev &&
	    st.st_ino == s->ino) {
		if (sqlite_shm_unwritable(s)) {
			return (WEFT_EUNAVAIL);
		}
		if (s->gone) {
			weft_log_notice("DB-FILE-BACK", "database file %s is "
			    "back in place", s->path);
			s->gone = false;
		}
		return (WEFT_OK);
	}
	if (stat(s->path, &st) != 0 && errno != ENOENT) {
		// Not found out either way (EACCES on the directory, EIO):
		// unavailable, but not a verdict on the file.
		snprintf(s->base.error, sizeof(s->base.error),
		    "database file %s cannot be checked: %s", s->path,
		    strerror(errno));
		s->base.ok = false;
		return (WEFT_EUNAVAIL);
	}
	bool deleted = stat(s->path, &st) != 0;
	snprintf(s->base.error, sizeof(s->base.error),
	    "database file %s was %s while the coordinator ran; no new run "
	    "is accepted: restore the file, or restart the coordinator "
	    "(--init starts a new, empty database)",
	    s->path, deleted ? "deleted" : "replaced by another file");
	s->base.ok = false;
	if (!s->gone && !s->readonly) {
		s->gone = true;
		fd = deleted ? sqlite_deleted_fd(s->path) : -1;
		if (s->db != NULL) {
			// Move what the WAL holds into the (unlinked) main file,
			// so one copy of it has everything.
			sqlite3_wal_checkpoint_v2(s->db, NULL,
			    SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
		}
		if (getcwd(abs, sizeof(abs)) == NULL) {
			abs[0] = '\0';
		}
		weft_log_err("DB-FILE-GONE", "%s", s->base.error);
		if (fd >= 0) {
			weft_log_err("DB-FILE-GONE", "its data is still open in "
			    "this process: copy it back while the coordinator "
			    "runs with: cp /proc/%ld/fd/%d %s%s%s", (long) getpid(),
			    fd, s->path[0] == '/' ? "" : abs,
			    s->path[0] == '/' ? "" : "/", s->path);
		}
	}
	return (WEFT_EUNAVAIL);
}

// sqlite_ready makes the connection usable: the file must still be ours,
// and after an I/O-class error the connection is opened afresh (never
// creating the file).
static weft_err
sqlite_ready(store_sqlite *s)
{
	weft_err rv;

	if (s->db != NULL && !sqlite3_get_autocommit(s->db)) {
		return (WEFT_OK); // inside a transaction: checked at BEGIN
	}
	if ((rv = sqlite_identity(s)) != WEFT_OK) {
		return (rv);
	}
	if (!s->reopen && s->db != NULL) {
		return (WEFT_OK);
	}
	sqlite_disconnect(s);
	s->reopen = false; // sqlite_connect runs statements through here
	if ((rv = sqlite_connect(s, false)) != WEFT_OK) {
		s->reopen = true;
		s->base.ok = false;
		return (rv == WEFT_ESTORE ? WEFT_EUNAVAIL : rv);
	}
	return (sqlite_identity(s));
}

static weft_err
sqlite_check(weft_store *base)
{
	return (sqlite_identity((store_sqlite *) base));
}

// sqlite_dir_missing tells (err) when the directory that should hold the
// database file does not exist.
static bool
sqlite_dir_missing(const char *path, char *err, size_t errlen)
{
	char        dir[4096];
	const char *slash = strrchr(path, '/');
	struct stat st;

	if (slash == NULL || slash == path || strcmp(path, ":memory:") == 0 ||
	    strncmp(path, "file:", 5) == 0) {
		return (false);
	}
	snprintf(dir, sizeof(dir), "%.*s", (int) (slash - path), path);
	if (stat(dir, &st) == 0 || errno != ENOENT) {
		return (false);
	}
	snprintf(err, errlen, "cannot open sqlite database %s: directory %s "
	    "does not exist", path, dir);
	return (true);
}

weft_err
weft_store_sqlite_open(weft_store **out, const char *path, bool readonly,
    char *err, size_t errlen)
{
	store_sqlite *s = weft_xalloc(sizeof(*s));
	struct stat   st;
	weft_err      rv;

	*out        = NULL;
	s->base.ops = &sqlite_ops;
	s->path     = weft_xstrdup(path);
	s->readonly = readonly;
	weft_map_init(&s->stmts);
	snprintf(s->base.url, sizeof(s->base.url), "sqlite:%s", path);
	if (!readonly && sqlite_dir_missing(path, err, errlen)) {
		// A mistyped path is not an outage to wait out.
		sqlite_close(&s->base);
		return (WEFT_ESTORE);
	}
	if ((rv = sqlite_connect(s, true)) != WEFT_OK) {
		snprintf(err, errlen, "%s", s->base.error);
		sqlite_close(&s->base);
		return (rv);
	}
	// The file as opened: what the path must keep leading to.
	if (strcmp(path, ":memory:") != 0 && strncmp(path, "file:", 5) != 0 &&
	    stat(path, &st) == 0) {
		s->has_file = true;
		s->dev      = st.st_dev;
		s->ino      = st.st_ino;
	}
	s->base.ok = true;
	*out       = &s->base;
	return (WEFT_OK);
}
