// engine: the engine thread and its loop.
//
// Each iteration: drain the mailbox; apply every message to its run (pure
// transitions into e->out); fire due timers; match ready steps to workers;
// number the batch's events and write them in one transaction; only then
// publish them, answer the requests the batch held, and send assignments.
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "alloc.h"
#include "clock.h"
#include "engine_int.h"
#include "id.h"
#include "jsonx.h"
#include "log.h"
#include "registry.h"
#include "seal.h"
#include "secret.h"

// ---- runs ----

weft_run *
engine_run(weft_engine *e, const char *id)
{
	return (weft_map_get(&e->runs, id));
}

long
engine_step_index(const weft_run *r, const char *step_id)
{
	return (weft_def_find(r->def, step_id));
}

static long
engine_find(const void *arg, const char *id)
{
	return (engine_step_index(arg, id));
}

bool
engine_unit(const weft_run *r, const char *name, weft_ref *out)
{
	return (weft_ref_parse(name, engine_find, r, out));
}

// engine_run_add takes r into the run map; its definition stays cached
// while it is there.
void
engine_run_add(weft_engine *e, weft_run *r)
{
	control_def_hold(e, r->def_base); // r->def may grow expansions
	weft_map_put(&e->runs, r->id, r);
	atomic_store(&e->metrics.runs_in_memory, e->runs.count);
}

// engine_run_reap marks a run that ended and that nothing points at for
// freeing at the end of the iteration: this iteration's events may still
// name it.
static void
engine_run_reap(weft_engine *e, weft_run *r)
{
	if (!weft_run_terminal(r->state) || r->refs > 0 || r->reaping) {
		return;
	}
	r->reaping = true;
	if (e->nreap == e->capreap) {
		e->capreap = e->capreap ? e->capreap * 2 : 64;
		e->reap    = weft_xrealloc(e->reap, e->capreap * sizeof(*e->reap));
	}
	e->reap[e->nreap++] = r;
}

void
engine_run_forget(weft_engine *e, weft_run *r)
{
	engine_run_reap(e, r);
}

static void
engine_reap_now(weft_engine *e)
{
	for (size_t k = 0; k < e->nreap; k++) {
		weft_run *r = e->reap[k];
		if (r->refs > 0 || !weft_run_terminal(r->state)) {
			// Taken again since (an effect applied after it was
			// marked, a retry that brought it back while the batch
			// that ended it committed): its last release marks it
			// again once it ends.
			r->reaping = false;
			continue;
		}
		weft_map_del(&e->runs, r->id);
		control_def_rele(e, r->def_base);
		weft_run_free(r);
	}
	e->nreap = 0;
	atomic_store(&e->metrics.runs_in_memory, e->runs.count);
	// Definitions the freed runs let go of may go now; nothing else
	// holds an entry between iterations.
	control_def_trim(e);
}

void
engine_run_rele(weft_engine *e, weft_run *r)
{
	WEFT_ASSERT(r->refs > 0);
	r->refs--;
	engine_run_reap(e, r);
}

// ---- replies ----

nng_msg *
engine_control_reply(weft_engine *e, int code, const char *error, json_t *body)
{
	return (engine_control_reply_page(e, code, error, body, NULL, NULL, 0));
}

nng_msg *
engine_control_reply_page(weft_engine *e, int code, const char *error,
    json_t *body, const char *next, const void *data, size_t len)
{
	Weft__Envelope     env = WEFT__ENVELOPE__INIT;
	Weft__ControlReply rep = WEFT__CONTROL_REPLY__INIT;
	char              *text = body != NULL ? weft_json_dump(body) : NULL;
	nng_msg           *msg  = NULL;

	rep.code          = code;
	rep.error         = (char *) (error ? error : "");
	rep.body_json     = text ? text : (char *) "";
	rep.next_cursor   = (char *) (next ? next : "");
	rep.data.data     = (uint8_t *) data;
	rep.data.len      = data != NULL ? len : 0;
	env.body_case     = WEFT__ENVELOPE__BODY_CONTROL_REPLY;
	env.control_reply = &rep;
	if (weft_wire_pack(&e->wire, &env, NULL, &msg) != WEFT_OK) {
		// Too large a body: answer with the error instead.
		rep.code      = WEFT_ETOOBIG;
		rep.error     = (char *) "reply too large: narrow the query";
		rep.body_json = (char *) "";
		rep.data.len  = 0;
		weft_wire_pack(&e->wire, &env, NULL, &msg);
	}
	free(text);
	return (msg);
}

void
engine_hold_reply(weft_engine *e, reply_to to, nng_msg *msg)
{
	if (e->nheld == e->capheld) {
		e->capheld = e->capheld ? e->capheld * 2 : 64;
		e->held    = weft_xrealloc(e->held, e->capheld * sizeof(*e->held));
	}
	e->held[e->nheld].to    = to;
	e->held[e->nheld].msg   = msg;
	e->nheld++;
}

void
engine_reply_now(weft_engine *e, reply_to to, int code, const char *error,
    json_t *body)
{
	// "Now" still means after this iteration's commit: a reply may
	// describe state the batch changed.
	engine_hold_reply(e, to, engine_control_reply(e, code, error, body));
	json_decref(body);
}

// ---- the store's state ----

void
engine_store_state(weft_engine *e, bool ok, const char *why)
{
	size_t n = ok || why == NULL ? 0 : strlen(why);

	if (n >= sizeof(e->store_error)) {
		n = sizeof(e->store_error) - 1;
	}
	pthread_mutex_lock(&e->store_lock);
	memcpy(e->store_error, why != NULL ? why : "", n);
	e->store_error[n] = '\0';
	atomic_store(&e->store_ok, ok);
	pthread_mutex_unlock(&e->store_lock);
}

bool
engine_store_error(weft_engine *e, char *out, size_t len)
{
	bool ok;

	pthread_mutex_lock(&e->store_lock);
	ok = atomic_load(&e->store_ok);
	snprintf(out, len, "%s", ok ? "" : e->store_error);
	pthread_mutex_unlock(&e->store_lock);
	return (ok);
}

// engine_refuse answers a request that would write with "store
// unavailable" at once: it is not held for a commit, since it tells
// nothing the store would have to hold first.
static void
engine_refuse(weft_engine *e, engine_mail *m)
{
	char why[600], msg[700];

	engine_store_error(e, why, sizeof(why));
	snprintf(msg, sizeof(msg), "store unavailable: %s",
	    why[0] != '\0' ? why : "not connected yet");
	e->io.reply(e->io.arg, m->to,
	    engine_control_reply(e, WEFT_EUNAVAIL, msg, NULL));
}

static void
engine_mail_free(engine_mail *m)
{
	weft_wire_free(m->env);
	free(m);
}

// engine_park keeps survey mail and finished assign exchanges for after
// an outage, in a bounded form, since an outage may last hours: per worker
// process (name and incarnation) only its latest survey answer, which
// holds all it knows, and only the latest survey end, taken after every
// answer (a worker that first answered after an earlier end must not be
// counted missing in it). So the engine sees, once the store is back,
// each worker's last word and then the last round, as if it had only
// been slow; the parked list is at most one entry per worker and per
// assign exchange.
static void
engine_park(weft_engine *e, engine_mail *m)
{
	if (m->kind == MAIL_SURVEY_END) {
		if (e->parked_end != NULL) {
			engine_mail_free(e->parked_end);
		}
		e->parked_end = m;
		return;
	}
	if (m->kind == MAIL_WORKER_INFO) {
		for (weft_mail *p = e->parked; p != NULL; p = p->next) {
			engine_mail *o = (engine_mail *) p;
			if (o->kind == MAIL_WORKER_INFO &&
			    o->env->incarnation == m->env->incarnation &&
			    strcmp(o->env->sender, m->env->sender) == 0) {
				// The newer answer takes the older one's place.
				Weft__Envelope *old = o->env;
				o->env              = m->env;
				o->round            = m->round;
				memcpy(o->peer, m->peer, sizeof(o->peer));
				m->env = old;
				engine_mail_free(m);
				return;
			}
		}
	}
	m->node.next    = NULL;
	*e->parked_tail = &m->node;
	e->parked_tail  = &m->node.next;
}

// engine_outage_mail takes one message while the store is unavailable
// (a commit retrying, or the store not connected yet): the engine must not
// change state it cannot record, yet must not go deaf either.
//   - requests that would write get "store unavailable" now (HTTP 503);
//   - results and goodbyes are dropped unacked: the worker's outbox
//     sends them again, and nothing acked can be lost;
//   - survey answers and ends and finished assign exchanges are parked
//     and taken, in order, once the store is back: a worker is never
//     declared lost because the engine could not look.
static void
engine_outage_mail(weft_engine *e, engine_mail *m)
{
	switch (m->kind) {
	case MAIL_CONTROL:
		if (m->env->control->req_case ==
		        WEFT__CONTROL_REQUEST__REQ_WORKERS &&
		    atomic_load(&e->store_ready)) {
			json_t *body = sched_workers_json(e);
			e->io.reply(e->io.arg, m->to,
			    engine_control_reply(e, 0, NULL, body));
			json_decref(body);
		} else {
			engine_refuse(e, m);
		}
		engine_mail_free(m);
		break;
	case MAIL_RESULTS:
	case MAIL_GOODBYE:
		e->io.drop(e->io.arg, m->to);
		engine_mail_free(m);
		break;
	case MAIL_WORKER_INFO:
	case MAIL_SURVEY_END:
	case MAIL_ASSIGN:
		engine_park(e, m);
		break;
	case MAIL_STOP:
	case MAIL_METRICS:
	case MAIL_COMMITTED:
		engine_mail_free(m);
		break;
	}
}

// engine_outage_wait waits ms (real time) for the store, taking the mail
// that comes meanwhile as engine_outage_mail says. Returns early when the
// engine stops.
static void
engine_outage_wait(weft_engine *e, int ms)
{
	int64_t deadline = weft_clock_mono_ms() + ms;
	int64_t left;

	while (!atomic_load(&e->stopping) &&
	    (left = deadline - weft_clock_mono_ms()) > 0) {
		weft_mail *mail = weft_mailbox_drain(&e->mailbox, left);
		while (mail != NULL) {
			engine_mail *m = (engine_mail *) mail;
			mail           = mail->next;
			engine_outage_mail(e, m);
		}
	}
}

// ---- inputs ----

bool
engine_take_step_results(weft_engine *e, const Weft__Envelope *from,
    Weft__StepResult *const *results, size_t n, int64_t now)
{
	// Events may name the sender; they outlive this envelope (it is freed
	// before the commit), so name it from the registry, which stays.
	weft_worker_rec *w    = weft_map_get(&e->workers, from->sender);
	const char      *node = w != NULL ? w->name : "unknown";
	if (w != NULL && w->incarnation == 0) {
		// Named by recovered attempts, not heard from since our start:
		// which process holds the name is not known yet. No ack: the
		// worker sends the batch again, after its survey answer.
		return (false);
	}
	if (w != NULL && w->incarnation != from->incarnation &&
	    sched_newcomer(e, w, from->incarnation)) {
		// Maybe the holder restarted, re-sending results from its
		// spool: no ack until it has taken the name over (or been
		// refused), so they are neither lost nor ignored meanwhile.
		return (false);
	}
	if (w != NULL && w->incarnation != from->incarnation) {
		// A process under a name another one holds: its results are
		// not the holder's, whatever name they carry.
		node = w->other;
	}

	for (size_t k = 0; k < n; k++) {
		Weft__StepResult *sr = results[k];
		weft_run         *r  = engine_run(e, sr->run_id);
		weft_ref          u;
		json_t           *out = NULL;
		if (r == NULL || !engine_unit(r, sr->step_id, &u) ||
		    weft_run_unit(r, u) == NULL) {
			weft_log_debug("RESULT-UNKNOWN", "run=%s step=%s attempt=%u",
			    sr->run_id, sr->step_id, sr->attempt);
			continue;
		}
		char        toobig[200];
		size_t      outlen = strlen(sr->output_json);
		bool        ok     = sr->ok;
		const char *error  = sr->error;
		if (ok && outlen > e->cfg.max_output) {
			// A worker that did not check (an older one, or a
			// limit it was not told): the attempt fails, naming
			// the limit; the output is not kept.
			snprintf(toobig, sizeof(toobig),
			    "output too large: %zu bytes, over the step output "
			    "limit of %llu bytes (--max-output)",
			    outlen, (unsigned long long) e->cfg.max_output);
			ok    = false;
			error = toobig;
		}
		if (ok) {
			out = weft_json_parse_cell(
			    sr->output_json[0] ? sr->output_json : NULL);
		}
		// A step that echoes a secret: its output, error and stderr
		// are masked before the run keeps them, so what dependents
		// see matches what is recorded, before and after a restart.
		char *err_clean = weft_secret_scrub_text(error,
		    r->secret_values);
		char *tail_clean = weft_secret_scrub_text(sr->stderr_tail,
		    r->secret_values);
		if (out != NULL && r->secret_values != NULL) {
			json_t *clean = weft_secret_scrub(out, r->secret_values);
			json_decref(out);
			out = clean;
		}
		weft_result res = { .attempt = sr->attempt, .ok = ok,
			.output = out,
			.error = err_clean != NULL ? err_clean : error,
			.exit_code = sr->exit_code,
			.stderr_tail = tail_clean != NULL ? tail_clean
			                                  : sr->stderr_tail,
			.node = node, .started_ms = (int64_t) sr->started_ms,
			.finished_ms = (int64_t) sr->finished_ms };
		if (weft_run_result(r, u, &res, now, &e->out) == WEFT_OK) {
			atomic_fetch_add(ok ? &e->steps_succeeded
			                        : &e->steps_failed, 1);
			int64_t took = res.finished_ms > res.started_ms
			    ? res.finished_ms - res.started_ms
			    : 0;
			weft_hist_observe(&e->metrics.step_seconds,
			    (double) took / 1000.0);
			sched_observe(e, r->def->steps[u.step].type, took);
			if (ok) {
				learn_observe(e, r, u.step, took);
			}
		}
		json_decref(out);
		free(err_clean);
		free(tail_clean);
	}
	atomic_fetch_add(&e->results_received, n);
	return (true);
}

static void
engine_on_results(weft_engine *e, engine_mail *m, int64_t now)
{
	Weft__ResultBatch *b   = m->env->results;
	Weft__Envelope     env = WEFT__ENVELOPE__INIT;
	Weft__ResultAck    ack = WEFT__RESULT_ACK__INIT;
	nng_msg           *msg;

	if (!engine_take_step_results(e, m->env, b->results, b->n_results,
	        now)) {
		e->io.drop(e->io.arg, m->to);
		return;
	}
	// The ack waits for the commit of this batch: then the results are
	// durable and the worker may forget them.
	ack.count      = (uint32_t) b->n_results;
	env.body_case  = WEFT__ENVELOPE__BODY_RESULT_ACK;
	env.result_ack = &ack;
	env.recipient  = m->env->sender;
	if (weft_wire_pack(&e->wire, &env, NULL, &msg) == WEFT_OK) {
		engine_hold_reply(e, m->to, msg);
	}
}

// engine_on_goodbye applies a stopping worker's Goodbye and acks it after
// the commit, like results: the worker then knows its released attempts
// are back with us (or, final, that it may go).
static void
engine_on_goodbye(weft_engine *e, engine_mail *m, int64_t now)
{
	Weft__Envelope  env = WEFT__ENVELOPE__INIT;
	Weft__ResultAck ack = WEFT__RESULT_ACK__INIT;
	nng_msg        *msg;

	if (!sched_goodbye(e, m->env, now)) {
		e->io.drop(e->io.arg, m->to);
		return;
	}
	ack.count      = 1;
	env.body_case  = WEFT__ENVELOPE__BODY_RESULT_ACK;
	env.result_ack = &ack;
	env.recipient  = m->env->sender;
	if (weft_wire_pack(&e->wire, &env, NULL, &msg) == WEFT_OK) {
		engine_hold_reply(e, m->to, msg);
	}
}

static void
engine_handle(weft_engine *e, engine_mail *m, int64_t now)
{
	switch (m->kind) {
	case MAIL_CONTROL:
		if (!atomic_load(&e->store_ok) &&
		    m->env->control->req_case !=
		        WEFT__CONTROL_REQUEST__REQ_WORKERS) {
			// The store was found gone between commits (a deleted
			// file): nothing new is taken on.
			engine_refuse(e, m);
			break;
		}
		control_handle(e, m, now);
		break;
	case MAIL_RESULTS:
		engine_on_results(e, m, now);
		break;
	case MAIL_GOODBYE:
		engine_on_goodbye(e, m, now);
		break;
	case MAIL_WORKER_INFO:
		sched_worker_info(e, m->env->worker_info, m->env->incarnation,
		    m->peer, m->round, now);
		break;
	case MAIL_SURVEY_END:
		sched_survey_end(e, m->round, now);
		learn_refresh_eta(e, now);
		break;
	case MAIL_ASSIGN:
		sched_assign_done(e, m->op);
		break;
	case MAIL_STOP:
	case MAIL_METRICS:
	case MAIL_COMMITTED: // a wake-up: engine_iteration released it
		break;
	}
	weft_wire_free(m->env);
	free(m);
}

// ---- effects that stay inside the engine ----

// engine_apply turns the effects not applied yet into queue entries and
// timers, and moves the applied cursor past them: each effect takes hold
// exactly once. These change only the engine's own scheduling state,
// invisible outside, so they may happen before the commit; the others
// (ABORT, RUN_ENDED) wait for it (engine_release).
static void
engine_apply(weft_engine *e)
{
	for (; e->applied < e->out.neffects; e->applied++) {
		weft_effect *f = &e->out.effects[e->applied];
		weft_ref     u = { f->step, f->item };
		switch (f->kind) {
		case WEFT_EFFECT_ENQUEUE:
			if (f->run->def->steps[u.step].hold != WEFT_HOLD_NONE) {
				holds_enqueue(e, f->run, u); // no worker's
				break;
			}
			sched_enqueue(e, f->run, u);
			sched_arm_schedule(e, f->run, u);
			break;
		case WEFT_EFFECT_HOLD_TIMER:
			sched_timer(e, TIMER_HOLD, f->run, u, f->attempt, f->at_ms);
			break;
		case WEFT_EFFECT_START_TIMER:
			sched_timer(e, TIMER_START, f->run, WEFT_REF(-1), 0,
			    f->at_ms);
			break;
		case WEFT_EFFECT_RETRY_TIMER:
			sched_timer(e, TIMER_RETRY, f->run, u, f->attempt, f->at_ms);
			break;
		case WEFT_EFFECT_STEP_TIMEOUT:
			sched_timer(e, TIMER_STEP_TIMEOUT, f->run, u, f->attempt,
			    f->at_ms);
			break;
		case WEFT_EFFECT_RUN_TIMEOUT:
			sched_timer(e, TIMER_RUN_TIMEOUT, f->run, WEFT_REF(-1), 0,
			    f->at_ms);
			break;
		case WEFT_EFFECT_RELEASE:
			sched_release(e, f->node);
			sched_type_hold(e, f->run, f->step, f->node, false);
			break;
		case WEFT_EFFECT_RUN_ENDED:
			// Its ready steps must not be dispatched by the next
			// batch while this one commits; the run itself is let
			// go after the commit (engine_release).
			sched_unqueue_run(e, f->run);
			admit_release(e, f->run);
			subwf_run_ended(e, f->run, e->now_ms);
			break;
		case WEFT_EFFECT_ABORT:
			// A workflow unit's: its child is cancelled in the
			// same commit. A worker's: after the commit.
			if (f->node[0] == '\0') {
				subwf_abort(e, f->run, u);
			}
			break;
		default:
			break; // ABORT: after the commit
		}
	}
}

// ---- commit and release ----

// engine_scrub masks, in o's data, any copy of its run's secret values:
// a step that printed a token, an error quoting one. The run model keeps
// its secrets in clear (assignments need them); nothing recorded may.
// Returns the data text (malloc'd), or NULL for empty data.
static char *
engine_scrub(weft_out_event *o)
{
	if (o->data != NULL && o->run != NULL &&
	    o->run->secret_values != NULL) {
		// The values, not the JSON text, are searched: a secret that
		// JSON escapes is found in the strings where it really is.
		// The data may share members with the run (a step's output):
		// scrub copies what it changes.
		json_t *data = weft_secret_scrub(o->data, o->run->secret_values);
		json_decref(o->data);
		o->data = data;
	}
	return (o->data != NULL ? weft_json_dump(o->data) : NULL);
}

// engine_seal seals the clear input and params of a run that has secrets
// for its run_queued event (malloc'd), or returns NULL.
static char *
engine_seal(weft_engine *e, const weft_out_event *o)
{
	json_t *doc;
	char   *text, *box;

	if (o->type != WEFT_EV_RUN_QUEUED || o->run == NULL ||
	    !o->run->secrets) {
		return (NULL);
	}
	// control_run refuses secrets without a key; a run that has some
	// here anyway must not be stored without them.
	WEFT_ASSERT(e->cfg.has_secret_key);
	doc  = json_pack("{s:O, s:O}", "input", o->run->input, "params",
	     o->run->params);
	text = weft_json_dump(doc);
	box  = weft_seal(e->cfg.secret_key, text, strlen(text));
	sodium_memzero(text, strlen(text));
	free(text);
	json_decref(doc);
	return (box);
}

// engine_blobs stores large members of o's data once (blob.h): the event,
// and so what is published, its projections and every query, carries a
// reference instead, written in the same commit. The run in memory keeps
// the real values (a later step's "with" reads them). *text (o's data
// text, malloc'd) is replaced when anything was.
static void
engine_blobs(weft_out_event *o, char **text, weft_event *v)
{
	weft_blob *blobs = NULL;
	size_t     n     = 0;
	size_t     len   = *text != NULL ? strlen(*text) : 0;
	json_t    *data;

	v->blobs  = NULL;
	v->nblobs = 0;
	if (len <= WEFT_BLOB_THRESHOLD) {
		return; // the common case: nothing in it can be large
	}
	// Let the whole text go before the large members are written out
	// on their own: the peak is one copy of a large value, not two.
	free(*text);
	*text = NULL;
	if ((data = weft_blob_extract(o->data, len, &blobs, &n)) != NULL) {
		json_decref(o->data);
		o->data = data;
	}
	v->blobs  = blobs;
	v->nblobs = n;
	*text     = weft_json_dump(o->data);
}

// engine_pin makes run r (NULL is fine) held by batch b until b's
// release: a run that ends in b is let go only after b is durable, while
// the next batch may already name it.
static void
engine_pin(engine_batch *b, weft_run *r)
{
	if (r == NULL || r->pin_gen == b->gen) {
		return;
	}
	r->pin_gen = b->gen;
	r->refs++;
	if (b->npins == b->cappins) {
		b->cappins = b->cappins ? b->cappins * 2 : 64;
		b->pins    = weft_xrealloc(b->pins, b->cappins * sizeof(*b->pins));
	}
	b->pins[b->npins++] = r;
}

// engine_number turns the batch's output events into store events: global
// ids, per-run sequence numbers, one timestamp; and pins the runs they and
// the effects name. texts has room for 3n strings it allocates: data
// texts, the names of map items, then the sealed secrets of new runs.
static weft_event *
engine_number(weft_engine *e, engine_batch *b, int64_t now, char **texts)
{
	size_t n = e->out.nevents;
	weft_event *evs = weft_xalloc((n ? n : 1) * sizeof(*evs));

	for (size_t k = 0; k < e->out.neffects; k++) {
		engine_pin(b, e->out.effects[k].run);
	}
	for (size_t k = 0; k < e->out.nevents; k++) {
		weft_out_event *o = &e->out.events[k];
		weft_event     *v = &evs[k];
		engine_pin(b, o->run);
		v->id             = e->next_event_id + k;
		v->run_id         = o->run ? o->run->id : NULL;
		v->seq            = o->run ? ++o->run->seq : 0;
		v->ts_ms          = now;
		v->type           = o->type;
		v->step_id = (o->run && o->step >= 0) ? o->run->def->steps[o->step].id
		                                      : NULL;
		if (o->run != NULL && o->item >= 0) {
			char name[300];
			weft_ref_name(o->run, (weft_ref) { o->step, o->item }, name,
			    sizeof(name));
			texts[n + k] = weft_xstrdup(name);
			v->step_id   = texts[n + k];
		}
		v->attempt   = o->attempt;
		v->node      = o->node[0] != '\0' ? o->node : NULL;
		texts[k]     = engine_scrub(o);
		engine_blobs(o, &texts[k], v);
		v->data      = o->data;
		v->data_text = texts[k] != NULL ? texts[k] : "{}";
		texts[2 * n + k] = engine_seal(e, o);
		v->secrets       = texts[2 * n + k];
	}
	return (evs);
}

// engine_commit writes the batch, retrying with backoff while the store is
// unavailable: the engine never acts on an event the store does not hold.
// A batch the store refuses for good (a constraint, a bad value) can never
// be written, and the state in memory already includes it: the process
// stops, and a restart recovers from what the store holds.
static bool
engine_commit(weft_engine *e, weft_event *evs, size_t n,
    const weft_dur_rows *durations, void (*wait)(weft_engine *, int))
{
	int      delay = 50, refused = 0;
	int64_t  t0    = weft_clock_mono_us();
	weft_err rv;
	// Reported away already (an idle flush failed, say): this batch
	// going through says it is back.
	bool was_down = !atomic_load(&e->store_ok);

	while ((rv = weft_store_append_with(e->store, evs, n, durations)) !=
	    WEFT_OK) {
		engine_store_state(e, false, e->store->error);
		was_down = true;
		if (rv != WEFT_EUNAVAIL && ++refused >= 3) {
			weft_log_err("DB-REFUSED", "the store refuses a batch of %zu "
			    "events (first id %llu): %s; stopping so that a restart "
			    "recovers from the store", n,
			    (unsigned long long) evs[0].id, e->store->error);
			abort();
		}
		if (atomic_load(&e->stopping)) {
			// Stopping with the store away: the batch stays unwritten
			// and so untold; recovery starts from what the store has.
			return (false);
		}
		weft_log_err("DB-RETRY", "commit of %zu events failed: %s; "
		    "retrying in %d ms", n, e->store->error, delay);
		// On the engine thread, not asleep: requests get their 503
		// now, results stay unacked, survey mail waits
		// (engine_outage_mail). On the store thread, the engine
		// does that while it waits for this batch.
		wait(e, delay);
		delay = delay * 2 < 5000 ? delay * 2 : 5000;
	}
	if (was_down) {
		weft_log_notice("DB-BACK", "the store took the batch of %zu "
		    "events after %" PRId64 " ms; carrying on", n,
		    (weft_clock_mono_us() - t0) / 1000);
	}
	engine_store_state(e, true, NULL);
	weft_metrics_commit(&e->metrics, n, weft_clock_mono_us() - t0);
	atomic_store(&e->last_event_id, evs[n - 1].id);
	atomic_fetch_add(&e->batches_committed, 1);
	atomic_fetch_add(&e->events_committed, n);
	return (true);
}

// engine_release lets out what waited for batch b to be durable: its
// assignments and aborts sent, its replies sent, its events published, the
// runs it ended let go. A batch the store never took (the engine stopping
// with the store away) lets nothing out.
//
// Assignments first: a worker waits on them (on a chain, the next step),
// and nng sends on this thread (a TCP write each); the event stream, which
// nothing waits on to make progress, goes last. Published events keep
// their order: this batch's after the one before.
static void
engine_release(weft_engine *e, engine_batch *b)
{
	if (!b->early_sent) {
		sched_send_batches(e, &b->out, true, b->written);
	}
	b->early      = 0;
	b->early_sent = false;
	for (size_t k = 0; k < b->nheld; k++) {
		if (b->written) {
			e->io.reply(e->io.arg, b->held[k].to, b->held[k].msg);
		} else {
			nng_msg_free(b->held[k].msg);
			e->io.drop(e->io.arg, b->held[k].to);
		}
	}
	b->nheld = 0;
	if (b->written) {
		e->io.publish(e->io.arg, b->evs, b->n);
	}
	for (size_t k = 0; k < b->npins; k++) {
		engine_run_rele(e, b->pins[k]);
	}
	b->npins = 0;
	bool timed = false;
	for (size_t k = 0; k < b->out.neffects; k++) {
		weft_effect *f = &b->out.effects[k];
		if (f->kind == WEFT_EFFECT_RUN_ENDED) {
			weft_log_info("RUN-END", "run=%s state=%s", f->run->id,
			    weft_run_state_name(f->run->state));
			// What still holds it now is timers (or the batch
			// after this one, which lets it go in turn).
			timed = timed || f->run->refs > 0;
			engine_run_reap(e, f->run);
		}
	}
	if (timed) {
		// An ended run leaves memory in the iteration it ends.
		sched_untime_ended(e);
	}
	for (size_t k = 0; k < 3 * b->n; k++) {
		free(b->texts[k]);
	}
	for (size_t k = 0; k < b->n; k++) {
		weft_blob_free((weft_blob *) b->evs[k].blobs, b->evs[k].nblobs);
	}
	free(b->texts);
	free(b->evs);
	b->texts = NULL;
	b->evs   = NULL;
	b->n     = 0;
	weft_out_reset(&b->out);
}

// Commit delay: how long a batch that only records accepted attempts may
// wait for the results that usually follow, in ms. 1 ms was often missed
// by a noop step's result (the worker spools it first): W2 made ~1.23
// commits per step; with 5 ms, ~1.0.
#define ENGINE_DEFER_MS 5

// engine_deferrable says whether this batch may wait for the next
// iteration: it only records that workers accepted attempts (step_started)
// and nothing waits on it — no reply held, no assignment to send. On a
// chain, the step's result then shares its commit: one fsync per step
// instead of two. Never twice in a row.
static bool
engine_deferrable(weft_engine *e)
{
	if (e->deferred || e->nheld > 0 || e->out.nevents == 0 ||
	    sched_has_batches(e) || atomic_load(&e->stopping)) {
		return (false);
	}
	for (size_t k = 0; k < e->out.nevents; k++) {
		// A held step's start (no node) carries its deadline, which a
		// restart reads back: it does not wait.
		if (e->out.events[k].type != WEFT_EV_STEP_STARTED ||
		    e->out.events[k].node[0] == '\0') {
			return (false);
		}
	}
	return (true);
}

// engine_take feeds one input to the engine: the handler only calls the
// pure run model, which appends events and effects to e->out; then the
// internal effects take hold. The one place effects are applied.
static void
engine_take(weft_engine *e, void (*handler)(weft_engine *, void *, int64_t),
    void *arg, int64_t now)
{
	handler(e, arg, now);
	engine_apply(e);
}

static void
engine_on_mail(weft_engine *e, void *arg, int64_t now)
{
	engine_handle(e, arg, now);
}

static void
engine_on_timers(weft_engine *e, void *arg, int64_t now)
{
	(void) arg;
	sched_fire_timers(e, now, e->now_mono);
	cron_turn(e, now);
}

static void
engine_on_dispatch(weft_engine *e, void *arg, int64_t now)
{
	(void) arg;
	admit_turn(e, now); // queued runs that fit the limits start
	holds_start(e, now);
	sched_dispatch(e, now);
}

// Step results applied per iteration at most (in whole batches): the
// rest waits, in order, for the next iteration. Then a flood of results
// never holds back survey answers, control requests (a cancel, a status)
// or assignment replies behind it, nor makes one commit huge.
#define ENGINE_RESULTS_BUDGET 1024

// engine_sort_mail returns the mail of chain `mail` that is not results,
// in order, and moves the result batches to the end of e->carry.
static weft_mail *
engine_sort_mail(weft_engine *e, weft_mail *mail)
{
	weft_mail  *first = NULL;
	weft_mail **tail  = &first;

	while (mail != NULL) {
		weft_mail *next = mail->next;
		mail->next      = NULL;
		if (((engine_mail *) mail)->kind == MAIL_RESULTS) {
			*e->carry_tail = mail;
			e->carry_tail  = &mail->next;
		} else {
			*tail = mail;
			tail  = &mail->next;
		}
		mail = next;
	}
	return (first);
}

// engine_take_results applies carried result batches, oldest first,
// until ENGINE_RESULTS_BUDGET step results are taken.
static void
engine_take_results(weft_engine *e, int64_t now)
{
	size_t taken = 0;

	while (e->carry != NULL && taken < ENGINE_RESULTS_BUDGET) {
		engine_mail *m = (engine_mail *) e->carry;
		if ((e->carry = m->node.next) == NULL) {
			e->carry_tail = &e->carry;
		}
		m->node.next = NULL;
		taken += m->env != NULL && m->env->results != NULL
		    ? m->env->results->n_results
		    : 1;
		engine_take(e, engine_on_mail, m, now);
	}
}

bool
engine_has_carry(const weft_engine *e)
{
	return (e->carry != NULL);
}
static void engine_flush(weft_engine *e, int64_t now);
static bool engine_committed(weft_engine *e);
static void engine_await(weft_engine *e);
static bool engine_early(weft_engine *e);
static void engine_send_early(weft_engine *e, engine_batch *b);

void
engine_iteration(weft_engine *e, weft_mail *mail)
{
	int64_t now = e->clock.wall_ms(e->clock.arg);
	size_t  n;

	e->now_ms   = now;
	e->now_mono = e->clock.mono_ms(e->clock.arg);

	// A batch the store thread finished is released first: its replies
	// and assignments go out before this iteration's work; so are the
	// assignments of one whose first part is durable (engine_split).
	if (engine_early(e)) {
		engine_send_early(e, e->inflight);
	}
	if (e->inflight != NULL && e->out.nevents == 0 && engine_committed(e)) {
		engine_await(e);
	}
	// Mail parked during an outage comes first: the answers and
	// exchanges in the order they came, then the last survey end.
	if (e->parked_end != NULL) {
		e->parked_end->node.next = mail;
		mail                     = &e->parked_end->node;
		e->parked_end            = NULL;
	}
	if (e->parked != NULL) {
		*e->parked_tail = mail;
		mail            = e->parked;
		e->parked       = NULL;
		e->parked_tail  = &e->parked;
	}
	// e->out may already hold output made outside an iteration (by
	// recovery); it is committed with this batch. Everything but results
	// first, in the order it came; then results, a bounded share.
	mail = engine_sort_mail(e, mail);
	bool control = false;
	while (mail != NULL) {
		engine_mail *m = (engine_mail *) mail;
		mail           = mail->next;
		control |= m->kind == MAIL_CONTROL;
		engine_take(e, engine_on_mail, m, now);
	}
	// A control request's reply waits for this iteration's commit: it
	// goes without results (they wait one iteration), but never two
	// iterations running, so a stream of requests cannot starve them.
	if (control && !e->results_held) {
		e->results_held = true;
	} else {
		e->results_held = false;
		engine_take_results(e, now);
	}
	engine_take(e, engine_on_timers, NULL, now);
	// Dispatching can make more work ready (a step whose input cannot be
	// built fails, and what follows it is skipped or runs): again until
	// nothing new comes of it.
	for (;;) {
		size_t before = e->out.neffects;
		engine_take(e, engine_on_dispatch, NULL, now);
		if (e->out.neffects == before) {
			break;
		}
	}
	n = e->out.nevents;
	if (n == 0 && e->nheld == 0) {
		if (e->inflight == NULL) {
			// Assignments no event records (none wait for a batch).
			sched_send_batches(e, NULL, false, true);
		}
		engine_reap_now(e);
		retain_turn(e);
		return;
	}
	if (engine_deferrable(e)) {
		e->deferred = true; // the output stays in e->out, uncommitted
		return;
	}
	engine_flush(e, now);
	// At most one batch of deletions (it waits for the commit in
	// flight: the store is not shared), then the mailbox again.
	retain_turn(e);
}

// ---- the pipelined commit ----
//
// A batch is numbered on the engine thread and handed to the store thread,
// which writes it (engine_commit) while the engine takes the next mail and
// computes the next batch. Before the engine hands over that next one it
// waits for the first to be durable (engine_durable), and releases the
// first once the next is on the store thread (engine_flush): so at most
// one batch is in flight, batches commit in order, they are released in
// order, and nothing leaves (an event, a reply, an assignment, an abort)
// before the batch that recorded it is durable. The effects that stay
// inside the engine (queue entries, timers) take hold at once
// (engine_apply). Without a store thread (before start, in the engine
// tests) a batch commits inline.

// engine_busy_add adds the engine thread's time since *t0 (us), less what
// it spent waiting for commits meanwhile, to engine_busy_us.
static void
engine_busy_add(weft_engine *e, int64_t t0)
{
	int64_t busy = weft_clock_mono_us() - t0 - e->wait_us;

	e->wait_us = 0;
	if (busy > 0) {
		atomic_fetch_add(&e->engine_busy_us, (uint64_t) busy);
	}
}

// engine_store_sleep is the store thread's wait between two tries of a
// commit: ms, or until the engine stops.
static void
engine_store_sleep(weft_engine *e, int ms)
{
	struct timespec ts = weft_clock_mono_ts(weft_clock_mono_ms() + ms);

	pthread_mutex_lock(&e->commit_lock);
	// The engine, waiting for this batch, now takes mail as in an
	// outage (engine_await).
	e->commit_down = true;
	pthread_cond_broadcast(&e->done_cv);
	if (!e->commit_exit && !atomic_load(&e->stopping)) {
		pthread_cond_timedwait(&e->commit_cv, &e->commit_lock, &ts);
	}
	pthread_mutex_unlock(&e->commit_lock);
}

// engine_wake wakes the loop, which may be waiting for mail: a release
// should not wait for the next message.
static void
engine_wake(weft_engine *e)
{
	engine_mail *m = weft_xalloc(sizeof(*m));

	m->kind = MAIL_COMMITTED;
	weft_mailbox_post(&e->mailbox, &m->node);
}

// engine_committer is the store thread: it writes each batch handed over,
// retrying while the store is away, and wakes the engine when it is done.
static void *
engine_committer(void *arg)
{
	weft_engine *e = arg;

	weft_thread_name("store");
	pthread_mutex_lock(&e->commit_lock);
	for (;;) {
		while (e->commit_job == NULL && !e->commit_exit) {
			pthread_cond_wait(&e->commit_cv, &e->commit_lock);
		}
		engine_batch *b = e->commit_job;
		if (b == NULL) {
			break;
		}
		pthread_mutex_unlock(&e->commit_lock);
		// A split batch (engine_split) commits its first part, lets
		// the engine send its assignments, then commits the tail.
		size_t  first = b->early > 0 ? b->early : b->n;
		int64_t t0    = weft_clock_mono_us();
		bool    ok    = engine_commit(e, b->evs, first, b->durations,
		           engine_store_sleep);
		if (ok && first < b->n) {
			pthread_mutex_lock(&e->commit_lock);
			e->commit_early = true;
			e->commit_down  = false; // back, if it had been away
			pthread_cond_broadcast(&e->done_cv);
			pthread_mutex_unlock(&e->commit_lock);
			engine_wake(e);
			ok = engine_commit(e, b->evs + first, b->n - first, NULL,
			    engine_store_sleep);
		}
		atomic_fetch_add(&e->commit_busy_us,
		    (uint64_t) (weft_clock_mono_us() - t0));
		pthread_mutex_lock(&e->commit_lock);
		b->written      = ok;
		e->commit_job   = NULL;
		e->commit_done  = true;
		e->commit_early = false;
		e->commit_down = false;
		pthread_cond_broadcast(&e->done_cv);
		pthread_mutex_unlock(&e->commit_lock);
		engine_wake(e);
		pthread_mutex_lock(&e->commit_lock);
	}
	pthread_mutex_unlock(&e->commit_lock);
	return (NULL);
}

static void
engine_batch_free(engine_batch *b)
{
	if (b == NULL) {
		return;
	}
	for (size_t k = 0; k < b->nheld; k++) {
		nng_msg_free(b->held[k].msg);
	}
	free(b->held);
	free(b->pins);
	weft_dur_rows_free(b->durations);
	weft_out_fini(&b->out);
	free(b);
}

// engine_batch_keep keeps released batch b for its capacity (one spare),
// or frees it.
static void
engine_batch_keep(weft_engine *e, engine_batch *b)
{
	if (e->spare == NULL) {
		e->spare = b;
	} else {
		engine_batch_free(b);
	}
}

// engine_committed says the batch in flight is durable (or given up).
static bool
engine_committed(weft_engine *e)
{
	bool done;

	pthread_mutex_lock(&e->commit_lock);
	done = e->commit_done;
	pthread_mutex_unlock(&e->commit_lock);
	return (done);
}

// engine_durable waits until the batch in flight is durable (or given up,
// stopping) and returns it, no longer in flight, for the caller to
// release (NULL when none was). Meanwhile, while the store thread
// retries, the engine takes mail as in an outage.
static engine_batch *
engine_durable(weft_engine *e)
{
	engine_batch *b = e->inflight;
	int64_t       t0;

	if (b == NULL) {
		return (NULL);
	}
	t0 = weft_clock_mono_us();
	pthread_mutex_lock(&e->commit_lock);
	while (!e->commit_done) {
		if (e->commit_early && b->early > 0 && !b->early_sent) {
			pthread_mutex_unlock(&e->commit_lock);
			engine_send_early(e, b);
			pthread_mutex_lock(&e->commit_lock);
		} else if (e->commit_down && !atomic_load(&e->stopping)) {
			pthread_mutex_unlock(&e->commit_lock);
			engine_outage_wait(e, 50);
			pthread_mutex_lock(&e->commit_lock);
		} else {
			// Timed: the store thread going down is seen too.
			struct timespec ts =
			    weft_clock_mono_ts(weft_clock_mono_ms() + 50);
			pthread_cond_timedwait(&e->done_cv, &e->commit_lock, &ts);
		}
	}
	e->commit_done = false;
	pthread_mutex_unlock(&e->commit_lock);
	e->wait_us += weft_clock_mono_us() - t0;
	e->inflight = NULL;
	return (b);
}

// engine_let_go releases durable batch b (NULL is fine) and keeps it.
static void
engine_let_go(weft_engine *e, engine_batch *b)
{
	if (b != NULL) {
		engine_release(e, b);
		engine_batch_keep(e, b);
	}
}

// engine_await waits until the batch in flight is durable, then releases
// it.
static void
engine_await(weft_engine *e)
{
	engine_let_go(e, engine_durable(e));
}

weft_store *
engine_quiesce(weft_engine *e)
{
	if (e->inflight != NULL) {
		engine_await(e);
		// Runs the release let go are freed by the next flush, or now
		// when no output names them.
		if (e->out.nevents == 0) {
			engine_reap_now(e);
		}
	}
	return (e->store);
}

// Batches of fewer events than this commit on the engine thread.
#define ENGINE_INLINE_MAX 64

// engine_inline tells whether batch b is written on the engine thread.
// Replies only (answers that changed nothing) need no write. A small
// batch is written here too: handing it over costs two thread wake-ups,
// more than computing the next one saves (a chain step).
static bool
engine_inline(const weft_engine *e, const engine_batch *b)
{
	return (!e->committer_on || b->n == 0 || b->n < e->inline_max);
}

// engine_submit hands batch b (numbered) to the store thread, or writes
// and releases it at once (engine_inline): then the batch before must be
// released first (engine_flush); handed over, it is released after.
static void
engine_submit(weft_engine *e, engine_batch *b)
{
	if (engine_inline(e, b)) {
		int64_t t0 = weft_clock_mono_us();
		b->written = b->n == 0 ||
		    engine_commit(e, b->evs, b->n, b->durations,
		        engine_outage_wait);
		if (b->n > 0) {
			// Commit time, wherever it is spent (not engine work).
			int64_t took = weft_clock_mono_us() - t0;
			atomic_fetch_add(&e->commit_busy_us, (uint64_t) took);
			e->wait_us += took;
		}
		engine_release(e, b);
		engine_batch_keep(e, b);
		return;
	}
	e->inflight = b;
	pthread_mutex_lock(&e->commit_lock);
	e->commit_job = b;
	pthread_cond_broadcast(&e->commit_cv);
	pthread_mutex_unlock(&e->commit_lock);
}

// ---- early assignments ----
//
// A result can make thousands of steps ready at once (W1's root: 10,000):
// their step_ready events and step rows are most of that batch's commit
// (~60 ms), while the few the workers can take now wait for all of it and
// the workers sit idle. engine_split moves to the end of the batch the
// step_ready events nothing later in the batch depends on: of steps not
// dispatched (nor ended, nor otherwise touched) in this batch, of runs
// with no later run event; never a map item's nor a rejected unit's
// (below). The store thread commits the rest first, the engine sends the
// batch's assignments and aborts then (their events are durable), and
// the tail commits while the workers run. Replies, published events and
// the rest of the release still wait for the whole batch. A crash
// between the two commits loses only step_ready events of steps whose
// dependencies are durable: recovery makes them ready again
// (weft_run_restore_done resolves pending steps). The two commits count
// as two in the metrics.

// Splitting costs a transaction (an fsync): only for a tail this long.
#define ENGINE_SPLIT_MIN 1024

// A unit (run, step, item), or a run (step -1), in engine_split's set.
typedef struct split_key {
	const weft_run *run;
	long            step, item;
} split_key;

typedef struct split_set {
	split_key *keys; // run NULL: free
	size_t     mask;
} split_set;

static size_t
split_hash(const split_key *k)
{
	uint64_t h = (uint64_t) (uintptr_t) k->run * 0x9E3779B97F4A7C15ull;
	h ^= (uint64_t) (k->step + 2) * 0xC2B2AE3D27D4EB4Full;
	h ^= (uint64_t) (k->item + 2) * 0x165667B19E3779F9ull;
	return ((size_t) (h ^ (h >> 29)));
}

// split_probe says whether k is in the set, and adds it when add is set.
static bool
split_probe(split_set *set, split_key k, bool add)
{
	for (size_t i = split_hash(&k) & set->mask;; i = (i + 1) & set->mask) {
		split_key *at = &set->keys[i];
		if (at->run == NULL) {
			if (add) {
				*at = k;
			}
			return (false);
		}
		if (at->run == k.run && at->step == k.step &&
		    at->item == k.item) {
			return (true);
		}
	}
}

// engine_split reorders e->out.events (before they are numbered) so the
// step_ready events nothing later in the batch depends on come last, and
// returns how many come before them; 0 when the batch is not split (too
// few such events, no assignment waiting on it, no store thread).
static size_t
engine_split(weft_engine *e)
{
	weft_out *o = &e->out;
	size_t    n = o->nevents, cap = 1, ntail = 0, nready = 0;

	if (!e->committer_on || n < ENGINE_SPLIT_MIN || !sched_has_batches(e)) {
		return (0);
	}
	for (size_t k = 0; k < n; k++) {
		nready += o->events[k].type == WEFT_EV_STEP_READY;
	}
	if (nready < ENGINE_SPLIT_MIN) {
		return (0);
	}
	while (cap < 2 * n) {
		cap <<= 1;
	}
	split_set set  = { weft_xalloc(cap * sizeof(split_key)), cap - 1 };
	bool     *tail = weft_xalloc(n * sizeof(*tail));
	// Backwards: what a later event names is in the set when an earlier
	// one is looked at.
	for (size_t k = n; k-- > 0;) {
		const weft_out_event *ev = &o->events[k];
		if (ev->run == NULL) {
			continue; // a cluster event: no run depends on it
		}
		split_key unit = { ev->run, ev->step, ev->item };
		split_key run  = { ev->run, -1, -1 };
		if (ev->step < 0) {
			split_probe(&set, run, true);
			continue;
		}
		// Not a map item's (recovery refills a map's items only
		// from past the highest one recorded), nor a rejected
		// unit's, which names the node it left (recovery would put
		// it back in flight there).
		tail[k] = ev->type == WEFT_EV_STEP_READY && ev->item < 0 &&
		    ev->node[0] == '\0' && !split_probe(&set, run, false) &&
		    !split_probe(&set, unit, false);
		ntail += tail[k];
		split_probe(&set, unit, true);
	}
	free(set.keys);
	if (ntail < ENGINE_SPLIT_MIN) {
		free(tail);
		return (0);
	}
	// A stable partition: the order within each part stays.
	weft_out_event *moved = weft_xalloc(ntail * sizeof(*moved));
	size_t          head = 0, t = 0;
	for (size_t k = 0; k < n; k++) {
		if (tail[k]) {
			moved[t++] = o->events[k];
		} else {
			o->events[head++] = o->events[k];
		}
	}
	memcpy(&o->events[head], moved, ntail * sizeof(*moved));
	free(moved);
	free(tail);
	return (head);
}

// engine_send_early sends the assignments of batch b in flight, whose
// first part is durable (engine_split).
static void
engine_send_early(weft_engine *e, engine_batch *b)
{
	sched_send_batches(e, &b->out, true, true);
	b->early_sent = true;
}

// engine_early says the batch in flight has a first part durable whose
// assignments have not gone yet.
static bool
engine_early(weft_engine *e)
{
	bool early;

	if (e->inflight == NULL || e->inflight->early == 0 ||
	    e->inflight->early_sent) {
		return (false);
	}
	pthread_mutex_lock(&e->commit_lock);
	early = e->commit_early;
	pthread_mutex_unlock(&e->commit_lock);
	return (early);
}

// engine_flush numbers what e->out holds into a batch, lets the batch
// before it be released once durable, and hands this one to the store:
// the second half of an iteration, and what recovery does after each page
// of runs. The output then starts empty again.
static void
engine_flush(weft_engine *e, int64_t now)
{
	size_t        n = e->out.nevents;
	engine_batch *b = e->spare != NULL ? e->spare : weft_xalloc(sizeof(*b));
	engine_batch *prev;
	weft_out      swap;

	e->spare    = NULL;
	e->deferred = false;
	b->early    = engine_split(e);
	b->early_sent = false;
	b->gen      = ++e->batch_gen;
	b->texts    = weft_xalloc((n ? 3 * n : 1) * sizeof(*b->texts));
	b->evs      = engine_number(e, b, now, b->texts);
	b->n        = n;
	weft_dur_rows_free(b->durations); // a spare's, written long ago
	b->durations = learn_take_dirty(e);
	e->next_event_id += n;
	// The batch before must be durable first: batches commit in order.
	prev = engine_durable(e);
	// This batch takes the output (its data, its effects), the held
	// replies and the assignments chosen; the engine starts afresh.
	swap   = b->out;
	b->out = e->out;
	e->out = swap;
	weft_out_reset(&e->out);
	e->applied = 0;
	{
		held_reply *h   = b->held;
		size_t      cap = b->capheld;
		b->held         = e->held;
		b->nheld        = e->nheld;
		b->capheld      = e->capheld;
		e->held         = h;
		e->capheld      = cap;
		e->nheld        = 0;
	}
	// The batch before is released (its replies, assignments and events
	// go out) before this one's, always; but once this one is on the
	// store thread: its sends and publishing are the engine's work
	// while this batch commits, where the store thread sat idle
	// through them before. A batch written here releases at once, so
	// the one before goes first.
	//
	// The assignments chosen for this batch are sealed (sched.c: the
	// front of each worker's list is the batch being released) only
	// once the one before has sent its own; nothing is chosen in
	// between, on this thread.
	if (engine_inline(e, b)) {
		engine_let_go(e, prev);
		sched_seal_batches(e);
		engine_submit(e, b);
	} else {
		engine_submit(e, b);
		engine_let_go(e, prev);
		sched_seal_batches(e);
	}
	engine_reap_now(e);
}


// How often the engine checks, between commits, that the store is still
// the database it opened (a SQLite file deleted or replaced), in ms.
#define ENGINE_CHECK_MS 1000

static weft_err engine_store_connect(weft_engine *e, char *err, size_t errlen);

// engine_store_wait connects a store that was unavailable at start
// (PostgreSQL not up yet), with backoff up to 5 s, taking mail as in an
// outage meanwhile. A refusal (another database, a schema too new) ends
// the coordinator: weft_engine_failed, and SIGTERM to the thread that
// opened the engine (main waits for a signal).
static void
engine_store_wait(weft_engine *e)
{
	char     err[1024];
	int      delay = 50;
	weft_err rv;

	while (!atomic_load(&e->stopping)) {
		engine_outage_wait(e, delay);
		if (atomic_load(&e->stopping)) {
			return;
		}
		if ((rv = engine_store_connect(e, err, sizeof(err))) == WEFT_OK) {
			engine_store_state(e, true, NULL);
			weft_log_notice("DB-UP", "the store is reachable: "
			    "recovered and running");
			return;
		}
		if (rv != WEFT_EUNAVAIL) {
			weft_log_err("START", "%s", err);
			atomic_store(&e->failed, true);
			pthread_kill(e->opener, SIGTERM);
			return;
		}
		delay = delay * 2 < 5000 ? delay * 2 : 5000;
		engine_store_state(e, false, err);
		weft_log_warn("DB-WAIT", "%s; retrying in %d ms", err, delay);
	}
}

// engine_store_check looks, between commits, whether the store is still
// the database it opened; while it is not, requests that would write are
// refused (engine_handle).
static void
engine_store_check(weft_engine *e)
{
	int64_t now = weft_clock_mono_ms();

	if (now < e->check_due) {
		return;
	}
	e->check_due = now + ENGINE_CHECK_MS;
	if (weft_store_check(engine_quiesce(e)) != WEFT_OK) {
		engine_store_state(e, false, e->store->error);
	} else if (!atomic_load(&e->store_ok) && e->lag_retry_ms == 0) {
		// Not while the held step rows could not be written: the
		// store is away until a write goes through.
		engine_store_state(e, true, NULL);
	}
}

static int64_t engine_lag_wait(weft_engine *e, int64_t wait);
static void    engine_lag_serve(weft_engine *e);
static void    engine_lag_release(weft_engine *e, uint64_t asked);

static void *
engine_main(void *arg)
{
	weft_engine *e     = arg;
	bool         first = true;

	weft_thread_name("engine");
	if (!atomic_load(&e->store_ready)) {
		engine_store_wait(e);
		if (!atomic_load(&e->store_ready)) {
			return (NULL); // stopping, or failed
		}
	}
	while (!atomic_load(&e->stopping)) {
		int64_t    next = sched_next_timer(e); // monotonic
		int64_t    wait = 1000;
		weft_mail *mail;
		if (first) {
			// Recovery's output (restored steps ready again, timers)
			// takes hold now, not at the first message.
			wait  = 0;
			first = false;
		} else if (next > 0) {
			wait = next - e->clock.mono_ms(e->clock.arg);
			wait = wait < 0 ? 0 : (wait > 1000 ? 1000 : wait);
		}
		if (e->deferred && wait > ENGINE_DEFER_MS) {
			wait = ENGINE_DEFER_MS;
		}
		if (e->parked != NULL || e->parked_end != NULL ||
		    e->carry != NULL) {
			wait = 0; // results carried over wait for no new mail
		}
		engine_store_check(e);
		if (retain_busy(e)) {
			wait = 0; // more runs to delete: a batch per turn
		}
		wait = engine_lag_wait(e, wait);
		mail = weft_mailbox_drain(&e->mailbox, wait);
		int64_t t0 = weft_clock_mono_us();
		engine_iteration(e, mail);
		engine_lag_serve(e);
		engine_busy_add(e, t0);
	}
	// Stopping (SIGTERM): one last batch for what came in meanwhile and
	// what a commit delay held back, committed and answered before the
	// sockets close. Results acked here are durable; requests arriving
	// after this are dropped unanswered, and a worker sends them again
	// to the next coordinator.
	engine_iteration(e, weft_mailbox_drain(&e->mailbox, 0));
	while (e->carry != NULL) {
		engine_iteration(e, NULL); // the results carried over too
	}
	engine_quiesce(e); // the last batch out (or given up) too
	if (atomic_load(&e->store_ready) &&
	    weft_store_lag_flush(e->store) != WEFT_OK) {
		weft_log_warn("DB-LAG", "the step rows held back were not "
		    "written at the stop (%s): the next start writes them from "
		    "the events", e->store->error);
	}
	engine_lag_release(e, atomic_load(&e->lag_asked));
	return (NULL);
}

// ---- the projection lag (store.h) ----

// engine_lag_release tells the readers waiting (engine_lag_barrier) that
// the rows held when they asked (tickets up to asked) are written.
static void
engine_lag_release(weft_engine *e, uint64_t asked)
{
	pthread_mutex_lock(&e->commit_lock);
	if (asked > e->lag_served) {
		e->lag_served = asked;
	}
	pthread_cond_broadcast(&e->lag_cv);
	pthread_mutex_unlock(&e->commit_lock);
}

// engine_lag_wait shortens wait (ms) to when a held step row or the run
// index's copy comes due, when no batch is in flight (one in flight writes the due rows itself,
// and the store thread owns the held rows meanwhile).
static int64_t
engine_lag_wait(weft_engine *e, int64_t wait)
{
	int64_t next, now;

	if (atomic_load(&e->lag_asked) > e->lag_served) {
		return (0);
	}
	if (e->inflight != NULL || !atomic_load(&e->store_ready)) {
		return (wait);
	}
	now = weft_clock_mono_ms();
	weft_store_lag_due(e->store, now, &next);
	if (next == 0) {
		return (wait);
	}
	next = next > e->lag_retry_ms ? next : e->lag_retry_ms;
	return (next <= now ? 0 : (next - now < wait ? next - now : wait));
}

// engine_lag_serve writes the step rows the store holds back when a
// reader asked for them (engine_lag_barrier), or when the oldest is past
// the lag and no batch is in flight to take them along; and copies the
// run index's waiting events once the store is idle (store.h). A failure counts
// as the store being away (/health) and is tried again a second later;
// a reader meanwhile reads what is there.
static void
engine_lag_serve(weft_engine *e)
{
	uint64_t asked = atomic_load(&e->lag_asked);
	int64_t  next, now = weft_clock_mono_ms();
	bool     reader = asked > e->lag_served, rows;

	if (!atomic_load(&e->store_ready)) {
		return;
	}
	rows = weft_store_lag_due(e->store, now, &next);
	if (!reader && (e->inflight != NULL || now < e->lag_retry_ms ||
	                   (!rows && !weft_store_index_due(e->store, now)))) {
		return;
	}
	if (now < e->lag_retry_ms) {
		engine_lag_release(e, asked);
		return;
	}
	// The held rows when due or asked for (the run index's copy with
	// them when it is due too), else the index alone, the store idle.
	weft_store *st = engine_quiesce(e);
	if ((reader || rows ? weft_store_lag_flush(st)
	                    : weft_store_index_flush(st)) != WEFT_OK) {
		engine_store_state(e, false, e->store->error);
		weft_log_warn("DB-LAG", "writing what the lag holds back (step "
		    "rows, the run index) failed: %s; trying again in 1 s",
		    e->store->error);
		e->lag_retry_ms = weft_clock_mono_ms() + 1000;
	} else {
		if (e->lag_retry_ms != 0) {
			weft_log_notice("DB-BACK", "the store took what the lag "
			    "held back; carrying on");
		}
		engine_store_state(e, true, NULL);
		e->lag_retry_ms = 0;
	}
	engine_lag_release(e, asked);
}

void
engine_lag_barrier(weft_engine *e)
{
	uint64_t t;
	int64_t  until = weft_clock_mono_ms() + 5000;

	if (!atomic_load(&e->store_ready) ||
	    atomic_load(&e->store->lag_held) == 0) {
		return;
	}
	t = atomic_fetch_add(&e->lag_asked, 1) + 1;
	engine_wake(e);
	pthread_mutex_lock(&e->commit_lock);
	while (e->lag_served < t && !atomic_load(&e->stopping) &&
	    weft_clock_mono_ms() < until) {
		struct timespec ts =
		    weft_clock_mono_ts(weft_clock_mono_ms() + 50);
		pthread_cond_timedwait(&e->lag_cv, &e->commit_lock, &ts);
	}
	pthread_mutex_unlock(&e->commit_lock);
}

// ---- lifecycle ----

// Unfinished runs recovery reads from the store at a time.
#define ENGINE_RECOVER_PAGE 256

// engine_recover_page reads the page of unfinished runs after `after`.
// Before any run is restored a failure is returned (nothing to undo: the
// open fails, or is tried again). Once some are live, the store going
// away is waited out with backoff, as a commit is; a refusal stops the
// process so that a restart recovers from the store.
static weft_err
engine_recover_page(weft_engine *e, const char *after, size_t restored,
    json_t **runs)
{
	weft_err rv;
	int      delay = 50;

	while ((rv = weft_store_unfinished_runs(engine_quiesce(e), after,
	            ENGINE_RECOVER_PAGE, runs)) != WEFT_OK &&
	    restored > 0 && !atomic_load(&e->stopping)) {
		if (rv != WEFT_EUNAVAIL) {
			weft_log_err("DB-REFUSED", "recovery: the store refuses "
			    "the runs after %s (%zu restored): %s; stopping so "
			    "that a restart recovers from the store", after,
			    restored, e->store->error);
			abort();
		}
		weft_log_err("DB-RETRY", "recovery: reading the runs after %s "
		    "failed: %s; retrying in %d ms", after, e->store->error,
		    delay);
		weft_clock_sleep_ms(delay);
		delay = delay * 2 < 5000 ? delay * 2 : 5000;
	}
	return (rv);
}

// engine_recover rebuilds every unfinished run from the store, a page at
// a time: each page's runs are restored, what that made (events, queue
// entries, timers) is committed and applied, and the page is freed before
// the next is read. Peak memory is then the live runs plus one page,
// where reading them all first held every stored run twice over (its
// JSON and its live copy) and every recovered run's events until the
// first commit.
static weft_err
engine_recover(weft_engine *e, char *err, size_t errlen)
{
	char     after[WEFT_ID_LEN + 1] = "";
	json_t  *runs, *jr;
	size_t   k, n, total = 0;
	weft_err rv;

	if ((rv = weft_store_max_event_id(e->store, &e->next_event_id)) !=
	    WEFT_OK) {
		snprintf(err, errlen, "recovery: %s", e->store->error);
		return (rv);
	}
	atomic_store(&e->last_event_id, e->next_event_id);
	e->next_event_id++;
	do {
		if ((rv = engine_recover_page(e, after, total, &runs)) !=
		    WEFT_OK) {
			snprintf(err, errlen, "recovery: %s", e->store->error);
			return (rv);
		}
		n = json_array_size(runs);
		json_array_foreach (runs, k, jr) {
			snprintf(after, sizeof(after), "%s",
			    json_string_value(json_object_get(jr, "id")));
			control_restore_run(e, jr);
		}
		json_decref(runs);
		total += n;
		// The page's output, committed as an iteration would.
		e->now_ms   = e->clock.wall_ms(e->clock.arg);
		e->now_mono = e->clock.mono_ms(e->clock.arg);
		engine_apply(e);
		if (e->out.nevents > 0) {
			engine_flush(e, e->now_ms);
		}
	} while (n == ENGINE_RECOVER_PAGE);
	// Every run is back: a workflow unit finds its child now.
	subwf_recover(e, e->clock.wall_ms(e->clock.arg));
	engine_apply(e);
	// Then the schedules, and the fires missed while down.
	cron_recover(e, e->clock.wall_ms(e->clock.arg));
	engine_apply(e);
	if (e->out.nevents > 0) {
		engine_flush(e, e->now_ms);
	}
	control_def_trim(e);
	if (total > 0) {
		weft_log_notice("RECOVER", "restored %zu unfinished runs", total);
	}
	return (WEFT_OK);
}

// engine_store_connect opens the store (checked against the database
// registry), the query thread's connection, and recovers the unfinished
// runs. On failure nothing stays open; WEFT_EUNAVAIL means try again.
static weft_err engine_store_learned(weft_engine *e, char *err,
    size_t errlen);

// engine_store_catch_up writes the step rows the coordinator before us
// held back and did not write (the projection lag, store.h: it crashed)
// before recovery reads the steps table, then sets our own lag.
static weft_err
engine_store_catch_up(weft_engine *e, char *err, size_t errlen)
{
	int64_t  lag = e->cfg.projection_lag_ms;
	weft_err rv;

	if ((rv = weft_store_lag_replay(e->store, NULL)) != WEFT_OK) {
		snprintf(err, errlen, "replaying the step events held back: %s",
		    e->store->error);
		return (rv);
	}
	weft_store_lag_set(e->store,
	    lag < 0 ? 0 : (lag == 0 ? WEFT_PROJECTION_LAG_MS : lag));
	return (WEFT_OK);
}

static weft_err
engine_store_connect(weft_engine *e, char *err, size_t errlen)
{
	weft_err rv;

	if ((rv = weft_store_open_registered(&e->store, e->cfg.db_url,
	         e->cfg.db_registry, e->cfg.db_init, err, errlen)) != WEFT_OK ||
	    (rv = weft_store_open(&e->qstore, e->cfg.db_url, NULL, true, err,
	         errlen)) != WEFT_OK ||
	    (rv = engine_store_learned(e, err, errlen)) != WEFT_OK ||
	    (rv = engine_store_catch_up(e, err, errlen)) != WEFT_OK ||
	    (rv = engine_recover(e, err, errlen)) != WEFT_OK) {
		weft_store_close(e->store);
		weft_store_close(e->qstore);
		e->store  = NULL;
		e->qstore = NULL;
		return (rv);
	}
	atomic_store(&e->store_ready, true);
	return (WEFT_OK);
}

static void
engine_cfg_copy(weft_engine *e, const weft_engine_cfg *cfg)
{
	e->cfg = *cfg;
	if (e->cfg.survey_ms <= 0) {
		e->cfg.survey_ms = 1000;
	}
	if (e->cfg.lost_after <= 0) {
		e->cfg.lost_after = 3;
	}
	if (e->cfg.unschedulable_after_ms <= 0) {
		e->cfg.unschedulable_after_ms = 60000;
	}
	if (e->cfg.max_output == 0) {
		e->cfg.max_output = WEFT_RUN_MAX_OUTPUT_DEFAULT;
	}
	if (e->cfg.max_depth == 0) {
		e->cfg.max_depth = WEFT_SUBWF_DEPTH_DEFAULT;
	}
	snprintf(e->node, sizeof(e->node), "%s", cfg->name ? cfg->name : "coordinator");
}

// ---- the network and the clock, until someone registers theirs ----

// Until io/ registers itself (and in tools that open an engine without
// a network): replies and events go nowhere, nothing is dispatched.
static void
no_publish(void *arg, const weft_event *evs, size_t n)
{
	(void) arg;
	(void) evs;
	(void) n;
}

static void
no_reply(void *arg, reply_to to, nng_msg *msg)
{
	(void) arg;
	(void) to;
	nng_msg_free(msg);
}

static void
no_drop(void *arg, reply_to to)
{
	(void) arg;
	(void) to;
}

static weft_err
no_dial(void *arg, weft_peer *p, const char *url)
{
	(void) arg;
	(void) p;
	(void) url;
	return (WEFT_EUNAVAIL);
}

static void
no_peer_close(void *arg, weft_peer *p)
{
	(void) arg;
	(void) p;
}

void
engine_assign_op_free(assign_op *op)
{
	if (op->reply != NULL) {
		nng_msg_free(op->reply);
	}
	atomic_fetch_sub(&op->eng->ops_live, 1);
	free(op->items);
	free(op);
}

static void
no_assign_free(void *arg, assign_op *op)
{
	(void) arg;
	engine_assign_op_free(op);
}

static void
no_assign(void *arg, assign_op *op, nng_msg *batch)
{
	(void) arg;
	nng_msg_free(batch);
	// The exchange fails at once: its steps go back to ready.
	op->result     = NNG_ECLOSED;
	engine_mail *m = weft_xalloc(sizeof(*m));
	m->kind        = MAIL_ASSIGN;
	m->op          = op;
	weft_mailbox_post(&op->eng->mailbox, &m->node);
}

static const weft_io engine_no_io = {
	.control_url = "",
	.cluster_url = "",
	.results_url = "",
	.events_url  = "",
	.http_addr   = "",
	.publish     = no_publish,
	.reply       = no_reply,
	.drop        = no_drop,
	.metrics     = no_drop,
	.peer_dial   = no_dial,
	.peer_close  = no_peer_close,
	.assign      = no_assign,
	.assign_free = no_assign_free,
};

static int64_t
system_wall_ms(void *arg)
{
	(void) arg;
	return (weft_clock_wall_ms());
}

static int64_t
system_mono_ms(void *arg)
{
	(void) arg;
	return (weft_clock_mono_ms());
}

static const weft_engine_clock engine_system_clock = {
	.wall_ms = system_wall_ms,
	.mono_ms = system_mono_ms,
};

void
weft_engine_set_clock(weft_engine *e, const weft_engine_clock *c)
{
	e->clock = *c;
}

void
weft_engine_set_io(weft_engine *e, const weft_io *io)
{
	e->io = io != NULL ? *io : engine_no_io;
	// Addresses it does not have read as "".
	const char **urls[] = { &e->io.control_url, &e->io.cluster_url,
		&e->io.results_url, &e->io.events_url, &e->io.http_addr };
	for (size_t k = 0; k < sizeof(urls) / sizeof(urls[0]); k++) {
		if (*urls[k] == NULL) {
			*urls[k] = "";
		}
	}
}

weft_err
weft_engine_open(weft_engine **out, const weft_engine_cfg *cfg, char *err,
    size_t errlen)
{
	weft_engine *e = weft_xalloc(sizeof(*e));
	weft_err     rv;

	engine_cfg_copy(e, cfg);
	e->io    = engine_no_io;
	e->clock = cfg->clock != NULL ? *cfg->clock : engine_system_clock;
	weft_map_init(&e->schedules);
	cron_clock_install(e);
	weft_metrics_init(&e->metrics);
	weft_wire_init(&e->wire, e->node);
	if (cfg->cookie != NULL) {
		weft_wire_set_key(&e->wire, cfg->cookie,
		    cfg->clock_skew_ms > 0 ? cfg->clock_skew_ms
		                           : WEFT_CLOCK_SKEW_MS);
	}
	weft_mailbox_init(&e->mailbox);
	weft_mailbox_init(&e->qmailbox);
	pthread_mutex_init(&e->members_lock, NULL);
	pthread_mutex_init(&e->waits_lock, NULL);
	e->waits = json_pack("{s:{}, s:{}}", "types", "deadlines");
	e->members = json_array();
	e->refusals = json_array();
	weft_map_init(&e->runs);
	weft_map_init(&e->defs);
	weft_map_init(&e->latest);
	weft_map_init(&e->def_hashes);
	weft_map_init(&e->idem);
	weft_map_init(&e->workers);
	weft_map_init(&e->queues);
	weft_out_init(&e->out);
	admit_init(e);
	learn_init(e);
	pthread_mutex_init(&e->store_lock, NULL);
	pthread_mutex_init(&e->commit_lock, NULL);
	e->inline_max = ENGINE_INLINE_MAX;
	weft_clock_cond_init(&e->commit_cv);
	weft_clock_cond_init(&e->done_cv);
	weft_clock_cond_init(&e->lag_cv);
	e->parked_tail = &e->parked;
	e->carry_tail  = &e->carry;
	e->opener      = pthread_self();
	atomic_store(&e->store_ok, true);
	*out = NULL;
	if ((rv = engine_store_connect(e, err, errlen)) != WEFT_OK) {
		if (!cfg->wait_for_store || rv != WEFT_EUNAVAIL) {
			weft_engine_close(e);
			return (rv);
		}
		// Not there yet: the engine thread keeps trying
		// (engine_store_wait), /health says why meanwhile.
		engine_store_state(e, false, err);
		weft_log_warn("DB-WAIT", "%s; serving /health 503 and retrying",
		    err);
	}
	*out = e;
	return (WEFT_OK);
}

bool
weft_engine_failed(weft_engine *e)
{
	return (e != NULL && atomic_load(&e->failed));
}

void
engine_committer_start(weft_engine *e)
{
	e->commit_exit = false;
	WEFT_ASSERT(!e->committer_on);
	if (pthread_create(&e->committer, NULL, engine_committer, e) != 0) {
		weft_log_err("START", "cannot start the store thread: "
		    "committing on the engine thread");
		return;
	}
	e->committer_on = true;
}

void
engine_committer_stop(weft_engine *e)
{
	if (!e->committer_on) {
		return;
	}
	engine_quiesce(e); // the engine thread's: it is not running now
	pthread_mutex_lock(&e->commit_lock);
	e->commit_exit = true;
	pthread_cond_broadcast(&e->commit_cv);
	pthread_mutex_unlock(&e->commit_lock);
	pthread_join(e->committer, NULL);
	e->committer_on = false;
}

weft_err
weft_engine_start(weft_engine *e)
{
	// The store thread first: the engine thread's first batches (a
	// recovery that waited for the store) already go through it.
	engine_committer_start(e);
	if (pthread_create(&e->thread, NULL, engine_main, e) != 0) {
		engine_committer_stop(e);
		return (WEFT_EUNAVAIL);
	}
	if (pthread_create(&e->qthread, NULL, control_query_main, e) != 0) {
		atomic_store(&e->stopping, true);
		weft_mailbox_close(&e->mailbox);
		pthread_join(e->thread, NULL);
		engine_committer_stop(e);
		return (WEFT_EUNAVAIL);
	}
	e->started = true;
	return (WEFT_OK);
}

void
weft_engine_stop(weft_engine *e)
{
	if (!e->started) {
		return;
	}
	// Threads first, sockets after: a thread mid-iteration may still reply
	// through a socket's context.
	atomic_store(&e->stopping, true);
	// A store thread retrying a commit gives up now (engine_store_sleep).
	pthread_mutex_lock(&e->commit_lock);
	pthread_cond_broadcast(&e->commit_cv);
	pthread_mutex_unlock(&e->commit_lock);
	weft_mailbox_close(&e->mailbox);
	weft_mailbox_close(&e->qmailbox);
	pthread_join(e->thread, NULL);
	pthread_join(e->qthread, NULL);
	engine_committer_stop(e);
	e->started = false;
}

static void
engine_free_list(weft_engine *e, weft_mail *m)
{
	while (m != NULL) {
		engine_mail *em = (engine_mail *) m;
		m               = m->next;
		weft_wire_free(em->env);
		if (em->op != NULL) {
			e->io.assign_free(e->io.arg, em->op);
		}
		e->io.drop(e->io.arg, em->to);
		free(em);
	}
}

static void
engine_free_mail(weft_engine *e, weft_mailbox *mb)
{
	engine_free_list(e, weft_mailbox_drain(mb, 0));
}

void
engine_drop_mail(weft_engine *e)
{
	engine_free_mail(e, &e->mailbox);
}

void
weft_engine_close(weft_engine *e)
{
	const char *k;
	void       *v;

	if (e == NULL) {
		return;
	}
	weft_engine_stop(e);
	engine_committer_stop(e); // one a test started
	engine_free_mail(e, &e->mailbox);
	engine_free_mail(e, &e->qmailbox);
	engine_free_list(e, e->parked);
	e->parked = NULL;
	engine_free_list(e, e->carry);
	e->carry      = NULL;
	e->carry_tail = &e->carry;
	if (e->parked_end != NULL) {
		engine_free_list(e, &e->parked_end->node);
		e->parked_end = NULL;
	}
	for (size_t k2 = 0; k2 < e->nheld; k2++) {
		nng_msg_free(e->held[k2].msg);
		e->io.drop(e->io.arg, e->held[k2].to);
	}
	free(e->held);
	engine_batch_free(e->spare);
	engine_batch_free(e->inflight); // only when the engine never ran
	free(e->reap);
	retain_fini(e);
	admit_fini(e);
	sched_fini(e);
	holds_fini(e);
	cron_fini(e);
	learn_fini(e);
	for (size_t i = 0; weft_map_each(&e->runs, &i, &k, &v);) {
		weft_run_free(v);
	}
	weft_map_fini(&e->runs);
	control_def_fini(e);
	idem_fini(e);
	weft_out_fini(&e->out);
	weft_store_close(e->store);
	weft_store_close(e->qstore);
	json_decref(e->members);
	json_decref(e->refusals);
	pthread_mutex_destroy(&e->members_lock);
	json_decref(e->waits);
	pthread_mutex_destroy(&e->waits_lock);
	pthread_mutex_destroy(&e->store_lock);
	pthread_mutex_destroy(&e->commit_lock);
	pthread_cond_destroy(&e->commit_cv);
	pthread_cond_destroy(&e->done_cv);
	pthread_cond_destroy(&e->lag_cv);
	weft_mailbox_fini(&e->mailbox);
	weft_mailbox_fini(&e->qmailbox);
	weft_wire_fini(&e->wire);
	sodium_memzero(e->cfg.secret_key, sizeof(e->cfg.secret_key));
	free(e);
}

// engine_store_learned reads the learned step durations (learn.c) before
// recovery: the ready steps it queues are ranked with them.
static weft_err
engine_store_learned(weft_engine *e, char *err, size_t errlen)
{
	weft_err rv;

	if ((rv = learn_load(e)) != WEFT_OK) {
		snprintf(err, errlen, "reading step durations: %s",
		    e->store->error);
	}
	return (rv);
}
