// pg: a throwaway PostgreSQL server for tests: initdb into a temp dir,
// listening only on a Unix socket in that dir (no TCP port to race for),
// run as an unprivileged user when the test runs as root, and shut
// down by a watchdog process even when the test process dies.
#ifndef WEFT_TEST_PG_H
#define WEFT_TEST_PG_H

#include <stdbool.h>
#include <sys/types.h>

// The socket's port number: the directory is private, any number works.
#define WEFT_PG_PORT 5432

typedef struct weft_pg {
	char  dir[256];  // temp dir: data/, sock/, server.log, ctl.log
	char  bin[256];  // the directory holding initdb, pg_ctl, postgres
	char  user[64];  // OS user running the server ("" = this process's)
	char  url[512];  // postgres://weft@/weft?host=DIR/sock&port=PORT
	int   port;      // names the socket (DIR/sock/.s.PGSQL.PORT)
	pid_t watchdog;  // stops the server when this process goes away
	int   wfd;       // write end of the watchdog's pipe (-1 = none)
	uid_t uid;       // the server's user and group, when user is set
	gid_t gid;
	bool  owner;     // started here (not imported): stop removes it
	bool  running;   // the server is up (as far as we know)
} weft_pg;

// weft_pg_start creates a cluster in a new temp dir, starts it, creates the
// database "weft" (superuser "weft", trust auth on loopback) and fills in
// pg. Returns 0, or -1 after printing why on stderr: missing PostgreSQL
// binaries are an error, never a skip. WEFT_PG_BIN overrides the search of
// /usr/lib/postgresql/*/bin and $PATH; WEFT_TEST_PG_RUNAS names the user
// to run the server as when we are root (default "nobody"). The server
// keeps PostgreSQL's durable defaults (fsync on).
int weft_pg_start(weft_pg *pg);

// weft_pg_url returns the URL of the "weft" database (storage in pg).
const char *weft_pg_url(const weft_pg *pg);

// weft_pg_stop stops the server and removes its directory (kept when
// WEFT_TEST_KEEP is set). Fine on a zeroed or half-started pg.
void weft_pg_stop(weft_pg *pg);

// weft_pg_restart restarts the server (pg_ctl restart -m fast: every
// client connection is cut). Returns 0 or -1.
int weft_pg_restart(weft_pg *pg);

// weft_pg_down stops the server but keeps its data; weft_pg_up starts it
// again on the same port. Each returns 0 or -1.
int weft_pg_down(weft_pg *pg);
int weft_pg_up(weft_pg *pg);

// weft_pg_createdb creates database name and writes its URL into url
// (len). Returns 0 or -1.
int weft_pg_createdb(const weft_pg *pg, const char *name, char *url,
    size_t len);

// weft_pg_value runs sql, with $1 = arg (NULL: no parameter), straight on
// the database at url (not through weft) and copies the first column of
// its first row into out (len; "" when no row). Returns 0, or -1 with out
// holding the error.
int weft_pg_value(const char *url, const char *sql, const char *arg,
    char *out, size_t len);

// weft_pg_export puts pg into the environment (WEFT_TEST_PG_*) so that
// processes started later (Criterion's test workers, wrapped binaries) can
// weft_pg_import it. weft_pg_import returns 0, or -1 when nothing was
// exported (or the export recorded a start failure, printed on stderr).
// An imported pg is not the owner: weft_pg_stop on it does nothing, but
// weft_pg_restart, weft_pg_down and weft_pg_up work.
void weft_pg_export(const weft_pg *pg, const char *error);
int  weft_pg_import(weft_pg *pg);

// weft_pg_shared_start starts one server for the whole test binary and
// exports it (or the failure) for the tests; weft_pg_shared_stop stops it.
// Call them from Criterion hooks (after <criterion/hooks.h>), one per
// line, since hooks are named after their line:
//   WEFT_PG_SHARED_START()
//   WEFT_PG_SHARED_STOP()
// Tests then get the server with weft_pg_import and fail when it is -1.
void weft_pg_shared_start(void);
void weft_pg_shared_stop(void);

#define WEFT_PG_SHARED_START()                               \
	ReportHook(PRE_ALL)(struct criterion_test_set * set) \
	{                                                    \
		(void) set;                                  \
		weft_pg_shared_start();                      \
	}
#define WEFT_PG_SHARED_STOP()                                       \
	ReportHook(POST_ALL)(struct criterion_global_stats * stats) \
	{                                                           \
		(void) stats;                                       \
		weft_pg_shared_stop();                              \
	}

#endif
