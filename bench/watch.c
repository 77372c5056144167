// watch: sees runs end. An aio callback reads the coordinator's event stream
// (sub0, every topic) and notes when each run's terminal event arrived; the
// bench waits on that. nng's pub drops messages for a slow subscriber, so
// when the stream goes quiet with runs still missing, the wait asks the
// store.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "bench.h"
#include "clock.h"
#include "event.h"

#include <nng/protocol/pubsub0/sub.h>

#define WATCH_QUIET_MS 1000 // no event for this long: poll the store

// watch_terminal reports whether type ends a run, and *ok whether it
// ended well.
static bool
watch_terminal(const char *type, bool *ok)
{
	enum weft_event_type t;

	*ok = false;
	if (!weft_event_from_name(type, &t) ||
	    weft_event_scope(t) != WEFT_EV_SCOPE_RUN || !weft_event_terminal(t)) {
		return (false);
	}
	*ok = t == WEFT_EV_RUN_SUCCEEDED;
	return (true);
}

// watch_note records a run's end (first sighting wins). Caller holds mx.
static void
watch_note(bench_watch *w, const char *run, bool ok, bool polled)
{
	bench_end *e;

	if (weft_map_get(&w->ended, run) != NULL) {
		return;
	}
	e          = weft_xalloc(sizeof(*e));
	e->mono_us = weft_clock_mono_us();
	e->ok      = ok;
	e->polled  = polled;
	weft_map_put(&w->ended, run, e);
}

static void
watch_batch(bench_watch *w, const Weft__EventBatch *b)
{
	pthread_mutex_lock(&w->mx);
	w->batches++;
	w->events += b->n_events;
	for (size_t i = 0; i < b->n_events; i++) {
		const Weft__Event *ev = b->events[i];
		bool               ok;
		if (ev->run_id[0] != '\0' && watch_terminal(ev->type, &ok)) {
			watch_note(w, ev->run_id, ok, false);
		}
	}
	pthread_mutex_unlock(&w->mx);
}

// watch_recv_cb runs on an nng thread for every message: decode, note the
// run ends, re-arm. Nothing in it blocks (mx is held only briefly). A
// callback rather than a thread blocked in nng_recvmsg saves a thread
// wake-up per message, which is a visible share of the bench's CPU.
static void
watch_recv_cb(void *arg)
{
	bench_watch    *w = arg;
	nng_msg        *msg;
	Weft__Envelope *env;
	int             rv;

	if ((rv = nng_aio_result(w->aio)) != 0) {
		if (rv != NNG_ECLOSED && rv != NNG_ECANCELED) {
			nng_recv_aio(w->sub, w->aio);
		}
		return;
	}
	msg = nng_aio_get_msg(w->aio);
	// Unverified: the bench measures the coordinator, not our HMAC.
	if (weft_wire_unpack(NULL, msg, 1, &env) == WEFT_OK) {
		if (env->body_case == WEFT__ENVELOPE__BODY_EVENTS) {
			watch_batch(w, env->events);
		}
		weft_wire_free(env);
	}
	nng_msg_free(msg);
	nng_recv_aio(w->sub, w->aio);
}

bool
bench_watch_start(bench_watch *w, const char *url, char *err, size_t errlen)
{
	pthread_condattr_t ca;
	int                rv;

	memset(w, 0, sizeof(*w));
	weft_map_init(&w->ended);
	pthread_mutex_init(&w->mx, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->cv, &ca);
	pthread_condattr_destroy(&ca);
	if ((rv = nng_sub0_open(&w->sub)) != 0) {
		snprintf(err, errlen, "sub0 socket: %s", nng_strerror(rv));
		return (false);
	}
	w->open = true;
	weft_wire_socket_limits(w->sub);
	// The deepest queue nng allows: W1 publishes tens of thousands of
	// events in a few hundred messages, W3 thousands of small ones.
	nng_socket_set_int(w->sub, NNG_OPT_RECVBUF, 8192);
	if ((rv = nng_socket_set(w->sub, NNG_OPT_SUB_SUBSCRIBE, "", 0)) != 0 ||
	    (rv = nng_dial(w->sub, url, NULL, 0)) != 0) {
		snprintf(err, errlen, "cannot follow events at %s: %s", url,
		    nng_strerror(rv));
		nng_close(w->sub);
		w->open = false;
		return (false);
	}
	if ((rv = nng_aio_alloc(&w->aio, watch_recv_cb, w)) != 0) {
		snprintf(err, errlen, "aio: %s", nng_strerror(rv));
		nng_close(w->sub);
		w->open = false;
		return (false);
	}
	nng_recv_aio(w->sub, w->aio);
	return (true);
}

void
bench_watch_stop(bench_watch *w)
{
	const char *k;
	void       *v;

	if (w->open) {
		// Close first (the pending receive fails and the callback
		// does not re-arm), then wait for any callback in flight.
		nng_close(w->sub);
		nng_aio_stop(w->aio);
		nng_aio_free(w->aio);
		w->open = false;
	}
	for (size_t i = 0; weft_map_each(&w->ended, &i, &k, &v);) {
		free(v);
	}
	weft_map_fini(&w->ended);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mx);
}

void
bench_watch_counts(bench_watch *w, uint64_t *events, uint64_t *batches)
{
	pthread_mutex_lock(&w->mx);
	*events  = w->events;
	*batches = w->batches;
	pthread_mutex_unlock(&w->mx);
}

// watch_poll asks the store about runs the stream has not ended (done[i]
// false) and notes those that have. Called without mx held.
static void
watch_poll(bench_watch *w, bench_client *cl, char **ids, size_t n,
    const bool *done, int64_t deadline_us)
{
	char err[256];

	for (size_t i = 0; i < n && weft_clock_mono_us() < deadline_us; i++) {
		json_t     *run;
		const char *st;
		if (done[i] || bench_stopping) {
			continue;
		}
		if ((run = bench_client_status(cl, ids[i], err, sizeof(err))) ==
		    NULL) {
			continue;
		}
		st = json_string_value(json_object_get(run, "status"));
		if (st != NULL &&
		    (strcmp(st, "succeeded") == 0 || strcmp(st, "failed") == 0 ||
		        strcmp(st, "cancelled") == 0 ||
		        strcmp(st, "timed_out") == 0)) {
			pthread_mutex_lock(&w->mx);
			watch_note(w, ids[i], strcmp(st, "succeeded") == 0, true);
			pthread_mutex_unlock(&w->mx);
		}
		json_decref(run);
	}
}

bool
bench_watch_wait(bench_watch *w, bench_client *cl, char **ids, size_t n,
    int64_t deadline_us, int64_t *last_us, size_t *nfailed, size_t *polled)
{
	bool    *done   = weft_xalloc(n * sizeof(*done));
	size_t   ndone  = 0;
	uint64_t seen   = 0;
	size_t   nended = (size_t) -1; // size of w->ended at the last scan
	int64_t  quiet  = weft_clock_mono_us();
	bool     ok     = false;

	memset(done, 0, n * sizeof(*done));
	*last_us = 0;
	*nfailed = 0;
	*polled  = 0;
	pthread_mutex_lock(&w->mx);
	for (;;) {
		int64_t         now = weft_clock_mono_us();
		struct timespec ts;

		// Scanning is O(runs left): only when something ended.
		for (size_t i = 0; nended != w->ended.count && i < n; i++) {
			bench_end *e;
			if (done[i] || (e = weft_map_del(&w->ended, ids[i])) == NULL) {
				continue;
			}
			done[i] = true;
			ndone++;
			*last_us = e->mono_us > *last_us ? e->mono_us : *last_us;
			*nfailed += !e->ok;
			*polled += e->polled;
			free(e);
		}
		nended = w->ended.count;
		if (ndone == n) {
			ok = true;
			break;
		}
		if (bench_stopping || now >= deadline_us) {
			break;
		}
		if (w->events != seen) {
			seen  = w->events;
			quiet = now;
		} else if (now - quiet > WATCH_QUIET_MS * 1000) {
			pthread_mutex_unlock(&w->mx);
			watch_poll(w, cl, ids, n, done, deadline_us);
			pthread_mutex_lock(&w->mx);
			quiet = weft_clock_mono_us();
			continue;
		}
		clock_gettime(CLOCK_MONOTONIC, &ts);
		// The receiver stamps each end as it arrives, so waking every
		// 20 ms costs no accuracy, and nothing signals per event.
		ts.tv_nsec += 20 * 1000 * 1000;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&w->cv, &w->mx, &ts);
	}
	pthread_mutex_unlock(&w->mx);
	free(done);
	return (ok);
}
