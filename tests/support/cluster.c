// cluster: start and drive a real local cluster for end-to-end tests.
#include "cluster.h"

#include <criterion/criterion.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "clock.h"
#include "harness.h"
#include "pg.h"
#include "cookie.h"

// cluster_read_ports reads the addresses the coordinator bound (its
// --ports-file) into c; false while the file is not there yet.
static bool
cluster_read_ports(weft_cluster *c, const char *path)
{
	weft_h_ports p;
	int          rv = weft_h_read_ports(path, &p);

	cr_assert_neq(rv, 1, "%s: incomplete", path);
	if (rv != 0) {
		return (false);
	}
	memcpy(c->control, p.control, sizeof(c->control));
	memcpy(c->cluster, p.cluster, sizeof(c->cluster));
	memcpy(c->results, p.results, sizeof(c->results));
	memcpy(c->events, p.events, sizeof(c->events));
	memcpy(c->http, p.http, sizeof(c->http));
	return (true);
}

void
weft_cluster_tls_certs(const char *dir, const char *name, const char *san)
{
	char cmd[2048];

	snprintf(cmd, sizeof(cmd),
	    "'%s/scripts/tls-certs.sh' ca '%s' >/dev/null 2>&1 && "
	    "'%s/scripts/tls-certs.sh' node '%s' '%s' '%s' >/dev/null 2>&1",
	    WEFT_SRC_DIR, dir, WEFT_SRC_DIR, dir, name, san);
	cr_assert_eq(weft_h_run(cmd, NULL), 0, "cannot make certificates: %s",
	    cmd);
}

void
weft_cluster_tls_args(const weft_cluster *c, char *out, size_t len)
{
	out[0] = '\0';
	if (c->tls[0] != '\0') {
		snprintf(out, len,
		    "--tls-cert '%s/node.crt' --tls-key '%s/node.key' "
		    "--tls-ca '%s/ca.crt'",
		    c->tls, c->tls, c->tls);
	}
}

// cluster_tls_argv appends c's --tls-* flags to argv at *n.
static void
cluster_tls_argv(const weft_cluster *c, char **argv, int *n)
{
	static char cert[700], key[700], ca[700];

	if (c->tls[0] == '\0') {
		return;
	}
	snprintf(cert, sizeof(cert), "%s/node.crt", c->tls);
	snprintf(key, sizeof(key), "%s/node.key", c->tls);
	snprintf(ca, sizeof(ca), "%s/ca.crt", c->tls);
	argv[(*n)++] = "--tls-cert";
	argv[(*n)++] = cert;
	argv[(*n)++] = "--tls-key";
	argv[(*n)++] = key;
	argv[(*n)++] = "--tls-ca";
	argv[(*n)++] = ca;
}

// cluster_pick_ports gives every socket of a first start its own port,
// below the ephemeral range (weft_h_listen_port): a restart listens on the
// same ones again, and the workers know them.
static void
cluster_pick_ports(weft_cluster *c)
{
	const char *scheme = c->tls[0] != '\0' ? "tls+tcp" : "tcp";

	snprintf(c->control, sizeof(c->control), "%s://127.0.0.1:%d", scheme,
	    weft_h_listen_port());
	snprintf(c->cluster, sizeof(c->cluster), "%s://127.0.0.1:%d", scheme,
	    weft_h_listen_port());
	snprintf(c->results, sizeof(c->results), "%s://127.0.0.1:%d", scheme,
	    weft_h_listen_port());
	snprintf(c->events, sizeof(c->events), "%s://127.0.0.1:%d", scheme,
	    weft_h_listen_port());
	if (c->http_want[0] != '\0') {
		snprintf(c->http, sizeof(c->http), "%s", c->http_want);
	} else {
		snprintf(c->http, sizeof(c->http), "127.0.0.1:%d",
		    weft_h_listen_port());
	}
}

// cluster_spawn_coord starts the coordinator process; ports is the path of
// its --ports-file.
static void
cluster_spawn_coord(weft_cluster *c, const char *ports)
{
	char  log[700], survey[16], lost[16];
	char *argv[40];
	int   n = 0;

	snprintf(survey, sizeof(survey), "%d", c->survey_ms);
	snprintf(lost, sizeof(lost), "%d", c->lost_after);
	snprintf(log, sizeof(log), "%s/coordinator.log", c->dir);
	unlink(ports);
	argv[n++] = "weft-coordinator";
	argv[n++] = "--db";
	argv[n++] = c->db;
	argv[n++] = "--control";
	argv[n++] = c->control;
	argv[n++] = "--cluster";
	argv[n++] = c->cluster;
	argv[n++] = "--results";
	argv[n++] = c->results;
	argv[n++] = "--events";
	argv[n++] = c->events;
	argv[n++] = "--http";
	argv[n++] = c->http;
	argv[n++] = "--survey-ms";
	argv[n++] = survey;
	if (c->lost_after > 0) {
		argv[n++] = "--lost-after";
		argv[n++] = lost;
	}
	argv[n++] = "--ports-file";
	argv[n++] = (char *) ports;
	argv[n++] = "--cookie-file";
	argv[n++] = c->cookie;
	if (c->tokens[0] != '\0') {
		argv[n++] = "--api-tokens";
		argv[n++] = c->tokens;
	}
	for (int i = 0; c->args[i] != NULL && i < 8; i++) {
		argv[n++] = (char *) c->args[i];
	}
	cluster_tls_argv(c, argv, &n);
	argv[n]  = NULL;
	c->coord = weft_h_spawn(argv, log);
}

void
weft_cluster_start_coord(weft_cluster *c)
{
	char ports[700];
	bool first = c->control[0] == '\0';

	snprintf(ports, sizeof(ports), "%s/ports.json", c->dir);
	// A port can still be taken between the pick and the listen (another
	// test picked it too): a coordinator that could not listen is started
	// again, on new ports the first time, on the same ones after.
	for (int attempt = 0;; attempt++) {
		if (first) {
			cluster_pick_ports(c);
		}
		cluster_spawn_coord(c, ports);
		// Ready when it has written its addresses and answers.
		int64_t deadline = weft_clock_mono_ms() + weft_h_timeout_ms(15000);
		while (!cluster_read_ports(c, ports) ||
		    weft_cluster_cli(c, NULL, "info") != 0) {
			if (!weft_h_alive(c->coord) && attempt < 5 &&
			    weft_h_run_fmt(NULL, "tail -n 5 '%s/coordinator.log' | "
			                         "grep -q 'Address in use'",
			        c->dir) == 0) {
				break;
			}
			if (weft_clock_mono_ms() > deadline ||
			    !weft_h_alive(c->coord)) {
				weft_cluster_dump_logs(c);
				cr_assert_fail("coordinator did not start");
			}
			weft_clock_sleep_ms(20);
		}
		if (weft_h_alive(c->coord)) {
			return;
		}
		fprintf(stderr, "cluster: the coordinator could not listen "
		                "(attempt %d); starting it again\n", attempt + 1);
		weft_clock_sleep_ms(200);
	}
}

void
weft_cluster_start_worker(weft_cluster *c, int i)
{
	char  log[700], name[16];
	char *argv[24] = { "weft-worker", "--join", c->cluster, "--name", name,
		"--slots", "4", "--exec-allow", c->exec_allow, "--cookie-file",
		c->cookie, NULL };
	int   n        = 11;

	if (c->tls[0] != '\0') {
		argv[n++] = "--listen";
		argv[n++] = "tls+tcp://127.0.0.1:0";
		cluster_tls_argv(c, argv, &n);
		argv[n] = NULL;
	}
	snprintf(name, sizeof(name), "w%d", i);
	snprintf(log, sizeof(log), "%s/%s.log", c->dir, name);
	c->workers[i] = weft_h_spawn(argv, log);
	if (i >= c->nworkers) {
		c->nworkers = i + 1;
	}
}

static int
cluster_alive_workers(weft_cluster *c)
{
	json_t *ws = NULL;
	char   *out;
	int     n = 0;
	size_t  k;
	json_t *w;

	if (weft_cluster_cli(c, &out, "workers --json") == 0) {
		ws = json_loads(out, 0, NULL);
	}
	free(out);
	json_array_foreach (ws, k, w) {
		const char *st = json_string_value(json_object_get(w, "state"));
		n += st != NULL && strcmp(st, "alive") == 0;
	}
	json_decref(ws);
	return (n);
}

void
weft_cluster_wait_workers(weft_cluster *c, int n)
{
	int64_t deadline = weft_clock_mono_ms() + weft_h_timeout_ms(15000);
	while (cluster_alive_workers(c) < n) {
		if (weft_clock_mono_ms() > deadline) {
			weft_cluster_dump_logs(c);
			cr_assert_fail("workers did not join");
		}
		weft_clock_sleep_ms(50);
	}
}

void
weft_cluster_start(weft_cluster *c, int nworkers, int survey_ms)
{
	weft_cluster_start_lost(c, nworkers, survey_ms, 0);
}

// cluster_db picks the cluster's database: a new SQLite file in its
// directory, or on PostgreSQL (WEFT_TEST_DB) a new database on the
// exported test server, so that no test sees another's runs.
static void
cluster_db(weft_cluster *c, const char *db)
{
	static int n;
	weft_pg    pg;
	char       name[64];

	if (db == NULL || db[0] == '\0') {
		snprintf(c->db, sizeof(c->db), "sqlite:%s/weft.db", c->dir);
		return;
	}
	snprintf(c->db, sizeof(c->db), "%s", db);
	if (getenv("WEFT_TEST_PG_DIR") == NULL) {
		return; // a server of the test's own, fresh already
	}
	cr_assert_eq(weft_pg_import(&pg), 0, "no PostgreSQL test server");
	snprintf(name, sizeof(name), "t%d_%d", (int) getpid(), ++n);
	cr_assert_eq(weft_pg_createdb(&pg, name, c->db, sizeof(c->db)), 0,
	    "cannot create database %s", name);
}

// cluster_start starts a cluster set up in c beyond dir and db.
static void
cluster_start(weft_cluster *c, int nworkers, int survey_ms)
{
	c->survey_ms = survey_ms > 0 ? survey_ms : 200;
	weft_cluster_start_coord(c);
	for (int i = 0; i < nworkers; i++) {
		weft_cluster_start_worker(c, i);
	}
	weft_cluster_wait_workers(c, nworkers);
}

// cluster_init empties c and gives it a directory, a database and the
// path of its cookie (made by its coordinator, named by WEFT_COOKIE_FILE
// for everything the test starts); with tls, a CA and a node certificate.
static void
cluster_init(weft_cluster *c, bool tls)
{
	char *dir = weft_h_tempdir("e2e");

	memset(c, 0, sizeof(*c));
	snprintf(c->dir, sizeof(c->dir), "%s", dir);
	free(dir);
	if (tls) {
		snprintf(c->tls, sizeof(c->tls), "%s/tls", c->dir);
		weft_cluster_tls_certs(c->tls, "node",
		    "IP:127.0.0.1,DNS:localhost");
	}
	cluster_db(c, getenv("WEFT_TEST_DB"));
	snprintf(c->exec_allow, sizeof(c->exec_allow), "%s/bin", c->dir);
	mkdir(c->exec_allow, 0755);
	snprintf(c->cookie, sizeof(c->cookie), "%s/cookie", c->dir);
	weft_h_group(); // its set-up of the environment first
	setenv("WEFT_COOKIE_FILE", c->cookie, 1);
}

void
weft_cluster_start_opts(weft_cluster *c, const weft_cluster_opts *o)
{
	cluster_init(c, false);
	if (o->db != NULL) {
		snprintf(c->db, sizeof(c->db), "%s", o->db);
	}
	if (o->tokens != NULL) {
		const char *path = weft_cluster_write(c, "tokens", o->tokens);
		cr_assert_eq(chmod(path, 0600), 0, "chmod %s", path);
		snprintf(c->tokens, sizeof(c->tokens), "%s", path);
	}
	if (o->token != NULL) {
		snprintf(c->token, sizeof(c->token), "%s", o->token);
	}
	if (o->http != NULL) {
		snprintf(c->http_want, sizeof(c->http_want), "%s", o->http);
	}
	for (int i = 0; i < 8 && o->args[i] != NULL; i++) {
		c->args[i] = o->args[i];
	}
	cluster_start(c, o->nworkers, o->survey_ms);
}

void
weft_cluster_start_lost(
    weft_cluster *c, int nworkers, int survey_ms, int lost_after)
{
	cluster_init(c, false);
	c->lost_after = lost_after;
	cluster_start(c, nworkers, survey_ms);
}

void
weft_cluster_start_tls(weft_cluster *c, int nworkers, int survey_ms)
{
	cluster_init(c, true);
	cluster_start(c, nworkers, survey_ms);
}

void
weft_cluster_stop(weft_cluster *c)
{
	for (int i = 0; i < c->nworkers; i++) {
		weft_h_kill(c->workers[i], SIGTERM);
		c->workers[i] = 0;
	}
	weft_h_kill(c->coord, SIGTERM);
	c->coord = 0;
	weft_h_group_end(); // whatever else the test started
	if (getenv("WEFT_TEST_KEEP") == NULL) {
		char cmd[700];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", c->dir);
		weft_h_run(cmd, NULL);
	}
}

static int
cluster_vcli(weft_cluster *c, const char *token, char **out, const char *fmt,
    va_list ap)
{
	char args[4096], cmd[7000], tls[2200];

	vsnprintf(args, sizeof(args), fmt, ap);
	weft_cluster_tls_args(c, tls, sizeof(tls));
	// The token goes by the environment, the way a user keeps it out of
	// ps; "env -u" makes sure one from the test's environment does not.
	char limit[64] = "";
	int  rv;
	if (c->cli_limit_ms > 0) {
		snprintf(limit, sizeof(limit), "timeout -k 5 %lld ",
		    (long long) (c->cli_limit_ms + 999) / 1000);
	}
	snprintf(cmd, sizeof(cmd),
	    "%s%s%s WEFT_TIMEOUT_MS=%lld %s'%s' --coordinator %s %s %s",
	    token != NULL && token[0] != '\0' ? "WEFT_TOKEN='" : "env -u WEFT_TOKEN",
	    token != NULL && token[0] != '\0' ? token : "",
	    token != NULL && token[0] != '\0' ? "'" : "",
	    (long long) weft_h_timeout_ms(10000), limit, weft_h_bin("weft"),
	    c->control, tls, args);
	rv = weft_h_run(cmd, out);
	if (c->cli_limit_ms > 0 && (rv == 124 || rv == 137)) {
		fprintf(stderr, "cluster: the CLI was still running after %lld "
		                "ms, killed: %s\n",
		    (long long) c->cli_limit_ms, args);
		weft_cluster_dump_logs(c);
	}
	return (rv);
}

int
weft_cluster_cli_token(weft_cluster *c, const char *token, char **out,
    const char *fmt, ...)
{
	va_list ap;
	int     rv;
	va_start(ap, fmt);
	rv = cluster_vcli(c, token, out, fmt, ap);
	va_end(ap);
	return (rv);
}

int
weft_cluster_cli(weft_cluster *c, char **out, const char *fmt, ...)
{
	va_list ap;
	int     rv;
	va_start(ap, fmt);
	rv = cluster_vcli(c, c->token, out, fmt, ap);
	va_end(ap);
	return (rv);
}

int
weft_cluster_http(weft_cluster *c, const char *method, const char *path,
    const char *data, char **body, char **headers)
{
	char  cmd[8192], out[700], hdr[700];
	char *code = NULL;
	int   status;

	snprintf(out, sizeof(out), "%s/http.out", c->dir);
	snprintf(hdr, sizeof(hdr), "%s/http.hdr", c->dir);
	snprintf(cmd, sizeof(cmd),
	    "curl -s -m 30 %s%s%s-o '%s' -w '%%{http_code}' -X %s %s%s%s%s "
	    "'http://%s%s'",
	    headers ? "-D '" : "", headers ? hdr : "", headers ? "' " : "", out,
	    method,
	    strcmp(method, "GET") != 0 ? "-H 'Content-Type: application/json' "
	                               : "",
	    data ? "--data-binary '" : "", data ? data : "", data ? "'" : "",
	    c->http, path);
	if (weft_h_run(cmd, &code) != 0) {
		weft_cluster_dump_logs(c); // is the coordinator still there?
		cr_assert_fail("curl failed: %s", cmd);
	}
	status = atoi(code);
	free(code);
	if (headers != NULL) {
		snprintf(cmd, sizeof(cmd), "cat '%s'", hdr);
		weft_h_run(cmd, headers);
	}
	snprintf(cmd, sizeof(cmd), "cat '%s'", out);
	weft_h_run(cmd, body);
	return (status);
}

json_t *
weft_cluster_cli_json(weft_cluster *c, const char *fmt, ...)
{
	va_list      ap;
	char         fmt2[1024];
	char        *out;
	json_t      *v;
	json_error_t je;
	int          rv;

	snprintf(fmt2, sizeof(fmt2), "%s --json", fmt);
	va_start(ap, fmt);
	rv = cluster_vcli(c, c->token, &out, fmt2, ap);
	va_end(ap);
	v = json_loads(out, 0, &je);
	if (v == NULL) {
		weft_cluster_dump_logs(c);
		cr_assert_fail("cli (rc %d) printed no JSON: %s\n%s", rv, je.text, out);
	}
	free(out);
	return (v);
}

json_t *
weft_cluster_events(weft_cluster *c, const char *id, const char *type)
{
	char   *out, *line, *save = NULL;
	json_t *arr = json_array();

	cr_assert_eq(weft_cluster_cli(c, &out, "events --run %s --type %s", id,
	                 type),
	    0);
	for (line = strtok_r(out, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		json_t *ev = json_loads(line, 0, NULL);
		cr_assert_not_null(ev, "not JSON: %s", line);
		json_array_append_new(arr, ev);
	}
	free(out);
	return (arr);
}

json_t *
weft_cluster_step(json_t *run, const char *sid)
{
	size_t  k;
	json_t *s;

	json_array_foreach (json_object_get(run, "steps"), k, s) {
		if (strcmp(json_string_value(json_object_get(s, "id")), sid) == 0) {
			return (s);
		}
	}
	return (NULL);
}

size_t
weft_cluster_count_events(weft_cluster *c, const char *run, const char *type)
{
	char  *out;
	size_t n = 0;

	cr_assert_eq(weft_cluster_cli(c, &out, "events%s%s --type %s --limit 10000",
	                 run != NULL ? " --run " : "", run != NULL ? run : "", type),
	    0);
	for (char *p = out; (p = strchr(p, '\n')) != NULL; p++) {
		n++;
	}
	free(out);
	return (n);
}

json_t *
weft_cluster_run_end(weft_cluster *c, const char *id, int64_t timeout_ms)
{
	int64_t deadline = weft_clock_mono_ms() + weft_h_timeout_ms(timeout_ms);
	json_t *run;

	for (;;) {
		const char *st;
		run = weft_cluster_cli_json(c, "status %s", id);
		st  = json_string_value(json_object_get(run, "status"));
		if ((strcmp(st, "running") != 0 && strcmp(st, "queued") != 0) ||
		    weft_clock_mono_ms() > deadline) {
			return (run);
		}
		json_decref(run);
		weft_clock_sleep_ms(100);
	}
}

void
weft_cluster_run_def(weft_cluster *c, const char *file, const char *defjson,
    char *id)
{
	const char *def = weft_cluster_write(c, file, defjson);
	char       *out;

	cr_assert_eq(weft_cluster_cli(c, &out, "run '%s'", def), 0);
	snprintf(id, 64, "%.*s", (int) strcspn(out, "\n"), out);
	free(out);
}

const char *
weft_cluster_write(weft_cluster *c, const char *name, const char *text)
{
	static char path[1024];
	FILE       *f;

	snprintf(path, sizeof(path), "%s/%s", c->dir, name);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
	return (path);
}

void
weft_cluster_dump_logs(weft_cluster *c)
{
	char cmd[800];
	snprintf(cmd, sizeof(cmd),
	    "for f in '%s'/*.log; do echo \"== $f\"; tail -n 40 \"$f\"; done >&2",
	    c->dir);
	weft_h_run(cmd, NULL);
}

void
weft_cluster_wire(weft_cluster *c, weft_wire *w, const char *name)
{
	weft_cookie cookie;
	char        err[512];

	cr_assert_eq(weft_crypto_init(), 0);
	cr_assert_eq(weft_cookie_load(&cookie, c->cookie, false, err,
	                 sizeof(err)),
	    WEFT_OK, "%s", err);
	weft_wire_init(w, name);
	weft_wire_set_key(w, &cookie, WEFT_CLOCK_SKEW_MS);
	weft_cookie_clear(&cookie);
}

int
weft_cluster_coordinator_refuses(const char *args, char **out)
{
	char *dir = weft_h_tempdir("refuses");
	char  cmd[2048];
	int   rv;

	snprintf(cmd, sizeof(cmd),
	    "cd '%s' && timeout 20 '%s' --db sqlite:%s/w.db --control "
	    "tcp://127.0.0.1:0 --cluster tcp://127.0.0.1:0 --results "
	    "tcp://127.0.0.1:0 --events tcp://127.0.0.1:0 --http 127.0.0.1:0 %s "
	    "2>&1",
	    dir, weft_h_bin("weft-coordinator"), dir, args);
	rv = weft_h_run(cmd, out);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	weft_h_run(cmd, NULL);
	free(dir);
	return (rv);
}

void
weft_cluster_expect_flag_refused(const char *flag, const char *const *bad,
    size_t n, const char *want)
{
	for (size_t k = 0; k < n; k++) {
		char  args[128];
		char *out = NULL;
		snprintf(args, sizeof(args), "%s '%s'", flag, bad[k]);
		cr_expect_eq(weft_cluster_coordinator_refuses(args, &out), 2,
		    "%s %s", flag, bad[k]);
		cr_expect(out != NULL && strstr(out, want) != NULL, "%s %s: %s",
		    flag, bad[k], out);
		free(out);
	}
}
