// engine_test: the engine in-process, without a network: a SQLite store in
// a temp dir, a fake io (engine/io.h) that records what would leave the
// process, and a fake clock. Each test feeds mail to engine_iteration one
// turn at a time and looks at what came out and at the scheduler's books.
//
// Links weft_engine (with model and store) but not weft_io: the engine must
// not reach the network except through the table io registers.
#include <criterion/criterion.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "clock.h"
#include "engine_int.h"
#include "event.h"
#include "harness.h"

// ---- the fake world ----

#define FAKE_MAX 256

typedef struct fake_op {
	assign_op *op;
	size_t     nitems;
	size_t     naborts;
	char       steps[8][16]; // step ids of the items (first 8)
	size_t     nacked;       // AssignBatch.acked: results acked
	char       acked[8][16]; // their step ids (first 8)
	char       acked_run[8][64]; // and run ids
	bool       done;
} fake_op;

typedef struct fake {
	char         url[600]; // the store (the engine borrows the string)
	int64_t      wall, mono;
	weft_engine *e;
	weft_wire    wire;   // messages from "test" (control)
	weft_wire    wire_w1; // messages from the worker w1
	// What left the process.
	size_t   npublished;
	char     published[FAKE_MAX * 4][32]; // event types, in order
	size_t   nreplies;
	json_t  *replies[FAKE_MAX]; // {code, error, body} of control replies
	size_t   nacks;
	fake_op  ops[FAKE_MAX];
	size_t   nops;
	// What the worker holds: step id -> attempts outstanding.
	int      held;      // attempts assigned and neither ended nor aborted
	int      held_max;  // the most it ever held
	// Secrets: published events and assignments that held SECRET_MARK.
	size_t   published_secret, assigned_secret;
	// Replies in the order they left: 'a' a ResultAck, 'c' a control
	// reply.
	char     order[FAKE_MAX + 1];
	size_t   norder;
	// Workers from before shared input (no WorkerInfo.shared_input);
	// the first assignment of the last message, as sent.
	bool     old_workers;
	char     last_input[512];
	bool     last_shared;
	size_t   last_nshared;
} fake;

#define SECRET_MARK "EngineSecret-5e1"

static fake F;
static weft_io           F_io;    // what fake_open registered
static weft_engine_clock F_clock;

static int64_t
fake_wall(void *arg)
{
	return (((fake *) arg)->wall);
}

static int64_t
fake_mono(void *arg)
{
	return (((fake *) arg)->mono);
}

static void
fake_publish(void *arg, const weft_event *evs, size_t n)
{
	fake *f = arg;
	for (size_t k = 0; k < n && f->npublished < FAKE_MAX * 4; k++) {
		snprintf(f->published[f->npublished++], 32, "%s",
		    weft_event_name(evs[k].type));
		f->published_secret +=
		    strstr(evs[k].data_text, SECRET_MARK) != NULL;
	}
}

static void
fake_reply(void *arg, reply_to to, nng_msg *msg)
{
	fake           *f = arg;
	Weft__Envelope *env;

	(void) to;
	cr_assert_eq(weft_wire_unpack(NULL, msg, 0, &env), WEFT_OK);
	if (f->norder < FAKE_MAX) {
		f->order[f->norder++] =
		    env->body_case == WEFT__ENVELOPE__BODY_RESULT_ACK ? 'a' : 'c';
	}
	if (env->body_case == WEFT__ENVELOPE__BODY_RESULT_ACK) {
		f->nacks++;
	} else {
		cr_assert_eq(env->body_case, WEFT__ENVELOPE__BODY_CONTROL_REPLY);
		cr_assert_lt(f->nreplies, FAKE_MAX);
		f->replies[f->nreplies++] = json_pack("{s:i, s:s, s:o}", "code",
		    env->control_reply->code, "error", env->control_reply->error,
		    "body",
		    env->control_reply->body_json[0]
		        ? json_loads(env->control_reply->body_json, 0, NULL)
		        : json_null());
	}
	weft_wire_free(env);
	nng_msg_free(msg);
}

static void
fake_drop(void *arg, reply_to to)
{
	(void) arg;
	(void) to;
}

static weft_err
fake_dial(void *arg, weft_peer *p, const char *url)
{
	(void) arg;
	snprintf(p->url, sizeof(p->url), "%s", url);
	p->open = true;
	return (WEFT_OK);
}

static void
fake_peer_close(void *arg, weft_peer *p)
{
	(void) arg;
	p->open = false;
}

// fake_assign takes the batch as the worker would: aborts first (the
// worker stops those attempts), then the items.
static void
fake_assign(void *arg, assign_op *op, nng_msg *batch)
{
	fake           *f = arg;
	Weft__Envelope *env;
	fake_op        *fo;

	cr_assert_lt(f->nops, FAKE_MAX);
	cr_assert_eq(weft_wire_unpack(NULL, batch, 0, &env), WEFT_OK);
	cr_assert_eq(env->body_case, WEFT__ENVELOPE__BODY_ASSIGN);
	fo          = &f->ops[f->nops++];
	fo->op      = op;
	fo->nitems  = env->assign->n_items;
	fo->naborts = env->assign->n_aborts;
	fo->nacked  = env->assign->n_acked;
	for (size_t k = 0; k < fo->nacked && k < 8; k++) {
		snprintf(fo->acked[k], 16, "%s", env->assign->acked[k]->step_id);
		snprintf(fo->acked_run[k], 64, "%s",
		    env->assign->acked[k]->run_id);
	}
	for (size_t k = 0; k < fo->nitems && k < 8; k++) {
		snprintf(fo->steps[k], 16, "%s", env->assign->items[k]->step_id);
	}
	for (size_t k = 0; k < fo->nitems; k++) {
		f->assigned_secret +=
		    strstr(env->assign->items[k]->input_json, SECRET_MARK) != NULL;
	}
	if (fo->nitems > 0) {
		snprintf(f->last_input, sizeof(f->last_input), "%s",
		    env->assign->items[0]->input_json);
		f->last_shared  = env->assign->items[0]->shared;
		f->last_nshared = env->assign->n_shared;
	}
	for (size_t k = 0; k < env->assign->n_shared; k++) {
		f->assigned_secret +=
		    strstr(env->assign->shared[k]->input_json, SECRET_MARK) !=
		    NULL;
	}
	f->held -= (int) fo->naborts;
	f->held += (int) fo->nitems;
	if (f->held > f->held_max) {
		f->held_max = f->held;
	}
	weft_wire_free(env);
	nng_msg_free(batch);
}

static void
fake_assign_free(void *arg, assign_op *op)
{
	(void) arg;
	engine_assign_op_free(op);
}

static void
fake_metrics(void *arg, reply_to to)
{
	(void) arg;
	(void) to;
}

// ---- driving the engine ----

static void
fake_open(int survey_lost_after)
{
	weft_engine_cfg cfg = { .name = "coordinator", .survey_ms = 1000,
		.lost_after = survey_lost_after };
	weft_io         io  = { .arg = &F, .publish = fake_publish,
		         .reply = fake_reply, .drop = fake_drop,
		         .metrics = fake_metrics, .peer_dial = fake_dial,
		         .peer_close = fake_peer_close, .assign = fake_assign,
		         .assign_free = fake_assign_free };
	weft_engine_clock clock = { .arg = &F, .wall_ms = fake_wall,
		.mono_ms = fake_mono };
	char  err[512];
	char *dir = weft_h_tempdir("engine");

	memset(&F, 0, sizeof(F));
	F.wall = 1700000000000;
	F.mono = 5000;
	weft_wire_init(&F.wire, "test");
	weft_wire_init(&F.wire_w1, "w1");
	snprintf(F.url, sizeof(F.url), "sqlite:%s/weft.db", dir);
	free(dir);
	cfg.db_url = F.url;
	cr_assert_eq(weft_engine_open(&F.e, &cfg, err, sizeof(err)), WEFT_OK,
	    "%s", err);
	F_io    = io;
	F_clock = clock;
	weft_engine_set_io(F.e, &F_io);
	weft_engine_set_clock(F.e, &F_clock);
}

static void
fake_close(void)
{
	for (size_t k = 0; k < F.nreplies; k++) {
		json_decref(F.replies[k]);
	}
	// Exchanges the worker never answered: as a closing server would.
	for (size_t k = 0; k < F.nops; k++) {
		if (!F.ops[k].done) {
			engine_assign_op_free(F.ops[k].op);
		}
	}
	weft_engine_close(F.e);
	F.e = NULL;
}

// fake_restart closes the engine and opens a new one on the same store,
// on the test's clock from the open (recovery arms timers on it), and
// forgets what left the old one.
static void
fake_restart(void)
{
	char            err[512];
	weft_engine_cfg cfg = { .name = "coordinator", .db_url = F.url,
		.survey_ms = 1000, .lost_after = 3, .clock = &F_clock };

	fake_close();
	cr_assert_eq(weft_engine_open(&F.e, &cfg, err, sizeof(err)), WEFT_OK,
	    "%s", err);
	weft_engine_set_io(F.e, &F_io);
	F.npublished = 0;
	F.nreplies   = 0;
	F.nops       = 0;
}

// mail_new makes the mail env would arrive as, sent by peer `wire`.
static engine_mail *
mail_new(weft_wire *wire, enum mail_kind kind, Weft__Envelope *env,
    uint64_t round)
{
	nng_msg     *msg;
	engine_mail *m = weft_xalloc(sizeof(*m));

	cr_assert_eq(weft_wire_pack(wire, env, NULL, &msg), WEFT_OK);
	cr_assert_eq(weft_wire_unpack(NULL, msg, 0, &m->env), WEFT_OK);
	nng_msg_free(msg);
	m->kind  = kind;
	m->round = round;
	snprintf(m->peer, sizeof(m->peer), "127.0.0.1");
	return (m);
}

// define_mail makes the control request that defines "d" (one noop step
// x): a request that writes.
static engine_mail *
define_mail(void)
{
	Weft__Envelope       env = WEFT__ENVELOPE__INIT;
	Weft__ControlRequest req = WEFT__CONTROL_REQUEST__INIT;
	Weft__DefineRequest  dr  = WEFT__DEFINE_REQUEST__INIT;

	dr.definition_json =
	    "{\"name\":\"d\",\"steps\":[{\"id\":\"x\",\"type\":\"noop\"}]}";
	req.req_case  = WEFT__CONTROL_REQUEST__REQ_DEFINE;
	req.define    = &dr;
	env.body_case = WEFT__ENVELOPE__BODY_CONTROL;
	env.control   = &req;
	return (mail_new(&F.wire, MAIL_CONTROL, &env, 0));
}

// post_from packs env as peer `wire` would and posts it as mail of kind.
static void
post_from(weft_wire *wire, enum mail_kind kind, Weft__Envelope *env,
    uint64_t round)
{
	weft_mailbox_post(&F.e->mailbox, &mail_new(wire, kind, env, round)->node);
}

static void
post(enum mail_kind kind, Weft__Envelope *env, uint64_t round)
{
	post_from(&F.wire, kind, env, round);
}

// turn runs one iteration on whatever was posted.
static void
turn(void)
{
	engine_iteration(F.e, weft_mailbox_drain(&F.e->mailbox, 0));
}

static void
advance(int64_t ms)
{
	F.wall += ms;
	F.mono += ms;
}

// post_worker_from posts a survey answer of worker name, sent by wire
// (its process: name and incarnation).
static void
post_worker_from(weft_wire *wire, const char *name, uint32_t slots,
    uint64_t round)
{
	Weft__Envelope   env   = WEFT__ENVELOPE__INIT;
	Weft__WorkerInfo wi    = WEFT__WORKER_INFO__INIT;
	char            *types[] = { "noop" };

	wi.name          = (char *) name;
	wi.dispatch_url  = "tcp://127.0.0.1:1";
	wi.n_step_types  = 1;
	wi.step_types    = types;
	wi.slots         = slots;
	wi.queue         = 0;
	wi.round         = round;
	wi.shared_input  = !F.old_workers;
	env.body_case    = WEFT__ENVELOPE__BODY_WORKER_INFO;
	env.worker_info  = &wi;
	post_from(wire, MAIL_WORKER_INFO, &env, round);
}

// post_worker posts a survey answer of w1 (the process F.wire_w1), or of
// another worker name.
static void
post_worker(const char *name, uint32_t slots, uint64_t round)
{
	post_worker_from(strcmp(name, "w1") == 0 ? &F.wire_w1 : &F.wire, name,
	    slots, round);
}

static void
post_survey_end(uint64_t round)
{
	engine_mail *m = weft_xalloc(sizeof(*m));
	m->kind        = MAIL_SURVEY_END;
	m->round       = round;
	weft_mailbox_post(&F.e->mailbox, &m->node);
}

// start_run registers def (JSON text) and starts a run of it; returns the
// run id (static storage).
// post_run posts a request for a run of def (JSON text).
static void
post_run(const char *def)
{
	Weft__Envelope       env = WEFT__ENVELOPE__INIT;
	Weft__ControlRequest req = WEFT__CONTROL_REQUEST__INIT;
	Weft__RunRequest     run = WEFT__RUN_REQUEST__INIT;

	run.definition_json = (char *) def;
	req.req_case        = WEFT__CONTROL_REQUEST__REQ_RUN;
	req.run             = &run;
	env.body_case       = WEFT__ENVELOPE__BODY_CONTROL;
	env.control         = &req;
	post(MAIL_CONTROL, &env, 0);
}

static const char *
start_run(const char *def)
{
	static char id[64];
	size_t      before = F.nreplies;

	post_run(def);
	turn();
	cr_assert_eq(F.nreplies, before + 1, "no reply to the run request");
	json_t *r = F.replies[before];
	cr_assert_eq(json_integer_value(json_object_get(r, "code")), 0, "%s",
	    json_string_value(json_object_get(r, "error")));
	snprintf(id, sizeof(id), "%s",
	    json_string_value(
	        json_object_get(json_object_get(r, "body"), "run_id")));
	return (id);
}

// answer_op answers an assign op as the worker: accepts every item (or
// rejects them all).
static void
answer_op(fake_op *fo, bool accept)
{
	Weft__Envelope    env = WEFT__ENVELOPE__INIT;
	Weft__AssignReply rep = WEFT__ASSIGN_REPLY__INIT;
	protobuf_c_boolean acc[64];
	char              *why[64];
	engine_mail       *m = weft_xalloc(sizeof(*m));

	cr_assert_lt(fo->nitems, 64);
	for (size_t k = 0; k < fo->nitems; k++) {
		acc[k] = accept;
		why[k] = accept ? "" : "full";
	}
	rep.n_accepted   = fo->nitems;
	rep.accepted     = acc;
	rep.n_reason     = fo->nitems;
	rep.reason       = why;
	env.body_case    = WEFT__ENVELOPE__BODY_ASSIGN_REPLY;
	env.assign_reply = &rep;
	cr_assert_eq(weft_wire_pack(&F.wire, &env, NULL, &fo->op->reply),
	    WEFT_OK);
	fo->op->result = 0;
	fo->done       = true;
	if (!accept) {
		F.held -= (int) fo->nitems;
	}
	m->kind = MAIL_ASSIGN;
	m->op   = fo->op;
	weft_mailbox_post(&F.e->mailbox, &m->node);
}

// answer_all answers every op not answered yet.
static void
answer_all(bool accept)
{
	for (size_t k = 0; k < F.nops; k++) {
		if (!F.ops[k].done) {
			answer_op(&F.ops[k], accept);
		}
	}
}

static size_t
assigned(void)
{
	size_t n = 0;
	for (size_t k = 0; k < F.nops; k++) {
		n += F.ops[k].nitems;
	}
	return (n);
}

// post_result_from reports an attempt of run/step as the node whose wire
// sends it.
static void
post_result_from(weft_wire *wire, const char *run, const char *step,
    uint32_t attempt, bool ok)
{
	Weft__Envelope     env = WEFT__ENVELOPE__INIT;
	Weft__ResultBatch  b   = WEFT__RESULT_BATCH__INIT;
	Weft__StepResult   sr  = WEFT__STEP_RESULT__INIT;
	Weft__StepResult  *p[1] = { &sr };

	sr.run_id      = (char *) run;
	sr.step_id     = (char *) step;
	sr.attempt     = attempt;
	sr.ok          = ok;
	sr.output_json = ok ? "{}" : "";
	sr.error       = ok ? "" : "boom";
	b.n_results    = 1;
	b.results      = p;
	env.body_case  = WEFT__ENVELOPE__BODY_RESULTS;
	env.results    = &b;
	post_from(wire, MAIL_RESULTS, &env, 0);
}

// post_result reports an attempt of run/step as w1, which holds it.
static void
post_result(const char *run, const char *step, uint32_t attempt, bool ok)
{
	post_result_from(&F.wire_w1, run, step, attempt, ok);
	F.held--;
}

static weft_worker_rec *
worker(const char *name)
{
	weft_worker_rec *w = weft_map_get(&F.e->workers, name);
	cr_assert_not_null(w, "no worker %s", name);
	return (w);
}

static size_t
count_published(const char *type)
{
	size_t n = 0;
	for (size_t k = 0; k < F.npublished; k++) {
		n += strcmp(F.published[k], type) == 0;
	}
	return (n);
}

static void
setup(void)
{
	fake_open(3);
}

static void
teardown(void)
{
	fake_close();
}

TestSuite(engine, .init = setup, .fini = teardown, .timeout = 60);

// Two steps side by side, a's with a 1 s timeout and a retry policy.
static const char *const DEF_TIMEOUT =
    "{\"name\":\"t\",\"steps\":["
    "{\"id\":\"a\",\"type\":\"noop\",\"timeout_ms\":1000,"
    "\"retry\":{\"max_attempts\":3,\"backoff\":\"fixed\",\"initial_ms\":500}},"
    "{\"id\":\"b\",\"type\":\"noop\"}]}";

// start_accepted has w1 join, starts a DEF_TIMEOUT run (its id into
// run_id, 64 bytes) and has w1 accept both its steps.
static void
start_accepted(char *run_id)
{
	post_worker("w1", 2, 1);
	turn();
	snprintf(run_id, 64, "%s", start_run(DEF_TIMEOUT));
	answer_all(true);
	turn();
}

// ---- dispatch and capacity ----

Test(engine, dispatch_fills_the_slots_and_no_more)
{
	post_worker("w1", 2, 1);
	turn();
	start_run("{\"name\":\"five\",\"steps\":["
	          "{\"id\":\"s1\",\"type\":\"noop\"},{\"id\":\"s2\",\"type\":\"noop\"},"
	          "{\"id\":\"s3\",\"type\":\"noop\"},{\"id\":\"s4\",\"type\":\"noop\"},"
	          "{\"id\":\"s5\",\"type\":\"noop\"}]}");
	cr_expect_eq(assigned(), 2, "assigned %zu to a 2-slot worker",
	    assigned());
	cr_expect_eq(worker("w1")->inflight, 2);
	// Published only after the commit, and in it: the run, its steps.
	cr_expect_eq(count_published("run_started"), 1);
	cr_expect_eq(count_published("step_dispatched"), 2);
}

// ---- effects are applied once ----

// A step timeout fires: one RELEASE lowers the worker's in-flight count by
// exactly one, and one retry timer replaces the timeout timer.
Test(engine, fired_timeout_yields_one_retry_timer_and_one_release)
{
	post_worker("w1", 2, 1);
	turn();
	start_run(DEF_TIMEOUT);
	cr_assert_eq(assigned(), 2);
	answer_all(true);
	turn();
	cr_assert_eq(worker("w1")->inflight, 2);
	cr_assert_eq(F.e->ntimers, 1, "one step timeout timer (a's), got %zu",
	    F.e->ntimers);

	advance(1001);
	turn(); // a's timeout fires
	cr_expect_eq(count_published("step_timed_out"), 1);
	cr_expect_eq(count_published("step_retry_scheduled"), 1);
	cr_expect_eq(F.e->ntimers, 1,
	    "the timeout timer should give way to exactly one retry timer, "
	    "there are %zu", F.e->ntimers);
	cr_expect_eq(worker("w1")->inflight, 1,
	    "one release must lower in-flight from 2 to 1, it is %u",
	    worker("w1")->inflight);
}

// A worker with slots+queue = capacity never holds more attempts than
// that, through timeouts (aborts), rejections and results. a times out
// while b runs on: its one release must leave b counted.
Test(engine, worker_never_holds_more_than_its_capacity)
{
	for (uint32_t slots = 1; slots <= 2; slots++) {
		if (slots > 1) {
			fake_close();
			fake_open(3);
		}
		post_worker("w1", slots, 1);
		turn();
		const char *id = start_run(
		    "{\"name\":\"cap\",\"steps\":["
		    "{\"id\":\"a\",\"type\":\"noop\",\"timeout_ms\":1000,"
		    "\"retry\":{\"max_attempts\":3,\"backoff\":\"fixed\","
		    "\"initial_ms\":0}},"
		    "{\"id\":\"b\",\"type\":\"noop\",\"timeout_ms\":100000,"
		    "\"retry\":{\"max_attempts\":3,\"backoff\":\"fixed\","
		    "\"initial_ms\":0}},"
		    "{\"id\":\"c\",\"type\":\"noop\"},{\"id\":\"d\",\"type\":\"noop\"}]}");
		for (int round = 0; round < 6; round++) {
			answer_all(round != 2); // one round of rejections
			turn();
			advance(600);
			turn(); // timeouts fire every other round
		}
		// Let everything finish: results for whatever is current.
		for (int i = 0; i < 20 && F.held > 0; i++) {
			answer_all(true);
			turn();
			for (size_t k = 0; k < F.nops; k++) {
				for (size_t t = 0; t < F.ops[k].nitems && t < 8; t++) {
					weft_run *r = engine_run(F.e, id);
					if (r == NULL) {
						break;
					}
					long s = engine_step_index(r, F.ops[k].steps[t]);
					if (s >= 0 && r->steps[s].state ==
					                  WEFT_STEP_RUNNING) {
						post_result(id, F.ops[k].steps[t],
						    r->steps[s].attempt, true);
						break;
					}
				}
			}
			turn();
		}
		cr_expect_leq(F.held_max, (int) slots,
		    "a %u-slot worker with no queue held %d attempts at once",
		    slots, F.held_max);
		cr_expect_leq(worker("w1")->inflight, slots);
	}
}

// ---- worker loss ----

Test(engine, silent_worker_is_lost_after_lost_after_rounds)
{
	post_worker("w1", 2, 1);
	turn();
	start_run(DEF_TIMEOUT);
	answer_all(true);
	turn();
	for (uint64_t round = 2; round <= 4; round++) {
		post_survey_end(round);
		turn();
		cr_expect_eq(count_published("worker_lost"), round < 4 ? 0 : 1,
		    "after round %llu", (unsigned long long) round);
	}
	cr_expect_eq(count_published("step_lost"), 2);
	cr_expect_eq(worker("w1")->inflight, 0);
	cr_expect_eq(worker("w1")->state, WORKER_LOST);
}

// ---- the write-ahead rule ----

static weft_err (*real_commit)(weft_store *);

// hook_commit makes the engine's store commit through fn, with ops (the
// test's, static) a copy of the store's; fn calls real_commit to commit.
static void
hook_commit(weft_store_ops *ops, weft_err (*fn)(weft_store *))
{
	*ops            = *F.e->store->ops;
	real_commit     = ops->commit;
	ops->commit     = fn;
	F.e->store->ops = ops;
}

static weft_err
failing_commit(weft_store *s)
{
	s->ops->rollback(s);
	snprintf(s->error, sizeof(s->error), "injected: commit fails");
	return (WEFT_EUNAVAIL);
}

// With the commit failing and the engine stopping, nothing of the batch
// may leave: no event published, no ack, no assignment, no reply.
Test(engine, failed_commit_releases_nothing)
{
	static weft_store_ops ops;
	const char           *id;

	post_worker("w1", 2, 1);
	turn();
	id = start_run(DEF_TIMEOUT);
	answer_all(true);
	turn();
	size_t pub = F.npublished, ops0 = F.nops, rep = F.nreplies;

	// From now on every commit fails; stopping makes the engine give up
	// on it instead of retrying forever.
	hook_commit(&ops, failing_commit);
	atomic_store(&F.e->stopping, true);
	post_result(id, "a", 1, true);
	post_result(id, "b", 1, true);
	turn();
	cr_expect_eq(F.npublished, pub, "events published without a commit");
	cr_expect_eq(F.nacks, 0, "results acked without a commit");
	cr_expect_eq(F.nops, ops0, "assignments sent without a commit");
	cr_expect_eq(F.nreplies, rep, "replies sent without a commit");
	ops.commit = real_commit;
}

// ---- the pipelined commit ----

static sem_t gate; // one post lets one commit through

static weft_err
gated_commit(weft_store *s)
{
	sem_wait(&gate);
	return (real_commit(s));
}

static uint64_t
stored_events(void)
{
	weft_store *s;
	uint64_t    max = 0;
	char        err[256];

	cr_assert_eq(weft_store_open(&s, F.url, NULL, true, err, sizeof(err)), WEFT_OK,
	    "%s", err);
	cr_assert_eq(weft_store_max_event_id(s, &max), WEFT_OK);
	weft_store_close(s);
	return (max);
}

// With the store thread on, a batch commits while the engine goes on; what
// it recorded (its events, the acks of its results, the assignments and
// replies it made) leaves only once it is durable, on the engine thread.
Test(engine, pipelined_batch_leaves_only_once_durable)
{
	static weft_store_ops ops;
	char                  id[64];

	start_accepted(id);
	size_t   pub = F.npublished, acks = F.nacks;
	uint64_t stored = stored_events();

	sem_init(&gate, 0, 0);
	hook_commit(&ops, gated_commit);
	F.e->inline_max = 0; // every batch through the store thread
	engine_committer_start(F.e);
	post_result(id, "a", 1, true);
	post_result(id, "b", 1, true);
	turn(); // handed to the store thread, whose commit waits at the gate
	cr_expect_eq(F.npublished, pub, "events published before the commit");
	cr_expect_eq(F.nacks, acks, "results acked before the commit");
	cr_expect_eq(stored_events(), stored, "the gate let a commit through");
	sem_post(&gate);
	engine_quiesce(F.e); // the engine's next turn: the batch is out
	cr_expect_eq(F.nacks, acks + 2, "both results acked after the commit");
	cr_expect_gt(F.npublished, pub, "nothing published after the commit");
	cr_expect_str_eq(F.published[F.npublished - 1], "run_succeeded");
	uint64_t now = stored_events();
	cr_expect_eq(now, atomic_load(&F.e->last_event_id),
	    "published events the store does not hold");

	// A new run: its reply and its assignments wait for its batch, also
	// through a turn that makes nothing new.
	size_t rep = F.nreplies, nops = F.nops;
	post_run(DEF_TIMEOUT);
	turn();
	turn();
	cr_expect_eq(F.nreplies, rep, "a reply left before its commit");
	cr_expect_eq(F.nops, nops, "assignments left before their commit");
	sem_post(&gate);
	engine_quiesce(F.e);
	cr_expect_eq(F.nreplies, rep + 1, "no reply after the commit");
	cr_expect_gt(F.nops, nops, "no assignment after the commit");
	cr_expect_eq(stored_events(), atomic_load(&F.e->last_event_id));
	engine_committer_stop(F.e);
	ops.commit = real_commit;
	sem_destroy(&gate);
}

// Two batches back to back, each choosing an assignment for w1: the first
// is released (its assignment sent) once the second is on the store
// thread, and sends its own assignment only; the second's waits for its
// commit.
Test(engine, next_batch_assignments_wait_for_their_own_commit)
{
	static weft_store_ops ops;
	static const char    *one =
	    "{\"name\":\"one\",\"steps\":[{\"id\":\"x\",\"type\":\"noop\"}]}";
	size_t                nops;

	post_worker("w1", 8, 1);
	turn();
	sem_init(&gate, 0, 0);
	hook_commit(&ops, gated_commit);
	F.e->inline_max = 0; // every batch through the store thread
	engine_committer_start(F.e);
	nops = F.nops;
	post_run(one);
	turn(); // batch 1: the run and x's dispatch, at the gate
	cr_expect_eq(F.nops, nops, "an assignment left before its commit");
	sem_post(&gate); // batch 1 commits
	post_run(one);
	turn(); // batch 2 to the store thread (at the gate), batch 1 out
	cr_assert_eq(F.nops, nops + 1, "batch 1's assignment did not go");
	cr_expect_eq(F.ops[nops].nitems, 1,
	    "batch 2's assignment left with batch 1's, before its commit");
	sem_post(&gate);
	engine_quiesce(F.e);
	cr_expect_eq(F.nops, nops + 2, "batch 2's assignment after its commit");
	cr_expect_eq(stored_events(), atomic_load(&F.e->last_event_id));
	engine_committer_stop(F.e);
	ops.commit = real_commit;
	sem_destroy(&gate);
}

// copy_file copies the SQLite database at from, with its WAL, to to.
static void
copy_file(const char *from, const char *to)
{
	static const char *const sfx[] = { "", "-wal" };

	for (size_t k = 0; k < 2; k++) {
		char  a[700], b[700], buf[65536];
		FILE *in, *out;
		size_t n;
		cr_assert_lt(strlen(from) + strlen(sfx[k]), sizeof(a));
		cr_assert_lt(strlen(to) + strlen(sfx[k]), sizeof(b));
		memcpy(a, from, strlen(from));
		strcpy(a + strlen(from), sfx[k]);
		memcpy(b, to, strlen(to));
		strcpy(b + strlen(to), sfx[k]);
		if ((in = fopen(a, "rb")) == NULL) {
			continue; // no WAL
		}
		cr_assert_not_null(out = fopen(b, "wb"));
		while ((n = fread(buf, 1, sizeof(buf), in)) > 0) {
			cr_assert_eq(fwrite(buf, 1, n, out), n);
		}
		fclose(in);
		cr_assert_eq(fclose(out), 0);
	}
}

// stored_count runs a COUNT query on the engine's database.
static uint64_t
stored_count(const char *sql)
{
	weft_store *s;
	uint64_t    n = 0;
	char        err[256];

	cr_assert_eq(weft_store_open(&s, F.url, NULL, true, err, sizeof(err)),
	    WEFT_OK, "%s", err);
	cr_assert_eq(s->ops->query(s, sql, NULL, 0, weft_store_u64_row, &n),
	    WEFT_OK, "%s", s->error);
	weft_store_close(s);
	return (n);
}

// A batch that makes many steps ready at once (engine_split): the
// step_ready events no other event of the batch depends on commit last,
// and the assignments go as soon as the rest is durable, before that
// tail; the reply and the published events still wait for all of it.
// fan_def returns a definition "fan" of nsteps independent noop steps
// (caller frees): one batch makes them all ready, which engine_split
// splits.
static char *
fan_def(size_t nsteps)
{
	size_t len = 64 + nsteps * 40, o = 0;
	char  *def = malloc(len);

	cr_assert_not_null(def);
	o += (size_t) snprintf(def + o, len - o, "{\"name\":\"fan\",\"steps\":[");
	for (size_t i = 0; i < nsteps; i++) {
		o += (size_t) snprintf(def + o, len - o,
		    "%s{\"id\":\"s%zu\",\"type\":\"noop\"}", i ? "," : "", i);
	}
	snprintf(def + o, len - o, "]}");
	return (def);
}

// wait_commit_early waits until the store thread says a split batch's
// first part is durable.
static void
wait_commit_early(void)
{
	for (int i = 0; i < 5000; i++) {
		pthread_mutex_lock(&F.e->commit_lock);
		bool early = F.e->commit_early;
		pthread_mutex_unlock(&F.e->commit_lock);
		if (early) {
			return;
		}
		weft_clock_sleep_ms(1);
	}
	cr_assert_fail("the first part never committed");
}

Test(engine, fan_out_assigns_before_its_ready_tail_commits)
{
	static weft_store_ops ops;
	const size_t          nsteps = 1500;
	char                 *def    = fan_def(nsteps);

	post_worker("w1", 2, 1);
	turn();
	size_t rep = F.nreplies, nops = F.nops, pub = F.npublished;

	sem_init(&gate, 0, 0);
	hook_commit(&ops, gated_commit);
	F.e->inline_max = 0;
	engine_committer_start(F.e);
	post_run(def);
	turn(); // the batch waits at the gate: nothing left yet
	weft_clock_sleep_ms(20);
	turn();
	cr_expect_eq(F.nops, nops, "assignments before any commit");

	sem_post(&gate); // the first part commits; the tail waits
	wait_commit_early();
	turn();
	cr_expect_eq(assigned(), 2, "the worker's two slots, assigned early");
	cr_expect_eq(F.nreplies, rep, "the reply left before the tail");
	cr_expect_eq(F.npublished, pub, "events published before the tail");
	cr_expect_eq(stored_count("SELECT COUNT(*) FROM events WHERE type = "
	                          "'step_dispatched'"),
	    2);
	cr_expect_eq(stored_count("SELECT COUNT(*) FROM events WHERE type = "
	                          "'step_ready'"),
	    2, "only the dispatched steps' ready events are in the first part");
	// What a power cut now would leave: the first part only (the tail's
	// rows wait in SQLite's cache for its COMMIT at the gate).
	char crash[sizeof(F.url)];
	cr_assert_lt(strlen(F.url) + 6, sizeof(crash));
	strcpy(crash, F.url);
	strcat(crash, ".crash");
	copy_file(F.url + 7, crash + 7);

	sem_post(&gate);
	engine_quiesce(F.e);
	cr_expect_eq(F.nreplies, rep + 1, "no reply after the tail");
	cr_expect_eq(stored_count("SELECT COUNT(*) FROM events WHERE type = "
	                          "'step_ready'"),
	    nsteps);
	cr_expect_eq(stored_events(), atomic_load(&F.e->last_event_id));
	// Each step is ready before it is dispatched, in ids and in seqs.
	cr_expect_eq(stored_count("SELECT COUNT(*) FROM events d JOIN events r "
	                          "ON r.run_id = d.run_id AND r.step_id = "
	                          "d.step_id AND r.type = 'step_ready' WHERE "
	                          "d.type = 'step_dispatched' AND r.id < d.id "
	                          "AND r.seq < d.seq"),
	    2);
	engine_committer_stop(F.e);
	ops.commit = real_commit;
	sem_destroy(&gate);
	free(def);

	// Restarted on that copy: the steps whose step_ready was lost are
	// ready again (recovery finds their dependencies, none, ended).
	snprintf(F.url, sizeof(F.url), "%s", crash);
	cr_assert_eq(stored_count("SELECT COUNT(*) FROM events WHERE type = "
	                          "'step_ready'"),
	    2, "the copy holds the first part only");
	// The first part's two dispatched steps were held back (the
	// projection lag): the copy has their events and steps_from, not
	// their rows, and the restart writes them from the events.
	cr_assert_eq(stored_count("SELECT COUNT(*) FROM steps"), 0,
	    "the copy holds no step row");
	cr_assert_gt(stored_count("SELECT steps_from FROM weft_database"), 0);
	fake_restart();
	cr_expect_eq(stored_count("SELECT COUNT(*) FROM steps WHERE status = "
	                          "'dispatched'"),
	    2, "the held rows written again from the events");
	turn();
	cr_expect_eq(stored_count("SELECT COUNT(*) FROM events WHERE type = "
	                          "'step_ready'"),
	    nsteps, "the lost step_ready events made again");
	cr_assert_eq(weft_store_lag_flush(engine_quiesce(F.e)), WEFT_OK);
	cr_expect_eq(stored_count("SELECT COUNT(*) FROM steps WHERE status "
	                          "IN ('ready', 'dispatched')"),
	    nsteps);
}

// ---- store outages ----

static int fails_left; // commits that fail before the real one runs
static int tail_passes; // commits that pass before one waits at the gate

// flaky_gated_commit fails fails_left times, lets tail_passes through,
// then waits at the gate: a split batch whose first part meets an outage.
static weft_err
flaky_gated_commit(weft_store *s)
{
	if (fails_left > 0) {
		fails_left--;
		return (failing_commit(s));
	}
	if (tail_passes-- == 0) {
		sem_wait(&gate);
	}
	return (real_commit(s));
}

// late_mail is posted while the engine waits for a split batch's tail,
// which is then let through.
static engine_mail *late_mail;

static void *
post_late_then_open_gate(void *arg)
{
	(void) arg;
	weft_clock_sleep_ms(30);
	weft_mailbox_post(&F.e->mailbox, &late_mail->node);
	weft_clock_sleep_ms(200); // an outage wait (50 ms) would take it
	sem_post(&gate);
	return (NULL);
}

// A split batch's first part that met an outage and then committed: the
// store is back, so while the tail commits the engine waits for it as
// for any commit, not as in an outage (which would refuse every request
// that writes with "store unavailable").
Test(engine, store_back_before_the_split_tail_is_not_an_outage)
{
	static weft_store_ops ops;
	char                 *def = fan_def(1500);
	bool                  down;
	pthread_t             t;

	post_worker("w1", 2, 1);
	turn();
	sem_init(&gate, 0, 0);
	hook_commit(&ops, flaky_gated_commit);
	F.e->inline_max = 0;
	fails_left      = 1; // the first part's first try
	tail_passes     = 1; // its second try; the tail waits
	engine_committer_start(F.e);
	post_run(def);
	turn();
	wait_commit_early();
	pthread_mutex_lock(&F.e->commit_lock);
	down = F.e->commit_down;
	pthread_mutex_unlock(&F.e->commit_lock);
	cr_expect(!down, "the store counts as away during the tail");
	cr_expect_eq(fails_left, 0);
	turn();
	cr_expect_eq(assigned(), 2, "the assignments waited for the tail");
	// A request that writes, while the tail commits: it waits for the
	// batch, as a request does behind any commit, and then succeeds.
	late_mail          = define_mail();
	size_t rep         = F.nreplies;
	cr_assert_eq(pthread_create(&t, NULL, post_late_then_open_gate, NULL), 0);
	engine_quiesce(F.e);
	pthread_join(t, NULL);
	// The run's reply, released with the batch; not the define's yet.
	cr_expect_eq(F.nreplies, rep + 1, "replies after the tail: %zu",
	    F.nreplies - rep);
	turn();
	engine_quiesce(F.e); // the define's own batch
	cr_assert_eq(F.nreplies, rep + 2);
	json_t *r = F.replies[rep + 1];
	cr_expect_eq(json_integer_value(json_object_get(r, "code")), 0,
	    "the define was refused: %s",
	    json_string_value(json_object_get(r, "error")));
	cr_expect_eq(stored_events(), atomic_load(&F.e->last_event_id));
	engine_committer_stop(F.e);
	ops.commit = real_commit;
	sem_destroy(&gate);
	free(def);
}

static weft_err
flaky_commit(weft_store *s)
{
	if (fails_left > 0) {
		fails_left--;
		return (failing_commit(s));
	}
	return (real_commit(s));
}

static size_t
mail_count(weft_mail *m)
{
	size_t n = 0;
	for (; m != NULL; m = m->next) {
		n++;
	}
	return (n);
}

// While a commit retries, the engine keeps taking mail without acting on
// it: a request that would write is refused at once (not held until the
// store is back), a result is dropped unacked (the worker sends it
// again), a survey answer is parked and taken, in order, after the
// commit. The batch it was writing is released once, after its commit.
Test(engine, outage_refuses_writes_and_acks_nothing)
{
	static weft_store_ops ops;
	char                  run_id[64];
	weft_mail            *batch;

	start_accepted(run_id);
	size_t rep = F.nreplies;

	hook_commit(&ops, flaky_commit);
	fails_left      = 2;
	// The batch whose commit fails: a's result.
	post_result(run_id, "a", 1, true);
	batch = weft_mailbox_drain(&F.e->mailbox, 0);
	// What comes while it retries.
	weft_mailbox_post(&F.e->mailbox, &define_mail()->node);
	post_result(run_id, "b", 1, true);
	// Rounds enough to lose a worker that did not answer them.
	for (uint64_t round = 2; round <= 5; round++) {
		post_worker("w1", 2, round);
		post_survey_end(round);
	}
	engine_iteration(F.e, batch);

	cr_assert_eq(fails_left, 0, "the commit was not retried");
	cr_assert_eq(F.nreplies, rep + 1, "the define got no answer at once");
	json_t     *r   = F.replies[rep];
	const char *msg = json_string_value(json_object_get(r, "error"));
	cr_expect_eq(json_integer_value(json_object_get(r, "code")),
	    WEFT_EUNAVAIL);
	cr_expect(msg != NULL &&
	        strstr(msg, "store unavailable: injected: commit fails") != NULL,
	    "error: %s", msg);
	cr_expect_eq(F.nacks, 1, "acks: %zu, want a's only", F.nacks);
	// Parked, and kept small: w1's latest answer, the latest end.
	cr_expect_eq(mail_count(F.e->parked), 1, "survey answers parked: %zu",
	    mail_count(F.e->parked));
	cr_expect(F.e->parked_end != NULL && F.e->parked_end->round == 5,
	    "the latest survey end is not parked");
	cr_expect(atomic_load(&F.e->store_ok), "store_ok after the commit");
	cr_expect_eq(count_published("step_succeeded"), 1);
	// The parked answers are taken next turn: w1 is still alive.
	turn();
	cr_expect_null(F.e->parked);
	cr_expect_null(F.e->parked_end);
	cr_expect_eq(worker("w1")->state, WORKER_ALIVE);
	cr_expect_eq(worker("w1")->last_round, 5);
	cr_expect_eq(F.e->round, 5);
	cr_expect_eq(count_published("worker_lost"), 0);
	// b's result comes again (the worker's outbox) and counts now.
	post_result(run_id, "b", 1, true);
	F.held++; // the same attempt, sent twice
	turn();
	cr_expect_eq(count_published("step_succeeded"), 2);
	cr_expect_eq(count_published("run_succeeded"), 1);
	ops.commit = real_commit;
}

// ---- recovery ----

Test(engine, reopened_engine_recovers_the_run)
{
	const char *id;
	char        err[512];

	post_worker("w1", 2, 1);
	turn();
	id = start_run(DEF_TIMEOUT);
	char run_id[64];
	snprintf(run_id, sizeof(run_id), "%s", id);
	answer_all(true);
	turn();
	post_result(run_id, "b", 1, true);
	turn();
	// The same store, a new engine: the run is back with a done and b
	// running (its attempt still in flight on w1).
	weft_engine_close(F.e);
	weft_engine_cfg cfg = { .name = "coordinator", .db_url = F.url,
		.survey_ms = 1000, .lost_after = 3 };
	cr_assert_eq(weft_engine_open(&F.e, &cfg, err, sizeof(err)), WEFT_OK,
	    "%s", err);
	weft_run *r = engine_run(F.e, run_id);
	cr_assert_not_null(r, "run %s not recovered", run_id);
	cr_expect_eq(r->steps[engine_step_index(r, "b")].state,
	    WEFT_STEP_SUCCEEDED);
	cr_expect_eq(r->steps[engine_step_index(r, "a")].state,
	    WEFT_STEP_RUNNING);
	cr_expect_eq(worker("w1")->inflight, 1);
}

// ---- results only from the holder ----

// A result for a running attempt from any node but the one holding it is
// result_ignored and changes nothing; the holder's own result then applies.
Test(engine, result_from_another_node_is_ignored)
{
	weft_wire   rogue;
	char        run_id[64];

	weft_wire_init(&rogue, "rogue");
	start_accepted(run_id);
	post_result_from(&rogue, run_id, "b", 1, true);
	turn();
	cr_expect_eq(count_published("result_ignored"), 1);
	cr_expect_eq(count_published("step_succeeded"), 0,
	    "a result from a node that does not hold the attempt applied");
	weft_run *r = engine_run(F.e, run_id);
	cr_assert_not_null(r);
	cr_expect_eq(r->steps[engine_step_index(r, "b")].state,
	    WEFT_STEP_RUNNING);
	post_result(run_id, "b", 1, true);
	turn();
	cr_expect_eq(count_published("step_succeeded"), 1);
}

// ---- node identity ----

// refused_incarnation tells whether the engine is refusing inc of name in
// its surveys.
static bool
refused_incarnation(const char *name, uint64_t inc)
{
	char    incs[24];
	size_t  k;
	json_t *r;

	snprintf(incs, sizeof(incs), "%llu", (unsigned long long) inc);
	json_array_foreach (F.e->refusals, k, r) {
		if (strcmp(json_string_value(json_object_get(r, "name")), name) ==
		        0 &&
		    strcmp(json_string_value(json_object_get(r, "incarnation")),
		        incs) == 0) {
			return (true);
		}
	}
	return (false);
}

// A second live process under a taken name, answering the same survey
// round as the holder, is refused with node_conflict; the holder keeps its
// attempt, and the newcomer's results for it are ignored. Either order of
// the two answers in the round.
Test(engine, second_live_node_under_a_name_is_refused)
{
	for (int order = 0; order < 2; order++) {
		weft_wire   dup;
		const char *id;
		char        run_id[64];

		if (order == 1) {
			fake_close();
			fake_open(3);
		}
		weft_wire_init(&dup, "w1");
		post_worker("w1", 2, 1);
		post_survey_end(1);
		turn();
		id = start_run(DEF_TIMEOUT);
		snprintf(run_id, sizeof(run_id), "%s", id);
		answer_all(true);
		turn();
		if (order == 0) {
			post_worker("w1", 2, 2);
			post_worker_from(&dup, "w1", 8, 2);
		} else {
			post_worker_from(&dup, "w1", 8, 2);
			post_worker("w1", 2, 2);
		}
		post_survey_end(2);
		turn();
		cr_expect_eq(count_published("node_conflict"), 1, "order %d", order);
		cr_expect(refused_incarnation("w1", dup.incarnation), "order %d",
		    order);
		cr_expect(!refused_incarnation("w1", F.wire_w1.incarnation));
		cr_expect_eq(worker("w1")->incarnation, F.wire_w1.incarnation);
		cr_expect_eq(worker("w1")->slots, 2, "the newcomer's numbers applied");
		cr_expect_eq(count_published("step_lost"), 0);
		// Its result for the holder's attempt changes nothing.
		post_result_from(&dup, run_id, "b", 1, true);
		turn();
		cr_expect_eq(count_published("result_ignored"), 1);
		cr_expect_eq(count_published("step_succeeded"), 0);
		// It keeps answering until it has heard: no second event.
		post_worker_from(&dup, "w1", 8, 3);
		post_worker("w1", 2, 3);
		post_survey_end(3);
		turn();
		cr_expect_eq(count_published("node_conflict"), 1);
		post_result(run_id, "b", 1, true);
		turn();
		cr_expect_eq(count_published("step_succeeded"), 1);
		weft_wire_fini(&dup);
	}
}

// A restart: the old process is silent for a round in which the new one
// answers, and the new one takes the name over at its next answer. No
// node_conflict.
Test(engine, restart_under_the_same_name_takes_over)
{
	weft_wire next;

	weft_wire_init(&next, "w1");
	post_worker("w1", 2, 1);
	post_survey_end(1);
	turn();
	post_worker_from(&next, "w1", 3, 2); // the old one is gone
	post_survey_end(2);
	turn();
	cr_expect_eq(worker("w1")->incarnation, F.wire_w1.incarnation,
	    "taken over after one answer");
	post_worker_from(&next, "w1", 3, 3);
	post_survey_end(3);
	turn();
	cr_expect_eq(worker("w1")->incarnation, next.incarnation,
	    "not taken over after two rounds the holder was silent in");
	post_worker_from(&next, "w1", 3, 4);
	post_survey_end(4);
	turn();
	cr_expect_eq(worker("w1")->slots, 3);
	cr_expect_eq(count_published("node_conflict"), 0);
	cr_expect_eq(count_published("worker_lost"), 0);
	// The old process coming back now is the newcomer: refused.
	post_worker("w1", 2, 5);
	post_worker_from(&next, "w1", 3, 5);
	post_survey_end(5);
	turn();
	cr_expect_eq(count_published("node_conflict"), 1);
	cr_expect(refused_incarnation("w1", F.wire_w1.incarnation));
	weft_wire_fini(&next);
}

// ---- secrets ----

#define DEF_SECRET                                                        \
	"{\"name\":\"sec\",\"params\":{\"tok\":{\"type\":\"string\","         \
	"\"secret\":true}},\"steps\":[{\"id\":\"a\",\"type\":\"noop\",\"with\":" \
	"{\"t\":\"${params.tok}\"}}]}"

// run_reply posts a run request of def with params (JSON text) and
// returns its reply {code, error, body} (borrowed from F).
static json_t *
run_reply(const char *def, const char *params)
{
	Weft__Envelope       env = WEFT__ENVELOPE__INIT;
	Weft__ControlRequest req = WEFT__CONTROL_REQUEST__INIT;
	Weft__RunRequest     run = WEFT__RUN_REQUEST__INIT;
	size_t               before = F.nreplies;

	run.definition_json = (char *) def;
	run.params_json     = (char *) params;
	req.req_case        = WEFT__CONTROL_REQUEST__REQ_RUN;
	req.run             = &run;
	env.body_case       = WEFT__ENVELOPE__BODY_CONTROL;
	env.control         = &req;
	post(MAIL_CONTROL, &env, 0);
	turn();
	cr_assert_eq(F.nreplies, before + 1, "no reply to the run request");
	return (F.replies[before]);
}

// reopen closes the engine and opens a new one on the same store, with
// key as its secret key (NULL: none).
static void
reopen(const uint8_t *key)
{
	char            err[512];
	weft_engine_cfg cfg = { .name = "coordinator", .db_url = F.url,
		.survey_ms = 1000, .lost_after = 3 };

	if (key != NULL) {
		memcpy(cfg.secret_key, key, WEFT_KEY_LEN);
		cfg.has_secret_key = true;
	}
	weft_engine_close(F.e);
	cr_assert_eq(weft_engine_open(&F.e, &cfg, err, sizeof(err)), WEFT_OK,
	    "%s", err);
	weft_engine_set_io(F.e, &F_io);
	weft_engine_set_clock(F.e, &F_clock);
}

Test(engine, run_with_secrets_needs_a_key)
{
	json_t *r = run_reply(DEF_SECRET, "{\"tok\":\"" SECRET_MARK "\"}");

	cr_expect_neq(json_integer_value(json_object_get(r, "code")), 0);
	cr_expect(strstr(json_string_value(json_object_get(r, "error")),
	              "no key") != NULL,
	    "%s", json_string_value(json_object_get(r, "error")));
	cr_expect_eq(F.published_secret, 0);
	// Without a secret, the same definition runs.
	r = run_reply(DEF_SECRET, "{}");
	cr_expect_eq(json_integer_value(json_object_get(r, "code")), 0);
}

// Published events hold "***"; the assignment the clear value; the store
// the sealed copy, which a reopened engine with the key opens, and one
// with another key does not (the run stays, marked).
Test(engine, secrets_sealed_masked_and_recovered)
{
	uint8_t key[WEFT_KEY_LEN], other[WEFT_KEY_LEN];
	json_t *r;
	char    id[64], *box = NULL;
	weft_run *run;

	memset(key, 0x11, sizeof(key));
	memset(other, 0x22, sizeof(other));
	reopen(key);
	post_worker("w1", 2, 1);
	turn();
	r = run_reply(DEF_SECRET, "{\"tok\":\"" SECRET_MARK "\"}");
	cr_assert_eq(json_integer_value(json_object_get(r, "code")), 0, "%s",
	    json_string_value(json_object_get(r, "error")));
	snprintf(id, sizeof(id), "%s",
	    json_string_value(
	        json_object_get(json_object_get(r, "body"), "run_id")));
	turn();
	cr_expect_gt(F.npublished, 0);
	cr_expect_eq(F.published_secret, 0, "a published event holds it");
	cr_expect_eq(F.assigned_secret, 1, "the assignment lacks it");
	// Accepted: the op ends with this engine, not after it is closed.
	answer_all(true);
	turn();
	cr_assert_eq(weft_store_get_secrets(F.e->store, id, &box), WEFT_OK);
	cr_expect_not_null(box);
	cr_expect(box == NULL || strstr(box, SECRET_MARK) == NULL);
	free(box);

	reopen(key);
	run = engine_run(F.e, id);
	cr_assert_not_null(run, "run %s not recovered", id);
	cr_expect_str_eq(json_string_value(json_object_get(run->params, "tok")),
	    SECRET_MARK, "recovered in clear");
	cr_expect(!run->secrets_lost);

	reopen(other);
	run = engine_run(F.e, id);
	cr_assert_not_null(run, "a run whose secrets do not open is kept");
	cr_expect(run->secrets_lost);
	cr_expect_str_eq(json_string_value(json_object_get(run->params, "tok")),
	    "***");
	reopen(NULL);
	run = engine_run(F.e, id);
	cr_assert_not_null(run);
	cr_expect(run->secrets_lost, "no key: not opened either");
}

// The holder misses one round (a pause), a duplicate answers it and the
// next one first: the holder's answer in that next round still makes the
// duplicate the one refused. A takeover needs the holder silent for two
// rounds, decided when a round ends, not by who answers first.
Test(engine, paused_holder_keeps_its_name)
{
	weft_wire dup;

	weft_wire_init(&dup, "w1");
	post_worker("w1", 2, 1);
	post_survey_end(1);
	turn();
	post_worker_from(&dup, "w1", 8, 2); // the holder pauses
	post_survey_end(2);
	turn();
	post_worker_from(&dup, "w1", 8, 3); // first in round 3 ...
	post_worker("w1", 2, 3);            // ... the holder right after
	post_survey_end(3);
	turn();
	cr_expect_eq(worker("w1")->incarnation, F.wire_w1.incarnation);
	cr_expect(refused_incarnation("w1", dup.incarnation));
	cr_expect_eq(count_published("node_conflict"), 1);
	weft_wire_fini(&dup);
}

// ---- a worker that stops: goodbye ----

// start_held joins w1 (round 1), starts DEF_TIMEOUT with both steps
// accepted by it, and copies the run id into run_id (64 bytes).
static void
start_held(char *run_id)
{
	post_worker("w1", 2, 1);
	post_survey_end(1);
	turn();
	snprintf(run_id, 64, "%s", start_run(DEF_TIMEOUT));
	cr_assert_eq(assigned(), 2);
	answer_all(true);
	turn();
}

// post_goodbye_from posts a Goodbye from the process wire: released keys
// ("run/step/attempt") or, final, the keys lost at its drain deadline.
static void
post_goodbye_from(weft_wire *wire, char **keys, size_t n, bool final)
{
	Weft__Envelope env = WEFT__ENVELOPE__INIT;
	Weft__Goodbye  g   = WEFT__GOODBYE__INIT;

	g.final            = final;
	g.drain_timeout_ms = 30000;
	if (final) {
		g.n_lost = n;
		g.lost   = keys;
	} else {
		g.n_released = n;
		g.released   = keys;
	}
	env.body_case = WEFT__ENVELOPE__BODY_GOODBYE;
	env.goodbye   = &g;
	post_from(wire, MAIL_GOODBYE, &env, 0);
}

// A draining worker hands back what it never started: step_released, at
// once, no retry spent, nothing dispatched to it again; its running
// attempt finishes there; its survey answers keep it draining (no new
// worker_joined); its last goodbye makes it left, never lost.
Test(engine, draining_worker_releases_queued_and_leaves)
{
	char key[128];
	char *keys[1] = { key };

	char run_id[64];
	start_held(run_id);
	size_t acks = F.nacks, ops = F.nops;
	snprintf(key, sizeof(key), "%s/b/1", run_id);
	post_goodbye_from(&F.wire_w1, keys, 1, false);
	turn();
	cr_expect_eq(F.nacks, acks + 1, "the goodbye is acked after its commit");
	cr_expect_eq(count_published("worker_draining"), 1);
	cr_expect_eq(count_published("step_released"), 1);
	cr_expect_eq(count_published("step_failed") + count_published("step_lost") +
	        count_published("step_retry_scheduled"), 0);
	cr_expect_eq(worker("w1")->state, WORKER_DRAINING);
	cr_expect_eq(worker("w1")->inflight, 1, "b's slot is free again");
	weft_run *r = engine_run(F.e, run_id);
	cr_assert_not_null(r);
	long b = engine_step_index(r, "b");
	cr_expect_eq(r->steps[b].state, WEFT_STEP_READY);
	cr_expect_eq(r->steps[b].failures + r->steps[b].lost, 0);
	cr_expect_eq(F.nops, ops, "work dispatched to a draining worker");
	// The same goodbye again (its ack was lost): nothing new.
	post_goodbye_from(&F.wire_w1, keys, 1, false);
	turn();
	cr_expect_eq(count_published("step_released"), 1);
	cr_expect_eq(count_published("worker_draining"), 1);
	// It still answers surveys while a finishes: draining, not joined.
	post_worker("w1", 2, 2);
	post_survey_end(2);
	turn();
	cr_expect_eq(count_published("worker_joined"), 1);
	cr_expect_eq(worker("w1")->state, WORKER_DRAINING);
	cr_expect_eq(F.nops, ops);
	post_result(run_id, "a", 1, true);
	turn();
	cr_expect_eq(count_published("step_succeeded"), 1);
	post_goodbye_from(&F.wire_w1, NULL, 0, true);
	turn();
	cr_expect_eq(count_published("worker_left"), 1);
	cr_expect_eq(worker("w1")->state, WORKER_LEFT);
	cr_expect_eq(count_published("step_lost"), 0, "nothing was in flight");
	for (uint64_t round = 3; round <= 8; round++) {
		post_survey_end(round);
		turn();
	}
	cr_expect_eq(count_published("worker_lost"), 0,
	    "a worker that left is not missed");
	// Another worker takes the released step.
	post_worker_from(&F.wire, "w2", 2, 9);
	turn();
	cr_expect_eq(assigned(), 3, "b went to w2");
	cr_expect_eq(r->steps[b].state, WEFT_STEP_DISPATCHED);
}

// The last goodbye of a worker whose drain deadline cut an attempt short:
// that attempt is lost and retried (a step without a retry policy too),
// not failed; one it does not name never ran there and is released; a new
// process under the name gets it at once.
Test(engine, final_goodbye_loses_what_is_still_in_flight)
{
	char  key[128];
	char *keys[1] = { key };
	weft_wire next;

	char run_id[64];
	start_held(run_id);
	post_goodbye_from(&F.wire_w1, NULL, 0, false);
	turn();
	snprintf(key, sizeof(key), "%s/b/1", run_id);
	// a: in flight here, but not among the attempts it cut short: it
	// never ran there (say its refusal is still on its way): released.
	post_goodbye_from(&F.wire_w1, keys, 1, true);
	turn();
	cr_expect_eq(count_published("step_released"), 1, "a is not released");
	weft_run *r = engine_run(F.e, run_id);
	cr_assert_not_null(r);
	long b = engine_step_index(r, "b");
	cr_expect_eq(count_published("step_lost"), 1);
	cr_expect_eq(count_published("step_failed"), 0);
	cr_expect_eq(count_published("step_retry_scheduled"), 1,
	    "b has no retry policy, but a loss is retried");
	cr_expect_neq(r->steps[b].state, WEFT_STEP_FAILED);
	cr_expect_eq(r->steps[b].failures, 0);
	cr_expect_eq(worker("w1")->inflight, 0);
	// Restarted under the same name: taken at its first answer.
	weft_wire_init(&next, "w1");
	post_worker_from(&next, "w1", 2, 2);
	post_survey_end(2);
	turn();
	cr_expect_eq(worker("w1")->incarnation, next.incarnation);
	cr_expect_eq(worker("w1")->state, WORKER_ALIVE);
	cr_expect_eq(count_published("node_conflict"), 0);
	weft_wire_fini(&next);
}

// A goodbye from a process that does not hold the name releases nothing
// and makes nobody leave.
Test(engine, goodbye_from_another_process_changes_nothing)
{
	char  key[128];
	char *keys[1] = { key };
	weft_wire dup;

	char run_id[64];
	start_held(run_id);
	snprintf(key, sizeof(key), "%s/b/1", run_id);
	weft_wire_init(&dup, "w1");
	post_goodbye_from(&dup, keys, 1, false);
	post_goodbye_from(&dup, keys, 1, true);
	turn();
	cr_expect_eq(count_published("step_released"), 0);
	cr_expect_eq(count_published("worker_left"), 0);
	cr_expect_eq(count_published("step_lost"), 0);
	cr_expect_eq(worker("w1")->state, WORKER_ALIVE);
	cr_expect_eq(worker("w1")->inflight, 2);
	weft_wire_fini(&dup);
}

// A worker restarted fast re-sends the results in its spool before it
// holds its name again: they wait unacked (not result_ignored, not lost)
// and apply once it has taken the name over.
Test(engine, restarted_workers_results_wait_for_its_takeover)
{
	weft_wire next;

	char run_id[64];
	start_held(run_id);
	weft_wire_init(&next, "w1");
	size_t acks = F.nacks;
	post_worker_from(&next, "w1", 2, 2); // the old one is gone
	turn();
	post_result_from(&next, run_id, "b", 1, true);
	post_survey_end(2);
	turn();
	post_result_from(&next, run_id, "b", 1, true);
	turn();
	cr_expect_eq(F.nacks, acks, "a newcomer's results were acked");
	cr_expect_eq(count_published("result_ignored"), 0);
	post_worker_from(&next, "w1", 2, 3);
	post_survey_end(3);
	turn();
	cr_expect_eq(worker("w1")->incarnation, next.incarnation);
	post_result_from(&next, run_id, "b", 1, true);
	turn();
	cr_expect_eq(F.nacks, acks + 1);
	cr_expect_eq(count_published("step_succeeded"), 1,
	    "the spooled result applies once the name is taken over");
	weft_wire_fini(&next);
}

// ---- heartbeats and progress ----

// post_beats posts w1's survey answer of round carrying beats: attempt 1
// of steps[k] of run, silent for silent[k] ms, with progress[k] (JSON
// text, "" for none).
static void
post_beats(uint64_t round, const char *run, size_t n, const char **steps,
    const uint64_t *silent, const char **progress)
{
	Weft__Envelope     env     = WEFT__ENVELOPE__INIT;
	Weft__WorkerInfo   wi      = WEFT__WORKER_INFO__INIT;
	char              *types[] = { "noop" };
	Weft__AttemptBeat  b[8];
	Weft__AttemptBeat *bp[8];

	cr_assert_leq(n, 8);
	for (size_t k = 0; k < n; k++) {
		weft__attempt_beat__init(&b[k]);
		b[k].run_id        = (char *) run;
		b[k].step_id       = (char *) steps[k];
		b[k].attempt       = 1;
		b[k].silent_ms     = silent[k];
		b[k].progress_json = (char *) progress[k];
		bp[k]              = &b[k];
	}
	wi.name         = "w1";
	wi.dispatch_url = "tcp://127.0.0.1:1";
	wi.n_step_types = 1;
	wi.step_types   = types;
	wi.slots        = 4;
	wi.round        = round;
	wi.n_beats      = n;
	wi.beats        = bp;
	env.body_case   = WEFT__ENVELOPE__BODY_WORKER_INFO;
	env.worker_info = &wi;
	post_from(&F.wire_w1, MAIL_WORKER_INFO, &env, round);
}

static size_t
aborts_sent(void)
{
	size_t n = 0;
	for (size_t k = 0; k < F.nops; k++) {
		n += F.ops[k].naborts;
	}
	return (n);
}

#define DEF_BEATS                                                          \
	"{\"name\":\"beats\",\"params\":{\"tok\":{\"type\":\"string\","         \
	"\"secret\":true}},\"steps\":[{\"id\":\"a\",\"type\":\"noop\","          \
	"\"heartbeat_timeout_ms\":2000,\"retry\":{\"max_attempts\":2}},"      \
	"{\"id\":\"b\",\"type\":\"noop\"}]}"

// Survey answers carry each running attempt's silence and progress: the
// engine records progress (masked, well-formed only, of attempts the
// sender holds) and times out an attempt silent for its step's
// heartbeat_timeout_ms, with an abort to its worker.
Test(engine, beats_record_progress_and_time_out_silent_attempts)
{
	uint8_t key[WEFT_KEY_LEN];
	char    id[64];
	char   *huge = weft_xalloc(WEFT_WIRE_PROGRESS_MAX + 16);

	memset(key, 0x11, sizeof(key));
	reopen(key);
	post_worker("w1", 4, 1);
	turn();
	json_t *r = run_reply(DEF_BEATS, "{\"tok\":\"" SECRET_MARK "\"}");
	cr_assert_eq(json_integer_value(json_object_get(r, "code")), 0, "%s",
	    json_string_value(json_object_get(r, "error")));
	snprintf(id, sizeof(id), "%s",
	    json_string_value(
	        json_object_get(json_object_get(r, "body"), "run_id")));
	answer_all(true);
	turn();
	cr_assert_eq(worker("w1")->inflight, 2);

	// a reports a progress quoting the secret; b's progress is not JSON,
	// then too long; b has no heartbeat timeout however silent it is.
	memset(huge, 'x', WEFT_WIRE_PROGRESS_MAX + 4);
	huge[0]                          = '"';
	huge[WEFT_WIRE_PROGRESS_MAX + 3] = '"';
	huge[WEFT_WIRE_PROGRESS_MAX + 4] = '\0';
	const char    *steps[]    = { "a", "b", "b", "nope" };
	const uint64_t silent[]   = { 1999, 999999999, 0, 999999999 };
	const char    *progress[] = { "{\"msg\":\"using " SECRET_MARK "\"}",
		   "{not json", huge, "1" };
	post_beats(2, id, 4, steps, silent, progress);
	turn();
	cr_expect_eq(count_published("step_progress"), 1,
	    "only a's well-formed progress is recorded");
	cr_expect_eq(F.published_secret, 0, "the progress was not masked");
	cr_expect_eq(count_published("step_timed_out"), 0);
	cr_expect_eq(aborts_sent(), 0);

	// The same answer from another node changes nothing.
	const uint64_t long_silent[] = { 5000 };
	Weft__Envelope   env   = WEFT__ENVELOPE__INIT;
	Weft__WorkerInfo wi    = WEFT__WORKER_INFO__INIT;
	Weft__AttemptBeat forged = WEFT__ATTEMPT_BEAT__INIT;
	Weft__AttemptBeat *fp = &forged;
	char *types[] = { "noop" };
	forged.run_id        = id;
	forged.step_id       = "a";
	forged.attempt       = 1;
	forged.silent_ms     = 5000;
	forged.progress_json = "\"forged\"";
	wi.name = "w2";
	wi.dispatch_url = "tcp://127.0.0.1:2";
	wi.n_step_types = 1;
	wi.step_types = types;
	wi.slots = 1;
	wi.round = 2;
	wi.n_beats = 1;
	wi.beats = &fp;
	env.body_case = WEFT__ENVELOPE__BODY_WORKER_INFO;
	env.worker_info = &wi;
	post(MAIL_WORKER_INFO, &env, 2);
	turn();
	cr_expect_eq(count_published("step_timed_out"), 0,
	    "another node's beat timed the attempt out");
	cr_expect_eq(count_published("step_progress"), 1);

	// a silent for its heartbeat timeout: timed out, aborted, retried.
	post_beats(3, id, 1, steps, long_silent, (const char *[]) { "" });
	turn();
	cr_expect_eq(count_published("step_timed_out"), 1);
	cr_expect_eq(count_published("step_retry_scheduled"), 1);
	cr_expect_eq(aborts_sent(), 1, "no abort sent to the worker");
	cr_expect_eq(worker("w1")->inflight, 1, "a's slot is released");
	free(huge);
}

// ---- retention (retain.c) ----

// old_runs writes n runs of definition "old" that ended at ended_ms
// straight into the engine's store, as a coordinator long gone would
// have, and moves the engine's next event id past them.
static void
old_runs(int n, int64_t ended_ms)
{
	weft_store *s    = F.e->store;
	uint64_t    id   = F.e->next_event_id;
	weft_event *evs  = weft_xalloc((size_t) n * 4 * sizeof(*evs));
	char      (*ids)[16] = weft_xalloc((size_t) n * sizeof(*ids));
	json_t     *q    = json_pack("{s:s, s:i, s:{}, s:{}, s:i}", "definition",
	        "old", "version", 1, "input", "params", "steps", 1);
	json_t     *none = json_object();
	char       *qt   = json_dumps(q, JSON_COMPACT);
	size_t      k    = 0;

	for (int i = 0; i < n; i++) {
		static const enum weft_event_type t[] = { WEFT_EV_RUN_QUEUED,
			WEFT_EV_STEP_READY, WEFT_EV_STEP_SUCCEEDED,
			WEFT_EV_RUN_SUCCEEDED };
		snprintf(ids[i], sizeof(ids[i]), "OLD%05d", i);
		for (int j = 0; j < 4; j++, k++) {
			evs[k] = (weft_event) { .id = id++, .run_id = ids[i],
				.seq = (uint64_t) j + 1, .ts_ms = ended_ms,
				.type = t[j], .step_id = j == 1 || j == 2 ? "a" : NULL,
				.data = j == 0 ? q : none,
				.data_text = j == 0 ? qt : "{}" };
		}
	}
	cr_assert_eq(weft_store_append(s, evs, k), WEFT_OK, "%s", s->error);
	F.e->next_event_id = id;
	free(evs);
	free(ids);
	free(qt);
	json_decref(q);
	json_decref(none);
}

static uint64_t
stored_runs(const char *definition)
{
	uint64_t    n    = 0;
	const char *p[1] = { definition };
	cr_assert_eq(F.e->store->ops->query(F.e->store,
	                 "SELECT COUNT(*) FROM runs WHERE definition = ?", p, 1,
	                 weft_store_u64_row, &n),
	    WEFT_OK);
	return (n);
}

// 2,000 ended runs to delete: each turn deletes at most one batch (312 of
// these runs: 8 estimated events each, 2,500 a batch), and in between the engine goes on taking input: the new run's
// steps are dispatched, its results applied and acked, while old runs
// are still being deleted.
Test(engine, retention_deletes_in_batches_while_dispatching)
{
	uint64_t left, prev;
	int      turns = 0;

	old_runs(2000, F.wall - 3 * 86400000LL);
	F.e->cfg.retain_ms = 86400000; // --retain 1d
	post_worker("w1", 4, 1);
	turn(); // the first sweep batch
	left = stored_runs("old");
	cr_expect_eq(left, 2000 - 312, "one batch of 312, got %llu deleted",
	    (unsigned long long) (2000 - left));

	const char *id = start_run("{\"name\":\"fresh\",\"steps\":["
	                           "{\"id\":\"a\",\"type\":\"noop\"},"
	                           "{\"id\":\"b\",\"type\":\"noop\"}]}");
	char run[64];
	snprintf(run, sizeof(run), "%s", id);
	cr_expect_eq(assigned(), 2, "dispatched while deleting");
	cr_expect_gt(stored_runs("old"), 0, "deletion not finished yet");
	answer_all(true);
	post_result(run, "a", 1, true);
	post_result(run, "b", 1, true);
	turn();
	cr_expect_eq(F.nacks, 2, "results acked while deleting");
	cr_expect_eq(count_published("run_succeeded"), 1);
	prev = stored_runs("old");
	cr_expect_gt(prev, 0, "the deletion still goes on");
	while ((left = stored_runs("old")) > 0 && turns++ < 20) {
		cr_expect_leq(prev - left, 312, "a batch deleted %llu runs",
		    (unsigned long long) (prev - left));
		prev = left;
		turn();
	}
	cr_expect_eq(stored_runs("old"), 0);
	cr_expect_eq(count_published("runs_deleted"), 7, "one per batch");
	cr_expect_eq(stored_runs("fresh"), 1, "ended now: kept for a day");
	cr_expect_not(retain_busy(F.e));
}

// A definition's "retain" deletes its runs without --retain; a run of a
// definition without one is kept forever.
Test(engine, definition_retain_without_global_retain)
{
	post_worker("w1", 4, 1);
	turn();
	const char *id = start_run("{\"name\":\"brief\",\"retain\":\"1h\","
	                           "\"steps\":[{\"id\":\"a\",\"type\":\"noop\"}]}");
	char run[64];
	snprintf(run, sizeof(run), "%s", id);
	const char *id2 = start_run("{\"name\":\"kept\",\"steps\":[{\"id\":\"a\","
	                            "\"type\":\"noop\"}]}");
	char run2[64];
	snprintf(run2, sizeof(run2), "%s", id2);
	answer_all(true);
	post_result(run, "a", 1, true);
	post_result(run2, "a", 1, true);
	turn();
	cr_assert_eq(count_published("run_succeeded"), 2);
	advance(30 * 60000);
	turn();
	cr_expect_eq(stored_runs("brief"), 1, "half an hour: still kept");
	advance(31 * 60000);
	turn();
	cr_expect_eq(stored_runs("brief"), 0, "an hour past its end: gone");
	cr_expect_eq(stored_runs("kept"), 1, "no retain anywhere: kept");
	cr_expect_eq(count_published("runs_deleted"), 1);
}

// post_delete asks to delete runs that ended before before_ms with status.
static void
post_delete(uint64_t before_ms, const char *status)
{
	Weft__Envelope          env = WEFT__ENVELOPE__INIT;
	Weft__ControlRequest    req = WEFT__CONTROL_REQUEST__INIT;
	Weft__DeleteRunsRequest dr  = WEFT__DELETE_RUNS_REQUEST__INIT;

	dr.before_ms    = before_ms;
	dr.status       = (char *) status;
	req.req_case    = WEFT__CONTROL_REQUEST__REQ_DELETE_RUNS;
	req.delete_runs = &dr;
	env.body_case   = WEFT__ENVELOPE__BODY_CONTROL;
	env.control     = &req;
	post(MAIL_CONTROL, &env, 0);
}

// A delete request is answered once every batch is done, with the count;
// a status that is not an ending is refused at once.
Test(engine, delete_request_answers_with_the_count)
{
	old_runs(1200, F.wall - 1000);
	post_delete((uint64_t) F.wall, "running");
	turn();
	cr_assert_eq(F.nreplies, 1);
	cr_expect_eq(json_integer_value(json_object_get(F.replies[0], "code")),
	    WEFT_EINVAL);
	cr_expect(strstr(json_string_value(json_object_get(F.replies[0],
	                     "error")),
	              "not an ending") != NULL);
	post_delete(0, "");
	turn();
	cr_assert_eq(F.nreplies, 2);
	cr_expect_eq(json_integer_value(json_object_get(F.replies[1], "code")),
	    WEFT_EINVAL, "before is required");

	post_delete((uint64_t) F.wall, "succeeded");
	for (int k = 0; k < 10 && F.nreplies < 3; k++) {
		turn();
	}
	cr_assert_eq(F.nreplies, 3);
	json_t *body = json_object_get(F.replies[2], "body");
	cr_expect_eq(json_integer_value(json_object_get(body, "deleted")), 1200);
	cr_expect_eq(stored_runs("old"), 0);
	cr_expect_eq(count_published("runs_deleted"), 4,
	    "312 + 312 + 312 + 264");
}

// ---- steps no worker can take ----

// post_typed_worker posts a survey answer of name advertising one type.
static void
post_typed_worker(const char *name, const char *type, uint64_t round)
{
	Weft__Envelope   env     = WEFT__ENVELOPE__INIT;
	Weft__WorkerInfo wi      = WEFT__WORKER_INFO__INIT;
	char            *types[] = { (char *) type };

	wi.name         = (char *) name;
	wi.dispatch_url = "tcp://127.0.0.1:2";
	wi.n_step_types = 1;
	wi.step_types   = types;
	wi.slots        = 1;
	wi.round        = round;
	env.body_case   = WEFT__ENVELOPE__BODY_WORKER_INFO;
	env.worker_info = &wi;
	post_from(&F.wire, MAIL_WORKER_INFO, &env, round);
}

static void
post_lifecycle(const char *run, const char *action)
{
	Weft__Envelope         env = WEFT__ENVELOPE__INIT;
	Weft__ControlRequest   req = WEFT__CONTROL_REQUEST__INIT;
	Weft__LifecycleRequest lc  = WEFT__LIFECYCLE_REQUEST__INIT;

	lc.run_id     = (char *) run;
	lc.action     = (char *) action;
	req.req_case  = WEFT__CONTROL_REQUEST__REQ_LIFECYCLE;
	req.lifecycle = &lc;
	env.body_case = WEFT__ENVELOPE__BODY_CONTROL;
	env.control   = &req;
	post(MAIL_CONTROL, &env, 0);
}

// type_fact reads one fact of type from the query thread's snapshot.
static json_t *
type_fact(const char *type, const char *fact)
{
	json_t *w = sched_waits_json(F.e);
	json_t *v = json_incref(json_object_get(
	    json_object_get(json_object_get(w, "types"), type), fact));
	json_decref(w);
	return (v);
}

// A ready step whose type no live worker advertises: after
// --unschedulable-after (60 s by default), exactly one step_unschedulable;
// a worker advertising the type brings step_schedulable and the dispatch.
Test(engine, unadvertised_type_is_reported_once_then_schedulable)
{
	uint64_t round = 1;

	post_worker("w1", 1, round);
	turn();
	start_run("{\"name\":\"u\",\"steps\":[{\"id\":\"g\",\"type\":\"gpu\"}]}");
	cr_expect_eq(assigned(), 0);
	post_survey_end(round++);
	turn();
	json_t *adv = type_fact("gpu", "advertised");
	cr_expect(json_is_false(adv), "gpu is not advertised");
	json_decref(adv);
	for (int i = 0; i < 4; i++) { // 4 x 20 s: past 60 s once
		advance(20000);
		post_worker("w1", 1, round);
		post_survey_end(round++);
		turn();
		cr_expect_eq(count_published("step_unschedulable"), i < 2 ? 0 : 1,
		    "after %d s: %zu step_unschedulable", (i + 1) * 20,
		    count_published("step_unschedulable"));
	}
	cr_expect_eq(count_published("step_schedulable"), 0);
	post_worker("w1", 1, round);
	post_typed_worker("g1", "gpu", round);
	turn();
	cr_expect_eq(count_published("step_schedulable"), 1);
	cr_expect_eq(assigned(), 1, "the step goes to the gpu worker");
	adv = type_fact("gpu", "advertised");
	cr_expect(json_is_true(adv));
	json_decref(adv);
	post_survey_end(round++);
	turn();
	cr_expect_eq(count_published("step_unschedulable"), 1, "still once");
	cr_expect_eq(count_published("step_schedulable"), 1, "still once");
}

// schedule_timeout_ms: a step no worker took in time times out with phase
// schedule, fails (no retry left), and takes its queue entry with it.
Test(engine, schedule_timeout_fails_the_step_and_empties_the_queue)
{
	const char *id = start_run(
	    "{\"name\":\"s\",\"steps\":[{\"id\":\"g\",\"type\":\"gpu\","
	    "\"schedule_timeout_ms\":500},{\"id\":\"h\",\"type\":\"gpu\"}]}");
	turn();
	cr_expect_eq(atomic_load(&F.e->metrics.ready_depth), 2);
	json_t *w   = sched_waits_json(F.e);
	char    key[128];
	snprintf(key, sizeof(key), "%s/g", id);
	cr_expect_eq(json_integer_value(json_object_get(
	                 json_object_get(w, "deadlines"), key)),
	    F.wall + 500, "the deadline is in the snapshot");
	json_decref(w);
	advance(499);
	turn();
	cr_expect_eq(count_published("step_timed_out"), 0, "not yet");
	advance(1);
	turn();
	cr_expect_eq(count_published("step_timed_out"), 1);
	cr_expect_eq(count_published("step_failed"), 1);
	weft_run *r = engine_run(F.e, id);
	cr_assert_not_null(r, "h is still ready");
	cr_expect_eq(r->steps[0].state, WEFT_STEP_FAILED);
	cr_expect_eq(r->nqueued, 1, "g left the queue, h is on it");
	turn();
	cr_expect_eq(atomic_load(&F.e->metrics.ready_depth), 1);
	// Cancelling the run empties the queue: depth 0, the run freed.
	post_lifecycle(id, "cancel");
	turn();
	turn();
	cr_expect_eq(atomic_load(&F.e->metrics.ready_depth), 0,
	    "a cancelled run's ready steps still counted");
	cr_expect_null(engine_run(F.e, id), "the cancelled run is kept");
}

// A step that leaves ready without a dispatch (its run cancelled) leaves
// the snapshot's deadlines too: they would grow for good.
Test(engine, cancelled_run_leaves_no_schedule_deadline)
{
	char        key[128];
	const char *id = start_run(
	    "{\"name\":\"c\",\"steps\":[{\"id\":\"g\",\"type\":\"gpu\","
	    "\"schedule_timeout_ms\":5000}]}");
	turn();
	snprintf(key, sizeof(key), "%s/g", id);
	json_t *w = sched_waits_json(F.e);
	cr_expect_not_null(json_object_get(json_object_get(w, "deadlines"), key));
	json_decref(w);
	post_lifecycle(id, "cancel");
	turn();
	turn();
	w = sched_waits_json(F.e);
	cr_expect_eq(json_object_size(json_object_get(w, "deadlines")), 0,
	    "the cancelled run's deadline stays in the snapshot");
	json_decref(w);
}

// A paused run's ready step does not time out waiting; resume arms a new
// schedule timeout from then.
Test(engine, schedule_timeout_waits_for_resume)
{
	const char *id = start_run("{\"name\":\"p\",\"steps\":[{\"id\":\"g\","
	                           "\"type\":\"gpu\",\"schedule_timeout_ms\":500}]}");
	post_lifecycle(id, "pause");
	turn();
	advance(1000);
	turn();
	cr_expect_eq(count_published("step_timed_out"), 0, "paused");
	post_lifecycle(id, "resume");
	turn();
	advance(499);
	turn();
	cr_expect_eq(count_published("step_timed_out"), 0, "re-armed on resume");
	advance(1);
	turn();
	cr_expect_eq(count_published("step_timed_out"), 1);
}

// After a coordinator restart a ready step's schedule timeout counts again
// from the restart (the timer died with the old process), on the clock of
// the first iteration, not on whatever recovery ran at.
Test(engine, recovered_ready_step_gets_a_new_schedule_timeout)
{
	char run_id[64];

	snprintf(run_id, sizeof(run_id), "%s",
	    start_run("{\"name\":\"r\",\"steps\":[{\"id\":\"g\","
	              "\"type\":\"gpu\",\"schedule_timeout_ms\":5000}]}"));
	turn();
	advance(4000);
	turn();
	fake_restart();
	int64_t restarted = F.wall; // recovery armed it (streamed, committed)
	advance(2000); // 6 s after it became ready, 2 s after the restart
	turn();
	cr_expect_eq(count_published("step_timed_out"), 0,
	    "timed out on the old clock, or at once");
	weft_run *r = engine_run(F.e, run_id);
	cr_assert_not_null(r);
	cr_expect_eq(r->steps[0].sched_due_ms, restarted + 5000);
	advance(2999);
	turn();
	cr_expect_eq(count_published("step_timed_out"), 0);
	advance(1);
	turn();
	cr_expect_eq(count_published("step_timed_out"), 1);
}

static weft_err
landed_then_lost_commit(weft_store *s)
{
	weft_err rv = real_commit(s);
	if (rv == WEFT_OK && fails_left > 0) {
		fails_left--;
		snprintf(s->error, sizeof(s->error), "injected: connection lost "
		                                     "after the commit");
		return (WEFT_EUNAVAIL);
	}
	return (rv);
}

// A deletion batch whose commit landed but whose answer was lost (a
// PostgreSQL connection cut at COMMIT) holds its runs_deleted event's id:
// the engine must never number another event with it (the store would
// refuse the batch for good and the coordinator stop).
Test(engine, retention_commit_lost_after_landing_keeps_ids_unique)
{
	static weft_store_ops ops;

	old_runs(10, F.wall - 3 * 86400000LL);
	post_worker("w1", 4, 1);
	turn(); // the worker joins; no --retain yet: nothing to delete
	cr_expect_eq(stored_runs("old"), 10);
	hook_commit(&ops, landed_then_lost_commit);
	fails_left      = 1;
	F.e->cfg.retain_ms = 86400000; // --retain 1d, due now
	F.e->retain_due    = 0;
	turn(); // the sweep's batch: committed, then reported lost
	cr_expect_eq(fails_left, 0, "the sweep did not commit");
	cr_expect_eq(stored_runs("old"), 0, "the batch landed");
	const char *id = start_run("{\"name\":\"after\",\"steps\":["
	                           "{\"id\":\"a\",\"type\":\"noop\"}]}");
	char run[64];
	snprintf(run, sizeof(run), "%s", id);
	answer_all(true);
	post_result(run, "a", 1, true);
	turn();
	cr_expect_eq(F.nacks, 1, "the next batches commit");
	cr_expect_eq(count_published("run_succeeded"), 1);
	ops.commit = real_commit;
}

// ---- large values ----

#define DEF_BIG_IN                                                        \
	"{\"name\":\"bigin\",\"steps\":[{\"id\":\"a\",\"type\":\"noop\","   \
	"\"with\":{\"v\":\"${input.v}\"}}]}"

// An input over 64 KiB is stored once, as a blob the run's row refers to;
// a reopened engine gets the whole value back (a step's "with" needs it).
Test(engine, large_input_is_a_blob_and_recovered_whole)
{
	Weft__Envelope       env = WEFT__ENVELOPE__INIT;
	Weft__ControlRequest req = WEFT__CONTROL_REQUEST__INIT;
	Weft__RunRequest     run = WEFT__RUN_REQUEST__INIT;
	size_t               before = F.nreplies;
	char                 id[64];
	char                *big = malloc(70001);
	json_t              *in, *row, *r;

	memset(big, 'x', 70000);
	big[70000] = '\0';
	in = json_pack("{s:s}", "v", big);
	char *text = json_dumps(in, JSON_COMPACT);
	run.definition_json = (char *) DEF_BIG_IN;
	run.input_json      = text;
	req.req_case        = WEFT__CONTROL_REQUEST__REQ_RUN;
	req.run             = &run;
	env.body_case       = WEFT__ENVELOPE__BODY_CONTROL;
	env.control         = &req;
	post(MAIL_CONTROL, &env, 0);
	turn();
	cr_assert_eq(F.nreplies, before + 1);
	r = F.replies[before];
	cr_assert_eq(json_integer_value(json_object_get(r, "code")), 0);
	snprintf(id, sizeof(id), "%s",
	    json_string_value(
	        json_object_get(json_object_get(r, "body"), "run_id")));
	cr_assert_eq(weft_store_get_run(F.e->store, id, &row), WEFT_OK);
	cr_expect_not_null(weft_blob_ref_hash(json_object_get(row, "input")),
	    "the runs row holds a reference");
	json_decref(row);
	cr_expect(json_equal(engine_run(F.e, id)->input, in),
	    "the run in memory keeps the value");

	reopen(NULL);
	weft_run *back = engine_run(F.e, id);
	cr_assert_not_null(back, "run %s not recovered", id);
	cr_expect(json_equal(back->input, in), "recovered whole");
	free(text);
	free(big);
	json_decref(in);
}

// ---- fairness and survey answers under load ----

// post_worker_listing posts w1's survey answer of round listing the n
// attempts ("run/step/attempt") it holds, the list complete.
static void
post_worker_listing(uint64_t round, char **attempts, size_t n)
{
	Weft__Envelope   env     = WEFT__ENVELOPE__INIT;
	Weft__WorkerInfo wi      = WEFT__WORKER_INFO__INIT;
	char            *types[] = { "noop" };

	wi.name              = "w1";
	wi.dispatch_url      = "tcp://127.0.0.1:1";
	wi.n_step_types      = 1;
	wi.step_types        = types;
	wi.slots             = 1;
	wi.round             = round;
	wi.n_attempts        = n;
	wi.attempts          = attempts;
	wi.attempts_complete = true;
	env.body_case        = WEFT__ENVELOPE__BODY_WORKER_INFO;
	env.worker_info      = &wi;
	post_from(&F.wire_w1, MAIL_WORKER_INFO, &env, round);
}

// A worker that answers every survey is not robbed of an attempt because
// the assignment was slow to reach it: answers count an attempt missing
// only from the first round surveyed after its worker accepted it. From
// then on, two answers without it still lose it (a worker that restarted).
Test(engine, slow_assignment_is_not_lost_by_survey_answers)
{
	post_worker("w1", 1, 1);
	post_survey_end(1);
	turn();
	start_run("{\"name\":\"one\",\"steps\":[{\"id\":\"a\","
	          "\"type\":\"noop\"}]}");
	cr_assert_eq(assigned(), 1);
	// The batch is slow: three rounds answered before the worker has it.
	for (uint64_t round = 2; round <= 4; round++) {
		advance(5000);
		post_worker_listing(round, NULL, 0);
		post_survey_end(round);
		turn();
	}
	cr_expect_eq(count_published("step_lost"), 0,
	    "lost while its assignment was on its way");
	answer_all(true); // accepted while round 4 is the last closed
	turn();
	// Round 5's survey may have gone out before the worker accepted it;
	// rounds 6 and 7 were surveyed after: missing in both, it is lost.
	for (uint64_t round = 5; round <= 7; round++) {
		advance(5000);
		post_worker_listing(round, NULL, 0);
		post_survey_end(round);
		turn();
		cr_expect_eq(count_published("step_lost"), round < 7 ? 0 : 1,
		    "after round %llu", (unsigned long long) round);
	}
	cr_expect_eq(count_published("step_started"), 1);
	cr_expect_eq(count_published("worker_lost"), 0);
}

// post_results posts a batch of n results for a run nobody knows (they
// are looked up, found unknown and acked).
static void
post_results(size_t n)
{
	Weft__Envelope     env = WEFT__ENVELOPE__INIT;
	Weft__ResultBatch  b   = WEFT__RESULT_BATCH__INIT;
	Weft__StepResult  *srs = weft_xalloc(n * sizeof(*srs));
	Weft__StepResult **p   = weft_xalloc(n * sizeof(*p));

	for (size_t k = 0; k < n; k++) {
		weft__step_result__init(&srs[k]);
		srs[k].run_id      = "nope";
		srs[k].step_id     = "a";
		srs[k].attempt     = 1;
		srs[k].ok          = true;
		srs[k].output_json = "{}";
		p[k]               = &srs[k];
	}
	b.n_results   = n;
	b.results     = p;
	env.body_case = WEFT__ENVELOPE__BODY_RESULTS;
	env.results   = &b;
	post_from(&F.wire_w1, MAIL_RESULTS, &env, 0);
	free(p);
	free(srs);
}

static void
post_workers_request(void)
{
	Weft__Envelope       env = WEFT__ENVELOPE__INIT;
	Weft__ControlRequest req = WEFT__CONTROL_REQUEST__INIT;
	Weft__WorkersRequest wr  = WEFT__WORKERS_REQUEST__INIT;

	req.req_case  = WEFT__CONTROL_REQUEST__REQ_WORKERS;
	req.workers   = &wr;
	env.body_case = WEFT__ENVELOPE__BODY_CONTROL;
	env.control   = &req;
	post(MAIL_CONTROL, &env, 0);
}

// A flood of results does not hold back a control request behind it: the
// request is taken first and answered by an iteration that takes no
// results; then each iteration applies a bounded share of the results
// (whole batches, in order), the rest waiting for the next one.
Test(engine, control_is_taken_before_a_flood_of_results)
{
	post_worker("w1", 1, 1);
	turn();
	for (int k = 0; k < 3; k++) {
		post_results(600);
	}
	post_workers_request();
	turn();
	F.order[F.norder] = '\0';
	cr_expect_str_eq(F.order, "c",
	    "the request waited behind the results, or shared their commit");
	cr_expect(engine_has_carry(F.e));
	turn(); // no new mail: carried batches, a bounded share
	F.order[F.norder] = '\0';
	cr_expect_str_eq(F.order, "caa", "all taken at once, or none");
	turn();
	cr_expect_eq(F.nacks, 3);
	cr_expect(!engine_has_carry(F.e));
	cr_expect_eq(F.nreplies, 1);
	// Requests every iteration do not starve results: every other
	// iteration takes them.
	for (int k = 0; k < 3; k++) {
		post_results(600);
	}
	for (int k = 0; k < 4; k++) {
		post_workers_request();
		turn();
	}
	cr_expect_eq(F.nacks, 6, "results starved by a stream of requests");
	cr_expect_eq(F.nreplies, 5);
}

// A lost worker loses the map items it held: the scan of what may be in
// flight (weft_run_items_live) finds them, and only they are lost.
Test(engine, lost_worker_loses_its_map_items)
{
	post_worker("w1", 4, 1);
	turn();
	json_t *r = run_reply("{\"name\":\"mp\",\"params\":{\"xs\":{\"type\":"
	                      "\"array\"}},\"steps\":[{\"id\":\"m\","
	                      "\"type\":\"noop\",\"map\":\"params.xs\"}]}",
	    "{\"xs\":[1,2,3,4,5,6]}");
	cr_assert_eq(json_integer_value(json_object_get(r, "code")), 0, "%s",
	    json_string_value(json_object_get(r, "error")));
	cr_assert_eq(assigned(), 4, "a 4-slot worker");
	answer_all(true);
	turn();
	for (uint64_t round = 2; round <= 4; round++) {
		post_survey_end(round);
		turn();
	}
	cr_expect_eq(count_published("worker_lost"), 1);
	cr_expect_eq(count_published("step_lost"), 4);
	cr_expect_eq(worker("w1")->inflight, 0);
}

// ---- memory bounded by live work ----

// A run timeout an hour away and a retry timer a minute away hold a run
// the same way: cancelling it drops both and frees the run in that very
// iteration. Another run's timers stay in order and still fire.
Test(engine, cancelled_run_leaves_memory_with_its_timers)
{
	static const char *const def =
	    "{\"name\":\"%s\",\"timeout_ms\":3600000,\"steps\":[{\"id\":\"a\","
	    "\"type\":\"noop\",\"retry\":{\"max_attempts\":3,\"backoff\":"
	    "\"fixed\",\"initial_ms\":60000}}]}";
	char text[256], gone[64], kept[64];

	post_worker("w1", 2, 1);
	turn();
	snprintf(text, sizeof(text), def, "gone");
	snprintf(gone, sizeof(gone), "%s", start_run(text));
	snprintf(text, sizeof(text), def, "kept");
	snprintf(kept, sizeof(kept), "%s", start_run(text));
	answer_all(true);
	turn();
	post_result(gone, "a", 1, false);
	post_result(kept, "a", 1, false);
	turn();
	cr_assert_eq(F.e->ntimers, 4, "a run timeout and a retry each");
	cr_assert_eq(atomic_load(&F.e->metrics.runs_in_memory), 2);
	post_lifecycle(gone, "cancel");
	turn();
	cr_expect_null(engine_run(F.e, gone),
	    "the cancelled run waits in memory for its timers");
	cr_expect_eq(F.e->ntimers, 2, "its timers are still queued");
	cr_expect_eq(atomic_load(&F.e->metrics.runs_in_memory), 1);
	cr_expect_eq(F.e->runs.count, 1);
	// The kept run's retry still comes due: the heap is whole.
	advance(60000);
	turn();
	cr_expect_eq(F.e->ntimers, 1, "the retry fired, the run timeout waits");
	cr_expect_eq(engine_run(F.e, kept)->steps[0].attempt, 2);
	post_lifecycle(kept, "cancel");
	turn();
	cr_expect_eq(F.e->ntimers, 0);
	cr_expect_eq(atomic_load(&F.e->metrics.runs_in_memory), 0);
}

// post_run_request posts a run of inline definition text (or of the
// registered definition name when text is NULL), without a turn.
static void
post_run_request(const char *text, const char *name)
{
	Weft__Envelope       env = WEFT__ENVELOPE__INIT;
	Weft__ControlRequest req = WEFT__CONTROL_REQUEST__INIT;
	Weft__RunRequest     run = WEFT__RUN_REQUEST__INIT;

	run.definition_json = (char *) (text != NULL ? text : "");
	run.definition      = (char *) (name != NULL ? name : "");
	req.req_case        = WEFT__CONTROL_REQUEST__REQ_RUN;
	req.run             = &run;
	env.body_case       = WEFT__ENVELOPE__BODY_CONTROL;
	env.control         = &req;
	post(MAIL_CONTROL, &env, 0);
}

// last_run_def is the definition of the run the last reply started.
static const weft_def *
last_run_def(void)
{
	json_t    *r = F.replies[F.nreplies - 1];
	weft_run  *run;

	cr_assert_eq(json_integer_value(json_object_get(r, "code")), 0, "%s",
	    json_string_value(json_object_get(r, "error")));
	run = engine_run(F.e, json_string_value(json_object_get(
	                          json_object_get(r, "body"), "run_id")));
	cr_assert_not_null(run);
	return (run->def);
}

static bool
def_cached(const char *key)
{
	return (weft_map_get(&F.e->defs, key) != NULL);
}

// Live runs pin their definitions past --def-cache; once they end, the
// least recently used go. The same body again (respaced, keys reordered)
// is the entry it was; an evicted one is read back from the store.
Test(engine, definitions_cached_by_content_and_bounded)
{
	char ids[8][64], text[128];

	F.e->cfg.def_cache = 3;
	for (int k = 0; k < 8; k++) {
		snprintf(text, sizeof(text),
		    "{\"name\":\"d%d\",\"steps\":[{\"id\":\"a\",\"type\":\"gpu\"}]}",
		    k);
		snprintf(ids[k], sizeof(ids[k]), "%s", start_run(text));
	}
	cr_expect_eq(F.e->defs.count, 8, "a live run's definition was evicted");
	for (int k = 0; k < 8; k++) {
		post_lifecycle(ids[k], "cancel");
	}
	turn();
	cr_expect_eq(F.e->runs.count, 0);
	cr_expect_eq(F.e->defs.count, 3);
	cr_expect_eq(atomic_load(&F.e->metrics.defs_cached), 3);
	cr_expect(def_cached("d7@1") && def_cached("d5@1") && !def_cached("d0@1"),
	    "not the least recently used ones evicted");

	// d7 again, respaced and reordered: no new entry, no new version.
	post_run_request(
	    "{ \"steps\" : [ {\"type\":\"gpu\", \"id\":\"a\"} ], \"name\":\"d7\" }",
	    NULL);
	turn();
	cr_expect_eq(last_run_def()->version, 1);
	cr_expect_eq(F.e->defs.count, 3);
	cr_expect_eq(F.e->def_hashes.count, 3);

	// d0 was evicted: by name, and inline, it comes back as version 1.
	post_run_request(NULL, "d0");
	turn();
	cr_expect_eq(last_run_def()->version, 1);
	cr_expect(def_cached("d0@1"));
	post_run_request(
	    "{\"name\":\"d1\",\"steps\":[{\"id\":\"a\",\"type\":\"gpu\"}]}",
	    NULL);
	turn();
	cr_expect_eq(last_run_def()->version, 1, "an evicted inline "
	                                         "definition got a new version");
	cr_expect_eq(count_published("definition_registered"), 8,
	    "only the eight first bodies are registered");
}

// 2,000 distinct inline definitions through a cache of 100: every run
// succeeds (its one step skipped by "when", so no worker is needed) and
// the cache never holds more than 100 between iterations.
Test(engine, two_thousand_inline_definitions_stay_within_def_cache)
{
	char     text[256];
	uint64_t ok = 0;

	F.e->cfg.def_cache = 100;
	for (int batch = 0; batch < 40; batch++) {
		for (int k = 0; k < 50; k++) {
			snprintf(text, sizeof(text),
			    "{\"name\":\"inline-%d\",\"steps\":[{\"id\":\"a\","
			    "\"type\":\"noop\",\"when\":\"false\"}]}",
			    batch * 50 + k);
			post_run_request(text, NULL);
		}
		turn();
		turn();
		for (size_t k = 0; k < F.nreplies; k++) {
			cr_assert_eq(json_integer_value(json_object_get(
			                 F.replies[k], "code")), 0, "%s",
			    json_string_value(
			        json_object_get(F.replies[k], "error")));
			json_decref(F.replies[k]);
		}
		F.nreplies = 0;
		cr_assert_leq(F.e->defs.count, 100, "batch %d: %zu cached", batch,
		    F.e->defs.count);
	}
	cr_expect_eq(F.e->runs.count, 0);
	cr_expect_eq(F.e->defs.count, 100);
	const char *p[1] = { "succeeded" };
	cr_assert_eq(F.e->store->ops->query(F.e->store,
	                 "SELECT COUNT(*) FROM runs WHERE status = ?", p, 1,
	                 weft_store_u64_row, &ok),
	    WEFT_OK);
	cr_expect_eq(ok, 2000);
}

// Recovery reads the store a page at a time: 600 queued runs (more than
// two pages) all come back, each once, and what restoring them wrote is
// committed before the first iteration.
Test(engine, recovery_pages_through_many_runs)
{
	for (int batch = 0; batch < 6; batch++) {
		for (int k = 0; k < 100; k++) {
			post_run_request("{\"name\":\"many\",\"steps\":[{\"id\":"
			                 "\"a\",\"type\":\"gpu\"}]}",
			    NULL);
		}
		turn();
		for (size_t k = 0; k < F.nreplies; k++) {
			json_decref(F.replies[k]);
		}
		F.nreplies = 0;
	}
	cr_assert_eq(F.e->runs.count, 600);
	uint64_t before = atomic_load(&F.e->last_event_id);
	fake_restart();
	cr_expect_eq(F.e->runs.count, 600);
	cr_expect_eq(atomic_load(&F.e->metrics.runs_in_memory), 600);
	cr_expect_eq(F.e->defs.count, 1, "600 runs of one definition");
	cr_expect_eq(F.e->out.nevents, 0, "recovery left output uncommitted");
	cr_expect_geq(atomic_load(&F.e->last_event_id), before);
	// Each run's step is on the ready queue exactly once.
	ready_queue *q = weft_map_get(&F.e->queues, "gpu");
	cr_assert_not_null(q);
	cr_expect_eq(q->heap.count, 600);
}

// ---- workers from before shared input ----

// A worker that does not say it takes shared input (one built before it)
// gets whole input documents, as it always did; one that does gets the
// run's input and params once per message. Silently sending an old
// worker documents without them would run its steps on nothing.
Test(engine, older_worker_gets_whole_input_documents)
{
	static const char *const def =
	    "{\"name\":\"%s\",\"steps\":[{\"id\":\"a\",\"type\":\"noop\"}]}";
	char text[128];

	F.old_workers = true;
	post_worker("w1", 2, 1);
	turn();
	snprintf(text, sizeof(text), def, "old");
	start_run(text);
	cr_assert_gt(F.nops, 0, "nothing assigned");
	cr_expect_not(F.last_shared);
	cr_expect_eq(F.last_nshared, 0);
	cr_expect(strstr(F.last_input, "\"input\":") != NULL &&
	        strstr(F.last_input, "\"params\":") != NULL,
	    "an old worker got %s", F.last_input);

	F.old_workers = false;
	post_worker("w1", 2, 2);
	turn();
	snprintf(text, sizeof(text), def, "new");
	start_run(text);
	cr_expect(F.last_shared);
	cr_expect_eq(F.last_nshared, 1);
	cr_expect(strstr(F.last_input, "\"input\":") == NULL,
	    "a new worker got %s", F.last_input);
}

// A RunBatchRequest is taken in one iteration: every run it creates is in
// one commit, and one reply, after it, answers each item in its place —
// the bad ones with their index, never stopping the others.
Test(engine, run_batch_is_one_commit_with_a_result_per_item)
{
	enum { N = 500 };
	Weft__Envelope        env = WEFT__ENVELOPE__INIT;
	Weft__ControlRequest  req = WEFT__CONTROL_REQUEST__INIT;
	Weft__RunBatchRequest br  = WEFT__RUN_BATCH_REQUEST__INIT;
	Weft__RunRequest      good = WEFT__RUN_REQUEST__INIT;
	Weft__RunRequest      bad  = WEFT__RUN_REQUEST__INIT;
	Weft__RunRequest     *items[N];
	uint64_t              commits = atomic_load(&F.e->batches_committed);
	size_t                rep = F.nreplies, runs = F.e->runs.count;
	json_t               *res;

	good.definition_json = (char *) DEF_TIMEOUT;
	bad.definition       = "no-such-definition";
	for (size_t i = 0; i < N; i++) {
		items[i] = i % 100 == 7 ? &bad : &good;
	}
	br.n_runs     = N;
	br.runs       = items;
	req.req_case  = WEFT__CONTROL_REQUEST__REQ_RUN_BATCH;
	req.run_batch = &br;
	env.body_case = WEFT__ENVELOPE__BODY_CONTROL;
	env.control   = &req;
	post(MAIL_CONTROL, &env, 0);
	turn();
	cr_expect_eq(atomic_load(&F.e->batches_committed) - commits, 1,
	    "the batch's runs took %llu commits",
	    (unsigned long long) (atomic_load(&F.e->batches_committed) -
	        commits));
	cr_assert_eq(F.nreplies, rep + 1, "one reply for the whole batch");
	cr_expect_eq(json_integer_value(json_object_get(F.replies[rep], "code")),
	    0);
	res = json_object_get(json_object_get(F.replies[rep], "body"),
	    "results");
	cr_assert_eq(json_array_size(res), N);
	for (size_t i = 0; i < N; i++) {
		json_t *r = json_array_get(res, i);
		if (i % 100 == 7) {
			cr_expect_eq(json_integer_value(json_object_get(r, "index")),
			    (json_int_t) i);
			cr_expect_str_eq(json_string_value(json_object_get(r,
			                     "code")),
			    "EDEF");
		} else {
			cr_expect_not_null(json_object_get(r, "run_id"),
			    "item %zu has no run", i);
		}
	}
	cr_expect_eq(F.e->runs.count - runs, N - N / 100, "runs in memory");
}

// A retry that lands while the batch that ended its run still commits
// takes the run still in memory; the release of that batch must not free
// it afterwards: it is running again.
Test(engine, retry_while_the_end_commits_keeps_the_run)
{
	static weft_store_ops ops;
	char                  id[64];
	bool                  done = false;

	post_worker("w1", 2, 1);
	turn();
	snprintf(id, sizeof(id), "%s",
	    start_run("{\"name\":\"f\",\"steps\":[{\"id\":\"a\",\"type\":"
	              "\"noop\"}]}"));
	answer_all(true);
	turn();
	sem_init(&gate, 0, 0);
	hook_commit(&ops, gated_commit);
	F.e->inline_max = 0; // the run's end goes through the store thread
	engine_committer_start(F.e);
	post_result(id, "a", 1, false);
	turn(); // run_failed in flight
	sem_post(&gate);
	while (!done) { // durable, not released yet
		pthread_mutex_lock(&F.e->commit_lock);
		done = F.e->commit_done;
		pthread_mutex_unlock(&F.e->commit_lock);
		weft_clock_sleep_ms(1);
	}
	// The retry's own batch is small: it commits inline (the default
	// bound), and is released in the same turn.
	F.e->inline_max = 64;
	sem_post(&gate);
	post_lifecycle(id, "retry");
	turn();
	weft_run *r = engine_run(F.e, id);
	cr_assert_not_null(r, "the retried run was freed while running");
	cr_expect(!weft_run_terminal(r->state), "the retried run is %s",
	    weft_run_state_name(r->state));
	engine_committer_stop(F.e);
	ops.commit = real_commit;
	sem_destroy(&gate);
}

// ---- steps the coordinator holds (holds.c) ----

// post_signal posts `weft signal RUN NAME --data DATA`.
static void
post_signal(const char *run, const char *name, const char *data, bool reject)
{
	Weft__Envelope       env = WEFT__ENVELOPE__INIT;
	Weft__ControlRequest req = WEFT__CONTROL_REQUEST__INIT;
	Weft__SignalRequest  sr  = WEFT__SIGNAL_REQUEST__INIT;

	sr.run_id     = (char *) run;
	sr.name       = (char *) name;
	sr.data_json  = (char *) data;
	sr.reject     = reject;
	req.req_case  = WEFT__CONTROL_REQUEST__REQ_SIGNAL;
	req.signal    = &sr;
	env.body_case = WEFT__ENVELOPE__BODY_CONTROL;
	env.control   = &req;
	post(MAIL_CONTROL, &env, 0);
}

static const char *const DEF_HOLDS =
    "{\"name\":\"holds\",\"steps\":["
    "{\"id\":\"w\",\"type\":\"wait\",\"with\":{\"signal\":\"go\"}},"
    "{\"id\":\"d\",\"type\":\"delay\",\"with\":{\"ms\":5000}},"
    "{\"id\":\"e\",\"type\":\"noop\"},"
    "{\"id\":\"keep\",\"type\":\"wait\",\"with\":{\"signal\":\"end\"}}]}";

// The wait and the delay start in the dispatch pass without a worker: a
// one-slot worker gets the echo alone; the delay ends on the engine's
// timer, the wait on a signal, answered after its commit.
Test(engine, holds_take_no_slot_and_end_by_timer_and_signal)
{
	char run_id[64];

	post_worker("w1", 1, 1);
	turn();
	snprintf(run_id, sizeof(run_id), "%s", start_run(DEF_HOLDS));
	turn();
	weft_run *r = engine_run(F.e, run_id);
	cr_assert_not_null(r);
	cr_expect_eq(assigned(), 1, "only the echo goes to the worker");
	cr_expect_str_eq(F.ops[0].steps[0], "e");
	// (keep waits to the end: the run, and r, stay in memory.)
	cr_expect_eq(r->steps[engine_step_index(r, "w")].state, WEFT_STEP_RUNNING);
	cr_expect_eq(r->steps[engine_step_index(r, "d")].state, WEFT_STEP_RUNNING);
	answer_all(true);
	turn();
	cr_expect_eq(worker("w1")->inflight, 1, "the holds take no slot");
	advance(4999);
	turn();
	cr_expect_eq(r->steps[engine_step_index(r, "d")].state, WEFT_STEP_RUNNING);
	advance(1);
	turn();
	cr_expect_eq(r->steps[engine_step_index(r, "d")].state,
	    WEFT_STEP_SUCCEEDED, "ends at its deadline");
	size_t before = F.nreplies;
	post_signal(run_id, "go", "{\"a\":1}", false);
	turn();
	cr_assert_eq(F.nreplies, before + 1);
	cr_expect_eq(json_integer_value(json_object_get(F.replies[before],
	                 "code")),
	    0, "%s", json_string_value(json_object_get(F.replies[before],
	                 "error")));
	cr_expect_eq(json_integer_value(json_object_get(
	                 r->steps[engine_step_index(r, "w")].output, "a")),
	    1);
	cr_expect_eq(count_published("step_signaled"), 1);
	// Again: nothing waits now; refused, and nothing is published.
	post_signal(run_id, "go", "", false);
	turn();
	cr_assert_eq(F.nreplies, before + 2);
	cr_expect_eq(json_integer_value(json_object_get(F.replies[before + 1],
	                 "code")),
	    WEFT_ESTATE);
	cr_expect_eq(count_published("step_signaled"), 1);
	post_result(run_id, "e", 1, true);
	turn();
	cr_expect_eq(r->state, WEFT_RUN_RUNNING, "keep still waits");
	post_signal(run_id, "end", "", false);
	turn();
	turn();
	cr_expect_eq(count_published("run_succeeded"), 1);
}

// A restart re-arms the delay at the deadline its step_started recorded:
// it ends then, not a whole delay after the restart.
Test(engine, restart_rearms_a_delay_at_its_recorded_deadline)
{
	char    run_id[64];
	int64_t until = F.wall + 10000;

	snprintf(run_id, sizeof(run_id), "%s",
	    start_run("{\"name\":\"nap\",\"steps\":[{\"id\":\"d\",\"type\":"
	              "\"delay\",\"with\":{\"ms\":10000}},{\"id\":\"keep\","
	              "\"type\":\"wait\",\"with\":{\"signal\":\"end\"}}]}"));
	turn();
	advance(3000);
	turn();
	fake_restart();
	turn();
	weft_run *r = engine_run(F.e, run_id);
	cr_assert_not_null(r, "run %s not recovered", run_id);
	cr_expect_eq(r->steps[0].state, WEFT_STEP_RUNNING);
	advance(6999);
	turn();
	cr_expect_eq(r->steps[0].state, WEFT_STEP_RUNNING);
	advance(1);
	turn();
	// (keep waits: the run, and r, stay in memory.)
	cr_expect_eq(r->steps[0].state, WEFT_STEP_SUCCEEDED);
	cr_expect_eq(json_integer_value(json_object_get(r->steps[0].output,
	                 "at_ms")),
	    until, "at_ms %lld, want %lld",
	    (long long) json_integer_value(json_object_get(r->steps[0].output,
	        "at_ms")), (long long) until);
}

// ---- results in the assignment's reply (the worker's --reply-wait) ----

#define DEF_CHAIN                                                         \
	"{\"name\":\"chain\",\"steps\":[{\"id\":\"a\",\"type\":\"noop\"},"     \
	"{\"id\":\"b\",\"type\":\"noop\",\"depends_on\":[\"a\"]}]}"

// answer_with_result answers op fo as w1 does when the step ended before
// its reply left: accepted, and the result in the reply.
static void
answer_with_result(fake_op *fo, const char *run, const char *step)
{
	Weft__Envelope     env = WEFT__ENVELOPE__INIT;
	Weft__AssignReply  rep = WEFT__ASSIGN_REPLY__INIT;
	Weft__StepResult   sr  = WEFT__STEP_RESULT__INIT;
	Weft__StepResult  *srp = &sr;
	protobuf_c_boolean yes = true;
	char              *none = "";
	engine_mail       *m    = weft_xalloc(sizeof(*m));

	cr_assert_eq(fo->nitems, 1);
	sr.run_id        = (char *) run;
	sr.step_id       = (char *) step;
	sr.attempt       = 1;
	sr.ok            = true;
	sr.output_json   = "{\"v\":1}";
	rep.n_accepted   = 1;
	rep.accepted     = &yes;
	rep.n_reason     = 1;
	rep.reason       = &none;
	rep.n_results    = 1;
	rep.results      = &srp;
	env.body_case    = WEFT__ENVELOPE__BODY_ASSIGN_REPLY;
	env.assign_reply = &rep;
	cr_assert_eq(weft_wire_pack(&F.wire_w1, &env, NULL, &fo->op->reply),
	    WEFT_OK);
	fo->op->result = 0;
	fo->done       = true;
	F.held--;
	m->kind = MAIL_ASSIGN;
	m->op   = fo->op;
	weft_mailbox_post(&F.e->mailbox, &m->node);
}

// start_chain has w1 join and starts a DEF_CHAIN run (its id into id),
// whose step a is assigned.
static void
start_chain(char id[64])
{
	post_worker("w1", 2, 1);
	turn();
	snprintf(id, 64, "%s", start_run(DEF_CHAIN));
	cr_assert_eq(F.nops, 1);
	cr_assert_str_eq(F.ops[0].steps[0], "a");
}

// A result in a reply is applied like a ResultBatch, and acked in the
// worker's next AssignBatch: the one of the step it made ready, which
// leaves only once the batch that recorded the result is durable.
Test(engine, result_in_reply_is_acked_with_the_next_step_after_commit)
{
	static weft_store_ops ops;
	char                  id[64];

	start_chain(id);
	cr_expect_eq(F.ops[0].nacked, 0);

	sem_init(&gate, 0, 0);
	hook_commit(&ops, gated_commit);
	F.e->inline_max = 0; // every batch through the store thread
	engine_committer_start(F.e);
	answer_with_result(&F.ops[0], id, "a");
	turn(); // a's end and b's dispatch: handed over, waiting at the gate
	cr_expect_eq(F.nops, 1, "b's assignment (and a's ack) left before "
	                        "the commit");
	sem_post(&gate);
	engine_quiesce(F.e);
	cr_assert_eq(F.nops, 2, "b was not assigned after the commit");
	cr_expect_str_eq(F.ops[1].steps[0], "b");
	cr_expect_eq(F.ops[1].nacked, 1, "a's result was not acked with b");
	cr_expect_str_eq(F.ops[1].acked[0], "a");
	cr_expect_eq(F.nacks, 0, "a ResultAck for a result no batch sent");

	// b's result in its reply too: the run ends, there is no next step,
	// and the ack goes alone once the end is durable.
	answer_with_result(&F.ops[1], id, "b");
	turn();
	cr_expect_eq(F.nops, 2, "b's ack left before the commit");
	sem_post(&gate);
	engine_quiesce(F.e);
	cr_assert_eq(F.nops, 3, "no batch carried b's ack");
	cr_expect_eq(F.ops[2].nitems, 0);
	cr_expect_eq(F.ops[2].nacked, 1);
	cr_expect_str_eq(F.ops[2].acked[0], "b");
	cr_expect_str_eq(F.published[F.npublished - 1], "run_succeeded");
	engine_committer_stop(F.e);
	ops.commit = real_commit;
	sem_destroy(&gate);
}

// A batch whose commit fails sends neither the assignment it made nor the
// ack of the result it applied: the worker sends that result again.
Test(engine, result_in_reply_is_not_acked_when_its_commit_fails)
{
	static weft_store_ops ops;
	char                  id[64];

	start_chain(id);
	hook_commit(&ops, failing_commit);
	atomic_store(&F.e->stopping, true);
	answer_with_result(&F.ops[0], id, "a");
	turn();
	cr_expect_eq(F.nops, 1, "an assignment or an ack left without a "
	                        "commit");
	cr_expect_eq(worker("w1")->nacks, 0, "the failed batch's ack was "
	                                     "kept for a later one");
	ops.commit = real_commit;
}

// Two batches back to back, each applying a result that came in a reply:
// the first batch's release, which happens while the second is at the
// store, acks only its own result; the second's ack waits for its commit.
Test(engine, result_in_reply_ack_waits_for_its_own_batch)
{
	static weft_store_ops ops;
	char                  x[64], y[64];

	post_worker("w1", 8, 1);
	turn();
	snprintf(x, sizeof(x), "%s", start_run(DEF_CHAIN));
	snprintf(y, sizeof(y), "%s", start_run(DEF_CHAIN));
	cr_assert_eq(F.nops, 2);
	sem_init(&gate, 0, 0);
	hook_commit(&ops, gated_commit);
	F.e->inline_max = 0; // every batch through the store thread
	engine_committer_start(F.e);
	answer_with_result(&F.ops[0], x, "a");
	turn(); // batch 1: x's a ends, x's b chosen; at the gate
	sem_post(&gate); // batch 1 commits
	answer_with_result(&F.ops[1], y, "a");
	turn(); // batch 2 (y's a) to the store thread, at the gate; 1 out
	cr_assert_eq(F.nops, 3, "batch 1's assignment did not go");
	cr_expect_eq(F.ops[2].nacked, 1,
	    "batch 1's release acked a result batch 2 applied");
	cr_expect_str_eq(F.ops[2].acked_run[0], x);
	sem_post(&gate);
	engine_quiesce(F.e);
	cr_assert_eq(F.nops, 4, "batch 2's assignment did not go");
	cr_expect_eq(F.ops[3].nacked, 1);
	cr_expect_str_eq(F.ops[3].acked_run[0], y);
	engine_committer_stop(F.e);
	ops.commit = real_commit;
	sem_destroy(&gate);
}
