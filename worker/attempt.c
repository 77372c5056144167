// attempt: one accepted step attempt: its copy of the assignment, its abort
// flag and wake-ups, its heartbeats and progress, and turning a handler
// call into a weft_result. Also the weft_step_* helpers handlers use to
// wait and to report exec details, and weft_attempt_heartbeat.
// pipe2 (O_CLOEXEC at creation: a slot may fork an exec child any time).
#define _GNU_SOURCE
#include "worker_impl.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "clock.h"
#include "jsonx.h"
#include "log.h"

void
worker_attempt_key(char *out, size_t len, const char *run, const char *step,
    uint32_t attempt)
{
	snprintf(out, len, "%s/%s/%u", run, step, attempt);
}

weft_attempt *
worker_attempt_alloc(const Weft__Assignment *a, json_t *shared,
    const worker_step *step)
{
	weft_attempt *att = weft_xalloc(sizeof(*att));
	char          key[WORKER_KEY_MAX];

	att->run_id     = weft_xstrdup(a->run_id ? a->run_id : "");
	att->step_id    = weft_xstrdup(a->step_id ? a->step_id : "");
	att->type       = weft_xstrdup(a->type ? a->type : "");
	att->input_json = weft_xstrdup(a->input_json ? a->input_json : "");
	att->attempt    = a->attempt;
	att->shared     = a->shared && shared != NULL ? json_incref(shared) : NULL;
	att->max_output = a->max_output;
	att->timeout_ms = a->timeout_ms;
	att->heartbeat_timeout_ms = a->heartbeat_timeout_ms;
	att->step       = step;
	worker_attempt_key(key, sizeof(key), att->run_id, att->step_id,
	    att->attempt);
	att->key     = weft_xstrdup(key);
	snprintf(key, sizeof(key), "%s/%s", att->run_id, att->step_id);
	att->idem    = weft_xstrdup(key);
	att->wake[0] = -1;
	att->wake[1] = -1;
	pthread_mutex_init(&att->lock, NULL);
	weft_clock_cond_init(&att->cv);
	return (att);
}

void
worker_attempt_free(weft_attempt *att)
{
	if (att == NULL) {
		return;
	}
	for (int i = 0; i < 2; i++) {
		if (att->wake[i] >= 0) {
			close(att->wake[i]);
		}
	}
	pthread_cond_destroy(&att->cv);
	pthread_mutex_destroy(&att->lock);
	free(att->run_id);
	free(att->step_id);
	free(att->type);
	free(att->input_json);
	json_decref(att->shared);
	free(att->key);
	free(att->idem);
	free(att->stderr_tail);
	free(att->progress);
	free(att);
}

void
worker_attempt_abort(weft_attempt *att)
{
	pthread_mutex_lock(&att->lock);
	if (!att->aborted) {
		att->aborted = true;
		pthread_cond_broadcast(&att->cv);
		if (att->wake[1] >= 0) {
			// Non-blocking and one byte: it cannot fill the pipe.
			(void) !write(att->wake[1], "a", 1);
		}
	}
	pthread_mutex_unlock(&att->lock);
}

// attempt_result_new makes a result carrying att's identity.
static weft_result *
attempt_result_new(const weft_attempt *att)
{
	weft_result *r = weft_xalloc(sizeof(*r));

	r->run_id  = weft_xstrdup(att->run_id);
	r->step_id = weft_xstrdup(att->step_id);
	r->attempt = att->attempt;
	return (r);
}

weft_result *
worker_attempt_failed(const weft_attempt *att, const char *err)
{
	weft_result *r = attempt_result_new(att);

	r->ok          = false;
	r->error       = weft_xstrdup(err);
	r->started_ms  = (uint64_t) weft_clock_wall_ms();
	r->finished_ms = r->started_ms;
	return (r);
}

// attempt_parse_input decodes the input document; "" counts as null.
static json_t *
attempt_parse_input(const weft_attempt *att, char **error)
{
	json_error_t je;
	json_t      *doc;
	char         buf[512];

	if (att->input_json[0] == '\0') {
		return (json_null());
	}
	doc = json_loads(att->input_json, JSON_DECODE_ANY, &je);
	if (doc == NULL) {
		snprintf(buf, sizeof(buf), "input_json is not JSON: %s",
		    je.text);
		*error = weft_xstrdup(buf);
	}
	if (doc != NULL && att->shared != NULL && json_is_object(doc)) {
		// The run's input and params, shared by its attempts: one
		// object each, referenced, never copied per attempt.
		json_object_set(doc, "input",
		    json_object_get(att->shared, "input"));
		json_object_set(doc, "params",
		    json_object_get(att->shared, "params"));
	}
	return (doc);
}

weft_result *
worker_attempt_run(weft_attempt *att)
{
	weft_result  *r      = attempt_result_new(att);
	json_t       *input  = NULL;
	json_t       *output = NULL;
	char         *error  = NULL;
	weft_step_ctx ctx;
	int           rc = -1;

	memset(&ctx, 0, sizeof(ctx));
	ctx.run_id          = att->run_id;
	ctx.step_id         = att->step_id;
	ctx.attempt         = att->attempt;
	ctx.idempotency_key = att->idem;
	ctx.timeout_ms      = att->timeout_ms;
	ctx.heartbeat_timeout_ms = att->heartbeat_timeout_ms;
	ctx.att             = att;
	r->started_ms       = (uint64_t) weft_clock_wall_ms();
	// The start is the first heartbeat: silence counts from here, not
	// from the time the attempt waited in the queue.
	pthread_mutex_lock(&att->lock);
	att->beat_mono = weft_clock_mono_ms();
	pthread_mutex_unlock(&att->lock);
	if (att->timeout_ms > 0) {
		ctx.deadline_ms = weft_clock_mono_ms() + att->timeout_ms;
	}
	// Whatever this thread logs meanwhile names the attempt.
	weft_log_ctx_set(att->run_id, att->step_id, att->attempt);
	// The built-in noop reads nothing of its input, which is not decoded
	// for it then: a join after 10,000 steps would parse ~450 KB of its
	// dependencies' states (10-20 ms, at the end of the run) for nothing.
	input = att->step->fn == weft_step_noop
	    ? json_null()
	    : attempt_parse_input(att, &error);
	if (input != NULL) {
		rc = att->step->fn(att->step->arg, &ctx, input, &output, &error);
	}
	weft_log_ctx_clear();
	r->finished_ms = (uint64_t) weft_clock_wall_ms();
	r->ok          = rc == 0;
	if (r->ok) {
		r->output_json = weft_json_dump(output);
		size_t len     = strlen(r->output_json);
		if (att->max_output > 0 && len > att->max_output) {
			// Failed here, at once, rather than sent: the
			// coordinator would refuse it the same way.
			char msg[200];
			snprintf(msg, sizeof(msg),
			    "output too large: %zu bytes, over the step output "
			    "limit of %llu bytes (--max-output)",
			    len, (unsigned long long) att->max_output);
			free(r->output_json);
			r->output_json = NULL;
			r->ok          = false;
			r->error       = weft_xstrdup(msg);
		}
	} else {
		r->error = error ? error : weft_xstrdup("step failed");
		error    = NULL;
	}
	pthread_mutex_lock(&att->lock);
	att->done      = true; // its result speaks for it now
	r->exit_code   = att->exit_code;
	r->stderr_tail = att->stderr_tail;
	att->stderr_tail = NULL;
	pthread_mutex_unlock(&att->lock);
	free(error);
	json_decref(output);
	json_decref(input);
	return (r);
}

void
weft_result_free(weft_result *r)
{
	if (r == NULL) {
		return;
	}
	free(r->run_id);
	free(r->step_id);
	free(r->output_json);
	free(r->error);
	free(r->stderr_tail);
	free(r);
}

bool
weft_step_aborted(const weft_step_ctx *ctx)
{
	bool aborted;

	pthread_mutex_lock(&ctx->att->lock);
	aborted = ctx->att->aborted;
	pthread_mutex_unlock(&ctx->att->lock);
	return (aborted);
}

weft_err
weft_step_sleep(const weft_step_ctx *ctx, int64_t ms)
{
	weft_attempt   *att = ctx->att;
	int64_t         end = weft_clock_mono_ms() + (ms > 0 ? ms : 0);
	weft_err        err = WEFT_OK;
	struct timespec ts;

	if (ctx->deadline_ms > 0 && ctx->deadline_ms < end) {
		end = ctx->deadline_ms;
		err = WEFT_ETIMEDOUT;
	}
	// The condition variable runs on CLOCK_MONOTONIC, like weft_clock.
	ts.tv_sec  = (time_t) (end / 1000);
	ts.tv_nsec = (long) (end % 1000) * 1000000L;
	pthread_mutex_lock(&att->lock);
	while (!att->aborted && weft_clock_mono_ms() < end) {
		pthread_cond_timedwait(&att->cv, &att->lock, &ts);
	}
	if (att->aborted) {
		err = WEFT_ECLOSED;
	}
	pthread_mutex_unlock(&att->lock);
	return (err);
}

int
weft_step_abort_fd(const weft_step_ctx *ctx)
{
	weft_attempt *att = ctx->att;
	int           fd;

	pthread_mutex_lock(&att->lock);
	if (att->wake[0] < 0) {
		if (pipe2(att->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
			att->wake[0] = -1;
			att->wake[1] = -1;
		} else if (att->aborted) {
			(void) !write(att->wake[1], "a", 1);
		}
	}
	fd = att->wake[0];
	pthread_mutex_unlock(&att->lock);
	return (fd);
}

void
weft_step_set_exec(
    const weft_step_ctx *ctx, int exit_code, const char *stderr_tail)
{
	weft_attempt *att = ctx->att;

	pthread_mutex_lock(&att->lock);
	att->exit_code = exit_code;
	free(att->stderr_tail);
	att->stderr_tail = weft_xstrdup(stderr_tail);
	pthread_mutex_unlock(&att->lock);
}

int
worker_step_error(char **error, const char *fmt, ...)
{
	char    buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	*error = weft_xstrdup(buf);
	return (-1);
}

// ---- heartbeats and progress ----

void
worker_attempt_auto_beat(weft_attempt *att, bool on)
{
	pthread_mutex_lock(&att->lock);
	att->auto_beats += on ? 1 : -1;
	// Silence after an automatic beat counts from its end.
	att->beat_mono = weft_clock_mono_ms();
	pthread_mutex_unlock(&att->lock);
}

weft_err
worker_attempt_set_progress(weft_attempt *att, const json_t *v)
{
	char    *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	weft_err err  = WEFT_OK;

	pthread_mutex_lock(&att->lock);
	att->beat_mono = weft_clock_mono_ms();
	if (text == NULL || strlen(text) > WEFT_WIRE_PROGRESS_MAX) {
		err = WEFT_ETOOBIG;
	} else {
		free(att->progress);
		att->progress = text;
		text          = NULL;
	}
	pthread_mutex_unlock(&att->lock);
	free(text);
	return (err);
}

weft_err
weft_attempt_heartbeat(weft_attempt *a, const char *progress_json)
{
	json_t  *v;
	weft_err err;

	if (progress_json == NULL) {
		pthread_mutex_lock(&a->lock);
		a->beat_mono = weft_clock_mono_ms();
		pthread_mutex_unlock(&a->lock);
		return (WEFT_OK);
	}
	if ((v = json_loads(progress_json, JSON_DECODE_ANY, NULL)) == NULL) {
		weft_attempt_heartbeat(a, NULL);
		return (WEFT_EINVAL);
	}
	err = worker_attempt_set_progress(a, v);
	json_decref(v);
	return (err == WEFT_OK ? WEFT_OK : WEFT_EINVAL);
}

// attempt_beat_new makes the AttemptBeat of att (locked by the caller), or
// NULL when it has nothing to say: no heartbeat timeout and no progress,
// not started yet, or its handler returned.
static Weft__AttemptBeat *
attempt_beat_new(const weft_attempt *att, int64_t now, size_t *budget)
{
	Weft__AttemptBeat *b;

	if (att->beat_mono == 0 || att->done ||
	    (att->heartbeat_timeout_ms == 0 && att->progress == NULL)) {
		return (NULL);
	}
	b = weft_xalloc(sizeof(*b));
	weft__attempt_beat__init(b);
	b->run_id  = weft_xstrdup(att->run_id);
	b->step_id = weft_xstrdup(att->step_id);
	b->attempt = att->attempt;
	b->silent_ms = att->auto_beats > 0 || now < att->beat_mono
	    ? 0
	    : (uint64_t) (now - att->beat_mono);
	if (att->progress != NULL && strlen(att->progress) <= *budget) {
		b->progress_json = weft_xstrdup(att->progress);
		*budget -= strlen(att->progress);
	} else {
		b->progress_json = weft_xstrdup("");
	}
	return (b);
}

size_t
worker_attempt_beats(
    weft_worker *w, Weft__AttemptBeat **out, size_t max, size_t budget)
{
	worker_pool *p   = &w->pool;
	int64_t      now = weft_clock_mono_ms();
	weft_qnode  *node;
	size_t       n = 0;

	// Pool lock, then each attempt's: the pool's lock order.
	pthread_mutex_lock(&p->lock);
	WEFT_QUEUE_FOREACH (node, &p->running) {
		weft_attempt *att = WEFT_QUEUE_ENTRY(node, weft_attempt, node);
		if (n == max) {
			break;
		}
		pthread_mutex_lock(&att->lock);
		if ((out[n] = attempt_beat_new(att, now, &budget)) != NULL) {
			n++;
		}
		pthread_mutex_unlock(&att->lock);
	}
	pthread_mutex_unlock(&p->lock);
	return (n);
}

void
worker_attempt_beats_free(Weft__AttemptBeat **beats, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(beats[i]->run_id);
		free(beats[i]->step_id);
		free(beats[i]->progress_json);
		free(beats[i]);
	}
}
