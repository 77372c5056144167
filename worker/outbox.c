// outbox: finished results wait here until the coordinator acks them. One
// sender thread dials the results URL (learned from surveys) with req0 and
// sends batches; no ack within the timeout means the same batch goes again.
// Only the sender removes results, so the head of the queue is stable for it.
//
// The spool (spool.c) keeps results across the worker's death, so that a
// finished step does not run again. Writing one costs more than running a
// quick step again, so a result goes there only once it is worth it: at
// once when its attempt ran spool_after_ms (100 ms) or more, else when it
// has waited that long for its ack (a coordinator slow or away). One acked
// sooner is not written, unless a write for another takes it along (each
// write takes every result waiting then). A crash before the ack loses a
// step's work of under spool_after_ms; the step runs again, as any attempt
// cut short by a crash does (at least once, never lost).
#include "worker_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/protocol/reqrep0/req.h>

#include "alloc.h"
#include "clock.h"
#include "log.h"
#include "tls.h"

// How long the sender keeps ticking for replied results after the last
// one's deadline, ms.
#define OUTBOX_REPLIED_HOT_MS 1000

// outbox_bye_clear frees the goodbye's keys (lock held, or no sender).
static void
outbox_bye_clear(worker_outbox *o)
{
	for (size_t k = 0; k < o->bye_nkeys; k++) {
		free(o->bye_keys[k]);
	}
	free(o->bye_keys);
	o->bye_keys    = NULL;
	o->bye_nkeys   = 0;
	o->bye_pending = false;
}

void
worker_outbox_init(worker_outbox *o)
{
	memset(o, 0, sizeof(*o));
	pthread_mutex_init(&o->lock, NULL);
	weft_clock_cond_init(&o->cv);
	weft_clock_cond_init(&o->spool_cv);
	o->spool_after_ms = WORKER_SPOOL_AFTER_MS;
	weft_map_init(&o->keys);
	weft_map_init(&o->replied_keys);
}

void
worker_outbox_fini(worker_outbox *o)
{
	weft_qnode *n;

	while ((n = weft_queue_pop_head(&o->results)) != NULL ||
	    (n = weft_queue_pop_head(&o->replied)) != NULL) {
		weft_result_free(WEFT_QUEUE_ENTRY(n, weft_result, node));
	}
	weft_map_fini(&o->keys);
	weft_map_fini(&o->replied_keys);
	free(o->url);
	free(o->dialed);
	outbox_bye_clear(o);
	pthread_cond_destroy(&o->spool_cv);
	pthread_cond_destroy(&o->cv);
	pthread_mutex_destroy(&o->lock);
}

// outbox_count adds delta to the count of results of r's attempt on the
// list (lock held).
static void
outbox_count(worker_outbox *o, const weft_result *r, int delta)
{
	char      key[WORKER_KEY_MAX];
	uintptr_t n;

	worker_attempt_key(key, sizeof(key), r->run_id, r->step_id, r->attempt);
	n = (uintptr_t) weft_map_get(&o->keys, key) + (uintptr_t) delta;
	if (n == 0) {
		weft_map_del(&o->keys, key);
	} else {
		weft_map_put(&o->keys, key, (void *) n);
	}
}

// outbox_enqueue appends r to the results to send, due in the spool at
// once or after spool_after_ms (lock held).
static void
outbox_enqueue(worker_outbox *o, weft_result *r, bool due)
{
	weft_queue_push_tail(&o->results, &r->node);
	if (!r->spooled) {
		r->spool_at = weft_clock_mono_ms() + (due ? 0 : o->spool_after_ms);
		if (o->unspooled++ == 0) {
			// The spooler waits for a first one without a deadline.
			pthread_cond_signal(&o->spool_cv);
		}
		if (o->spool_next == NULL) {
			o->spool_next = &r->node;
		}
	}
}

bool
worker_outbox_put(worker_outbox *o, weft_result *r)
{
	uint64_t ran = r->finished_ms > r->started_ms
	    ? r->finished_ms - r->started_ms
	    : 0;
	bool     due = !r->spooled && ran >= (uint64_t) o->spool_after_ms;

	pthread_mutex_lock(&o->lock);
	outbox_count(o, r, 1);
	outbox_enqueue(o, r, due);
	pthread_cond_broadcast(&o->cv);
	pthread_mutex_unlock(&o->lock);
	return (due);
}

void
worker_outbox_put_replied(worker_outbox *o, weft_result *r)
{
	char key[WORKER_KEY_MAX];

	worker_attempt_key(key, sizeof(key), r->run_id, r->step_id, r->attempt);
	pthread_mutex_lock(&o->lock);
	outbox_count(o, r, 1);
	// Its deadline here; the sender wakes for it on its own
	// (replied_hot_until).
	r->spool_at = weft_clock_mono_ms() + o->spool_after_ms;
	o->replied_hot_until = r->spool_at + OUTBOX_REPLIED_HOT_MS;
	weft_queue_push_tail(&o->replied, &r->node);
	weft_map_put(&o->replied_keys, key, r);
	if (o->sender_idle) {
		pthread_cond_broadcast(&o->cv);
	}
	pthread_mutex_unlock(&o->lock);
	atomic_fetch_add(&o->nreplied, 1);
}

size_t
worker_outbox_acked(worker_outbox *o, Weft__ResultRef *const *acks, size_t n)
{
	char   key[WORKER_KEY_MAX];
	size_t forgot = 0;

	if (n == 0) {
		return (0);
	}
	pthread_mutex_lock(&o->lock);
	for (size_t i = 0; i < n; i++) {
		const Weft__ResultRef *a = acks[i];
		weft_result           *r;
		if (a->run_id == NULL || a->step_id == NULL) {
			continue;
		}
		worker_attempt_key(key, sizeof(key), a->run_id, a->step_id,
		    a->attempt);
		if ((r = weft_map_get(&o->replied_keys, key)) == NULL) {
			continue; // gone the usual way already, or unknown
		}
		weft_map_del(&o->replied_keys, key);
		weft_queue_remove(&o->replied, &r->node);
		outbox_count(o, r, -1);
		weft_result_free(r);
		forgot++;
	}
	if (forgot > 0 && o->flush_waiters > 0) {
		pthread_cond_broadcast(&o->cv); // a drain waits for the flush
	}
	pthread_mutex_unlock(&o->lock);
	atomic_fetch_add(&o->nreplied_acked, forgot);
	return (forgot);
}

// outbox_replied_due moves the replied results whose ack is late to the
// results to send (lock held): they have waited spool_after_ms, so they
// are due in the spool too. All of them when stopping or flushing.
static void
outbox_replied_due(worker_outbox *o, bool all)
{
	int64_t     now = weft_clock_mono_ms();
	weft_qnode *n;
	char        key[WORKER_KEY_MAX];

	while ((n = o->replied.head) != NULL) {
		weft_result *r = WEFT_QUEUE_ENTRY(n, weft_result, node);
		if (!all && r->spool_at > now) {
			break;
		}
		weft_queue_pop_head(&o->replied);
		worker_attempt_key(key, sizeof(key), r->run_id, r->step_id,
		    r->attempt);
		if (weft_map_get(&o->replied_keys, key) == r) {
			weft_map_del(&o->replied_keys, key);
		}
		outbox_enqueue(o, r, true);
	}
}

bool
worker_outbox_set_url(worker_outbox *o, const char *url)
{
	bool changed = false;

	pthread_mutex_lock(&o->lock);
	if (o->url == NULL || strcmp(o->url, url) != 0) {
		free(o->url);
		o->url  = weft_xstrdup(url);
		changed = true;
		pthread_cond_broadcast(&o->cv);
	}
	pthread_mutex_unlock(&o->lock);
	return (changed);
}

uint32_t
worker_outbox_held(worker_outbox *o)
{
	uint32_t n;

	pthread_mutex_lock(&o->lock);
	n = (uint32_t) (weft_queue_count(&o->results) +
	    weft_queue_count(&o->replied));
	pthread_mutex_unlock(&o->lock);
	return (n);
}

bool
worker_outbox_holds(worker_outbox *o, const char *run, const char *step,
    uint32_t attempt)
{
	char key[WORKER_KEY_MAX];
	bool found;

	worker_attempt_key(key, sizeof(key), run, step, attempt);
	pthread_mutex_lock(&o->lock);
	found = weft_map_get(&o->keys, key) != NULL;
	pthread_mutex_unlock(&o->lock);
	return (found);
}

void
worker_outbox_goodbye(worker_outbox *o, char **keys, size_t n, bool final,
    uint64_t drain_ms)
{
	pthread_mutex_lock(&o->lock);
	outbox_bye_clear(o);
	o->bye_keys     = keys;
	o->bye_nkeys    = n;
	o->bye_final    = final;
	o->bye_drain_ms = drain_ms;
	o->bye_pending  = true;
	o->bye_gen++;
	pthread_cond_broadcast(&o->cv);
	pthread_mutex_unlock(&o->lock);
}

bool
worker_outbox_wait_flushed(worker_outbox *o, int64_t deadline)
{
	struct timespec ts = weft_clock_mono_ts(deadline);
	bool            done;

	pthread_mutex_lock(&o->lock);
	o->flush_waiters++;
	// Results in a reply are not waited for: they go the usual way now.
	outbox_replied_due(o, true);
	pthread_cond_broadcast(&o->cv);
	while ((o->bye_pending || !weft_queue_is_empty(&o->results)) &&
	    !o->stopping && weft_clock_mono_ms() < deadline) {
		pthread_cond_timedwait(&o->cv, &o->lock, &ts);
	}
	done = !o->bye_pending && weft_queue_is_empty(&o->results) &&
	    weft_queue_is_empty(&o->replied);
	o->flush_waiters--;
	pthread_mutex_unlock(&o->lock);
	return (done);
}

// outbox_pop frees the n oldest results (acked).
static void
outbox_pop(worker_outbox *o, uint32_t n)
{
	weft_qnode *r;

	pthread_mutex_lock(&o->lock);
	while (n-- > 0 && o->results.head != NULL) {
		// An acked result is settled (outbox_settle): no spooler
		// starts at it, so the pointer moves past it.
		if (o->spool_next == o->results.head) {
			o->spool_next = o->results.head->next;
		}
		r = weft_queue_pop_head(&o->results);
		outbox_count(o, WEFT_QUEUE_ENTRY(r, weft_result, node), -1);
		weft_result_free(WEFT_QUEUE_ENTRY(r, weft_result, node));
	}
	pthread_cond_broadcast(&o->cv); // a drain may wait for the flush
	pthread_mutex_unlock(&o->lock);
}

// outbox_backoff waits ms or until stopping; returns false when stopping.
static bool
outbox_backoff(worker_outbox *o, int64_t ms)
{
	int64_t         end = weft_clock_mono_ms() + ms;
	struct timespec ts  = { (time_t) (end / 1000),
                 (long) (end % 1000) * 1000000L };
	bool            go;

	pthread_mutex_lock(&o->lock);
	while (!o->stopping && weft_clock_mono_ms() < end) {
		pthread_cond_timedwait(&o->cv, &o->lock, &ts);
	}
	go = !o->stopping;
	pthread_mutex_unlock(&o->lock);
	return (go);
}

// outbox_pending says whether r still waits to be spooled (lock held).
static bool
outbox_pending(const weft_result *r)
{
	return (!r->spooled && !r->spooling && !r->acked);
}

// outbox_unspooled fills batch with up to max results waiting to be
// spooled (lock held), from the first not yet handed to the spool: walking
// from the head cost a pass over every result waiting for its ack, each
// time. They are the caller's to write now (spooling). Returns how many.
static uint32_t
outbox_unspooled(worker_outbox *o, weft_result **batch, uint32_t max)
{
	uint32_t    n = 0;
	weft_qnode *r;

	for (r = o->spool_next; r != NULL && n < max; r = r->next) {
		weft_result *res = WEFT_QUEUE_ENTRY(r, weft_result, node);
		if (outbox_pending(res)) {
			res->spooling = true;
			batch[n++]    = res;
		}
	}
	o->spool_next = r;
	o->unspooled -= n;
	return (n);
}

// outbox_first_pending returns the oldest result waiting to be spooled
// (lock held), moving spool_next past those that no longer wait; NULL if
// none. Results are due in the order they were put, except those due at
// once, which their slot writes itself.
static weft_result *
outbox_first_pending(worker_outbox *o)
{
	while (o->spool_next != NULL) {
		weft_result *r = WEFT_QUEUE_ENTRY(o->spool_next, weft_result, node);
		if (outbox_pending(r)) {
			return (r);
		}
		o->spool_next = o->spool_next->next;
	}
	return (NULL);
}

void
worker_outbox_spool(weft_worker *w)
{
	worker_outbox *o = &w->outbox;
	weft_result  **batch;
	uint32_t       n;

	pthread_mutex_lock(&o->lock);
	if (o->spooling) {
		// The thread writing now takes ours in its next round: one
		// transaction for every result that came meanwhile, like the
		// coordinator's group commit.
		pthread_mutex_unlock(&o->lock);
		return;
	}
	o->spooling = true;
	while (o->unspooled > 0) {
		batch = weft_xalloc(sizeof(*batch) * o->unspooled);
		n     = outbox_unspooled(o, batch, o->unspooled);
		if (n == 0) {
			free(batch); // cannot happen: unspooled counts them
			break;
		}
		// Only the sender frees results, and never one being
		// spooled (outbox_settle): the batch stays valid unlocked.
		pthread_mutex_unlock(&o->lock);
		weft_err err = worker_spool_results(w->spool, batch, n);
		pthread_mutex_lock(&o->lock);
		for (uint32_t k = 0; k < n; k++) {
			batch[k]->spooled  = true;
			batch[k]->spooling = false;
		}
		if (w->spool != NULL && err == WEFT_OK) {
			atomic_fetch_add(&o->nspooled, n);
		}
		pthread_cond_broadcast(&o->cv);
		free(batch);
	}
	o->spooling = false;
	pthread_cond_signal(&o->spool_cv); // a spooler may wait for us
	pthread_mutex_unlock(&o->lock);
}

// outbox_spooler is the thread that spools the results left unacked for
// spool_after_ms: it sleeps until the oldest waiting one is due.
static void *
outbox_spooler(void *arg)
{
	weft_worker   *w = arg;
	worker_outbox *o = &w->outbox;

	worker_thread_begin("weft-spooler");
	pthread_mutex_lock(&o->lock);
	while (!o->stopping) {
		weft_result *first = outbox_first_pending(o);
		if (first == NULL || o->spooling) {
			// Nothing waits, or a slot writes now (and takes
			// every waiting one along).
			pthread_cond_wait(&o->spool_cv, &o->lock);
			continue;
		}
		if (weft_clock_mono_ms() < first->spool_at) {
			struct timespec ts = weft_clock_mono_ts(first->spool_at);
			pthread_cond_timedwait(&o->spool_cv, &o->lock, &ts);
			continue;
		}
		pthread_mutex_unlock(&o->lock);
		worker_outbox_spool(w);
		pthread_mutex_lock(&o->lock);
	}
	pthread_mutex_unlock(&o->lock);
	return (NULL);
}

// outbox_wait waits until there is something to send and somewhere to send
// it. Fills batch with up to max oldest results (still owned by the list),
// spooled or not: a result goes to the coordinator at once, and only its
// ack waits for a spool write under way (outbox_settle). When the
// URL changed, *redial gets a copy of it. Returns the number of results; 0
// when stopping, or with *bye set to the generation of a goodbye to send
// first.
static uint32_t
outbox_wait(worker_outbox *o, weft_result **batch, uint32_t max,
    char **redial, uint64_t *bye)
{
	uint32_t    n = 0;
	weft_qnode *r;

	pthread_mutex_lock(&o->lock);
	for (;;) {
		outbox_replied_due(o, false);
		if (o->stopping ||
		    ((!weft_queue_is_empty(&o->results) || o->bye_pending) &&
		        o->url != NULL)) {
			break;
		}
		// The first replied result's deadline, or a tick of
		// spool_after_ms while replied results come, else no deadline.
		int64_t now   = weft_clock_mono_ms();
		int64_t until = now + o->spool_after_ms;
		if (o->replied.head != NULL) {
			weft_result *h = WEFT_QUEUE_ENTRY(o->replied.head,
			    weft_result, node);
			until = h->spool_at < until ? h->spool_at : until;
		} else if (now >= o->replied_hot_until) {
			o->sender_idle = true;
			pthread_cond_wait(&o->cv, &o->lock);
			o->sender_idle = false;
			continue;
		}
		struct timespec ts = weft_clock_mono_ts(until);
		pthread_cond_timedwait(&o->cv, &o->lock, &ts);
	}
	if (!o->stopping && o->bye_pending) {
		// The goodbye goes first: the attempts it hands back are
		// waiting to run elsewhere.
		if (o->dialed == NULL || strcmp(o->dialed, o->url) != 0) {
			*redial = weft_xstrdup(o->url);
		}
		*bye = o->bye_gen;
		pthread_mutex_unlock(&o->lock);
		return (0);
	}
	if (!o->stopping) {
		if (o->dialed == NULL || strcmp(o->dialed, o->url) != 0) {
			*redial = weft_xstrdup(o->url);
		}
		WEFT_QUEUE_FOREACH (r, &o->results) {
			weft_result *res = WEFT_QUEUE_ENTRY(r, weft_result, node);
			if (n == max) {
				break;
			}
			batch[n++] = res;
		}
	}
	pthread_mutex_unlock(&o->lock);
	return (n);
}

// outbox_redial points the req0 socket at url (taken).
static void
outbox_redial(weft_worker *w, char *url)
{
	worker_outbox *o = &w->outbox;
	char           why[512];
	int            rv;

	if (o->dialed != NULL) {
		nng_dialer_close(o->dialer);
	}
	free(o->dialed);
	o->dialed = url;
	if ((rv = nng_dialer_create(&o->dialer, o->sock, url)) != 0) {
		weft_log_warn("RESULTS-DIAL", "url=%s error=\"%s\"", url,
		    nng_strerror(rv));
		return;
	}
	if (weft_tls_dialer(w->tls, o->dialer, url, why, sizeof(why)) !=
	    WEFT_OK) {
		weft_log_warn("RESULTS-DIAL", "url=%s error=\"%s\"", url, why);
		nng_dialer_close(o->dialer);
		return;
	}
	if ((rv = nng_dialer_start(o->dialer, NNG_FLAG_NONBLOCK)) != 0) {
		weft_log_warn("RESULTS-DIAL", "url=%s error=\"%s\"", url,
		    nng_strerror(rv));
	}
}

void
worker_result_proto(const weft_result *r, Weft__StepResult *s)
{
	weft__step_result__init(s);
	s->run_id      = r->run_id;
	s->step_id     = r->step_id;
	s->attempt     = r->attempt;
	s->ok          = r->ok;
	s->output_json = r->output_json ? r->output_json : "";
	s->error       = r->error ? r->error : "";
	s->exit_code   = r->exit_code;
	s->stderr_tail = r->stderr_tail ? r->stderr_tail : "";
	s->started_ms  = r->started_ms;
	s->finished_ms = r->finished_ms;
}

// outbox_pack packs batch[0..n) into a ResultBatch message. Halves n
// while the message is over the wire limit; a single result over the
// limit becomes a failure saying so. Returns the count packed.
static uint32_t
outbox_pack(weft_worker *w, weft_result **batch, uint32_t n, nng_msg **msg)
{
	Weft__StepResult   *items = weft_xalloc(sizeof(*items) * n);
	Weft__StepResult  **ptrs  = weft_xalloc(sizeof(Weft__StepResult *) * n);
	Weft__ResultBatch   rb    = WEFT__RESULT_BATCH__INIT;
	char                coord[128];
	uint64_t            inc;
	Weft__Envelope      env   = WEFT__ENVELOPE__INIT;

	for (uint32_t i = 0; i < n; i++) {
		worker_result_proto(batch[i], &items[i]);
		ptrs[i] = &items[i];
	}
	rb.results      = ptrs;
	env.body_case   = WEFT__ENVELOPE__BODY_RESULTS;
	env.results     = &rb;
	env.recipient   = coord;
	inc             = worker_coord_name(w, coord, sizeof(coord));
	for (rb.n_results = n;
	     weft_wire_pack_to(&w->wire, &env, inc, msg) != WEFT_OK;) {
		if (rb.n_results == 1) {
			// One result alone is too large: it goes as a failure.
			// Only the message changes: a spool write may be
			// reading the result now (each resend packs it so
			// again). The ids fit: they came in an assignment.
			items[0].ok          = false;
			items[0].output_json = "";
			items[0].stderr_tail = "";
			items[0].error       = "result larger than the wire limit";
			continue;
		}
		rb.n_results /= 2;
	}
	free(ptrs);
	free(items);
	return ((uint32_t) rb.n_results);
}

// outbox_pack_bye packs the pending goodbye (generation *gen, checked
// under the lock); NULL when it changed or did not pack.
static nng_msg *
outbox_pack_bye(weft_worker *w, uint64_t gen)
{
	worker_outbox *o   = &w->outbox;
	Weft__Goodbye  g   = WEFT__GOODBYE__INIT;
	Weft__Envelope env = WEFT__ENVELOPE__INIT;
	char           coord[128];
	nng_msg       *msg = NULL;
	uint64_t       inc = worker_coord_name(w, coord, sizeof(coord));

	pthread_mutex_lock(&o->lock);
	if (o->bye_pending && o->bye_gen == gen) {
		g.final            = o->bye_final;
		g.drain_timeout_ms = o->bye_drain_ms;
		if (g.final) {
			g.n_lost = o->bye_nkeys;
			g.lost   = o->bye_keys;
		} else {
			g.n_released = o->bye_nkeys;
			g.released   = o->bye_keys;
		}
		env.body_case = WEFT__ENVELOPE__BODY_GOODBYE;
		env.goodbye   = &g;
		env.recipient = coord;
		if (weft_wire_pack_to(&w->wire, &env, inc, &msg) != WEFT_OK) {
			msg = NULL;
		}
	}
	pthread_mutex_unlock(&o->lock);
	return (msg);
}

// outbox_bye_acked clears goodbye generation gen, acked.
static void
outbox_bye_acked(worker_outbox *o, uint64_t gen)
{
	pthread_mutex_lock(&o->lock);
	if (o->bye_pending && o->bye_gen == gen) {
		outbox_bye_clear(o);
		pthread_cond_broadcast(&o->cv);
	}
	pthread_mutex_unlock(&o->lock);
}

// outbox_exchange sends msg (taken) and waits for the ack. Returns how many
// results the coordinator acked (0: none, resend).
static uint32_t
outbox_exchange(weft_worker *w, nng_msg *msg)
{
	worker_outbox  *o = &w->outbox;
	Weft__Envelope *env;
	nng_msg        *reply;
	uint32_t        count;
	weft_err        err;

	if (nng_sendmsg(o->sock, msg, 0) != 0) {
		nng_msg_free(msg);
		return (0);
	}
	atomic_fetch_add(&o->sent, 1);
	// A timeout here means no ack: the caller sends the batch again.
	if (nng_recvmsg(o->sock, &reply, 0) != 0) {
		return (0);
	}
	err = weft_wire_expect(&w->wire, reply, WEFT__ENVELOPE__BODY_RESULT_ACK,
	    &env);
	if (err != WEFT_OK) {
		worker_drop(w, "results", err, reply);
	}
	nng_msg_free(reply);
	if (err != WEFT_OK) {
		return (0);
	}
	count = env->result_ack ? env->result_ack->count : 0;
	weft_wire_free(env);
	atomic_fetch_add(&o->acked, 1);
	return (count);
}

// outbox_settle takes the first n results of batch (acked) out of the
// spool's care, before they are forgotten and freed: it waits while one is
// being written (a short wait: one transaction); one never written is
// marked acked, so that nobody writes it any more. The results that are in
// the spool, whose rows must go, are moved to the front of batch; returns
// how many.
static uint32_t
outbox_settle(worker_outbox *o, weft_result **batch, uint32_t n)
{
	uint32_t m = 0;

	pthread_mutex_lock(&o->lock);
	for (uint32_t k = 0; k < n;) {
		if (batch[k]->spooling) {
			pthread_cond_wait(&o->cv, &o->lock);
			k = 0; // from the start: another may be written now
		} else {
			k++;
		}
	}
	for (uint32_t k = 0; k < n; k++) {
		weft_result *r = batch[k];
		if (r->spooled) {
			batch[m++] = r;
		} else if (!r->acked) {
			r->acked = true;
			o->unspooled--;
		}
	}
	pthread_mutex_unlock(&o->lock);
	return (m);
}

// outbox_main is the sender thread.
static void *
outbox_main(void *arg)
{
	weft_worker   *w     = arg;
	worker_outbox *o     = &w->outbox;
	weft_result  **batch =
	    weft_xalloc(sizeof(weft_result *) * w->batch_max);
	uint32_t       n, acked;
	nng_msg       *msg;
	char          *redial;

	worker_thread_begin("weft-outbox");
	for (;;) {
		uint64_t bye = 0;
		redial       = NULL;
		n = outbox_wait(o, batch, w->batch_max, &redial, &bye);
		if (n == 0 && bye == 0) {
			break;
		}
		if (redial != NULL) {
			outbox_redial(w, redial);
		}
		if (bye != 0) {
			if ((msg = outbox_pack_bye(w, bye)) == NULL) {
				continue; // replaced meanwhile
			}
			if (outbox_exchange(w, msg) > 0) {
				outbox_bye_acked(o, bye);
			} else if (!outbox_backoff(o, 50)) {
				break;
			}
			continue;
		}
		n     = outbox_pack(w, batch, n, &msg);
		acked = outbox_exchange(w, msg);
		if (acked > 0) {
			acked = acked < n ? acked : n;
			uint32_t kept = outbox_settle(o, batch, acked);
			// Forget them in the spool first: a restart in between
			// sends them again, a repeat the coordinator drops.
			worker_spool_acked(w->spool, batch, kept);
			outbox_pop(o, acked);
		} else if (!outbox_backoff(o, 50)) {
			break;
		}
	}
	free(batch);
	return (NULL);
}

weft_err
worker_outbox_start(weft_worker *w)
{
	worker_outbox *o = &w->outbox;
	int            rv;

	if ((rv = nng_req0_open(&o->sock)) != 0) {
		weft_log_err("WORKER-SOCKET", "socket=results error=\"%s\"",
		    nng_strerror(rv));
		return (weft_err_from_nng(rv));
	}
	o->sock_open = true;
	weft_wire_socket_limits(o->sock);
	nng_socket_set_ms(o->sock, NNG_OPT_SENDTIMEO,
	    (nng_duration) w->ack_timeout_ms);
	nng_socket_set_ms(o->sock, NNG_OPT_RECVTIMEO,
	    (nng_duration) w->ack_timeout_ms);
	// We send a batch again ourselves, under a new sequence number:
	// nng's resend would repeat the old one, which replay checks drop.
	nng_socket_set_ms(o->sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
	nng_socket_set_ms(o->sock, NNG_OPT_RECONNMINT, WEFT_RECONNECT_MIN_MS);
	nng_socket_set_ms(o->sock, NNG_OPT_RECONNMAXT, WEFT_RECONNECT_MAX_MS);
	if (pthread_create(&o->thread, NULL, outbox_main, w) != 0) {
		weft_log_err("WORKER-THREAD", "what=results error=create");
		return (WEFT_ENOMEM);
	}
	o->thread_started = true;
	if (w->spool != NULL) {
		if (pthread_create(&o->spooler, NULL, outbox_spooler, w) != 0) {
			weft_log_err("WORKER-THREAD", "what=spooler error=create");
			return (WEFT_ENOMEM);
		}
		o->spooler_started = true;
	}
	return (WEFT_OK);
}

void
worker_outbox_stop(weft_worker *w)
{
	worker_outbox *o = &w->outbox;

	pthread_mutex_lock(&o->lock);
	o->stopping = true;
	// Results a reply carried, unacked yet, are spooled by the stop with
	// the others (the slots are stopped by now).
	outbox_replied_due(o, true);
	pthread_cond_broadcast(&o->cv);
	pthread_cond_signal(&o->spool_cv);
	pthread_mutex_unlock(&o->lock);
	if (o->spooler_started) {
		// What it leaves, the stop writes (worker_stop).
		pthread_join(o->spooler, NULL);
		o->spooler_started = false;
	}
	// Closing wakes a sender blocked in send or receive.
	if (o->sock_open) {
		nng_close(o->sock);
		o->sock_open = false;
	}
	if (o->thread_started) {
		pthread_join(o->thread, NULL);
		o->thread_started = false;
	}
}
