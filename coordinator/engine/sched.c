// sched: the engine's scheduling state: the worker registry (fed by
// surveys), ready queues per step type, timers, and the matching of ready
// steps to workers with free slots, least loaded first.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "blob.h"
#include "clock.h"
#include "engine_int.h"
#include "jsonx.h"
#include "log.h"
#include "secret.h"

// Most assignments in one message, and most bytes of their own input
// documents: a message is built by adding attempts while both hold. The
// run input and params the message carries once per run (`shared`) are
// counted apart, against SCHED_MSG_BYTES, so that one big run input does
// not cut every message to a single attempt. A lone attempt always goes:
// the step input limit (WEFT_RUN_STEP_INPUT_MAX, checked at dispatch) and
// the run input limit (WEFT_RUN_INPUT_MAX, at request time) keep it and
// its shared data under the wire's 16 MiB.
#define SCHED_BATCH_MAX 512
#define SCHED_BATCH_BYTES ((size_t) 1 << 20)
#define SCHED_MSG_BYTES ((size_t) 13 << 20)

// ---- gossip ----

// sched_state_name names a worker's state for gossip, `weft workers` and
// the API.
static const char *
sched_state_name(const weft_worker_rec *w)
{
	switch (w->state) {
	case WORKER_ALIVE:
		return ("alive");
	case WORKER_LOST:
		return ("lost");
	case WORKER_DRAINING:
		return ("draining");
	case WORKER_LEFT:
		return ("left");
	default:
		return ("unknown");
	}
}

// sched_live tells whether w's process is there: answering surveys,
// holding its attempts (draining ones too).
static bool
sched_live(const weft_worker_rec *w)
{
	return (w->state == WORKER_ALIVE || w->state == WORKER_DRAINING);
}

// sched_members rebuilds the membership list the surveys carry.
static void
sched_members(weft_engine *e)
{
	json_t     *list = json_array();
	const char *k;
	void       *v;

	json_array_append_new(list,
	    json_pack("{s:s, s:s, s:s, s:s}", "name", e->node, "role",
	        "coordinator", "address", e->cfg.control_url, "state", "alive"));
	for (size_t i = 0; weft_map_each(&e->workers, &i, &k, &v);) {
		weft_worker_rec *w = v;
		json_array_append_new(list,
		    json_pack("{s:s, s:s, s:s, s:s}", "name", w->name, "role",
		        "worker", "address", w->url, "state",
		        sched_state_name(w)));
	}
	pthread_mutex_lock(&e->members_lock);
	json_decref(e->members);
	e->members = list;
	pthread_mutex_unlock(&e->members_lock);
}

// ---- workers ----

static void sched_reconcile(weft_engine *e, weft_worker_rec *w,
    const Weft__WorkerInfo *wi, uint64_t round, int64_t now);

static weft_worker_rec *
sched_worker_get(weft_engine *e, const char *name)
{
	weft_worker_rec *w = weft_map_get(&e->workers, name);

	if (w == NULL) {
		w = weft_xalloc(sizeof(*w));
		snprintf(w->name, sizeof(w->name), "%s", name);
		snprintf(w->peer.name, sizeof(w->peer.name), "%s", name);
		snprintf(w->other, sizeof(w->other), "%s (another incarnation)",
		    name);
		w->types = json_array();
		w->state = WORKER_UNKNOWN;
		weft_map_put(&e->workers, w->name, w);
	}
	return (w);
}

// ---- node identity ----

// How many survey rounds a refusal is repeated in, for the refused node
// to hear it, and how many refusals a survey carries at most.
#define SCHED_REFUSAL_ROUNDS 10
#define SCHED_REFUSALS_MAX 64

// sched_refused tells whether incarnation inc of name was refused already.
static bool
sched_refused(weft_engine *e, const char *name, uint64_t inc)
{
	char    incs[24];
	size_t  k;
	json_t *r;
	bool    found = false;

	snprintf(incs, sizeof(incs), "%llu", (unsigned long long) inc);
	pthread_mutex_lock(&e->members_lock);
	json_array_foreach (e->refusals, k, r) {
		if (strcmp(json_string_value(json_object_get(r, "name")), name) ==
		        0 &&
		    strcmp(json_string_value(json_object_get(r, "incarnation")),
		        incs) == 0) {
			found = true;
			break;
		}
	}
	pthread_mutex_unlock(&e->members_lock);
	return (found);
}

// sched_conflict refuses incarnation inc, which claims w's name while w's
// own incarnation still answers: a node_conflict event names both
// addresses, the next surveys tell the newcomer, and w keeps its attempts.
static void
sched_conflict(weft_engine *e, weft_worker_rec *w, uint64_t inc,
    const char *addr, uint64_t round)
{
	char incs[24];
	char reason[512];

	w->pending_inc = 0;
	if (sched_refused(e, w->name, inc)) {
		return; // told already; it is on its way out
	}
	if (json_array_size(e->refusals) >= SCHED_REFUSALS_MAX) {
		weft_log_warn("NODE-CONFLICT",
		    "worker=%s refused=%s: not told, %d refusals pending already",
		    w->name, addr, SCHED_REFUSALS_MAX);
		return; // still refused: it is never accepted while w answers
	}
	snprintf(incs, sizeof(incs), "%llu", (unsigned long long) inc);
	snprintf(reason, sizeof(reason),
	    "the name \"%s\" is held by a live node at %s; start this one "
	    "under another --name",
	    w->name, w->url);
	pthread_mutex_lock(&e->members_lock);
	json_array_append_new(e->refusals,
	    json_pack("{s:s, s:s, s:s, s:I}", "name", w->name, "incarnation",
	        incs, "reason", reason, "until",
	        (json_int_t) (round + SCHED_REFUSAL_ROUNDS)));
	pthread_mutex_unlock(&e->members_lock);
	weft_out_event_add(&e->out, WEFT_EV_NODE_CONFLICT, NULL, -1, 0, w->name,
	    json_pack("{s:s, s:s, s:s}", "address", w->url, "refused_address",
	        addr, "reason", reason));
	weft_log_warn("NODE-CONFLICT",
	    "worker=%s holder=%s refused=%s: two live nodes claim one name",
	    w->name, w->url, addr);
}

// sched_refusals_expire drops refusals told for long enough.
static void
sched_refusals_expire(weft_engine *e, uint64_t round)
{
	pthread_mutex_lock(&e->members_lock);
	for (size_t k = json_array_size(e->refusals); k-- > 0;) {
		json_t *r = json_array_get(e->refusals, k);
		if ((uint64_t) json_integer_value(json_object_get(r, "until")) <
		    round) {
			json_array_remove(e->refusals, k);
		}
	}
	pthread_mutex_unlock(&e->members_lock);
}

// sched_identity decides whether incarnation inc may speak for w (a name
// it answered a survey of round `round` under). The holder keeps the name
// while it answers: a second incarnation answering the same round is
// refused, whichever of the two answered first. A newcomer that answers
// two rounds in which the holder says nothing takes the name over at the
// end of the second (sched_takeovers): that is a restart. Incarnations are
// bound to signing keys (wire.h), so no other node can answer in w's.
static bool
sched_identity(weft_engine *e, weft_worker_rec *w, uint64_t inc,
    const char *addr, uint64_t round)
{
	if (w->incarnation == 0 || !sched_live(w)) {
		// First word from it, or it was lost or left.
		w->incarnation = inc;
		w->pending_inc = 0;
		return (true);
	}
	if (inc == w->incarnation) {
		if (w->pending_inc != 0 && w->pending_last == round) {
			// The newcomer answered this round too: both live.
			sched_conflict(e, w, w->pending_inc, w->pending_addr,
			    round);
		}
		return (true);
	}
	if (sched_refused(e, w->name, inc)) {
		return (false);
	}
	if (w->last_round == round) {
		sched_conflict(e, w, inc, addr, round);
		return (false);
	}
	if (w->pending_inc != inc) {
		w->pending_inc   = inc;
		w->pending_round = round;
		snprintf(w->pending_addr, sizeof(w->pending_addr), "%s", addr);
	}
	w->pending_last = round;
	return (false);
}

// sched_takeovers ends survey round `round` for the newcomers: one that
// answered it, and the round it first answered, while the holder answered
// neither takes the name; one gone quiet is forgotten.
static void
sched_takeovers(weft_engine *e, uint64_t round)
{
	const char *k;
	void       *v;

	for (size_t i = 0; weft_map_each(&e->workers, &i, &k, &v);) {
		weft_worker_rec *w = v;
		if (w->pending_inc == 0) {
			continue;
		}
		if (w->pending_last + 2 < round) {
			w->pending_inc = 0;
			continue;
		}
		if (w->pending_last == round && w->pending_round < round &&
		    w->last_round < w->pending_round) {
			weft_log_notice("WORKER-RESTART",
			    "worker=%s: a new incarnation at %s takes over from the "
			    "one silent since round %llu",
			    w->name, w->pending_addr,
			    (unsigned long long) w->last_round);
			w->incarnation = w->pending_inc;
			w->pending_inc = 0;
		}
	}
}

// ---- heartbeats and progress ----

// sched_beat_bad logs a progress our workers never send (they check it):
// not JSON, or too long. It comes again with every survey answer, so at
// most one line a minute says so.
static void
sched_beat_bad(weft_engine *e, weft_worker_rec *w, const Weft__AttemptBeat *b)
{
	static _Atomic int64_t last;
	int64_t                then = atomic_load(&last);

	if (then != 0 && e->now_mono - then < 60000) {
		return;
	}
	atomic_store(&last, e->now_mono);
	weft_log_warn("BEAT-BAD",
	    "worker=%s run=%s step=%s attempt=%u: progress_json %s; ignored",
	    w->name, b->run_id, b->step_id, b->attempt,
	    strlen(b->progress_json) > WEFT_WIRE_PROGRESS_MAX
	        ? "is longer than 4096 bytes"
	        : "is not JSON");
}

// sched_beat applies one AttemptBeat (borrowed) from w: the attempt's
// progress, masked like everything a step reports, and a heartbeat timeout
// when its step has been silent too long. The worker measures the silence,
// so it needs no clock of ours; it is judged at each survey answer, so a
// heartbeat timeout fires up to one survey interval late (the definition
// check keeps heartbeat_timeout_ms at two intervals or more).
static void
sched_beat(weft_engine *e, weft_worker_rec *w, const Weft__AttemptBeat *b,
    int64_t now)
{
	weft_run *r = engine_run(e, b->run_id);
	weft_ref  u;
	json_t   *p = NULL;

	if (r == NULL || !engine_unit(r, b->step_id, &u) ||
	    weft_run_unit(r, u) == NULL) {
		return;
	}
	if (b->progress_json[0] != '\0' &&
	    strlen(b->progress_json) <= WEFT_WIRE_PROGRESS_MAX) {
		p = json_loads(b->progress_json, JSON_DECODE_ANY, NULL);
	}
	if (p == NULL && b->progress_json[0] != '\0') {
		sched_beat_bad(e, w, b);
	}
	if (p != NULL && r->secret_values != NULL) {
		json_t *clean = weft_secret_scrub(p, r->secret_values);
		json_decref(p);
		p = clean;
	}
	if (p != NULL) {
		weft_run_progress(r, u, b->attempt, w->name, p, now, &e->out);
		json_decref(p);
	}
	weft_run_heartbeat_timeout(r, u, b->attempt, w->name,
	    b->silent_ms > (uint64_t) INT64_MAX ? INT64_MAX : (int64_t) b->silent_ms, now,
	    &e->out);
}

weft_worker_rec *
sched_worker_info(weft_engine *e, const Weft__WorkerInfo *wi,
    uint64_t incarnation, const char *peer, uint64_t round, int64_t now)
{
	weft_worker_rec *w;
	bool             joined;
	char             url[256];

	if (wi->name[0] == '\0' || strlen(wi->name) >= sizeof(w->name) ||
	    wi->dispatch_url[0] == '\0' || strlen(wi->dispatch_url) >= 256) {
		weft_log_warn("WORKER-BAD", "survey answer without a usable "
		    "name or dispatch url (name=%.64s)", wi->name);
		return (NULL);
	}
	// A worker listening on every address is dialled where its survey
	// answer came from.
	weft_wire_url_fill(wi->dispatch_url, peer, url, sizeof(url));
	w      = sched_worker_get(e, wi->name);
	if (w->state == WORKER_LEFT && w->incarnation == incarnation) {
		// An answer overtaken by its last goodbye: it is gone.
		return (NULL);
	}
	if (!sched_identity(e, w, incarnation, url, round)) {
		return (NULL);
	}
	if (w->state == WORKER_UNKNOWN && w->inflight > 0) {
		// Restored after a coordinator restart: check its attempts
		// from its first answer on.
		sched_reconcile(e, w, wi, round, now);
	}
	joined = !sched_live(w) || strcmp(w->url, url) != 0;
	json_array_clear(w->types);
	for (size_t k = 0; k < wi->n_step_types; k++) {
		json_array_append_new(w->types, json_string(wi->step_types[k]));
	}
	// A worker's own numbers, bounded: nothing it says may overflow ours.
	w->slots    = wi->slots < 65536 ? wi->slots : 65536;
	w->capacity = w->slots + (wi->queue < 1048576 ? wi->queue : 1048576);
	w->reported_running = wi->running;
	w->shared_input     = wi->shared_input;
	w->last_round       = round;
	w->seen_ms          = now;
	for (size_t k = 0; k < wi->n_beats; k++) {
		sched_beat(e, w, wi->beats[k], now);
	}
	if (!joined) {
		if (wi->draining && w->state == WORKER_ALIVE) {
			// Its goodbye is on its way (another socket): no new
			// work from now on.
			w->state = WORKER_DRAINING;
			sched_members(e);
		}
		sched_reconcile(e, w, wi, round, now);
		return (w);
	}
	snprintf(w->url, sizeof(w->url), "%s", url);
	w->state     = wi->draining ? WORKER_DRAINING : WORKER_ALIVE;
	w->draining_told = false;
	w->joined_ms = now;
	e->io.peer_dial(e->io.arg, &w->peer, w->url);
	weft_out_event_add(&e->out, WEFT_EV_WORKER_JOINED, NULL, -1, 0, w->name,
	    json_pack("{s:s, s:o, s:i}", "address", w->url, "step_types",
	        // A copy: the next survey answer refills w->types in place
	        // while the store thread may still be writing this event.
	        json_deep_copy(w->types), "slots", (int) w->slots));
	weft_log_notice("WORKER-JOIN", "worker=%s url=%s slots=%u", w->name,
	    w->url, w->slots);
	sched_members(e);
	sched_check_types(e, now); // its types are schedulable from now on
	return (w);
}

// sched_unit_lost ends unit u of r if it is in flight on w: lost, or, when
// only (a set of "run/unit/attempt") is given and does not name it,
// released: w left saying it never ran it.
static void
sched_unit_lost(weft_engine *e, weft_worker_rec *w, weft_run *r, weft_ref u,
    weft_map *only, int64_t now)
{
	weft_step_rt *st = weft_run_unit(r, u);
	char          name[300], key[400];

	if ((st->state != WEFT_STEP_DISPATCHED && st->state != WEFT_STEP_RUNNING) ||
	    strcmp(st->node, w->name) != 0) {
		return;
	}
	if (only != NULL) {
		snprintf(key, sizeof(key), "%s/%s/%u", r->id,
		    weft_ref_name(r, u, name, sizeof(name)), st->attempt);
		if (weft_map_get(only, key) == NULL) {
			weft_run_released(r, u, st->attempt, w->name, &e->out);
			return;
		}
	}
	weft_run_lost(r, u, now, &e->out);
}

// reconcile_unit checks one unit the engine believes is in flight on w
// against the worker's own list (set): missing in two survey answers in a
// row, and sent long enough ago to have arrived, it is lost.
static void
sched_reconcile_unit(weft_engine *e, weft_worker_rec *w, weft_map *set,
    weft_map *missing, weft_run *r, weft_ref u, uint64_t round, int64_t now)
{
	weft_step_rt *s = weft_run_unit(r, u);
	char          name[300], key[400];
	uintptr_t     first;

	if ((s->state != WEFT_STEP_DISPATCHED && s->state != WEFT_STEP_RUNNING) ||
	    strcmp(s->node, w->name) != 0) {
		return;
	}
	// Only answers to surveys sent after its worker accepted it count:
	// a batch slow to send, decode or accept loses nothing.
	if (s->reconcile_from == UINT64_MAX || round < s->reconcile_from) {
		return;
	}
	snprintf(key, sizeof(key), "%s/%s/%u", r->id,
	    weft_ref_name(r, u, name, sizeof(name)), s->attempt);
	if (weft_map_get(set, key) != NULL ||
	    now - s->started_ms < 2 * (int64_t) e->cfg.survey_ms) {
		return;
	}
	first = (uintptr_t) weft_map_get(&w->missing, key);
	if (first == 0) {
		first = (uintptr_t) round;
	}
	if (round > first) {
		// The worker restarted, or never got the assignment: the
		// attempt will not end by itself.
		weft_run_lost(r, u, now, &e->out);
		return;
	}
	weft_map_put(missing, key, (void *) first);
}

// sched_reconcile compares what the engine believes is in flight on w with
// the attempts w says it holds. A worker that restarts between two surveys
// (so is never declared lost) would otherwise leave its attempts running
// forever.
static void
sched_reconcile(weft_engine *e, weft_worker_rec *w, const Weft__WorkerInfo *wi,
    uint64_t round, int64_t now)
{
	weft_map    set, missing;
	const char *k;
	void       *v;

	if (!wi->attempts_complete || w->inflight == 0) {
		weft_map_fini(&w->missing);
		weft_map_init(&w->missing);
		return;
	}
	weft_map_init(&set);
	weft_map_init(&missing);
	for (size_t i = 0; i < wi->n_attempts; i++) {
		weft_map_put(&set, wi->attempts[i], (void *) 1);
	}
	for (size_t i = 0; weft_map_each(&e->runs, &i, &k, &v);) {
		weft_run *r = v;
		for (size_t s = 0; s < r->def->nsteps; s++) {
			uint32_t from, to;
			sched_reconcile_unit(e, w, &set, &missing, r, WEFT_REF(s), round,
			    now);
			// Only items that may be in flight: not the whole list
			// each survey answer.
			weft_run_items_live(r, (long) s, &from, &to);
			for (uint32_t t = from; t < to; t++) {
				sched_reconcile_unit(e, w, &set, &missing, r,
				    (weft_ref) { (long) s, (long) t }, round, now);
			}
		}
	}
	weft_map_fini(&set);
	weft_map_fini(&w->missing);
	w->missing = missing;
}

static void sched_lose_all(weft_engine *e, weft_worker_rec *w, weft_map *only,
    int64_t now);

// sched_worker_lost declares w lost and every attempt it held with it.
static void
sched_worker_lost(weft_engine *e, weft_worker_rec *w, int64_t now)
{
	w->state = WORKER_LOST;
	weft_out_event_add(&e->out, WEFT_EV_WORKER_LOST, NULL, -1, 0, w->name,
	    json_pack("{s:I}", "missed_surveys",
	        (json_int_t) (e->round - w->last_round)));
	weft_log_warn("WORKER-LOST", "worker=%s missed=%llu", w->name,
	    (unsigned long long) (e->round - w->last_round));
	sched_lose_all(e, w, NULL, now);
	sched_members(e);
}

// sched_lose_all makes every attempt in flight on w lost (retried
// elsewhere, not counted against the retry policy), or with only, those it
// names, the others released.
static void
sched_lose_all(weft_engine *e, weft_worker_rec *w, weft_map *only,
    int64_t now)
{
	const char *k;
	void       *v;

	// A loss is rare: a scan of the active runs is cheap enough.
	for (size_t i = 0; weft_map_each(&e->runs, &i, &k, &v);) {
		weft_run *r = v;
		for (size_t s = 0; s < r->def->nsteps; s++) {
			uint32_t from, to;
			sched_unit_lost(e, w, r, WEFT_REF(s), only, now);
			weft_run_items_live(r, (long) s, &from, &to);
			for (uint32_t t = from; t < to; t++) {
				sched_unit_lost(e, w, r,
				    (weft_ref) { (long) s, (long) t }, only, now);
			}
		}
	}
	// Its attempts' releases, applied after this, find nothing to lower.
	w->inflight = 0;
}

void
sched_survey_end(weft_engine *e, uint64_t round, int64_t now)
{
	const char *k;
	void       *v;

	e->round = round;
	sched_refusals_expire(e, round);
	sched_takeovers(e, round);
	for (size_t i = 0; weft_map_each(&e->workers, &i, &k, &v);) {
		weft_worker_rec *w = v;
		// Alive, draining, or restored and not heard from yet; one
		// that left said so and is not missed.
		if ((sched_live(w) || w->state == WORKER_UNKNOWN) &&
		    round >= w->last_round + (uint64_t) e->cfg.lost_after) {
			sched_worker_lost(e, w, now);
		}
	}
	sched_check_types(e, now);
}

// ---- goodbyes ----

// sched_release_key hands back the attempt key ("run/step/attempt", step
// possibly "map[3]") that draining worker w never started.
static void
sched_release_key(weft_engine *e, weft_worker_rec *w, const char *key)
{
	const char *slash = strchr(key, '/');
	const char *last  = strrchr(key, '/');
	char        run_id[WEFT_ID_LEN + 1], unit[300], *end;
	unsigned long attempt;
	weft_run   *r;
	weft_ref    u;

	if (slash == NULL || last == slash ||
	    (size_t) (slash - key) > WEFT_ID_LEN ||
	    (size_t) (last - slash - 1) >= sizeof(unit)) {
		weft_log_warn("GOODBYE-BAD", "worker=%s key=\"%.200s\": not "
		    "run/step/attempt", w->name, key);
		return;
	}
	snprintf(run_id, sizeof(run_id), "%.*s", (int) (slash - key), key);
	snprintf(unit, sizeof(unit), "%.*s", (int) (last - slash - 1),
	    slash + 1);
	attempt = strtoul(last + 1, &end, 10);
	if (*end != '\0' || attempt == 0 || attempt > UINT32_MAX ||
	    (r = engine_run(e, run_id)) == NULL || !engine_unit(r, unit, &u) ||
	    weft_run_unit(r, u) == NULL) {
		return; // not ours (any more): nothing to hand back
	}
	weft_run_released(r, u, (uint32_t) attempt, w->name, &e->out);
}

bool
sched_goodbye(weft_engine *e, const Weft__Envelope *env, int64_t now)
{
	const Weft__Goodbye *g = env->goodbye;
	weft_worker_rec     *w = weft_map_get(&e->workers, env->sender);

	if (w != NULL && w->incarnation == 0) {
		return (false); // which process holds the name is not known yet
	}
	if (g == NULL || w == NULL || w->incarnation != env->incarnation ||
	    !sched_live(w)) {
		// Not the holder, or gone already: nothing of it changes.
		return (true);
	}
	if (!g->final) {
		if (!w->draining_told) {
			w->draining_told = true;
			weft_out_event_add(&e->out, WEFT_EV_WORKER_DRAINING, NULL, -1,
			    0, w->name,
			    json_pack("{s:I, s:I}", "released",
			        (json_int_t) g->n_released, "drain_timeout_ms",
			        (json_int_t) g->drain_timeout_ms));
			weft_log_notice("WORKER-DRAINING",
			    "worker=%s released=%zu drain_timeout_ms=%llu", w->name,
			    g->n_released, (unsigned long long) g->drain_timeout_ms);
		}
		w->state = WORKER_DRAINING;
		for (size_t k = 0; k < g->n_released; k++) {
			sched_release_key(e, w, g->released[k]);
		}
		sched_members(e);
		return (true);
	}
	// Leaving: every result it had is acked, and it runs nothing, so what
	// is still in flight on it will never end there. The attempts its
	// drain deadline cut short (g->lost) are lost, retried; any other
	// never ran there (an assignment it turned away while draining, whose
	// answer is still on its way): released.
	weft_map lost;
	weft_map_init(&lost);
	for (size_t k = 0; k < g->n_lost; k++) {
		weft_map_put(&lost, g->lost[k], (void *) 1);
	}
	w->state = WORKER_LEFT;
	weft_out_event_add(&e->out, WEFT_EV_WORKER_LEFT, NULL, -1, 0, w->name,
	    json_pack("{s:I, s:I}", "lost", (json_int_t) g->n_lost, "in_flight",
	        (json_int_t) w->inflight));
	weft_log_notice("WORKER-LEFT", "worker=%s lost=%zu in_flight=%u",
	    w->name, g->n_lost, w->inflight);
	sched_lose_all(e, w, &lost, now);
	weft_map_fini(&lost);
	sched_members(e);
	return (true);
}

bool
sched_newcomer(weft_engine *e, const weft_worker_rec *w, uint64_t inc)
{
	// A process under a live holder's name while the holder answers
	// every round is not the holder's restart: its results are
	// ignored. One answering while the holder is silent, or gone, may
	// be the holder back again.
	return (inc != w->incarnation &&
	    (w->pending_inc == inc || !sched_live(w) ||
	        w->last_round < e->round));
}

void
sched_release(weft_engine *e, const char *node)
{
	weft_worker_rec *w = weft_map_get(&e->workers, node);
	if (w != NULL && w->inflight > 0) {
		w->inflight--;
	}
}

static ready_queue *sched_queue(weft_engine *e, const char *type);

void
sched_type_hold(weft_engine *e, weft_run *r, long step, const char *node,
    bool hold)
{
	ready_queue *q;

	if (node == NULL || node[0] == '\0' ||
	    r->def->steps[step].hold != WEFT_HOLD_NONE) {
		return; // not a worker's attempt: never counted
	}
	q = sched_queue(e, r->def->steps[step].type);
	if (hold) {
		q->running++;
	} else if (q->running > 0) {
		q->running--;
	}
}

void
sched_restore_inflight(weft_engine *e, const char *node)
{
	weft_worker_rec *w = sched_worker_get(e, node);
	w->inflight++;
	// It cannot answer before it has redialled us: its missed surveys
	// count from the end of its longest reconnect interval on.
	w->last_round = (WEFT_RECONNECT_MAX_MS + (uint64_t) e->cfg.survey_ms -
	                    1) /
	    (uint64_t) e->cfg.survey_ms;
}

json_t *
sched_workers_json(weft_engine *e)
{
	json_t     *arr = json_array();
	const char *k;
	void       *v;

	for (size_t i = 0; weft_map_each(&e->workers, &i, &k, &v);) {
		weft_worker_rec *w = v;
		json_array_append_new(arr,
		    json_pack("{s:s, s:s, s:O, s:i, s:i, s:i, s:s, s:I, s:I}", "name",
		        w->name, "address", w->url, "step_types", w->types,
		        "slots", (int) w->slots, "queue",
		        (int) (w->capacity - w->slots), "running", (int) w->inflight,
		        "state", sched_state_name(w),
		        "last_seen_ms", (json_int_t) w->seen_ms, "joined_ms",
		        (json_int_t) w->joined_ms));
	}
	return (arr);
}

// ---- ready queues ----

static ready_queue *
sched_queue(weft_engine *e, const char *type)
{
	ready_queue *q = weft_map_get(&e->queues, type);
	if (q == NULL) {
		q        = weft_xalloc(sizeof(*q));
		q->limit = (uint32_t) json_integer_value(
		    json_object_get(e->cfg.type_limits, type));
		weft_map_put(&e->queues, type, q);
	}
	return (q);
}

// sched_unit_priority is the priority unit u of r is ordered by: its
// step's own "priority" when it has one, else its run's.
static int32_t
sched_unit_priority(const weft_run *r, weft_ref u)
{
	const weft_def_step *d = &r->def->steps[u.step];
	return (d->has_priority ? d->priority : r->priority);
}

void
sched_enqueue(weft_engine *e, weft_run *r, weft_ref u)
{
	ready_queue  *q = sched_queue(e, r->def->steps[u.step].type);
	weft_step_rt *s = weft_run_unit(r, u);

	if (s == NULL || s->queued) {
		return;
	}
	weft_readyq_push(&q->heap,
	    weft_readyq_key(sched_unit_priority(r, u), e->now_mono,
	        e->cfg.priority_aging_ms),
	    learn_rank(e, r, u.step), r, u);
	q->enqueued++;
	s->queued = true;
	r->refs++;
	r->nqueued++;
}

static ready_ent
sched_pop(ready_queue *q)
{
	weft_readyq_ent h;

	WEFT_ASSERT(weft_readyq_pop(&q->heap, &h));
	h.run->nqueued--;
	return ((ready_ent) { h.run, h.unit });
}

// What sched_queue_drop's pass over a heap needs.
struct sched_drop {
	weft_engine *e;
	bool (*drop)(const ready_ent *, const void *);
	const void *arg;
};

static bool
sched_drop_one(const weft_readyq_ent *h, void *arg)
{
	struct sched_drop *d   = arg;
	ready_ent          ent = { h->run, h->unit };

	if (!d->drop(&ent, d->arg)) {
		return (false);
	}
	weft_step_rt *s = weft_run_unit(ent.run, ent.unit);
	if (s != NULL) {
		s->queued = false;
	}
	ent.run->nqueued--;
	engine_run_rele(d->e, ent.run);
	return (true);
}

// sched_queue_drop removes the entries of q that drop(ent, arg) picks,
// keeping the others in order, and lets go of what they held. Linear in
// the queue: for rare events (a run ending early, a schedule timeout).
static void
sched_queue_drop(weft_engine *e, ready_queue *q,
    bool (*drop)(const ready_ent *, const void *), const void *arg)
{
	struct sched_drop d = { e, drop, arg };

	weft_readyq_drop(&q->heap, sched_drop_one, &d);
}

static bool
sched_ent_of_run(const ready_ent *ent, const void *arg)
{
	return (ent->run == arg);
}

static bool
sched_ent_is_unit(const ready_ent *ent, const void *arg)
{
	const ready_ent *want = arg;
	return (ent->run == want->run && ent->unit.step == want->unit.step &&
	    ent->unit.item == want->unit.item);
}

// sched_deadlines_forget_run drops the ended run r's schedule deadlines
// from the query thread's snapshot: a step that left ready other than by
// dispatch (cancelled, failed without a worker, its run timed out) would
// keep its entry for good.
static void
sched_deadlines_forget_run(weft_engine *e, weft_run *r)
{
	size_t      len = strlen(r->id);
	const char *key;
	json_t     *v;
	void       *tmp;

	pthread_mutex_lock(&e->waits_lock);
	json_t *d = json_object_get(e->waits, "deadlines");
	json_object_foreach_safe (d, tmp, key, v) {
		if (strncmp(key, r->id, len) == 0 && key[len] == '/') {
			json_object_del(d, key);
		}
	}
	pthread_mutex_unlock(&e->waits_lock);
}

void
sched_unqueue_run(weft_engine *e, weft_run *r)
{
	// Entries of an ended run would stay until a worker of their type
	// came to pop them: counted in the queue depth, the run kept.
	for (size_t i = 0; r->nqueued > 0 && i < r->def->nsteps; i++) {
		ready_queue *q = weft_map_get(&e->queues, r->def->steps[i].type);
		if (q != NULL) {
			sched_queue_drop(e, q, sched_ent_of_run, r);
		}
	}
	sched_deadlines_forget_run(e, r);
}

// sched_unqueue_unit drops unit u's entry (it left ready without a worker).
static void
sched_unqueue_unit(weft_engine *e, weft_run *r, weft_ref u)
{
	ready_queue *q   = weft_map_get(&e->queues, r->def->steps[u.step].type);
	ready_ent    ent = { r, u };

	if (q != NULL && weft_run_unit(r, u) != NULL &&
	    weft_run_unit(r, u)->queued) {
		sched_queue_drop(e, q, sched_ent_is_unit, &ent);
	}
}

// Work kept queued on a worker beyond its slots, per slot: enough to hide
// a result's round trip and a commit, no more, so that long steps are not
// held on one worker while another idles.
#define SCHED_QUEUE_MS 20.0

void
sched_observe(weft_engine *e, const char *type, int64_t ms)
{
	ready_queue *q = sched_queue(e, type);
	double       d = ms > 0 ? (double) ms : 0.0;

	q->ewma_ms = q->timed ? 0.8 * q->ewma_ms + 0.2 * d : d;
	q->timed   = true;
}

// sched_room returns how many attempts of a type (queue q) we keep on w:
// its slots, plus a queue sized by how long that type's attempts take.
// Until a duration is known, the slots only.
static uint32_t
sched_room(const weft_worker_rec *w, const ready_queue *q)
{
	double want;

	if (!q->timed) {
		return (w->slots);
	}
	// Durations are measured in whole ms: a fast step reads 0.
	want = (double) w->slots * SCHED_QUEUE_MS /
	    (q->ewma_ms > 0.05 ? q->ewma_ms : 0.05);
	if (want > (double) (w->capacity - w->slots)) {
		want = (double) (w->capacity - w->slots);
	}
	return (w->slots + (uint32_t) want);
}

// sched_advertises tells whether worker w offers step type type.
static bool
sched_advertises(const weft_worker_rec *w, const char *type)
{
	size_t  t;
	json_t *jt;

	json_array_foreach (w->types, t, jt) {
		if (strcmp(json_string_value(jt), type) == 0) {
			return (true);
		}
	}
	return (false);
}

// sched_pick returns the alive worker advertising type with the lowest
// load (in flight / slots) and room for one more attempt, or NULL.
static weft_worker_rec *
sched_pick(weft_engine *e, const char *type, const ready_queue *q)
{
	weft_worker_rec *best = NULL;
	const char      *k;
	void            *v;

	for (size_t i = 0; weft_map_each(&e->workers, &i, &k, &v);) {
		weft_worker_rec *w = v;
		if (w->state != WORKER_ALIVE || w->inflight >= sched_room(w, q) ||
		    !w->peer.open) {
			continue;
		}
		if (sched_advertises(w, type) && (best == NULL ||
		               (uint64_t) w->inflight * best->slots <
		                   (uint64_t) best->inflight * w->slots)) {
			best = w;
		}
	}
	return (best);
}

static void
sched_batch_add(weft_engine *e, weft_worker_rec *w, weft_run *r, weft_ref u,
    char *input)
{
	const weft_def_step *d = &r->def->steps[u.step];
	Weft__Assignment    *a = weft_xalloc(sizeof(*a));
	char                 name[300];

	if (w->nbatch == w->capbatch) {
		w->capbatch   = w->capbatch ? w->capbatch * 2 : 64;
		w->batch      = weft_xrealloc(w->batch, w->capbatch * sizeof(*w->batch));
		w->batch_msgs = weft_xrealloc(
		    w->batch_msgs, w->capbatch * sizeof(*w->batch_msgs));
	}
	weft__assignment__init(a);
	a->run_id     = r->id;
	a->step_id    = weft_xstrdup(weft_ref_name(r, u, name, sizeof(name)));
	a->attempt    = weft_run_unit(r, u)->attempt;
	a->type       = d->type;
	a->input_json = input;
	a->timeout_ms = d->timeout_ms;
	a->heartbeat_timeout_ms = d->heartbeat_timeout_ms;
	a->shared     = w->shared_input; // the run's input and params: in
	                                 // the message (else in input_json)
	a->max_output = e->cfg.max_output;
	snprintf(w->batch[w->nbatch].run_id, sizeof(w->batch[0].run_id), "%s",
	    r->id);
	w->batch[w->nbatch].unit    = u;
	w->batch[w->nbatch].attempt = a->attempt;
	w->batch_msgs[w->nbatch++]  = a;
}

static void sched_deadline_set(
    weft_engine *e, weft_run *r, weft_ref u, int64_t at_ms);

// sched_blob_ref returns the blob reference of text (len bytes, taken).
static json_t *
sched_blob_ref(char *text, size_t len)
{
	weft_blob b;
	json_t   *ref;

	weft_blob_take(&b, text, len);
	ref = weft_blob_ref(&b);
	free(b.text);
	return (ref);
}

// sched_refer_big replaces, in a step's input document, each dependency
// output whose JSON text passes WEFT_BLOB_THRESHOLD with its blob
// reference — the one its step_succeeded event carries, so the step can
// fetch it (GET /api/v1/runs/{id}/steps/{step}/output). A map step's
// combined output (100,000 items of 1 KiB: 100 MB) would otherwise make
// every step after it fail at dispatch, over the step input limit. What
// a step's `with` takes from it was rendered from the real value before.
static void
sched_refer_big(json_t *input)
{
	json_t     *steps = json_object_get(input, "steps");
	const char *k;
	json_t     *dep;

	json_object_foreach (steps, k, dep) {
		json_t *out = json_object_get(dep, "output");
		char   *text;
		size_t  len;
		if (!json_is_array(out) && !json_is_object(out) &&
		    !json_is_string(out)) {
			continue; // a number, a boolean or null is small
		}
		text = weft_json_dump(out);
		if ((len = strlen(text)) <= WEFT_BLOB_THRESHOLD) {
			free(text);
			continue;
		}
		json_object_set_new(dep, "output", sched_blob_ref(text, len));
	}
}

// sched_refer_text is sched_refer_big for one dependency's output as text
// (weft_run_big_fn): past WEFT_BLOB_THRESHOLD, its blob reference.
static char *
sched_refer_text(void *arg, char *text, size_t len)
{
	json_t *ref;

	(void) arg;
	if (len <= WEFT_BLOB_THRESHOLD) {
		return (text);
	}
	ref  = sched_blob_ref(text, len);
	text = weft_json_dump(ref);
	json_decref(ref);
	return (text);
}

// sched_dispatch_one hands ready unit u of r to w, or fails the unit when
// its input cannot be built.
static void
sched_dispatch_one(weft_engine *e, weft_worker_rec *w, weft_run *r,
    weft_ref u, int64_t now)
{
	char    err[512];
	json_t *input;
	char   *text;
	size_t  len;

	// Without its secrets a step would run with "***" for them: it
	// fails instead, saying why (the run then fails, and is kept).
	if (r->secrets_lost) {
		weft_run_fail_step(r, u, ENGINE_SECRET_ERR, now, &e->out);
		return;
	}
	// The run's input and params travel once per message for all its
	// attempts there (sched_send_worker), not once per attempt. The
	// document is written as text straight away when nothing in it needs
	// rendering (most steps), else built and dumped.
	text = w->shared_input
	    ? weft_run_step_input_text(r, u, sched_refer_text, NULL)
	    : NULL;
	if (text == NULL) {
		if ((input = weft_run_step_input(r, u, err, sizeof(err))) ==
		    NULL) {
			weft_run_fail_step(r, u, err, now, &e->out);
			return;
		}
		json_object_del(input, "input");
		json_object_del(input, "params");
		sched_refer_big(input);
		text = weft_json_dump(input);
		json_decref(input);
	}
	if ((len = strlen(text)) > WEFT_RUN_STEP_INPUT_MAX) {
		// Checked before it is dispatched: the step fails on its
		// first attempt, saying why, rather than being lost in a
		// message no worker can receive.
		snprintf(err, sizeof(err),
		    "step input too large: %zu bytes, over the step input "
		    "limit of %zu bytes (8 MiB; the run's input and params not "
		    "counted)",
		    len, WEFT_RUN_STEP_INPUT_MAX);
		free(text);
		weft_run_fail_step(r, u, err, now, &e->out);
		return;
	}
	if (!w->shared_input) {
		// A worker from before shared input: the whole document.
		free(text);
		input = weft_run_step_input(r, u, err, sizeof(err));
		sched_refer_big(input);
		text = weft_json_dump(input);
		json_decref(input);
	}
	if (weft_run_unit(r, u)->sched_due_ms != 0) {
		sched_deadline_set(e, r, u, 0);
	}
	weft_run_dispatched(r, u, w->name, now, &e->out);
	sched_queue(e, r->def->steps[u.step].type)->running++;
	// Not listed in survey answers until its worker has accepted it.
	weft_run_unit(r, u)->reconcile_from = UINT64_MAX;
	w->inflight++;
	atomic_fetch_add(&e->steps_dispatched, 1);
	sched_batch_add(e, w, r, u, text);
}

void
sched_dispatch(weft_engine *e, int64_t now)
{
	const char *type;
	void       *v;
	uint64_t    depth = 0, alive = 0;

	for (size_t qi = 0; weft_map_each(&e->queues, &qi, &type, &v);) {
		ready_queue *q = v;
		// --limit TYPE=N: no more of the type while N run.
		while (q->heap.count > 0 &&
		    (q->limit == 0 || q->running < q->limit)) {
			weft_worker_rec *w = sched_pick(e, type, q);
			ready_ent        ent;
			if (w == NULL) {
				break;
			}
			weft_step_rt *s;
			ent       = sched_pop(q);
			s         = weft_run_unit(ent.run, ent.unit);
			if (s == NULL) {
				engine_run_rele(e, ent.run);
				continue; // its map step was retried
			}
			s->queued = false;
			if (ent.run->state == WEFT_RUN_RUNNING &&
			    s->state == WEFT_STEP_READY) {
				sched_dispatch_one(e, w, ent.run, ent.unit, now);
			}
			engine_run_rele(e, ent.run);
		}
		depth += q->heap.count;
	}
	for (size_t i = 0; weft_map_each(&e->workers, &i, &type, &v);) {
		alive += ((weft_worker_rec *) v)->state == WORKER_ALIVE;
	}
	atomic_store(&e->metrics.ready_depth, depth);
	atomic_store(&e->metrics.workers_alive, alive);
}

// ---- why ready steps wait ----

// sched_deadline_set records (at_ms > 0) or forgets unit u's schedule
// deadline in the query thread's snapshot.
static void
sched_deadline_set(weft_engine *e, weft_run *r, weft_ref u, int64_t at_ms)
{
	char name[300], key[400];

	snprintf(key, sizeof(key), "%s/%s", r->id,
	    weft_ref_name(r, u, name, sizeof(name)));
	pthread_mutex_lock(&e->waits_lock);
	json_t *d = json_object_get(e->waits, "deadlines");
	if (at_ms > 0) {
		json_object_set_new(d, key, json_integer(at_ms));
	} else {
		json_object_del(d, key);
	}
	pthread_mutex_unlock(&e->waits_lock);
}

void
sched_arm_schedule(weft_engine *e, weft_run *r, weft_ref u)
{
	weft_step_rt *s = weft_run_unit(r, u);
	uint32_t      tmo;

	if (s == NULL || s->state != WEFT_STEP_READY || s->sched_due_ms != 0 ||
	    (tmo = r->def->steps[u.step].schedule_timeout_ms) == 0) {
		return;
	}
	s->sched_due_ms = e->now_ms + tmo;
	sched_timer(e, TIMER_SCHEDULE, r, u, s->attempt, s->sched_due_ms);
	sched_deadline_set(e, r, u, s->sched_due_ms);
}

// sched_type_facts counts the live workers advertising type and their
// free room (for queue q, NULL: slots only).
static json_t *
sched_type_facts(weft_engine *e, const char *type, const ready_queue *q)
{
	uint32_t    nw = 0, free_slots = 0;
	const char *k;
	void       *v;

	for (size_t i = 0; weft_map_each(&e->workers, &i, &k, &v);) {
		weft_worker_rec *w = v;
		uint32_t         room;
		if (w->state != WORKER_ALIVE || !sched_advertises(w, type)) {
			continue;
		}
		room = q != NULL ? sched_room(w, q) : w->slots;
		nw++;
		free_slots += room > w->inflight ? room - w->inflight : 0;
	}
	return (json_pack("{s:b, s:I, s:I, s:I, s:I, s:I, s:I}", "advertised",
	    nw > 0,
	    "since_ms", (json_int_t) (q != NULL ? q->unadvertised_ms : 0),
	    "queued", (json_int_t) (q != NULL ? q->heap.count : 0), "free",
	    (json_int_t) free_slots, "workers", (json_int_t) nw, "limit",
	    (json_int_t) (q != NULL ? q->limit : 0), "running",
	    (json_int_t) (q != NULL ? q->running : 0)));
}

// sched_report walks q: step_unschedulable for ready steps not reported
// yet (unsched), or step_schedulable for those that were.
static void
sched_report(weft_engine *e, ready_queue *q, const char *type, bool unsched,
    int64_t now)
{
	for (size_t k = 0; k < q->heap.count; k++) {
		ready_ent ent = { q->heap.ents[k].run, q->heap.ents[k].unit };
		if (weft_run_unit(ent.run, ent.unit) == NULL ||
		    weft_run_terminal(ent.run->state)) {
			continue;
		}
		if (unsched) {
			weft_run_unschedulable(ent.run, ent.unit,
			    json_pack("{s:s, s:I, s:s}", "type", type,
			        "unadvertised_ms",
			        (json_int_t) (now - q->unadvertised_ms), "reason",
			        "no live worker advertises the step's type"),
			    &e->out);
		} else {
			weft_run_schedulable(ent.run, ent.unit,
			    json_pack("{s:s}", "type", type), &e->out);
		}
	}
	q->reported = unsched;
	q->checked  = q->enqueued;
}

void
sched_check_types(weft_engine *e, int64_t now)
{
	json_t     *types = json_object();
	const char *k;
	void       *v;

	for (size_t i = 0; weft_map_each(&e->workers, &i, &k, &v);) {
		weft_worker_rec *w = v;
		size_t           t;
		json_t          *jt;
		json_array_foreach (w->types, t, jt) {
			const char *type = json_string_value(jt);
			if (w->state == WORKER_ALIVE &&
			    json_object_get(types, type) == NULL &&
			    weft_map_get(&e->queues, type) == NULL) {
				json_object_set_new(types, type,
				    sched_type_facts(e, type, NULL));
			}
		}
	}
	for (size_t i = 0; weft_map_each(&e->queues, &i, &k, &v);) {
		ready_queue *q     = v;
		json_t      *facts = sched_type_facts(e, k, q);
		if (json_is_true(json_object_get(facts, "advertised"))) {
			q->unadvertised_ms = 0;
			if (q->reported) {
				sched_report(e, q, k, false, now);
			}
		} else if (q->unadvertised_ms == 0) {
			q->unadvertised_ms = now;
			json_object_set_new(facts, "since_ms", json_integer(now));
		} else if (now - q->unadvertised_ms >=
		        e->cfg.unschedulable_after_ms &&
		    q->heap.count > 0 &&
		    (!q->reported || q->checked != q->enqueued)) {
			sched_report(e, q, k, true, now);
		}
		json_object_set_new(types, k, facts);
	}
	pthread_mutex_lock(&e->waits_lock);
	json_object_set_new(e->waits, "types", types);
	pthread_mutex_unlock(&e->waits_lock);
}

json_t *
sched_waits_json(weft_engine *e)
{
	json_t *copy;

	pthread_mutex_lock(&e->waits_lock);
	copy = json_deep_copy(e->waits);
	pthread_mutex_unlock(&e->waits_lock);
	return (copy);
}

// ---- sending ----

static void
sched_send_op(weft_engine *e, weft_worker_rec *w, size_t from, size_t n,
    Weft__SharedInput **shared, size_t nshared, Weft__Abort **aborts,
    size_t naborts, Weft__ResultRef **acks, size_t nacks)
{
	Weft__Envelope    env = WEFT__ENVELOPE__INIT;
	Weft__AssignBatch b   = WEFT__ASSIGN_BATCH__INIT;
	assign_op        *op;
	nng_msg          *msg = NULL;
	weft_err          rv;

	b.n_items     = n;
	b.items       = w->batch_msgs + from;
	b.n_shared    = nshared;
	b.shared      = shared;
	b.n_aborts    = naborts;
	b.aborts      = aborts;
	b.n_acked     = nacks;
	b.acked       = acks;
	b.results_in_reply = true;
	env.body_case = WEFT__ENVELOPE__BODY_ASSIGN;
	env.assign    = &b;
	env.recipient = w->name;
	rv            = weft_wire_pack_to(&e->wire, &env, w->incarnation, &msg);
	op            = weft_xalloc(sizeof(*op));
	op->peer      = &w->peer;
	op->nitems    = n;
	op->items     = weft_xalloc((n ? n : 1) * sizeof(*op->items));
	memcpy(op->items, w->batch + from, n * sizeof(*op->items));
	op->eng = e;
	atomic_fetch_add(&e->ops_live, 1);
	w->peer.inflight_ops++;
	if (rv != WEFT_OK) {
		// Over the wire's limit although the input limits hold (they
		// should keep it under): sched_assign_done fails its attempts
		// rather than dispatching them again and again.
		op->result = NNG_EMSGSIZE;
		engine_mail *m = weft_xalloc(sizeof(*m));
		m->kind        = MAIL_ASSIGN;
		m->op          = op;
		weft_mailbox_post(&e->mailbox, &m->node);
		return;
	}
	e->io.assign(e->io.arg, op, msg);
}

// sched_send_aborts tells workers to stop attempts the batch ended.
static void
sched_send_aborts(weft_engine *e, const weft_out *o)
{
	for (size_t k = 0; o != NULL && k < o->neffects; k++) {
		weft_effect     *f = &o->effects[k];
		weft_worker_rec *w;
		Weft__Abort      ab = WEFT__ABORT__INIT;
		Weft__Abort     *abp = &ab;
		if (f->kind != WEFT_EFFECT_ABORT ||
		    (w = weft_map_get(&e->workers, f->node)) == NULL ||
		    !sched_live(w) || !w->peer.open) {
			continue;
		}
		char name[300];
		ab.run_id  = f->run->id;
		ab.step_id = weft_ref_name(f->run,
		    (weft_ref) { f->step, f->item }, name, sizeof(name));
		ab.attempt = f->attempt;
		sched_send_op(e, w, 0, 0, NULL, 0, &abp, 1, NULL, 0);
	}
}

bool
sched_has_batches(weft_engine *e)
{
	const char *k;
	void       *v;

	for (size_t i = 0; weft_map_each(&e->workers, &i, &k, &v);) {
		weft_worker_rec *w = v;
		if (w->nbatch > w->nsealed) {
			return (true);
		}
	}
	return (false);
}

// sched_shared_new returns the shared entry of run run_id (its input and
// params as JSON text, borrowed from the run: dumped once, when its first
// message is built), to free with sched_shared_free.
static Weft__SharedInput *
sched_shared_new(weft_engine *e, const char *run_id)
{
	Weft__SharedInput *si = weft_xalloc(sizeof(*si));
	weft_run          *r  = engine_run(e, run_id);

	weft__shared_input__init(si);
	si->run_id = weft_xstrdup(run_id);
	// The run is there until the end of the iteration (reaped after
	// this); without it the worker refuses the attempt, saying why.
	if (r != NULL && r->wire_input == NULL) {
		r->wire_input  = weft_json_dump(r->input);
		r->wire_params = weft_json_dump(r->params);
	}
	si->input_json  = r != NULL ? r->wire_input : "";
	si->params_json = r != NULL ? r->wire_params : "";
	return (si);
}

static void
sched_shared_free(Weft__SharedInput *si)
{
	free(si->run_id);
	free(si);
}

// sched_send_worker sends w's assignments of this iteration in messages
// built by accumulation: attempts are added, with their run's shared
// entry the first time the message names the run, while the message holds
// at most SCHED_BATCH_MAX attempts, SCHED_BATCH_BYTES of their own inputs
// and SCHED_MSG_BYTES in all. One slow message is then never a huge one.
static void
sched_send_worker(weft_engine *e, weft_worker_rec *w, size_t count,
    size_t nacks)
{
	size_t from = 0;

	if (count == 0 && nacks > 0 && sched_live(w) && w->peer.open) {
		// Acks alone: no work for it this time.
		sched_send_op(e, w, 0, 0, NULL, 0, NULL, 0, w->acks, nacks);
		return;
	}
	while (from < count) {
		weft_map            runs;
		Weft__SharedInput **shared  = NULL;
		size_t              nshared = 0, n = 0, own = 0, all = 0;

		weft_map_init(&runs);
		while (from + n < count && n < SCHED_BATCH_MAX) {
			Weft__Assignment  *a    = w->batch_msgs[from + n];
			size_t             mine = strlen(a->input_json) + 128;
			size_t             more = mine;
			Weft__SharedInput *si   = weft_map_get(&runs, a->run_id);
			bool               fresh = si == NULL && a->shared;
			if (fresh) {
				si = sched_shared_new(e, a->run_id);
				more += strlen(si->input_json) +
				    strlen(si->params_json) + 64;
			}
			if (n > 0 && (own + mine > SCHED_BATCH_BYTES ||
			                 all + more > SCHED_MSG_BYTES)) {
				if (fresh) {
					sched_shared_free(si);
				}
				break;
			}
			if (fresh) {
				shared = weft_xrealloc(shared,
				    (nshared + 1) * sizeof(*shared));
				shared[nshared++] = si;
				weft_map_put(&runs, a->run_id, si);
			}
			own += mine;
			all += more;
			n++;
		}
		// The acks ride on the first message.
		sched_send_op(e, w, from, n, shared, nshared, NULL, 0,
		    from == 0 ? w->acks : NULL, from == 0 ? nacks : 0);
		for (size_t j = 0; j < nshared; j++) {
			sched_shared_free(shared[j]);
		}
		free(shared);
		weft_map_fini(&runs);
		from += n;
	}
}

void
sched_seal_batches(weft_engine *e)
{
	const char *k;
	void       *v;

	for (size_t i = 0; weft_map_each(&e->workers, &i, &k, &v);) {
		weft_worker_rec *w = v;
		w->nsealed         = w->nbatch;
		w->nacks_sealed    = w->nacks;
	}
}

// sched_acks_free frees w's first n acks and moves the rest to the front.
static void
sched_acks_free(weft_worker_rec *w, size_t n)
{
	for (size_t j = 0; j < n; j++) {
		free(w->acks[j]->run_id);
		free(w->acks[j]->step_id);
		free(w->acks[j]);
	}
	if (n > 0 && w->nacks > n) {
		memmove(w->acks, w->acks + n, (w->nacks - n) * sizeof(*w->acks));
	}
	w->nacks -= n;
}

void
sched_ack_later(weft_engine *e, const char *worker,
    Weft__StepResult *const *results, size_t n)
{
	weft_worker_rec *w = weft_map_get(&e->workers, worker);

	for (size_t k = 0; w != NULL && k < n; k++) {
		Weft__ResultRef *a = weft_xalloc(sizeof(*a));
		weft__result_ref__init(a);
		a->run_id  = weft_xstrdup(results[k]->run_id);
		a->step_id = weft_xstrdup(results[k]->step_id);
		a->attempt = results[k]->attempt;
		if (w->nacks == w->capacks) {
			w->capacks = w->capacks ? w->capacks * 2 : 16;
			w->acks    = weft_xrealloc(w->acks,
                            w->capacks * sizeof(*w->acks));
		}
		w->acks[w->nacks++] = a;
	}
}

void
sched_send_batches(weft_engine *e, const weft_out *o, bool sealed, bool send)
{
	const char *k;
	void       *v;

	if (send) {
		sched_send_aborts(e, o);
	}
	for (size_t i = 0; weft_map_each(&e->workers, &i, &k, &v);) {
		weft_worker_rec *w     = v;
		size_t           count = sealed ? w->nsealed : w->nbatch;
		size_t           nacks = sealed ? w->nacks_sealed : w->nacks;
		if (send) {
			sched_send_worker(e, w, count, nacks);
		}
		// Freed, sent or not: a batch that did not commit sends no
		// ack, and the worker sends those results again the usual way.
		sched_acks_free(w, nacks);
		w->nacks_sealed = 0;
		for (size_t j = 0; j < count; j++) {
			free(w->batch_msgs[j]->input_json);
			free(w->batch_msgs[j]->step_id);
			free(w->batch_msgs[j]);
		}
		// What the batch being computed chose moves to the front.
		if (count > 0 && w->nbatch > count) {
			memmove(w->batch, w->batch + count,
			    (w->nbatch - count) * sizeof(*w->batch));
			memmove(w->batch_msgs, w->batch_msgs + count,
			    (w->nbatch - count) * sizeof(*w->batch_msgs));
		}
		w->nbatch -= count;
		w->nsealed = 0;
	}
}

void
sched_assign_done(weft_engine *e, assign_op *op)
{
	Weft__Envelope    *env = NULL;
	Weft__AssignReply *rep = NULL;
	char               why[128];

	snprintf(why, sizeof(why), "dispatch to %s failed: %s", op->peer->name,
	    op->result ? nng_strerror(op->result) : "bad reply");
	if (op->result == 0 &&
	    weft_wire_expect(&e->wire, op->reply, WEFT__ENVELOPE__BODY_ASSIGN_REPLY,
	        &env) == WEFT_OK) {
		rep = env->assign_reply;
	}
	for (size_t k = 0; k < op->nitems; k++) {
		assign_item *it = &op->items[k];
		weft_run    *r  = engine_run(e, it->run_id);
		if (r == NULL) {
			continue;
		}
		if (op->result == NNG_EMSGSIZE) {
			weft_result res = { .attempt = it->attempt, .ok = false,
				.error = "assignment too large: its message exceeds "
				         "the 16 MiB message limit",
				.node = op->peer->name };
			weft_run_result(r, it->unit, &res, e->now_ms,
			    &e->out);
			continue;
		}
		if (rep != NULL && k < rep->n_accepted && rep->accepted[k]) {
			if (weft_run_accepted(r, it->unit, it->attempt,
			        &e->out) == WEFT_OK) {
				// The survey in progress may have been answered
				// before the worker had it: the next one is the
				// first whose answer must list it.
				weft_run_unit(r, it->unit)->reconcile_from =
				    e->round + 2;
			}
		} else {
			const char *reason = why;
			if (rep != NULL && k < rep->n_reason &&
			    rep->reason[k][0] != '\0') {
				reason = rep->reason[k];
			}
			weft_run_rejected(r, it->unit, it->attempt, reason, &e->out);
		}
	}
	if (rep == NULL && op->nitems > 0) {
		weft_log_warn("DISPATCH-FAIL", "%s (%zu steps back to ready)",
		    why, op->nitems);
	}
	// Results the reply carried (the worker's --reply-wait): applied like
	// a result batch, acked in the next AssignBatch to the worker.
	if (rep != NULL && rep->n_results > 0 &&
	    engine_take_step_results(e, env, rep->results, rep->n_results,
	        e->now_ms)) {
		sched_ack_later(e, op->peer->name, rep->results, rep->n_results);
	}
	op->peer->inflight_ops--;
	weft_wire_free(env);
	e->io.assign_free(e->io.arg, op);
}

// ---- timers: a binary min-heap on due (monotonic) ----

static void
sched_heap_swap(timer_ent *a, timer_ent *b)
{
	timer_ent t = *a;
	*a          = *b;
	*b          = t;
}

void
sched_timer(weft_engine *e, enum timer_kind kind, weft_run *r, weft_ref u,
    uint32_t attempt, int64_t at_ms)
{
	size_t i;

	if (e->ntimers == e->captimers) {
		e->captimers = e->captimers ? e->captimers * 2 : 256;
		e->timers    = weft_xrealloc(e->timers, e->captimers * sizeof(*e->timers));
	}
	i            = e->ntimers++;
	// The run model speaks wall time; the heap runs on the monotonic
	// clock, from this iteration's readings of both.
	e->timers[i] = (timer_ent) { e->now_mono + (at_ms - e->now_ms), at_ms,
		kind, r, u, attempt };
	r->refs++;
	while (i > 0 && e->timers[(i - 1) / 2].due > e->timers[i].due) {
		sched_heap_swap(&e->timers[(i - 1) / 2], &e->timers[i]);
		i = (i - 1) / 2;
	}
}

static void sched_heap_down(weft_engine *e, size_t i);

static timer_ent
sched_heap_pop(weft_engine *e)
{
	timer_ent top = e->timers[0];

	e->timers[0] = e->timers[--e->ntimers];
	sched_heap_down(e, 0);
	return (top);
}

// sched_heap_down restores the heap order below index i.
static void
sched_heap_down(weft_engine *e, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < e->ntimers && e->timers[l].due < e->timers[m].due) {
			m = l;
		}
		if (r < e->ntimers && e->timers[r].due < e->timers[m].due) {
			m = r;
		}
		if (m == i) {
			break;
		}
		sched_heap_swap(&e->timers[m], &e->timers[i]);
		i = m;
	}
}

void
sched_untime_ended(weft_engine *e)
{
	size_t     n = 0;
	weft_run **drop;
	size_t     ndrop = 0;

	// One pass over the heap for every run that ended this iteration:
	// a day-long run timeout or a retry timer would otherwise hold an
	// ended run (its steps, outputs, definition) in memory until it
	// fired. The references go after the heap is whole again, since
	// a release may free nothing but only marks the run for the reap.
	drop = weft_xalloc((e->ntimers ? e->ntimers : 1) * sizeof(*drop));
	for (size_t k = 0; k < e->ntimers; k++) {
		if (weft_run_terminal(e->timers[k].run->state)) {
			drop[ndrop++] = e->timers[k].run;
		} else {
			e->timers[n++] = e->timers[k];
		}
	}
	e->ntimers = n;
	for (size_t k = n / 2; k-- > 0;) {
		sched_heap_down(e, k);
	}
	for (size_t k = 0; k < ndrop; k++) {
		engine_run_rele(e, drop[k]);
	}
	free(drop);
}

int64_t
sched_next_timer(weft_engine *e)
{
	return (e->ntimers > 0 ? e->timers[0].due : 0);
}

// sched_schedule_fire applies a schedule timeout, if it is the one armed
// for the unit's current ready period (sched_due_ms): the unit leaves the
// ready queue with it. A paused run's step is not timed out: the timer
// is spent, and resuming arms a new one.
static void
sched_schedule_fire(weft_engine *e, const timer_ent *t, int64_t now)
{
	weft_step_rt *s = weft_run_unit(t->run, t->unit);

	if (s == NULL || s->sched_due_ms != t->at_ms) {
		return;
	}
	s->sched_due_ms = 0;
	sched_deadline_set(e, t->run, t->unit, 0);
	if (weft_run_schedule_timeout(t->run, t->unit, t->attempt, now,
	        &e->out) == WEFT_OK) {
		sched_unqueue_unit(e, t->run, t->unit);
	}
}

void
sched_fire_timers(weft_engine *e, int64_t now, int64_t mono)
{
	while (e->ntimers > 0 && e->timers[0].due <= mono) {
		timer_ent t = sched_heap_pop(e);
		// A stale timer (the attempt moved on) is refused by the
		// transition and changes nothing.
		switch (t.kind) {
		case TIMER_RETRY:
			weft_run_retry_due(t.run, t.unit, t.attempt, &e->out);
			break;
		case TIMER_STEP_TIMEOUT:
			weft_run_timeout(t.run, t.unit, t.attempt, now, &e->out);
			break;
		case TIMER_RUN_TIMEOUT:
			weft_run_expire(t.run, t.at_ms, &e->out);
			break;
		case TIMER_SCHEDULE:
			sched_schedule_fire(e, &t, now);
			break;
		case TIMER_HOLD:
			weft_run_hold_fire(t.run, t.unit, t.attempt, t.at_ms,
			    &e->out);
			break;
		case TIMER_START:
			// Its time has come: it starts through the concurrency
			// limits like a new run (admit.c), waiting `scheduled`
			// in the admission order while they are full. A
			// cancelled run is not scheduled any more: nothing.
			if (t.run->state == WEFT_RUN_SCHEDULED) {
				admit_run(e, t.run, now, true);
			}
			break;
		}
		engine_run_rele(e, t.run);
	}
}

void
sched_close_peers(weft_engine *e)
{
	const char *k;
	void       *v;

	for (size_t i = 0; weft_map_each(&e->workers, &i, &k, &v);) {
		e->io.peer_close(e->io.arg, &((weft_worker_rec *) v)->peer);
	}
}

void
sched_fini(weft_engine *e)
{
	const char *k;
	void       *v;

	for (size_t i = 0; weft_map_each(&e->workers, &i, &k, &v);) {
		weft_worker_rec *w = v;
		e->io.peer_close(e->io.arg, &w->peer);
		for (size_t j = 0; j < w->nbatch; j++) {
			free(w->batch_msgs[j]->input_json);
			free(w->batch_msgs[j]->step_id);
			free(w->batch_msgs[j]);
		}
		free(w->batch);
		free(w->batch_msgs);
		sched_acks_free(w, w->nacks);
		free(w->acks);
		json_decref(w->types);
		weft_map_fini(&w->missing);
		free(w);
	}
	weft_map_fini(&e->workers);
	for (size_t i = 0; weft_map_each(&e->queues, &i, &k, &v);) {
		ready_queue *q = v;
		weft_readyq_fini(&q->heap);
		free(q);
	}
	weft_map_fini(&e->queues);
	free(e->timers);
	e->ntimers = 0;
}
