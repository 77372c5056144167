// commit_shim: an LD_PRELOAD library weft-bench puts under the coordinator
// (and nothing else) to time every store transaction without touching
// coordinator code. It appends one bench_commit_rec per committed write
// transaction to the file named by $WEFT_BENCH_COMMIT_LOG:
// - SQLite: wraps sqlite3_step; "BEGIN IMMEDIATE" (the engine's write
//   transaction) starts the clock, "COMMIT" returning stops it.
// - PostgreSQL: wraps PQexec ("BEGIN", and "COMMIT" outside a pipeline),
//   PQsendQueryParams ("COMMIT" queued in pipeline mode) and PQgetResult
//   (the pipeline's sync result after such a COMMIT stops the clock).
// Transactions are tracked per thread, so the query thread's reads on its
// own connection never mix in.
//
// The coordinator exports a commit-latency histogram (/metrics) and the
// p50/p99 of its last 4096 commits (weft info); this shim gives exact
// percentiles per workload, from outside the process under test.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "commit_log.h"

// The shim links neither library: the coordinator has both loaded, and
// the wrappers reach the real functions through dlsym(RTLD_NEXT).
static int             shim_fd   = -1;
static pthread_once_t  shim_once = PTHREAD_ONCE_INIT;
static __thread int64_t shim_begin_us;  // open write transaction; 0 = none
static __thread int64_t shim_commit_us; // pipelined COMMIT sent; 0 = none

static void
shim_open(void)
{
	const char *path = getenv(BENCH_COMMIT_LOG_ENV);

	if (path != NULL && path[0] != '\0') {
		shim_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
		    0644);
	}
}

static int64_t
shim_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000);
}

static void
shim_record(int64_t begin_us, int64_t commit_start_us, int64_t end_us)
{
	bench_commit_rec rec;
	ssize_t          n;

	pthread_once(&shim_once, shim_open);
	if (shim_fd < 0) {
		return;
	}
	rec.txn_us    = (uint32_t) (end_us - begin_us);
	rec.commit_us = (uint32_t) (end_us - commit_start_us);
	n             = write(shim_fd, &rec, sizeof(rec));
	(void) n; // a lost record only thins the sample
}

// shim_kind classifies a statement: 1 begin of a write transaction, 2
// commit, 0 anything else. begin is the prefix that counts as a begin.
static int
shim_kind(const char *sql, const char *begin)
{
	if (sql == NULL) {
		return (0);
	}
	if (strncmp(sql, begin, strlen(begin)) == 0) {
		return (1);
	}
	if (strncmp(sql, "COMMIT", 6) == 0 || strncmp(sql, "END", 3) == 0) {
		return (2);
	}
	return (0);
}

int
sqlite3_step(sqlite3_stmt *st)
{
	static int (*real)(sqlite3_stmt *);
	int     kind, rc;
	int64_t t0;

	if (real == NULL) {
		real = (int (*)(sqlite3_stmt *)) dlsym(RTLD_NEXT, "sqlite3_step");
	}
	kind = shim_kind(sqlite3_sql(st), "BEGIN IMMEDIATE");
	if (kind == 0) {
		return (real(st));
	}
	t0 = shim_now_us();
	rc = real(st);
	if (kind == 1) {
		shim_begin_us = rc == SQLITE_DONE ? t0 : 0;
	} else if (shim_begin_us != 0) {
		if (rc == SQLITE_DONE) {
			shim_record(shim_begin_us, t0, shim_now_us());
		}
		shim_begin_us = 0;
	}
	return (rc);
}

PGresult *
PQexec(PGconn *conn, const char *query)
{
	static PGresult *(*real)(PGconn *, const char *);
	PGresult *res;
	int       kind;
	int64_t   t0;

	if (real == NULL) {
		real = (PGresult * (*) (PGconn *, const char *))
		    dlsym(RTLD_NEXT, "PQexec");
	}
	kind = shim_kind(query, "BEGIN");
	if (kind == 0) {
		return (real(conn, query));
	}
	t0  = shim_now_us();
	res = real(conn, query);
	if (kind == 1) {
		shim_begin_us = PQresultStatus(res) == PGRES_COMMAND_OK ? t0 : 0;
	} else if (shim_begin_us != 0) {
		if (PQresultStatus(res) == PGRES_COMMAND_OK) {
			shim_record(shim_begin_us, t0, shim_now_us());
		}
		shim_begin_us = 0;
	}
	return (res);
}

int
PQsendQueryParams(PGconn *conn, const char *command, int nParams,
    const Oid *paramTypes, const char *const *paramValues,
    const int *paramLengths, const int *paramFormats, int resultFormat)
{
	static int (*real)(PGconn *, const char *, int, const Oid *,
	    const char *const *, const int *, const int *, int);

	if (real == NULL) {
		real = (int (*)(PGconn *, const char *, int, const Oid *,
		    const char *const *, const int *, const int *, int))
		    dlsym(RTLD_NEXT, "PQsendQueryParams");
	}
	if (shim_begin_us != 0 && shim_kind(command, "BEGIN") == 2) {
		shim_commit_us = shim_now_us();
	}
	return (real(conn, command, nParams, paramTypes, paramValues,
	    paramLengths, paramFormats, resultFormat));
}

PGresult *
PQgetResult(PGconn *conn)
{
	static PGresult *(*real)(PGconn *);
	PGresult *res;

	if (real == NULL) {
		real = (PGresult * (*) (PGconn *)) dlsym(RTLD_NEXT, "PQgetResult");
	}
	res = real(conn);
	if (shim_commit_us != 0 && res != NULL &&
	    (PQresultStatus(res) == PGRES_PIPELINE_SYNC ||
	        PQresultStatus(res) == PGRES_PIPELINE_ABORTED)) {
		if (PQresultStatus(res) == PGRES_PIPELINE_SYNC) {
			shim_record(shim_begin_us, shim_commit_us, shim_now_us());
		}
		shim_begin_us  = 0;
		shim_commit_us = 0;
	}
	return (res);
}
