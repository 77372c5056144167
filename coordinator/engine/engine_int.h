// engine_int: the coordinator's internals shared by engine.c (the loop),
// net.c (sockets and their callbacks), sched.c (workers, ready queues,
// timers) and control.c (control requests). Not a public API.
#ifndef WEFT_ENGINE_INT_H
#define WEFT_ENGINE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <nng/nng.h>

#include "def.h"
#include "engine.h"
#include "mailbox.h"
#include "map.h"
#include "metrics.h"
#include "run.h"
#include "store.h"
#include "wire.h"

typedef struct weft_engine weft_engine;

// ---- net: reply actors on rep0 sockets ----

enum rep_kind { REP_CONTROL, REP_RESULTS };

// One rep0 context: receive a request, hand it on, send the reply later
// (from whichever thread answers), receive again.
typedef struct rep_actor {
	weft_engine  *eng;
	enum rep_kind kind;
	nng_ctx       ctx;
	nng_aio      *aio;
	bool          sending; // the aio is sending a reply
} rep_actor;

// rep_reply sends msg (taken) as the answer to the actor's request. Any
// thread. Failure frees the message; the actor receives again either way.
void net_rep_reply(rep_actor *a, nng_msg *msg);

// An HTTP request waiting for its answer (http.c).
typedef struct http_call http_call;

// Where the answer to a control request goes: a rep0 context, or an HTTP
// request that was translated into the control request.
typedef struct reply_to {
	rep_actor *actor;
	http_call *http;
} reply_to;

// reply_send delivers a packed ControlReply or ResultAck (taken). Any
// thread.
void reply_send(reply_to to, nng_msg *msg);

// http_answer answers an HTTP call with a packed ControlReply (taken):
// the reply's code picks the status, its body becomes the response body.
void http_answer(http_call *h, nng_msg *msg);

// reply_drop abandons a reply target at shutdown (an HTTP call gets 503).
void reply_drop(reply_to to);

weft_err http_open(weft_engine *e, char *err, size_t errlen);
void     http_close(weft_engine *e);
void     http_drop(http_call *h);
char    *http_metrics_text(weft_engine *e);
void     http_metrics_answer(http_call *h, char *text);

// A batch of assignments in flight to one worker.
typedef struct assign_item {
	char     run_id[WEFT_ID_LEN + 1];
	weft_ref unit;
	uint32_t attempt;
} assign_item;

typedef struct weft_peer weft_peer;

typedef struct assign_op {
	weft_engine *eng;
	weft_peer   *peer;
	nng_ctx      ctx;
	nng_aio     *aio;
	assign_item *items; // owned
	size_t       nitems;
	bool         receiving; // the send is done; waiting for the answer
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

weft_err net_peer_dial(weft_engine *e, weft_peer *p, const char *url);
void     net_peer_close(weft_peer *p);

// net_assign_send sends batch (taken) on op (taken); the reply arrives as
// MAIL_ASSIGN. Engine thread.
void net_assign_send(weft_engine *e, assign_op *op, nng_msg *batch);

// net_assign_free releases an op after the engine has read it.
void net_assign_free(assign_op *op);

weft_err net_open(weft_engine *e, char *err, size_t errlen);
weft_err net_start(weft_engine *e); // threads and first receives
void     net_close(weft_engine *e);

// net_route_control hands a decoded control request (env taken) to the
// thread that answers it. Any thread.
void net_route_control(weft_engine *e, Weft__Envelope *env, reply_to to);

// net_publish publishes the batch's events in id order (engine thread,
// after the commit), several per message where they share a topic.
void net_publish(weft_engine *e, const weft_event *evs, size_t n);

// ---- mail ----

enum mail_kind {
	MAIL_CONTROL,     // a control request (env, actor)
	MAIL_RESULTS,     // a ResultBatch (env, actor)
	MAIL_WORKER_INFO, // a survey answer (env, round)
	MAIL_SURVEY_END,  // a survey round closed (round)
	MAIL_ASSIGN,      // an assign exchange finished (op)
	MAIL_METRICS,     // render /metrics (to.http)
	MAIL_STOP,        // shut down
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
	weft_peer         peer;
	weft_map          missing; // "run/unit/attempt" we hold in flight on it
	                           // that it did not list -> survey round first
	                           // missing (as a pointer-sized integer)
	// Assignments chosen this iteration, sent after the commit.
	assign_item      *batch;
	Weft__Assignment **batch_msgs;
	size_t            nbatch, capbatch;
} weft_worker_rec;

// One entry of a ready queue: a run (referenced) and a step.
typedef struct ready_ent {
	weft_run *run;
	weft_ref  unit;
} ready_ent;

// The ready steps of one step type, and how long that type's attempts take.
typedef struct ready_queue {
	ready_ent *ents;  // ring buffer
	size_t     head, count, cap;
	double     ewma_ms; // moving average of attempt durations
	bool       timed;   // ewma_ms holds at least one observation
} ready_queue;

enum timer_kind { TIMER_RETRY, TIMER_STEP_TIMEOUT, TIMER_RUN_TIMEOUT };

typedef struct timer_ent {
	int64_t         at_ms; // wall
	enum timer_kind kind;
	weft_run       *run;   // referenced
	weft_ref        unit;  // step -1 for the run's own timer
	uint32_t        attempt;
} timer_ent;

// ---- the engine ----

// A compiled definition and its step-id index.
typedef struct def_entry {
	weft_def *def;
	weft_map  index; // step id -> (void *)(index + 1)
} def_entry;

// A reply held until the batch that caused it is committed.
typedef struct held_reply {
	reply_to to;
	nng_msg *msg;
} held_reply;

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

	// Sockets (net.c).
	nng_socket   control, results, cluster, events;
	rep_actor   *control_actors, *results_actors;
	int          nactors;
	pthread_t    survey_thread;
	bool         survey_started;
	bool         net_open;
	char         control_url[256]; // as bound (port 0 = the kernel's)
	char         cluster_url[256];
	char         results_url[256]; // as advertised to workers
	char         events_url[256];
	char         http_addr[256];   // HOST:PORT as bound, "" = no HTTP
	pthread_mutex_t members_lock;
	json_t         *members; // gossip list (guarded by members_lock)

	// State (engine thread only).
	weft_map     runs;      // run id -> weft_run * (active or ending)
	weft_map     defs;      // "name@version" -> def_entry *
	weft_map     latest;    // name -> def_entry * (highest version)
	weft_map     workers;   // name -> weft_worker_rec *
	weft_map     queues;    // step type -> ready_queue *
	timer_ent   *timers;    // binary min-heap on at_ms
	size_t       ntimers, captimers;
	uint64_t     next_event_id;
	uint64_t     round;     // last survey round closed
	weft_out     out;
	held_reply  *held;
	size_t       nheld, capheld;
	weft_run   **reap;      // ended runs to free at the iteration's end
	size_t       nreap, capreap;
	bool         deferred;  // e->out holds a batch whose commit waits

	// Counters (engine thread writes; others read loosely).
	_Atomic uint64_t steps_dispatched, steps_succeeded, steps_failed;
	_Atomic uint64_t results_received, batches_committed;
	_Atomic uint64_t events_committed;
	_Atomic bool     store_ok;
	_Atomic int64_t  ops_live; // assign ops allocated, not yet freed
	_Atomic uint64_t last_event_id; // last committed event id
	weft_metrics     metrics;

	// HTTP (http.c).
	struct http_server *http;
	char                dashboard[512]; // directory served at "/"
};

// engine.c
void  engine_apply_internal(weft_engine *e, size_t from);
void  engine_hold_reply(weft_engine *e, reply_to to, nng_msg *msg);
void  engine_reply_now(weft_engine *e, reply_to to, int code,
     const char *error, json_t *body);
nng_msg *engine_control_reply(weft_engine *e, int code, const char *error,
    json_t *body);
weft_run *engine_run(weft_engine *e, const char *id);
long      engine_step_index(const weft_run *r, const char *step_id);
bool      engine_unit(const weft_run *r, const char *name, weft_ref *out);
void      engine_run_add(weft_engine *e, weft_run *r, def_entry *d);
void      engine_run_forget(weft_engine *e, weft_run *r); // free when unused

// sched.c
weft_worker_rec *sched_worker_info(weft_engine *e, const Weft__WorkerInfo *wi,
    const char *peer, uint64_t round, int64_t now);
void sched_survey_end(weft_engine *e, uint64_t round, int64_t now);
void sched_enqueue(weft_engine *e, weft_run *r, weft_ref u);
void sched_timer(weft_engine *e, enum timer_kind k, weft_run *r, weft_ref u,
    uint32_t attempt, int64_t at_ms);
void sched_fire_timers(weft_engine *e, int64_t now);
int64_t sched_next_timer(weft_engine *e);
void sched_dispatch(weft_engine *e, int64_t now);
void sched_send_batches(weft_engine *e);
bool sched_has_batches(weft_engine *e); // assignments wait to be sent
void sched_assign_done(weft_engine *e, assign_op *op);
void sched_release(weft_engine *e, const char *node);
void sched_observe(weft_engine *e, const char *type, int64_t ms);
void sched_restore_inflight(weft_engine *e, const char *node);
void sched_close_peers(weft_engine *e);
json_t *sched_workers_json(weft_engine *e);
void sched_fini(weft_engine *e);
void run_slot_rele(weft_engine *e, weft_run *r);

// control.c
void control_handle(weft_engine *e, engine_mail *m, int64_t now);
void *control_query_main(void *arg);
void control_restore_run(weft_engine *e, json_t *jr);
def_entry *control_def_lookup(weft_engine *e, const char *name,
    int64_t version, char *err, size_t errlen);

#endif
