// watch: following the coordinator's event stream. `weft watch` prints
// events as they happen and fills the gaps pub/sub leaves (it drops under
// load) from the store; `weft run --wait` waits for a run to end.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "clock.h"
#include "cli.h"

#define WATCH_PAGE 1000     // events asked for per EventsRequest
#define WATCH_IDLE_MS 1000  // ask the store after this long without events
#define WAIT_POLL_MS 1000   // `run --wait` asks for the status this often

// One `weft watch`: what has been printed so far.
typedef struct watch {
	weft_cli           *c;
	const char         *run;      // the run followed; NULL for every event
	enum weft_cli_evfmt fmt;      // line format
	uint64_t            last_id;  // id of the last event printed; 0: none
	uint64_t            last_seq; // its per-run seq (following one run)
	bool                done;     // the run's terminal event was printed
} watch;

// watch_emit prints one event (borrowed) unless it was printed already:
// the stream and the store overlap, and each id prints once, in order.
static void
watch_emit(watch *w, json_t *ev)
{
	uint64_t    id   = weft_cli_event_id(ev);
	json_t     *seq  = json_object_get(ev, "seq");
	const char *type = json_string_value(json_object_get(ev, "type"));

	if (id <= w->last_id) {
		return;
	}
	weft_cli_event_print(ev, w->fmt);
	w->last_id = id;
	if (json_is_integer(seq)) {
		w->last_seq = (uint64_t) json_integer_value(seq);
	}
	if (w->run != NULL && type != NULL && weft_cli_event_terminal(type)) {
		w->done = true;
	}
}

// watch_fetch prints the stored events after the last one printed and
// before stop_id, at most want of them (0: all there are), a page at a
// time. `after` is an event id cursor for one run as for all, so the
// cursor is always the last id printed. Returns an exit status.
static int
watch_fetch(watch *w, uint64_t stop_id, uint64_t want)
{
	Weft__ControlRequest req = WEFT__CONTROL_REQUEST__INIT;
	Weft__EventsRequest  er  = WEFT__EVENTS_REQUEST__INIT;
	json_t              *body, *ev, *norm;
	size_t               i, n;
	bool                 stop = false;
	uint64_t             before;
	int                  rv;

	req.req_case = WEFT__CONTROL_REQUEST__REQ_EVENTS;
	req.events   = &er;
	er.run_id    = (char *) (w->run != NULL ? w->run : "");
	while (!stop && !w->done) {
		before   = w->last_id;
		er.after = w->last_id;
		er.limit = want == 0 || want > WATCH_PAGE ? WATCH_PAGE
		                                          : (uint32_t) want;
		if ((rv = weft_cli_call(w->c, &req, &body)) != WEFT_CLI_OK) {
			return (rv);
		}
		n = json_array_size(body);
		json_array_foreach (body, i, ev) {
			norm = weft_cli_event_from_reply(ev);
			if (weft_cli_event_id(norm) >= stop_id) {
				stop = true;
			} else {
				watch_emit(w, norm);
			}
			json_decref(norm);
			if (stop || w->done) {
				break;
			}
		}
		json_decref(body);
		// A short page is the end of what the store holds; a page
		// that printed nothing new would only repeat.
		if (n < er.limit || w->last_id == before ||
		    (want != 0 && n >= want)) {
			break;
		}
		want = want != 0 ? want - n : 0;
	}
	return (WEFT_CLI_OK);
}

// watch_event handles one event from the stream (borrowed): first the
// events the stream lost before it, then the event itself. Following one
// run, a gap shows in its seq (its global ids are interleaved with other
// runs'); following everything, in the global id.
static void
watch_event(watch *w, const Weft__Event *ev)
{
	uint64_t missing = 0;
	json_t  *norm;

	if (w->run != NULL && ev->seq > w->last_seq + 1) {
		missing = ev->seq - w->last_seq - 1;
	} else if (w->run == NULL && w->last_id != 0 &&
	    ev->id > w->last_id + 1) {
		missing = ev->id - w->last_id - 1;
	}
	if (missing > 0) {
		// A failed fetch has been reported; print what we have.
		(void) watch_fetch(w, ev->id, missing);
	}
	norm = weft_cli_event_from_pb(ev);
	watch_emit(w, norm);
	json_decref(norm);
}

// watch_events_url asks the coordinator where its events are published
// (malloc'd into *url).
static int
watch_events_url(weft_cli *c, char **url)
{
	Weft__ControlRequest req  = WEFT__CONTROL_REQUEST__INIT;
	Weft__InfoRequest    info = WEFT__INFO_REQUEST__INIT;
	const char          *s;
	json_t              *body;
	int                  rv;

	req.req_case = WEFT__CONTROL_REQUEST__REQ_INFO;
	req.info     = &info;
	if ((rv = weft_cli_call(c, &req, &body)) != WEFT_CLI_OK) {
		return (rv);
	}
	s = json_string_value(json_object_get(body, "events_url"));
	if (s == NULL || s[0] == '\0') {
		fprintf(stderr, "weft: the coordinator did not say where its "
		                "events are (no events_url)\n");
		json_decref(body);
		return (WEFT_CLI_FAIL);
	}
	*url = weft_xstrdup(s);
	json_decref(body);
	return (WEFT_CLI_OK);
}

int
weft_cli_cmd_watch(weft_cli *c)
{
	watch           w = { 0 };
	Weft__Envelope *env;
	nng_socket      sub;
	char           *url = NULL, topic[256] = "";
	int             rv, got;

	w.c   = c;
	w.run = c->nargs > 0 ? c->args[0] : NULL;
	w.fmt = c->json ? WEFT_CLI_EV_JSON : WEFT_CLI_EV_TEXT;
	if ((rv = watch_events_url(c, &url)) != WEFT_CLI_OK) {
		return (rv);
	}
	if (w.run != NULL) {
		snprintf(topic, sizeof(topic), "run:%s", w.run);
	}
	if ((rv = weft_cli_sub_open(&sub, url, topic)) != 0) {
		fprintf(stderr, "weft: cannot subscribe to events at %s: %s\n",
		    url, nng_strerror(rv));
		free(url);
		return (WEFT_CLI_UNREACHABLE);
	}
	// Lines go out as they happen, also into a pipe.
	setvbuf(stdout, NULL, _IOLBF, 0);
	// Following one run: its story so far first. Subscribed before
	// asking, so nothing falls between the two.
	rv = w.run != NULL ? watch_fetch(&w, UINT64_MAX, 0) : WEFT_CLI_OK;
	while (rv == WEFT_CLI_OK && !w.done) {
		if ((got = weft_cli_sub_recv(sub, WATCH_IDLE_MS, &env)) < 0) {
			fprintf(stderr, "weft: the event stream from %s "
			                "closed\n",
			    url);
			rv = WEFT_CLI_UNREACHABLE;
		} else if (got > 0) {
			for (size_t k = 0; k < env->events->n_events; k++) {
				watch_event(&w, env->events->events[k]);
			}
			weft_wire_free(env);
		} else if (w.run != NULL || w.last_id != 0) {
			// Quiet: the stream may have lost the latest events
			// (a run's terminal one among them). A failure was
			// reported; the next quiet second tries again.
			(void) watch_fetch(&w, UINT64_MAX, 0);
		}
	}
	nng_close(sub);
	free(url);
	return (rv);
}

// wait_stream waits up to ms for the terminal event of run_id on sub (NULL:
// just sleeps), returning early when it comes.
static void
wait_stream(nng_socket *sub, const char *run_id, int64_t ms)
{
	int64_t         deadline = weft_clock_mono_ms() + ms;
	int64_t         left;
	Weft__Envelope *env;
	struct timespec ts;
	int             got;
	bool            ended;

	while ((left = deadline - weft_clock_mono_ms()) > 0) {
		got = sub != NULL ? weft_cli_sub_recv(*sub, (int) left, &env)
		                  : -1;
		if (got < 0) {
			ts.tv_sec  = (time_t) (left / 1000);
			ts.tv_nsec = (long) (left % 1000) * 1000000L;
			nanosleep(&ts, NULL);
			return;
		}
		if (got == 0) {
			continue;
		}
		ended = false;
		for (size_t k = 0; k < env->events->n_events; k++) {
			Weft__Event *ev = env->events->events[k];
			ended = ended ||
			    (strcmp(ev->run_id, run_id) == 0 &&
			        weft_cli_event_terminal(ev->type));
		}
		weft_wire_free(env);
		if (ended) {
			return;
		}
	}
}

// wait_report prints the final status (borrowed) of a run.
static int
wait_report(weft_cli *c, const char *run_id, json_t *body)
{
	const char *status = json_string_value(json_object_get(body, "status"));
	json_t     *output = json_object_get(body, "output");
	json_t     *err    = json_object_get(body, "error");
	bool        ok     = strcmp(status, "succeeded") == 0;
	char       *text;

	if (c->json) {
		weft_cli_print_json(body);
	} else {
		printf("run %s %s\n", run_id, status);
		if (ok && output != NULL && !json_is_null(output)) {
			text = json_dumps(output, JSON_INDENT(2) |
			        JSON_ENCODE_ANY);
			printf("%s\n", text);
			free(text);
		} else if (!ok && json_is_string(err) &&
		    json_string_length(err) > 0) {
			printf("%s\n", json_string_value(err));
		}
	}
	return (ok ? WEFT_CLI_OK : WEFT_CLI_FAIL);
}

// wait_status asks once for the run's status; *done says whether it ended.
static int
wait_status(weft_cli *c, const char *run_id, json_t **body, bool *done)
{
	Weft__ControlRequest req = WEFT__CONTROL_REQUEST__INIT;
	Weft__StatusRequest  st  = WEFT__STATUS_REQUEST__INIT;
	const char          *status;
	int                  rv;

	st.run_id    = (char *) run_id;
	req.req_case = WEFT__CONTROL_REQUEST__REQ_STATUS;
	req.status   = &st;
	if ((rv = weft_cli_call(c, &req, body)) != WEFT_CLI_OK) {
		return (rv);
	}
	status = json_string_value(json_object_get(*body, "status"));
	*done  = status != NULL && weft_cli_status_terminal(status);
	return (WEFT_CLI_OK);
}

int
weft_cli_wait(weft_cli *c, const char *run_id, const char *events_url)
{
	nng_socket sub;
	bool       have_sub = false, done = false;
	json_t    *body     = NULL;
	char       topic[256];
	int        rv;

	snprintf(topic, sizeof(topic), "run:%s", run_id);
	if (events_url != NULL && events_url[0] != '\0') {
		if ((rv = weft_cli_sub_open(&sub, events_url, topic)) == 0) {
			have_sub = true;
		} else {
			fprintf(stderr,
			    "weft: cannot subscribe to events at %s: %s; "
			    "polling\n",
			    events_url, nng_strerror(rv));
		}
	}
	// The first status covers what happened before the subscription;
	// after that, ask again every second (the stream may drop the end)
	// or as soon as the stream says the run ended.
	for (;;) {
		rv = wait_status(c, run_id, &body, &done);
		if (rv == WEFT_CLI_OK && done) {
			rv = wait_report(c, run_id, body);
			break;
		}
		// An error reply (unknown run) is final; an unreachable
		// coordinator may come back.
		if (rv == WEFT_CLI_FAIL || rv == WEFT_CLI_USAGE) {
			break;
		}
		json_decref(body);
		body = NULL;
		wait_stream(have_sub ? &sub : NULL, run_id, WAIT_POLL_MS);
	}
	json_decref(body);
	if (have_sub) {
		nng_close(sub);
	}
	return (rv);
}
