// discovery: the worker's respondent0 socket dials the coordinator's
// cluster URL; a thread answers every Survey with WorkerInfo and learns the
// results URL from it, which it hands to the outbox.
#include "worker_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/protocol/survey0/respond.h>

#include "alloc.h"
#include "log.h"
#include "tls.h"

// Most attempts listed in one survey answer (beyond, the list is marked
// incomplete and the coordinator does not act on it).
#define DISCOVERY_MAX_KEYS 8192
// Most bytes of progress in one survey answer, far below the message
// limit; beyond, beats go without their progress (they repeat every
// survey, so that costs a delay, not the progress).
#define DISCOVERY_PROGRESS_BUDGET ((size_t) 1 << 20)

// discovery_info packs this worker's WorkerInfo answering round.
static nng_msg *
discovery_info(weft_worker *w, uint64_t round)
{
	Weft__WorkerInfo wi  = WEFT__WORKER_INFO__INIT;
	Weft__Envelope   env = WEFT__ENVELOPE__INIT;
	char            *types[WEFT_WORKER_MAX_TYPES];
	uint32_t         queued, running;
	nng_msg         *msg;
	char             coord[128];
	uint64_t         inc;

	for (size_t i = 0; i < w->nsteps; i++) {
		types[i] = w->steps[i].type;
	}
	worker_pool_counts(&w->pool, &queued, &running);
	wi.name         = w->name;
	wi.dispatch_url = w->dispatch_url;
	wi.n_step_types = w->nsteps;
	wi.step_types   = types;
	wi.slots        = w->slots;
	wi.queue        = w->queue;
	// Queued attempts count: the coordinator compares with slots + queue.
	wi.running      = queued + running;
	wi.held_results = worker_outbox_held(&w->outbox);
	wi.round        = round;
	wi.started_ms   = (uint64_t) w->started_ms;
	wi.draining     = atomic_load(&w->draining);
	wi.shared_input = true;
	// What we hold, so the coordinator can tell an attempt we never got
	// (or lost in a restart) from one still going.
	char **keys = weft_xalloc(DISCOVERY_MAX_KEYS * sizeof(*keys));
	bool   complete;
	wi.n_attempts        = worker_attempt_keys(w, keys, DISCOVERY_MAX_KEYS,
            &complete);
	wi.attempts          = keys;
	wi.attempts_complete = complete;
	// How each running attempt is doing: heartbeats and progress.
	Weft__AttemptBeat **beats =
	    weft_xalloc(DISCOVERY_MAX_KEYS * sizeof(*beats));
	wi.n_beats = worker_attempt_beats(w, beats, DISCOVERY_MAX_KEYS,
	    DISCOVERY_PROGRESS_BUDGET);
	wi.beats   = beats;
	env.body_case   = WEFT__ENVELOPE__BODY_WORKER_INFO;
	env.worker_info = &wi;
	env.recipient   = coord;
	inc             = worker_coord_name(w, coord, sizeof(coord));
	if (weft_wire_pack_to(&w->wire, &env, inc, &msg) != WEFT_OK) {
		msg = NULL;
	}
	for (size_t k = 0; k < wi.n_attempts; k++) {
		free(keys[k]);
	}
	free(keys);
	worker_attempt_beats_free(beats, wi.n_beats);
	free(beats);
	return (msg);
}

// discovery_on_survey learns from one survey (borrowed) and answers it.
static void
discovery_on_survey(weft_worker *w, const Weft__Survey *s)
{
	nng_msg *msg;
	char     host[128], url[512];

	// A coordinator listening on every address advertises a wildcard:
	// reach it where we reached its survey socket.
	weft_wire_url_host(w->join_url, host, sizeof(host));
	weft_wire_url_fill(s->results_url ? s->results_url : "", host, url,
	    sizeof(url));
	if ((msg = discovery_info(w, s->round)) != NULL) {
		if (nng_sendmsg(w->disc.sock, msg, 0) != 0) {
			nng_msg_free(msg);
		} else {
			atomic_fetch_add(&w->answered, 1);
		}
	}
	// Results restored from the spool wait for the coordinator to have
	// seen an answer of ours in a closed round: until then it cannot
	// tell this process from the one before, and might ignore them.
	if (w->spool_restored > 0 && atomic_load(&w->answered) < 2) {
		return;
	}
	if (url[0] != '\0' && worker_outbox_set_url(&w->outbox, url)) {
		weft_log_info("COORD-FOUND", "results=%s round=%llu", url,
		    (unsigned long long) s->round);
	}
}

// discovery_refused tells whether the survey turns this very process away
// (name and incarnation), and if so says so, once, and stops answering.
static bool
discovery_refused(weft_worker *w, const Weft__Survey *s)
{
	for (size_t i = 0; i < s->n_refused; i++) {
		const Weft__Refusal *r = s->refused[i];
		if (strcmp(r->name, w->name) != 0 ||
		    r->incarnation != w->wire.incarnation) {
			continue;
		}
		if (!atomic_exchange(&w->refused, true)) {
			weft_log_err("NODE-CONFLICT",
			    "name=%s refused by the coordinator: %s", w->name,
			    r->reason);
			if (w->on_refused != NULL) {
				w->on_refused(w->on_refused_arg, r->reason);
			}
		}
		return (true);
	}
	return (atomic_load(&w->refused));
}

// discovery_coordinator remembers who surveyed us: the coordinator whose
// assignments and aborts dispatch takes.
static void
discovery_coordinator(weft_worker *w, const Weft__Envelope *env)
{
	pthread_mutex_lock(&w->coord_lock);
	if (strcmp(w->coord_name, env->sender) != 0 ||
	    w->coord_inc != env->incarnation) {
		if (w->coord_name[0] != '\0') {
			weft_log_notice("COORD-CHANGED",
			    "coordinator=%s (was %s): a new incarnation", env->sender,
			    w->coord_name);
		}
		snprintf(w->coord_name, sizeof(w->coord_name), "%s", env->sender);
		w->coord_inc = env->incarnation;
	}
	pthread_mutex_unlock(&w->coord_lock);
}

// discovery_main is the discovery thread: receive, answer, until closed.
static void *
discovery_main(void *arg)
{
	weft_worker    *w = arg;
	Weft__Envelope *env;
	nng_msg        *msg;
	weft_err        err;
	int             rv;

	worker_thread_begin("weft-discovery");
	for (;;) {
		rv = nng_recvmsg(w->disc.sock, &msg, 0);
		if (rv == NNG_ECLOSED) {
			break;
		}
		if (rv != 0) {
			continue; // the receive timeout keeps this loop alive
		}
		err = weft_wire_expect(&w->wire, msg, WEFT__ENVELOPE__BODY_SURVEY,
		    &env);
		if (err != WEFT_OK) {
			worker_drop(w, "cluster", err, msg);
		}
		nng_msg_free(msg);
		if (err != WEFT_OK) {
			continue;
		}
		if (env->survey != NULL && !discovery_refused(w, env->survey)) {
			discovery_coordinator(w, env);
			discovery_on_survey(w, env->survey);
		}
		weft_wire_free(env);
	}
	return (NULL);
}

weft_err
worker_discovery_start(weft_worker *w)
{
	worker_discovery *d = &w->disc;
	nng_dialer        dialer;
	char              why[512];
	weft_err          terr;
	int               rv;

	if ((rv = nng_respondent0_open(&d->sock)) != 0) {
		goto fail;
	}
	d->sock_open = true;
	weft_wire_socket_limits(d->sock);
	nng_socket_set_ms(d->sock, NNG_OPT_RECVTIMEO, WORKER_IO_TIMEOUT);
	nng_socket_set_ms(d->sock, NNG_OPT_SENDTIMEO, WORKER_IO_TIMEOUT);
	nng_socket_set_ms(d->sock, NNG_OPT_RECONNMINT, WEFT_RECONNECT_MIN_MS);
	nng_socket_set_ms(d->sock, NNG_OPT_RECONNMAXT, WEFT_RECONNECT_MAX_MS);
	if ((rv = nng_dialer_create(&dialer, d->sock, w->join_url)) != 0) {
		goto fail;
	}
	if ((terr = weft_tls_dialer(w->tls, dialer, w->join_url, why,
	         sizeof(why))) != WEFT_OK) {
		weft_log_err("WORKER-SOCKET", "socket=cluster url=%s error=\"%s\"",
		    w->join_url, why);
		return (terr);
	}
	// Non-blocking: the coordinator may come up after the worker.
	if ((rv = nng_dialer_start(dialer, NNG_FLAG_NONBLOCK)) != 0) {
		goto fail;
	}
	if (pthread_create(&d->thread, NULL, discovery_main, w) != 0) {
		weft_log_err("WORKER-THREAD", "what=discovery error=create");
		return (WEFT_ENOMEM);
	}
	d->thread_started = true;
	return (WEFT_OK);
fail:
	weft_log_err("WORKER-SOCKET", "socket=cluster url=%s error=\"%s\"",
	    w->join_url, nng_strerror(rv));
	return (weft_err_from_nng(rv));
}

void
worker_discovery_stop(weft_worker *w)
{
	worker_discovery *d = &w->disc;

	if (d->sock_open) {
		nng_close(d->sock);
		d->sock_open = false;
	}
	if (d->thread_started) {
		pthread_join(d->thread, NULL);
		d->thread_started = false;
	}
}
