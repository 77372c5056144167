// batch_test: many runs in one request against a real coordinator and
// workers: the RunBatchRequest on the control socket (per-item results and
// errors, the bounds, one engine iteration for all its runs), POST
// /api/v1/runs/batch, `weft run --count` and `weft submit FILE.jsonl`
// (malformed lines included), the operate role they need, and how a
// batch's events are published (several runs' in one message).
#include <criterion/criterion.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "alloc.h"
#include "clock.h"
#include "cluster.h"
#include "harness.h"
#include "sub.h"
#include "wire.h"

static weft_cluster c;

static void
up(void)
{
	weft_cluster_start(&c, 2, 200);
}

static void
down(void)
{
	weft_cluster_stop(&c);
}

TestSuite(batch, .init = up, .fini = down, .timeout = 240);

// A one-step run with a required parameter, so that an item can be wrong
// in its params; and one whose step no worker takes (its runs stay put).
static const char *def_bt =
    "{\"name\":\"bt\",\"params\":{\"n\":{\"type\":\"int\","
    "\"required\":true}},\"steps\":[{\"id\":\"a\",\"type\":\"noop\"}]}";
static const char *def_idle =
    "{\"name\":\"idle\",\"steps\":[{\"id\":\"a\",\"type\":\"nowhere\"}]}";

static void
define(const char *def)
{
	char *out;
	int   rv = weft_cluster_cli(&c, &out, "define '%s' 2>&1",
            weft_cluster_write(&c, "def.json", def));

	cr_assert_eq(rv, 0, "define: %s", out);
	free(out);
}

// ctl sends req (borrowed) on the control socket and returns the reply's
// body (new reference; NULL when the reply is an error: *code and error
// say which).
static json_t *
ctl(Weft__ControlRequest *req, int *code, char *error, size_t len)
{
	Weft__Envelope  env = WEFT__ENVELOPE__INIT;
	Weft__Envelope *rep;
	weft_wire       w;
	nng_socket      s;
	nng_msg        *msg;
	json_t         *body = NULL;

	weft_wire_init(&w, "batch-test");
	env.body_case = WEFT__ENVELOPE__BODY_CONTROL;
	env.control   = req;
	cr_assert_eq(weft_wire_pack(&w, &env, NULL, &msg), WEFT_OK);
	weft_wire_fini(&w);
	cr_assert_eq(nng_req0_open(&s), 0);
	weft_wire_socket_limits(s);
	nng_socket_set_ms(s, NNG_OPT_RECVTIMEO,
	    (nng_duration) weft_h_timeout_ms(30000));
	nng_socket_set_ms(s, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
	cr_assert_eq(nng_dial(s, c.control, NULL, 0), 0);
	cr_assert_eq(nng_sendmsg(s, msg, 0), 0);
	cr_assert_eq(nng_recvmsg(s, &msg, 0), 0, "no reply to the batch");
	cr_assert_eq(weft_wire_expect(NULL, msg,
	                 WEFT__ENVELOPE__BODY_CONTROL_REPLY, &rep),
	    WEFT_OK);
	nng_msg_free(msg);
	nng_close(s);
	*code = rep->control_reply->code;
	snprintf(error, len, "%s", rep->control_reply->error);
	if (*code == 0) {
		body = json_loads(rep->control_reply->body_json, 0, NULL);
		cr_assert_not_null(body, "reply not JSON: %s",
		    rep->control_reply->body_json);
	}
	weft_wire_free(rep);
	return (body);
}

// batch_call sends a RunBatchRequest of the n runs rr (borrowed).
static json_t *
batch_call(Weft__RunRequest **rr, size_t n, int *code, char *error,
    size_t len)
{
	Weft__ControlRequest  req = WEFT__CONTROL_REQUEST__INIT;
	Weft__RunBatchRequest br  = WEFT__RUN_BATCH_REQUEST__INIT;

	br.runs       = rr;
	br.n_runs     = n;
	req.req_case  = WEFT__CONTROL_REQUEST__REQ_RUN_BATCH;
	req.run_batch = &br;
	return (ctl(&req, code, error, len));
}

// expect_item_error checks result i of a batch: an error of code name
// mentioning what, with its index.
static void
expect_item_error(json_t *results, size_t i, const char *code,
    const char *what)
{
	json_t     *r   = json_array_get(results, i);
	const char *err = json_string_value(json_object_get(r, "error"));
	const char *cd  = json_string_value(json_object_get(r, "code"));

	cr_expect_null(json_object_get(r, "run_id"), "item %zu has a run", i);
	cr_expect_eq(json_integer_value(json_object_get(r, "index")),
	    (json_int_t) i, "item %zu: wrong index", i);
	cr_expect(err != NULL && strstr(err, what) != NULL,
	    "item %zu: error \"%s\" lacks \"%s\"", i, err, what);
	cr_expect(cd != NULL && strcmp(cd, code) == 0,
	    "item %zu: code %s, want %s", i, cd, code);
}

// expect_succeeded waits for run id to end and checks it succeeded.
static void
expect_succeeded(const char *id)
{
	json_t *run = weft_cluster_run_end(&c, id, 30000);

	cr_expect_str_eq(json_string_value(json_object_get(run, "status")),
	    "succeeded", "run %s", id);
	json_decref(run);
}

Test(batch, control_request_item_by_item)
{
	Weft__RunRequest  r[8], *rr[8];
	char              error[512];
	char             *big = weft_xalloc((4u << 20) + 16);
	json_t           *body, *res;
	int               code;

	define(def_bt);
	for (int i = 0; i < 8; i++) {
		weft__run_request__init(&r[i]);
		r[i].definition = "bt";
		r[i].params_json = "{\"n\":1}";
		rr[i] = &r[i];
	}
	memset(big, ' ', (4u << 20) + 15);
	big[(4u << 20) + 15] = '\0';
	r[1].definition      = "nope";
	r[2].input_json      = "{";
	r[3].params_json     = "{}";
	r[4].definition      = "";
	r[5].definition      = "";
	r[5].definition_json =
	    "{\"name\":\"bt_inline\",\"steps\":[{\"id\":\"x\",\"type\":\"noop\"}]}";
	r[5].params_json     = "";
	r[6].input_json      = big;

	body = batch_call(rr, 8, &code, error, sizeof(error));
	free(big);
	cr_assert_eq(code, 0, "the batch was refused: %s", error);
	res = json_object_get(body, "results");
	cr_assert_eq(json_array_size(res), 8, "a result per item");
	expect_item_error(res, 1, "EDEF", "no definition named \"nope\"");
	expect_item_error(res, 2, "EINVAL", "input is not valid JSON");
	expect_item_error(res, 3, "EINVAL", "n");
	expect_item_error(res, 4, "EDEF", "name a definition or send one");
	expect_item_error(res, 6, "ETOOBIG", "too large");
	// The good items ran, each its own run, wherever the bad ones were.
	const char *ids[] = { json_string_value(json_object_get(
	                          json_array_get(res, 0), "run_id")),
		json_string_value(json_object_get(json_array_get(res, 5), "run_id")),
		json_string_value(json_object_get(json_array_get(res, 7), "run_id")) };
	for (int i = 0; i < 3; i++) {
		cr_assert_not_null(ids[i], "good item %d has no run_id", i);
		expect_succeeded(ids[i]);
	}
	cr_expect_str_neq(ids[0], ids[2]);
	json_decref(body);
}

Test(batch, control_request_bounds)
{
	Weft__RunRequest **rr = weft_xalloc((WEFT_WIRE_RUN_BATCH_MAX + 1) *
	    sizeof(*rr));
	Weft__RunRequest   r;
	char               error[512];
	json_t            *body;
	int                code;

	weft__run_request__init(&r);
	r.definition = "bt";
	body = batch_call(rr, 0, &code, error, sizeof(error));
	cr_expect_null(body);
	cr_expect_eq(code, WEFT_EINVAL, "empty: code %d", code);
	cr_expect(strstr(error, "empty") != NULL, "empty: %s", error);

	for (size_t i = 0; i <= WEFT_WIRE_RUN_BATCH_MAX; i++) {
		rr[i] = &r;
	}
	body = batch_call(rr, WEFT_WIRE_RUN_BATCH_MAX + 1, &code, error,
	    sizeof(error));
	cr_expect_null(body);
	cr_expect_eq(code, WEFT_ETOOBIG, "oversize: code %d", code);
	cr_expect(strstr(error, "10001 runs") != NULL &&
	        strstr(error, "10000") != NULL,
	    "oversize: %s", error);
	// Refused whole: nothing of it was created.
	cr_expect_eq(weft_cluster_count_events(&c, NULL, "run_queued"), 0);
	free(rr);
}

// All the runs of one batch are created in one engine iteration, so one
// commit holds them: the same created_ms for every one.
Test(batch, one_iteration_for_the_whole_batch)
{
	Weft__RunRequest  r, *rr[300];
	char              error[512];
	json_t           *body, *res, *runs, *v;
	int               code;
	size_t            i;
	json_int_t        created = -1;

	define(def_bt);
	weft__run_request__init(&r);
	r.definition  = "bt";
	r.params_json = "{\"n\":2}";
	for (i = 0; i < 300; i++) {
		rr[i] = &r;
	}
	body = batch_call(rr, 300, &code, error, sizeof(error));
	cr_assert_eq(code, 0, "%s", error);
	res = json_object_get(body, "results");
	cr_assert_eq(json_array_size(res), 300);
	expect_succeeded(json_string_value(
	    json_object_get(json_array_get(res, 299), "run_id")));
	runs = weft_cluster_cli_json(&c, "runs --definition bt --limit 1000");
	cr_assert_eq(json_array_size(runs), 300, "runs listed: %zu",
	    json_array_size(runs));
	json_array_foreach (runs, i, v) {
		json_int_t t = json_integer_value(json_object_get(v,
		    "created_ms"));
		if (created < 0) {
			created = t;
		}
		cr_expect_eq(t, created, "run %zu created at %lld, not %lld", i,
		    (long long) t, (long long) created);
	}
	json_decref(runs);
	json_decref(body);
}

// ---- the event stream ----

#define STREAM_MAX 4096

// One event a raw subscriber saw, with the topic and number of the message
// it came in.
typedef struct stream_ev {
	uint64_t id;
	char     run[48], topic[64], type[32];
	size_t   msg;
} stream_ev;

typedef struct stream {
	weft_sub        sub;
	weft_wire       wire; // keyed: every message is verified
	pthread_mutex_t mx;
	stream_ev       ev[STREAM_MAX];
	size_t          n, msgs;
} stream;

// stream_take records the events of one message (on the sub thread).
static void
stream_take(void *arg, nng_msg *m)
{
	stream         *s = arg;
	Weft__Envelope *env;
	char            topic[64];
	size_t          len = strnlen(nng_msg_body(m), nng_msg_len(m));

	snprintf(topic, sizeof(topic), "%.*s", (int) len,
	    (const char *) nng_msg_body(m));
	if (weft_wire_unpack(&s->wire, m, 1, &env) != WEFT_OK) {
		return;
	}
	pthread_mutex_lock(&s->mx);
	for (size_t k = 0; env->body_case == WEFT__ENVELOPE__BODY_EVENTS &&
	     k < env->events->n_events && s->n < STREAM_MAX;
	     k++) {
		stream_ev *e = &s->ev[s->n++];
		e->id        = env->events->events[k]->id;
		e->msg       = s->msgs;
		snprintf(e->run, sizeof(e->run), "%s",
		    env->events->events[k]->run_id);
		snprintf(e->topic, sizeof(e->topic), "%s", topic);
		snprintf(e->type, sizeof(e->type), "%s",
		    env->events->events[k]->type);
	}
	s->msgs++;
	pthread_mutex_unlock(&s->mx);
	weft_wire_free(env);
}

// stream_count counts the events of run seen so far.
static size_t
stream_count(stream *s, const char *run)
{
	size_t n = 0;

	pthread_mutex_lock(&s->mx);
	for (size_t k = 0; k < s->n; k++) {
		n += strcmp(s->ev[k].run, run) == 0;
	}
	pthread_mutex_unlock(&s->mx);
	return (n);
}

// stored_count counts the stored events of run.
static size_t
stored_count(const char *run)
{
	char  *out;
	size_t n = 0;

	cr_assert_eq(weft_cluster_cli(&c, &out, "events --run %s", run), 0);
	for (char *p = out; (p = strchr(p, '\n')) != NULL; p++) {
		n++;
	}
	free(out);
	return (n);
}

// stream_wait waits until the stream brought every stored event of run.
static void
stream_wait(stream *s, const char *run)
{
	size_t  want     = stored_count(run);
	int64_t deadline = weft_clock_mono_ms() + weft_h_timeout_ms(10000);

	while (stream_count(s, run) < want) {
		cr_assert_lt(weft_clock_mono_ms(), deadline,
		    "run %s: %zu of its %zu events published", run,
		    stream_count(s, run), want);
		weft_clock_sleep_ms(20);
	}
	cr_expect_eq(stream_count(s, run), want, "run %s: events repeated", run);
}

// A release holding the events of many runs is published as one message
// under WEFT_TOPIC_MIXED (a message per run cost ~40% of the CPU of a
// 1,000-run batch); a release of one run's events still goes under its
// "run:<id>". Ids stay in order either way. Which later releases hold
// several runs depends on timing; the batch's own start does not.
Test(batch, a_release_of_many_runs_is_one_mixed_message)
{
	Weft__RunRequest r, *rr[50];
	stream          *s = weft_xalloc(sizeof(*s));
	char             error[512], *out, lone[64];
	json_t          *body, *res;
	int              code;
	size_t           i, mixed_runs = 0, mixed_starts = 0;

	define(def_bt);
	pthread_mutex_init(&s->mx, NULL);
	weft_cluster_wire(&c, &s->wire, "batch-test-sub");
	weft_sub_start(&s->sub, c.events, stream_take, s);
	weft_clock_sleep_ms(200); // the subscriber's pipe is up

	weft__run_request__init(&r);
	r.definition  = "bt";
	r.params_json = "{\"n\":3}";
	for (i = 0; i < 50; i++) {
		rr[i] = &r;
	}
	body = batch_call(rr, 50, &code, error, sizeof(error));
	cr_assert_eq(code, 0, "%s", error);
	res = json_object_get(body, "results");
	for (i = 0; i < 50; i++) {
		const char *id = json_string_value(
		    json_object_get(json_array_get(res, i), "run_id"));
		expect_succeeded(id);
		stream_wait(s, id);
	}
	// A run alone: its releases hold its events only.
	cr_assert_eq(weft_cluster_cli(&c, &out, "run bt --params '{\"n\":4}'"),
	    0);
	snprintf(lone, sizeof(lone), "%.*s", (int) strcspn(out, "\n"), out);
	free(out);
	expect_succeeded(lone);
	stream_wait(s, lone);
	weft_sub_stop(&s->sub);

	for (i = 0; i < s->n; i++) {
		stream_ev *e = &s->ev[i];
		char       want[80];
		cr_assert(i == 0 || e->id > s->ev[i - 1].id,
		    "event %" PRIu64 " after %" PRIu64, e->id, s->ev[i - 1].id);
		if (strcmp(e->topic, WEFT_TOPIC_MIXED) == 0) {
			mixed_starts += strcmp(e->type, "run_started") == 0;
			// Another run in the same message.
			for (size_t k = i + 1;
			     k < s->n && s->ev[k].msg == e->msg; k++) {
				if (strcmp(s->ev[k].run, e->run) != 0) {
					mixed_runs++;
					break;
				}
			}
			continue;
		}
		if (e->run[0] == '\0') {
			// A node's event (a worker's, the definition's).
			cr_assert(strncmp(e->topic, "node:", 5) == 0,
			    "event %" PRIu64 " of no run under %s", e->id,
			    e->topic);
			continue;
		}
		snprintf(want, sizeof(want), "run:%s", e->run);
		cr_assert_str_eq(e->topic, want, "event %" PRIu64 " of run %s",
		    e->id, e->run);
		// A batched run's later events may well be released alone
		// (the last run to finish ends by itself), but the batch
		// started its 50 runs in one release.
		cr_expect(strcmp(e->run, lone) == 0 ||
		        strcmp(e->type, "run_started") != 0,
		    "event %" PRIu64 " (run_started) of batched run %s came "
		    "alone",
		    e->id, e->run);
	}
	cr_expect_gt(mixed_runs, 0, "no message held several runs");
	cr_expect_eq(mixed_starts, 50, "%zu of the batch's 50 run_started "
	                               "came mixed",
	    mixed_starts);
	for (i = 0; i < s->n; i++) {
		if (strcmp(s->ev[i].run, lone) == 0) {
			cr_expect_str_neq(s->ev[i].topic, WEFT_TOPIC_MIXED,
			    "the lone run's event %" PRIu64 " came mixed",
			    s->ev[i].id);
		}
	}
	weft_wire_fini(&s->wire);
	pthread_mutex_destroy(&s->mx);
	free(s);
	json_decref(body);
}

// ---- HTTP ----

// http_post posts data (a file's contents with "@FILE") to path; returns
// the status, *body the answer.
static int
http_post(const char *path, const char *data, char **body)
{
	char  cmd[4096], out[600];
	char *code;
	int   status;

	snprintf(out, sizeof(out), "%s/http.out", c.dir);
	snprintf(cmd, sizeof(cmd),
	    "curl -s -o '%s' -w '%%{http_code}' -X POST -H 'Content-Type: "
	    "application/json' --data-binary '%s' 'http://%s%s'",
	    out, data, c.http, path);
	cr_assert_eq(weft_h_run(cmd, &code), 0, "curl failed: %s", cmd);
	status = atoi(code);
	free(code);
	snprintf(cmd, sizeof(cmd), "cat '%s'", out);
	weft_h_run(cmd, body);
	return (status);
}

// expect_refused posts data and expects status with an error naming what.
static void
expect_refused(const char *data, int status, const char *what)
{
	char   *body;
	int     st = http_post("/api/v1/runs/batch", data, &body);
	json_t *v  = json_loads(body, 0, NULL);
	const char *err = json_string_value(json_object_get(v, "error"));

	cr_expect_eq(st, status, "%.80s: status %d, want %d: %s", data, st,
	    status, body);
	cr_expect(err != NULL && strstr(err, what) != NULL,
	    "%.80s: error \"%s\" lacks \"%s\"", data, err, what);
	json_decref(v);
	free(body);
}

Test(batch, http_endpoint)
{
	char   *body;
	json_t *v, *res;
	int     st;

	define(def_bt);
	st = http_post("/api/v1/runs/batch",
	    "{\"runs\":[{\"definition\":\"bt\",\"params\":{\"n\":1}}, 5, "
	    "{\"definition\":3}, {\"definition\":\"nope\"}, "
	    "{\"definition\":\"bt\",\"input\":{\"x\":1},\"params\":{\"n\":2}}, "
	    "{\"definition\":\"bt\"}, "
	    "{\"definition_json\":{\"name\":\"bh\",\"steps\":[{\"id\":\"a\","
	    "\"type\":\"noop\"}]}}]}",
	    &body);
	cr_assert_eq(st, 200, "status %d: %s", st, body);
	v   = json_loads(body, 0, NULL);
	res = json_object_get(v, "results");
	cr_assert_eq(json_array_size(res), 7, "%s", body);
	expect_item_error(res, 1, "EINVAL", "must be a JSON object");
	expect_item_error(res, 2, "EINVAL", "\"definition\" must be the name");
	expect_item_error(res, 3, "EDEF", "no definition named \"nope\"");
	expect_item_error(res, 5, "EINVAL", "n");
	for (size_t i = 0; i < 7; i += i == 0 ? 4 : 2) {
		const char *id = json_string_value(
		    json_object_get(json_array_get(res, i), "run_id"));
		cr_assert_not_null(id, "item %zu: %s", i, body);
		expect_succeeded(id);
	}
	json_decref(v);
	free(body);

	// Requests that are not a batch: refused whole, naming what.
	expect_refused("", 400, "empty");
	expect_refused("{\"runs\":", 400, "not JSON");
	expect_refused("[1]", 400, "JSON object");
	expect_refused("{}", 400, "\"runs\" must be a non-empty array");
	expect_refused("{\"runs\":{}}", 400, "\"runs\" must be a non-empty");
	expect_refused("{\"runs\":[]}", 400, "\"runs\" must be a non-empty");
	{
		// 10,001 items: over the bound, refused before any is looked at.
		size_t n   = 16 + 3 * (WEFT_WIRE_RUN_BATCH_MAX + 1);
		char  *big = weft_xalloc(n), *p = big;
		p += sprintf(p, "{\"runs\":[");
		for (int i = 0; i <= WEFT_WIRE_RUN_BATCH_MAX; i++) {
			p += sprintf(p, "%s{}", i ? "," : "");
		}
		sprintf(p, "]}");
		const char *file = weft_cluster_write(&c, "big.json", big);
		char        data[700];
		snprintf(data, sizeof(data), "@%s", file);
		expect_refused(data, 413, "10001 runs, over the limit of 10000");
		free(big);
	}
	cr_expect_eq(weft_cluster_count_events(&c, NULL, "run_queued"), 3);
	st = weft_h_run_fmt(&body, "curl -s -o /dev/null -w '%%{http_code}' "
	                           "'http://%s/api/v1/runs/batch'", c.http);
	cr_expect_eq(atoi(body), 405, "GET batch: %s", body);
	free(body);
}

// ---- the CLI ----

Test(batch, run_count)
{
	char *out, *p, *line;
	int   rv, n = 0;

	define(def_bt);
	rv = weft_cluster_cli(&c, &out, "run bt --count 25 --params '{\"n\":1}'");
	cr_assert_eq(rv, 0, "run --count: exit %d: %s", rv, out);
	for (line = strtok_r(out, "\n", &p); line != NULL;
	     line = strtok_r(NULL, "\n", &p)) {
		cr_expect(strlen(line) > 8 && strchr(line, ' ') == NULL,
		    "not a run id: %s", line);
		n++;
	}
	cr_expect_eq(n, 25, "ids printed: %d", n);
	free(out);

	rv = weft_cluster_cli(&c, &out,
	    "run bt --count 3 --params '{\"n\":1}' --wait --timeout 60s");
	cr_expect_eq(rv, 0, "run --count --wait: exit %d: %s", rv, out);
	for (n = 0, p = out; (p = strstr(p, " succeeded")) != NULL; p++) {
		n++;
	}
	cr_expect_eq(n, 3, "--wait reports every run: %s", out);
	free(out);

	// Many at once, waited for: one subscription for them all (a
	// socket per run hung in nng 1.5.2's close about one time in three
	// at 800 runs). Three times, each bounded: a hang fails with logs.
	c.cli_limit_ms = 60000;
	for (int k = 0; k < 3; k++) {
		rv = weft_cluster_cli(&c, &out,
		    "run bt --count 800 --params '{\"n\":1}' --wait");
		cr_expect_eq(rv, 0, "run --count 800 --wait (try %d): exit %d",
		    k, rv);
		for (n = 0, p = out; (p = strstr(p, " succeeded")) != NULL;
		     p++) {
			n++;
		}
		cr_expect_eq(n, 800, "try %d: %d runs reported", k, n);
		free(out);
	}
	c.cli_limit_ms = 0;

	rv = weft_cluster_cli(&c, &out, "run bt --count 0 2>&1");
	cr_expect_eq(rv, 2, "--count 0: exit %d", rv);
	cr_expect(strstr(out, "--count") != NULL, "%s", out);
	free(out);
	rv = weft_cluster_cli(&c, &out, "run bt --count many 2>&1");
	cr_expect_eq(rv, 2, "--count many: exit %d", rv);
	cr_expect(strstr(out, "--count wants a number") != NULL, "%s", out);
	free(out);
	// Every run refused: no id, each failure named, exit 1.
	rv = weft_cluster_cli(&c, &out, "run nope --count 2 2>&1");
	cr_expect_eq(rv, 1, "unknown definition: exit %d: %s", rv, out);
	cr_expect(strstr(out, "run 1: no definition named \"nope\"") != NULL &&
	        strstr(out, "run 2: ") != NULL,
	    "%s", out);
	free(out);
}

// More runs than one batch holds: the CLI sends two batch requests.
Test(batch, run_count_over_one_batch)
{
	char  *out;
	json_t *seen = json_object();
	int    rv, n = 0;

	define(def_idle);
	rv = weft_cluster_cli(&c, &out, "run idle --count %d",
	    WEFT_WIRE_RUN_BATCH_MAX + 1);
	cr_assert_eq(rv, 0, "exit %d", rv);
	for (char *p, *l = strtok_r(out, "\n", &p); l != NULL;
	     l = strtok_r(NULL, "\n", &p)) {
		json_object_set_new(seen, l, json_true());
		n++;
	}
	cr_expect_eq(n, WEFT_WIRE_RUN_BATCH_MAX + 1, "lines: %d", n);
	cr_expect_eq(json_object_size(seen), (size_t) n, "ids repeat");
	free(out);
	json_decref(seen);
}

Test(batch, submit_file)
{
	const char *file;
	char       *out, *want;
	char      **lines = weft_xalloc(16 * sizeof(*lines));
	char       *p, *l;
	int         rv, n = 0;

	define(def_bt);
	file = weft_cluster_write(&c, "runs.jsonl",
	    "{\"definition\":\"bt\",\"params\":{\"n\":1}}\n"
	    "\n"
	    "not json\n"
	    "{\"definition\":3}\n"
	    "{\"definition\":\"nope\"}\n"
	    "{\"definition\":\"bt\",\"params\":{\"n\":2},\"input\":{\"k\":\"v\"}}\n"
	    "[1,2]\n"
	    "{\"definition\":\"bt\",\"params\":{\"n\":3}}"); // no final newline
	rv = weft_cluster_cli(&c, &out, "submit '%s'", file);
	cr_expect_eq(rv, 1, "a line failed: exit %d: %s", rv, out);
	want = weft_xstrdup(out);
	for (l = strtok_r(out, "\n", &p); l != NULL && n < 16;
	     l = strtok_r(NULL, "\n", &p)) {
		lines[n++] = l;
	}
	cr_assert_eq(n, 7, "one line per input line but the blank: %s", want);
	cr_expect(strncmp(lines[1], "line 3: not valid JSON", 22) == 0, "%s",
	    lines[1]);
	cr_expect(strncmp(lines[2], "line 4: \"definition\" must be", 28) == 0,
	    "%s", lines[2]);
	cr_expect(strncmp(lines[3], "line 5: no definition named \"nope\"",
	              34) == 0,
	    "%s", lines[3]);
	cr_expect(strncmp(lines[5], "line 7: a run request must be a JSON "
	                            "object", 42) == 0,
	    "%s", lines[5]);
	expect_succeeded(lines[0]);
	expect_succeeded(lines[4]);
	expect_succeeded(lines[6]);
	free(out);
	free(want);

	// Standard input, all good: exit 0, --json lines.
	rv = weft_cluster_cli(&c, &out,
	    "submit --json - < '%s'",
	    weft_cluster_write(&c, "ok.jsonl",
	        "{\"definition\":\"bt\",\"params\":{\"n\":1}}\n"
	        "{\"definition\":\"bt\",\"params\":{\"n\":2}}\n"));
	cr_expect_eq(rv, 0, "exit %d: %s", rv, out);
	cr_expect(strstr(out, "{\"line\":1,\"run_id\":") != NULL &&
	        strstr(out, "{\"line\":2,\"run_id\":") != NULL,
	    "%s", out);
	free(out);

	rv = weft_cluster_cli(&c, &out, "submit /no/such/file.jsonl 2>&1");
	cr_expect_eq(rv, 2, "missing file: exit %d", rv);
	cr_expect(strstr(out, "cannot read /no/such/file.jsonl") != NULL, "%s",
	    out);
	free(out);
	free(lines);
}

// ---- the role they need ----

#define OP_TOKEN "op-0123456789abcdef"
#define RD_TOKEN "rd-0123456789abcdef"

static void
up_tokens(void)
{
	weft_cluster_opts o = { .nworkers = 1,
		.tokens = "ops operate " OP_TOKEN "\nviewer read " RD_TOKEN "\n",
		.token  = OP_TOKEN };
	weft_cluster_start_opts(&c, &o);
}

Test(batch_auth, needs_operate, .init = up_tokens, .fini = down,
    .timeout = 180)
{
	char *out;
	int   rv;

	define(def_bt);
	rv = weft_h_run_fmt(&out,
	    "curl -s -w ' %%{http_code}' -X POST -H 'Content-Type: "
	    "application/json' -H 'Authorization: Bearer " RD_TOKEN "' "
	    "--data-binary '{\"runs\":[{\"definition\":\"bt\"}]}' "
	    "'http://%s/api/v1/runs/batch'",
	    c.http);
	cr_expect(strstr(out, " 403") != NULL && strstr(out, "operate"),
	    "read token: %s", out);
	free(out);
	rv = weft_cluster_cli_token(&c, RD_TOKEN, &out,
	    "run bt --count 2 --params '{\"n\":1}' 2>&1");
	cr_expect_eq(rv, 1, "read token, run --count: exit %d: %s", rv, out);
	cr_expect(strstr(out, "operate") != NULL, "%s", out);
	free(out);
	rv = weft_cluster_cli_token(&c, OP_TOKEN, &out,
	    "run bt --count 2 --params '{\"n\":1}' 2>&1");
	cr_expect_eq(rv, 0, "operate token: exit %d: %s", rv, out);
	free(out);
	cr_expect_eq(weft_cluster_count_events(&c, NULL, "run_queued"), 2);
}
