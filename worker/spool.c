// spool: the worker's durable outbox, a SQLite file (WAL). Results the
// outbox decides to keep (outbox.c: a step that ran long, or a result
// whose ack is late) are written here in one transaction per batch and
// forgotten once the coordinator has acked them, so a worker killed
// before the ack sends them again when it comes back instead of the steps
// running twice.
//
// Running attempts are not recorded: one cut short by the process's death
// has no result, is missing from the next process's survey answers, and
// the coordinator retries it as lost, which a record would not change. A
// transaction per attempt started cost W1 (10,000 parallel steps) twice
// its time.
//
// synchronous=NORMAL: a commit is in the WAL file (the kernel's page
// cache) when it returns, not fsynced. That survives the worker's death by
// any signal, kill -9 included, and costs no fsync per result; an OS crash
// or power loss can lose the last results, and then those steps run again
// (as they would with no spool): the coordinator never acked them.
#include "worker_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "alloc.h"
#include "cookie.h"
#include "log.h"

#define SPOOL_VERSION 1 // PRAGMA user_version of the schema below

struct worker_spool {
	pthread_mutex_t lock; // one connection, shared by slots and sender
	sqlite3        *db;
	int             lockfd;     // flock'd: one worker per spool
	char            path[4200]; // the database file
	char            lockpath[4200];
	bool            owned;      // created here, or found to be a spool of
	                            // ours: only then may a clean exit delete
	                            // the files
	// Keys of results acked but not deleted yet: the deletes ride on the
	// next write (or the close), so a chain of steps costs two
	// transactions a step, not three. One left behind by a crash is sent
	// again, a repeat the coordinator drops.
	char          **acked;
	size_t          nacked, capacked;
	// The next result's seq (the order they are sent again in), read
	// once at open: a max() per insert scanned the whole table.
	int64_t         next_seq;
};

// Most acked keys kept before they are deleted on their own.
#define SPOOL_ACKED_MAX 4096

static void spool_acked_now(worker_spool *s);

static const char *spool_schema =
    "CREATE TABLE IF NOT EXISTS results ("
    " key TEXT PRIMARY KEY, run_id TEXT NOT NULL, step_id TEXT NOT NULL,"
    " attempt INTEGER NOT NULL, ok INTEGER NOT NULL, output_json TEXT,"
    " error TEXT, exit_code INTEGER NOT NULL DEFAULT 0, stderr_tail TEXT,"
    " started_ms INTEGER NOT NULL, finished_ms INTEGER NOT NULL,"
    " seq INTEGER NOT NULL);";

// spool_exec runs sql (no rows) on s's connection; false with err set.
static bool
spool_exec(worker_spool *s, const char *sql, char *err, size_t errlen)
{
	char *msg = NULL;

	if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		snprintf(err, errlen, "spool %s: %s", s->path,
		    msg ? msg : sqlite3_errmsg(s->db));
		sqlite3_free(msg);
		return (false);
	}
	return (true);
}

// spool_lock takes the spool's lock file, or says who holds it.
static weft_err
spool_lock(worker_spool *s, char *err, size_t errlen)
{
	char buf[32];
	long pid = 0;

	// Not through a link: the file is truncated below.
	s->lockfd = open(s->lockpath,
	    O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (s->lockfd < 0) {
		snprintf(err, errlen, "spool %s: cannot open its lock file: %s",
		    s->lockpath, strerror(errno));
		return (WEFT_EINVAL);
	}
	if (flock(s->lockfd, LOCK_EX | LOCK_NB) != 0) {
		ssize_t n = pread(s->lockfd, buf, sizeof(buf) - 1, 0);
		buf[n > 0 ? n : 0] = '\0';
		pid                = strtol(buf, NULL, 10);
		snprintf(err, errlen,
		    "spool %s is in use by another worker (pid %ld): two workers "
		    "cannot share a spool; give this one another --name or "
		    "--spool DIR",
		    s->path, pid);
		return (WEFT_EEXIST);
	}
	snprintf(buf, sizeof(buf), "%ld\n", (long) getpid());
	if (ftruncate(s->lockfd, 0) != 0 ||
	    pwrite(s->lockfd, buf, strlen(buf), 0) < 0) {
		// The pid is only for the message above; the lock holds.
	}
	return (WEFT_OK);
}

// The columns of the results table, in order: with SPOOL_VERSION, what
// makes a file a spool of ours.
static const char *const spool_columns[] = { "key", "run_id", "step_id",
	"attempt", "ok", "output_json", "error", "exit_code", "stderr_tail",
	"started_ms", "finished_ms", "seq" };

// spool_int returns the integer answer to sql (one row, one column), or
// -1 when there is none.
static long long
spool_int(worker_spool *s, const char *sql)
{
	sqlite3_stmt *st;
	long long     v = -1;

	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW) {
		v = sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	return (v);
}

// spool_is_ours tells whether the schema is exactly the spool's: the
// results table with its columns in order, its key's index, nothing else.
static bool
spool_is_ours(worker_spool *s)
{
	sqlite3_stmt *st;
	size_t        n  = 0;
	bool          ok = true;

	if (spool_int(s, "SELECT count(*) FROM sqlite_master WHERE NOT ("
	                 "(type = 'table' AND name = 'results') OR "
	                 "(type = 'index' AND name = "
	                 "'sqlite_autoindex_results_1'))") != 0 ||
	    spool_int(s, "SELECT count(*) FROM sqlite_master") != 2) {
		return (false);
	}
	if (sqlite3_prepare_v2(s->db, "SELECT name FROM pragma_table_info("
	                              "'results') ORDER BY cid",
	        -1, &st, NULL) != SQLITE_OK) {
		return (false);
	}
	while (ok && sqlite3_step(st) == SQLITE_ROW) {
		const char *c = (const char *) sqlite3_column_text(st, 0);
		ok = n < sizeof(spool_columns) / sizeof(spool_columns[0]) &&
		    c != NULL && strcmp(c, spool_columns[n]) == 0;
		n++;
	}
	sqlite3_finalize(st);
	return (ok && n == sizeof(spool_columns) / sizeof(spool_columns[0]));
}

// spool_check refuses a file that is not a spool of ours, or is damaged.
// It may hold results nobody acked, or be someone else's database: it is
// not moved aside, rebuilt or taken over, the operator decides (the error
// says how). A file without a version is taken only when it holds nothing
// at all (one we created, or whose creation was cut short); any other
// needs our version and our schema exactly.
static weft_err
spool_check(worker_spool *s, char *err, size_t errlen)
{
	sqlite3_stmt *st  = NULL;
	long long     ver = -1, objects = -1;
	bool          ok  = false;
	char          why[512];

	snprintf(why, sizeof(why), "%s", "unreadable");
	if (sqlite3_prepare_v2(s->db, "PRAGMA quick_check", -1, &st, NULL) ==
	        SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW) {
		const char *r = (const char *) sqlite3_column_text(st, 0);
		ok            = r != NULL && strcmp(r, "ok") == 0;
		snprintf(why, sizeof(why), "%s", r ? r : "no answer");
	} else {
		snprintf(why, sizeof(why), "%s", sqlite3_errmsg(s->db));
	}
	sqlite3_finalize(st);
	if (ok) {
		ver     = spool_int(s, "PRAGMA user_version");
		objects = spool_int(s, "SELECT count(*) FROM sqlite_master");
	}
	if (ok && ver == 0 && objects == 0) {
		return (WEFT_OK);
	}
	if (ok && ver == SPOOL_VERSION && spool_is_ours(s)) {
		s->owned = true;
		return (WEFT_OK);
	}
	if (ok && ver == SPOOL_VERSION) {
		snprintf(why, sizeof(why), "%s", "its tables are not a spool's");
	} else if (ok && ver == 0) {
		snprintf(why, sizeof(why), "%s",
		    "another database: it has tables and no spool version");
	} else if (ok) {
		snprintf(why, sizeof(why), "schema version %lld, this worker "
		    "knows %d", ver, SPOOL_VERSION);
	}
	snprintf(err, errlen,
	    "spool %s is not a weft worker spool or is damaged (%s); it may "
	    "hold results the coordinator has not acked, or be another "
	    "program's: move it aside (or start with --spool DIR elsewhere) "
	    "to start",
	    s->path, why);
	return (WEFT_EINVAL);
}

// spool_dir_private refuses a spool directory that group or others can
// write into: they could put a file of their choosing under the spool's
// name. (A directory the worker makes is 0700.)
static weft_err
spool_dir_private(const char *dir, char *err, size_t errlen)
{
	struct stat st;

	if (stat(dir, &st) != 0) {
		snprintf(err, errlen, "spool directory %s: %s", dir,
		    strerror(errno));
		return (WEFT_EINVAL);
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "spool directory %s is not a directory",
		    dir);
		return (WEFT_EINVAL);
	}
	if ((st.st_mode & 022) != 0) {
		snprintf(err, errlen,
		    "spool directory %s is writable by group or others (mode "
		    "%03o): chmod go-w it, or start with --spool DIR elsewhere",
		    dir, (unsigned) (st.st_mode & 0777));
		return (WEFT_EINVAL);
	}
	return (WEFT_OK);
}

// spool_regular checks that the file at path, if it exists, is a regular
// file and not a link; with tighten, it also makes it readable and
// writable by its owner alone (it holds step outputs). False with err
// set when it is not, or cannot be.
static bool
spool_regular(const char *path, bool tighten, char *err, size_t errlen)
{
	struct stat st;
	int         fd;
	bool        ok;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0) {
		if (errno == ENOENT) {
			return (true);
		}
		snprintf(err, errlen, "spool %s: cannot open%s: %s", path,
		    errno == ELOOP ? " a symbolic link (a spool's files must "
		                     "be its own)"
		                   : "",
		    strerror(errno));
		return (false);
	}
	errno = 0;
	ok    = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
	    (!tighten || (st.st_mode & 077) == 0 || fchmod(fd, 0600) == 0);
	if (!ok) {
		snprintf(err, errlen, "spool %s is not a regular file, or cannot "
		    "be made private (chmod 600 it)%s%s", path,
		    errno ? ": " : "", errno ? strerror(errno) : "");
	}
	close(fd);
	return (ok);
}

// spool_create makes the database file, mode 0600, unless it exists;
// *created says whether it did. SQLite gives the -wal and -shm files the
// mode of the database file, so they are private too.
static weft_err
spool_create(worker_spool *s, bool *created, char *err, size_t errlen)
{
	int fd;

	*created = false;
	fd = open(s->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
	    0600);
	if (fd >= 0) {
		*created = true;
		(void) fchmod(fd, 0600); // whatever the umask
		close(fd);
		return (WEFT_OK);
	}
	if (errno != EEXIST) {
		snprintf(err, errlen, "spool %s: cannot create: %s", s->path,
		    strerror(errno));
		return (WEFT_EINVAL);
	}
	return (spool_regular(s->path, false, err, errlen) ? WEFT_OK
	                                                   : WEFT_EINVAL);
}

// spool_make_private makes the files of a spool found on disk private:
// one from before spools were, or with a -wal and -shm left by a crash.
// Only once it is known to be ours: another program's file is not
// touched.
static weft_err
spool_make_private(worker_spool *s, char *err, size_t errlen)
{
	static const char *const sides[] = { "", "-wal", "-shm" };
	char                     path[4300];

	for (size_t k = 0; k < sizeof(sides) / sizeof(sides[0]); k++) {
		snprintf(path, sizeof(path), "%s%s", s->path, sides[k]);
		if (!spool_regular(path, true, err, errlen)) {
			return (WEFT_EINVAL);
		}
	}
	return (WEFT_OK);
}

// spool_next_seq returns the seq after the largest spooled one (1 when
// empty).
static int64_t
spool_next_seq(worker_spool *s)
{
	sqlite3_stmt *st;
	int64_t       next = 1;

	if (sqlite3_prepare_v2(s->db,
	        "SELECT coalesce(max(seq), 0) + 1 FROM results", -1, &st,
	        NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW) {
		next = sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	return (next);
}

weft_err
worker_spool_open(worker_spool **out, const char *dir, char *err,
    size_t errlen)
{
	worker_spool *s = weft_xalloc(sizeof(*s));
	weft_err      rv;
	int           rc;
	bool          created;
	char          sql[128];

	*out      = NULL;
	s->lockfd = -1;
	pthread_mutex_init(&s->lock, NULL);
	snprintf(s->path, sizeof(s->path), "%s/spool.db", dir);
	snprintf(s->lockpath, sizeof(s->lockpath), "%s/spool.lock", dir);
	weft_mkdir_parents(s->path);
	if ((rv = spool_dir_private(dir, err, errlen)) != WEFT_OK ||
	    (rv = spool_lock(s, err, errlen)) != WEFT_OK ||
	    (rv = spool_create(s, &created, err, errlen)) != WEFT_OK) {
		goto fail;
	}
	// NOFOLLOW: a link named spool.db (to the coordinator's database,
	// say) is refused, not written into.
	rc = sqlite3_open_v2(s->path, &s->db,
	    SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW,
	    NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "spool %s: cannot open: %s", s->path,
		    s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
		rv = WEFT_EINVAL;
		goto fail;
	}
	sqlite3_busy_timeout(s->db, 5000);
	if ((rv = spool_check(s, err, errlen)) != WEFT_OK ||
	    (!created && (rv = spool_make_private(s, err, errlen)) != WEFT_OK)) {
		goto fail;
	}
	s->owned = s->owned || created;
	snprintf(sql, sizeof(sql), "PRAGMA user_version=%d", SPOOL_VERSION);
	if (!spool_exec(s, "PRAGMA journal_mode=WAL", err, errlen) ||
	    !spool_exec(s, "PRAGMA synchronous=NORMAL", err, errlen) ||
	    !spool_exec(s, spool_schema, err, errlen) ||
	    !spool_exec(s, sql, err, errlen)) {
		rv = WEFT_EINVAL;
		goto fail;
	}
	s->next_seq = spool_next_seq(s);
	*out        = s;
	return (WEFT_OK);
fail:
	worker_spool_close(s, false);
	return (rv);
}

// spool_empty tells whether nothing is spooled.
static bool
spool_empty(worker_spool *s)
{
	sqlite3_stmt *st;
	bool          empty = false;

	if (sqlite3_prepare_v2(s->db, "SELECT count(*) FROM results", -1, &st,
	        NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW) {
		empty = sqlite3_column_int64(st, 0) == 0;
	}
	sqlite3_finalize(st);
	return (empty);
}

void
worker_spool_close(worker_spool *s, bool remove_if_empty)
{
	char side[4300];
	bool remove;

	if (s == NULL) {
		return;
	}
	if (s->db != NULL) {
		spool_acked_now(s);
	}
	for (size_t k = 0; k < s->nacked; k++) {
		free(s->acked[k]);
	}
	free(s->acked);
	// Only a file we made or recognised as a spool: never a database of
	// someone else's that happened to be under the spool's name.
	remove = remove_if_empty && s->owned && s->db != NULL &&
	    spool_empty(s);
	if (s->db != NULL) {
		sqlite3_close(s->db);
	}
	if (remove) {
		// A clean exit leaves nothing behind: a worker named after
		// its pid would otherwise leave a spool per run.
		unlink(s->path);
		snprintf(side, sizeof(side), "%s-wal", s->path);
		unlink(side);
		snprintf(side, sizeof(side), "%s-shm", s->path);
		unlink(side);
		unlink(s->lockpath);
		snprintf(side, sizeof(side), "%s", s->path);
		char *slash = strrchr(side, '/');
		if (slash != NULL) {
			*slash = '\0';
			(void) rmdir(side);
		}
	}
	if (s->lockfd >= 0) {
		close(s->lockfd); // releases the flock
	}
	pthread_mutex_destroy(&s->lock);
	free(s);
}

// spool_key writes "run/step/attempt" of r into out.
static void
spool_key(const weft_result *r, char *out, size_t len)
{
	worker_attempt_key(out, len, r->run_id, r->step_id, r->attempt);
}

// spool_flush_acked deletes the results acked since the last write (lock
// held, in a transaction); false when a delete fails (they stay queued).
static bool
spool_flush_acked(worker_spool *s)
{
	sqlite3_stmt *st;
	bool          ok = true;

	if (s->nacked == 0) {
		return (true);
	}
	if (sqlite3_prepare_v2(s->db, "DELETE FROM results WHERE key = ?", -1,
	        &st, NULL) != SQLITE_OK) {
		return (false);
	}
	for (size_t k = 0; ok && k < s->nacked; k++) {
		sqlite3_bind_text(st, 1, s->acked[k], -1, SQLITE_STATIC);
		ok = sqlite3_step(st) == SQLITE_DONE;
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	if (ok) {
		for (size_t k = 0; k < s->nacked; k++) {
			free(s->acked[k]);
		}
		s->nacked = 0;
	}
	return (ok);
}

// spool_acked_now deletes the acked results in a transaction of their own
// (lock held).
static void
spool_acked_now(worker_spool *s)
{
	if (s->nacked == 0) {
		return;
	}
	if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) !=
	        SQLITE_OK ||
	    !spool_flush_acked(s) ||
	    sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		weft_log_warn("SPOOL-WRITE", "spool=%s what=acked error=\"%s\"",
		    s->path, sqlite3_errmsg(s->db));
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	}
}

weft_err
worker_spool_results(worker_spool *s, weft_result *const *rs, uint32_t n)
{
	sqlite3_stmt *st = NULL;
	char          key[WORKER_KEY_MAX];
	bool          ok;

	if (s == NULL) {
		return (WEFT_OK);
	}
	pthread_mutex_lock(&s->lock);
	ok = sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) ==
	        SQLITE_OK &&
	    spool_flush_acked(s) &&
	    sqlite3_prepare_v2(s->db,
	        "INSERT OR REPLACE INTO results(key, run_id, step_id, attempt, "
	        "ok, output_json, error, exit_code, stderr_tail, started_ms, "
	        "finished_ms, seq) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
	        -1, &st, NULL) == SQLITE_OK;
	for (uint32_t k = 0; ok && k < n; k++) {
		const weft_result *r = rs[k];
		if (r->spooled) {
			continue;
		}
		spool_key(r, key, sizeof(key));
		sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 2, r->run_id, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, r->step_id, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 4, r->attempt);
		sqlite3_bind_int(st, 5, r->ok);
		sqlite3_bind_text(st, 6, r->output_json, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 7, r->error, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 8, r->exit_code);
		sqlite3_bind_text(st, 9, r->stderr_tail, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 10, (sqlite3_int64) r->started_ms);
		sqlite3_bind_int64(st, 11, (sqlite3_int64) r->finished_ms);
		sqlite3_bind_int64(st, 12, s->next_seq++);
		ok = sqlite3_step(st) == SQLITE_DONE;
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	if (!ok || sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		// A full disk, say: the results are still sent, and kept in
		// memory until acked; only a crash meanwhile loses them.
		weft_log_err("SPOOL-WRITE", "spool=%s results=%u error=\"%s\": "
		    "kept in memory only", s->path, n, sqlite3_errmsg(s->db));
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		ok = false;
	}
	pthread_mutex_unlock(&s->lock);
	return (ok ? WEFT_OK : WEFT_EUNAVAIL);
}

weft_err
worker_spool_acked(worker_spool *s, weft_result *const *rs, uint32_t n)
{
	char key[WORKER_KEY_MAX];

	if (s == NULL || n == 0) {
		return (WEFT_OK);
	}
	pthread_mutex_lock(&s->lock);
	for (uint32_t k = 0; k < n; k++) {
		if (s->nacked == s->capacked) {
			s->capacked = s->capacked ? s->capacked * 2 : 64;
			s->acked    = weft_xrealloc(
                            s->acked, s->capacked * sizeof(*s->acked));
		}
		spool_key(rs[k], key, sizeof(key));
		s->acked[s->nacked++] = weft_xstrdup(key);
	}
	if (s->nacked >= SPOOL_ACKED_MAX) {
		spool_acked_now(s);
	}
	pthread_mutex_unlock(&s->lock);
	return (WEFT_OK);
}

// spool_text copies column i (NULL stays NULL).
static char *
spool_text(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	return (t != NULL ? weft_xstrdup((const char *) t) : NULL);
}

// spool_row_bad says why the row st is on (rowid, key, run_id, step_id,
// attempt first) could never be sent and forgotten, or NULL when it can:
// the coordinator has no attempt 0, and the ack deletes by the key made
// from run, step and attempt, so a row whose key is another would be
// sent on every start and never deleted.
static const char *
spool_row_bad(sqlite3_stmt *st)
{
	const char   *key  = (const char *) sqlite3_column_text(st, 1);
	const char   *run  = (const char *) sqlite3_column_text(st, 2);
	const char   *step = (const char *) sqlite3_column_text(st, 3);
	sqlite3_int64 att  = sqlite3_column_int64(st, 4);
	char          want[WORKER_KEY_MAX];

	if (run == NULL || step == NULL || run[0] == '\0' || step[0] == '\0') {
		return ("no run or step");
	}
	if (sqlite3_column_type(st, 4) != SQLITE_INTEGER || att <= 0 ||
	    att > UINT32_MAX) {
		return ("no valid attempt");
	}
	worker_attempt_key(want, sizeof(want), run, step, (uint32_t) att);
	if (key == NULL || strcmp(key, want) != 0) {
		return ("its key is not its run/step/attempt");
	}
	return (NULL);
}

// spool_drop_bad logs the malformed row st is on and why, and queues its
// rowid on *bad (n of cap) to be deleted.
static void
spool_drop_bad(worker_spool *s, sqlite3_stmt *st, const char *why,
    sqlite3_int64 **bad, size_t *n, size_t *cap)
{
	const unsigned char *key = sqlite3_column_text(st, 1);
	char                 shown[201];
	size_t               k = 0;

	// The key is whatever the file holds: one line in the log, quoted.
	for (; key != NULL && key[k] != '\0' && k < sizeof(shown) - 1; k++) {
		shown[k] = key[k] < 0x20 || key[k] == 0x7f || key[k] == '"' ||
		        key[k] == '\\'
		    ? '?'
		    : (char) key[k];
	}
	shown[k] = '\0';
	weft_log_warn("SPOOL-BAD-ROW", "spool=%s key=\"%s\": %s, never sent "
	    "nor acked: dropped", s->path, key ? shown : "(none)", why);
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 16;
		*bad = weft_xrealloc(*bad, *cap * sizeof(**bad));
	}
	(*bad)[(*n)++] = sqlite3_column_int64(st, 0);
}

// spool_delete_rows deletes rows[0..n) by rowid in one transaction (lock
// held); a failure is logged, and they are dropped again next start.
static void
spool_delete_rows(worker_spool *s, const sqlite3_int64 *rows, size_t n)
{
	sqlite3_stmt *st = NULL;
	bool          ok;

	if (n == 0) {
		return;
	}
	ok = sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) ==
	        SQLITE_OK &&
	    sqlite3_prepare_v2(s->db, "DELETE FROM results WHERE rowid = ?",
	        -1, &st, NULL) == SQLITE_OK;
	for (size_t k = 0; ok && k < n; k++) {
		sqlite3_bind_int64(st, 1, rows[k]);
		ok = sqlite3_step(st) == SQLITE_DONE;
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	if (!ok || sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		weft_log_warn("SPOOL-WRITE", "spool=%s what=malformed "
		    "error=\"%s\"", s->path, sqlite3_errmsg(s->db));
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	}
}

weft_err
worker_spool_load(worker_spool *s, worker_outbox *o, uint32_t *nresults)
{
	sqlite3_stmt  *st;
	sqlite3_int64 *bad = NULL;
	size_t         nbad = 0, capbad = 0;
	const char    *why;

	*nresults = 0;
	if (s == NULL) {
		return (WEFT_OK);
	}
	pthread_mutex_lock(&s->lock);
	if (sqlite3_prepare_v2(s->db,
	        "SELECT rowid, key, run_id, step_id, attempt, ok, output_json, "
	        "error, exit_code, stderr_tail, started_ms, finished_ms FROM "
	        "results ORDER BY seq",
	        -1, &st, NULL) == SQLITE_OK) {
		while (sqlite3_step(st) == SQLITE_ROW) {
			if ((why = spool_row_bad(st)) != NULL) {
				spool_drop_bad(s, st, why, &bad, &nbad, &capbad);
				continue;
			}
			weft_result *r = weft_xalloc(sizeof(*r));
			r->run_id      = spool_text(st, 2);
			r->step_id     = spool_text(st, 3);
			r->attempt     = (uint32_t) sqlite3_column_int64(st, 4);
			r->ok          = sqlite3_column_int(st, 5) != 0;
			r->output_json = spool_text(st, 6);
			r->error       = spool_text(st, 7);
			r->exit_code   = sqlite3_column_int(st, 8);
			r->stderr_tail = spool_text(st, 9);
			r->started_ms  = (uint64_t) sqlite3_column_int64(st, 10);
			r->finished_ms = (uint64_t) sqlite3_column_int64(st, 11);
			r->spooled     = true;
			worker_outbox_put(o, r);
			(*nresults)++;
		}
	}
	sqlite3_finalize(st);
	spool_delete_rows(s, bad, nbad);
	free(bad);
	pthread_mutex_unlock(&s->lock);
	return (WEFT_OK);
}
