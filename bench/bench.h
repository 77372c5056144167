// bench: what the files of weft-bench share: the options, the local cluster
// it starts (coordinator and two workers on loopback), the control client,
// the event watcher that sees runs end, and one repetition's figures.
#ifndef WEFT_BENCH_H
#define WEFT_BENCH_H

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>
#include <nng/nng.h>

#include "map.h"
#include "wire.h"

// Workloads, as bits of bench_opts.workloads.
enum bench_workload {
	BENCH_W1 = 0, // one run: root, 10,000 noop steps on it, a join
	BENCH_W2 = 1, // one run: a chain of 1,000 noop steps
	BENCH_W3 = 2, // 1,000 runs of a 4-step diamond, submitted at once
	// Scale (not in the default set; --workload picks them):
	BENCH_W4 = 3,  // one run: a map over --map-items noop items
	BENCH_W4E = 4, // the same map of echo items returning ~1 KiB each
	BENCH_W5 = 5,  // --queued-runs one-step runs queued with the workers
	               // stopped, the coordinator killed and restarted (its
	               // recovery measured), the workers started, drained
	BENCH_W6 = 6,  // one run: a layered DAG (BENCH_W6_STEPS noop steps)
	BENCH_W3S = 7, // W3 submitted one RunRequest per run over
	               // --submitters connections (W3 sends one batch)
	BENCH_CP = 8,  // one run: a chain of 10 x 200 ms sleeps beside 40
	               // x 50 ms sleeps, after a warm-up run (learned
	               // durations): the makespan under --order
	BENCH_NWORKLOADS
};

// The workloads run when --workload is not given.
#define BENCH_DEFAULT_SET                                              \
	((1u << BENCH_W1) | (1u << BENCH_W2) | (1u << BENCH_W3) |       \
	    (1u << BENCH_W3S))

#define BENCH_NWORKERS 2

// The command line.
typedef struct bench_opts {
	const char *db;         // --db URL; NULL: SQLite in the temp dir
	const char *slots;      // --slots for the workers; NULL: their default
	const char *queue;      // --queue for the workers; NULL: their default
	int         repeat;     // repetitions per workload (>= 1)
	unsigned    workloads;  // bit mask of (1 << enum bench_workload)
	int         submitters; // concurrent control connections (W3)
	int         timeout_s;  // deadline of one repetition, seconds
	bool        json;       // machine-readable output on stdout
	bool        keep;       // keep the temp dir (logs, database)
	bool        commit_hist; // time each commit with the preload shim
	int         map_items;   // W4/W4E: items of the map (100,000)
	int         queued_runs; // W5: runs queued (100,000)
	bool        probe;       // measure the machine's limits first
	bool        probe_only;  // ... and nothing else (no cluster)
	int         probe_fsyncs;      // durable writes the probe times
	int         probe_round_trips; // req/rep round trips it times
	const char *order;       // the coordinator's --order; NULL: its default
} bench_opts;

// A coordinator and its workers, started from the built binaries.
typedef struct bench_cluster {
	char  dir[512];        // temp dir: database, logs, commit log
	char  db[1024];        // --db URL the coordinator got
	char  control[64], cluster[64], results[64], events[64], http[64];
	char  ports[600]; // the coordinator's --ports-file
	char  commit_log[600]; // shim output file; "" when not recording
	const char *order;     // --order for the coordinator, or NULL
	pid_t coord;           // 0 when not running
	double base_rss_kb;    // the coordinator's RSS once it first answered
	pid_t workers[BENCH_NWORKERS];
} bench_cluster;

// Set by SIGINT/SIGTERM/SIGHUP: every wait gives up and cleanup runs.
extern volatile sig_atomic_t bench_stopping;

// ---- cluster.c ----

// bench_cluster_start creates a temp dir, starts the coordinator and the
// workers, and waits (bounded) until the coordinator answers and both
// workers are alive. On failure prints why (with log tails) to stderr,
// stops whatever it started and returns false; the dir is left for
// bench_cluster_stop to remove.
bool bench_cluster_start(bench_cluster *c, const bench_opts *o);

// bench_cluster_stop stops every process it started, by pid (SIGTERM, then
// SIGKILL after 5 s), and removes the temp dir unless keep. Safe to call
// on a half-started or zeroed cluster, and more than once.
void bench_cluster_stop(bench_cluster *c, bool keep);

// bench_cluster_dump_logs prints the tail of every log to stderr.
void bench_cluster_dump_logs(const bench_cluster *c);

// bench_cluster_cpu_ms returns the CPU time (user + system, ms) used so far
// by the coordinator (*coord) and by the workers together (*workers), read
// from /proc; 0 for a process that is gone.
void bench_cluster_cpu_ms(const bench_cluster *c, double *coord,
    double *workers);

// bench_cluster_rss_kb reads the coordinator's resident set now (*rss)
// and its peak since the last bench_cluster_reset_peak (*peak), in KiB;
// -1 when unknown.
void bench_cluster_rss_kb(const bench_cluster *c, double *rss, double *peak);

// bench_cluster_reset_peak starts a new peak RSS window of the coordinator.
void bench_cluster_reset_peak(const bench_cluster *c);

// bench_cluster_stop_workers stops the workers (SIGTERM, each waited
// for): queued work then waits for a worker.
void bench_cluster_stop_workers(bench_cluster *c);

// bench_cluster_start_workers starts the stopped workers again (same
// names, same spools) and waits (bounded) until they are alive.
bool bench_cluster_start_workers(bench_cluster *c, const bench_opts *o);

// bench_cluster_crash_restart kills the coordinator with SIGKILL, starts
// it again on the same store and addresses, and waits until it answers;
// *answered_ms: from the start to its first answer (recovery included).
bool bench_cluster_crash_restart(bench_cluster *c, int64_t *answered_ms);

// bench_self_cpu_ms returns the CPU time the bench process (all its
// threads, not its children) has used so far, in ms.
double bench_self_cpu_ms(void);

// ---- client.c: the control socket ----

typedef struct bench_client {
	nng_socket sock;       // req0, dialed
	bool       open;
	weft_wire  wire;
	int        timeout_ms; // send and reply timeout
} bench_client;

// bench_client_open opens a req0 socket and dials url (borrowed). Returns
// false (message in err) when it cannot.
bool bench_client_open(bench_client *c, const char *url, int timeout_ms,
    char *err, size_t errlen);

// bench_client_close closes the socket (safe on a closed client).
void bench_client_close(bench_client *c);

// bench_client_call sends req (borrowed) and returns the reply body (new
// reference; JSON null when empty), or NULL with the reason in err.
json_t *bench_client_call(bench_client *c, Weft__ControlRequest *req,
    char *err, size_t errlen);

// bench_client_define registers definition text (borrowed).
bool bench_client_define(bench_client *c, const char *text, char *err,
    size_t errlen);

// bench_client_run starts a run of the registered definition name and
// writes its id into id (idlen bytes).
bool bench_client_run(bench_client *c, const char *name, char *id,
    size_t idlen, char *err, size_t errlen);

// bench_client_run_batch starts n runs of the registered definition name
// in RunBatchRequests of at most WEFT_WIRE_RUN_BATCH_MAX runs and writes
// their ids into ids[0..n) (idlen bytes each); false when a request or
// any run is refused.
bool bench_client_run_batch(bench_client *c, const char *name, size_t n,
    char *ids, size_t idlen, char *err, size_t errlen);

// bench_client_info returns the coordinator's info body (new reference).
json_t *bench_client_info(bench_client *c, char *err, size_t errlen);

// bench_client_runs returns the runs of definition name (new reference, an
// array of at most limit runs).
json_t *bench_client_runs(bench_client *c, const char *name, uint32_t limit,
    char *err, size_t errlen);

// bench_client_status returns one run (new reference) or NULL.
json_t *bench_client_status(bench_client *c, const char *run_id, char *err,
    size_t errlen);

// ---- watch.c: run ends from the event stream ----

// How a run's end was seen.
typedef struct bench_end {
	int64_t mono_us;    // when the bench saw it (monotonic)
	bool    ok;         // run_succeeded
	bool    polled;     // seen by polling the store, not on the stream
} bench_end;

typedef struct bench_watch {
	nng_socket      sub;     // sub0 to the coordinator's events URL
	bool            open;    // sub and aio exist; the aio is receiving
	nng_aio        *aio;     // its callback takes every message
	pthread_mutex_t mx;      // guards everything below
	pthread_cond_t  cv;      // timed waits only (monotonic clock)
	weft_map        ended;   // run id -> bench_end * (owned)
	uint64_t        events;  // events received so far
	uint64_t        batches; // messages received so far
} bench_watch;

// bench_watch_start dials url and starts receiving.
bool bench_watch_start(bench_watch *w, const char *url, char *err,
    size_t errlen);

// bench_watch_stop stops receiving, closes the socket, frees the map.
// Safe after a failed bench_watch_start.
void bench_watch_stop(bench_watch *w);

// bench_watch_counts returns the events and messages received so far.
void bench_watch_counts(bench_watch *w, uint64_t *events, uint64_t *batches);

// bench_watch_wait waits until every run in ids (n, borrowed) has ended or
// deadline_us (monotonic) passes. When the stream shows nothing new for a
// while it polls the store for the missing runs through cl (nng pub/sub may
// drop under load). Fills *last_us with the latest end seen, *nfailed with
// runs that did not succeed and *polled with runs seen only by polling.
// Forgets the ids it reports. Returns false on timeout or interruption.
bool bench_watch_wait(bench_watch *w, bench_client *cl, char **ids, size_t n,
    int64_t deadline_us, int64_t *last_us, size_t *nfailed, size_t *polled);

// ---- workload.c ----

// One repetition of one workload, measured.
typedef struct bench_sample {
	double   wall_ms;       // first submit -> last run end seen by the bench
	double   steps_per_s;   // steps / wall
	double   store_ms;      // created_ms -> ended_ms in the store (W3: first
	                        // created -> last ended)
	double   run_ms_p50;    // median run duration in the store
	double   run_ms_max;    // longest run duration in the store
	double   submit_ms;     // first submit -> last submit answered
	uint64_t events;        // events written (store stats delta)
	uint64_t commits;       // commits (store stats delta)
	double   events_per_s;  // events / wall
	double   batch_mean;    // events / commits
	double   commit_ms_avg; // from the coordinator's own average (delta)
	double   commit_p50_ms; // from the shim; < 0 when not known
	double   commit_p99_ms;
	double   commit_max_ms;
	double   fsync_p50_ms;  // the COMMIT statement alone; < 0 when unknown
	double   fsync_p99_ms;
	uint64_t stream_events; // events the bench received on the stream
	double   coord_cpu_ms;  // CPU the coordinator used during the repetition
	double   workers_cpu_ms; // CPU both workers used
	double   bench_cpu_ms;  // CPU the bench itself used (its overhead)
	double   load1;         // 1-minute load average at the start (a busy
	                        // machine explains a slow sample)
	size_t   failed;        // runs that did not succeed
	size_t   polled;        // run ends seen only by polling
	double   peak_mb;       // coordinator peak RSS during the repetition
	// W5 only (< 0 otherwise):
	double   run_kib;       // coordinator RSS per queued run: the
	                        // restarted coordinator's, holding only
	                        // them, over a fresh one's (base_rss_kb)
	double   recover_ms;    // restart until the coordinator answers
	double   recover_peak_mb; // peak RSS of the restarted coordinator
	double   steady_mb;     // its RSS once it answers
	double   drain_ms;      // workers resumed -> last run ended
	// Pipelined group commit (info .stats engine_busy_us and
	// commit_busy_us; < 0 when the coordinator does not report them):
	double   engine_busy_ms; // engine thread working, waits excluded
	double   commit_busy_ms; // store thread inside weft_store_append
	double   overlap_ms;     // engine_busy + commit_busy - wall: > 0
	                         // means they ran at the same time; NAN
	                         // when unknown
} bench_sample;

// Everything a workload needs while it runs.
typedef struct bench_ctx {
	const bench_opts    *opts;
	const bench_cluster *cluster;
	bench_client        *client;  // main control connection
	bench_client        *subs;    // opts->submitters extra connections
	bench_watch         *watch;
	char                 tag[32]; // unique per bench process: names
} bench_ctx;

// bench_workload_name returns "W1", "W2" or "W3".
const char *bench_workload_name(enum bench_workload w);

// bench_workload_about returns a one-line description.
const char *bench_workload_about(enum bench_workload w);

// bench_workload_steps returns the steps executed per repetition.
size_t bench_workload_steps(enum bench_workload w);

// bench_workload_sizes takes the scale workloads' sizes from o
// (--map-items, --queued-runs); before any other bench_workload_*.
void bench_workload_sizes(const bench_opts *o);

// bench_workload_runs returns the runs per repetition.
size_t bench_workload_runs(enum bench_workload w);

// bench_workload_run runs repetition rep (from 1) of w and fills *s.
// Returns false, with the reason in err, when it could not measure.
bool bench_workload_run(bench_ctx *x, enum bench_workload w, int rep,
    bench_sample *s, char *err, size_t errlen);

// bench_sort sorts v[n] in ascending order.
void bench_sort(double *v, size_t n);

// bench_rank returns the nearest-rank percentile p (0..100) of sorted
// v[n], or -1 when n is 0.
double bench_rank(const double *v, size_t n, double p);

// ---- commit log (workload.c) ----

// bench_commit_log_size returns the commit log's size in bytes (0 if none).
long bench_commit_log_size(const bench_cluster *c);

// ---- probe.c: the machine's limits ----

// What one durable write and one loopback round trip take here.
typedef struct bench_probe {
	int    fsyncs;        // 4 KiB appends, each followed by fdatasync
	double fsync_p50_us, fsync_p99_us;
	int    round_trips;   // nng req0/rep0 over tcp://127.0.0.1, 64 bytes
	double rtt_p50_us, rtt_p99_us;
	double limit_step_us; // fsync p50 + 2 x rtt p50: W2's floor per step
} bench_probe;

// bench_probe_run measures fsyncs durable writes to a file in dir
// (borrowed; the file is removed) and round_trips req/rep round trips
// between two sockets of this process. Returns false, the reason in err,
// when it cannot.
bool bench_probe_run(const char *dir, int fsyncs, int round_trips,
    bench_probe *p, char *err, size_t errlen);

// bench_probe_json returns p as a JSON object (new reference).
json_t *bench_probe_json(const bench_probe *p);

// bench_probe_print prints p as the "probe:" lines of the tables.
void bench_probe_print(const bench_probe *p);

#endif
