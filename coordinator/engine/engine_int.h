// engine_int: the engine's internals shared by engine.c (the loop),
// sched.c (workers, ready queues, timers) and control.c (control
// requests); io/ reads them too (it sits above the engine). Not a public
// API. The engine reaches io only through e->io (io.h).
#ifndef WEFT_ENGINE_INT_H
#define WEFT_ENGINE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <nng/nng.h>

#include "def.h"
#include "engine.h"
#include "io.h"
#include "mailbox.h"
#include "map.h"
#include "metrics.h"
#include "readyq.h"
#include "run.h"
#include "store.h"
#include "wire.h"

// The error of every step of a run whose sealed secrets did not open on
// recovery (control_open_secrets logs the run and the reason).
#define ENGINE_SECRET_ERR                                                  \
	"secret cannot be decrypted: wrong cookie/secret key (restart the " \
	"coordinator with the right one, then retry the run)"

typedef struct weft_engine weft_engine;

// A batch of assignments in flight to one worker.
typedef struct assign_item {
	char     run_id[WEFT_ID_LEN + 1];
	weft_ref unit;
	uint32_t attempt;
} assign_item;

typedef struct assign_op {
	weft_engine *eng;
	void        *io;    // io's own (the server that sent it)
	weft_peer   *peer;
	nng_ctx      ctx;
	nng_aio     *send; // no callback: finishes inline when a pipe is ready
	nng_aio     *aio;  // the answer's receive
	assign_item *items; // owned
	size_t       nitems;
	int          result; // nng result of the exchange
	nng_msg     *reply;  // the worker's answer when result == 0
} assign_op;

// A dispatch connection to one worker (req0 dialer). Never freed while the
// engine runs: a worker that comes back reuses it.
struct weft_peer {
	char       name[64];
	char       url[256];
	nng_socket sock;
	bool       open;
	int        inflight_ops; // assign ops not yet answered (engine thread)
};

// ---- mail ----

enum mail_kind {
	MAIL_CONTROL,     // a control request (env, actor)
	MAIL_RESULTS,     // a ResultBatch (env, actor)
	MAIL_WORKER_INFO, // a survey answer (env, round)
	MAIL_SURVEY_END,  // a survey round closed (round)
	MAIL_ASSIGN,      // an assign exchange finished (op)
	MAIL_METRICS,     // render /metrics (to.http)
	MAIL_STOP,        // shut down
	MAIL_GOODBYE,     // a stopping worker's Goodbye (env, actor)
	MAIL_COMMITTED,   // the store thread finished a batch (a wake-up)
};

typedef struct engine_mail {
	weft_mail       node;
	enum mail_kind  kind;
	Weft__Envelope *env;   // decoded message (owned), or NULL
	reply_to        to;    // where the reply goes
	assign_op      *op;
	uint64_t        round;
	char            peer[64]; // survey answers: the worker's address as seen
} engine_mail;

// ---- sched: workers, ready queues, timers ----

enum worker_state {
	WORKER_UNKNOWN, // named by recovered attempts, not heard from yet
	WORKER_ALIVE,
	WORKER_LOST,
	WORKER_DRAINING, // said goodbye: no new work; its running attempts go
	                 // on, and it is still lost if it stops answering
	WORKER_LEFT,     // said its last goodbye: gone, nothing lost by it
};

typedef struct weft_worker_rec {
	char              name[64];
	char              url[256];
	json_t           *types;     // array of step type names
	uint32_t          slots;
	uint32_t          capacity;  // slots + queue: most attempts it accepts
	uint32_t          inflight;  // our dispatched + running attempts on it
	uint32_t          reported_running;
	uint64_t          last_round; // last survey round it answered
	int64_t           joined_ms, seen_ms;
	enum worker_state state;
	bool              draining_told; // worker_draining written
	bool              shared_input;  // takes Assignment.shared (else
	                                 // whole input documents: older)
	// Which process holds the name: the incarnation of its messages
	// (0 until heard from). Another incarnation claiming the name while
	// this one answers surveys is refused (node_conflict); one that keeps
	// answering while this one stays silent for a round takes it over.
	uint64_t          incarnation;
	uint64_t          pending_inc;   // a newcomer under this name
	uint64_t          pending_round; // the round it first answered
	uint64_t          pending_last;  // the last round it answered
	char              pending_addr[256];
	char              other[96];     // "NAME (another incarnation)"
	weft_peer         peer;
	weft_map          missing; // "run/unit/attempt" we hold in flight on it
	                           // that it did not list -> survey round first
	                           // missing (as a pointer-sized integer)
	// Assignments chosen, sent after the commit of the batch that
	// recorded them: the first nsealed belong to the batch in flight to
	// the store (engine_submit), the rest to the one being computed.
	assign_item      *batch;
	Weft__Assignment **batch_msgs;
	size_t            nbatch, capbatch, nsealed;
	// Results it sent in AssignReplies, applied: acked in its next
	// AssignBatch (AssignBatch.acked), sealed and sent like the
	// assignments, so an ack never leaves before the commit of the batch
	// that applied its result.
	Weft__ResultRef **acks;
	size_t            nacks, capacks, nacks_sealed;
} weft_worker_rec;

// One entry of a ready queue: a run (referenced) and a step.
typedef struct ready_ent {
	weft_run *run;
	weft_ref  unit;
} ready_ent;

// The ready steps of one step type, and how long that type's attempts take.
typedef struct ready_queue {
	weft_readyq heap;   // by priority, critical path, age (readyq.h)
	uint32_t    running; // attempts of the type dispatched, not ended
	uint32_t    limit;   // --limit TYPE=N: most running at once, 0 none
	double     ewma_ms; // moving average of attempt durations
	bool       timed;   // ewma_ms holds at least one observation
	int64_t    unadvertised_ms; // wall ms since no live worker advertises
	                            // the type, 0 while one does
	bool       reported; // step_unschedulable written for its queue
	uint64_t   enqueued; // entries ever added: new ones since `checked`
	uint64_t   checked;  // are reported at the next check
} ready_queue;

enum timer_kind {
	TIMER_RETRY,
	TIMER_STEP_TIMEOUT,
	TIMER_RUN_TIMEOUT,
	TIMER_SCHEDULE, // a ready step's schedule_timeout_ms
	TIMER_HOLD,     // a delay or sleep_until step's deadline (holds.c)
	TIMER_START,    // a scheduled run's start_at (a delayed start)
};

typedef struct timer_ent {
	int64_t         due;   // monotonic ms: the heap's order
	int64_t         at_ms; // wall ms, as the run model asked
	enum timer_kind kind;
	weft_run       *run;   // referenced
	weft_ref        unit;  // step -1 for the run's own timer
	uint32_t        attempt;
} timer_ent;

// ---- the engine ----

// A compiled definition in the engine's cache (its step index is the
// definition's own: weft_def_find). Entries no live run uses sit on the
// idle list, least recently used first; past --def-cache entries the
// first ones are evicted and loaded again from the store when asked for.
typedef struct def_entry {
	weft_def         *def;
	char              key[256]; // "name@version", its key in e->defs
	char              hash[2 * 32 + 1]; // content hash (hex) in
	                                    // e->def_hashes
	int               refs;     // live runs using it; evicted only at 0
	struct def_entry *prev, *next; // on the idle list while refs == 0
} def_entry;

// A reply held until the batch that caused it is committed.
typedef struct held_reply {
	reply_to to;
	nng_msg *msg;
} held_reply;

// A batch handed to the store thread (engine.c, "the pipelined commit"):
// what it writes, and everything that waits for it to be durable.
typedef struct engine_batch {
	weft_out    out;     // its events (their data) and effects
	weft_event *evs;     // the store's view of out.events, numbered
	size_t      n;
	char      **texts;   // 3n strings engine_number made
	held_reply *held;    // replies released with it
	size_t      nheld, capheld;
	weft_run  **pins;    // runs its events and effects name: each holds
	size_t      npins, cappins; // a reference until the release
	uint64_t    gen;     // its number, for weft_run.pin_gen
	bool        written; // the store holds it (set by the store thread)
	weft_dur_rows *durations; // learned durations written with it
	                          // (learn.c), NULL none
	size_t      early;   // > 0: evs[0, early) commit first and its
	                     // assignments go then (engine_split)
	bool        early_sent; // they went (engine thread)
} engine_batch;

struct weft_engine {
	weft_engine_cfg cfg;
	char            node[64];
	weft_wire       wire;
	weft_mailbox    mailbox;
	pthread_t       thread;
	bool            started;
	_Atomic bool    stopping;

	// Store: the engine's connection, and the query thread's.
	weft_store  *store;
	weft_store  *qstore;
	weft_mailbox qmailbox;
	pthread_t    qthread;

	// The membership list for gossip: the engine writes it, the survey
	// (io/) reads it.
	pthread_mutex_t members_lock;
	json_t         *members; // gossip list (guarded by members_lock)
	// Nodes refused, told in the next surveys: {name, incarnation (a
	// decimal string), reason, until (round)} (guarded by members_lock).
	json_t         *refusals;
	// What the query thread needs to say why ready steps wait (waiting.h),
	// refreshed each survey round and when a worker joins (guarded by
	// waits_lock): {"types": {T: {"advertised", "since_ms", "queued",
	// "free", "workers"}}, "deadlines": {"RUN/UNIT": schedule timeout
	// wall ms}}.
	pthread_mutex_t waits_lock;
	json_t         *waits;

	// State (engine thread only).
	weft_map     runs;      // run id -> weft_run * (active or ending)
	weft_map     defs;      // "name@version" -> def_entry *
	weft_map     latest;    // name -> def_entry * (highest version)
	weft_map     def_hashes; // content hash -> def_entry * (the newest
	                         // version with that body)
	def_entry   *idle_head, *idle_tail; // entries with refs 0, LRU first
	weft_map     workers;   // name -> weft_worker_rec *
	weft_map     queues;    // step type -> ready_queue *
	timer_ent   *timers;    // binary min-heap on at_ms
	size_t       ntimers, captimers;
	uint64_t     next_event_id;
	uint64_t     round;     // last survey round closed
	weft_io      io;        // the network, registered by io/
	weft_engine_clock clock; // wall for events, monotonic for timers
	int64_t      now_ms;    // the iteration's clock readings: wall,
	int64_t      now_mono;  // and monotonic
	weft_out     out;
	size_t       applied;   // effects of out already applied (engine_apply)
	held_reply  *held;
	size_t       nheld, capheld;
	weft_run   **reap;      // ended runs to free at the iteration's end
	size_t       nreap, capreap;
	bool         deferred;  // e->out holds a batch whose commit waits

	// The pipelined commit (engine.c): at most one batch in flight to
	// the store thread while the engine computes the next one. The
	// engine thread owns `inflight` and `spare`; commit_lock guards the
	// hand-over (job, done, down, exit) between the two threads.
	engine_batch   *inflight; // handed to the store thread, not released
	engine_batch   *spare;    // a released batch, kept for its capacity
	uint64_t        batch_gen;
	bool            committer_on; // the store thread runs
	size_t          inline_max; // smaller batches commit inline
	                            // (ENGINE_INLINE_MAX; tests set 0)
	pthread_t       committer;
	pthread_mutex_t commit_lock;
	pthread_cond_t  commit_cv;  // job handed over, exit asked
	pthread_cond_t  done_cv;    // job done, or the store went down
	engine_batch   *commit_job; // for the store thread (guarded)
	bool            commit_done; // inflight is durable or given up
	bool            commit_early; // inflight's first part is durable
	bool            commit_down; // the store thread is retrying
	bool            commit_exit;
	int64_t         wait_us;   // engine thread: time spent awaiting
	                           // commits, subtracted from busy time
	_Atomic uint64_t engine_busy_us; // engine thread at work (not
	                                 // waiting for mail or a commit)
	_Atomic uint64_t commit_busy_us; // store thread in weft_store_append
	// The projection lag (store.h): a reader that must see every step
	// event asks (lag_asked, ticket) and waits on lag_cv until the engine
	// has written the held rows (lag_served, under commit_lock).
	_Atomic uint64_t lag_asked;
	uint64_t         lag_served;
	int64_t          lag_retry_ms; // engine thread: a failed write of
	                               // the held rows waits until then
	pthread_cond_t   lag_cv;

	// Retention (retain.c), engine thread only.
	int64_t      retain_due;  // monotonic ms of the next sweep batch
	int64_t      retain_min;  // shortest retain in force, ms; 0 = none
	struct retain_job *jobs;  // weft runs delete requests, oldest first
	size_t       njobs, capjobs;

	// Counters (engine thread writes; others read loosely).
	_Atomic uint64_t steps_dispatched, steps_succeeded, steps_failed;
	_Atomic uint64_t results_received, batches_committed;
	_Atomic uint64_t events_committed;
	_Atomic bool     store_ok;
	// Why the store is unavailable ("" while it is fine), for /health
	// and `weft info` (guarded by store_lock; engine_store_state).
	pthread_mutex_t  store_lock;
	char             store_error[512];
	// The store and qstore are open: the query thread may use qstore.
	// False while a coordinator started with the store away connects.
	_Atomic bool     store_ready;
	_Atomic bool     failed;  // weft_engine_failed
	pthread_t        opener;  // the thread that opened the engine (main)
	int64_t          check_due; // monotonic ms of the next store check
	// Mail that arrived during an outage and waits for the commit
	// (engine_park): each worker's latest survey answer and the finished
	// assign exchanges, in the order they came, then the latest survey
	// end; taken before new mail, so no worker is missed because the
	// engine could not look.
	weft_mail       *parked;
	weft_mail      **parked_tail;
	struct engine_mail *parked_end;
	// Result batches taken from the mailbox and not applied yet, oldest
	// first: an iteration applies at most ENGINE_RESULTS_BUDGET step
	// results, after every other kind of mail (engine_iteration).
	weft_mail       *carry;
	weft_mail      **carry_tail;
	bool             results_held; // the last iteration took no results:
	                               // it answered control requests alone
	_Atomic int64_t  ops_live; // assign ops allocated, not yet freed
	_Atomic uint64_t last_event_id; // last committed event id
	weft_metrics     metrics;
	// Hold steps (wait, delay, sleep_until) made ready and not started
	// yet: the dispatch pass starts them (holds.c). Referenced.
	ready_ent       *holds;
	size_t           nholds, capholds;
	// Cron schedules (cron.c): name -> cron_sched *. Engine thread.
	weft_map         schedules;
	// --test-clock: ms added to the system clock's wall and monotonic
	// readings (a ClockRequest adds more); 0 otherwise.
	_Atomic int64_t  clock_offset;
	// Idempotency keys of the runs made since start (idem.c): key ->
	// idem_ent *, pruned of expired keys as it grows (engine thread).
	weft_map         idem;
	size_t           idem_prune_at; // prune when idem.count reaches it
	// Scheduling (sched): concurrency limits on runs (admit.c) and
	// learned step durations (learn.c); their own state.
	struct admit_state *admit;
	struct learn_state *learn;
};

// cron.c: cron schedules and the test clock (model/cron.h).
// cron_clock_install replaces the system clock with the offset one when
// cfg.test_clock is on (at open); cron_recover loads the schedules after
// recovery and fires what was missed while down (their catchup);
// cron_turn fires the schedules that are due (each iteration);
// cron_request answers a ScheduleRequest, cron_clock_request a
// ClockRequest; cron_fini frees the schedules. Engine thread.
void cron_clock_install(weft_engine *e);
void cron_recover(weft_engine *e, int64_t now);
void cron_turn(weft_engine *e, int64_t now);
void cron_request(weft_engine *e, engine_mail *m, int64_t now);
void cron_clock_request(weft_engine *e, engine_mail *m);
void cron_fini(weft_engine *e);

// control.c: control_run_one creates the run rq (borrowed) asks for,
// as a RunRequest does (quiet: no RUN-START line); its id into id, and
// *existed set when its idempotency key named a run made before (that
// run's id, nothing created). 0 or the weft_err code with the reason in
// err; nothing created then.
int control_run_one(weft_engine *e, const Weft__RunRequest *rq, int64_t now,
    bool quiet, char id[WEFT_ID_LEN + 1], bool *existed, char *err,
    size_t errlen);

// admit.c: concurrency limits on runs (model/admission.h). admit_key renders
// def's concurrency key against input and params (borrowed): malloc'd, or
// NULL (err set when it does not render; not set when def has none).
// admit_run starts queued run r now when every limit has room and nobody
// waits (at_once), else queues it for the admission pass; admit_turn is
// that pass (when something changed); admit_count counts a run that
// started otherwise (a retried run); admit_release, at a run's end, frees
// its place or takes it off the queue. admit_status (query thread) adds
// a queued run's run-level waiting_for; admit_gauges (any thread) returns
// the gauges /metrics shows (new ref).
void  admit_init(weft_engine *e);
void  admit_fini(weft_engine *e);
char *admit_key(const weft_def *def, json_t *input, json_t *params,
     char *err, size_t errlen);
void  admit_run(weft_engine *e, weft_run *r, int64_t now, bool at_once);
void  admit_turn(weft_engine *e, int64_t now);
void  admit_count(weft_engine *e, weft_run *r);
void  admit_release(weft_engine *e, weft_run *r);
void  admit_status(weft_engine *e, json_t *run);
json_t *admit_gauges(weft_engine *e);

// learn.c: learned step durations (model/durations.h). learn_observe adds
// a success of step `step` of r that took ms; learn_rank is the unit's
// critical-path rank (0 under --order fifo or without history);
// learn_take_dirty returns the rows changed since the last call (free
// with weft_dur_rows_free; NULL none) for the batch being flushed; learn_load reads the store's;
// learn_refresh_eta recomputes the running runs' ETAs (each survey round);
// learn_status (query thread) adds "eta_ms" to a status body.
void     learn_init(weft_engine *e);
void     learn_fini(weft_engine *e);
void     learn_observe(weft_engine *e, weft_run *r, long step, int64_t ms);
int64_t  learn_rank(weft_engine *e, weft_run *r, long step);
weft_dur_rows *learn_take_dirty(weft_engine *e);
weft_err learn_load(weft_engine *e);
void     learn_refresh_eta(weft_engine *e, int64_t now);
void     learn_status(weft_engine *e, json_t *run);

// holds.c: the steps the coordinator runs itself (model/hold.h).
// holds_enqueue notes ready unit u of a hold step (in place of the ready
// queue); holds_start starts what was noted (the dispatch pass);
// holds_signal answers a SignalRequest; holds_restore re-arms, after
// recovery, the timers of r's hold units in flight from their
// step_started events; holds_fini frees the list. Engine thread.
void holds_enqueue(weft_engine *e, weft_run *r, weft_ref u);
void holds_start(weft_engine *e, int64_t now);
void holds_signal(weft_engine *e, engine_mail *m);
void holds_restore(weft_engine *e, weft_run *r);
void holds_fini(weft_engine *e);

// subwf.c: sub-workflows, the "workflow" steps (model/hold.h). subwf_start
// starts ready workflow unit u of r (renders its `with`, creates the child
// run, links both; refusals fail the unit); subwf_run_ended tells a child's
// parent that it ended; subwf_abort cancels the child of a workflow unit
// whose attempt ended; subwf_lifecycle pauses or resumes r's live children
// (and theirs); subwf_recover links, after recovery, workflow units in
// flight to their children (from child_started); subwf_check_def refuses
// at define time a child definition that is not registered. Engine
// thread, but subwf_status: the query thread, adds "parent" and the steps'
// "child_run" to a status body.
void subwf_start(weft_engine *e, weft_run *r, weft_ref u, int64_t now);
void subwf_run_ended(weft_engine *e, weft_run *child, int64_t now);
void subwf_abort(weft_engine *e, weft_run *r, weft_ref u);
void subwf_lifecycle(weft_engine *e, weft_run *r, bool pause);
void subwf_recover(weft_engine *e, int64_t now);
bool subwf_check_def(weft_engine *e, const weft_def *def, char *err,
    size_t errlen);
void subwf_status(weft_engine *e, json_t *run);

// engine.c
// engine_lag_barrier (the query thread) returns once the step rows the
// store held back when it was called are written (the projection lag,
// store.h), or after 5 s: a read of the steps table after it sees every
// step event published before it.
void engine_lag_barrier(weft_engine *e);

// weft_engine_set_io registers the network (io/ does, or a test's fake);
// NULL takes it back (replies and events then go nowhere).
void weft_engine_set_io(weft_engine *e, const weft_io *io);
// engine_iteration is one turn of the engine thread's loop: take the
// mail (a list, or NULL), fire due timers, dispatch, commit, release.
// The engine tests call it directly, on their own clock.
void engine_iteration(weft_engine *e, weft_mail *mail);
// engine_has_carry says result batches wait for a later iteration (each
// takes a bounded share, after the other mail): the loop must not sleep.
bool engine_has_carry(const weft_engine *e);
// engine_committer_start starts the store thread (weft_engine_start does;
// the engine tests may, to run their iterations pipelined);
// engine_committer_stop ends it, idle (nothing in flight).
void engine_committer_start(weft_engine *e);
void engine_committer_stop(weft_engine *e);
// engine_quiesce waits until no batch is in flight to the store, releasing
// the one that was: the engine thread calls it before it uses e->store
// itself (the store thread owns the connection while a batch commits).
// Returns e->store.
weft_store *engine_quiesce(weft_engine *e);
// engine_assign_op_free frees an assign op's engine side (its items, the
// reply); io frees its own parts (context, aio) first.
void engine_assign_op_free(assign_op *op);
// engine_drop_mail frees the mail waiting for the engine thread (after it
// stopped): requests are dropped, assign ops freed.
void engine_drop_mail(weft_engine *e);
void  engine_hold_reply(weft_engine *e, reply_to to, nng_msg *msg);
void  engine_reply_now(weft_engine *e, reply_to to, int code,
     const char *error, json_t *body);
nng_msg *engine_control_reply(weft_engine *e, int code, const char *error,
    json_t *body);
// engine_control_reply_page is engine_control_reply with a paging cursor
// (next, borrowed; NULL or "" = the last page) and raw data (len bytes,
// borrowed; an output chunk). Any thread.
nng_msg *engine_control_reply_page(weft_engine *e, int code,
    const char *error, json_t *body, const char *next, const void *data,
    size_t len);
// engine_store_state records whether the store works and, when not, why
// (why borrowed; copied). Any thread.
void engine_store_state(weft_engine *e, bool ok, const char *why);
// engine_store_error copies why the store is unavailable into out (len)
// and returns false, or returns true (out "") while it works. Any thread.
bool engine_store_error(weft_engine *e, char *out, size_t len);
weft_run *engine_run(weft_engine *e, const char *id);
long      engine_step_index(const weft_run *r, const char *step_id);
bool      engine_unit(const weft_run *r, const char *name, weft_ref *out);
void      engine_run_add(weft_engine *e, weft_run *r);
void      engine_run_forget(weft_engine *e, weft_run *r); // free when unused

// sched.c
weft_worker_rec *sched_worker_info(weft_engine *e, const Weft__WorkerInfo *wi,
    uint64_t incarnation,
    const char *peer, uint64_t round, int64_t now);
void sched_survey_end(weft_engine *e, uint64_t round, int64_t now);
void sched_enqueue(weft_engine *e, weft_run *r, weft_ref u);
// sched_arm_schedule arms unit u's schedule timeout (its step's
// schedule_timeout_ms from now) unless one is armed for this ready period.
void sched_arm_schedule(weft_engine *e, weft_run *r, weft_ref u);
// sched_unqueue_run drops an ended run's ready-queue entries, so that the
// queue depth and the run's references fall with it.
void sched_unqueue_run(weft_engine *e, weft_run *r);
// sched_check_types decides, per step type with ready steps, whether a
// live worker advertises it (step_unschedulable / step_schedulable) and
// publishes the query thread's snapshot (waits).
void sched_check_types(weft_engine *e, int64_t now);
// sched_waits_json returns a copy of the snapshot (new ref); any thread.
json_t *sched_waits_json(weft_engine *e);
void sched_timer(weft_engine *e, enum timer_kind k, weft_run *r, weft_ref u,
    uint32_t attempt, int64_t at_ms);
void sched_fire_timers(weft_engine *e, int64_t now, int64_t mono);
// sched_untime_ended drops every timer of a run in a terminal state (one
// pass over the heap) and lets go of the runs they held.
void sched_untime_ended(weft_engine *e);
int64_t sched_next_timer(weft_engine *e); // monotonic ms, 0 = none
void sched_dispatch(weft_engine *e, int64_t now);
// sched_seal_batches marks every worker's assignments chosen so far as the
// batch handed to the store's (they go with its release).
void sched_seal_batches(weft_engine *e);
// sched_send_batches sends the aborts among o's effects (o may be NULL)
// and the sealed assignments (sealed) or all of them, then forgets them;
// with send false it only forgets them (a batch the store never took).
void sched_send_batches(weft_engine *e, const weft_out *o, bool sealed,
    bool send);
// sched_has_batches says assignments not sealed yet wait to be sent.
bool sched_has_batches(weft_engine *e);
void sched_assign_done(weft_engine *e, assign_op *op);
// sched_ack_later notes results (borrowed) of worker, applied in the
// batch being computed, to ack in its next AssignBatch.
void sched_ack_later(weft_engine *e, const char *worker,
    Weft__StepResult *const *results, size_t n);
// engine_take_step_results applies results (borrowed) a worker sent, in a
// ResultBatch or in an AssignReply (envelope from names the worker);
// false when they must wait (the sender's name is not settled yet) and
// nothing was applied: no ack then.
bool engine_take_step_results(weft_engine *e, const Weft__Envelope *from,
    Weft__StepResult *const *results, size_t n, int64_t now);
void sched_release(weft_engine *e, const char *node);
// sched_goodbye applies a worker's Goodbye (borrowed): draining, its
// released attempts back to ready; final, it leaves and what it still
// held is lost. False when the sender is not known yet to hold its name
// (after our restart, before its survey answer): no ack, it sends again.
bool sched_goodbye(weft_engine *e, const Weft__Envelope *env, int64_t now);
// sched_newcomer tells whether incarnation inc of w's name may be about to
// take it over (a restart): its results wait, unacked, until it does.
bool sched_newcomer(weft_engine *e, const weft_worker_rec *w, uint64_t inc);
void sched_observe(weft_engine *e, const char *type, int64_t ms);
void sched_restore_inflight(weft_engine *e, const char *node);
// sched_type_hold counts (hold) or uncounts an attempt of step `step` of r
// in flight on node toward its type's --limit: dispatch counts it itself;
// recovery and the end of an attempt (RELEASE) call this. Attempts the
// coordinator holds (node "", hold steps) never count.
void sched_type_hold(weft_engine *e, weft_run *r, long step,
    const char *node, bool hold);
void sched_close_peers(weft_engine *e);
json_t *sched_workers_json(weft_engine *e);
void sched_fini(weft_engine *e);
void engine_run_rele(weft_engine *e, weft_run *r);

// retain.c
// retain_request takes a DeleteRunsRequest (m's): checked, then queued;
// answered once its runs are gone.
void retain_request(weft_engine *e, engine_mail *m);
// retain_note_def keeps the sweep often enough for def's "retain".
void retain_note_def(weft_engine *e, const weft_def *def);
// retain_turn deletes at most one batch of ended runs (a request's, else
// the --retain sweep's when due), between two of the engine's commits.
void retain_turn(weft_engine *e);
// retain_busy says a batch is waiting: the loop should not sleep.
bool retain_busy(const weft_engine *e);
// retain_fini drops the requests still queued (no answer).
void retain_fini(weft_engine *e);

// control.c
void control_handle(weft_engine *e, engine_mail *m, int64_t now);
void *control_query_main(void *arg);
// control_restore_run makes stored run jr live again (recovery, retry of
// an ended run): WEFT_OK, WEFT_ENOENT (its definition is gone) or the
// store's error reading its blobs; logged, and nothing made, when not OK.
weft_err control_restore_run(weft_engine *e, json_t *jr);
def_entry *control_def_lookup(weft_engine *e, const char *name,
    int64_t version, char *err, size_t errlen);
// control_def_hold marks def (a cached entry's) used by one more live run:
// it is not evicted until the matching control_def_rele.
void control_def_hold(weft_engine *e, const weft_def *def);
void control_def_rele(weft_engine *e, const weft_def *def);
// control_def_trim evicts the least recently used definitions no live
// run uses until at most --def-cache remain (between iterations: no
// def_entry pointer is held across it but the runs').
void control_def_trim(weft_engine *e);
// control_def_fini frees every cached definition (at close).
void control_def_fini(weft_engine *e);

// ---- issue 14's operations (idem.c, bulk.c) ----

// The longest idempotency key, in bytes.
#define WEFT_IDEMPOTENCY_KEY_MAX 255

// idem_find looks up the run a request with idempotency key `key`
// (borrowed) made within the window before now: first among the runs made
// since start (their commit may still be under way), then in the store
// (indexed; waits for the batch in flight). WEFT_OK with the run's id in
// id; WEFT_ENOENT when there is none; a store error otherwise. Engine
// thread.
weft_err idem_find(weft_engine *e, const char *key, int64_t now,
    char id[WEFT_ID_LEN + 1]);

// idem_note remembers that the request with key (borrowed) made run id at
// now, so a repeat in the same batch or iteration finds it. Engine thread.
void idem_note(weft_engine *e, const char *key, const char *id, int64_t now);

// idem_fini frees the keys (at close).
void idem_fini(weft_engine *e);

// A "key=value" tag filter list split for the store (weft_runs_filter).
typedef struct tag_filter {
	char        keys[WEFT_RUNS_TAGS_MAX][64 + 1];
	char        values[WEFT_RUNS_TAGS_MAX][256 + 1];
	const char *kp[WEFT_RUNS_TAGS_MAX], *vp[WEFT_RUNS_TAGS_MAX];
} tag_filter;

// bulk_tag_filter splits tags (n "key=value" strings, borrowed) into t
// (caller's storage) and points f's tag lists at it. False, with the
// reason naming the tag in err, when one is malformed or there are more
// than WEFT_RUNS_TAGS_MAX. Any thread.
bool bulk_tag_filter(tag_filter *t, char **tags, size_t n,
    weft_runs_filter *f, char *err, size_t errlen);

// bulk_handle answers a BulkRequest (m, taken: one chunk of a bulk
// action): the runs matching its filters after its cursor, at most its
// limit, each acted on (or, dry, judged) here, and a report per run.
// Engine thread.
void bulk_handle(weft_engine *e, engine_mail *m);

// control_lifecycle_one applies action (cancel, pause, resume, retry) to
// run id, with from (a step id, or NULL/"") for a retry from a step; dry
// only judges whether it would apply. An ended run not in memory is
// loaded for a retry. Returns WEFT_OK, or the reason in msg (len) and
// WEFT_ENOENT (no such run or step), WEFT_ESTATE (its state does not
// allow it), WEFT_EINVAL, WEFT_ESTORE. Engine thread.
weft_err control_lifecycle_one(weft_engine *e, const char *id,
    const char *action, const char *from, bool dry, char *msg, size_t len);

#endif
