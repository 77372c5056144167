// dispatch: the worker's rep0 listener. Several contexts serve AssignBatch
// requests at once; each decodes the batch, applies its acks and aborts,
// offers its items to the pool and replies: accepting is fast, running is
// not done here.
//
// The reply to a batch of one step may wait for that step's result, up to
// --reply-wait (5 ms), and carry it: a chain of quick steps then costs two
// messages a step (assignment, reply with the result) instead of four
// (assignment, reply, result, ack), and the worker's threads no longer
// handle the previous result's ack while the next assignment comes in.
// Nothing blocks for it: the callback leaves the reply with the actor
// (enum dispatch_linger), and whichever comes first sends it — the slot
// that finishes the step (worker_dispatch_claim, with the result) or the
// sweeper thread (without), between reply_wait_ms and twice that later.
// Only a step that starts at once is waited for: one queued behind
// others for a slot gets its reply at once, as a batch of several does.
// A result sent so stays in the outbox until an AssignBatch acks it
// (AssignBatch.acked), so a coordinator that dies before its commit gets
// it again the usual way (outbox.c).
#include "worker_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/protocol/reqrep0/rep.h>

#include "alloc.h"
#include "clock.h"
#include "log.h"
#include "map.h"
#include "tls.h"

#define DISPATCH_REASON 160 // bytes per rejection reason
// How long the sweeper keeps ticking after a reply last waited, ms: a
// chain's next step comes well within it, and finds it awake.
#define DISPATCH_HOT_MS 100
// The largest result (output, stderr tail, error) a reply carries: one
// is packed under the pool's lock.
#define DISPATCH_CLAIM_MAX 65536

void
worker_dispatch_init(worker_dispatch *d)
{
	pthread_mutex_init(&d->shared_lock, NULL);
	pthread_mutex_init(&d->linger_lock, NULL);
	weft_clock_cond_init(&d->sweep_cv);
}

static void
dispatch_shared_clear(dispatch_shared_ent *ent)
{
	free(ent->run_id);
	free(ent->in_text);
	free(ent->pa_text);
	json_decref(ent->doc);
	memset(ent, 0, sizeof(*ent));
}

void
worker_dispatch_fini(worker_dispatch *d)
{
	for (int i = 0; i < WORKER_SHARED_CACHE; i++) {
		dispatch_shared_clear(&d->shared[i]);
	}
	pthread_mutex_destroy(&d->shared_lock);
	pthread_mutex_destroy(&d->linger_lock);
	pthread_cond_destroy(&d->sweep_cv);
}

// dispatch_shared_parse returns {"input", "params"} of entry si (a new
// reference), from the cache when the same run sent the same texts
// before, or NULL when they are not two JSON objects.
static json_t *
dispatch_shared_parse(worker_dispatch *d, const Weft__SharedInput *si)
{
	json_t *in, *pa, *doc = NULL;

	pthread_mutex_lock(&d->shared_lock);
	for (int i = 0; i < WORKER_SHARED_CACHE; i++) {
		dispatch_shared_ent *ent = &d->shared[i];
		if (ent->run_id != NULL && strcmp(ent->run_id, si->run_id) == 0 &&
		    strcmp(ent->in_text, si->input_json) == 0 &&
		    strcmp(ent->pa_text, si->params_json) == 0) {
			doc = json_incref(ent->doc);
			break;
		}
	}
	pthread_mutex_unlock(&d->shared_lock);
	if (doc != NULL) {
		return (doc);
	}
	in = json_loads(si->input_json, 0, NULL);
	pa = json_loads(si->params_json, 0, NULL);
	if (json_is_object(in) && json_is_object(pa)) {
		doc = json_pack("{s:O, s:O}", "input", in, "params", pa);
		pthread_mutex_lock(&d->shared_lock);
		dispatch_shared_ent *ent = &d->shared[d->shared_next];
		d->shared_next = (d->shared_next + 1) % WORKER_SHARED_CACHE;
		dispatch_shared_clear(ent);
		ent->run_id  = weft_xstrdup(si->run_id);
		ent->in_text = weft_xstrdup(si->input_json);
		ent->pa_text = weft_xstrdup(si->params_json);
		ent->doc     = json_incref(doc);
		pthread_mutex_unlock(&d->shared_lock);
	}
	json_decref(in);
	json_decref(pa);
	return (doc);
}

// dispatch_shared parses the batch's shared entries into out: run id ->
// {"input", "params"} (new references; dispatch_shared_free). An entry that
// is not two JSON objects is left out: its run's attempts are refused.
static void
dispatch_shared(worker_dispatch *d, const Weft__AssignBatch *b, weft_map *out)
{
	weft_map_init(out);
	for (size_t i = 0; i < b->n_shared; i++) {
		const Weft__SharedInput *si = b->shared[i];
		json_t                  *doc;
		if (si->run_id == NULL || weft_map_get(out, si->run_id) != NULL ||
		    (doc = dispatch_shared_parse(d, si)) == NULL) {
			continue;
		}
		weft_map_put(out, si->run_id, doc);
	}
}

static void
dispatch_shared_free(weft_map *m)
{
	const char *k;
	void       *v;

	for (size_t i = 0; weft_map_each(m, &i, &k, &v);) {
		json_decref(v);
	}
	weft_map_fini(m);
}

// dispatch_pack packs reply ar for the coordinator; NULL if it did not
// pack.
static nng_msg *
dispatch_pack(weft_worker *w, Weft__AssignReply *ar)
{
	Weft__Envelope env = WEFT__ENVELOPE__INIT;
	char           coord[128];
	nng_msg       *msg;

	env.body_case    = WEFT__ENVELOPE__BODY_ASSIGN_REPLY;
	env.assign_reply = ar;
	env.recipient    = coord;
	worker_coord_name(w, coord, sizeof(coord));
	if (weft_wire_pack(&w->wire, &env, NULL, &msg) != WEFT_OK) {
		msg = NULL;
	}
	return (msg);
}

// dispatch_send starts sending reply msg (taken) on a's context.
static void
dispatch_send(dispatch_actor *a, nng_msg *msg)
{
	a->sending = true;
	nng_aio_set_msg(a->aio, msg);
	nng_aio_set_timeout(a->aio, WORKER_IO_TIMEOUT);
	nng_ctx_send(a->ctx, a->aio);
}

// dispatch_may_wait tells whether the reply to b may wait for its step's
// result: one step, waiting on, and a coordinator that takes results so.
static bool
dispatch_may_wait(const worker_dispatch *d, const Weft__AssignBatch *b)
{
	return (d->reply_wait_ms > 0 && b->results_in_reply &&
	    b->n_items == 1 && b->items[0]->run_id != NULL &&
	    b->items[0]->step_id != NULL);
}

// dispatch_apply applies batch b (borrowed) for actor a and builds the
// AssignReply; returns the packed message or NULL. *wait says whether the
// reply waits for the step's result (a->linger is ARMED or PACKED then).
static nng_msg *
dispatch_apply(dispatch_actor *a, const Weft__AssignBatch *b, bool *wait)
{
	weft_worker       *w        = a->w;
	worker_dispatch   *d        = &w->dispatch;
	size_t             n        = b->n_items;
	protobuf_c_boolean *accepted = weft_xalloc(sizeof(*accepted) * (n + 1));
	char             **reasons  = weft_xalloc(sizeof(*reasons) * (n + 1));
	char              *text     = weft_xalloc(DISPATCH_REASON * (n + 1));
	Weft__AssignReply  ar       = WEFT__ASSIGN_REPLY__INIT;
	nng_msg           *msg      = NULL;

	weft_map           shared;

	// The results the coordinator has made durable are forgotten first.
	worker_outbox_acked(&w->outbox, b->acked, b->n_acked);
	// Aborts first: they may free the slots this batch asks for.
	for (size_t i = 0; i < b->n_aborts; i++) {
		worker_pool_abort(w, b->aborts[i]);
	}
	// Armed before the offer: the step may end before the offer returns.
	*wait = false;
	if (dispatch_may_wait(d, b)) {
		const Weft__Assignment *it = b->items[0];
		pthread_mutex_lock(&d->linger_lock);
		if (!d->closing) {
			worker_attempt_key(a->key, sizeof(a->key), it->run_id,
			    it->step_id, it->attempt);
			a->linger = LINGER_ARMED;
			*wait     = true;
		}
		pthread_mutex_unlock(&d->linger_lock);
	}
	dispatch_shared(&w->dispatch, b, &shared);
	for (size_t i = 0; i < n; i++) {
		const Weft__Assignment *it = b->items[i];
		json_t                 *sh = NULL;
		reasons[i]                 = text + i * DISPATCH_REASON;
		if (it->shared &&
		    (sh = weft_map_get(&shared, it->run_id ? it->run_id : "")) ==
		        NULL) {
			snprintf(reasons[i], DISPATCH_REASON,
			    "no shared input for run %.40s in the batch (or not "
			    "JSON objects)", it->run_id ? it->run_id : "");
			accepted[i] = false;
			continue;
		}
		accepted[i] = worker_pool_offer(
		    w, it, sh, reasons[i], DISPATCH_REASON);
	}
	dispatch_shared_free(&shared);
	if (*wait) {
		// No wait for a step refused, or one queued behind others for
		// a slot (not worth an actor held meanwhile) unless it ended.
		uint32_t queued = 0, running = 0;
		if (accepted[0]) {
			worker_pool_counts(&w->pool, &queued, &running);
		}
		pthread_mutex_lock(&d->linger_lock);
		if (!accepted[0] || (queued + running > w->slots &&
		                         a->linger == LINGER_ARMED)) {
			// A refused attempt may still have run and ended (a
			// batch sent again while draining): its result is in
			// the outbox, and this reply goes without it.
			nng_msg_free(a->packed);
			a->packed = NULL;
			a->linger = LINGER_NONE;
			*wait     = false;
		}
		pthread_mutex_unlock(&d->linger_lock);
	}
	ar.n_accepted = n;
	ar.accepted   = accepted;
	ar.n_reason   = n;
	ar.reason     = reasons;
	msg           = dispatch_pack(w, &ar);
	free(text);
	free(reasons);
	free(accepted);
	return (msg);
}

// dispatch_recv arms a receive on the actor's context.
static void
dispatch_recv(dispatch_actor *a)
{
	a->sending = false;
	nng_aio_set_timeout(a->aio, WORKER_IO_TIMEOUT);
	nng_ctx_recv(a->ctx, a->aio);
}

// dispatch_from_coordinator tells whether env comes from the coordinator
// (name and incarnation) whose survey we answered: a worker takes work and
// aborts from that node alone, not from any holder of the cookie.
static bool
dispatch_from_coordinator(weft_worker *w, const Weft__Envelope *env)
{
	bool ok;

	pthread_mutex_lock(&w->coord_lock);
	ok = w->coord_name[0] != '\0' && strcmp(w->coord_name, env->sender) == 0 &&
	    w->coord_inc == env->incarnation;
	pthread_mutex_unlock(&w->coord_lock);
	return (ok);
}

// dispatch_wait settles a's reply once the callback is done with the
// batch. True: the reply waits with the actor for the slot or the sweeper
// (*rep, the plain reply, freed: the sweeper packs its own when it sends,
// so that its sequence number is fresh). False: *rep goes now — the reply
// the slot packed meanwhile if the step already ended, else the plain
// one (NULL if it did not pack: the caller drops the request).
static bool
dispatch_wait(dispatch_actor *a, nng_msg **rep)
{
	worker_dispatch *d = &a->w->dispatch;

	pthread_mutex_lock(&d->linger_lock);
	if (a->linger == LINGER_PACKED) {
		nng_msg_free(*rep);
		*rep      = a->packed;
		a->packed = NULL;
		a->linger = LINGER_NONE;
		pthread_mutex_unlock(&d->linger_lock);
		return (false);
	}
	if (d->closing || *rep == NULL || a->linger != LINGER_ARMED) {
		a->linger = LINGER_NONE;
		pthread_mutex_unlock(&d->linger_lock);
		return (false);
	}
	nng_msg_free(*rep);
	*rep         = NULL;
	a->linger    = LINGER_WAITING;
	a->since     = weft_clock_mono_ms();
	d->hot_until = a->since + DISPATCH_HOT_MS;
	if (d->sweep_idle) {
		pthread_cond_signal(&d->sweep_cv);
	}
	pthread_mutex_unlock(&d->linger_lock);
	return (true);
}

// dispatch_pack_one packs the reply to a batch of one accepted step, with
// its result r or none (NULL).
static nng_msg *
dispatch_pack_one(weft_worker *w, const weft_result *r)
{
	Weft__AssignReply  ar       = WEFT__ASSIGN_REPLY__INIT;
	Weft__StepResult   sr, *srp = &sr;
	protobuf_c_boolean yes      = true;
	char              *none     = "";

	ar.n_accepted = 1;
	ar.accepted   = &yes;
	ar.n_reason   = 1;
	ar.reason     = &none;
	if (r != NULL) {
		worker_result_proto(r, &sr);
		ar.n_results = 1;
		ar.results   = &srp;
	}
	return (dispatch_pack(w, &ar));
}

// dispatch_sweeper is the thread that sends, without a result, the
// replies whose wait is over (the result takes the results socket when
// it comes).
static void *
dispatch_sweeper(void *arg)
{
	weft_worker     *w = arg;
	worker_dispatch *d = &w->dispatch;

	worker_thread_begin("weft-sweeper");
	pthread_mutex_lock(&d->linger_lock);
	while (!d->closing) {
		int64_t now     = weft_clock_mono_ms();
		bool    waiting = false;
		for (int i = 0; i < WORKER_DISPATCH_CTXS; i++) {
			dispatch_actor *a = &d->actors[i];
			if (a->linger != LINGER_WAITING) {
				continue;
			}
			if (now - a->since < d->reply_wait_ms) {
				waiting = true;
				continue;
			}
			nng_msg *rep = dispatch_pack_one(w, NULL);
			a->linger    = LINGER_NONE;
			if (rep == NULL) {
				worker_drop(w, "dispatch", WEFT_EPROTO, NULL);
				dispatch_recv(a);
				continue;
			}
			dispatch_send(a, rep); // under the lock: see _stop
		}
		if (waiting || now < d->hot_until) {
			struct timespec ts =
			    weft_clock_mono_ts(now + d->reply_wait_ms);
			pthread_cond_timedwait(&d->sweep_cv, &d->linger_lock, &ts);
		} else {
			d->sweep_idle = true;
			pthread_cond_wait(&d->sweep_cv, &d->linger_lock);
			d->sweep_idle = false;
		}
	}
	pthread_mutex_unlock(&d->linger_lock);
	return (NULL);
}

bool
worker_dispatch_claim(weft_worker *w, weft_result *r)
{
	worker_dispatch *d = &w->dispatch;
	dispatch_actor  *a = NULL;
	char             key[WORKER_KEY_MAX];
	nng_msg         *msg;
	uint64_t         ran = r->finished_ms > r->started_ms
	            ? r->finished_ms - r->started_ms
	            : 0;

	// Not a large result (packed under the pool's lock), nor one of a
	// step that ran long enough to be spooled at once (outbox.c).
	if (d->reply_wait_ms <= 0 ||
	    ran >= (uint64_t) w->outbox.spool_after_ms ||
	    (r->output_json ? strlen(r->output_json) : 0) +
	            (r->stderr_tail ? strlen(r->stderr_tail) : 0) +
	            (r->error ? strlen(r->error) : 0) >
	        DISPATCH_CLAIM_MAX) {
		return (false);
	}
	worker_attempt_key(key, sizeof(key), r->run_id, r->step_id, r->attempt);
	pthread_mutex_lock(&d->linger_lock);
	for (int i = 0; i < WORKER_DISPATCH_CTXS && !d->closing; i++) {
		dispatch_actor *x = &d->actors[i];
		if ((x->linger == LINGER_ARMED || x->linger == LINGER_WAITING) &&
		    strcmp(x->key, key) == 0) {
			a = x;
			break;
		}
	}
	if (a == NULL || (msg = dispatch_pack_one(w, r)) == NULL) {
		// No reply waits for it; or it did not pack: the outbox
		// sends it, and the sweeper the plain reply.
		pthread_mutex_unlock(&d->linger_lock);
		return (false);
	}
	// In the outbox before the reply leaves: the ack may come at once.
	worker_outbox_put_replied(&w->outbox, r);
	if (a->linger == LINGER_ARMED) {
		a->packed = msg; // the callback, still running, sends it
		a->linger = LINGER_PACKED;
	} else {
		a->linger = LINGER_NONE;
		dispatch_send(a, msg);
	}
	pthread_mutex_unlock(&d->linger_lock);
	return (true);
}

// dispatch_on_request handles one received request (taken) and starts the
// reply, or drops it and receives again.
static void
dispatch_on_request(dispatch_actor *a, nng_msg *req)
{
	Weft__Envelope *env;
	nng_msg        *rep;
	weft_err        err;

	err = weft_wire_expect(&a->w->wire, req, WEFT__ENVELOPE__BODY_ASSIGN,
	    &env);
	if (err == WEFT_OK && !dispatch_from_coordinator(a->w, env)) {
		weft_wire_free(env);
		err = WEFT_EAUTH;
	}
	if (err != WEFT_OK) {
		worker_drop(a->w, "dispatch", err, req);
		nng_msg_free(req);
		dispatch_recv(a);
		return;
	}
	nng_msg_free(req);
	bool wait = false;
	rep = env->assign != NULL ? dispatch_apply(a, env->assign, &wait) : NULL;
	weft_wire_free(env);
	if (wait && dispatch_wait(a, &rep)) {
		return; // the slot or the sweeper replies
	}
	if (rep == NULL) {
		worker_drop(a->w, "dispatch", WEFT_EPROTO, NULL);
		dispatch_recv(a);
		return;
	}
	dispatch_send(a, rep);
}

// dispatch_cb runs on nng's threads after each receive or send. It never
// blocks beyond the pool's short lock.
static void
dispatch_cb(void *arg)
{
	dispatch_actor *a  = arg;
	int             rv = nng_aio_result(a->aio);

	if (a->sending) {
		if (rv != 0) {
			// The requester went away; the message is still ours.
			nng_msg_free(nng_aio_get_msg(a->aio));
		}
		if (rv == NNG_ECLOSED || rv == NNG_ECANCELED) {
			return;
		}
		dispatch_recv(a);
		return;
	}
	switch (rv) {
	case 0:
		dispatch_on_request(a, nng_aio_get_msg(a->aio));
		return;
	case NNG_ECLOSED:
	case NNG_ECANCELED:
		return;
	default:
		// Timeouts keep every wait bounded; re-arm.
		dispatch_recv(a);
		return;
	}
}

// dispatch_listen opens the socket and its listener, and records the URL
// with the port the kernel chose.
static weft_err
dispatch_listen(weft_worker *w)
{
	worker_dispatch *d = &w->dispatch;
	nng_listener     l;
	int              rv, port = 0;
	char             host[200], why[512];
	const char      *url = w->listen_url;
	// tcp:// or tls+tcp://: the scheme is kept in what we advertise.
	size_t           slen = strncmp(url, "tls+tcp://", 10) == 0 ? 10 : 6;
	weft_err         terr;

	if ((rv = nng_rep0_open(&d->sock)) != 0) {
		goto fail;
	}
	d->sock_open = true;
	weft_wire_socket_limits(d->sock);
	if ((rv = nng_listener_create(&l, d->sock, url)) != 0) {
		goto fail;
	}
	if ((terr = weft_tls_listener(w->tls, l, url, why, sizeof(why))) !=
	    WEFT_OK) {
		weft_log_err("WORKER-SOCKET", "socket=dispatch url=%s error=\"%s\"",
		    url, why);
		return (terr);
	}
	if ((rv = nng_listener_start(l, 0)) != 0) {
		goto fail;
	}
	snprintf(w->dispatch_url, sizeof(w->dispatch_url), "%s", url);
	if ((strncmp(url, "tcp://", 6) == 0 ||
	        strncmp(url, "tls+tcp://", 10) == 0) &&
	    nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &port) == 0) {
		// Keep the scheme and host part as given, replace the port.
		const char *colon = strrchr(url + slen, ':');
		size_t      hlen  = colon ? (size_t) (colon - (url + slen))
		                          : strlen(url + slen);
		snprintf(host, sizeof(host), "%.*s", (int) hlen, url + slen);
		snprintf(w->dispatch_url, sizeof(w->dispatch_url),
		    "%.*s%s:%d", (int) slen, url, host, port);
	}
	return (WEFT_OK);
fail:
	weft_log_err("WORKER-SOCKET", "socket=dispatch url=%s error=\"%s\"",
	    url, nng_strerror(rv));
	return (weft_err_from_nng(rv));
}

weft_err
worker_dispatch_start(weft_worker *w)
{
	worker_dispatch *d = &w->dispatch;
	weft_err         err;
	int              rv;

	if ((err = dispatch_listen(w)) != WEFT_OK) {
		return (err);
	}
	d->closing = false; // a worker started again
	for (int i = 0; i < WORKER_DISPATCH_CTXS; i++) {
		dispatch_actor *a = &d->actors[i];
		a->w              = w;
		if ((rv = nng_aio_alloc(&a->aio, dispatch_cb, a)) != 0 ||
		    (rv = nng_ctx_open(&a->ctx, d->sock)) != 0) {
			weft_log_err("WORKER-SOCKET",
			    "socket=dispatch error=\"%s\"", nng_strerror(rv));
			return (weft_err_from_nng(rv));
		}
	}
	if (d->reply_wait_ms > 0) {
		if (pthread_create(&d->sweeper, NULL, dispatch_sweeper, w) != 0) {
			weft_log_err("WORKER-THREAD", "what=sweeper error=create");
			return (WEFT_ENOMEM);
		}
		d->sweeper_started = true;
	}
	for (int i = 0; i < WORKER_DISPATCH_CTXS; i++) {
		dispatch_recv(&d->actors[i]);
	}
	return (WEFT_OK);
}

void
worker_dispatch_stop(weft_worker *w)
{
	worker_dispatch *d = &w->dispatch;

	// No reply waits any more, and none is sent from here on by a slot or
	// the sweeper (they send under the lock): what waited goes
	// unanswered, and the coordinator times the exchange out.
	pthread_mutex_lock(&d->linger_lock);
	d->closing = true;
	for (int i = 0; i < WORKER_DISPATCH_CTXS; i++) {
		dispatch_actor *a = &d->actors[i];
		nng_msg_free(a->packed);
		a->packed = NULL;
		a->linger = LINGER_NONE;
	}
	pthread_cond_signal(&d->sweep_cv);
	pthread_mutex_unlock(&d->linger_lock);
	if (d->sweeper_started) {
		pthread_join(d->sweeper, NULL);
		d->sweeper_started = false;
	}
	// Close first so callbacks see ECLOSED and stop re-arming; then wait
	// for each aio before freeing it.
	if (d->sock_open) {
		nng_close(d->sock);
		d->sock_open = false;
	}
	for (int i = 0; i < WORKER_DISPATCH_CTXS; i++) {
		dispatch_actor *a = &d->actors[i];
		if (a->aio != NULL) {
			nng_aio_stop(a->aio);
			nng_aio_free(a->aio);
			a->aio = NULL;
		}
	}
}
