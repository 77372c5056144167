// pg: start, restart and stop a throwaway PostgreSQL server for tests.
//
// PostgreSQL refuses to run as root, and tests here often do: the server
// commands then run as an unprivileged user (nobody) that owns the temp
// dir. A watchdog process stops the server when the test process is gone,
// however it went, so no postmaster outlives a crashed or killed test.
#define _DEFAULT_SOURCE // setgroups
#include "pg.h"

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "harness.h"

// pg_find_bin finds the directory with initdb and pg_ctl: WEFT_PG_BIN, the
// newest /usr/lib/postgresql/<ver>/bin (Debian), or $PATH.
static int
pg_find_bin(char *out, size_t len)
{
	const char *env = getenv("WEFT_PG_BIN");
	glob_t      g;
	int         best = -1;
	const char *path;

	if (env != NULL && env[0] != '\0') {
		char p1[600], p2[600];
		snprintf(out, len, "%s", env);
		snprintf(p1, sizeof(p1), "%s/pg_ctl", env);
		snprintf(p2, sizeof(p2), "%s/initdb", env);
		if (access(p1, X_OK) == 0 && access(p2, X_OK) == 0) {
			return (0);
		}
		fprintf(stderr, "weft-pg: WEFT_PG_BIN=%s has no initdb and "
		                "pg_ctl\n", env);
		return (-1);
	}
	if (glob("/usr/lib/postgresql/*/bin/pg_ctl", 0, NULL, &g) == 0) {
		for (size_t i = 0; i < g.gl_pathc; i++) {
			int v = atoi(g.gl_pathv[i] + strlen("/usr/lib/postgresql/"));
			if (v > best) {
				best = v;
				snprintf(out, len, "%.*s",
				    (int) (strlen(g.gl_pathv[i]) - strlen("/pg_ctl")),
				    g.gl_pathv[i]);
			}
		}
		globfree(&g);
		if (best >= 0) {
			return (0);
		}
	}
	if ((path = getenv("PATH")) != NULL) {
		char *copy = strdup(path), *save = NULL;
		for (char *d = strtok_r(copy, ":", &save); d != NULL;
		     d       = strtok_r(NULL, ":", &save)) {
			char p1[600], p2[600];
			snprintf(p1, sizeof(p1), "%s/pg_ctl", d);
			snprintf(p2, sizeof(p2), "%s/initdb", d);
			if (access(p1, X_OK) == 0 && access(p2, X_OK) == 0) {
				snprintf(out, len, "%s", d);
				free(copy);
				return (0);
			}
		}
		free(copy);
	}
	fprintf(stderr,
	    "weft-pg: PostgreSQL server binaries (initdb, pg_ctl) not found "
	    "under /usr/lib/postgresql/*/bin or $PATH: install the "
	    "'postgresql' package (scripts/deps.sh test) or set WEFT_PG_BIN\n");
	return (-1);
}

// pg_child_exec is the child side of pg_run: output to ctl.log, no
// inherited descriptors (a postmaster holding a test runner's pipe would
// keep that runner waiting), then the server's user, then exec.
static void
pg_child_exec(const weft_pg *pg, char *const argv[])
{
	char log[300];
	int  fd;

	snprintf(log, sizeof(log), "%s/ctl.log", pg->dir);
	if ((fd = open("/dev/null", O_RDONLY)) >= 0) {
		dup2(fd, 0);
	}
	if ((fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644)) >= 0) {
		dup2(fd, 1);
		dup2(fd, 2);
	}
	for (int i = 3; i < 1024; i++) {
		close(i);
	}
	if (chdir(pg->dir) != 0 && chdir("/") != 0) {
		_exit(126);
	}
	if (pg->user[0] != '\0' &&
	    (setgroups(0, NULL) != 0 || setgid(pg->gid) != 0 ||
	        setuid(pg->uid) != 0)) {
		_exit(126);
	}
	execv(argv[0], argv);
	_exit(127);
}

// pg_run runs the PostgreSQL program prog with args (NULL-terminated) and
// returns its exit status, or -1.
static int
pg_run(const weft_pg *pg, const char *prog, const char *const *args)
{
	char  path[400];
	char *argv[24];
	int   n = 0, st;
	pid_t pid;

	snprintf(path, sizeof(path), "%s/%s", pg->bin, prog);
	argv[n++] = path;
	for (; *args != NULL && n < 23; args++) {
		argv[n++] = (char *) *args;
	}
	argv[n] = NULL;
	if ((pid = fork()) < 0) {
		return (-1);
	}
	if (pid == 0) {
		pg_child_exec(pg, argv);
	}
	while (waitpid(pid, &st, 0) < 0) {
		if (errno != EINTR) {
			return (-1);
		}
	}
	return (WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}

static void
pg_dump_logs(const weft_pg *pg)
{
	char cmd[800];
	snprintf(cmd, sizeof(cmd),
	    "for f in '%s'/ctl.log '%s'/server.log; do [ -f \"$f\" ] && "
	    "{ echo \"== $f\"; tail -n 30 \"$f\"; }; done >&2",
	    pg->dir, pg->dir);
	weft_h_run(cmd, NULL);
}

static int
pg_ctl(const weft_pg *pg, const char *action)
{
	char data[300], log[300], opts[600];

	snprintf(data, sizeof(data), "%s/data", pg->dir);
	snprintf(log, sizeof(log), "%s/server.log", pg->dir);
	// No TCP listener: a port picked here could be taken before the
	// server binds it. The socket lives in our own directory.
	snprintf(opts, sizeof(opts), "-c listen_addresses='' -p %d -k %s/sock",
	    pg->port, pg->dir);
	if (strcmp(action, "stop") == 0) {
		const char *a[] = { "-D", data, "-w", "-t", "60", "-m", "fast",
			"stop", NULL };
		return (pg_run(pg, "pg_ctl", a));
	}
	const char *a[] = { "-D", data, "-l", log, "-w", "-t", "60", "-m",
		"fast", "-o", opts, action, NULL };
	return (pg_run(pg, "pg_ctl", a));
}

// pg_watchdog_main waits for EOF on fd: every writer (the test process and
// whatever it forked) is gone. Then it stops the server, hard, and removes
// the directory.
static void
pg_watchdog_main(const weft_pg *pg, int fd)
{
	char b;
	char pidfile[300], data[300];

	setsid();
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	for (int i = 3; i < 1024; i++) {
		if (i != fd) {
			close(i);
		}
	}
	for (;;) {
		ssize_t r = read(fd, &b, 1);
		if (r == 0 || (r < 0 && errno != EINTR)) {
			break;
		}
	}
	snprintf(pidfile, sizeof(pidfile), "%s/data/postmaster.pid", pg->dir);
	snprintf(data, sizeof(data), "%s/data", pg->dir);
	if (access(pidfile, F_OK) == 0) {
		const char *a[] = { "-D", data, "-w", "-t", "30", "-m",
			"immediate", "stop", NULL };
		pg_run(pg, "pg_ctl", a);
	}
	if (getenv("WEFT_TEST_KEEP") == NULL) {
		char *argv[] = { "/bin/rm", "-rf", (char *) pg->dir, NULL };
		execv(argv[0], argv);
	}
	_exit(0);
}

static int
pg_watchdog_start(weft_pg *pg)
{
	int   fds[2];
	pid_t pid;

	if (pipe(fds) != 0) {
		return (-1);
	}
	if ((pid = fork()) < 0) {
		close(fds[0]);
		close(fds[1]);
		return (-1);
	}
	if (pid == 0) {
		close(fds[1]);
		pg_watchdog_main(pg, fds[0]);
		_exit(0);
	}
	close(fds[0]);
	// Close-on-exec: only this process and its forks hold the pipe, never
	// a program they exec (and so never the postmaster).
	fcntl(fds[1], F_SETFD, FD_CLOEXEC);
	pg->wfd      = fds[1];
	pg->watchdog = pid;
	return (0);
}

// pg_user picks the user to run as: none unless we are root.
static int
pg_user(weft_pg *pg)
{
	const char    *name = getenv("WEFT_TEST_PG_RUNAS");
	struct passwd *pw;

	if (geteuid() != 0) {
		return (0);
	}
	name = name != NULL && name[0] != '\0' ? name : "nobody";
	if ((pw = getpwnam(name)) == NULL) {
		fprintf(stderr, "weft-pg: running as root and no user '%s' to "
		                "run PostgreSQL as (set WEFT_TEST_PG_RUNAS)\n",
		    name);
		return (-1);
	}
	snprintf(pg->user, sizeof(pg->user), "%s", name);
	pg->uid = pw->pw_uid;
	pg->gid = pw->pw_gid;
	return (0);
}

static int
pg_mkdirs(weft_pg *pg)
{
	char *dir = weft_h_tempdir_kept("pg");
	char  sock[300];

	snprintf(pg->dir, sizeof(pg->dir), "%s", dir);
	free(dir);
	snprintf(sock, sizeof(sock), "%s/sock", pg->dir);
	if (mkdir(sock, 0700) != 0) {
		return (-1);
	}
	if (pg->user[0] != '\0' &&
	    (chown(pg->dir, pg->uid, pg->gid) != 0 ||
	        chown(sock, pg->uid, pg->gid) != 0)) {
		fprintf(stderr, "weft-pg: chown %s: %s\n", pg->dir,
		    strerror(errno));
		return (-1);
	}
	return (0);
}

// pg_db_url writes the URL of database name: the server's socket directory
// as the host.
static void
pg_db_url(const weft_pg *pg, const char *name, char *url, size_t len)
{
	snprintf(url, len, "postgres://weft@/%s?host=%s/sock&port=%d", name,
	    pg->dir, pg->port);
}

// pg_exec_admin runs one statement on the "postgres" database.
static int
pg_exec_admin(const weft_pg *pg, const char *sql)
{
	char      ci[400];
	PGconn   *c;
	PGresult *r;
	int       rv = 0;

	snprintf(ci, sizeof(ci),
	    "host=%s/sock port=%d user=weft dbname=postgres connect_timeout=10",
	    pg->dir, pg->port);
	c = PQconnectdb(ci);
	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "weft-pg: connect: %s", PQerrorMessage(c));
		PQfinish(c);
		return (-1);
	}
	r = PQexec(c, sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		fprintf(stderr, "weft-pg: %s: %s", sql, PQerrorMessage(c));
		rv = -1;
	}
	PQclear(r);
	PQfinish(c);
	return (rv);
}

int
weft_pg_value(const char *url, const char *sql, const char *arg, char *out,
    size_t len)
{
	PGconn     *conn = PQconnectdb(url);
	const char *p[1] = { arg };
	PGresult   *r;
	int         rv = -1;

	if (PQstatus(conn) != CONNECTION_OK) {
		snprintf(out, len, "connect: %s", PQerrorMessage(conn));
		PQfinish(conn);
		return (-1);
	}
	r = PQexecParams(conn, sql, arg ? 1 : 0, NULL, p, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		snprintf(out, len, "%s: %s", sql, PQerrorMessage(conn));
	} else {
		snprintf(out, len, "%s", PQntuples(r) > 0 ? PQgetvalue(r, 0, 0) : "");
		rv = 0;
	}
	PQclear(r);
	PQfinish(conn);
	return (rv);
}

int
weft_pg_createdb(const weft_pg *pg, const char *name, char *url, size_t len)
{
	char sql[200];

	snprintf(sql, sizeof(sql), "CREATE DATABASE \"%s\"", name);
	if (pg_exec_admin(pg, sql) != 0) {
		return (-1);
	}
	pg_db_url(pg, name, url, len);
	return (0);
}

int
weft_pg_start(weft_pg *pg)
{
	char        data[300];
	const char *initdb[] = { "-D", data, "-U", "weft", "-A", "trust", "-E",
		"UTF8", "--no-locale", "--no-sync", NULL };

	memset(pg, 0, sizeof(*pg));
	pg->wfd   = -1;
	pg->owner = true;
	if (pg_find_bin(pg->bin, sizeof(pg->bin)) != 0 || pg_user(pg) != 0 ||
	    pg_mkdirs(pg) != 0 || pg_watchdog_start(pg) != 0) {
		goto fail;
	}
	snprintf(data, sizeof(data), "%s/data", pg->dir);
	if (pg_run(pg, "initdb", initdb) != 0) {
		fprintf(stderr, "weft-pg: initdb failed\n");
		goto fail;
	}
	pg->port    = WEFT_PG_PORT;
	pg->running = pg_ctl(pg, "start") == 0;
	if (!pg->running) {
		fprintf(stderr, "weft-pg: pg_ctl start failed\n");
		goto fail;
	}
	if (pg_exec_admin(pg, "CREATE DATABASE weft") != 0) {
		goto fail;
	}
	pg_db_url(pg, "weft", pg->url, sizeof(pg->url));
	return (0);
fail:
	pg_dump_logs(pg);
	weft_pg_stop(pg);
	return (-1);
}

const char *
weft_pg_url(const weft_pg *pg)
{
	return (pg->url);
}

void
weft_pg_stop(weft_pg *pg)
{
	int st;

	if (!pg->owner) {
		return;
	}
	if (pg->running) {
		pg_ctl(pg, "stop");
		pg->running = false;
	}
	// The watchdog sees EOF and removes the directory.
	if (pg->wfd >= 0) {
		close(pg->wfd);
		pg->wfd = -1;
	}
	if (pg->watchdog > 0) {
		waitpid(pg->watchdog, &st, 0);
		pg->watchdog = 0;
	}
	pg->owner = false;
}

int
weft_pg_restart(weft_pg *pg)
{
	if (pg_ctl(pg, "restart") != 0) {
		pg_dump_logs(pg);
		return (-1);
	}
	pg->running = true;
	return (0);
}

int
weft_pg_down(weft_pg *pg)
{
	if (pg_ctl(pg, "stop") != 0) {
		pg_dump_logs(pg);
		return (-1);
	}
	pg->running = false;
	return (0);
}

int
weft_pg_up(weft_pg *pg)
{
	if (pg_ctl(pg, "start") != 0) {
		pg_dump_logs(pg);
		return (-1);
	}
	pg->running = true;
	return (0);
}

void
weft_pg_export(const weft_pg *pg, const char *error)
{
	char port[16];

	if (pg == NULL) {
		setenv("WEFT_TEST_PG_ERROR", error ? error : "no server", 1);
		return;
	}
	snprintf(port, sizeof(port), "%d", pg->port);
	setenv("WEFT_TEST_PG_URL", pg->url, 1);
	setenv("WEFT_TEST_PG_DIR", pg->dir, 1);
	setenv("WEFT_TEST_PG_BINDIR", pg->bin, 1);
	setenv("WEFT_TEST_PG_PORT", port, 1);
	setenv("WEFT_TEST_PG_USER", pg->user, 1);
	unsetenv("WEFT_TEST_PG_ERROR");
}

int
weft_pg_import(weft_pg *pg)
{
	const char *err = getenv("WEFT_TEST_PG_ERROR");
	const char *v[5] = { getenv("WEFT_TEST_PG_URL"),
		getenv("WEFT_TEST_PG_DIR"), getenv("WEFT_TEST_PG_BINDIR"),
		getenv("WEFT_TEST_PG_PORT"), getenv("WEFT_TEST_PG_USER") };
	struct passwd *pw;

	memset(pg, 0, sizeof(*pg));
	pg->wfd = -1;
	if (err != NULL || v[0] == NULL || v[1] == NULL || v[2] == NULL ||
	    v[3] == NULL || v[4] == NULL) {
		fprintf(stderr, "weft-pg: %s\n",
		    err ? err : "no PostgreSQL test server exported");
		return (-1);
	}
	snprintf(pg->url, sizeof(pg->url), "%s", v[0]);
	snprintf(pg->dir, sizeof(pg->dir), "%s", v[1]);
	snprintf(pg->bin, sizeof(pg->bin), "%s", v[2]);
	pg->port = atoi(v[3]);
	snprintf(pg->user, sizeof(pg->user), "%s", v[4]);
	if (pg->user[0] != '\0' && (pw = getpwnam(pg->user)) != NULL) {
		pg->uid = pw->pw_uid;
		pg->gid = pw->pw_gid;
	}
	pg->running = true;
	return (0);
}

static weft_pg pg_shared;

void
weft_pg_shared_start(void)
{
	if (weft_pg_start(&pg_shared) != 0) {
		weft_pg_export(NULL,
		    "the PostgreSQL test server did not start (see above)");
		return;
	}
	weft_pg_export(&pg_shared, NULL);
}

void
weft_pg_shared_stop(void)
{
	weft_pg_stop(&pg_shared);
}
