// pool: the worker's slots. Accepted attempts wait in a FIFO; one thread
// per slot takes the oldest, runs its handler and puts the result in the
// outbox. Capacity is queued + running < slots + queue, checked at
// acceptance.
#include "worker_impl.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "log.h"

void
worker_pool_init(worker_pool *p)
{
	memset(p, 0, sizeof(*p));
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cv, NULL);
}

void
worker_pool_fini(worker_pool *p)
{
	weft_attempt *att;

	// Only attempts that never ran can be left: stop joined every slot.
	while ((att = p->qhead) != NULL) {
		p->qhead = att->next;
		worker_attempt_free(att);
	}
	free(p->threads);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->lock);
}

// pool_unlink_running removes att from the running list (lock held).
static void
pool_unlink_running(worker_pool *p, weft_attempt *att)
{
	for (weft_attempt **pp = &p->running; *pp != NULL;
	     pp = &(*pp)->next) {
		if (*pp == att) {
			*pp = att->next;
			p->nrunning--;
			return;
		}
	}
}

// pool_take waits for the oldest queued attempt and moves it to the running
// list; NULL when stopping.
static weft_attempt *
pool_take(worker_pool *p)
{
	weft_attempt *att;

	pthread_mutex_lock(&p->lock);
	while (!p->stopping && p->qhead == NULL) {
		pthread_cond_wait(&p->cv, &p->lock);
	}
	if ((att = p->qhead) != NULL && !p->stopping) {
		p->qhead = att->next;
		if (p->qhead == NULL) {
			p->qtail = NULL;
		}
		p->nqueued--;
		att->next  = p->running;
		p->running = att;
		p->nrunning++;
	} else {
		att = NULL;
	}
	pthread_mutex_unlock(&p->lock);
	return (att);
}

// pool_main is one slot: take, run, hand the result to the outbox.
static void *
pool_main(void *arg)
{
	weft_worker  *w = arg;
	worker_pool  *p = &w->pool;
	weft_attempt *att;
	weft_result  *r;
	sigset_t      set;

	// Signals for the process go to main's thread, not to a slot.
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	while ((att = pool_take(p)) != NULL) {
		r = worker_attempt_run(att);
		// Into the outbox before off the running list: a survey answer
		// listing our attempts then never misses this one.
		worker_outbox_put(&w->outbox, r);
		pthread_mutex_lock(&p->lock);
		pool_unlink_running(p, att);
		pthread_mutex_unlock(&p->lock);
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

	pthread_mutex_lock(&p->lock);
	p->stopping = true;
	for (weft_attempt *att = p->running; att != NULL; att = att->next) {
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
// (lock held). *link points at its queue link when queued, NULL when
// running. Returns NULL when unknown.
static weft_attempt *
pool_find(worker_pool *p, const char *run, const char *step,
    uint32_t attempt, weft_attempt ***link)
{
	weft_attempt **pp;

	for (pp = &p->qhead; *pp != NULL; pp = &(*pp)->next) {
		if ((*pp)->attempt == attempt &&
		    strcmp((*pp)->run_id, run) == 0 &&
		    strcmp((*pp)->step_id, step) == 0) {
			*link = pp;
			return (*pp);
		}
	}
	for (weft_attempt *att = p->running; att != NULL; att = att->next) {
		if (att->attempt == attempt && strcmp(att->run_id, run) == 0 &&
		    strcmp(att->step_id, step) == 0) {
			*link = NULL;
			return (att);
		}
	}
	return (NULL);
}

size_t
worker_attempt_keys(weft_worker *w, char **keys, size_t max, bool *complete)
{
	worker_pool   *p = &w->pool;
	worker_outbox *o = &w->outbox;
	size_t         n = 0;
	char           key[512];

	*complete = true;
	// Pool, then outbox: the order pool_main hands a result over in.
	pthread_mutex_lock(&p->lock);
	pthread_mutex_lock(&o->lock);
	for (int list = 0; list < 3; list++) {
		weft_attempt *att = list == 0 ? p->qhead
		    : list == 1           ? p->running
		                          : NULL;
		for (; att != NULL; att = att->next) {
			if (n == max) {
				*complete = false;
				break;
			}
			keys[n++] = weft_xstrdup(att->key);
		}
	}
	for (weft_result *r = o->head; r != NULL; r = r->next) {
		if (n == max) {
			*complete = false;
			break;
		}
		snprintf(key, sizeof(key), "%s/%s/%u", r->run_id, r->step_id,
		    r->attempt);
		keys[n++] = weft_xstrdup(key);
	}
	pthread_mutex_unlock(&o->lock);
	pthread_mutex_unlock(&p->lock);
	return (n);
}

bool
worker_pool_offer(weft_worker *w, const Weft__Assignment *a, char *reason,
    size_t reasonlen)
{
	worker_pool       *p    = &w->pool;
	const char        *type = a->type ? a->type : "";
	const worker_step *step = worker_step_find(w, type);
	weft_attempt     **link;
	weft_attempt      *att;
	bool               ok = false;

	if (step == NULL) {
		snprintf(reason, reasonlen, "unknown step type %s", type);
		return (false);
	}
	att = worker_attempt_alloc(a, step);
	pthread_mutex_lock(&p->lock);
	if (p->stopping) {
		snprintf(reason, reasonlen, "worker stopping");
	} else if (pool_find(p, att->run_id, att->step_id, att->attempt,
	               &link) != NULL) {
		// A re-sent batch: the attempt is ours already; accept again
		// without running it twice.
		ok = true;
	} else if (p->nqueued + p->nrunning >= w->slots + w->queue) {
		snprintf(reason, reasonlen, "no free slot");
	} else {
		if (p->qtail != NULL) {
			p->qtail->next = att;
		} else {
			p->qhead = att;
		}
		p->qtail = att;
		p->nqueued++;
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
	worker_pool   *p = &w->pool;
	weft_attempt **link;
	weft_attempt  *att;
	weft_result   *r = NULL;

	pthread_mutex_lock(&p->lock);
	att = pool_find(p, ab->run_id ? ab->run_id : "",
	    ab->step_id ? ab->step_id : "", ab->attempt, &link);
	if (att != NULL && link != NULL) {
		// Queued: it never runs; report it like a failed attempt.
		*link = att->next;
		if (p->qtail == att) {
			p->qtail = NULL;
			for (weft_attempt *q = p->qhead; q != NULL; q = q->next) {
				p->qtail = q;
			}
		}
		p->nqueued--;
		r = worker_attempt_failed(att, "aborted");
		worker_attempt_free(att);
	} else if (att != NULL) {
		worker_attempt_abort(att);
	}
	pthread_mutex_unlock(&p->lock);
	if (r != NULL) {
		worker_outbox_put(&w->outbox, r);
	}
	return (att != NULL);
}

void
worker_pool_counts(worker_pool *p, uint32_t *queued, uint32_t *running)
{
	pthread_mutex_lock(&p->lock);
	*queued  = p->nqueued;
	*running = p->nrunning;
	pthread_mutex_unlock(&p->lock);
}
