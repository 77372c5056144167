// signals_test: signals, approvals and durable timers with the real
// binaries: a wait step ended by `weft signal` and by POST
// /api/v1/runs/{id}/signals/{name}, rejected, timed out; a wait that holds
// no worker slot; the refusals (bad JSON, unknown run, unknown signal, a
// step not waiting yet, an ended run, oversize data) that change nothing;
// a delay that survives kill -9 and a restart of the coordinator and ends
// on time; a sleep_until already past.
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "clock.h"
#include "cluster.h"
#include "harness.h"

static weft_cluster c;

static void
down(void)
{
	weft_cluster_stop(&c);
}

// The data of a signal is its step's output, so --max-output bounds it:
// 1 KiB here, so an oversize body is cheap to send.
static void
up(void)
{
	weft_cluster_opts o = { .nworkers = 1, .survey_ms = 200,
		.args = { "--max-output", "1KiB", NULL } };
	weft_cluster_start_opts(&c, &o);
}

TestSuite(signals, .fini = down, .timeout = 240);

static const char *approval_def =
    "{\"name\":\"approval\",\"steps\":["
    "{\"id\":\"build\",\"type\":\"echo\",\"with\":{\"v\":1}},"
    "{\"id\":\"approve\",\"type\":\"wait\",\"depends_on\":[\"build\"],"
    "\"with\":{\"signal\":\"approve\"}},"
    "{\"id\":\"deploy\",\"type\":\"echo\",\"depends_on\":[\"approve\"],"
    "\"with\":{\"by\":\"${steps.approve.output.by}\"}}]}";

// start_run registers def (text) and starts a run of it (by its name,
// the first string of the text); returns its id (static).
static const char *
start_run(const char *def)
{
	json_t *d = json_loads(def, 0, NULL);
	char    name[64];

	cr_assert_not_null(d, "definition text");
	snprintf(name, sizeof(name), "%s",
	    json_string_value(json_object_get(d, "name")));
	json_decref(d);
	static char id[64];
	char       *out;

	cr_assert_eq(weft_cluster_cli(&c, &out, "define '%s'",
	                 weft_cluster_write(&c, "def.json", def)),
	    0, "%s", out);
	free(out);
	cr_assert_eq(weft_cluster_cli(&c, &out, "run %s", name), 0, "%s", out);
	out[strcspn(out, "\n")] = '\0';
	snprintf(id, sizeof(id), "%s", out);
	free(out);
	return (id);
}


// await_waiting waits until step sid of run id says it waits for a signal
// or a timer (reason); returns its status body (new reference).
static json_t *
await_waiting(const char *id, const char *sid, const char *reason)
{
	int64_t deadline = weft_clock_mono_ms() + weft_h_timeout_ms(20000);

	for (;;) {
		json_t *run = weft_cluster_cli_json(&c, "status %s", id);
		json_t *wf  = json_object_get(weft_cluster_step(run, sid), "waiting_for");
		const char *r = json_string_value(json_object_get(wf, "reason"));
		if (r != NULL && strcmp(r, reason) == 0) {
			return (run);
		}
		if (weft_clock_mono_ms() > deadline) {
			char *t = json_dumps(run, JSON_COMPACT);
			cr_assert_fail("step %s never waited for a %s: %s", sid,
			    reason, t);
		}
		json_decref(run);
		weft_clock_sleep_ms(50);
	}
}

// curl_post sends a POST to path with data (NULL: no body; "@FILE" a
// file) and returns the status; *body (malloc'd) gets the answer.
static int
curl_post(const char *path, const char *data, char **body)
{
	char  cmd[4096], out[600], dfile[700];
	char *code;
	int   status;

	snprintf(out, sizeof(out), "%s/curl.out", c.dir);
	if (data != NULL && data[0] != '@') {
		snprintf(dfile, sizeof(dfile), "@%s",
		    weft_cluster_write(&c, "curl.in", data));
		data = dfile;
	}
	snprintf(cmd, sizeof(cmd),
	    "curl -s -o '%s' -w '%%{http_code}' -X POST -H 'Content-Type: "
	    "application/json' %s%s%s 'http://%s%s'", out,
	    data != NULL ? "--data-binary '" : "", data != NULL ? data : "",
	    data != NULL ? "'" : "", c.http, path);
	cr_assert_eq(weft_h_run(cmd, &code), 0, "curl failed: %s", cmd);
	status = atoi(code);
	free(code);
	snprintf(cmd, sizeof(cmd), "cat '%s'", out);
	weft_h_run(cmd, body);
	return (status);
}


Test(signals, cli_signal_ends_the_wait_with_its_data, .init = up)
{
	const char *id = start_run(approval_def);
	char       *out;

	json_t *run = await_waiting(id, "approve", "signal");
	json_t *wf  = json_object_get(weft_cluster_step(run, "approve"), "waiting_for");
	cr_expect_str_eq(json_string_value(json_object_get(wf, "signal")),
	    "approve");
	json_decref(run);
	// Usage errors: exit 2, naming what is missing.
	cr_expect_eq(weft_cluster_cli(&c, &out, "signal %s 2>&1", id), 2);
	cr_expect(strstr(out, "signal needs RUN NAME") != NULL, "%s", out);
	free(out);
	cr_expect_eq(weft_cluster_cli(&c, &out, "signal %s approve --data "
	                 "@/nonexistent/data.json 2>&1", id),
	    2);
	free(out);
	// Bad JSON is refused by the CLI itself, before anything is sent.
	cr_expect_eq(weft_cluster_cli(&c, &out, "signal %s approve --data "
	                 "'{\"by\":' 2>&1", id),
	    2);
	cr_expect(strstr(out, "--data is not valid JSON") != NULL, "%s", out);
	free(out);
	cr_assert_eq(weft_cluster_cli(&c, &out, "signal %s approve --data "
	                 "'{\"by\":\"ann\"}'", id),
	    0, "%s", out);
	cr_expect(strstr(out, "signal approve delivered to run") != NULL &&
	        strstr(out, ": approve") != NULL,
	    "%s", out);
	free(out);
	run = weft_cluster_run_end(&c, id, 30000);
	cr_expect_str_eq(json_string_value(json_object_get(run, "status")),
	    "succeeded");
	cr_expect_str_eq(json_string_value(json_object_get(json_object_get(
	                     weft_cluster_step(run, "approve"), "output"), "by")),
	    "ann");
	// The dependent read the data.
	json_t *dep = json_object_get(weft_cluster_step(run, "deploy"), "output");
	cr_expect_str_eq(json_string_value(json_object_get(
	                     json_object_get(dep, "with"), "by")),
	    "ann");
	// The wait never reached a worker.
	cr_expect(json_is_null(json_object_get(weft_cluster_step(run, "approve"), "node")) ||
	        json_object_get(weft_cluster_step(run, "approve"), "node") == NULL,
	    "a wait step has no node");
	json_decref(run);
	json_t *sig = weft_cluster_events(&c, id, "step_signaled");
	cr_expect_eq(json_array_size(sig), 1);
	cr_expect_str_eq(json_string_value(json_object_get(json_object_get(
	                     json_array_get(sig, 0), "data"), "signal")),
	    "approve");
	json_decref(sig);
	cr_expect_eq(weft_cluster_count_events(&c, id, "step_dispatched"), 2,
	    "only build and deploy were dispatched");
	// Once it has ended, a signal is refused and changes nothing.
	cr_expect_eq(weft_cluster_cli(&c, &out, "signal %s approve 2>&1", id), 1);
	cr_expect(strstr(out, "is succeeded: nothing waits for signals") != NULL,
	    "%s", out);
	free(out);
	cr_expect_eq(weft_cluster_count_events(&c, id, "step_signaled"), 1);
}

// The refusals, over HTTP: each says what and where, and none changes
// anything: the step still waits afterwards and takes the real signal.
struct refusal {
	const char *name;
	const char *path; // %s: the run id
	const char *data;
	int         want_status;
	const char *want; // in the error
};

Test(signals, http_signal_refusals_then_reject, .init = up)
{
	const char *id = start_run(approval_def);
	char        path[300], *body, big[2048];
	static const struct refusal rows[] = {
		{ "bad JSON", "/api/v1/runs/%s/signals/approve", "{\"by\":",
		    400, "data is not JSON: " },
		{ "unknown run", "/api/v1/runs/nosuchrun/signals/approve%.0s",
		    "{}", 404, "no such run nosuchrun" },
		{ "unknown signal", "/api/v1/runs/%s/signals/launch", "{}", 404,
		    "no step of run" },
		{ "bad signal name", "/api/v1/runs/%s/signals/a%%20b", "{}", 400,
		    "signal name: must be 1-128 characters" },
		{ "bad reject", "/api/v1/runs/%s/signals/approve?reject=maybe",
		    "{}", 400, "reject: true or false" },
		{ "oversize data", "/api/v1/runs/%s/signals/approve", NULL, 413,
		    "over the coordinator's --max-output of 1024 bytes" },
	};

	memset(big, 'x', sizeof(big) - 3);
	big[0]               = '"';
	big[sizeof(big) - 3] = '"';
	big[sizeof(big) - 2] = '\0';
	json_decref(await_waiting(id, "approve", "signal"));
	for (size_t k = 0; k < sizeof(rows) / sizeof(rows[0]); k++) {
		snprintf(path, sizeof(path), rows[k].path, id);
		int st = curl_post(path, rows[k].data ? rows[k].data : big, &body);
		cr_expect_eq(st, rows[k].want_status, "%s: status %d: %s",
		    rows[k].name, st, body);
		cr_expect(strstr(body, rows[k].want) != NULL,
		    "%s: \"%s\" does not say \"%s\"", rows[k].name, body,
		    rows[k].want);
		free(body);
	}
	cr_expect_eq(weft_cluster_count_events(&c, id, "step_signaled"), 0,
	    "the refusals changed nothing");
	json_decref(await_waiting(id, "approve", "signal"));
	// A GET is not a signal.
	char *out;
	char  cmd[600];
	snprintf(cmd, sizeof(cmd), "curl -s -o /dev/null -w '%%{http_code}' "
	    "'http://%s/api/v1/runs/%s/signals/approve'", c.http, id);
	weft_h_run(cmd, &out);
	cr_expect_str_eq(out, "405");
	free(out);
	// The real one: a rejection with a reason fails the step, for good.
	snprintf(path, sizeof(path),
	    "/api/v1/runs/%s/signals/approve?reject=true", id);
	int st = curl_post(path, "{\"reason\":\"not on a Friday\"}", &body);
	cr_expect_eq(st, 200, "%s", body);
	json_t *ans = json_loads(body, 0, NULL);
	cr_expect(json_is_true(json_object_get(ans, "reject")), "%s", body);
	cr_expect_str_eq(json_string_value(json_array_get(
	                     json_object_get(ans, "steps"), 0)),
	    "approve");
	json_decref(ans);
	free(body);
	json_t *run = weft_cluster_run_end(&c, id, 30000);
	cr_expect_str_eq(json_string_value(json_object_get(run, "status")),
	    "failed");
	cr_expect_str_eq(json_string_value(json_object_get(
	                     weft_cluster_step(run, "approve"), "error")),
	    "signal \"approve\" rejected: not on a Friday");
	cr_expect_str_eq(json_string_value(json_object_get(
	                     weft_cluster_step(run, "deploy"), "status")),
	    "upstream_failed");
	json_decref(run);
	json_t *failed = weft_cluster_events(&c, id, "step_failed");
	cr_expect_eq(json_array_size(failed), 1);
	cr_expect(json_is_true(json_object_get(json_object_get(
	              json_array_get(failed, 0), "data"), "rejected")));
	json_decref(failed);
}

// run --wait says, once, what the run waits for and how to send it.
Test(signals, run_wait_says_how_to_send_the_signal, .init = up)
{
	char *out, path[700], cmd[1600];
	int   pid = 0;

	cr_assert_eq(weft_cluster_cli(&c, &out, "define '%s'",
	                 weft_cluster_write(&c, "def.json", approval_def)),
	    0);
	free(out);
	cr_assert_eq(weft_cluster_cli(&c, NULL, "run approval --wait "
	                 "--timeout 60s > '%s/wait.out' 2> '%s/wait.err' & "
	                 "echo $! > '%s/wait.pid'", c.dir, c.dir, c.dir),
	    0);
	snprintf(path, sizeof(path), "%s/wait.err", c.dir);
	snprintf(cmd, sizeof(cmd), "cat '%s'", path);
	int64_t deadline = weft_clock_mono_ms() + weft_h_timeout_ms(20000);
	for (;;) {
		weft_h_run(cmd, &out);
		if (strstr(out, "(send it: weft signal ") != NULL) {
			break;
		}
		cr_assert(weft_clock_mono_ms() < deadline, "run --wait said: %s",
		    out);
		free(out);
		weft_clock_sleep_ms(100);
	}
	cr_expect(strstr(out, "weft: step approve is waiting: waiting for "
	                      "signal \"approve\" (send it: weft signal ") !=
	        NULL,
	    "%s", out);
	char *run = strstr(out, "weft signal ") + strlen("weft signal ");
	run[strcspn(run, " ")] = '\0';
	cr_assert_eq(weft_cluster_cli(&c, NULL, "signal %s approve --data "
	                 "'{\"by\":\"cli\"}' > /dev/null", run),
	    0);
	free(out);
	snprintf(cmd, sizeof(cmd), "cat '%s/wait.pid'", c.dir);
	weft_h_run(cmd, &out);
	pid = atoi(out);
	free(out);
	cr_assert(pid > 0);
	while (kill(pid, 0) == 0) {
		cr_assert(weft_clock_mono_ms() < deadline, "run --wait goes on");
		weft_clock_sleep_ms(100);
	}
	snprintf(cmd, sizeof(cmd), "cat '%s/wait.out'", c.dir);
	weft_h_run(cmd, &out);
	cr_expect(strstr(out, "succeeded") != NULL, "%s", out);
	free(out);
}

Test(signals, signal_to_a_step_not_waiting_yet_is_refused, .init = up)
{
	const char *id = start_run(
	    "{\"name\":\"later\",\"steps\":[{\"id\":\"slow\",\"type\":\"sleep\","
	    "\"with\":{\"ms\":60000}},{\"id\":\"ok\",\"type\":\"wait\","
	    "\"depends_on\":[\"slow\"],\"with\":{\"signal\":\"ok\"}}]}");
	char *out;

	cr_expect_eq(weft_cluster_cli(&c, &out, "signal %s ok 2>&1", id), 1);
	cr_expect(strstr(out, "step ok of run") != NULL &&
	        strstr(out, "not waiting; a signal is not kept for later") !=
	            NULL,
	    "%s", out);
	free(out);
	cr_expect_eq(weft_cluster_cli(&c, &out, "cancel %s", id), 0);
	free(out);
}

Test(signals, wait_times_out_through_the_step_timeout, .init = up)
{
	const char *id = start_run(
	    "{\"name\":\"tmo\",\"steps\":[{\"id\":\"approve\",\"type\":\"wait\","
	    "\"with\":{\"signal\":\"approve\",\"timeout_ms\":1000}}]}");
	json_t *run = await_waiting(id, "approve", "signal");
	json_t *wf  = json_object_get(weft_cluster_step(run, "approve"), "waiting_for");
	cr_expect(json_integer_value(json_object_get(wf, "timeout_at_ms")) > 0,
	    "the deadline shows");
	json_decref(run);
	run = weft_cluster_run_end(&c, id, 30000);
	cr_expect_str_eq(json_string_value(json_object_get(run, "status")),
	    "failed");
	cr_expect_str_eq(json_string_value(json_object_get(
	                     weft_cluster_step(run, "approve"), "error")),
	    "timed out");
	json_decref(run);
	json_t *tmo = weft_cluster_events(&c, id, "step_timed_out");
	cr_expect_eq(json_array_size(tmo), 1);
	cr_expect_eq(json_integer_value(json_object_get(json_object_get(
	                 json_array_get(tmo, 0), "data"), "timeout_ms")),
	    1000);
	json_decref(tmo);
}

// A worker with one slot runs a chain of steps while two wait steps wait:
// they hold no slot.
Test(signals, a_wait_holds_no_slot)
{
	weft_cluster_opts o = { .nworkers = 0, .survey_ms = 200 };
	char              log[700];
	char             *argv[] = { "weft-worker", "--join", c.cluster, "--name",
                "w0", "--slots", "1", "--queue", "0", "--cookie-file",
                c.cookie, NULL };

	weft_cluster_start_opts(&c, &o);
	argv[2]  = c.cluster;
	argv[10] = c.cookie;
	snprintf(log, sizeof(log), "%s/w0.log", c.dir);
	c.workers[0] = weft_h_spawn(argv, log);
	c.nworkers   = 1;
	weft_cluster_wait_workers(&c, 1);
	const char *id = start_run(
	    "{\"name\":\"slot\",\"steps\":["
	    "{\"id\":\"w1\",\"type\":\"wait\",\"with\":{\"signal\":\"go\"}},"
	    "{\"id\":\"w2\",\"type\":\"wait\",\"with\":{\"signal\":\"go\"}},"
	    "{\"id\":\"a\",\"type\":\"sleep\",\"with\":{\"ms\":50}},"
	    "{\"id\":\"b\",\"type\":\"echo\",\"depends_on\":[\"a\"]},"
	    "{\"id\":\"c\",\"type\":\"noop\",\"depends_on\":[\"b\"]}]}");
	int64_t deadline = weft_clock_mono_ms() + weft_h_timeout_ms(30000);
	for (;;) {
		json_t     *run = weft_cluster_cli_json(&c, "status %s", id);
		const char *st  = json_string_value(
                    json_object_get(weft_cluster_step(run, "c"), "status"));
		bool done = st != NULL && strcmp(st, "succeeded") == 0;
		if (done) {
			cr_expect_str_eq(json_string_value(json_object_get(
			                     weft_cluster_step(run, "w1"), "status")),
			    "running", "still waiting");
		}
		json_decref(run);
		if (done) {
			break;
		}
		cr_assert(weft_clock_mono_ms() < deadline,
		    "the chain did not finish beside the waits");
		weft_clock_sleep_ms(50);
	}
	json_t *ws = weft_cluster_cli_json(&c, "workers");
	cr_expect_eq(json_integer_value(json_object_get(json_array_get(ws, 0),
	                 "running")),
	    0, "the waits hold no slot");
	json_decref(ws);
	char *out;
	cr_assert_eq(weft_cluster_cli(&c, &out, "signal %s go --json", id), 0);
	json_t *ans = json_loads(out, 0, NULL);
	cr_expect_eq(json_array_size(json_object_get(ans, "steps")), 2,
	    "every step waiting for it takes it: %s", out);
	json_decref(ans);
	free(out);
	json_t *run = weft_cluster_run_end(&c, id, 30000);
	cr_expect_str_eq(json_string_value(json_object_get(run, "status")),
	    "succeeded");
	json_decref(run);
}

// A delay survives kill -9 of the coordinator: after the restart it ends
// at the deadline its step_started recorded, not a whole delay later.
Test(signals, delay_survives_a_coordinator_kill, .init = up)
{
	const char *id = start_run(
	    "{\"name\":\"nap\",\"steps\":[{\"id\":\"nap\",\"type\":\"delay\","
	    "\"with\":{\"ms\":4000}},{\"id\":\"then\",\"type\":\"noop\","
	    "\"depends_on\":[\"nap\"]}]}");
	json_t *run = await_waiting(id, "nap", "timer");
	int64_t until = json_integer_value(json_object_get(json_object_get(
	    weft_cluster_step(run, "nap"), "waiting_for"), "until_ms"));
	json_decref(run);
	cr_assert(until > 0);
	weft_h_kill(c.coord, SIGKILL);
	weft_clock_sleep_ms(1500); // the coordinator is down a while: a
	                           // restart from zero would end ~1.5 s late
	weft_cluster_start_coord(&c);
	run = weft_cluster_run_end(&c, id, 30000);
	cr_expect_str_eq(json_string_value(json_object_get(run, "status")),
	    "succeeded");
	cr_expect_eq(json_integer_value(json_object_get(json_object_get(
	                 weft_cluster_step(run, "nap"), "output"), "at_ms")),
	    until, "the deadline recorded before the kill");
	json_decref(run);
	json_t *started = weft_cluster_events(&c, id, "step_started");
	size_t  k, nap_started = 0;
	json_t *ev;
	json_array_foreach (started, k, ev) {
		nap_started += strcmp(json_string_value(json_object_get(ev,
		                          "step")), "nap") == 0;
	}
	json_decref(started);
	cr_expect_eq(nap_started, 1, "nap started once: not restarted");
	json_t *ok = weft_cluster_events(&c, id, "step_succeeded");
	int64_t ended = -1;
	json_array_foreach (ok, k, ev) {
		if (strcmp(json_string_value(json_object_get(ev, "step")), "nap") ==
		    0) {
			cr_assert(weft_clock_parse_time(json_string_value(
			    json_object_get(ev, "ts")), 0, &ended));
		}
	}
	json_decref(ok);
	// On time: at the deadline (the timer heap may round a ms down), and
	// well before a restarted delay would have ended; generous for a
	// loaded machine.
	cr_expect(ended >= until - 5 && ended < until + 1400 * WEFT_TEST_MULT,
	    "ended %lld ms after the deadline", (long long) (ended - until));
}

Test(signals, sleep_until_in_the_past_ends_at_once, .init = up)
{
	const char *id = start_run(
	    "{\"name\":\"past\",\"steps\":[{\"id\":\"t\",\"type\":"
	    "\"sleep_until\",\"with\":{\"at\":\"2020-01-01T00:00:00Z\"}}]}");
	json_t *run = weft_cluster_run_end(&c, id, 20000);
	cr_expect_str_eq(json_string_value(json_object_get(run, "status")),
	    "succeeded");
	cr_expect_eq(json_integer_value(json_object_get(json_object_get(
	                 weft_cluster_step(run, "t"), "output"), "at_ms")),
	    1577836800000LL);
	json_decref(run);
}

// A signal changes state: it needs the operate role, by the CLI and over
// HTTP; a read token is refused and nothing is delivered.
Test(signals, a_signal_needs_the_operate_role)
{
	static const char *tokens = "ops operate op-0123456789abcdef\n"
	                            "viewer read rd-0123456789abcdef\n";
	weft_cluster_opts  o = { .nworkers = 1, .survey_ms = 200,
		 .tokens = tokens, .token = "op-0123456789abcdef" };
	char              *out, cmd[1200];

	weft_cluster_start_opts(&c, &o);
	const char *id = start_run(approval_def);
	json_decref(await_waiting(id, "approve", "signal"));
	cr_expect_eq(weft_cluster_cli_token(&c, "rd-0123456789abcdef", &out,
	                 "signal %s approve 2>&1", id),
	    1);
	cr_expect(strstr(out, "operate role") != NULL, "%s", out);
	free(out);
	snprintf(cmd, sizeof(cmd), "curl -s -o /dev/null -w '%%{http_code}' -X "
	    "POST -H 'Content-Type: application/json' -H 'Authorization: "
	    "Bearer rd-0123456789abcdef' 'http://%s/api/v1/runs/%s/signals/"
	    "approve'", c.http, id);
	weft_h_run(cmd, &out);
	cr_expect_str_eq(out, "403");
	free(out);
	cr_expect_eq(weft_cluster_count_events(&c, id, "step_signaled"), 0);
	cr_expect_eq(weft_cluster_cli(&c, &out, "signal %s approve", id), 0,
	    "%s", out);
	free(out);
}
