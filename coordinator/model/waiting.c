// waiting: the waiting_for object of a step, decided from its facts.
//
// One function per family of states; each names the code, a sentence for
// people, and the facts behind it as fields, so a script need not parse
// the sentence.
#include "waiting.h"

#include <stdio.h>
#include <string.h>

#include "clock.h"

static json_t *
waiting_make(const char *reason, const char *message)
{
	return (json_pack("{s:s, s:s}", "reason", reason, "message", message));
}

// waiting_deps: a pending step names the dependencies it waits for.
static json_t *
waiting_deps(const weft_wait_facts *f)
{
	char    msg[512] = "waiting for its dependencies";
	size_t  len, k;
	json_t *d;
	json_t *o;

	if (json_array_size(f->deps) > 0) {
		len = (size_t) snprintf(msg, sizeof(msg), "waiting for");
		json_array_foreach (f->deps, k, d) {
			if (len >= sizeof(msg) - 8) {
				snprintf(msg + sizeof(msg) - 8, 8, ", ...");
				break;
			}
			len += (size_t) snprintf(msg + len, sizeof(msg) - len,
			    "%s %s", k > 0 ? "," : "", json_string_value(d));
		}
	}
	o = waiting_make(WEFT_WAIT_DEPENDENCIES, msg);
	json_object_set_new(o, "dependencies",
	    f->deps != NULL ? json_incref(f->deps) : json_array());
	return (o);
}

// waiting_ready: a ready step waits for a worker (or for the run to
// resume); an armed schedule timeout is said in every case.
static json_t *
waiting_ready(const weft_wait_facts *f)
{
	char    msg[512];
	char    ts[48];
	json_t *o;

	if (f->run_paused) {
		o = waiting_make(WEFT_WAIT_PAUSED,
		    "the run is paused: nothing new is dispatched until it is "
		    "resumed");
	} else if (!f->type_known || !f->advertised) {
		snprintf(msg, sizeof(msg),
		    "no live worker advertises step type \"%s\"", f->type);
		o = waiting_make(WEFT_WAIT_NO_WORKER, msg);
		if (f->unadvertised_since_ms > 0) {
			json_object_set_new(o, "since_ms",
			    json_integer(f->unadvertised_since_ms));
		}
		if (f->unschedulable) {
			// Long enough for step_unschedulable: not a worker
			// that is about to join.
			json_object_set_new(o, "unschedulable", json_true());
		}
	} else if (f->type_limit > 0 && f->type_running >= f->type_limit) {
		snprintf(msg, sizeof(msg),
		    "step type \"%s\" is at its limit: %u of %u running "
		    "(--limit %s=%u)",
		    f->type, f->type_running, f->type_limit, f->type,
		    f->type_limit);
		o = waiting_make(WEFT_WAIT_TYPE_LIMIT, msg);
		json_object_set_new(o, "running", json_integer(f->type_running));
		json_object_set_new(o, "limit", json_integer(f->type_limit));
	} else if (f->free_slots == 0) {
		snprintf(msg, sizeof(msg),
		    "every worker advertising \"%s\" is full (%u ready ahead, "
		    "%u worker%s)",
		    f->type, f->queued, f->workers, f->workers == 1 ? "" : "s");
		o = waiting_make(WEFT_WAIT_WORKERS_FULL, msg);
		json_object_set_new(o, "queued", json_integer(f->queued));
		json_object_set_new(o, "workers", json_integer(f->workers));
	} else {
		snprintf(msg, sizeof(msg),
		    "a worker advertising \"%s\" has a free slot: being "
		    "dispatched", f->type);
		o = waiting_make(WEFT_WAIT_DISPATCHING, msg);
	}
	json_object_set_new(o, "type", json_string(f->type));
	if (f->schedule_at_ms > 0) {
		const char *m = json_string_value(json_object_get(o, "message"));
		snprintf(msg, sizeof(msg), "%s; schedule timeout at %s", m,
		    weft_clock_format_rfc3339(f->schedule_at_ms, ts));
		json_object_set_new(o, "message", json_string(msg));
		json_object_set_new(
		    o, "schedule_timeout_at_ms", json_integer(f->schedule_at_ms));
	}
	return (o);
}

static json_t *
waiting_retry(const weft_wait_facts *f)
{
	char    msg[128];
	char    ts[48];
	json_t *o;

	if (f->retry_until_ms <= 0) {
		return (waiting_make(WEFT_WAIT_RETRY_BACKOFF,
		    "waiting out the retry backoff"));
	}
	snprintf(msg, sizeof(msg), "retry backoff until %s",
	    weft_clock_format_rfc3339(f->retry_until_ms, ts));
	o = waiting_make(WEFT_WAIT_RETRY_BACKOFF, msg);
	json_object_set_new(o, "until_ms", json_integer(f->retry_until_ms));
	return (o);
}

// waiting_hold: a running step the coordinator holds waits for a signal
// (which the dashboard's Approve/Reject buttons send) or for a time.
static json_t *
waiting_hold(const weft_wait_facts *f)
{
	char    msg[400], ts[48], tail[96] = "";
	json_t *o;

	if (f->hold_timeout_at_ms > 0) {
		snprintf(tail, sizeof(tail), " (times out at %s)",
		    weft_clock_format_rfc3339(f->hold_timeout_at_ms, ts));
	}
	if (f->hold_child != NULL) {
		snprintf(msg, sizeof(msg), "waiting for its child run %.64s to "
		    "end%s", f->hold_child, tail);
		o = waiting_make(WEFT_WAIT_CHILD, msg);
		json_object_set_new(o, "child_run", json_string(f->hold_child));
	} else if (f->hold_signal != NULL) {
		snprintf(msg, sizeof(msg), "waiting for signal \"%s\"%s",
		    f->hold_signal, tail);
		o = waiting_make(WEFT_WAIT_SIGNAL, msg);
		json_object_set_new(o, "signal", json_string(f->hold_signal));
	} else {
		snprintf(msg, sizeof(msg), "waiting until %s%s",
		    f->hold_until_ms > 0
		        ? weft_clock_format_rfc3339(f->hold_until_ms, ts)
		        : "its time",
		    tail);
		o = waiting_make(WEFT_WAIT_TIMER, msg);
		if (f->hold_until_ms > 0) {
			json_object_set_new(
			    o, "until_ms", json_integer(f->hold_until_ms));
		}
	}
	if (f->hold_timeout_at_ms > 0) {
		json_object_set_new(o, "timeout_at_ms",
		    json_integer(f->hold_timeout_at_ms));
	}
	return (o);
}

// waiting_in_flight: dispatched and running steps are in a worker's
// hands; a map step's own row waits for its items.
static json_t *
waiting_in_flight(const weft_wait_facts *f)
{
	char        msg[256];
	const char *node = f->node != NULL && f->node[0] != '\0' ? f->node : "?";
	json_t     *o;

	if (f->is_map) {
		snprintf(msg, sizeof(msg), "waiting for its items: %lld of %lld ended",
		    (long long) json_integer_value(json_object_get(f->items, "done")),
		    (long long) json_integer_value(json_object_get(f->items, "total")));
		return (waiting_make(WEFT_WAIT_ITEMS, msg));
	}
	if (f->hold_signal != NULL || f->hold_timer || f->hold_child != NULL) {
		return (waiting_hold(f));
	}
	if (f->expansion != NULL) {
		// Its program has ended; what it planned has not.
		snprintf(msg, sizeof(msg),
		    "waiting for its expansion: %lld of %lld steps ended",
		    (long long) json_integer_value(json_object_get(f->expansion, "done")),
		    (long long) json_integer_value(json_object_get(f->expansion, "total")));
		return (waiting_make(WEFT_WAIT_EXPANSION, msg));
	}
	if (f->state == WEFT_STEP_DISPATCHED) {
		snprintf(msg, sizeof(msg),
		    "sent to worker %s, waiting for it to accept", node);
		o = waiting_make(WEFT_WAIT_ACCEPT, msg);
	} else {
		snprintf(msg, sizeof(msg), "running on worker %s", node);
		o = waiting_make(WEFT_WAIT_RUNNING, msg);
	}
	json_object_set_new(o, "node", json_string(node));
	return (o);
}

json_t *
weft_waiting_for(const weft_wait_facts *f)
{
	switch (f->state) {
	case WEFT_STEP_PENDING:
		return (waiting_deps(f));
	case WEFT_STEP_READY:
		return (waiting_ready(f));
	case WEFT_STEP_RETRY_WAIT:
		return (waiting_retry(f));
	case WEFT_STEP_DISPATCHED:
	case WEFT_STEP_RUNNING:
		return (waiting_in_flight(f));
	default:
		return (NULL); // ended: waits for nothing
	}
}
