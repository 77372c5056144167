// dispatch: the worker's rep0 listener. Several contexts serve AssignBatch
// requests at once; each decodes the batch, applies its aborts, offers its
// items to the pool and replies at once: accepting is fast, running is not
// done here.
#include "worker_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/protocol/reqrep0/rep.h>

#include "alloc.h"
#include "log.h"
#include "map.h"
#include "tls.h"

#define DISPATCH_REASON 160 // bytes per rejection reason

void
worker_dispatch_init(worker_dispatch *d)
{
	pthread_mutex_init(&d->shared_lock, NULL);
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

// dispatch_apply applies batch b (borrowed) and builds the AssignReply;
// returns the packed message or NULL.
static nng_msg *
dispatch_apply(weft_worker *w, const Weft__AssignBatch *b)
{
	size_t             n        = b->n_items;
	protobuf_c_boolean *accepted = weft_xalloc(sizeof(*accepted) * (n + 1));
	char             **reasons  = weft_xalloc(sizeof(*reasons) * (n + 1));
	char              *text     = weft_xalloc(DISPATCH_REASON * (n + 1));
	Weft__AssignReply  ar       = WEFT__ASSIGN_REPLY__INIT;
	char               coord[128];
	Weft__Envelope     env      = WEFT__ENVELOPE__INIT;
	nng_msg           *msg      = NULL;

	weft_map           shared;

	// Aborts first: they may free the slots this batch asks for.
	for (size_t i = 0; i < b->n_aborts; i++) {
		worker_pool_abort(w, b->aborts[i]);
	}
	dispatch_shared(&w->dispatch, b, &shared);
	for (size_t i = 0; i < n; i++) {
		const Weft__Assignment *a = b->items[i];
		json_t                 *sh = NULL;
		reasons[i]                 = text + i * DISPATCH_REASON;
		if (a->shared &&
		    (sh = weft_map_get(&shared, a->run_id ? a->run_id : "")) ==
		        NULL) {
			snprintf(reasons[i], DISPATCH_REASON,
			    "no shared input for run %.40s in the batch (or not "
			    "JSON objects)", a->run_id ? a->run_id : "");
			accepted[i] = false;
			continue;
		}
		accepted[i] = worker_pool_offer(
		    w, a, sh, reasons[i], DISPATCH_REASON);
	}
	dispatch_shared_free(&shared);
	ar.n_accepted    = n;
	ar.accepted      = accepted;
	ar.n_reason      = n;
	ar.reason        = reasons;
	env.body_case    = WEFT__ENVELOPE__BODY_ASSIGN_REPLY;
	env.assign_reply = &ar;
	env.recipient    = coord;
	worker_coord_name(w, coord, sizeof(coord));
	if (weft_wire_pack(&w->wire, &env, NULL, &msg) != WEFT_OK) {
		msg = NULL;
	}
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
	rep = env->assign != NULL ? dispatch_apply(a->w, env->assign) : NULL;
	weft_wire_free(env);
	if (rep == NULL) {
		worker_drop(a->w, "dispatch", WEFT_EPROTO, NULL);
		dispatch_recv(a);
		return;
	}
	a->sending = true;
	nng_aio_set_msg(a->aio, rep);
	nng_aio_set_timeout(a->aio, WORKER_IO_TIMEOUT);
	nng_ctx_send(a->ctx, a->aio);
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
	for (int i = 0; i < WORKER_DISPATCH_CTXS; i++) {
		dispatch_recv(&d->actors[i]);
	}
	return (WEFT_OK);
}

void
worker_dispatch_stop(weft_worker *w)
{
	worker_dispatch *d = &w->dispatch;

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
