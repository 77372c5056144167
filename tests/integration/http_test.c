// http_test: the HTTP API with curl against a real coordinator and
// workers: every endpoint, and the bad requests each one must refuse with
// a JSON error and a fitting status. Also /health, /metrics and the
// dashboard's static files.
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "cluster.h"
#include "event.h"
#include "harness.h"

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

TestSuite(http, .init = up, .fini = down, .timeout = 180);

// curl_status runs one curl with extra arguments against the server and
// returns the status; *body gets the answer.
static int
curl_status(const char *args, const char *path, char **body)
{
	char  cmd[4096], out[600];
	char *code;
	int   status;

	snprintf(out, sizeof(out), "%s/http.out", c.dir);
	snprintf(cmd, sizeof(cmd),
	    "curl -s -o '%s' -w '%%{http_code}' %s 'http://%s%s'", out, args,
	    c.http, path);
	cr_assert_eq(weft_h_run(cmd, &code), 0, "curl failed: %s", cmd);
	status = atoi(code);
	free(code);
	snprintf(cmd, sizeof(cmd), "cat '%s'", out);
	weft_h_run(cmd, body);
	return (status);
}

// http does one request with curl; returns the status, *body (malloc'd)
// the response body. data: a request body (NULL: none), or "@FILE".
static int
http(const char *method, const char *path, const char *data, char **body)
{
	char args[3000];

	snprintf(args, sizeof(args), "-X %s %s%s%s%s", method,
	    strcmp(method, "GET") != 0 ? "-H 'Content-Type: application/json' "
	                               : "",
	    data ? "--data-binary '" : "", data ? data : "", data ? "'" : "");
	return (curl_status(args, path, body));
}

// http_json does a request expecting status want and a JSON body.
static json_t *
http_json(const char *method, const char *path, const char *data, int want)
{
	char        *body;
	json_error_t je;
	int          st = http(method, path, data, &body);
	json_t      *v  = json_loads(body, JSON_DECODE_ANY, &je);

	cr_assert_eq(st, want, "%s %s: status %d, want %d: %s", method, path,
	    st, want, body);
	cr_assert_not_null(v, "%s %s: not JSON (%s): %s", method, path, je.text,
	    body);
	free(body);
	return (v);
}

// expect_error checks a JSON error body mentioning what.
static void
expect_error(const char *method, const char *path, const char *data,
    int status, const char *what)
{
	json_t     *v   = http_json(method, path, data, status);
	const char *msg = json_string_value(json_object_get(v, "error"));

	cr_expect_not_null(msg, "%s %s: no error field", method, path);
	cr_expect(msg != NULL && strstr(msg, what) != NULL,
	    "%s %s: error \"%s\" lacks \"%s\"", method, path, msg, what);
	json_decref(v);
}

static const char *diamond =
    "{\"name\":\"hd\",\"params\":{\"who\":{\"type\":\"string\","
    "\"default\":\"world\"}},\"steps\":[{\"id\":\"a\",\"type\":\"echo\","
    "\"with\":{\"msg\":\"hello ${params.who}\"}},{\"id\":\"b\",\"type\":"
    "\"noop\",\"depends_on\":[\"a\"]},{\"id\":\"c\",\"type\":\"noop\","
    "\"depends_on\":[\"a\"]},{\"id\":\"d\",\"type\":\"noop\","
    "\"depends_on\":[\"b\",\"c\"]}]}";

// run_done waits for run id to end and returns it.
static json_t *
run_done(const char *id)
{
	char    path[128];
	int64_t deadline = weft_clock_mono_ms() + weft_h_timeout_ms(20000);

	snprintf(path, sizeof(path), "/api/v1/runs/%s", id);
	for (;;) {
		json_t     *run = http_json("GET", path, NULL, 200);
		const char *st  = json_string_value(json_object_get(run, "status"));
		if (strcmp(st, "running") != 0 && strcmp(st, "queued") != 0) {
			return (run);
		}
		json_decref(run);
		cr_assert(weft_clock_mono_ms() < deadline, "run never ended");
		weft_clock_sleep_ms(50);
	}
}

// run_posted_done starts a run (POST /api/v1/runs with body), writes its
// id into id (len bytes), and returns it once it has ended.
static json_t *
run_posted_done(const char *body, char *id, size_t len)
{
	json_t *v = http_json("POST", "/api/v1/runs", body, 201);

	snprintf(id, len, "%s", json_string_value(json_object_get(v, "run_id")));
	json_decref(v);
	return (run_done(id));
}

Test(http, definitions_runs_events_workers)
{
	json_t *v = http_json("POST", "/api/v1/definitions", diamond, 201);
	cr_expect_str_eq(json_string_value(json_object_get(v, "name")), "hd");
	cr_expect_eq(json_integer_value(json_object_get(v, "steps")), 4);
	json_decref(v);

	v = http_json("GET", "/api/v1/definitions", NULL, 200);
	cr_assert(json_is_array(v));
	json_t *d = json_array_get(v, 0);
	cr_expect_str_eq(json_string_value(json_object_get(d, "name")), "hd");
	cr_expect_not_null(json_object_get(json_object_get(d, "params"), "who"));
	json_decref(v);

	char    id[64];
	json_t *run = run_posted_done(
	    "{\"definition\":\"hd\",\"params\":{\"who\":\"http\"},"
	    "\"input\":{\"k\":1}}",
	    id, sizeof(id));
	cr_expect_str_eq(json_string_value(json_object_get(run, "status")),
	    "succeeded");
	cr_expect_eq(json_array_size(json_object_get(run, "steps")), 4);
	cr_expect_not_null(json_object_get(run, "definition_body"));
	json_decref(run);

	char path[256];
	snprintf(path, sizeof(path), "/api/v1/events?run=%s&type=step_succeeded",
	    id);
	v = http_json("GET", path, NULL, 200);
	cr_expect_eq(json_array_size(json_object_get(v, "events")), 4);
	cr_expect(json_is_integer(json_object_get(
	    json_array_get(json_object_get(v, "events"), 0), "ts_ms")));
	cr_expect(json_is_null(json_object_get(v, "next_after")),
	    "the last page says null");
	json_decref(v);
	// Text inside the data, an age, several types, a cursor.
	v = http_json("GET", "/api/v1/events?text=hello%20http&since=5m", NULL,
	    200);
	cr_expect_geq(json_array_size(json_object_get(v, "events")), 1);
	json_decref(v);
	snprintf(path, sizeof(path),
	    "/api/v1/events?run=%s&type=run_started,run_succeeded&after=1&limit=1",
	    id);
	v = http_json("GET", path, NULL, 200);
	cr_expect_eq(json_array_size(json_object_get(v, "events")), 1);
	cr_expect_str_eq(json_string_value(json_object_get(json_array_get(
	                     json_object_get(v, "events"), 0), "type")),
	    "run_started");
	cr_expect(json_is_integer(json_object_get(v, "next_after")),
	    "cut by limit=1: run_succeeded is next");
	json_decref(v);

	v = http_json("GET", "/api/v1/runs?status=succeeded&definition=hd&limit=5",
	    NULL, 200);
	cr_expect_eq(json_array_size(json_object_get(v, "runs")), 1);
	cr_expect(json_is_null(json_object_get(v, "next_before")));
	json_decref(v);

	v = http_json("GET", "/api/v1/workers", NULL, 200);
	cr_expect_eq(json_array_size(v), 2);
	json_decref(v);

	v = http_json("GET", "/api/v1/info", NULL, 200);
	cr_expect_gt(json_integer_value(json_object_get(v, "last_event_id")), 0);
	json_decref(v);

	// Lifecycle: an ended run cannot be cancelled; an unknown action is
	// a bad request; retrying a succeeded run is refused.
	snprintf(path, sizeof(path), "/api/v1/runs/%s/cancel", id);
	expect_error("POST", path, NULL, 409, "succeeded");
	snprintf(path, sizeof(path), "/api/v1/runs/%s/explode", id);
	expect_error("POST", path, NULL, 400, "unknown action");
	snprintf(path, sizeof(path), "/api/v1/runs/%s/retry", id);
	expect_error("POST", path, NULL, 409, "succeeded");
}

Test(http, lifecycle_of_a_running_run)
{
	json_t *v = http_json("POST", "/api/v1/runs",
	    "{\"definition_json\":{\"name\":\"slow\",\"steps\":[{\"id\":\"s\","
	    "\"type\":\"sleep\",\"with\":{\"ms\":3000}}]}}",
	    201);
	char id[64], path[128];
	snprintf(id, sizeof(id), "%s",
	    json_string_value(json_object_get(v, "run_id")));
	json_decref(v);
	snprintf(path, sizeof(path), "/api/v1/runs/%s/pause", id);
	v = http_json("POST", path, NULL, 200);
	cr_expect_str_eq(json_string_value(json_object_get(v, "status")), "paused");
	json_decref(v);
	snprintf(path, sizeof(path), "/api/v1/runs/%s/resume", id);
	json_decref(http_json("POST", path, NULL, 200));
	snprintf(path, sizeof(path), "/api/v1/runs/%s/cancel", id);
	v = http_json("POST", path, NULL, 200);
	cr_expect_str_eq(json_string_value(json_object_get(v, "status")),
	    "cancelled");
	json_decref(v);
	snprintf(path, sizeof(path), "/api/v1/runs/%s/retry", id);
	json_decref(http_json("POST", path, NULL, 200));
	json_t *run = run_done(id);
	cr_expect_str_eq(json_string_value(json_object_get(run, "status")),
	    "succeeded");
	json_decref(run);
}

Test(http, bad_requests_get_json_errors)
{
	expect_error("POST", "/api/v1/definitions", "{not json", 400, "line 1");
	expect_error("POST", "/api/v1/definitions",
	    "{\"name\":\"cyc\",\"steps\":[{\"id\":\"a\",\"type\":\"noop\","
	    "\"depends_on\":[\"b\"]},{\"id\":\"b\",\"type\":\"noop\","
	    "\"depends_on\":[\"a\"]}]}",
	    400, "cycle: a -> b -> a");
	expect_error("POST", "/api/v1/definitions",
	    "{\"name\":\"u\",\"steps\":[{\"id\":\"a\",\"type\":\"noop\","
	    "\"colour\":1}]}",
	    400, "steps[0] (id \"a\"): unknown field \"colour\"");
	expect_error("POST", "/api/v1/runs", "[1,2]", 400, "JSON object");
	expect_error("POST", "/api/v1/runs", "", 400, "empty");
	expect_error("POST", "/api/v1/runs", "{\"definition\":\"nope\"}", 400,
	    "nope");
	expect_error("POST", "/api/v1/runs", "{\"definition\":7}", 400,
	    "definition");
	json_decref(http_json("POST", "/api/v1/definitions", diamond, 201));
	expect_error("POST", "/api/v1/runs",
	    "{\"definition\":\"hd\",\"params\":{\"who\":3}}", 400,
	    "params.who: expected string");
	expect_error("POST", "/api/v1/runs",
	    "{\"definition\":\"hd\",\"params\":{\"whom\":\"x\"}}", 400,
	    "params.whom: unknown parameter");
	expect_error("GET", "/api/v1/runs/NOSUCHRUN", NULL, 404, "no such run");
	expect_error("GET", "/api/v1/events?since=yesterday-ish", NULL, 400,
	    "since");
	expect_error("GET", "/api/v1/nothing-here", NULL, 404, "no such endpoint");
	// Over the body limit: refused, and the server carries on.
	char  big[700], *body;
	snprintf(big, sizeof(big), "%s/big.json", c.dir);
	char cmd[900];
	snprintf(cmd, sizeof(cmd),
	    "head -c 14000000 /dev/zero | tr '\\0' ' ' > '%s'", big);
	weft_h_run(cmd, NULL);
	char at[710];
	snprintf(at, sizeof(at), "@%s", big);
	// Over the 13 MiB cap: a JSON 413 naming it (nng collects up to
	// 64 MiB, so the coordinator sees the request; http_errors_test has
	// the rest of the malformed requests).
	int st = http("POST", "/api/v1/definitions", at, &body);
	cr_expect_eq(st, 413, "an oversize body got %d, want 413: %s", st, body);
	cr_expect(strstr(body, "over the limit of 13631488 bytes") != NULL,
	    "an oversize body got this error body: %s", body);
	free(body);
	json_decref(http_json("GET", "/health", NULL, 200));
}

Test(http, health_metrics_and_files)
{
	char *body;
	json_t *v = http_json("GET", "/health", NULL, 200);
	cr_expect(json_is_true(json_object_get(v, "ok")));
	json_decref(v);

	json_decref(http_json("POST", "/api/v1/runs",
	    "{\"definition_json\":{\"name\":\"m\",\"steps\":[{\"id\":\"a\","
	    "\"type\":\"noop\"}]}}",
	    201));
	cr_assert_eq(http("GET", "/metrics", NULL, &body), 200);
	const char *names[] = { "weft_runs{status=", "weft_steps_dispatched_total",
		"weft_step_duration_seconds_bucket{le=",
		"weft_store_commit_seconds_count", "weft_store_batch_events_bucket",
		"weft_ready_queue_depth", "weft_workers_alive 2" };
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		cr_expect(strstr(body, names[i]) != NULL, "metrics lack %s", names[i]);
	}
	free(body);

	// The dashboard's index, revalidated with its ETag.
	char cmd[800], *hdr;
	snprintf(cmd, sizeof(cmd), "curl -s -D - -o /dev/null 'http://%s/'",
	    c.http);
	weft_h_run(cmd, &hdr);
	cr_expect(strstr(hdr, "200") != NULL && strstr(hdr, "text/html") != NULL,
	    "%s", hdr);
	char *etag = strstr(hdr, "ETag: ");
	cr_assert_not_null(etag, "%s", hdr);
	etag += 6;
	etag[strcspn(etag, "\r\n")] = '\0';
	snprintf(cmd, sizeof(cmd),
	    "curl -s -o /dev/null -w '%%{http_code}' -H 'If-None-Match: %s' "
	    "'http://%s/'",
	    etag, c.http);
	char *code;
	weft_h_run(cmd, &code);
	cr_expect_str_eq(code, "304");
	free(code);
	free(hdr);
	cr_expect_eq(http("GET", "/js/app.js", NULL, &body), 200);
	free(body);
	snprintf(cmd, sizeof(cmd),
	    "curl -s -o /dev/null -w '%%{http_code}' --path-as-is "
	    "'http://%s/../../etc/passwd'",
	    c.http);
	weft_h_run(cmd, &code);
	cr_expect_str_eq(code, "404");
	free(code);
}

// json_has_string reports whether the array a holds the string s.
static bool
json_has_string(json_t *a, const char *s)
{
	size_t  i;
	json_t *v;

	json_array_foreach (a, i, v) {
		if (json_is_string(v) && strcmp(json_string_value(v), s) == 0) {
			return (true);
		}
	}
	return (false);
}

// expect_status checks one entry's step_status or run_status: null when
// the list has none, else its value, which must be one of states.
static void
expect_status(json_t *entry, const char *key, const char *want, json_t *states)
{
	json_t     *v    = json_object_get(entry, key);
	const char *name = json_string_value(json_object_get(entry, "name"));

	if (want == NULL) {
		cr_expect(json_is_null(v), "%s: %s should be null", name, key);
		return;
	}
	cr_expect_str_eq(json_string_value(v), want, "%s: %s", name, key);
	cr_expect(json_has_string(states, want), "%s: %s %s is not listed",
	    name, key, want);
}

Test(http, meta_lists_every_event_type)
{
	// A run that fails, so the log has steps that succeed, fail and are
	// skipped, besides the workers that joined.
	char    id[64];
	json_t *run = run_posted_done(
	    "{\"definition_json\":{\"name\":\"mf\",\"steps\":[{\"id\":\"a\","
	    "\"type\":\"noop\"},{\"id\":\"b\",\"type\":\"fail\","
	    "\"depends_on\":[\"a\"]},{\"id\":\"c\",\"type\":\"noop\","
	    "\"depends_on\":[\"b\"]}]}}",
	    id, sizeof(id));
	cr_expect_str_eq(json_string_value(json_object_get(run, "status")),
	    "failed");
	// a succeeded, b failed, c skipped: all three have ended.
	cr_expect_eq(json_integer_value(json_object_get(run, "steps_done")), 3);
	json_decref(run);

	json_t *meta  = http_json("GET", "/api/v1/meta", NULL, 200);
	json_t *types = json_object_get(meta, "event_types");
	json_t *steps = json_object_get(meta, "step_states");
	json_t *runs  = json_object_get(meta, "run_states");
	cr_assert_eq(json_array_size(types), WEFT_EV_COUNT);
	cr_expect(json_has_string(steps, "retry_wait"));
	cr_expect(json_has_string(runs, "timed_out"));
	// Every type the coordinator knows, in the list's order, as the list
	// says it.
	for (int t = 0; t < WEFT_EV_COUNT; t++) {
		json_t     *e    = json_array_get(types, (size_t) t);
		const char *name = weft_event_name((enum weft_event_type) t);
		cr_expect_str_eq(json_string_value(json_object_get(e, "name")),
		    name);
		cr_expect_str_eq(json_string_value(json_object_get(e, "scope")),
		    weft_event_scope_name(
		        weft_event_scope((enum weft_event_type) t)),
		    "%s", name);
		cr_expect_eq(json_is_true(json_object_get(e, "terminal")),
		    weft_event_terminal((enum weft_event_type) t), "%s", name);
		expect_status(e, "step_status",
		    weft_event_step_status((enum weft_event_type) t), steps);
		expect_status(e, "run_status",
		    weft_event_run_status((enum weft_event_type) t), runs);
	}
	// Every type in the log is one of them.
	json_t *page = http_json("GET", "/api/v1/events?limit=10000", NULL, 200);
	json_t *evs  = json_object_get(page, "events");
	size_t  i, seen = 0;
	json_t *ev;
	cr_expect_gt(json_array_size(evs), 10);
	json_array_foreach (evs, i, ev) {
		const char *type = json_string_value(json_object_get(ev, "type"));
		bool        found = false;
		for (size_t k = 0; k < json_array_size(types) && !found; k++) {
			found = strcmp(json_string_value(json_object_get(
			                   json_array_get(types, k), "name")),
			            type) == 0;
		}
		cr_expect(found, "event %zu: type %s is not in /api/v1/meta", i,
		    type);
		seen += found;
	}
	cr_expect_eq(seen, json_array_size(evs));
	json_decref(page);
	json_decref(meta);
}

Test(http, runs_filtered_by_creation_time)
{
	for (int i = 0; i < 2; i++) {
		json_decref(http_json("POST", "/api/v1/runs",
		    "{\"definition_json\":{\"name\":\"t\",\"steps\":[{\"id\":"
		    "\"a\",\"type\":\"noop\"}]}}",
		    201));
	}
	json_t *v = http_json("GET", "/api/v1/runs?since=10m", NULL, 200);
	cr_expect_eq(json_array_size(json_object_get(v, "runs")), 2);
	json_decref(v);
	// A cut page names the next one in the body (fat_test follows
	// longer listings to their end).
	v = http_json("GET", "/api/v1/runs?limit=1", NULL, 200);
	json_t     *r0 = json_array_get(json_object_get(v, "runs"), 0);
	const char *nb = json_string_value(json_object_get(v, "next_before"));
	char        path[160];
	cr_assert_not_null(nb, "no next_before on a cut page");
	cr_expect_str_eq(nb, json_string_value(json_object_get(r0, "id")));
	snprintf(path, sizeof(path), "/api/v1/runs?limit=1&before=%s", nb);
	json_decref(v);
	v = http_json("GET", path, NULL, 200);
	cr_expect_eq(json_array_size(json_object_get(v, "runs")), 1);
	cr_expect(json_is_null(json_object_get(v, "next_before")),
	    "the last page says null");
	json_decref(v);
	v = http_json("GET", "/api/v1/runs?until=10m", NULL, 200);
	cr_expect(json_is_array(json_object_get(v, "runs")));
	cr_expect_eq(json_array_size(json_object_get(v, "runs")), 0,
	    "nothing was created 10 min ago");
	json_decref(v);
	expect_error("GET", "/api/v1/runs?since=soon", NULL, 400, "since");
	char *body;
	cr_assert_eq(http("GET", "/metrics", NULL, &body), 200);
	cr_expect(strstr(body, "weft_wire_dropped_total{reason=\"garbage\"}") != NULL);
	free(body);
}

// The browser protections: another site's page must not drive the API
// through the operator's browser, on loopback too.
Test(http, browser_protections)
{
	static const struct {
		const char *what, *args, *path;
		int         status;
		const char *says;
	} rows[] = {
		{ "foreign Host (DNS rebinding), API", "-H 'Host: evil.example'",
		    "/api/v1/runs", 403, "Host not served here" },
		{ "foreign Host, dashboard", "-H 'Host: evil.example:80'", "/",
		    403, "Host not served here" },
		{ "localhost names the loopback server",
		    "-H 'Host: localhost'", "/api/v1/runs", 200, "\"runs\":[" },
		{ "CSRF: text/plain POST",
		    "-X POST -H 'Content-Type: text/plain' --data-binary "
		    "'{\"definition\":\"nope\"}'",
		    "/api/v1/runs", 415, "application/json" },
		{ "CSRF: form POST",
		    "-X POST --data-urlencode 'a=b'", "/api/v1/runs", 415,
		    "application/json" },
		{ "CSRF: JSON POST from a foreign Origin",
		    "-X POST -H 'Content-Type: application/json' "
		    "-H 'Origin: http://evil.example' --data-binary "
		    "'{\"definition\":\"nope\"}'",
		    "/api/v1/runs", 403, "cross-origin" },
		{ "lifecycle POST from a foreign Origin",
		    "-X POST -H 'Content-Type: application/json' "
		    "-H 'Origin: http://evil.example' --data-binary '{}'",
		    "/api/v1/runs/01NONE/cancel", 403, "cross-origin" },
	};

	for (size_t k = 0; k < sizeof(rows) / sizeof(rows[0]); k++) {
		char *body;
		int   st = curl_status(rows[k].args, rows[k].path, &body);
		cr_expect_eq(st, rows[k].status, "%s: status %d, want %d: %s",
		    rows[k].what, st, rows[k].status, body);
		cr_expect(strstr(body, rows[k].says) != NULL,
		    "%s: the answer does not say \"%s\": %s", rows[k].what,
		    rows[k].says, body);
		free(body);
	}

	// Our own Origin is fine: the dashboard's POSTs carry it.
	char  args[600], *body;
	const char *def = weft_cluster_write(&c, "guard.json",
	    "{\"name\":\"guard\",\"steps\":[{\"id\":\"a\",\"type\":\"noop\"}]}");
	snprintf(args, sizeof(args),
	    "-X POST -H 'Content-Type: application/json; charset=utf-8' "
	    "-H 'Origin: http://%s' --data-binary @'%s'",
	    c.http, def);
	int st = curl_status(args, "/api/v1/definitions", &body);
	cr_expect(st == 200 || st == 201, "same-origin POST: %d %s", st, body);
	free(body);
}
