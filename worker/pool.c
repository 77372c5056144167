// pool: the worker's slots. Accepted attempts wait in a FIFO; one thread
// per slot takes the oldest, runs its handler and puts the result in the
// outbox. Capacity is queued + running < slots + queue, checked at
// acceptance.
#include "worker_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "clock.h"
#include "log.h"

void
worker_pool_init(worker_pool *p)
{
	memset(p, 0, sizeof(*p));
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cv, NULL);
	weft_clock_cond_init(&p->idle);
	weft_map_init(&p->held);
}

void
worker_pool_fini(worker_pool *p)
{
	weft_qnode *n;

	// Only attempts that never ran can be left: stop joined every slot.
	while ((n = weft_queue_pop_head(&p->queued)) != NULL) {
		worker_attempt_free(WEFT_QUEUE_ENTRY(n, weft_attempt, node));
	}
	weft_map_fini(&p->held);
	free(p->threads);
	for (size_t k = 0; k < p->nlost; k++) {
		free(p->lost[k]);
	}
	free(p->lost);
	pthread_cond_destroy(&p->idle);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->lock);
}

// pool_take waits for the oldest queued attempt and moves it to the running
// list; NULL when stopping.
static weft_attempt *
pool_take(worker_pool *p)
{
	weft_qnode *n = NULL;

	pthread_mutex_lock(&p->lock);
	while (!p->stopping && weft_queue_is_empty(&p->queued)) {
		pthread_cond_wait(&p->cv, &p->lock);
	}
	if (!p->stopping) {
		n = weft_queue_pop_head(&p->queued);
		weft_queue_push_head(&p->running, n);
		WEFT_QUEUE_ENTRY(n, weft_attempt, node)->running = true;
	}
	pthread_mutex_unlock(&p->lock);
	return (WEFT_QUEUE_ENTRY(n, weft_attempt, node));
}

// pool_add_lost records the key (borrowed) of an attempt cut short (lock
// held).
static void
pool_add_lost(worker_pool *p, const char *key)
{
	if (p->nlost == p->caplost) {
		p->caplost = p->caplost ? p->caplost * 2 : 16;
		p->lost    = weft_xrealloc(p->lost, p->caplost * sizeof(*p->lost));
	}
	p->lost[p->nlost++] = weft_xstrdup(key);
}

// pool_main is one slot: take, run, hand the result to the outbox.
static void *
pool_main(void *arg)
{
	weft_worker  *w = arg;
	worker_pool  *p = &w->pool;
	weft_attempt *att;
	weft_result  *r;

	worker_thread_begin("weft-slot");
	while ((att = pool_take(p)) != NULL) {
		bool drop, due = false;
		r = worker_attempt_run(att);
		// One critical section decides, against a drain deadline
		// (pool_lose_running), whether the result is reported or the
		// attempt lost: never both, never neither.
		pthread_mutex_lock(&p->lock);
		// Lost at a drain deadline: whatever it returned, the last
		// goodbye names it lost and it runs again elsewhere. Cut
		// short by a stop: a failure is not the step's (dropped; the
		// next process does not list the attempt, so it is retried
		// as lost), a success is kept and sent (and spooled: see
		// outbox.c).
		drop = att->lost || (att->cut && !r->ok);
		if (!drop && !worker_dispatch_claim(w, r)) {
			// Into the outbox as it leaves the running list: a
			// survey answer listing our attempts never misses it.
			// (A reply waiting for it took it there already.)
			due = worker_outbox_put(&w->outbox, r);
		}
		weft_queue_remove(&p->running, &att->node);
		weft_map_del(&p->held, att->key);
		pthread_cond_broadcast(&p->idle);
		pthread_mutex_unlock(&p->lock);
		if (drop) {
			weft_result_free(r);
		} else if (due) {
			worker_outbox_spool(w); // long enough to keep at once
		}
		worker_attempt_free(att);
	}
	return (NULL);
}

weft_err
worker_pool_start(weft_worker *w)
{
	worker_pool *p = &w->pool;

	p->threads = weft_xalloc(sizeof(pthread_t) * w->slots);
	for (uint32_t i = 0; i < w->slots; i++) {
		if (pthread_create(&p->threads[i], NULL, pool_main, w) != 0) {
			weft_log_err("WORKER-THREAD", "what=slot error=create");
			return (WEFT_ENOMEM);
		}
		p->nthreads++;
	}
	return (WEFT_OK);
}

void
worker_pool_stop(weft_worker *w)
{
	worker_pool *p = &w->pool;
	weft_qnode  *n;

	pthread_mutex_lock(&p->lock);
	p->stopping = true;
	WEFT_QUEUE_FOREACH (n, &p->running) {
		// Cut short by our stopping: never reported as failed.
		weft_attempt *att = WEFT_QUEUE_ENTRY(n, weft_attempt, node);
		att->cut          = true;
		worker_attempt_abort(att);
	}
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->lock);
	for (uint32_t i = 0; i < p->nthreads; i++) {
		pthread_join(p->threads[i], NULL);
	}
	p->nthreads = 0;
}

// pool_find returns the queued or running attempt with this identity
// (lock held), and in *on the queue it is on. Returns NULL when unknown.
static weft_attempt *
pool_find(worker_pool *p, const char *run, const char *step,
    uint32_t attempt, weft_queue **on)
{
	char          key[WORKER_KEY_MAX];
	weft_attempt *att;

	worker_attempt_key(key, sizeof(key), run, step, attempt);
	if ((att = weft_map_get(&p->held, key)) != NULL) {
		*on = att->running ? &p->running : &p->queued;
	}
	return (att);
}

size_t
worker_attempt_keys(weft_worker *w, char **keys, size_t max, bool *complete)
{
	worker_pool   *p      = &w->pool;
	worker_outbox *o      = &w->outbox;
	weft_queue    *held[] = { &p->queued, &p->running };
	size_t         n      = 0;
	weft_qnode    *node;
	char           key[WORKER_KEY_MAX];

	*complete = true;
	// Pool, then outbox: the order pool_main hands a result over in.
	pthread_mutex_lock(&p->lock);
	pthread_mutex_lock(&o->lock);
	for (size_t i = 0; i < sizeof(held) / sizeof(held[0]); i++) {
		WEFT_QUEUE_FOREACH (node, held[i]) {
			if (n == max) {
				*complete = false;
				break;
			}
			keys[n++] = weft_xstrdup(
			    WEFT_QUEUE_ENTRY(node, weft_attempt, node)->key);
		}
	}
	// Results waiting for their ack, those a reply carried included.
	weft_queue *results[] = { &o->results, &o->replied };
	for (size_t i = 0; i < sizeof(results) / sizeof(results[0]); i++) {
		WEFT_QUEUE_FOREACH (node, results[i]) {
			weft_result *r = WEFT_QUEUE_ENTRY(node, weft_result, node);
			if (n == max) {
				*complete = false;
				break;
			}
			worker_attempt_key(key, sizeof(key), r->run_id,
			    r->step_id, r->attempt);
			keys[n++] = weft_xstrdup(key);
		}
	}
	// Handed back in a goodbye not acked yet: still ours until it is, or
	// the coordinator, missing them from two answers, would call them
	// lost.
	for (size_t k = 0; o->bye_pending && !o->bye_final && k < o->bye_nkeys;
	     k++) {
		if (n == max) {
			*complete = false;
			break;
		}
		keys[n++] = weft_xstrdup(o->bye_keys[k]);
	}
	pthread_mutex_unlock(&o->lock);
	pthread_mutex_unlock(&p->lock);
	return (n);
}

bool
worker_pool_offer(weft_worker *w, const Weft__Assignment *a, json_t *shared,
    char *reason, size_t reasonlen)
{
	worker_pool       *p    = &w->pool;
	const char        *type = a->type ? a->type : "";
	const worker_step *step = worker_step_find(w, type);
	weft_queue        *on;
	weft_attempt      *att;
	bool               ok = false;

	if (step == NULL) {
		snprintf(reason, reasonlen, "unknown step type %s", type);
		return (false);
	}
	att = worker_attempt_alloc(a, shared, step);
	pthread_mutex_lock(&p->lock);
	if (p->stopping || p->draining) {
		snprintf(reason, reasonlen, "worker %s",
		    p->stopping ? "stopping" : "draining");
	} else if (pool_find(p, att->run_id, att->step_id, att->attempt,
	               &on) != NULL ||
	    worker_outbox_holds(&w->outbox, att->run_id, att->step_id,
	        att->attempt)) {
		// A re-sent batch, or an attempt whose result waits for its
		// ack (perhaps from the spool of our previous life): ours
		// already; accept again without running it twice.
		ok = true;
	} else if (weft_queue_count(&p->queued) +
	        weft_queue_count(&p->running) >=
	    w->slots + w->queue) {
		snprintf(reason, reasonlen, "no free slot");
	} else {
		weft_queue_push_tail(&p->queued, &att->node);
		weft_map_put(&p->held, att->key, att);
		pthread_cond_signal(&p->cv);
		att = NULL;
		ok  = true;
	}
	pthread_mutex_unlock(&p->lock);
	worker_attempt_free(att);
	return (ok);
}

bool
worker_pool_abort(weft_worker *w, const Weft__Abort *ab)
{
	worker_pool  *p = &w->pool;
	weft_queue   *on;
	weft_attempt *att;
	weft_result  *r = NULL;
	bool          found;

	pthread_mutex_lock(&p->lock);
	att = pool_find(p, ab->run_id ? ab->run_id : "",
	    ab->step_id ? ab->step_id : "", ab->attempt, &on);
	found = att != NULL;
	if (att != NULL && on == &p->queued) {
		// Queued: it never runs; report it like a failed attempt.
		weft_queue_remove(&p->queued, &att->node);
		weft_map_del(&p->held, att->key);
		r = worker_attempt_failed(att, "aborted");
		// It never ran: nothing to keep across a crash (and no file
		// I/O here, on an nng thread).
		r->spooled = true;
		worker_attempt_free(att);
	} else if (att != NULL) {
		worker_attempt_abort(att);
	}
	pthread_mutex_unlock(&p->lock);
	if (r != NULL) {
		worker_outbox_put(&w->outbox, r);
	}
	return (found);
}

void
worker_pool_counts(worker_pool *p, uint32_t *queued, uint32_t *running)
{
	pthread_mutex_lock(&p->lock);
	*queued  = (uint32_t) weft_queue_count(&p->queued);
	*running = (uint32_t) weft_queue_count(&p->running);
	pthread_mutex_unlock(&p->lock);
}

size_t
worker_pool_stop_taking(weft_worker *w, char ***keys)
{
	worker_pool *p = &w->pool;
	weft_qnode  *n;
	size_t       k = 0;

	pthread_mutex_lock(&p->lock);
	p->draining = true;
	*keys = weft_xalloc((weft_queue_count(&p->queued) + 1) * sizeof(char *));
	while ((n = weft_queue_pop_head(&p->queued)) != NULL) {
		weft_attempt *att = WEFT_QUEUE_ENTRY(n, weft_attempt, node);
		(*keys)[k++]      = weft_xstrdup(att->key);
		weft_map_del(&p->held, att->key);
		worker_attempt_free(att);
	}
	pthread_mutex_unlock(&p->lock);
	return (k);
}

bool
worker_pool_wait_idle(weft_worker *w, int64_t deadline)
{
	worker_pool    *p  = &w->pool;
	struct timespec ts = weft_clock_mono_ts(deadline);
	bool            idle;

	pthread_mutex_lock(&p->lock);
	while (!weft_queue_is_empty(&p->running) &&
	    weft_clock_mono_ms() < deadline) {
		pthread_cond_timedwait(&p->idle, &p->lock, &ts);
	}
	idle = weft_queue_is_empty(&p->running);
	pthread_mutex_unlock(&p->lock);
	return (idle);
}

// pool_lose_running marks every running attempt lost and aborts it (lock
// held): its key goes on the lost list now, and its result, whenever its
// handler returns, is dropped (pool_main). A result already in the outbox
// left the running list with it, so it is not here.
static void
pool_lose_running(worker_pool *p)
{
	weft_qnode *n;

	WEFT_QUEUE_FOREACH (n, &p->running) {
		weft_attempt *att = WEFT_QUEUE_ENTRY(n, weft_attempt, node);
		if (att->lost) {
			continue;
		}
		att->lost = true;
		att->cut  = true;
		pool_add_lost(p, att->key);
		worker_attempt_abort(att);
	}
}

void
worker_pool_cut(weft_worker *w)
{
	worker_pool *p = &w->pool;

	pthread_mutex_lock(&p->lock);
	pool_lose_running(p);
	pthread_mutex_unlock(&p->lock);
}

size_t
worker_pool_take_lost(weft_worker *w, char ***keys)
{
	worker_pool *p = &w->pool;
	size_t       k;

	pthread_mutex_lock(&p->lock);
	// Still running and not lost yet counts too: we leave without its
	// result.
	pool_lose_running(p);
	*keys    = p->lost;
	k        = p->nlost;
	p->lost  = NULL;
	p->nlost = p->caplost = 0;
	pthread_mutex_unlock(&p->lock);
	return (k);
}
