// watch: following the coordinator's event stream, for `weft watch` and
// `weft events --follow` alike: the stored events first, then the stream,
// with the gaps pub/sub leaves (it drops under load) filled from the store.
// Also `weft run --wait`, which only waits for the end of a run. Both
// give up when the coordinator has been unreachable for --timeout.
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "clock.h"
#include "cli.h"

#define FOLLOW_PAGE 1000    // events asked for per EventsRequest
#define FOLLOW_TICK_MS 200  // a quiet stream checks for signals this often
#define FOLLOW_IDLE_MS 1000 // ask the store after this long without events
#define WAIT_POLL_MS 1000   // `run --wait` asks for the status this often

// Set by SIGINT and SIGTERM while following: stop, and exit 0.
static volatile sig_atomic_t follow_stopped;

// One following: where it is in the event log. Every event is seen once,
// in id order, from the store or the stream; the filter decides which of
// them print.
typedef struct follow {
	weft_cli                *c;
	const weft_cli_evfilter *filter;
	weft_cli_evout          *out;
	const char              *run;      // the run followed; NULL: all
	uint64_t                 seen_id;  // id of the last event seen
	uint64_t                 seen_seq; // its seq (following one run)
	uint64_t                 budget;   // how many more may print
	bool anchored; // seen_id is a position in the log: an event after a
	               // hole in the ids (seqs) after it means the stream
	               // lost some
	bool seam;     // following all, from the filtered stored part to the
	               // first new live event: the store holds events the
	               // filter left out, up to an id we do not know, so it
	               // keeps filtering what fills a hole until then
	bool done;     // the run followed ended
} follow;

// watch_probe_ms returns how often a wait or a follow makes sure the
// coordinator is there when nothing else shows it: every period ms, or
// more often under a short --timeout, so that a few tries fit in it and a
// coordinator that answers is never taken for gone.
static int64_t
watch_probe_ms(const weft_cli *c, int64_t period)
{
	int64_t quarter = c->unreachable_ms / 4;

	if (c->unreachable_ms == 0 || quarter >= period) {
		return (period);
	}
	return (quarter > 0 ? quarter : 1);
}

// watch_start starts the clock of --timeout: the coordinator has just
// answered (the run, the info request), and every call from now on waits
// for its reply at most until the coordinator counts as gone.
static void
watch_start(weft_cli *c)
{
	c->waiting  = true;
	c->heard_ms = weft_clock_mono_ms();
}

// watch_gone reports whether the coordinator has shown no life (no reply,
// no event) for --timeout, and if so says so on stderr.
static bool
watch_gone(const weft_cli *c)
{
	int64_t silent = weft_clock_mono_ms() - c->heard_ms;
	char    d1[32], d2[32];

	if (c->unreachable_ms == 0 || silent < c->unreachable_ms) {
		return (false);
	}
	fprintf(stderr,
	    "weft: coordinator at %s unreachable for %s (no reply, no "
	    "event; --timeout %s); giving up\n",
	    c->url, weft_cli_fmt_duration(silent, d1),
	    weft_cli_fmt_duration(c->unreachable_ms, d2));
	return (true);
}

// follow_see takes one event (borrowed) in id order: it prints if it
// passes the filter and was not seen before (the stream and the store
// overlap).
static void
follow_see(follow *f, json_t *ev)
{
	uint64_t    id   = weft_cli_event_id(ev);
	json_t     *seq  = json_object_get(ev, "seq");
	const char *type = json_string_value(json_object_get(ev, "type"));

	if (id <= f->seen_id) {
		return;
	}
	f->seen_id  = id;
	f->anchored = true;
	if (json_is_integer(seq)) {
		f->seen_seq = (uint64_t) json_integer_value(seq);
	}
	if (f->budget > 0 && weft_cli_evfilter_match(f->filter, ev)) {
		weft_cli_evout_put(f->out, ev);
		f->budget--;
	}
	if (f->run != NULL && type != NULL && weft_cli_event_terminal(type)) {
		f->done = true;
	}
}

// follow_fetch takes the stored events after the last one seen and before
// stop_id, a page at a time: at most want of them (0: all there are). The
// store filters them (full) or only picks the run, and follow_see the
// rest. Returns an exit status.
static int
follow_fetch(follow *f, bool full, uint64_t stop_id, uint64_t want)
{
	Weft__ControlRequest req = WEFT__CONTROL_REQUEST__INIT;
	Weft__EventsRequest  er  = WEFT__EVENTS_REQUEST__INIT;
	json_t              *body, *ev, *norm;
	size_t               i, n;
	bool                 stop = false;
	uint64_t             before;
	int                  rv;
	char                 next[32];

	weft_cli_evfilter_request(f->filter, full, &er);
	req.req_case = WEFT__CONTROL_REQUEST__REQ_EVENTS;
	req.events   = &er;
	while (!stop && !f->done) {
		before   = f->seen_id;
		er.after = f->seen_id;
		er.limit = want == 0 || want > FOLLOW_PAGE ? FOLLOW_PAGE
		                                           : (uint32_t) want;
		if ((rv = weft_cli_call_page(f->c, &req, &body, next,
		         sizeof(next))) != WEFT_CLI_OK) {
			return (rv);
		}
		n = json_array_size(body);
		json_array_foreach (body, i, ev) {
			norm = weft_cli_event_from_reply(ev);
			if (weft_cli_event_id(norm) >= stop_id) {
				stop = true;
			} else {
				follow_see(f, norm);
			}
			json_decref(norm);
			if (stop || f->done) {
				break;
			}
		}
		json_decref(body);
		// A short page is the end of what the store holds, unless
		// the coordinator cut it by size and gave the next cursor; a
		// page that brought nothing new would only repeat.
		if ((n < er.limit && next[0] == '\0') || f->seen_id == before ||
		    (want != 0 && n >= want)) {
			break;
		}
		want = want != 0 ? want - n : 0;
	}
	return (WEFT_CLI_OK);
}

// follow_live takes one event from the stream (borrowed): first the events
// the stream lost before it, then the event itself. Following one run, a
// loss shows in its seq (its global ids interleave with other runs');
// following everything, in the global id.
static void
follow_live(follow *f, const Weft__Event *ev)
{
	uint64_t missing = 0;
	json_t  *norm;

	// A message under WEFT_TOPIC_MIXED holds other runs' events too.
	if (ev->id <= f->seen_id ||
	    (f->run != NULL && strcmp(ev->run_id, f->run) != 0)) {
		return;
	}
	if (f->anchored && f->run != NULL && ev->seq > f->seen_seq + 1) {
		missing = ev->seq - f->seen_seq - 1;
	} else if (f->anchored && f->run == NULL && ev->id > f->seen_id + 1) {
		missing = ev->id - f->seen_id - 1;
	}
	if (missing > 0) {
		// At the seam, the hole also spans the stored events the
		// filter left out: let the store filter them rather than
		// fetch them all. A failed fetch has been reported; print
		// what we have.
		(void) follow_fetch(f, f->seam, ev->id, f->seam ? 0 : missing);
	}
	f->seam = false;
	norm    = weft_cli_event_from_pb(ev);
	follow_see(f, norm);
	json_decref(norm);
}

// follow_events_url asks the coordinator where its events are published
// (malloc'd into *url).
static int
follow_events_url(weft_cli *c, char **url)
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

static void
follow_stop_cb(int sig)
{
	(void) sig;
	follow_stopped = 1;
}

// follow_ping asks the coordinator for its info only to hear from it:
// following everything from now on, there is nothing to ask the store for
// before the first event.
static void
follow_ping(weft_cli *c)
{
	Weft__ControlRequest req  = WEFT__CONTROL_REQUEST__INIT;
	Weft__InfoRequest    info = WEFT__INFO_REQUEST__INIT;
	json_t              *body;

	req.req_case = WEFT__CONTROL_REQUEST__REQ_INFO;
	req.info     = &info;
	if (weft_cli_call(c, &req, &body) == WEFT_CLI_OK) {
		json_decref(body);
	}
}

// follow_signals makes SIGINT and SIGTERM end the following cleanly.
static void
follow_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = follow_stop_cb;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

// follow_stream takes the stream until the run ends, the stream fails, a
// signal comes or the coordinator is gone, asking the store after every
// quiet second: the stream may have lost the latest events (a run's
// terminal one among them). The answer also shows the coordinator is
// there; following everything, before the first event, a ping does.
static int
follow_stream(follow *f, nng_socket sub, const char *url)
{
	Weft__Envelope *env;
	int64_t         quiet = weft_clock_mono_ms();
	int64_t         idle  = watch_probe_ms(f->c, FOLLOW_IDLE_MS);
	int64_t         tick  = watch_probe_ms(f->c, FOLLOW_TICK_MS);
	int             got;

	while (!f->done && !follow_stopped) {
		if (watch_gone(f->c)) {
			return (WEFT_CLI_UNREACHABLE);
		}
		if ((got = weft_cli_sub_recv(f->c, sub, (int) tick, &env)) < 0) {
			fprintf(stderr, "weft: the event stream from %s "
			                "closed\n",
			    url);
			return (WEFT_CLI_UNREACHABLE);
		}
		if (got > 0) {
			uint64_t before = f->seen_id;
			for (size_t k = 0; k < env->events->n_events; k++) {
				follow_live(f, env->events->events[k]);
			}
			weft_wire_free(env);
			f->c->heard_ms = weft_clock_mono_ms();
			// Quiet is about our events: other runs' in a mixed
			// message do not put off asking the store for a lost
			// one of ours (a busy cluster would put it off for
			// good).
			if (f->seen_id != before) {
				quiet = f->c->heard_ms;
			}
		}
		if (weft_clock_mono_ms() - quiet >= idle) {
			// A failure was reported; the next quiet second
			// tries again, until watch_gone.
			if (f->anchored) {
				(void) follow_fetch(f, f->seam, UINT64_MAX, 0);
			} else if (f->c->unreachable_ms != 0) {
				follow_ping(f->c);
			}
			quiet = weft_clock_mono_ms();
		}
	}
	return (WEFT_CLI_OK);
}

int
weft_cli_follow(weft_cli *c, const weft_cli_follow_opts *o)
{
	follow     f = { 0 };
	nng_socket sub;
	char      *url = NULL, topic[256] = "";
	const char *used;
	int        rv;

	f.c       = c;
	f.filter  = o->filter;
	f.out     = o->out;
	f.run     = o->filter->run;
	f.seen_id = o->after;
	f.budget  = o->limit != 0 ? o->limit : UINT64_MAX;
	watch_start(c);
	if ((rv = follow_events_url(c, &url)) != WEFT_CLI_OK) {
		return (rv);
	}
	if (f.run != NULL) {
		snprintf(topic, sizeof(topic), "run:%s", f.run);
	}
	// Subscribed before asking the store, so nothing falls between the
	// two: what happens meanwhile comes both ways and prints once.
	if ((rv = weft_cli_sub_open(c, &sub, url, topic, &used)) != 0) {
		fprintf(stderr, "weft: cannot subscribe to events at %s: %s\n",
		    used, nng_strerror(rv));
		free(url);
		return (WEFT_CLI_UNREACHABLE);
	}
	follow_signals();
	// Lines go out as they happen, also into a pipe.
	setvbuf(stdout, NULL, _IOLBF, 0);
	weft_cli_evout_begin(f.out);
	rv = WEFT_CLI_OK;
	if (o->history) {
		// The stored part, filtered by the store, all of it: past
		// the limit it is seen without printing, so that the stream
		// goes on after the end of it.
		f.anchored = true;
		rv         = follow_fetch(&f, true, UINT64_MAX, 0);
		f.budget   = UINT64_MAX;
		f.seam     = f.run == NULL;
	}
	if (rv == WEFT_CLI_OK) {
		rv = follow_stream(&f, sub, used);
	}
	weft_cli_evout_end(f.out);
	weft_cli_close_socket(sub);
	free(url);
	return (rv);
}

int
weft_cli_cmd_watch(weft_cli *c)
{
	weft_cli_evfilter    f   = { 0 };
	weft_cli_evout       out = { 0 };
	weft_cli_follow_opts fo  = { 0 };

	// One run: its story so far first. Everything: from now on.
	f.run      = c->nargs > 0 ? c->args[0] : NULL;
	out.fmt    = c->json ? WEFT_CLI_EV_JSONL : WEFT_CLI_EV_TABLE;
	out.stream = true;
	fo.filter  = &f;
	fo.history = f.run != NULL;
	fo.out     = &out;
	return (weft_cli_follow(c, &fo));
}

// wait_stream waits up to ms for the terminal event of run_id on sub (NULL:
// just sleeps), returning early when it comes. Any event shows the
// coordinator is there.
static void
wait_stream(weft_cli *c, nng_socket *sub, const char *run_id, int64_t ms)
{
	int64_t         deadline = weft_clock_mono_ms() + ms;
	int64_t         left;
	Weft__Envelope *env;
	struct timespec ts;
	int             got;
	bool            ended;

	while ((left = deadline - weft_clock_mono_ms()) > 0) {
		got = sub != NULL ? weft_cli_sub_recv(c, *sub, (int) left, &env)
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
		c->heard_ms = weft_clock_mono_ms();
		ended       = false;
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
		if (ok && json_is_string(json_object_get(output, "$blob"))) {
			// Stored once as a blob: too big to print here.
			text = weft_cli_text(output, 120);
			printf("output: %s\nthe whole output: weft status %s "
			       "--output\n",
			    text, run_id);
			free(text);
		} else if (ok && output != NULL && !json_is_null(output)) {
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

// wait_explain tells, on stderr, once per step and reason, why a step of
// the run (status body, borrowed) is stuck: no live worker has advertised
// its type for the coordinator's --unschedulable-after, the run is
// paused, or it waits for a signal (and how to send it). told holds
// "step\treason" already told. A wait that would otherwise look hung says
// why.
static void
wait_explain(json_t *body, json_t *told)
{
	json_t *s;
	size_t  k;
	char    key[400], hint[400];

	json_array_foreach (json_object_get(body, "steps"), k, s) {
		json_t     *wf     = json_object_get(s, "waiting_for");
		const char *reason = json_string_value(json_object_get(wf, "reason"));
		bool        sig    = reason != NULL && strcmp(reason, "signal") == 0;
		if (reason == NULL ||
		    !(strcmp(reason, "paused") == 0 || sig ||
		        json_is_true(json_object_get(wf, "unschedulable")))) {
			continue;
		}
		snprintf(key, sizeof(key), "%s\t%s",
		    json_string_value(json_object_get(s, "id")), reason);
		if (json_object_get(told, key) != NULL) {
			continue;
		}
		json_object_set_new(told, key, json_true());
		hint[0] = '\0';
		if (sig) {
			snprintf(hint, sizeof(hint), " (send it: weft signal %s %s)",
			    json_string_value(json_object_get(body, "id")),
			    json_string_value(json_object_get(wf, "signal")));
		}
		fprintf(stderr, "weft: step %s is waiting: %s%s\n",
		    json_string_value(json_object_get(s, "id")),
		    json_string_value(json_object_get(wf, "message")), hint);
	}
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

// wait_one waits for run_id on sub (subscribed to its events, or to more;
// NULL: polling only) and prints its final status.
static int
wait_one(weft_cli *c, const char *run_id, nng_socket *sub)
{
	bool    done = false;
	json_t *body = NULL;
	json_t *told = json_object();
	int     rv;

	watch_start(c);
	// The first status covers what happened before the subscription;
	// after that, ask again every second (the stream may drop the end)
	// or as soon as the stream says the run ended. The answers also show
	// the coordinator is there, however long the run takes.
	for (;;) {
		rv = wait_status(c, run_id, &body, &done);
		if (rv == WEFT_CLI_OK && done) {
			rv = wait_report(c, run_id, body);
			break;
		}
		// An error reply (unknown run) is final; an unreachable
		// coordinator may come back, for --timeout.
		if (rv == WEFT_CLI_FAIL || rv == WEFT_CLI_USAGE) {
			break;
		}
		if (rv == WEFT_CLI_OK) {
			wait_explain(body, told); // stderr: --json too
		}
		json_decref(body);
		body = NULL;
		if (watch_gone(c)) {
			rv = WEFT_CLI_UNREACHABLE;
			break;
		}
		wait_stream(c, sub, run_id, watch_probe_ms(c, WAIT_POLL_MS));
	}
	json_decref(body);
	json_decref(told);
	return (rv);
}

// wait_sub opens a subscription on events_url (or c->stream) to topic;
// false (and a line on stderr) when there is none: polling only.
static bool
wait_sub(weft_cli *c, const char *events_url, const char *topic,
    nng_socket *sub)
{
	const char *used;
	int         rv;

	if ((events_url == NULL || events_url[0] == '\0') && c->stream == NULL) {
		return (false);
	}
	if ((rv = weft_cli_sub_open(c, sub, events_url, topic, &used)) != 0) {
		fprintf(stderr,
		    "weft: cannot subscribe to events at %s: %s; polling\n", used,
		    nng_strerror(rv));
		return (false);
	}
	return (true);
}

int
weft_cli_wait(weft_cli *c, const char *run_id, const char *events_url)
{
	nng_socket sub;
	char       topic[256];
	bool       have_sub;
	int        rv;

	snprintf(topic, sizeof(topic), "run:%s", run_id);
	have_sub = wait_sub(c, events_url, topic, &sub);
	rv       = wait_one(c, run_id, have_sub ? &sub : NULL);
	if (have_sub) {
		weft_cli_close_socket(sub);
	}
	return (rv);
}

int
weft_cli_wait_all(weft_cli *c, json_t *ids, const char *events_url)
{
	nng_socket sub;
	json_t    *id;
	size_t     i;
	bool       have_sub;
	int        rv = WEFT_CLI_OK, r;

	// One subscription to everything for all of them: a socket per run
	// made nng 1.5.2's close hang (nanomsg/nng#1543), and every one of
	// them was sent every run's events anyway (sub filters locally).
	have_sub = wait_sub(c, events_url, "", &sub);
	json_array_foreach (ids, i, id) {
		r  = wait_one(c, json_string_value(id), have_sub ? &sub : NULL);
		rv = r > rv ? r : rv;
		if (r == WEFT_CLI_UNREACHABLE) {
			break;
		}
	}
	if (have_sub) {
		weft_cli_close_socket(sub);
	}
	return (rv);
}
