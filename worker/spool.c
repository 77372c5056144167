// spool: the worker's durable outbox, a SQLite file (WAL). The outbox's
// sender writes each batch of new results here, in one transaction, before
// it sends them, and forgets them once the coordinator has acked them, so
// a worker killed before the ack sends them again when it comes back
// instead of the steps running twice.
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
	// Keys of results acked but not deleted yet: the deletes ride on the
	// next write (or the close), so a chain of steps costs two
	// transactions a step, not three. One left behind by a crash is sent
	// again, a repeat the coordinator drops.
	char          **acked;
	size_t          nacked, capacked;
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

	s->lockfd = open(s->lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
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

// spool_check refuses a file that is not a spool of ours, or is damaged.
// It may hold results nobody acked: it is not moved aside or rebuilt, the
// operator decides (the error says how).
static weft_err
spool_check(worker_spool *s, char *err, size_t errlen)
{
	sqlite3_stmt *st  = NULL;
	int           ver = -1;
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
	st = NULL;
	if (ok && sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st,
	              NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW) {
		ver = sqlite3_column_int(st, 0);
	}
	sqlite3_finalize(st);
	if (ok && (ver == 0 || ver == SPOOL_VERSION)) {
		return (WEFT_OK);
	}
	if (ok) {
		snprintf(why, sizeof(why), "schema version %d, this worker "
		    "knows %d", ver, SPOOL_VERSION);
	}
	snprintf(err, errlen,
	    "spool %s is not a weft worker spool or is damaged (%s); it may "
	    "hold results the coordinator has not acked: move it aside (or "
	    "start with --spool DIR elsewhere) to start",
	    s->path, why);
	return (WEFT_EINVAL);
}

weft_err
worker_spool_open(worker_spool **out, const char *dir, char *err,
    size_t errlen)
{
	worker_spool *s = weft_xalloc(sizeof(*s));
	weft_err      rv;
	int           rc;
	char          sql[128];

	*out      = NULL;
	s->lockfd = -1;
	pthread_mutex_init(&s->lock, NULL);
	snprintf(s->path, sizeof(s->path), "%s/spool.db", dir);
	snprintf(s->lockpath, sizeof(s->lockpath), "%s/spool.lock", dir);
	weft_mkdir_parents(s->path);
	if ((rv = spool_lock(s, err, errlen)) != WEFT_OK) {
		goto fail;
	}
	rc = sqlite3_open_v2(s->path, &s->db,
	    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
	    NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "spool %s: cannot open: %s", s->path,
		    s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
		rv = WEFT_EINVAL;
		goto fail;
	}
	sqlite3_busy_timeout(s->db, 5000);
	if ((rv = spool_check(s, err, errlen)) != WEFT_OK) {
		goto fail;
	}
	snprintf(sql, sizeof(sql), "PRAGMA user_version=%d", SPOOL_VERSION);
	if (!spool_exec(s, "PRAGMA journal_mode=WAL", err, errlen) ||
	    !spool_exec(s, "PRAGMA synchronous=NORMAL", err, errlen) ||
	    !spool_exec(s, spool_schema, err, errlen) ||
	    !spool_exec(s, sql, err, errlen)) {
		rv = WEFT_EINVAL;
		goto fail;
	}
	*out = s;
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
	remove = remove_if_empty && s->db != NULL && spool_empty(s);
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
	snprintf(out, len, "%s/%s/%u", r->run_id, r->step_id, r->attempt);
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
	char          key[1024];
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
	        "finished_ms, seq) VALUES (?,?,?,?,?,?,?,?,?,?,?, "
	        "(SELECT coalesce(max(seq), 0) + 1 FROM results))",
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
	char key[1024];

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

weft_err
worker_spool_load(worker_spool *s, worker_outbox *o, uint32_t *nresults)
{
	sqlite3_stmt *st;

	*nresults = 0;
	if (s == NULL) {
		return (WEFT_OK);
	}
	pthread_mutex_lock(&s->lock);
	if (sqlite3_prepare_v2(s->db,
	        "SELECT run_id, step_id, attempt, ok, output_json, error, "
	        "exit_code, stderr_tail, started_ms, finished_ms FROM results "
	        "ORDER BY seq",
	        -1, &st, NULL) == SQLITE_OK) {
		while (sqlite3_step(st) == SQLITE_ROW) {
			weft_result *r = weft_xalloc(sizeof(*r));
			r->run_id      = spool_text(st, 0);
			r->step_id     = spool_text(st, 1);
			r->attempt     = (uint32_t) sqlite3_column_int64(st, 2);
			r->ok          = sqlite3_column_int(st, 3) != 0;
			r->output_json = spool_text(st, 4);
			r->error       = spool_text(st, 5);
			r->exit_code   = sqlite3_column_int(st, 6);
			r->stderr_tail = spool_text(st, 7);
			r->started_ms  = (uint64_t) sqlite3_column_int64(st, 8);
			r->finished_ms = (uint64_t) sqlite3_column_int64(st, 9);
			r->spooled     = true;
			if (r->run_id == NULL || r->step_id == NULL) {
				weft_result_free(r);
				continue;
			}
			worker_outbox_put(o, r);
			(*nresults)++;
		}
	}
	sqlite3_finalize(st);
	pthread_mutex_unlock(&s->lock);
	return (WEFT_OK);
}

