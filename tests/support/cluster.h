// cluster: a real local cluster for end-to-end tests: a coordinator and
// workers started from the built binaries on loopback with free ports, a
// temporary database, and the CLI to drive it.
#ifndef WEFT_TEST_CLUSTER_H
#define WEFT_TEST_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "wire.h"

#define WEFT_CLUSTER_MAX_WORKERS 4

typedef struct weft_cluster {
	char  dir[512];        // temp dir: database, logs, scripts
	char  db[600];         // --db URL
	char  control[64], cluster[64], results[64], events[64];
	char  http[64];        // HOST:PORT of the dashboard and API
	pid_t coord;
	pid_t workers[WEFT_CLUSTER_MAX_WORKERS];
	int   nworkers;
	int   survey_ms;       // coordinator survey interval
	int   lost_after;      // --lost-after (0 = the coordinator's default)
	char  exec_allow[600]; // --exec-allow dir given to workers
	char  cookie[600];     // the cluster cookie (made by the coordinator);
	                       // WEFT_COOKIE_FILE names it for everything
	                       // the test starts
	char  tokens[700];     // --api-tokens file, "" = none
	char  token[128];      // token of the harness's own CLI calls, "" none
	const char *args[9];   // more coordinator arguments, NULL-terminated
	char  http_want[64];   // --http asked for ("" = 127.0.0.1:0)
	char  tls[600];        // "": plain tcp://; else a dir made by
	                       // weft_cluster_tls_certs: every URL is
	                       // tls+tcp://, every node and the CLI use
	                       // node.crt/node.key and ca.crt (mutual TLS),
	                       // HTTP is https://
	int64_t cli_limit_ms;  // > 0: a CLI call still running after this
	                       // long is killed (timeout(1)), so a hang
	                       // fails with the logs dumped, before the
	                       // test's own timeout kills it silently
} weft_cluster;

// Options of weft_cluster_start_opts; zero values are the defaults.
typedef struct weft_cluster_opts {
	int         nworkers;
	int         survey_ms;
	const char *tokens;  // text of an --api-tokens file, written mode 0600
	                     // into the cluster dir; NULL: no tokens
	const char *token;   // the token weft_cluster_cli passes (WEFT_TOKEN)
	const char *http;    // --http to ask for (default 127.0.0.1:0)
	const char *args[8]; // more coordinator arguments (borrowed: they
	                     // must outlive the cluster), NULL-terminated
	const char *db;      // --db URL (borrowed); NULL: a fresh database
} weft_cluster_opts;

// weft_cluster_start_opts is weft_cluster_start with options.
void weft_cluster_start_opts(weft_cluster *c, const weft_cluster_opts *o);

// weft_cluster_cli_token is weft_cluster_cli with token (NULL or "": no
// token at all) instead of the cluster's own.
int weft_cluster_cli_token(weft_cluster *c, const char *token, char **out,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

// weft_cluster_start starts a cluster on a fresh database: a new database
// on the PostgreSQL server WEFT_TEST_DB points at (the PostgreSQL variant
// of the suite), else a new SQLite file in the cluster's directory. Every
// socket is bound by the coordinator itself on port 0 (--ports-file). It starts a coordinator (survey_ms interval, 0 = 200) and
// nworkers workers and waits until all workers are alive.
void weft_cluster_start(weft_cluster *c, int nworkers, int survey_ms);

// weft_cluster_start_lost is weft_cluster_start with --lost-after n (0:
// the coordinator's default, which is what weft_cluster_start uses).
void weft_cluster_start_lost(
    weft_cluster *c, int nworkers, int survey_ms, int lost_after);

// weft_cluster_start_tls is weft_cluster_start with every socket on
// tls+tcp:// and mutual TLS: a fresh CA and node certificate are made in
// the cluster's directory (c->tls).
void weft_cluster_start_tls(weft_cluster *c, int nworkers, int survey_ms);

// weft_cluster_tls_certs makes DIR/ca.{key,crt} and DIR/NAME.{key,crt}
// (subjectAltName san) with scripts/tls-certs.sh; fails the test if
// openssl fails.
void weft_cluster_tls_certs(const char *dir, const char *name,
    const char *san);

// weft_cluster_tls_args writes the --tls-cert/--tls-key/--tls-ca flags of
// c (nothing when c->tls is "") into out.
void weft_cluster_tls_args(const weft_cluster *c, char *out, size_t len);

// weft_cluster_start_coord (re)starts only the coordinator. Its cluster
// cookie is <dir>/cookie (WEFT_COOKIE_FILE), never the user's own.
void weft_cluster_start_coord(weft_cluster *c);

// weft_cluster_start_worker starts worker i (name w<i>).
void weft_cluster_start_worker(weft_cluster *c, int i);

// weft_cluster_wait_workers waits until n workers are alive.
void weft_cluster_wait_workers(weft_cluster *c, int n);

// weft_cluster_stop stops everything (SIGTERM, then SIGKILL).
void weft_cluster_stop(weft_cluster *c);

// weft_cluster_cli runs `weft --coordinator ... ARGS` (a shell fragment)
// and returns its exit status; *out (malloc'd) gets stdout when not NULL.
int weft_cluster_cli(weft_cluster *c, char **out, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

// weft_cluster_http does one HTTP request with curl on the cluster's HTTP
// address: method, path, body data (NULL none; "@FILE" a file's bytes).
// Every request but GET says Content-Type: application/json, so the
// browser protections (415) do not answer first. Returns the status;
// *body gets the answer, and *headers (when not NULL) its header block.
int weft_cluster_http(weft_cluster *c, const char *method, const char *path,
    const char *data, char **body, char **headers);

// weft_cluster_cli_json runs the CLI with --json and parses the output;
// fails the test if the command fails or the output is not JSON.
json_t *weft_cluster_cli_json(weft_cluster *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

// weft_cluster_count_events counts the events of run (NULL: of any run or
// none) of one type in the log (through the CLI).
size_t weft_cluster_count_events(weft_cluster *c, const char *run,
    const char *type);

// weft_cluster_events returns the events of run id of one type, oldest
// first, as the CLI prints them (new reference).
json_t *weft_cluster_events(weft_cluster *c, const char *id, const char *type);

// weft_cluster_step returns step sid of status body run (borrowed), or
// NULL.
json_t *weft_cluster_step(json_t *run, const char *sid);

// weft_cluster_run_def writes definition text defjson to file in the
// cluster dir, starts a run of it (without waiting) and puts the run id in
// id (64 bytes).
void weft_cluster_run_def(weft_cluster *c, const char *file,
    const char *defjson, char *id);

// weft_cluster_run_end waits up to timeout_ms (scaled) until run id is no
// longer queued or running and returns its status body (new reference):
// the caller asserts on its status.
json_t *weft_cluster_run_end(weft_cluster *c, const char *id,
    int64_t timeout_ms);

// weft_cluster_write writes text into a file in the cluster dir and
// returns its path (static storage, overwritten by the next call).
const char *weft_cluster_write(weft_cluster *c, const char *name,
    const char *text);

// weft_cluster_coordinator_refuses starts a coordinator on a fresh
// SQLite database, every socket on loopback port 0, with more args (a
// shell fragment); it must end by itself within 20 s (one that starts is
// killed then). Returns its exit status; *out (malloc'd) gets its output.
int weft_cluster_coordinator_refuses(const char *args, char **out);

// weft_cluster_expect_flag_refused expects the coordinator, given flag
// with each of the n values in bad, to exit 2 saying want.
void weft_cluster_expect_flag_refused(const char *flag,
    const char *const *bad, size_t n, const char *want);

// weft_cluster_dump_logs prints the logs of every process (on failure).
void weft_cluster_dump_logs(weft_cluster *c);

// weft_cluster_wire readies w as a node of c named name: keyed with the
// cluster's cookie, so what it sends is taken and what it receives is
// verified. Finish with weft_wire_fini.
void weft_cluster_wire(weft_cluster *c, weft_wire *w, const char *name);

#endif
