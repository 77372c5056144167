// engine: the coordinator: one engine thread that owns every run, fed by a
// mailbox, writing each batch of events to the store before anything else
// may see it (the write-ahead rule), then publishing and answering.
#ifndef WEFT_ENGINE_H
#define WEFT_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cookie.h"
#include "err.h"

typedef struct weft_engine_cfg {
	const char *name;        // node name of this coordinator
	const char *db_url;      // sqlite:PATH or postgres://...
	const char *control_url; // rep0 listen: CLI and tools
	const char *cluster_url; // surveyor0 listen: workers dial it
	const char *results_url; // rep0 listen: workers send results
	const char *events_url;  // pub0 listen: the event stream
	const char *http;        // HOST:PORT: dashboard, API, ws stream; "" none
	const char *dashboard;   // directory of the dashboard's files, or NULL
	const char *http_allow_host; // more Host names to accept, comma-separated
	const char *api_tokens;  // token file (NAME ROLE TOKEN lines), or NULL
	bool        insecure;    // --insecure: start off loopback unprotected
	int         survey_ms;   // survey interval (default 1000)
	int         lost_after;  // missed surveys before a worker is lost (3)
	int64_t     unschedulable_after_ms; // a ready step's type without a
	                          // live advertiser this long: one
	                          // step_unschedulable (default 60000)
	// The cluster cookie (borrowed, read at open): every message to and
	// from workers is tagged and verified with it. NULL: untagged, for
	// --insecure only.
	const struct weft_cookie *cookie;
	int clock_skew_ms; // replay window of message timestamps (30000)
	// The key run secrets are sealed under in the store (common/seal.h):
	// weft_cookie_derive(cookie, "secrets") or from --secret-key-file.
	// Without one, a run that carries secrets is refused.
	uint8_t     secret_key[WEFT_KEY_LEN];
	bool        has_secret_key;
	struct weft_tls *tls;    // --tls-* files (common/tls.h; retained);
	                         // NULL: TLS off, tls+tcp:// URLs refused
	// The database registry ($WEFT_HOME/databases, store/registry.h):
	// a recorded database that is missing or replaced is refused. NULL:
	// no check.
	const char *db_registry;
	bool        db_init;        // --init: accept (and record) a new one
	// An unavailable store at open (PostgreSQL down, a full disk) is not
	// a failure: open returns, and the engine thread keeps connecting
	// with backoff while /health says why. Off: open fails.
	bool        wait_for_store;
	uint64_t max_output;     // --max-output: most bytes of a step's or
	                         // map item's output (JSON text); 0 = the
	                         // default, WEFT_RUN_MAX_OUTPUT_DEFAULT
	int64_t retain_ms;       // --retain: delete runs ended this long ago,
	                         // ms; 0 = keep forever. A definition's
	                         // "retain" overrides it for its runs.
	// The clock from the open on, recovery included (borrowed, copied
	// at open); NULL: the system's. weft_engine_set_clock changes it
	// later.
	const struct weft_engine_clock *clock;
	uint32_t max_depth;      // --max-depth: most levels of child runs
	                         // under a run (sub-workflows); 0 = the
	                         // default, WEFT_SUBWF_DEPTH_DEFAULT
	int     def_cache;       // --def-cache: most definitions kept
	                         // compiled (entries; 0 = the default),
	                         // those of live runs kept even past it
	// --test-clock (tests only, docs/testing.md): the engine's clock is
	// the system's plus an offset, test_clock_ms to begin with, that a
	// ClockRequest moves forward; off, ClockRequest is refused.
	bool    test_clock;
	int64_t test_clock_ms;
	int64_t idempotency_window_ms; // --idempotency-window: how long a
	                         // run request's idempotency key answers
	                         // the run it made, ms; 0 = the default
	                         // WEFT_IDEMPOTENCY_WINDOW_DEFAULT
	int64_t projection_lag_ms; // --projection-lag: how long a step's
	                         // transitions on the way may wait to be
	                         // written to the steps table (store.h);
	                         // 0 = the default WEFT_PROJECTION_LAG_MS,
	                         // < 0 = none
	// Scheduling (sched): --max-running-runs (0 = no limit), --limit
	// TYPE=N as {type: N} (retained), --priority-aging-ms (0 = off)
	// and --order fifo (else critical path first once durations are
	// known).
	uint32_t max_running_runs;
	json_t  *type_limits;
	int64_t  priority_aging_ms;
	bool     order_fifo;
} weft_engine_cfg;

// The default of --idempotency-window: 24 hours, in ms.
#define WEFT_IDEMPOTENCY_WINDOW_DEFAULT (24 * 3600 * 1000LL)
// How long a step row may be held back by default (--projection-lag).
#define WEFT_PROJECTION_LAG_MS 1000

typedef struct weft_engine weft_engine;

// The default of --def-cache, in definitions: a few hundred distinct
// workflows stay compiled; a typical definition costs tens of KB.
#define WEFT_DEF_CACHE_DEFAULT 256

// The default of --max-depth: a run, its child, ... eight levels down.
#define WEFT_SUBWF_DEPTH_DEFAULT 8

// The engine's clock: wall time stamps events and is the run model's
// "now"; monotonic time orders and fires timers, so a wall clock stepped
// by NTP fires nothing early or late. Tests set a fake one.
typedef struct weft_engine_clock {
	void   *arg;
	int64_t (*wall_ms)(void *arg);
	int64_t (*mono_ms)(void *arg);
} weft_engine_clock;

// weft_engine_set_clock replaces the system clock (before start).
void weft_engine_set_clock(weft_engine *e, const weft_engine_clock *c);


// weft_engine_open opens the store (running migrations and recovering
// unfinished runs). cfg is copied; the strings it points to are
// borrowed and must outlive the engine. On failure err
// (errlen bytes) says what and where.
weft_err weft_engine_open(weft_engine **out, const weft_engine_cfg *cfg,
    char *err, size_t errlen);

// weft_engine_failed tells whether the engine thread gave up for a reason
// of its own: a store it waited for turned out to be refused (another
// database, a schema too new). It has logged why and sent the process
// SIGTERM; the caller exits non-zero.
bool weft_engine_failed(weft_engine *e);

// weft_engine_start starts the engine, query and survey threads.
weft_err weft_engine_start(weft_engine *e);

// weft_engine_stop asks the threads to finish and waits for them. Any
// thread but the engine's own.
void weft_engine_stop(weft_engine *e);

// weft_engine_close stops (if needed), closes sockets and store, and frees
// everything (NULL is fine).
void weft_engine_close(weft_engine *e);

#endif
