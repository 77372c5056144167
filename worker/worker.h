// worker: the weft worker node as a library — the public API of
// libweft-worker (installed as <weft/worker.h>, with <weft/err.h>; link
// with `pkg-config --cflags --libs weft-worker`). It answers discovery
// surveys, accepts step assignments on its dispatch socket, runs them in a
// pool of slots and reports results through an outbox until the
// coordinator acks. Custom step types are C functions: either register
// them on a worker you open yourself (weft_worker_open, _register, _start,
// _drain, _close), or hand them to weft_worker_main, which is the whole
// weft-worker program (its flags, cookie, TLS, signals and drain) with
// your types added. examples/custom-worker/ shows both.
#ifndef WEFT_WORKER_H
#define WEFT_WORKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "err.h"

#define WEFT_WORKER_DEFAULT_JOIN "tcp://127.0.0.1:7421"
#define WEFT_WORKER_DEFAULT_LISTEN "tcp://127.0.0.1:0"
#define WEFT_WORKER_DEFAULT_SLOTS 4
#define WEFT_WORKER_DEFAULT_QUEUE 1024 // most accepted beyond the slots
#define WEFT_WORKER_MAX_TYPES 64     // registered step types, built-ins included
#define WEFT_WORKER_BATCH_MAX 512    // results per ResultBatch
#define WEFT_WORKER_ACK_TIMEOUT 2000 // ms to wait for a ResultAck
#define WEFT_WORKER_DRAIN_TIMEOUT 30000 // ms running attempts may finish in
#define WEFT_WORKER_SPOOL_DEFAULT "default" // cfg.spool: the default place

typedef struct weft_worker  weft_worker;
typedef struct weft_attempt weft_attempt;

// Configuration; every pointer is borrowed by weft_worker_open (copied).
typedef struct weft_worker_cfg {
	const char        *join_url;   // coordinator cluster URL; NULL: default
	const char        *listen_url; // dispatch listener; NULL: default
	const char        *name;       // node name; NULL: "<hostname>-<pid>"
	uint32_t           slots;      // concurrent attempts; 0: default
	int32_t            queue;      // attempts held waiting beyond slots;
	                               // < 0: default (1024)
	const char *const *exec_allow; // directories exec may run from
	size_t             n_exec_allow;
	const char        *spool;      // spool directory (durable outbox:
	                               // DIR/spool.db); NULL: none;
	                               // WEFT_WORKER_SPOOL_DEFAULT: under
	                               // $WEFT_HOME/worker/<name>
	int64_t            drain_timeout_ms; // weft_worker_drain's default;
	                                     // 0: 30 s
	int64_t            ack_timeout_ms; // resend after this; 0: default
	uint32_t           batch_max;  // results per batch; 0: default
	// The cluster cookie (borrowed, read by the caller): messages are
	// tagged and verified with it. NULL: untagged (--insecure only).
	// cookie and tls are internal types: a program embedding the worker
	// gets both from weft-worker's flags through weft_worker_main.
	const struct weft_cookie *cookie;
	int                clock_skew_ms; // 0: WEFT_CLOCK_SKEW_MS
	// Called (from a worker thread) when the coordinator refuses this
	// node, e.g. its name is taken; the worker stops taking work.
	void (*on_refused)(void *arg, const char *reason);
	void *on_refused_arg;
	struct weft_tls   *tls;        // --tls-* files (common/tls.h), for
	                               // tls+tcp:// URLs; retained until
	                               // close; NULL: TLS off
	// Fields added later go last, so the ones before keep their places.
	int64_t            spool_after_ms; // a result is spooled when its
	                                   // attempt ran this long, or
	                                   // when it waited this long for
	                                   // its ack; 0: 100 ms (outbox.c)
	int32_t            reply_wait_ms; // --reply-wait: how long the
	                                  // answer to a one-step batch waits
	                                  // for the step's result to carry
	                                  // it (dispatch.c); 0: 5 ms, < 0:
	                                  // answer at once
} weft_worker_cfg;

// The default of --reply-wait, in ms.
#define WEFT_WORKER_REPLY_WAIT_MS 5

// What a handler knows about the attempt it runs. Borrowed: valid only
// during the handler call.
typedef struct weft_step_ctx {
	const char   *run_id;
	const char   *step_id;
	uint32_t      attempt;         // 1-based attempt number
	const char   *idempotency_key; // "run/step": the same for every
	                               // attempt of the step (of the item)
	uint32_t      timeout_ms;      // start-to-close; 0 = none
	int64_t       deadline_ms;     // monotonic ms; 0 = none
	weft_attempt *att;             // opaque; for the weft_step_* helpers
	                               // and weft_attempt_heartbeat
	uint32_t      heartbeat_timeout_ms; // heartbeat at least this often
	                                    // (well within: beats travel once
	                                    // a survey interval); 0 = none
} weft_step_ctx;

// weft_step_fn runs one attempt. input is the step's input document
// (borrowed, read-only: its "input" and "params" are one object shared by
// every attempt of the run on this worker, on other pool threads too —
// copy what you need to change). On success it returns 0 and sets *output to a new reference
// (NULL means JSON null). On failure it returns non-zero and sets *error to
// a malloc'd message the caller frees. Runs on a pool thread; it should
// check weft_step_aborted or wait with weft_step_sleep / weft_step_abort_fd.
typedef int (*weft_step_fn)(void *arg, const weft_step_ctx *ctx,
    json_t *input, json_t **output, char **error);

// Counters for tests and WorkerInfo.
typedef struct weft_worker_stats {
	uint32_t queued;       // accepted, waiting for a slot
	uint32_t running;      // executing now
	uint32_t held;         // results in the outbox, not yet acked
	uint64_t batches_sent; // ResultBatch sends, resends included
	uint64_t batches_acked;
	uint64_t dropped;      // messages this worker dropped (any socket)
	uint64_t spooled;      // results written to the spool
	uint64_t replied;      // results sent in an AssignReply
	uint64_t replied_acked; // ... acked by an AssignBatch
} weft_worker_stats;

// weft_worker_open makes a worker from cfg (borrowed) with every built-in
// step type registered, but opens no socket yet. *out is freed with
// weft_worker_close. Returns WEFT_EINVAL when an --exec-allow directory
// cannot be resolved or a setting is out of range (logged). Any thread.
weft_err weft_worker_open(weft_worker **out, const weft_worker_cfg *cfg);

// weft_worker_register adds step type `type` (copied) run by fn with arg
// (retained until close). Only before weft_worker_start. Returns WEFT_EEXIST
// for a type already registered, WEFT_ESTATE after start, WEFT_EINVAL when
// the table is full or the name is empty.
weft_err weft_worker_register(
    weft_worker *w, const char *type, weft_step_fn fn, void *arg);

// weft_worker_start opens the dispatch listener, the discovery respondent
// and the results sender, and starts the slot threads. On failure
// everything it opened is closed again; weft_worker_close still frees w.
weft_err weft_worker_start(weft_worker *w);

// weft_worker_drain stops w taking work and lets it go, gracefully: the
// coordinator is told (a Goodbye) and gets back at once the attempts
// accepted but not started; running ones may finish for timeout_ms (<= 0:
// the cfg's drain_timeout_ms), then are aborted and reported lost, never
// failed; every result is sent and acked, then a last Goodbye. Blocks
// until then, or until WORKER_FLUSH_MS past the deadline when the
// coordinator does not ack: WEFT_ETIMEDOUT (unacked results stay in the
// spool, if any). Call weft_worker_close after. Not from a handler.
weft_err weft_worker_drain(weft_worker *w, int64_t timeout_ms);

// weft_worker_stop closes every socket, aborts running attempts (killing
// exec process groups; their ends are not reported: the coordinator finds
// them lost) and joins every thread. Results not yet acked stay in the
// spool, if any, else are dropped. Idempotent; not from a handler or nng
// callback.
void weft_worker_stop(weft_worker *w);

// weft_worker_close stops w if needed and frees it (NULL is fine).
void weft_worker_close(weft_worker *w);

// weft_worker_name returns the node name (owned by w).
const char *weft_worker_name(const weft_worker *w);

// weft_worker_incarnation returns the number that tells this process from
// an earlier or later one under the same name (random per open).
uint64_t weft_worker_incarnation(const weft_worker *w);

// weft_worker_dispatch_url returns the bound dispatch URL after start (the
// real port, never ":0"), or "" before. Owned by w.
const char *weft_worker_dispatch_url(const weft_worker *w);

// weft_worker_stats_get fills *st with current counters. Thread-safe.
void weft_worker_stats_get(weft_worker *w, weft_worker_stats *st);

// A custom step type for weft_worker_main.
typedef struct weft_step_type {
	const char  *type; // the definition's "type"
	weft_step_fn fn;
	void        *arg;  // passed to fn; retained for the worker's life
} weft_step_type;

// weft_worker_main is the weft-worker program: it parses argv (the same
// flags as weft-worker; --help lists them), loads the cluster cookie and
// TLS files, registers types[0..ntypes) besides the built-ins, runs until
// SIGINT/SIGTERM, then drains. Returns the exit status (0 clean, 1 error,
// 2 bad usage, 3 refused by the coordinator). Call it from main, once. It
// owns the process's SIGINT, SIGTERM and SIGUSR2 (the stop watchdog's
// stack dumps), and after a drain that left nothing unacked it may end
// the process itself, with that same status, when closing down takes
// over 2 s (nng 1.5.2 can hang in nng_close).
int weft_worker_main(
    int argc, char **argv, const weft_step_type *types, size_t ntypes);

// weft_step_aborted reports whether the attempt was aborted.
bool weft_step_aborted(const weft_step_ctx *ctx);

// weft_step_sleep waits ms milliseconds. Returns WEFT_OK when they passed,
// WEFT_ECLOSED when the attempt was aborted first and WEFT_ETIMEDOUT when
// the attempt's deadline came first.
weft_err weft_step_sleep(const weft_step_ctx *ctx, int64_t ms);

// weft_step_abort_fd returns a descriptor (owned by the attempt) that
// becomes readable once the attempt is aborted, for poll loops; -1 if no
// descriptor could be made.
int weft_step_abort_fd(const weft_step_ctx *ctx);

// weft_attempt_heartbeat tells the coordinator that attempt a (ctx->att;
// borrowed) is alive and, when progress_json is not NULL, what its latest
// progress is: a JSON text of any value (copied; at most 4096 bytes once
// compact). Beat and progress travel in the worker's next survey answer;
// the coordinator records a changed progress as a step_progress event at
// most every 2 s. A step whose definition sets heartbeat_timeout_ms is
// timed out (then retried by its policy) when it goes that long without
// a heartbeat: call this well within it. Returns WEFT_OK, or WEFT_EINVAL
// when progress_json is not JSON or too long (the beat still counts; the
// progress stays as it was). Any thread, while the handler runs.
weft_err weft_attempt_heartbeat(weft_attempt *a, const char *progress_json);

// weft_step_set_exec records an exit code and stderr tail (borrowed,
// copied) for the StepResult of this attempt.
void weft_step_set_exec(
    const weft_step_ctx *ctx, int exit_code, const char *stderr_tail);

// Built-in step types. Every worker registers them at open; arg is the
// worker for exec, unused otherwise. noop's output is null and it reads
// nothing of its input: a type run by weft_step_noop gets JSON null for
// its input, which is not decoded.
int weft_step_noop(void *arg, const weft_step_ctx *ctx, json_t *input,
    json_t **output, char **error);
int weft_step_echo(void *arg, const weft_step_ctx *ctx, json_t *input,
    json_t **output, char **error);
int weft_step_pass(void *arg, const weft_step_ctx *ctx, json_t *input,
    json_t **output, char **error);
int weft_step_sleep_fn(void *arg, const weft_step_ctx *ctx, json_t *input,
    json_t **output, char **error);
int weft_step_fail(void *arg, const weft_step_ctx *ctx, json_t *input,
    json_t **output, char **error);
int weft_step_exec(void *arg, const weft_step_ctx *ctx, json_t *input,
    json_t **output, char **error);

#endif
