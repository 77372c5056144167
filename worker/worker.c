// worker: lifecycle of a worker node (open, start, stop, close), its step
// type registry, and the running of one attempt into a result. The sockets
// and threads live in dispatch.c, discovery.c, pool.c and outbox.c.
// realpath is XSI, beyond _POSIX_C_SOURCE.
#define _XOPEN_SOURCE 700
#include "worker_impl.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "clock.h"
#include "cookie.h"
#include "jsonx.h"
#include "log.h"

static const struct {
	const char  *type;
	weft_step_fn fn;
	bool         wants_worker; // arg is the worker
} worker_builtins[] = {
	{ "noop", weft_step_noop, false },
	{ "echo", weft_step_echo, false },
	{ "pass", weft_step_pass, false },
	{ "sleep", weft_step_sleep_fn, false },
	{ "fail", weft_step_fail, false },
	{ "exec", weft_step_exec, true },
};

// worker_default_name returns "<hostname>-<pid>" (malloc'd).
static char *
worker_default_name(void)
{
	char host[256];
	char buf[300];

	if (gethostname(host, sizeof(host)) != 0) {
		snprintf(host, sizeof(host), "worker");
	}
	host[sizeof(host) - 1] = '\0';
	snprintf(buf, sizeof(buf), "%s-%ld", host, (long) getpid());
	return (weft_xstrdup(buf));
}

// worker_set_allow resolves the --exec-allow directories once, so every
// exec compares against canonical paths.
static weft_err
worker_set_allow(weft_worker *w, const weft_worker_cfg *cfg)
{
	char path[PATH_MAX];

	w->allow = weft_xalloc(sizeof(char *) * (cfg->n_exec_allow + 1));
	for (size_t i = 0; i < cfg->n_exec_allow; i++) {
		if (realpath(cfg->exec_allow[i], path) == NULL) {
			weft_log_err("WORKER-CONFIG", "exec_allow=%s error=\"%s\"",
			    cfg->exec_allow[i], strerror(errno));
			return (WEFT_EINVAL);
		}
		w->allow[w->nallow++] = weft_xstrdup(path);
	}
	return (WEFT_OK);
}

// worker_spool_dir resolves the spool setting (borrowed) for node name:
// NULL or "" for none, the default place, or a directory (malloc'd).
static char *
worker_spool_dir(const char *spool, const char *name)
{
	char rel[300], dir[4200];

	if (spool == NULL || spool[0] == '\0') {
		return (NULL);
	}
	if (strcmp(spool, WEFT_WORKER_SPOOL_DEFAULT) != 0) {
		return (weft_xstrdup(spool));
	}
	// One directory per name: a worker restarted under its name finds
	// what it left. A name is not a path.
	snprintf(rel, sizeof(rel), "worker/%s", name);
	for (char *p = rel + 7; *p != '\0'; p++) {
		if (*p == '/' || (p == rel + 7 && *p == '.')) {
			*p = '_';
		}
	}
	weft_home_path(rel, dir, sizeof(dir));
	return (weft_xstrdup(dir));
}

weft_err
weft_worker_open(weft_worker **out, const weft_worker_cfg *cfg)
{
	weft_worker *w = weft_xalloc(sizeof(*w));
	weft_err     err;

	w->join_url   = weft_xstrdup(
            cfg->join_url ? cfg->join_url : WEFT_WORKER_DEFAULT_JOIN);
	w->listen_url = weft_xstrdup(
	    cfg->listen_url ? cfg->listen_url : WEFT_WORKER_DEFAULT_LISTEN);
	w->name = cfg->name && cfg->name[0] ? weft_xstrdup(cfg->name)
	                                    : worker_default_name();
	w->slots = cfg->slots ? cfg->slots : WEFT_WORKER_DEFAULT_SLOTS;
	// The most this worker accepts beyond its slots. The coordinator
	// decides how much of it to use: about 20 ms of work per slot, from
	// the durations it observes, so fast steps stream and slow ones are
	// not hoarded.
	w->queue = cfg->queue >= 0 ? (uint32_t) cfg->queue
	                           : WEFT_WORKER_DEFAULT_QUEUE;
	w->ack_timeout_ms = cfg->ack_timeout_ms > 0 ? cfg->ack_timeout_ms
	                                            : WEFT_WORKER_ACK_TIMEOUT;
	w->batch_max      = cfg->batch_max ? cfg->batch_max
	                                   : WEFT_WORKER_BATCH_MAX;
	w->tls = cfg->tls;
	w->drain_timeout_ms = cfg->drain_timeout_ms > 0
	    ? cfg->drain_timeout_ms
	    : WEFT_WORKER_DRAIN_TIMEOUT;
	w->spool_dir = worker_spool_dir(cfg->spool, w->name);
	weft_wire_init(&w->wire, w->name);
	if (cfg->cookie != NULL) {
		weft_wire_set_key(&w->wire, cfg->cookie,
		    cfg->clock_skew_ms > 0 ? cfg->clock_skew_ms
		                           : WEFT_CLOCK_SKEW_MS);
	}
	pthread_mutex_init(&w->coord_lock, NULL);
	worker_dispatch_init(&w->dispatch);
	w->dispatch.reply_wait_ms = cfg->reply_wait_ms == 0
	    ? WEFT_WORKER_REPLY_WAIT_MS
	    : cfg->reply_wait_ms < 0 ? 0 : cfg->reply_wait_ms;
	w->on_refused     = cfg->on_refused;
	w->on_refused_arg = cfg->on_refused_arg;
	worker_pool_init(&w->pool);
	worker_outbox_init(&w->outbox);
	if (cfg->spool_after_ms > 0) {
		w->outbox.spool_after_ms = cfg->spool_after_ms;
	}
	if (w->slots > 4096) {
		weft_log_err("WORKER-CONFIG", "slots=%u error=\"too many\"",
		    w->slots);
		err = WEFT_EINVAL;
		goto fail;
	}
	if ((err = worker_set_allow(w, cfg)) != WEFT_OK) {
		goto fail;
	}
	for (size_t i = 0; i < sizeof(worker_builtins) /
	         sizeof(worker_builtins[0]);
	     i++) {
		if (worker_builtins[i].fn == weft_step_exec && w->nallow == 0) {
			continue; // nothing it could run: not advertised
		}
		weft_worker_register(w, worker_builtins[i].type,
		    worker_builtins[i].fn,
		    worker_builtins[i].wants_worker ? w : NULL);
	}
	*out = w;
	return (WEFT_OK);
fail:
	weft_worker_close(w);
	return (err);
}

weft_err
weft_worker_register(
    weft_worker *w, const char *type, weft_step_fn fn, void *arg)
{
	if (w->started) {
		return (WEFT_ESTATE);
	}
	if (type == NULL || type[0] == '\0' || fn == NULL ||
	    w->nsteps == WEFT_WORKER_MAX_TYPES) {
		return (WEFT_EINVAL);
	}
	if (worker_step_find(w, type) != NULL) {
		return (WEFT_EEXIST);
	}
	w->steps[w->nsteps].type = weft_xstrdup(type);
	w->steps[w->nsteps].fn   = fn;
	w->steps[w->nsteps].arg  = arg;
	w->nsteps++;
	return (WEFT_OK);
}

const worker_step *
worker_step_find(const weft_worker *w, const char *type)
{
	for (size_t i = 0; i < w->nsteps; i++) {
		if (strcmp(w->steps[i].type, type) == 0) {
			return (&w->steps[i]);
		}
	}
	return (NULL);
}

// worker_spool_start opens the spool and queues what it holds.
static weft_err
worker_spool_start(weft_worker *w)
{
	char     err[8500];
	uint32_t nres;
	weft_err rv;

	if (w->spool_dir == NULL) {
		return (WEFT_OK);
	}
	if ((rv = worker_spool_open(&w->spool, w->spool_dir, err,
	         sizeof(err))) != WEFT_OK) {
		weft_log_err("SPOOL-OPEN", "%s", err);
		return (rv);
	}
	worker_spool_load(w->spool, &w->outbox, &nres);
	w->spool_restored = nres;
	if (nres > 0) {
		weft_log_notice("SPOOL-RESTORED",
		    "dir=%s results=%u: results not acked before are sent again",
		    w->spool_dir, nres);
	}
	return (WEFT_OK);
}

weft_err
weft_worker_drain(weft_worker *w, int64_t timeout_ms)
{
	int64_t  start = weft_clock_mono_ms();
	int64_t  deadline, flush;
	char   **keys;
	size_t   n;
	bool     idle, flushed;
	uint32_t queued, running;

	if (!w->started) {
		return (WEFT_ESTATE);
	}
	if (timeout_ms <= 0) {
		timeout_ms = w->drain_timeout_ms;
	}
	deadline = start + timeout_ms;
	atomic_store(&w->draining, true);
	n = worker_pool_stop_taking(w, &keys);
	worker_pool_counts(&w->pool, &queued, &running);
	weft_log_notice("WORKER-DRAIN",
	    "name=%s released=%zu running=%u drain_timeout_ms=%lld", w->name, n,
	    running, (long long) timeout_ms);
	worker_outbox_goodbye(&w->outbox, keys, n, false, (uint64_t) timeout_ms);
	if (!(idle = worker_pool_wait_idle(w, deadline))) {
		weft_log_warn("WORKER-DRAIN-CUT",
		    "name=%s: running attempts past the drain timeout are "
		    "aborted and reported lost", w->name);
		worker_pool_cut(w);
		idle = worker_pool_wait_idle(w,
		    weft_clock_mono_ms() + WORKER_CUT_MS);
	}
	// From here on every attempt is settled: its result is in the
	// outbox (put as it left the running list), or it is named lost,
	// and no result of one named lost is ever sent. A handler that
	// succeeds after this is too late: the last goodbye, which the
	// coordinator reads as "every attempt not named was reported or
	// never ran here", must not be followed by a result.
	n = worker_pool_take_lost(w, &keys);
	// What is left is acks, which take a round trip and a commit. A
	// coordinator that gives none in this long is away.
	flush   = weft_clock_mono_ms() + WORKER_FLUSH_MS;
	flushed = worker_outbox_wait_flushed(&w->outbox, flush);
	if (flushed) {
		worker_outbox_goodbye(&w->outbox, keys, n, true, 0);
		flushed = worker_outbox_wait_flushed(&w->outbox, flush);
	} else {
		for (size_t k = 0; k < n; k++) {
			free(keys[k]);
		}
		free(keys);
	}
	weft_log_notice("WORKER-DRAINED",
	    "name=%s acked=%s lost=%zu took_ms=%lld%s", w->name,
	    flushed ? "all" : "NOT ALL (coordinator unreachable)", n,
	    (long long) (weft_clock_mono_ms() - start),
	    idle ? "" : " (a handler did not stop when aborted)");
	return (flushed ? WEFT_OK : WEFT_ETIMEDOUT);
}

weft_err
weft_worker_start(weft_worker *w)
{
	weft_err err;

	if (w->started) {
		return (WEFT_ESTATE);
	}
	w->started    = true;
	w->started_ms = weft_clock_wall_ms();
	// The spool first: what it holds is queued before anyone can ask
	// what we hold (a survey answer lists it).
	if ((err = worker_spool_start(w)) != WEFT_OK) {
		w->started = false;
		return (err);
	}
	// Order: the pool and the sender exist before anything can hand them
	// work; discovery comes last so the advertised dispatch URL is real.
	if ((err = worker_pool_start(w)) != WEFT_OK ||
	    (err = worker_outbox_start(w)) != WEFT_OK ||
	    (err = worker_dispatch_start(w)) != WEFT_OK ||
	    (err = worker_discovery_start(w)) != WEFT_OK) {
		weft_worker_stop(w);
		return (err);
	}
	weft_log_info("WORKER-START",
	    "name=%s listen=%s join=%s slots=%u queue=%u exec_allow=%zu "
	    "spool=%s",
	    w->name, w->dispatch_url, w->join_url, w->slots, w->queue,
	    w->nallow, w->spool_dir ? w->spool_dir : "none");
	return (WEFT_OK);
}

void
weft_worker_stop(weft_worker *w)
{
	if (w == NULL || !w->started) {
		return;
	}
	// No new work first, then no more surveys, then the attempts in
	// flight (aborted), and the sender last.
	worker_dispatch_stop(w);
	worker_discovery_stop(w);
	worker_pool_stop(w);
	worker_outbox_stop(w);
	worker_outbox_spool(w);
	// Nothing left to lose: the files go, so a worker named after its
	// pid leaves no spool per run behind.
	worker_spool_close(w->spool, true);
	w->spool   = NULL;
	w->started = false;
}

void
weft_worker_close(weft_worker *w)
{
	if (w == NULL) {
		return;
	}
	weft_worker_stop(w);
	worker_pool_fini(&w->pool);
	worker_outbox_fini(&w->outbox);
	for (size_t i = 0; i < w->nsteps; i++) {
		free(w->steps[i].type);
	}
	for (size_t i = 0; i < w->nallow; i++) {
		free(w->allow[i]);
	}
	free(w->allow);
	free(w->name);
	free(w->join_url);
	free(w->listen_url);
	free(w->spool_dir);
	weft_wire_fini(&w->wire);
	pthread_mutex_destroy(&w->coord_lock);
	worker_dispatch_fini(&w->dispatch);
	free(w);
}

const char *
weft_worker_name(const weft_worker *w)
{
	return (w->name);
}

const char *
weft_worker_dispatch_url(const weft_worker *w)
{
	return (w->dispatch_url);
}

void
weft_worker_stats_get(weft_worker *w, weft_worker_stats *st)
{
	memset(st, 0, sizeof(*st));
	worker_pool_counts(&w->pool, &st->queued, &st->running);
	st->held          = worker_outbox_held(&w->outbox);
	st->batches_sent  = atomic_load(&w->outbox.sent);
	st->batches_acked = atomic_load(&w->outbox.acked);
	st->dropped       = atomic_load(&w->dropped);
	st->spooled       = atomic_load(&w->outbox.nspooled);
	st->replied       = atomic_load(&w->outbox.nreplied);
	st->replied_acked = atomic_load(&w->outbox.nreplied_acked);
}

void
worker_thread_begin(const char *name)
{
	sigset_t set;

	weft_thread_name(name);
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
}

void
worker_drop(weft_worker *w, const char *where, weft_err err, nng_msg *msg)
{
	atomic_fetch_add(&w->dropped, 1);
	weft_wire_log_drop(where, err, msg);
}

weft_err
weft_worker_run_local(
    weft_worker *w, const Weft__Assignment *a, weft_result **out)
{
	const worker_step *step = worker_step_find(w, a->type);
	weft_attempt      *att;

	if (step == NULL) {
		return (WEFT_ENOENT);
	}
	att  = worker_attempt_alloc(a, NULL, step);
	*out = worker_attempt_run(att);
	worker_attempt_free(att);
	return (WEFT_OK);
}

uint64_t
weft_worker_incarnation(const weft_worker *w)
{
	return (w->wire.incarnation);
}

uint64_t
worker_coord_name(weft_worker *w, char *out, size_t len)
{
	uint64_t inc;

	pthread_mutex_lock(&w->coord_lock);
	snprintf(out, len, "%s", w->coord_name);
	inc = w->coord_inc;
	pthread_mutex_unlock(&w->coord_lock);
	return (inc);
}
