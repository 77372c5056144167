// worker_impl: the worker's internal structures, shared by its modules
// (worker, pool, outbox, dispatch, discovery, steps, exec). Not for users
// of the library: they include worker.h.
#ifndef WEFT_WORKER_IMPL_H
#define WEFT_WORKER_IMPL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <nng/nng.h>

#include "map.h"
#include "queue.h"
#include "weft.pb-c.h"
#include "wire.h"
#include "worker.h"

#define WORKER_DISPATCH_CTXS 8   // concurrent AssignBatch requests served
#define WORKER_IO_TIMEOUT 1000   // ms; every blocking socket call wakes up
#define WORKER_CUT_MS 5000       // ms an aborted attempt has to stop
#define WORKER_SPOOL_AFTER_MS 100 // ms a quick step's result waits for its
                                  // ack before it is spooled (outbox.c)
#define WORKER_FLUSH_MS 5000     // ms past the drain deadline to get the
                                 // last results and goodbye acked

// One finished attempt, as it travels in a StepResult.
typedef struct weft_result {
	weft_qnode          node;        // outbox link
	char               *run_id;
	char               *step_id;
	uint32_t            attempt;
	bool                ok;
	char               *output_json; // compact JSON when ok, else NULL
	char               *error;       // message when not ok, else NULL
	int32_t             exit_code;   // exec steps; 0 otherwise
	char               *stderr_tail; // exec steps; may be NULL
	uint64_t            started_ms;  // wall clock
	uint64_t            finished_ms; // wall clock
	// The spool (outbox lock): written, being written, or acked before
	// it was (never written then), and when it is due there.
	bool                spooled;
	bool                spooling;
	bool                acked;
	int64_t             spool_at;    // monotonic ms
} weft_result;


// weft_worker_run_local runs assignment a (borrowed) on the calling thread
// exactly as a slot would, and returns its result in *out (caller frees with
// weft_result_free). Returns WEFT_ENOENT when the type is not registered.
// Needs no start; meant for tests and tools.
weft_err weft_worker_run_local(
    weft_worker *w, const Weft__Assignment *a, weft_result **out);

// weft_result_free frees r and its strings (NULL is fine); r must not be
// on an outbox.
void weft_result_free(weft_result *r);

// worker_attempt_key writes an attempt's identity, "run/step/attempt",
// into out (WORKER_KEY_MAX bytes, so that every copy of a key is cut the
// same way): the key of the pool's and the outbox's indexes, of the
// spool's rows and of survey answers.
#define WORKER_KEY_MAX 1024
void worker_attempt_key(char *out, size_t len, const char *run,
    const char *step, uint32_t attempt);

typedef struct worker_spool worker_spool;

// One registered step type.
typedef struct worker_step {
	char        *type; // owned
	weft_step_fn fn;
	void        *arg;  // retained for the worker's life
} worker_step;

// One accepted attempt, from acceptance until its result is in the outbox.
// Being on the pool's queue or running list is its state.
struct weft_attempt {
	weft_qnode         node;       // pool queue or running list link
	char              *run_id;     // owned strings
	char              *step_id;
	char              *type;
	char              *input_json;
	json_t            *shared;     // {"input", "params"} of its run, one
	                               // object for all the attempts of the
	                               // run its batch carried (a reference);
	                               // NULL: input_json is the whole input
	uint64_t           max_output; // most bytes of output; 0 = no limit
	char              *key;        // "run/step/attempt"
	char              *idem;       // "run/step": WEFT_IDEMPOTENCY_KEY
	uint32_t           attempt;
	uint32_t           timeout_ms; // 0 = none
	const worker_step *step;       // registry entry (worker-owned)
	pthread_mutex_t    lock;       // guards the fields below
	pthread_cond_t     cv;         // signalled on abort (monotonic clock)
	bool               aborted;
	bool               running;    // on the running list (pool lock)
	bool               cut;        // aborted because its worker stops:
	                               // never reported failed (set under
	                               // the pool lock)
	bool               lost;       // named lost at a drain deadline: its
	                               // result is never reported (set under
	                               // the pool lock; implies cut)
	int                wake[2];    // abort pipe, made on demand; -1 = none
	int                exit_code;  // from weft_step_set_exec
	char              *stderr_tail;
	uint32_t           heartbeat_timeout_ms; // 0 = none
	// Heartbeats, under lock: monotonic ms of the last heartbeat (the
	// handler's start counts as one; 0 = not started), automatic beats
	// held (an exec program alive, the sleep step), whether the handler
	// returned, and the latest progress (compact JSON, owned; NULL none).
	int64_t            beat_mono;
	int                auto_beats;
	bool               done;
	char              *progress;
};

// The slot pool: a FIFO of accepted attempts and the threads that run them.
typedef struct worker_pool {
	pthread_mutex_t lock;     // guards everything below
	pthread_cond_t  cv;       // work queued or stopping
	weft_queue      queued;   // of weft_attempt, oldest first
	weft_queue      running;  // of weft_attempt, unordered
	weft_map        held;     // key "run/step/attempt" -> weft_attempt,
	                          // for both lists: an offer's duplicate
	                          // check without walking them
	bool            stopping;
	bool            draining; // takes no new attempts
	pthread_cond_t  idle;     // an attempt left the running list
	                          // (monotonic clock)
	char          **lost;     // keys of attempts cut short (owned)
	size_t          nlost, caplost;
	pthread_t      *threads;
	uint32_t        nthreads; // threads started (<= slots)
} worker_pool;

// The outbox of finished results and the thread that sends them.
typedef struct worker_outbox {
	pthread_mutex_t lock;     // guards results, url and stopping
	pthread_cond_t  cv;       // result added, url learned, or stopping
	weft_queue      results;  // of weft_result, oldest first; the sender
	                          // pops from here
	weft_map        keys;     // "run/step/attempt" -> how many results
	                          // of it are on results or replied (a count)
	// Results sent in an AssignReply (dispatch.c), oldest first: they
	// wait here for an AssignBatch that acks them (worker_outbox_acked),
	// and join results, to go the usual way, at their deadline
	// (replied_at + spool_after_ms) if none does. replied_keys: key ->
	// the result, for the acks.
	weft_queue      replied;
	weft_map        replied_keys;
	uint32_t        flush_waiters; // in worker_outbox_wait_flushed
	// The sender wakes for replied results' deadlines by itself: it
	// ticks every spool_after_ms while they come (until replied_hot_until,
	// monotonic ms), so a chain's results wake nobody; idle longer, it
	// sleeps without a deadline (sender_idle) and a put wakes it.
	int64_t         replied_hot_until;
	bool            sender_idle;
	char           *url;      // results URL from the survey; NULL unknown
	bool            stopping;
	nng_socket      sock;     // req0; used by the sender thread only
	bool            sock_open;
	nng_dialer      dialer;
	char           *dialed;   // URL the dialer points at (sender only)
	pthread_t       thread;
	bool            thread_started;
	_Atomic uint64_t sent;    // batches sent, resends included
	_Atomic uint64_t acked;
	// The goodbye to send before any result (worker_outbox_goodbye),
	// under lock; bye_gen counts goodbyes posted, bye_acked the last one
	// the coordinator acked.
	bool             bye_pending;
	bool             bye_final;
	char           **bye_keys;  // owned
	size_t           bye_nkeys;
	uint64_t         bye_drain_ms;
	uint64_t         bye_gen;
	uint32_t         unspooled; // results put and not spooled yet
	weft_qnode      *spool_next; // the first result not handed to the
	                             // spool yet (NULL: none): the spooler
	                             // starts there, not at the head
	bool             spooling;  // a thread is writing them (under lock)
	int64_t          spool_after_ms; // cfg.spool_after_ms or the default
	pthread_cond_t   spool_cv;  // the first unspooled result is new, or
	                            // stopping: the spooler's own, so that a
	                            // put does not wake it each time
	pthread_t        spooler;   // spools results left unacked too long
	bool             spooler_started;
	_Atomic uint64_t nspooled;  // results written to the spool
	_Atomic uint64_t nreplied;  // results sent in an AssignReply
	_Atomic uint64_t nreplied_acked; // ... and acked by an AssignBatch
} worker_outbox;

typedef struct worker_dispatch worker_dispatch;

// Where an actor's reply to a one-step batch stands while it waits for
// the step's result (dispatch.c; under the dispatch's linger_lock).
enum dispatch_linger {
	LINGER_NONE,    // no reply waiting
	LINGER_ARMED,   // the callback offered the step and is still running
	LINGER_WAITING, // the callback is done: the slot or the sweeper replies
	LINGER_PACKED,  // the slot packed the reply while ARMED: the callback
	                // sends it
};

// One rep0 context serving AssignBatch requests: receive, reply, repeat.
typedef struct dispatch_actor {
	weft_worker *w;
	nng_aio     *aio;
	nng_ctx      ctx;
	bool         sending; // the aio carries a reply (else a receive)
	// The reply that waits for its step's result (--reply-wait).
	int64_t              since;  // LINGER_WAITING from (monotonic ms)
	enum dispatch_linger linger;
	char                 key[WORKER_KEY_MAX]; // the step's attempt
	nng_msg             *packed; // LINGER_PACKED: the reply, with the
	                             // result
} dispatch_actor;

// The shared input of a run as last parsed: the coordinator sends it with
// every assignment message of the run, and parsing a large run input for
// each message would cost the worker (items x input) over a map.
typedef struct dispatch_shared_ent {
	char   *run_id;   // owned; NULL = empty slot
	char   *in_text;  // owned copies of the texts it was parsed from
	char   *pa_text;
	json_t *doc;      // {"input", "params"} (a reference)
} dispatch_shared_ent;

#define WORKER_SHARED_CACHE 4 // runs whose shared input is kept parsed

struct worker_dispatch {
	nng_socket     sock; // rep0 listener
	bool           sock_open;
	dispatch_actor actors[WORKER_DISPATCH_CTXS];
	pthread_mutex_t     linger_lock; // the actors' linger, key, packed,
	                                 // and closing; replies that waited
	                                 // are sent under it
	bool                closing;     // stopping: no reply waits
	int64_t             reply_wait_ms; // 0: no reply waits
	// The sweeper thread sends the replies whose wait is over. It ticks
	// every reply_wait_ms while replies wait or have lately (hot_until),
	// else sleeps until one does (idle): a chain of quick steps costs
	// it a wake-up per tick, not one per step.
	pthread_t           sweeper;
	bool                sweeper_started;
	pthread_cond_t      sweep_cv;    // a reply waits, or closing
	bool                sweep_idle;  // sleeping without a deadline
	int64_t             hot_until;   // monotonic ms
	pthread_mutex_t     shared_lock; // guards the cache (several actors)
	dispatch_shared_ent shared[WORKER_SHARED_CACHE];
	unsigned            shared_next; // the slot replaced next
};

// Discovery: a respondent0 socket and the thread answering surveys.
typedef struct worker_discovery {
	nng_socket sock;
	bool       sock_open;
	pthread_t  thread;
	bool       thread_started;
} worker_discovery;

struct weft_worker {
	char            *name;
	char            *join_url;
	char            *listen_url;
	char           **allow;       // realpath'ed --exec-allow directories
	size_t           nallow;
	uint32_t         slots;
	uint32_t         queue;       // accepted beyond slots, waiting
	int64_t          ack_timeout_ms;
	uint32_t         batch_max;
	int64_t          started_ms;  // wall clock at start
	int64_t          drain_timeout_ms;
	char            *spool_dir;   // NULL: no spool
	worker_spool    *spool;       // open while started; NULL: none
	uint32_t         spool_restored; // results found in it at start
	_Atomic uint32_t answered;    // survey answers sent
	_Atomic bool     draining;    // weft_worker_drain began
	char             dispatch_url[256];
	struct weft_tls *tls;         // borrowed from the cfg; NULL: TLS off
	bool             started;
	weft_wire        wire;
	// The coordinator whose survey we answered last: assignments and
	// aborts are taken from it alone (written by discovery, read by
	// dispatch, under coord_lock).
	pthread_mutex_t  coord_lock;
	char             coord_name[128];
	uint64_t         coord_inc;
	void (*on_refused)(void *arg, const char *reason);
	void            *on_refused_arg;
	_Atomic bool     refused;
	worker_step      steps[WEFT_WORKER_MAX_TYPES];
	size_t           nsteps;      // fixed once started
	_Atomic uint64_t dropped;
	worker_pool      pool;
	worker_outbox    outbox;
	worker_dispatch  dispatch;
	worker_discovery disc;
};

// worker_step_find returns the registry entry for type, or NULL.
const worker_step *worker_step_find(const weft_worker *w, const char *type);

// worker_attempt_alloc copies assignment a (borrowed) into a new attempt;
// shared (borrowed; a reference is kept), when a->shared, is its run's
// {"input", "params"} from the batch.
weft_attempt *worker_attempt_alloc(const Weft__Assignment *a, json_t *shared,
    const worker_step *step);

// worker_attempt_free frees att (NULL is fine).
void worker_attempt_free(weft_attempt *att);

// worker_attempt_abort marks att aborted and wakes its handler. Any thread.
void worker_attempt_abort(weft_attempt *att);

// worker_attempt_run runs att's handler on this thread; returns a new
// result the caller owns. att stays the caller's.
weft_result *worker_attempt_run(weft_attempt *att);

// worker_attempt_failed makes a failed result for att with message err
// (borrowed), for attempts that never ran.
weft_result *worker_attempt_failed(const weft_attempt *att, const char *err);

// worker_attempt_auto_beat starts (on) or ends an automatic heartbeat of
// att: while one holds, the attempt reports no silence. Nests. Any thread.
void worker_attempt_auto_beat(weft_attempt *att, bool on);

// worker_attempt_set_progress makes v (borrowed) att's latest progress and
// counts as a heartbeat. WEFT_ETOOBIG when its compact JSON is longer than
// WEFT_WIRE_PROGRESS_MAX (the progress is then unchanged). Any thread.
weft_err worker_attempt_set_progress(weft_attempt *att, const json_t *v);

// worker_attempt_beats fills out (at most max entries, each freed with
// worker_attempt_beats_free) with an AttemptBeat for every running attempt
// that has a heartbeat timeout or a progress; progress text is left out
// once the answer carries `budget` bytes of it. Returns the count.
size_t worker_attempt_beats(weft_worker *w, Weft__AttemptBeat **out,
    size_t max, size_t budget);
void   worker_attempt_beats_free(Weft__AttemptBeat **beats, size_t n);

// Progress lines (progress.c): what an exec program writes to the
// descriptor named in WEFT_PROGRESS_FD, one line per update. A line longer
// than WORKER_PROGRESS_LINE_MAX or not UTF-8 is garbage (counted, never
// stored); of lines closer together than WORKER_PROGRESS_MIN_MS only the
// newest is kept (the others are counted as too fast).
#define WORKER_PROGRESS_LINE_MAX 2048
#define WORKER_PROGRESS_MIN_MS 100

typedef struct worker_progress {
	char     line[WORKER_PROGRESS_LINE_MAX + 1];   // the line being read
	size_t   len;
	bool     skipping; // inside a line past the limit: drop to its end
	char     latest[WORKER_PROGRESS_LINE_MAX + 1]; // newest good line
	bool     have;     // latest waits to be taken
	int64_t  taken_ms; // monotonic ms of the last take; 0 = never
	uint64_t lines;    // complete lines seen
	uint64_t too_long, not_utf8, too_fast;
} worker_progress;

// worker_progress_init readies p (caller's storage).
void worker_progress_init(worker_progress *p);

// worker_progress_feed takes n bytes (borrowed) the program wrote.
void worker_progress_feed(worker_progress *p, const char *buf, size_t n);

// worker_progress_take returns the newest good line as a JSON value (the
// line parsed as JSON, else the line as a string; a new reference) when
// one waits and WORKER_PROGRESS_MIN_MS have passed since the last take at
// now (monotonic ms), or always when force; NULL otherwise. *wait_ms (may
// be NULL) gets how long until a waiting line may be taken, -1 if none.
json_t *worker_progress_take(
    worker_progress *p, int64_t now, bool force, int *wait_ms);

// worker_utf8_len returns the length of the valid UTF-8 sequence at s[i]
// (of len bytes): 1-4, or 0 when invalid (NUL, overlong, a surrogate, cut
// short), as jansson judges it.
size_t worker_utf8_len(const unsigned char *s, size_t i, size_t len);

// worker_step_error sets *error to the formatted message (malloc'd) and
// returns -1, the failure code of a handler.
int worker_step_error(char **error, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

// worker_coord_name copies the name of the coordinator we answered into
// out (len bytes; "" before the first survey): the recipient of what we
// send it. Returns its incarnation (0 before the first survey), to pair
// what we send it (weft_wire_pack_to).
uint64_t worker_coord_name(weft_worker *w, char *out, size_t len);

// worker_drop counts and logs one dropped message (borrowed; NULL when
// there is none) from socket `where`.
void worker_drop(weft_worker *w, const char *where, weft_err err,
    nng_msg *msg);

// Pool (pool.c). Lock order: pool lock before an attempt's lock.
void     worker_pool_init(worker_pool *p);
weft_err worker_pool_start(weft_worker *w);
void     worker_pool_stop(weft_worker *w);
void     worker_pool_fini(worker_pool *p);
// worker_pool_offer accepts a (borrowed; shared as for
// worker_attempt_alloc) or writes why not into reason.
bool worker_pool_offer(weft_worker *w, const Weft__Assignment *a,
    json_t *shared, char *reason, size_t reasonlen);
// worker_pool_abort aborts a queued or running attempt; false if unknown.
bool worker_pool_abort(weft_worker *w, const Weft__Abort *ab);
void worker_pool_counts(worker_pool *p, uint32_t *queued, uint32_t *running);

// worker_attempt_keys copies into keys (at most max, each malloc'd) the
// "run/step/attempt" of every attempt the worker holds: queued, running,
// or its result not yet acked; *complete is false when max cut the list.
size_t worker_attempt_keys(weft_worker *w, char **keys, size_t max,
    bool *complete);

// Pool drain (pool.c). worker_pool_stop_taking refuses new attempts from
// now on and takes the queued ones out; their keys go to *keys (malloc'd
// array of malloc'd strings). Returns how many.
size_t worker_pool_stop_taking(weft_worker *w, char ***keys);
// worker_pool_wait_idle waits until nothing runs or the monotonic
// deadline (ms) passes; true when nothing runs.
bool   worker_pool_wait_idle(weft_worker *w, int64_t deadline);
// worker_pool_cut marks every running attempt lost, atomically, and
// aborts it: from then on its result is never reported, whatever its
// handler returns; it is named lost (worker_pool_take_lost) instead.
void   worker_pool_cut(weft_worker *w);
// worker_pool_take_lost marks any attempt still running lost, as
// worker_pool_cut, and moves the keys of the attempts lost into *keys
// (caller frees each and the array). From then on no result enters the
// outbox from the pool.
size_t worker_pool_take_lost(weft_worker *w, char ***keys);

// worker_thread_begin names the calling worker thread (ps, perf) and
// blocks SIGINT and SIGTERM on it: signals for the process go to the
// embedding program's main thread, never to one of ours.
void     worker_thread_begin(const char *name);

// Outbox (outbox.c).
void     worker_outbox_init(worker_outbox *o);
weft_err worker_outbox_start(weft_worker *w);
void     worker_outbox_stop(weft_worker *w);
void     worker_outbox_fini(worker_outbox *o);
// worker_outbox_put takes r and wakes the sender. Returns true when r is
// due in the spool at once (its attempt ran spool_after_ms or more): the
// caller then calls worker_outbox_spool.
bool     worker_outbox_put(worker_outbox *o, weft_result *r);
// worker_result_proto fills s from r (borrowed: s points into r).
void     worker_result_proto(const weft_result *r, Weft__StepResult *s);
// worker_outbox_put_replied takes r, which an AssignReply carries: it
// waits for an AssignBatch to ack it, else spool_after_ms, then goes the
// usual way.
void     worker_outbox_put_replied(worker_outbox *o, weft_result *r);
// worker_outbox_acked forgets the replied results acks names (an
// AssignBatch's acked list); one already gone the usual way is left to
// its own ack. Returns how many it forgot.
size_t   worker_outbox_acked(worker_outbox *o,
    Weft__ResultRef *const *acks, size_t n);
// worker_outbox_set_url records the results URL (borrowed); true if new.
bool     worker_outbox_set_url(worker_outbox *o, const char *url);
uint32_t worker_outbox_held(worker_outbox *o);
// worker_outbox_holds tells whether a result for this attempt waits for
// its ack (caller may hold the pool lock: pool before outbox).
bool     worker_outbox_holds(worker_outbox *o, const char *run,
    const char *step, uint32_t attempt);
// worker_outbox_goodbye queues a Goodbye (keys taken) to send before any
// result, replacing one not sent yet; released keys, or lost ones when
// final.
void     worker_outbox_goodbye(worker_outbox *o, char **keys, size_t n,
    bool final, uint64_t drain_ms);
// worker_outbox_wait_flushed waits until every result and the goodbye
// are acked, or the monotonic deadline passes; true when they are.
bool     worker_outbox_wait_flushed(worker_outbox *o, int64_t deadline);
// worker_outbox_spool writes the results not spooled (nor acked) yet, in
// one transaction, unless another thread is at it (which then writes ours
// too). Called by a slot whose result is due at once, by the spooler
// thread when one has waited too long, and at stop.
void     worker_outbox_spool(weft_worker *w);

// Spool (spool.c): the durable outbox. Every call takes NULL for "no
// spool" and then does nothing. Thread-safe.
// worker_spool_open opens (creating, mode 0600) DIR/spool.db, locked by
// this process (DIR/spool.lock): WEFT_EEXIST when another worker holds
// it, WEFT_EINVAL when the file is not a spool (a database with tables
// needs the spool's version and schema), is damaged or a symbolic link,
// or when group or others can write DIR; err names the file.
weft_err worker_spool_open(worker_spool **out, const char *dir, char *err,
    size_t errlen);
// worker_spool_close closes s (NULL is fine); remove_if_empty deletes the
// files when nothing is spooled and the spool is one worker_spool_open
// created or recognised as a spool (never a file it merely accepted).
void     worker_spool_close(worker_spool *s, bool remove_if_empty);
// worker_spool_results writes those of rs[0..n) (borrowed) not spooled
// yet in one transaction, with the deletes of what was acked since the
// last write. On failure (logged) they stay in memory only; the caller
// marks them spooled either way.
weft_err worker_spool_results(worker_spool *s, weft_result *const *rs,
    uint32_t n);
// worker_spool_acked forgets rs[0..n) (borrowed): deleted with the next
// write or at close, so the sender thread does no I/O for it.
weft_err worker_spool_acked(worker_spool *s, weft_result *const *rs,
    uint32_t n);
// worker_spool_load queues the spooled results on o (oldest first); a row
// that could never be sent and acked (attempt 0, a key that is not its
// run/step/attempt) is deleted instead, with a SPOOL-BAD-ROW warning.
weft_err worker_spool_load(worker_spool *s, worker_outbox *o,
    uint32_t *nresults);

// Dispatch (dispatch.c): the rep0 listener; fills w->dispatch_url.
weft_err worker_dispatch_start(weft_worker *w);
void     worker_dispatch_stop(weft_worker *w);
// worker_dispatch_init / _fini ready and free the shared-input cache.
void     worker_dispatch_init(worker_dispatch *d);
// worker_dispatch_claim gives r (a finished attempt's result, not put
// anywhere yet) to the reply waiting for it, if one is: the reply is
// packed with r, r goes into the outbox to wait for its ack
// (worker_outbox_put_replied), and the reply is sent (or left for the
// callback still running). Returns false when no reply waits for r: the
// caller puts it into the outbox. Called by a slot with the pool lock
// held (pool, then dispatch, then outbox).
bool     worker_dispatch_claim(weft_worker *w, weft_result *r);
void     worker_dispatch_fini(worker_dispatch *d);

// Discovery (discovery.c): the respondent0 dialer and its thread.
weft_err worker_discovery_start(weft_worker *w);
void     worker_discovery_stop(weft_worker *w);

#endif
