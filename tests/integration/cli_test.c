// cli_test: the built `weft` binary against a fake coordinator living in the
// test: a rep0 control server that answers canned ControlReply bodies (or
// serves events from a small store) and records every request, and a pub0
// socket that publishes events, dropping some on purpose.
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "alloc.h"
#include "clock.h"
#include "harness.h"
#include "wire.h"

#include <nng/protocol/pubsub0/pub.h>
#include <nng/protocol/reqrep0/rep.h>

#define FAKE_MAX_REQS 256
#define FAKE_CASES 16 // ControlRequest req_case values

// A canned answer to one kind of request.
typedef struct fake_reply {
	int         code;
	const char *error;
	const char *body;
} fake_reply;

// The fake coordinator. Fields under mu are shared with its thread and
// nng's callback threads.
typedef struct fake {
	nng_socket      rep;
	nng_socket      pub;
	char            control_url[64];
	char            events_url[64];
	char           *dir;      // temp dir for files and logs
	pthread_t       thread;
	pthread_mutex_t mu;
	weft_wire       wire;
	fake_reply      canned[FAKE_CASES]; // under mu
	json_t         *store;    // under mu; when set, answers EventsRequest
	Weft__Envelope *reqs[FAKE_MAX_REQS]; // under mu; recorded requests
	int             nreqs;    // under mu
	int             pipes;    // under mu; subscribers attached to pub
	bool            muted;    // under mu; requests get no answer
	uint32_t        vain[8];  // under mu; pipes (clients) that asked
	int             nvain;    // while muted, each once
	int64_t         replied_ms; // under mu; when the last answer went
	                            // out (monotonic ms, taken before it)
	bool            down;     // the sockets are closed (fake_down)
} fake;

static fake F;

// fake_match applies the filters of an EventsRequest to a stored event the
// way the coordinator does (the text is a substring of the data's JSON).
static bool
fake_match(const Weft__EventsRequest *er, json_t *ev)
{
	const char *type = json_string_value(json_object_get(ev, "type"));
	const char *step = json_string_value(json_object_get(ev, "step"));
	const char *node = json_string_value(json_object_get(ev, "node"));
	bool        ok   = er->n_types == 0;
	char       *data;

	for (size_t i = 0; i < er->n_types; i++) {
		ok = ok || strcmp(type, er->types[i]) == 0;
	}
	if (er->step_id[0] != '\0') {
		ok = ok && step != NULL && strcmp(step, er->step_id) == 0;
	}
	if (er->node[0] != '\0') {
		ok = ok && node != NULL && strcmp(node, er->node) == 0;
	}
	if (er->text[0] != '\0') {
		data = json_dumps(json_object_get(ev, "data"), JSON_COMPACT);
		ok   = ok && strstr(data, er->text) != NULL;
		free(data);
	}
	return (ok);
}

// fake_events answers an EventsRequest from the store like the coordinator
// would: run and other filters, id cursor, limit, ascending ids.
static char *
fake_events(fake *f, const Weft__EventsRequest *er)
{
	json_t *out = json_array(), *ev;
	size_t  i;
	char   *s;

	json_array_foreach (f->store, i, ev) {
		const char *run = json_string_value(json_object_get(ev, "run"));
		uint64_t    id  = (uint64_t) json_integer_value(
                    json_object_get(ev, "id"));
		if (er->run_id[0] != '\0' && strcmp(run, er->run_id) != 0) {
			continue;
		}
		if (id <= er->after || !fake_match(er, ev)) {
			continue;
		}
		if (er->limit != 0 && json_array_size(out) >= er->limit) {
			break;
		}
		json_array_append(out, ev);
	}
	s = json_dumps(out, JSON_COMPACT);
	json_decref(out);
	return (s);
}

static void *
fake_main(void *arg)
{
	fake *f = arg;

	for (;;) {
		Weft__Envelope    *env;
		Weft__Envelope     out = WEFT__ENVELOPE__INIT;
		Weft__ControlReply rep = WEFT__CONTROL_REPLY__INIT;
		nng_msg           *msg;
		char              *body = NULL;
		uint32_t           from;

		if (nng_recvmsg(f->rep, &msg, 0) != 0) {
			break;
		}
		from = nng_pipe_id(nng_msg_get_pipe(msg)); // the client
		if (weft_wire_expect(NULL, msg, WEFT__ENVELOPE__BODY_CONTROL, &env) !=
		    WEFT_OK) {
			nng_msg_free(msg);
			continue;
		}
		nng_msg_free(msg);
		pthread_mutex_lock(&f->mu);
		int  kind  = (int) env->control->req_case;
		bool muted = f->muted;
		if (kind == WEFT__CONTROL_REQUEST__REQ_EVENTS &&
		    f->store != NULL) {
			body = fake_events(f, env->control->events);
		} else if (kind > 0 && kind < FAKE_CASES) {
			fake_reply *c = &f->canned[kind];
			rep.code      = c->code;
			rep.error     = (char *) (c->error ? c->error : "");
			body = weft_xstrdup(c->body ? c->body : "");
		} else {
			rep.code  = WEFT_EPROTO;
			rep.error = "no canned reply";
		}
		if (f->nreqs < FAKE_MAX_REQS) {
			f->reqs[f->nreqs++] = env;
		} else {
			weft_wire_free(env);
		}
		if (muted) {
			bool known = false;
			for (int i = 0; i < f->nvain; i++) {
				known = known || f->vain[i] == from;
			}
			if (!known && f->nvain < 8) {
				f->vain[f->nvain++] = from;
			}
		} else {
			f->replied_ms = weft_clock_mono_ms();
		}
		pthread_mutex_unlock(&f->mu);
		if (muted) {
			free(body);
			continue;
		}
		rep.body_json     = body != NULL ? body : "";
		out.body_case     = WEFT__ENVELOPE__BODY_CONTROL_REPLY;
		out.control_reply = &rep;
		if (weft_wire_pack(&f->wire, &out, NULL, &msg) == WEFT_OK &&
		    nng_sendmsg(f->rep, msg, 0) != 0) {
			nng_msg_free(msg);
		}
		free(body);
	}
	return (NULL);
}

static void
fake_pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	fake *f = arg;

	(void) p;
	(void) ev;
	pthread_mutex_lock(&f->mu);
	f->pipes++;
	pthread_mutex_unlock(&f->mu);
}

// fake_listen listens on an ephemeral loopback port and writes the URL.
static void
fake_listen(nng_socket s, char *url)
{
	nng_listener l;
	int          port;

	cr_assert_eq(nng_listen(s, "tcp://127.0.0.1:0", &l, 0), 0);
	cr_assert_eq(nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &port), 0);
	snprintf(url, 64, "tcp://127.0.0.1:%d", port);
}

static void
fake_start(void)
{
	fake *f = &F;

	memset(f, 0, sizeof(*f));
	pthread_mutex_init(&f->mu, NULL);
	weft_wire_init(&f->wire, "fake-coordinator");
	f->dir = weft_h_tempdir("cli");
	cr_assert_eq(nng_rep0_open(&f->rep), 0);
	cr_assert_eq(nng_pub0_open(&f->pub), 0);
	cr_assert_eq(nng_pipe_notify(f->pub, NNG_PIPE_EV_ADD_POST,
	                 fake_pipe_cb, f),
	    0);
	fake_listen(f->rep, f->control_url);
	fake_listen(f->pub, f->events_url);
	cr_assert_eq(pthread_create(&f->thread, NULL, fake_main, f), 0);
}

// fake_down takes the fake coordinator away, the way a crash does: its
// sockets close, and nobody listens on their ports any more.
static void
fake_down(void)
{
	fake *f = &F;

	if (f->down) {
		return;
	}
	f->down = true;
	nng_close(f->rep);
	pthread_join(f->thread, NULL);
	nng_close(f->pub);
}

static void
fake_stop(void)
{
	fake *f = &F;

	fake_down();
	for (int i = 0; i < f->nreqs; i++) {
		weft_wire_free(f->reqs[i]);
	}
	json_decref(f->store);
	free(f->dir);
	pthread_mutex_destroy(&f->mu);
	// No nng_fini(): libnng also provides the nanomsg API Criterion
	// reports through, and nng_fini() would close that socket too.
}

static void
fake_canned(int kind, int code, const char *error, const char *body)
{
	pthread_mutex_lock(&F.mu);
	F.canned[kind] = (fake_reply) { code, error, body };
	pthread_mutex_unlock(&F.mu);
}

// fake_count counts the recorded requests of one kind.
static int
fake_count(int kind)
{
	int n = 0;

	pthread_mutex_lock(&F.mu);
	for (int i = 0; i < F.nreqs; i++) {
		n += (int) F.reqs[i]->control->req_case == kind;
	}
	pthread_mutex_unlock(&F.mu);
	return (n);
}

// fake_req returns the last recorded request (after the client exited).
static Weft__ControlRequest *
fake_last(void)
{
	cr_assert_gt(F.nreqs, 0, "no request reached the fake coordinator");
	return (F.reqs[F.nreqs - 1]->control);
}

// fake_store_add stores one event with data (JSON text; NULL: {"n":id}).
static void
fake_store_add(uint64_t id, const char *run, uint64_t seq, const char *type,
    const char *step, const char *data)
{
	char tsbuf[48], n[64];

	snprintf(n, sizeof(n), "{\"n\":%llu}", (unsigned long long) id);
	pthread_mutex_lock(&F.mu);
	if (F.store == NULL) {
		F.store = json_array();
	}
	json_array_append_new(F.store,
	    json_pack("{s:I,s:s,s:I,s:s,s:s,s:s?,s:i,s:s,s:o}", "id",
	        (json_int_t) id, "run", run, "seq", (json_int_t) seq, "ts",
	        weft_clock_format_rfc3339(1767323045006 + (int64_t) id, tsbuf),
	        "type", type, "step", step, "attempt", step ? 1 : 0, "node",
	        "w1", "data", json_loads(data ? data : n, 0, NULL)));
	pthread_mutex_unlock(&F.mu);
}

// One event as the fake stores and publishes it (data {"n":id}).
typedef struct fake_ev {
	uint64_t    id;
	const char *run;
	uint64_t    seq;
	const char *type, *step;
} fake_ev;

// fake_send publishes evs (n, at most 8) in one message under topic; data
// (NULL: {"n":id}) is the first event's.
static void
fake_send(const fake_ev *evs, size_t n, const char *topic, const char *data)
{
	Weft__Event      ev[8];
	Weft__Event     *evp[8];
	Weft__Envelope   env   = WEFT__ENVELOPE__INIT;
	Weft__EventBatch batch = WEFT__EVENT_BATCH__INIT;
	char             num[8][64];
	nng_msg         *msg;

	cr_assert_leq(n, 8);
	for (size_t k = 0; k < n; k++) {
		const fake_ev *f = &evs[k];
		weft__event__init(&ev[k]);
		snprintf(num[k], sizeof(num[k]), "{\"n\":%llu}",
		    (unsigned long long) f->id);
		ev[k].id        = f->id;
		ev[k].run_id    = (char *) f->run;
		ev[k].seq       = f->seq;
		ev[k].ts_ms     = (uint64_t) (1767323045006 + (int64_t) f->id);
		ev[k].type      = (char *) f->type;
		ev[k].step_id   = (char *) (f->step ? f->step : "");
		ev[k].attempt   = f->step ? 1 : 0;
		ev[k].node      = "w1";
		ev[k].data_json = (char *) (k == 0 && data ? data : num[k]);
		evp[k]          = &ev[k];
	}
	batch.n_events = n;
	batch.events   = evp;
	env.body_case  = WEFT__ENVELOPE__BODY_EVENTS;
	env.events     = &batch;
	cr_assert_eq(weft_wire_pack(&F.wire, &env, topic, &msg), WEFT_OK);
	cr_assert_eq(nng_sendmsg(F.pub, msg, 0), 0);
}

// fake_publish publishes one event (as fake_store_add stores it) on its
// run's topic.
static void
fake_publish(uint64_t id, const char *run, uint64_t seq, const char *type,
    const char *step, const char *data)
{
	fake_ev ev = { id, run, seq, type, step };
	char    topic[64];

	snprintf(topic, sizeof(topic), "run:%s", run);
	fake_send(&ev, 1, topic, data);
}

// fake_commit_mixed stores evs (n) and publishes them in one message under
// WEFT_TOPIC_MIXED, as the coordinator publishes a release of several runs.
static void
fake_commit_mixed(const fake_ev *evs, size_t n)
{
	for (size_t k = 0; k < n; k++) {
		fake_store_add(evs[k].id, evs[k].run, evs[k].seq, evs[k].type,
		    evs[k].step, NULL);
	}
	fake_send(evs, n, WEFT_TOPIC_MIXED, NULL);
}

// fake_commit_data stores one event and publishes it unless drop.
static void
fake_commit_data(uint64_t id, const char *run, uint64_t seq,
    const char *type, const char *step, const char *data, bool drop)
{
	fake_store_add(id, run, seq, type, step, data);
	if (!drop) {
		fake_publish(id, run, seq, type, step, data);
	}
}

// fake_commit stores one event with data {"n":id} and publishes it unless
// drop.
static void
fake_commit(uint64_t id, const char *run, uint64_t seq, const char *type,
    const char *step, bool drop)
{
	fake_commit_data(id, run, seq, type, step, NULL, drop);
}

// slurp reads a whole file (malloc'd; "" when missing).
static char *
slurp(const char *path)
{
	FILE  *f = fopen(path, "r");
	char  *buf;
	size_t n = 0;

	buf = weft_xalloc(1 << 20);
	if (f != NULL) {
		n = fread(buf, 1, (1 << 20) - 1, f);
		fclose(f);
	}
	buf[n] = '\0';
	return (buf);
}

// weft runs the client against the fake with args (already shell-quoted),
// capturing stdout into *out and stderr into *err (both malloc'd).
static int
weft(char **out, char **err, const char *fmt, ...)
{
	char    args[4096], cmd[8192], errpath[1024];
	va_list ap;
	int     rc;

	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	snprintf(errpath, sizeof(errpath), "%s/stderr", F.dir);
	snprintf(cmd, sizeof(cmd), "'%s' --coordinator %s %s 2>'%s'",
	    weft_h_bin("weft"), F.control_url, args, errpath);
	rc   = weft_h_run(cmd, out);
	*err = slurp(errpath);
	return (rc);
}

// write_file creates dir/name with text and returns its path (malloc'd).
static char *
write_file(const char *name, const char *text)
{
	char  path[1024];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", F.dir, name);
	cr_assert_not_null((f = fopen(path, "w")));
	fputs(text, f);
	fclose(f);
	return (weft_xstrdup(path));
}

// json_same reports whether JSON text a means the same value as b.
static bool
json_same(const char *a, const char *b)
{
	json_t *x = json_loads(a, JSON_DECODE_ANY, NULL);
	json_t *y = json_loads(b, JSON_DECODE_ANY, NULL);
	bool    same = x != NULL && y != NULL && json_equal(x, y);

	json_decref(x);
	json_decref(y);
	return (same);
}

// sleep_ms is for polling a condition with a deadline only.
static void
sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long) (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

// wait_exit waits up to ms for pid and returns its exit status (-1 on
// timeout, after killing it).
static int
wait_exit(pid_t pid, int64_t ms)
{
	int64_t deadline = weft_clock_mono_ms() + weft_h_timeout_ms(ms);
	int     st;

	while (weft_clock_mono_ms() < deadline) {
		if (waitpid(pid, &st, WNOHANG) == pid) {
			return (WIFEXITED(st) ? WEXITSTATUS(st) : -1);
		}
		sleep_ms(10);
	}
	weft_h_kill(pid, SIGKILL);
	return (-1);
}

// ids_of parses JSON lines and writes their ids into ids; returns the count.
static int
ids_of(const char *text, uint64_t *ids, int max)
{
	int         n = 0;
	const char *p = text;

	while (*p != '\0' && n < max) {
		const char *nl   = strchr(p, '\n');
		size_t      len  = nl ? (size_t) (nl - p) : strlen(p);
		char       *line = weft_xstrndup(p, len);
		json_t     *ev   = json_loads(line, 0, NULL);
		cr_assert_not_null(ev, "not a JSON line: '%s' in:\n%s", line,
		    text);
		ids[n++] = (uint64_t) json_integer_value(json_object_get(ev,
		    "id"));
		json_decref(ev);
		free(line);
		p += len + (nl != NULL);
	}
	return (n);
}

// expect_ids reads log and checks that the ids of its JSON lines are want
// (n of them), in order; returns the text (malloc'd) for more checks.
static char *
expect_ids(const char *log, const uint64_t *want, int n)
{
	char    *text = slurp(log);
	uint64_t ids[16];
	int      got  = ids_of(text, ids, 16);

	cr_assert_eq(got, n, "%s", text);
	for (int i = 0; i < n; i++) {
		cr_assert_eq(ids[i], want[i], "line %d: %s", i, text);
	}
	return (text);
}

// count_lines counts newline-terminated lines.
static int
count_lines(const char *text)
{
	int n = 0;

	for (; *text != '\0'; text++) {
		n += *text == '\n';
	}
	return (n);
}

TestSuite(cli, .init = fake_start, .fini = fake_stop, .timeout = 60);

Test(cli, define_sends_the_file_and_prints_the_summary)
{
	const char *def  = "{\"name\":\"etl\",\"steps\":[]}\n";
	char       *path = write_file("etl.json", def);
	char       *out, *err;

	fake_canned(WEFT__CONTROL_REQUEST__REQ_DEFINE, 0, NULL,
	    "{\"name\":\"etl\",\"version\":2,\"steps\":3}");
	cr_assert_eq(weft(&out, &err, "define '%s'", path), 0, "%s", err);
	cr_assert_str_eq(out, "registered etl version 2 (3 steps)\n");
	cr_assert_eq(fake_last()->req_case, WEFT__CONTROL_REQUEST__REQ_DEFINE);
	cr_assert_str_eq(fake_last()->define->definition_json, def);
	free(out);
	free(err);

	cr_assert_eq(weft(&out, &err, "define - <'%s'", path), 0, "%s", err);
	cr_assert_str_eq(out, "registered etl version 2 (3 steps)\n");
	cr_assert_str_eq(fake_last()->define->definition_json, def);
	free(out);
	free(err);

	cr_assert_eq(weft(&out, &err, "define --json '%s'", path), 0);
	cr_assert(json_same(out, "{\"name\":\"etl\",\"version\":2,\"steps\":3}"),
	    "%s", out);
	free(out);
	free(err);
	free(path);
}

Test(cli, run_carries_input_and_params)
{
	char *out, *err, *def, *input;

	fake_canned(WEFT__CONTROL_REQUEST__REQ_RUN, 0, NULL,
	    "{\"run_id\":\"01RUN\",\"events_url\":\"tcp://127.0.0.1:1\"}");
	cr_assert_eq(weft(&out, &err,
	                 "run etl --input '{\"n\": 1, \"s\": \"x\"}' "
	                 "--params '{\"limit\": 5}'"),
	    0, "%s", err);
	cr_assert_str_eq(out, "01RUN\n");
	Weft__RunRequest *run = fake_last()->run;
	cr_assert_eq(fake_last()->req_case, WEFT__CONTROL_REQUEST__REQ_RUN);
	cr_assert_str_eq(run->definition, "etl");
	cr_assert_str_eq(run->definition_json, "");
	cr_assert(json_same(run->input_json, "{\"n\":1,\"s\":\"x\"}"), "%s",
	    run->input_json);
	cr_assert(json_same(run->params_json, "{\"limit\":5}"), "%s",
	    run->params_json);
	free(out);
	free(err);

	// A file: the definition travels inline; @FILE reads the input.
	def   = write_file("inline.json", "{\"name\":\"x\",\"steps\":[]}");
	input = write_file("input.json", "[1, 2, 3]");
	cr_assert_eq(weft(&out, &err, "run '%s' --input @'%s' --json", def,
	                 input),
	    0, "%s", err);
	cr_assert(json_same(out,
	              "{\"run_id\":\"01RUN\",\"events_url\":\"tcp://127.0.0.1:1\"}"),
	    "%s", out);
	run = fake_last()->run;
	cr_assert_str_eq(run->definition, "");
	cr_assert_str_eq(run->definition_json, "{\"name\":\"x\",\"steps\":[]}");
	cr_assert(json_same(run->input_json, "[1,2,3]"));
	cr_assert_str_eq(run->params_json, "");
	free(out);
	free(err);
	free(def);
	free(input);
}

Test(cli, bad_input_json_is_a_usage_error)
{
	char *out, *err;

	cr_assert_eq(weft(&out, &err, "run etl --input '{nope'"), 2);
	cr_assert_str_eq(out, "");
	cr_assert(strstr(err, "--input is not valid JSON") != NULL, "%s", err);
	free(out);
	free(err);

	cr_assert_eq(weft(&out, &err, "run etl --params '[1]'"), 2);
	cr_assert(strstr(err, "--params must be a JSON object") != NULL, "%s",
	    err);
	free(out);
	free(err);
	cr_assert_eq(F.nreqs, 0, "a bad command line reached the coordinator");
}

Test(cli, events_prints_one_json_line_per_event)
{
	static const char *keys[] = { "id", "run", "seq", "ts", "type", "step",
		"attempt", "node", "data" };
	char   *out, *err;
	uint64_t ids[8];

	fake_canned(WEFT__CONTROL_REQUEST__REQ_EVENTS, 0, NULL,
	    "[{\"id\":7,\"run\":\"01R\",\"seq\":1,\"ts\":\"2026-01-02T03:04:05."
	    "006Z\",\"type\":\"run_started\",\"step\":null,\"attempt\":null,"
	    "\"node\":\"coord\",\"data\":{},\"extra\":1},"
	    "{\"id\":8,\"run\":\"01R\",\"seq\":2,\"ts\":\"2026-01-02T03:04:06."
	    "000Z\",\"type\":\"step_failed\",\"step\":\"fetch\",\"attempt\":2,"
	    "\"node\":\"w1\",\"data\":{\"error\":\"boom\\nline 2\"}},"
	    "{\"id\":9,\"run\":\"01R\",\"seq\":3,\"ts\":\"2026-01-02T03:04:07."
	    "000Z\",\"type\":\"run_failed\",\"node\":\"coord\"}]");
	cr_assert_eq(weft(&out, &err,
	                 "events --run 01R --type step_failed,run_failed "
	                 "--type run_started --step fetch --node w1 --after 6 "
	                 "--limit 10"),
	    0, "%s", err);
	cr_assert_eq(count_lines(out), 3, "%s", out);
	cr_assert_eq(ids_of(out, ids, 8), 3);
	cr_assert(ids[0] == 7 && ids[1] == 8 && ids[2] == 9, "%s", out);
	for (const char *p = out; *p != '\0'; p = strchr(p, '\n') + 1) {
		json_t *ev = json_loadb(p, (size_t) (strchr(p, '\n') - p), 0,
		    NULL);
		cr_assert_eq(json_object_size(ev), 9, "%s", out);
		for (size_t k = 0; k < 9; k++) {
			cr_assert_not_null(json_object_get(ev, keys[k]),
			    "no %s in %s", keys[k], out);
		}
		cr_assert(json_is_object(json_object_get(ev, "data")));
		json_decref(ev);
	}

	Weft__EventsRequest *er = fake_last()->events;
	cr_assert_str_eq(er->run_id, "01R");
	cr_assert_eq(er->n_types, 3);
	cr_assert_str_eq(er->types[0], "step_failed");
	cr_assert_str_eq(er->types[1], "run_failed");
	cr_assert_str_eq(er->types[2], "run_started");
	cr_assert_str_eq(er->step_id, "fetch");
	cr_assert_str_eq(er->node, "w1");
	cr_assert_eq(er->after, 6);
	cr_assert_eq(er->limit, 10);
	free(out);
	free(err);

	// --json is the same format; --format table is a header and rows.
	char *json;
	cr_assert_eq(weft(&out, &err, "events"), 0);
	free(err);
	cr_assert_eq(weft(&json, &err, "events --json"), 0);
	cr_assert_str_eq(json, out);
	free(out);
	free(json);
	free(err);
	cr_assert_eq(weft(&out, &err, "events --format table"), 0, "%s", err);
	cr_assert_eq(count_lines(out), 4, "%s", out);
	cr_assert(strncmp(out, "ID  ", 4) == 0, "%s", out);
	cr_assert(strstr(out, "{\"error\":\"boom\\nline 2\"}\n") != NULL,
	    "%s", out);
	free(out);
	free(err);
}

Test(cli, error_reply_exits_1_with_the_message)
{
	char *out, *err;

	fake_canned(WEFT__CONTROL_REQUEST__REQ_STATUS, WEFT_ENOENT,
	    "run not found: 01NOPE", NULL);
	cr_assert_eq(weft(&out, &err, "status 01NOPE"), 1);
	cr_assert_str_eq(out, "");
	cr_assert_str_eq(err, "weft: run not found: 01NOPE\n");
	cr_assert_str_eq(fake_last()->status->run_id, "01NOPE");
	free(out);
	free(err);
}

Test(cli, unreachable_coordinator_exits_3)
{
	char  cmd[2048], *out;
	char *err;
	char  errpath[1024];
	int   port = weft_h_free_port();

	snprintf(errpath, sizeof(errpath), "%s/stderr", F.dir);
	snprintf(cmd, sizeof(cmd),
	    "'%s' --coordinator tcp://127.0.0.1:%d info 2>'%s'",
	    weft_h_bin("weft"), port, errpath);
	cr_assert_eq(weft_h_run(cmd, &out), 3);
	err = slurp(errpath);
	snprintf(cmd, sizeof(cmd),
	    "weft: cannot reach coordinator at tcp://127.0.0.1:%d: ", port);
	cr_assert(strncmp(err, cmd, strlen(cmd)) == 0, "%s", err);
	free(out);
	free(err);

	// The environment names the coordinator too.
	snprintf(cmd, sizeof(cmd),
	    "WEFT_COORDINATOR=tcp://127.0.0.1:%d '%s' runs 2>/dev/null", port,
	    weft_h_bin("weft"));
	cr_assert_eq(weft_h_run(cmd, NULL), 3);
}

Test(cli, enumerated_values_are_checked_before_anything_is_sent)
{
	static const struct {
		const char *args, *says;
	} rows[] = {
		{ "events --type nope",
		    "--type: \"nope\" is not one of run_queued, run_started" },
		{ "events --type step_failed,step_faild --run 01R",
		    "--type: \"step_faild\" is not one of" },
		{ "events --type step_failed --type Step_Failed",
		    "\"Step_Failed\"" },
		{ "events --follow --type bogus", "--type: \"bogus\"" },
		{ "runs --status bogus",
		    "--status: \"bogus\" is not one of queued, scheduled, "
		    "running, paused, succeeded, failed, cancelled, timed_out" },
		{ "runs delete --before 30d --status done",
		    "--status: \"done\" is not one of" },
		{ "cancel --status runing", "--status: \"runing\"" },
		{ "retry --status failed, --dry-run", "\"failed,\"" },
		{ "events --format yaml",
		    "--format: \"yaml\" is not one of jsonl, json, table, csv" },
		{ "schedule create s --definition d --cron @daily --overlap no",
		    "--overlap: \"no\" is not one of skip, allow, "
		    "cancel_previous" },
		{ "schedule create s --definition d --cron @daily --catchup 2",
		    "--catchup: \"2\" is not one of none, one, all" },
	};
	char *out, *err;

	for (size_t k = 0; k < sizeof(rows) / sizeof(rows[0]); k++) {
		int rv = weft(&out, &err, "%s", rows[k].args);
		cr_expect_eq(rv, 2, "weft %s: exit %d, want 2: %s", rows[k].args,
		    rv, err);
		cr_expect(strstr(err, rows[k].says) != NULL,
		    "weft %s: stderr lacks \"%s\": %s", rows[k].args,
		    rows[k].says, err);
		cr_expect_str_eq(out, "", "weft %s", rows[k].args);
		free(out);
		free(err);
	}
	pthread_mutex_lock(&F.mu);
	cr_expect_eq(F.nreqs, 0, "a refused value was sent anyway");
	pthread_mutex_unlock(&F.mu);
	// Every listed value passes: the last state, the last event type, a
	// comma-separated list, and the other lists' last members get as far
	// as the coordinator.
	static const char *const fine[] = { "runs --status timed_out",
		"events --type schedule_skipped,run_queued --format csv",
		("schedule create s --definition d --cron @daily --overlap "
		 "cancel_previous --catchup all") };
	for (size_t k = 0; k < sizeof(fine) / sizeof(fine[0]); k++) {
		weft(&out, &err, "%s", fine[k]);
		cr_expect(strstr(err, "is not one of") == NULL, "weft %s: %s",
		    fine[k], err);
		free(out);
		free(err);
	}
	pthread_mutex_lock(&F.mu);
	cr_expect_eq(F.nreqs, 3, "the valid values were not all sent");
	pthread_mutex_unlock(&F.mu);
}

Test(cli, usage_errors_exit_2)
{
	char *out, *err;

	cr_assert_eq(weft(&out, &err, "bogus"), 2);
	cr_assert(strstr(err, "unknown command 'bogus'") != NULL, "%s", err);
	free(out);
	free(err);
	cr_assert_eq(weft(&out, &err, "status --bogus 01R"), 2);
	cr_assert(strstr(err, "unknown flag --bogus") != NULL, "%s", err);
	free(out);
	free(err);
	cr_assert_eq(weft(&out, &err, "runs --limit lots"), 2);
	free(out);
	free(err);
	cr_assert_eq(weft(&out, &err, "status"), 2);
	free(out);
	free(err);
	cr_assert_eq(weft(&out, &err, "help"), 0);
	static const char *cmds[] = { "define", "run", "status", "runs",
		"events", "watch", "definitions", "workers", "cancel", "pause",
		"resume", "retry", "info", "help" };
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		char line[64];
		snprintf(line, sizeof(line), "\n  %s ", cmds[i]);
		cr_assert(strstr(out, line) != NULL, "%s missing", cmds[i]);
	}
	free(out);
	free(err);
	cr_assert_eq(F.nreqs, 0);
}

Test(cli, status_prints_header_and_steps)
{
	char *out, *err;

	fake_canned(WEFT__CONTROL_REQUEST__REQ_STATUS, 0, NULL,
	    "{\"id\":\"01RUN\",\"definition\":\"etl\",\"version\":1,"
	    "\"status\":\"failed\",\"input\":{},\"params\":{},\"output\":null,"
	    "\"error\":\"step clean failed\",\"created_ms\":1767323045000,"
	    "\"started_ms\":1767323045100,\"ended_ms\":1767323047600,"
	    "\"steps\":[{\"id\":\"fetch\",\"type\":\"exec\",\"status\":"
	    "\"succeeded\",\"attempt\":1,\"node\":\"w1\",\"output\":{\"files\":"
	    "[\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",\"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	    "\"]},\"error\":null,\"started_ms\":1767323045100,\"ended_ms\":"
	    "1767323045600},{\"id\":\"clean\",\"type\":\"exec\",\"status\":"
	    "\"failed\",\"attempt\":3,\"node\":\"w2\",\"output\":null,\"error\":"
	    "\"exit 1\",\"started_ms\":1767323046000,\"ended_ms\":"
	    "1767323047500}]}");
	cr_assert_eq(weft(&out, &err, "status 01RUN"), 0, "%s", err);
	cr_assert(strstr(out, "status      failed\n") != NULL, "%s", out);
	cr_assert(strstr(out, "duration    2.5s\n") != NULL, "%s", out);
	cr_assert(strstr(out, "error       step clean failed\n") != NULL, "%s",
	    out);
	cr_assert(strstr(out, "STEP   TYPE  STATUS     ATTEMPT  NODE  "
	                      "DURATION  OUTPUT\n") != NULL,
	    "%s", out);
	cr_assert(strstr(out, "fetch  exec  succeeded  1        w1    500ms  "
	                      "   {\"files\":") != NULL,
	    "%s", out);
	cr_assert(strstr(out, "...\n") != NULL, "output not cut: %s", out);
	cr_assert(strstr(out, "clean  exec  failed     3        w2    1.5s   "
	                      "   error: exit 1\n") != NULL,
	    "%s", out);
	free(out);
	free(err);
}

Test(cli, status_shows_the_progress_of_a_step_without_output)
{
	char *out, *err;

	fake_canned(WEFT__CONTROL_REQUEST__REQ_STATUS, 0, NULL,
	    "{\"id\":\"01RUN\",\"definition\":\"etl\",\"version\":1,"
	    "\"status\":\"running\",\"input\":{},\"params\":{},\"output\":null,"
	    "\"created_ms\":1767323045000,\"started_ms\":1767323045100,"
	    "\"steps\":[{\"id\":\"copy\",\"type\":\"exec\",\"status\":"
	    "\"running\",\"attempt\":2,\"node\":\"w1\",\"started_ms\":"
	    "1767323045100,\"progress\":{\"value\":{\"done\":40,\"of\":100},"
	    "\"attempt\":2,\"ts_ms\":1767323046000}},"
	    "{\"id\":\"load\",\"type\":\"exec\",\"status\":\"succeeded\","
	    "\"attempt\":1,\"node\":\"w1\",\"output\":7,\"started_ms\":"
	    "1767323045100,\"ended_ms\":1767323045600,\"progress\":{\"value\":"
	    "\"loading\",\"attempt\":1,\"ts_ms\":1767323045200}}]}");
	cr_assert_eq(weft(&out, &err, "status 01RUN"), 0, "%s", err);
	cr_assert(strstr(out, "progress: {\"done\":40,\"of\":100}\n") != NULL,
	    "%s", out);
	cr_assert(strstr(out, "progress: loading") == NULL,
	    "the output wins once there is one: %s", out);
	free(out);
	free(err);
}

// watch_ready waits until the watcher subscribed and made `requests`
// requests of kind.
static void
watch_ready(int kind, int requests)
{
	int64_t deadline = weft_clock_mono_ms() + weft_h_timeout_ms(10000);
	int     pipes;

	for (;;) {
		pthread_mutex_lock(&F.mu);
		pipes = F.pipes;
		pthread_mutex_unlock(&F.mu);
		if (pipes >= 1 && fake_count(kind) >= requests) {
			return;
		}
		cr_assert_lt(weft_clock_mono_ms(), deadline, "watch not ready");
		sleep_ms(10);
	}
}

// wait_spawn starts `weft run etl --wait` against the fake coordinator,
// whose run 01RUN is running, its output into log.
static pid_t
wait_spawn(char *log, size_t len)
{
	static char run[256]; // the fake keeps the pointer
	char       *argv[] = { "weft", "--coordinator", F.control_url, "run",
		      "etl", "--wait", NULL };

	snprintf(run, sizeof(run),
	    "{\"run_id\":\"01RUN\",\"events_url\":\"%s\"}", F.events_url);
	fake_canned(WEFT__CONTROL_REQUEST__REQ_RUN, 0, NULL, run);
	fake_canned(WEFT__CONTROL_REQUEST__REQ_STATUS, 0, NULL,
	    "{\"id\":\"01RUN\",\"status\":\"running\"}");
	snprintf(log, len, "%s/wait.log", F.dir);
	return (weft_h_spawn(argv, log));
}

Test(cli, run_wait_reports_the_final_status)
{
	char  log[1024];
	char *text;
	pid_t pid;

	pid = wait_spawn(log, sizeof(log));

	// Once it listens and asked for the status, the run ends.
	watch_ready(WEFT__CONTROL_REQUEST__REQ_STATUS, 1);
	fake_canned(WEFT__CONTROL_REQUEST__REQ_STATUS, 0, NULL,
	    "{\"id\":\"01RUN\",\"status\":\"succeeded\",\"output\":{\"x\":1}}");
	fake_commit(1, "01RUN", 1, "run_succeeded", NULL, false);
	cr_assert_eq(wait_exit(pid, 10000), 0);
	text = slurp(log);
	cr_assert_str_eq(text, "run 01RUN succeeded\n{\n  \"x\": 1\n}\n");
	free(text);

	// A run that failed: exit 1 with the error.
	char *out, *err;
	fake_canned(WEFT__CONTROL_REQUEST__REQ_STATUS, 0, NULL,
	    "{\"id\":\"01RUN\",\"status\":\"failed\",\"error\":\"boom\"}");
	cr_assert_eq(weft(&out, &err, "run etl --wait"), 1, "%s", err);
	cr_assert_str_eq(out, "run 01RUN failed\nboom\n");
	free(out);
	free(err);
}

// fake_asked_after reports whether an EventsRequest with this cursor came.
static bool
fake_asked_after(uint64_t after)
{
	bool asked = false;

	pthread_mutex_lock(&F.mu);
	for (int i = 0; i < F.nreqs; i++) {
		Weft__ControlRequest *r = F.reqs[i]->control;
		asked |= r->req_case == WEFT__CONTROL_REQUEST__REQ_EVENTS &&
		    r->events->after == after;
	}
	pthread_mutex_unlock(&F.mu);
	return (asked);
}

// watch_spawn starts `weft watch [run] --json` (run NULL: everything)
// against the fake coordinator with an empty store, its output into log.
static pid_t
watch_spawn(const char *run, char *log, size_t len)
{
	static char info[512]; // the fake keeps the pointer
	char *argv[] = { "weft", "--coordinator", F.control_url, "watch",
		(char *) run, "--json", NULL };

	snprintf(info, sizeof(info), "{\"name\":\"fake\",\"events_url\":\"%s\"}",
	    F.events_url);
	fake_canned(WEFT__CONTROL_REQUEST__REQ_INFO, 0, NULL, info);
	pthread_mutex_lock(&F.mu);
	F.store = json_array(); // nothing happened yet
	pthread_mutex_unlock(&F.mu);
	snprintf(log, len, "%s/watch.log", F.dir);
	if (run == NULL) {
		argv[4] = "--json";
		argv[5] = NULL;
	}
	return (weft_h_spawn(argv, log));
}

Test(cli, watch_run_fills_a_gap_from_the_store)
{
	char     log[1024], *text;
	pid_t    pid;

	pid = watch_spawn("01RUN", log, sizeof(log));
	// Subscribed, and asked for the (empty) history.
	watch_ready(WEFT__CONTROL_REQUEST__REQ_EVENTS, 1);

	// Run 01RUN's seq 3 (id 4) is lost; another run interleaves ids.
	fake_commit(1, "01RUN", 1, "run_started", NULL, false);
	fake_commit(2, "01RUN", 2, "step_ready", "a", false);
	fake_commit(3, "01OTHER", 1, "run_started", NULL, false);
	fake_commit(4, "01RUN", 3, "step_dispatched", "a", true);
	fake_commit(5, "01OTHER", 2, "run_succeeded", NULL, false);
	fake_commit(6, "01RUN", 4, "step_succeeded", "a", false);
	fake_commit(7, "01RUN", 5, "run_succeeded", NULL, false);

	cr_assert_eq(wait_exit(pid, 10000), 0, "watch did not end with the run");
	text = expect_ids(log, (uint64_t[]) { 1, 2, 4, 6, 7 }, 5);
	cr_assert(fake_asked_after(2), "the gap was not fetched");
	free(text);
}

// A release of several runs comes whole under WEFT_TOPIC_MIXED: following
// one run, the CLI takes its events from it and leaves the others'.
Test(cli, watch_run_keeps_its_own_events_of_a_mixed_message)
{
	char     log[1024], *text;
	pid_t    pid;

	pid = watch_spawn("01RUN", log, sizeof(log));
	watch_ready(WEFT__CONTROL_REQUEST__REQ_EVENTS, 1);

	fake_commit(1, "01RUN", 1, "run_started", NULL, false);
	const fake_ev release[] = {
		{ 2, "01OTHER", 1, "run_started", NULL },
		{ 3, "01RUN", 2, "step_ready", "a" },
		{ 4, "01OTHER", 2, "step_ready", "a" },
		{ 5, "01RUN", 3, "step_dispatched", "a" },
		// Another run's end does not end the following.
		{ 6, "01OTHER", 3, "run_failed", NULL },
	};
	// Published only: the store cannot stand in for the stream.
	fake_send(release, 5, WEFT_TOPIC_MIXED, NULL);
	// Both runs' next events in one message again, the run's last.
	const fake_ev end[] = {
		{ 7, "01RUN", 4, "step_succeeded", "a" },
		{ 8, "01RUN", 5, "run_succeeded", NULL },
		{ 9, "01THIRD", 1, "run_started", NULL },
	};
	fake_send(end, 3, WEFT_TOPIC_MIXED, NULL);

	cr_assert_eq(wait_exit(pid, 10000), 0, "watch did not end with the run");
	text = expect_ids(log, (uint64_t[]) { 1, 3, 5, 7, 8 }, 5);
	cr_expect(strstr(text, "01OTHER") == NULL && strstr(text, "01THIRD") == NULL,
	    "another run's event printed: %s", text);
	free(text);
}

// Other runs' events keep coming in mixed messages, ours has ended but its
// last event was lost: following it, the CLI still asks the store after
// a second without events of its own, and ends. (Counting any message as
// activity, a busy cluster put that off for as long as it stayed busy.)
Test(cli, watch_run_asks_the_store_while_other_runs_keep_the_stream_busy)
{
	char     log[1024], *text;
	pid_t    pid;
	int      st = -1;
	int64_t  deadline;

	pid = watch_spawn("01RUN", log, sizeof(log));
	watch_ready(WEFT__CONTROL_REQUEST__REQ_EVENTS, 1);
	fake_commit(1, "01RUN", 1, "run_started", NULL, false);
	fake_commit(2, "01RUN", 2, "run_succeeded", NULL, true); // lost
	// Another run's event every 100 ms, for up to 8 s (the watch asks
	// the store once a quiet second has passed).
	deadline = weft_clock_mono_ms() + weft_h_timeout_ms(8000);
	for (uint64_t id = 3; weft_clock_mono_ms() < deadline; id++) {
		const fake_ev other[] = {
			{ id, "01OTHER", id, "step_ready", "x" },
		};
		fake_send(other, 1, WEFT_TOPIC_MIXED, NULL);
		sleep_ms(100);
		if (waitpid(pid, &st, WNOHANG) == pid) {
			break;
		}
		st = -1;
	}
	if (st == -1) {
		weft_h_kill(pid, SIGKILL);
	}
	cr_assert(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
	    "watch did not end while other runs kept the stream busy");
	text = expect_ids(log, (uint64_t[]) { 1, 2 }, 2);
	free(text);
}

// `weft run --wait` hears its run's end in a mixed message: it asks for
// the status at once, not at its next poll (WAIT_POLL_MS, 1 s, after the
// first): well within WAIT_HEARD_MS, where not hearing it takes ~1 s.
#define WAIT_HEARD_MS 700
Test(cli, run_wait_hears_the_end_in_a_mixed_message)
{
	char    log[1024], *text;
	pid_t   pid;
	int64_t t0;

	pid = wait_spawn(log, sizeof(log));
	watch_ready(WEFT__CONTROL_REQUEST__REQ_STATUS, 1);
	fake_canned(WEFT__CONTROL_REQUEST__REQ_STATUS, 0, NULL,
	    "{\"id\":\"01RUN\",\"status\":\"succeeded\",\"output\":{}}");
	const fake_ev release[] = {
		{ 1, "01OTHER", 1, "run_succeeded", NULL },
		{ 2, "01RUN", 1, "run_succeeded", NULL },
	};
	t0 = weft_clock_mono_ms();
	fake_commit_mixed(release, 2);
	cr_assert_eq(wait_exit(pid, 10000), 0);
	cr_expect_lt(weft_clock_mono_ms() - t0, WAIT_HEARD_MS,
	    "the run's end in a mixed message went unheard");
	text = slurp(log);
	cr_assert_str_eq(text, "run 01RUN succeeded\n{}\n");
	free(text);
}

Test(cli, watch_all_fills_a_gap_in_global_ids)
{
	char     log[1024], *text;
	pid_t    pid;

	pid = watch_spawn(NULL, log, sizeof(log));
	watch_ready(WEFT__CONTROL_REQUEST__REQ_INFO, 1);

	fake_commit(1, "01A", 1, "run_started", NULL, false);
	fake_commit(2, "01B", 1, "run_started", NULL, false);
	fake_commit(3, "01A", 2, "step_ready", "a", true);
	fake_commit(4, "01B", 2, "run_succeeded", NULL, false);
	fake_commit(5, "01A", 3, "run_succeeded", NULL, false);

	// Five lines, and a quiet-time poll after the last adds nothing.
	int64_t deadline = weft_clock_mono_ms() + weft_h_timeout_ms(10000);
	for (;;) {
		text = slurp(log);
		if (count_lines(text) >= 5 && fake_asked_after(5)) {
			break;
		}
		free(text);
		cr_assert_lt(weft_clock_mono_ms(), deadline, "watch stalled");
		sleep_ms(20);
	}
	free(text);
	weft_h_kill(pid, SIGTERM);
	text = expect_ids(log, (uint64_t[]) { 1, 2, 3, 4, 5 }, 5);
	cr_assert(fake_asked_after(2), "the gap was not fetched");
	free(text);
}

Test(cli, events_text_and_times_reach_the_request)
{
	char   *out, *err;
	int64_t now = weft_clock_wall_ms();

	fake_canned(WEFT__CONTROL_REQUEST__REQ_EVENTS, 0, NULL, "[]");
	cr_assert_eq(weft(&out, &err,
	                 "events --text 'disk full' --since 15m "
	                 "--until 2030-01-01T00:00:00Z"),
	    0, "%s", err);
	cr_assert_str_eq(out, "");
	Weft__EventsRequest *er = fake_last()->events;
	cr_assert_str_eq(er->text, "disk full");
	cr_assert(er->since_ms >= (uint64_t) (now - 15 * 60000) &&
	        er->since_ms <= (uint64_t) (now - 15 * 60000 + 60000),
	    "since_ms %llu", (unsigned long long) er->since_ms);
	cr_assert_eq(er->until_ms, 1893456000000ULL);
	cr_assert_str_eq(er->run_id, "");
	free(out);
	free(err);

	// A time that is none of the forms, and an empty range.
	cr_assert_eq(weft(&out, &err, "events --since yesterday"), 2);
	cr_assert(strstr(err, "--since wants") != NULL, "%s", err);
	free(out);
	free(err);
	cr_assert_eq(weft(&out, &err, "events --since 2h --until 3h"), 2);
	cr_assert(strstr(err, "--since must be before --until") != NULL, "%s",
	    err);
	free(out);
	free(err);
}

Test(cli, events_csv_quotes_fields)
{
	char *out, *err;

	fake_canned(WEFT__CONTROL_REQUEST__REQ_EVENTS, 0, NULL,
	    "[{\"id\":7,\"run\":\"01R\",\"seq\":1,\"ts\":\"2026-01-02T03:04:05."
	    "006Z\",\"type\":\"run_started\",\"step\":null,\"attempt\":null,"
	    "\"node\":\"coord\",\"data\":{}},"
	    "{\"id\":8,\"run\":\"01R\",\"seq\":2,\"ts\":\"2026-01-02T03:04:06."
	    "000Z\",\"type\":\"step_failed\",\"step\":\"two\\nlines\","
	    "\"attempt\":2,\"node\":\"w1\",\"data\":{\"error\":\"a,b "
	    "\\\"q\\\"\\nc\"}}]");
	cr_assert_eq(weft(&out, &err, "events --format csv"), 0, "%s", err);
	cr_assert_str_eq(out,
	    "id,ts,run,seq,type,step,attempt,node,data\n"
	    "7,2026-01-02T03:04:05.006Z,01R,1,run_started,,,coord,{}\n"
	    "8,2026-01-02T03:04:06.000Z,01R,2,step_failed,\"two\nlines\",2,w1,"
	    "\"{\"\"error\"\":\"\"a,b \\\"\"q\\\"\"\\nc\"\"}\"\n");
	free(out);
	free(err);

	// No events: the header alone.
	fake_canned(WEFT__CONTROL_REQUEST__REQ_EVENTS, 0, NULL, "[]");
	cr_assert_eq(weft(&out, &err, "events --format csv"), 0, "%s", err);
	cr_assert_str_eq(out, "id,ts,run,seq,type,step,attempt,node,data\n");
	free(out);
	free(err);

	// jsonl is the default's name; json stays an alias.
	cr_assert_eq(weft(&out, &err, "events --format jsonl"), 0, "%s", err);
	free(out);
	free(err);
	cr_assert_eq(weft(&out, &err, "events --format json"), 0, "%s", err);
	free(out);
	free(err);
}

Test(cli, events_bad_format_exits_2)
{
	char *out, *err;

	cr_assert_eq(weft(&out, &err, "events --format xml"), 2);
	cr_assert_str_eq(out, "");
	cr_assert(strstr(err, "--format: \"xml\" is not one of jsonl, json, "
	                      "table, csv") != NULL,
	    "%s", err);
	free(out);
	free(err);
	cr_assert_eq(weft(&out, &err, "events --format csv --json"), 2);
	free(out);
	free(err);
	cr_assert_eq(weft(&out, &err, "watch --follow"), 2);
	free(out);
	free(err);
	cr_assert_eq(F.nreqs, 0, "a bad command line reached the coordinator");
}

// fake_info makes the fake say where its events are.
static void
fake_info(void)
{
	static char info[512];

	snprintf(info, sizeof(info),
	    "{\"name\":\"fake\",\"events_url\":\"%s\"}", F.events_url);
	fake_canned(WEFT__CONTROL_REQUEST__REQ_INFO, 0, NULL, info);
}

// wait_lines waits until the file at path has n lines and returns its text
// (malloc'd).
static char *
wait_lines(const char *path, int n)
{
	int64_t deadline = weft_clock_mono_ms() + weft_h_timeout_ms(10000);
	char   *text;

	for (;;) {
		text = slurp(path);
		if (count_lines(text) >= n) {
			return (text);
		}
		cr_assert_lt(weft_clock_mono_ms(), deadline,
		    "only these lines came:\n%s", text);
		free(text);
		sleep_ms(20);
	}
}

// fake_request_after returns the first EventsRequest with this cursor
// (borrowed; NULL when none came).
static Weft__EventsRequest *
fake_request_after(uint64_t after)
{
	Weft__EventsRequest *found = NULL;

	pthread_mutex_lock(&F.mu);
	for (int i = 0; i < F.nreqs && found == NULL; i++) {
		Weft__ControlRequest *r = F.reqs[i]->control;
		if (r->req_case == WEFT__CONTROL_REQUEST__REQ_EVENTS &&
		    r->events->after == after) {
			found = r->events;
		}
	}
	pthread_mutex_unlock(&F.mu);
	return (found);
}

Test(cli, events_follow_goes_on_from_the_store_to_the_stream)
{
	char     log[1024], *text;
	pid_t    pid;

	// Stored before the client came; 3 is published only after it has
	// read the store, so it comes both ways.
	fake_info();
	fake_store_add(1, "01A", 1, "run_started", NULL, NULL);
	fake_store_add(2, "01B", 1, "run_started", NULL, NULL);
	fake_store_add(3, "01A", 2, "step_ready", "a", NULL);
	snprintf(log, sizeof(log), "%s/follow.log", F.dir);
	char *argv[] = { "weft", "--coordinator", F.control_url, "events",
		"--follow", NULL };
	pid = weft_h_spawn(argv, log);
	watch_ready(WEFT__CONTROL_REQUEST__REQ_EVENTS, 1);
	text = wait_lines(log, 3);
	free(text);

	fake_publish(3, "01A", 2, "step_ready", "a", NULL);
	fake_commit(4, "01B", 2, "run_succeeded", NULL, true); // lost
	fake_commit(5, "01A", 3, "step_dispatched", "a", false);
	fake_commit(6, "01A", 4, "step_succeeded", "a", false);

	text = wait_lines(log, 6);
	free(text);
	// Nothing more may come. Once the client, quiet after the last
	// event, asks the store what follows it, it has done all it was going
	// to do with the events before: a repeat would be in the log by now.
	int64_t deadline = weft_clock_mono_ms() + weft_h_timeout_ms(10000);
	while (!fake_asked_after(6)) {
		cr_assert_lt(weft_clock_mono_ms(), deadline,
		    "no quiet-time request after the last event");
		sleep_ms(10);
	}
	cr_assert_eq(kill(pid, SIGTERM), 0);
	cr_assert_eq(wait_exit(pid, 5000), 0, "not a clean exit on SIGTERM");
	text = expect_ids(log, (uint64_t[]) { 1, 2, 3, 4, 5, 6 }, 6);
	cr_assert_not_null(fake_request_after(3), "the gap was not fetched");
	free(text);
}

Test(cli, events_follow_filters_live_events)
{
	char     log[1024], *text;
	pid_t    pid;

	fake_info();
	fake_store_add(1, "01R", 1, "run_started", NULL, NULL);
	fake_store_add(2, "01R", 2, "step_failed", "a",
	    "{\"error\":\"disk full\"}");
	fake_store_add(3, "01R", 3, "step_failed", "b",
	    "{\"error\":\"timeout\"}");
	fake_store_add(4, "01OTHER", 1, "step_failed", "a",
	    "{\"error\":\"disk full\"}");
	snprintf(log, sizeof(log), "%s/follow.log", F.dir);
	char *argv[] = { "weft", "--coordinator", F.control_url, "events",
		"--run", "01R", "--type", "step_failed", "--text", "disk",
		"--follow", NULL };
	pid = weft_h_spawn(argv, log);
	watch_ready(WEFT__CONTROL_REQUEST__REQ_EVENTS, 1);

	// The stored part was asked for with every filter.
	Weft__EventsRequest *er = fake_request_after(0);
	cr_assert_not_null(er);
	cr_assert_str_eq(er->run_id, "01R");
	cr_assert_eq(er->n_types, 1);
	cr_assert_str_eq(er->types[0], "step_failed");
	cr_assert_str_eq(er->text, "disk");

	fake_commit(5, "01R", 4, "step_ready", "c", false);
	fake_commit_data(6, "01R", 5, "step_failed", "c",
	    "{\"error\":\"disk full again\"}", true); // lost
	fake_commit_data(7, "01R", 6, "step_failed", "d",
	    "{\"error\":\"timeout\"}", false);
	fake_commit_data(8, "01R", 7, "step_failed", "e",
	    "{\"error\":\"disk gone\"}", false);
	fake_commit(9, "01R", 8, "run_failed", NULL, false);

	// The run's end (filtered out) ends the following.
	cr_assert_eq(wait_exit(pid, 10000), 0, "did not end with the run");
	text = expect_ids(log, (uint64_t[]) { 2, 6, 8 }, 3);
	cr_assert(strstr(text, "\"data\":{\"error\":\"disk full again\"}") !=
	        NULL,
	    "%s", text);
	free(text);
}

Test(cli, definitions_lists_the_latest_versions)
{
	static const char *body =
	    "[{\"name\":\"diamond\",\"version\":3,\"params\":{\"who\":"
	    "{\"type\":\"string\",\"default\":\"world\"},"
	    "\"n\":{\"type\":\"number\"}},"
	    "\"definition\":{\"name\":\"diamond\",\"steps\":[{\"id\":\"a\"},"
	    "{\"id\":\"b\"},{\"id\":\"c\"},{\"id\":\"d\"}]},\"created_ms\":"
	    "1767323045006},"
	    "{\"name\":\"hello\",\"version\":1,\"params\":{},\"definition\":"
	    "{\"name\":\"hello\",\"steps\":[{\"id\":\"greet\"}]},"
	    "\"created_ms\":1767323046000}]";
	char *out, *err;

	fake_canned(WEFT__CONTROL_REQUEST__REQ_DEFINITIONS, 0, NULL, body);
	cr_assert_eq(weft(&out, &err, "definitions"), 0, "%s", err);
	cr_assert_eq(fake_last()->req_case,
	    WEFT__CONTROL_REQUEST__REQ_DEFINITIONS);
	cr_assert_str_eq(out,
	    "NAME     VERSION  STEPS  PARAMS       CREATED\n"
	    "diamond  3        4      who=world,n  2026-01-02T03:04:05.006Z\n"
	    "hello    1        1      -            2026-01-02T03:04:06.000Z\n");
	free(out);
	free(err);

	cr_assert_eq(weft(&out, &err, "definitions --json"), 0, "%s", err);
	cr_assert(json_same(out, body), "%s", out);
	free(out);
	free(err);
}

// fake_mute makes the fake stop answering, the way a hung coordinator
// does, and waits until each of n clients has asked it something in vain:
// they then have every answer they were going to get. Returns when the
// last answer went out (monotonic ms).
static int64_t
fake_mute(int n)
{
	int64_t deadline = weft_clock_mono_ms() + weft_h_timeout_ms(10000);
	int64_t replied;
	int     vain;

	pthread_mutex_lock(&F.mu);
	F.muted = true;
	pthread_mutex_unlock(&F.mu);
	for (;;) {
		pthread_mutex_lock(&F.mu);
		vain    = F.nvain;
		replied = F.replied_ms;
		pthread_mutex_unlock(&F.mu);
		if (vain >= n) {
			return (replied);
		}
		cr_assert_lt(weft_clock_mono_ms(), deadline,
		    "no request came after the fake fell silent");
		sleep_ms(10);
	}
}

// fake_ready waits until n clients subscribed to the events and the fake
// has had at least want[kind] requests of each kind (want has FAKE_CASES
// entries).
static void
fake_ready(int n, const int *want)
{
	int64_t deadline = weft_clock_mono_ms() + weft_h_timeout_ms(10000);
	bool    ready;

	for (;;) {
		pthread_mutex_lock(&F.mu);
		ready = F.pipes >= n;
		pthread_mutex_unlock(&F.mu);
		for (int k = 0; k < FAKE_CASES; k++) {
			ready = ready && fake_count(k) >= want[k];
		}
		if (ready) {
			return;
		}
		cr_assert_lt(weft_clock_mono_ms(), deadline, "clients not ready");
		sleep_ms(10);
	}
}

// running asserts that pid has not exited (showing its log if it has).
static void
running(pid_t pid, const char *log)
{
	int   st;
	char *text;

	if (waitpid(pid, &st, WNOHANG) == 0) {
		return;
	}
	text = slurp(log);
	cr_assert_fail("it gave up (exit %d) although the coordinator "
	               "answers:\n%s",
	    WIFEXITED(st) ? WEXITSTATUS(st) : -1, text);
	free(text);
}

// gave_up asserts what the client of log said when it gave up after
// --timeout 1s, with the time it had been unreachable.
static void
gave_up(const char *log)
{
	char  want[256];
	char *text = slurp(log);

	snprintf(want, sizeof(want), "weft: coordinator at %s unreachable for ",
	    F.control_url);
	cr_assert(strstr(text, want) != NULL, "%s", text);
	cr_assert(strstr(text, "; --timeout 1.0s); giving up\n") != NULL, "%s",
	    text);
	free(text);
}

// wait_start starts `weft run etl --wait --timeout 1s` against the fake,
// which accepts the run and says it is running; returns once the client
// has asked for the status twice. Its output goes to log (len bytes).
static pid_t
wait_start(char *log, size_t len)
{
	char  run[256];
	int   want[FAKE_CASES] = { 0 };
	pid_t pid;

	snprintf(run, sizeof(run),
	    "{\"run_id\":\"01RUN\",\"events_url\":\"%s\"}", F.events_url);
	fake_canned(WEFT__CONTROL_REQUEST__REQ_RUN, 0, NULL, run);
	fake_canned(WEFT__CONTROL_REQUEST__REQ_STATUS, 0, NULL,
	    "{\"id\":\"01RUN\",\"status\":\"running\"}");
	snprintf(log, len, "%s/wait.log", F.dir);
	char *argv[] = { "weft", "--coordinator", F.control_url, "run", "etl",
		"--wait", "--timeout", "1s", NULL };
	pid                                     = weft_h_spawn(argv, log);
	want[WEFT__CONTROL_REQUEST__REQ_STATUS] = 2;
	fake_ready(1, want);
	return (pid);
}

// The fake crashes: the clients give up after --timeout, not after the
// ctest timeout. Timed from the last answer the client had (fake_mute)
// they wait at least the timeout; from the crash, not much longer.
Test(cli, run_wait_gives_up_when_the_coordinator_is_gone)
{
	char    log[1024];
	int64_t last, crash, exited;
	pid_t   pid;
	int     rc;

	pid = wait_start(log, sizeof(log));

	last  = fake_mute(1);
	crash = weft_clock_mono_ms();
	fake_down();
	rc     = wait_exit(pid, 6000);
	exited = weft_clock_mono_ms();
	cr_assert_eq(rc, 3, "exit %d, not 3 (killed: -1)", rc);
	cr_assert_geq(exited - last, 1000, "gave up after %lld ms",
	    (long long) (exited - last));
	cr_assert_lt(exited - crash, weft_h_timeout_ms(1000 + 3000),
	    "gave up %lld ms after the crash", (long long) (exited - crash));
	gave_up(log);
}

Test(cli, watch_gives_up_when_the_coordinator_is_gone)
{
	char    one[1024], all[1024];
	int     want[FAKE_CASES] = { 0 };
	int64_t last, crash, exited;
	pid_t   pid_one, pid_all;
	int     rc_one, rc_all;

	// One run (quiet-time store requests show the coordinator is
	// there) and everything (nothing to ask the store for: pings).
	fake_info();
	fake_store_add(1, "01RUN", 1, "run_started", NULL, NULL);
	snprintf(one, sizeof(one), "%s/one.log", F.dir);
	snprintf(all, sizeof(all), "%s/all.log", F.dir);
	char *argv_one[] = { "weft", "--coordinator", F.control_url, "watch",
		"01RUN", "--json", "--timeout", "1s", NULL };
	char *argv_all[] = { "weft", "--coordinator", F.control_url, "watch",
		"--json", "--timeout=1s", NULL };
	pid_one = weft_h_spawn(argv_one, one);
	pid_all = weft_h_spawn(argv_all, all);
	// Each asked where the events are; then a quiet-time request each.
	want[WEFT__CONTROL_REQUEST__REQ_INFO]   = 3;
	want[WEFT__CONTROL_REQUEST__REQ_EVENTS] = 2;
	fake_ready(2, want);

	last  = fake_mute(2);
	crash = weft_clock_mono_ms();
	fake_down();
	rc_one = wait_exit(pid_one, 6000);
	rc_all = wait_exit(pid_all, 6000);
	exited = weft_clock_mono_ms();
	cr_assert_eq(rc_one, 3, "watch RUN: exit %d, not 3 (killed: -1)",
	    rc_one);
	cr_assert_eq(rc_all, 3, "watch: exit %d, not 3 (killed: -1)", rc_all);
	cr_assert_geq(exited - last, 1000, "gave up after %lld ms",
	    (long long) (exited - last));
	cr_assert_lt(exited - crash, weft_h_timeout_ms(1000 + 3000),
	    "gave up %lld ms after the crash", (long long) (exited - crash));
	gave_up(one);
	gave_up(all);
}

// A coordinator that still has the connection but no longer answers: each
// request's 10 s reply timeout is cut short by --timeout.
Test(cli, run_wait_gives_up_on_a_coordinator_that_hangs)
{
	char    log[1024];
	int64_t last, exited;
	pid_t   pid;
	int     rc;

	pid = wait_start(log, sizeof(log));

	last   = fake_mute(1);
	rc     = wait_exit(pid, 6000);
	exited = weft_clock_mono_ms();
	cr_assert_eq(rc, 3, "exit %d, not 3 (killed: -1)", rc);
	cr_assert_geq(exited - last, 1000, "gave up after %lld ms",
	    (long long) (exited - last));
	cr_assert_lt(exited - last, weft_h_timeout_ms(1000 + 3000),
	    "gave up after %lld ms", (long long) (exited - last));
	gave_up(log);
}

// The timeout is about the coordinator, not the run: a run that goes on
// for three times --timeout, and a watch with no events at all, keep
// going as long as the coordinator answers.
Test(cli, a_coordinator_that_answers_keeps_them_waiting)
{
	char    run[256], wait_log[1024], watch_log[1024], *text;
	int     want[FAKE_CASES] = { 0 };
	int64_t start;
	pid_t   pid_wait, pid_watch;

	snprintf(run, sizeof(run),
	    "{\"run_id\":\"01RUN\",\"events_url\":\"%s\"}", F.events_url);
	fake_canned(WEFT__CONTROL_REQUEST__REQ_RUN, 0, NULL, run);
	fake_canned(WEFT__CONTROL_REQUEST__REQ_STATUS, 0, NULL,
	    "{\"id\":\"01RUN\",\"status\":\"running\"}");
	fake_info();
	snprintf(wait_log, sizeof(wait_log), "%s/wait.log", F.dir);
	snprintf(watch_log, sizeof(watch_log), "%s/watch.log", F.dir);
	char *argv_wait[] = { "weft", "--coordinator", F.control_url, "run",
		"etl", "--wait", "--timeout", "1s", NULL };
	char *argv_watch[] = { "weft", "--coordinator", F.control_url,
		"watch", "--json", "--timeout", "1s", NULL };
	pid_wait  = weft_h_spawn(argv_wait, wait_log);
	pid_watch = weft_h_spawn(argv_watch, watch_log);
	want[WEFT__CONTROL_REQUEST__REQ_STATUS] = 1;
	want[WEFT__CONTROL_REQUEST__REQ_INFO]   = 1;
	fake_ready(2, want);

	start = weft_clock_mono_ms();
	while (weft_clock_mono_ms() - start < 3000) {
		running(pid_wait, wait_log);
		running(pid_watch, watch_log);
		sleep_ms(20);
	}
	// They kept asking: that is how they knew.
	cr_assert_geq(fake_count(WEFT__CONTROL_REQUEST__REQ_STATUS), 4);
	cr_assert_geq(fake_count(WEFT__CONTROL_REQUEST__REQ_INFO), 4);

	// The run ends: the wait ends with it, the watch prints it.
	fake_canned(WEFT__CONTROL_REQUEST__REQ_STATUS, 0, NULL,
	    "{\"id\":\"01RUN\",\"status\":\"succeeded\"}");
	fake_commit(1, "01RUN", 1, "run_succeeded", NULL, false);
	cr_assert_eq(wait_exit(pid_wait, 10000), 0);
	text = slurp(wait_log);
	cr_assert_str_eq(text, "run 01RUN succeeded\n");
	free(text);
	text = wait_lines(watch_log, 1);
	free(text);
	cr_assert_eq(kill(pid_watch, SIGTERM), 0);
	cr_assert_eq(wait_exit(pid_watch, 5000), 0);
	text = slurp(watch_log);
	cr_assert_eq(count_lines(text), 1, "%s", text);
	cr_assert(strstr(text, "\"type\":\"run_succeeded\"") != NULL, "%s",
	    text);
	free(text);
}

Test(cli, bad_timeout_exits_2)
{
	static const char *bad[] = { "abc", "-1", "10x", "1.5s", "", "5 s",
		"99999999999999999999" };
	static const char *good[] = { "0", "30", "500ms", "2m", "1h" };
	char              *out, *err;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(weft(&out, &err, "run etl --wait --timeout '%s'",
		                 bad[i]),
		    2, "--timeout '%s'", bad[i]);
		cr_assert(strstr(err, "--timeout wants a duration") != NULL,
		    "%s", err);
		free(out);
		free(err);
		cr_assert_eq(weft(&out, &err, "watch --timeout='%s'", bad[i]), 2,
		    "--timeout '%s'", bad[i]);
		cr_assert(strstr(err, "--timeout") != NULL, "%s", err);
		free(out);
		free(err);
	}
	// Only where there is waiting or following.
	cr_assert_eq(weft(&out, &err, "run etl --timeout 5s"), 2);
	cr_assert(strstr(err, "--timeout goes with --wait") != NULL, "%s", err);
	free(out);
	free(err);
	cr_assert_eq(weft(&out, &err, "events --timeout 5s"), 2);
	cr_assert(strstr(err, "--timeout goes with --follow") != NULL, "%s",
	    err);
	free(out);
	free(err);
	cr_assert_eq(weft(&out, &err, "status 01RUN --timeout 5s"), 2);
	free(out);
	free(err);
	cr_assert_eq(F.nreqs, 0, "a bad command line reached the coordinator");

	// The forms it takes (0: never give up).
	fake_canned(WEFT__CONTROL_REQUEST__REQ_RUN, 0, NULL,
	    "{\"run_id\":\"01RUN\"}");
	fake_canned(WEFT__CONTROL_REQUEST__REQ_STATUS, 0, NULL,
	    "{\"id\":\"01RUN\",\"status\":\"failed\",\"error\":\"boom\"}");
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		cr_assert_eq(weft(&out, &err, "run etl --wait --timeout %s",
		                 good[i]),
		    1, "--timeout %s: %s", good[i], err);
		cr_assert_str_eq(out, "run 01RUN failed\nboom\n");
		free(out);
		free(err);
	}
}

// An output read in chunks names, from the second chunk on, the blob the
// first answer named: a value replaced meanwhile (the step ran again) is
// then refused by the coordinator instead of spliced from two values.
Test(cli, output_chunks_after_the_first_name_its_blob)
{
	char *out, *err;

	fake_canned(WEFT__CONTROL_REQUEST__REQ_OUTPUT, 0, NULL,
	    "{\"size\":10,\"chunks\":2,\"chunk\":0,\"blob\":\"sha256:ab\"}");
	cr_assert_eq(weft(&out, &err, "status R1 --step s --output"), 0, "%s",
	    err);
	cr_assert_eq(fake_count(WEFT__CONTROL_REQUEST__REQ_OUTPUT), 2);
	Weft__OutputRequest *first = F.reqs[F.nreqs - 2]->control->output;
	Weft__OutputRequest *second = F.reqs[F.nreqs - 1]->control->output;
	cr_expect_eq(first->chunk, 0);
	cr_expect_str_eq(first->blob, "", "the first chunk pins nothing");
	cr_expect_eq(second->chunk, 1);
	cr_expect_str_eq(second->blob, "sha256:ab");
	cr_expect_str_eq(second->step_id, "s");
	free(out);
	free(err);

	// The coordinator's refusal reaches the user, exit 1.
	fake_canned(WEFT__CONTROL_REQUEST__REQ_OUTPUT, WEFT_ESTATE,
	    "output of R1/s changed while it was read", NULL);
	cr_assert_eq(weft(&out, &err, "status R1 --step s --output"), 1);
	cr_expect(strstr(err, "changed while it was read") != NULL, "%s", err);
	free(out);
	free(err);
}
