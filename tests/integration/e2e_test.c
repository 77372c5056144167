// e2e_test: the real binaries on loopback: a coordinator, two workers and
// the CLI. Workflows run for real; the assertions read the event log.
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "clock.h"
#include "cluster.h"
#include "harness.h"
#include "store.h"

static weft_cluster c;

static void
up(void)
{
	weft_cluster_start(&c, 2, 200);
	// Below the suite's 180 s: a hung CLI call fails with the logs.
	c.cli_limit_ms = 120000;
}

static void
down(void)
{
	weft_cluster_stop(&c);
}

TestSuite(e2e, .init = up, .fini = down, .timeout = 180);

// run_wait runs a definition file and returns the final status body.
static json_t *
run_wait(const char *file, const char *input)
{
	return (weft_cluster_cli_json(&c, "run '%s' --input '%s' --wait", file,
	    input ? input : "{}"));
}

static const char *
status_of(json_t *run)
{
	return (json_string_value(json_object_get(run, "status")));
}


Test(e2e, diamond_passes_data)
{
	json_t *run = run_wait(WEFT_SRC_DIR "/examples/diamond.json",
	    "{\"source\":\"test\"}");
	cr_assert_str_eq(status_of(run), "succeeded");
	// join is a pass step: its output is its rendered `with`, made from
	// both branches, and nothing else (no dependency's output nested).
	json_t *join = json_object_get(json_object_get(run, "output"), "join");
	cr_expect_str_eq(json_string_value(json_object_get(join, "greeting")),
	    "hello world");
	cr_expect_eq(json_integer_value(json_object_get(join, "rested_ms")),
	    200);
	cr_expect_eq(json_object_size(join), 2, "join's output carries more "
	                                        "than its with");
	const char *id = json_string_value(json_object_get(run, "id"));
	cr_expect_eq(weft_cluster_count_events(&c, id, "step_succeeded"), 4);
	cr_expect_eq(weft_cluster_count_events(&c, id, "run_succeeded"), 1);
	// Every step names the worker that ran it (both workers are in the
	// next test: a diamond never needs more than one worker's slots).
	json_t *steps = json_object_get(run, "steps");
	size_t  k;
	json_t *s;
	json_array_foreach (steps, k, s) {
		const char *node = json_string_value(json_object_get(s, "node"));
		cr_expect(node != NULL &&
		        (strcmp(node, "w0") == 0 || strcmp(node, "w1") == 0),
		    "step %s ran on node %s, want w0 or w1",
		    json_string_value(json_object_get(s, "id")),
		    node ? node : "(none)");
	}
	json_decref(run);
}

// More concurrent sleeps than one worker's slots (--slots 4): the
// coordinator keeps at most 4 of them on a worker (until it knows their
// duration, and 20 ms of 500 ms steps rounds down to no queue after), so
// both workers must run some.
Test(e2e, parallel_steps_use_both_workers)
{
	char      buf[1200];
	size_t    len = 0;
	const int n   = 10;

	len += (size_t) snprintf(buf + len, sizeof(buf) - len,
	    "{\"name\":\"wide\",\"steps\":[");
	for (int i = 0; i < n; i++) {
		len += (size_t) snprintf(buf + len, sizeof(buf) - len,
		    "%s{\"id\":\"s%d\",\"type\":\"sleep\",\"with\":{\"ms\":500}}",
		    i ? "," : "", i);
	}
	snprintf(buf + len, sizeof(buf) - len, "]}");
	json_t *run = run_wait(weft_cluster_write(&c, "wide.json", buf), NULL);
	cr_assert_str_eq(status_of(run), "succeeded");
	json_t *steps = json_object_get(run, "steps");
	cr_assert_eq(json_array_size(steps), (size_t) n);
	int     on[2] = { 0, 0 };
	size_t  k;
	json_t *s;
	json_array_foreach (steps, k, s) {
		const char *node = json_string_value(json_object_get(s, "node"));
		cr_assert(node != NULL &&
		        (strcmp(node, "w0") == 0 || strcmp(node, "w1") == 0),
		    "step %s ran on node %s, want w0 or w1",
		    json_string_value(json_object_get(s, "id")),
		    node ? node : "(none)");
		on[node[1] - '0']++;
	}
	cr_expect(on[0] >= 1, "w0 ran no step (w0 %d, w1 %d of %d)", on[0],
	    on[1], n);
	cr_expect(on[1] >= 1, "w1 ran no step (w0 %d, w1 %d of %d)", on[0],
	    on[1], n);
	json_decref(run);
}

// write_fanout writes a definition: root, n noop steps on it, and a join.
static const char *
write_fanout(int n)
{
	size_t cap = (size_t) n * 90 + 200, len = 0;
	char  *buf = weft_xalloc(cap);

	len += (size_t) snprintf(buf + len, cap - len,
	    "{\"name\":\"fan%d\",\"steps\":[{\"id\":\"root\",\"type\":\"noop\"}", n);
	for (int i = 0; i < n; i++) {
		len += (size_t) snprintf(buf + len, cap - len,
		    ",{\"id\":\"s%d\",\"type\":\"noop\",\"depends_on\":[\"root\"]}", i);
	}
	len += (size_t) snprintf(buf + len, cap - len,
	    ",{\"id\":\"join\",\"type\":\"echo\",\"depends_on\":[");
	for (int i = 0; i < n; i++) {
		len += (size_t) snprintf(buf + len, cap - len, "%s\"s%d\"",
		    i ? "," : "", i);
	}
	snprintf(buf + len, cap - len, "]}]}");
	const char *path = weft_cluster_write(&c, "fanout.json", buf);
	free(buf);
	return (path);
}

Test(e2e, fanout_1000_and_join)
{
	json_t *run = run_wait(write_fanout(1000), NULL);
	cr_assert_str_eq(status_of(run), "succeeded");
	cr_expect_eq(json_integer_value(json_object_get(run, "steps_done")), 1002);
	json_t *join = json_object_get(json_object_get(run, "output"), "join");
	cr_expect_eq(json_object_size(json_object_get(join, "steps")), 1000,
	    "the join sees every dependency");
	const char *id = json_string_value(json_object_get(run, "id"));
	cr_expect_eq(weft_cluster_count_events(&c, id, "step_succeeded"), 1002);
	json_decref(run);
}

Test(e2e, chain_of_100)
{
	size_t cap = 100 * 80 + 100, len = 0;
	char  *buf = weft_xalloc(cap);

	len += (size_t) snprintf(buf + len, cap - len,
	    "{\"name\":\"chain\",\"steps\":[{\"id\":\"s0\",\"type\":\"echo\","
	    "\"with\":{\"n\":0}}");
	for (int i = 1; i < 100; i++) {
		len += (size_t) snprintf(buf + len, cap - len,
		    ",{\"id\":\"s%d\",\"type\":\"noop\",\"depends_on\":[\"s%d\"]}", i,
		    i - 1);
	}
	snprintf(buf + len, cap - len, "]}");
	json_t *run = run_wait(weft_cluster_write(&c, "chain.json", buf), NULL);
	free(buf);
	cr_assert_str_eq(status_of(run), "succeeded");
	const char *id = json_string_value(json_object_get(run, "id"));
	// In a chain the steps succeeded strictly in order.
	char *out;
	cr_assert_eq(weft_cluster_cli(&c, &out,
	                 "events --run %s --type step_succeeded --limit 1000", id),
	    0);
	int   want = 0;
	char *line = strtok(out, "\n");
	for (; line != NULL; line = strtok(NULL, "\n"), want++) {
		json_t *ev = json_loads(line, 0, NULL);
		char    sid[16];
		snprintf(sid, sizeof(sid), "s%d", want);
		cr_assert_str_eq(json_string_value(json_object_get(ev, "step")), sid);
		json_decref(ev);
	}
	cr_expect_eq(want, 100);
	free(out);
	json_decref(run);
}

Test(e2e, exec_step_runs_allowed_program)
{
	char script[800];
	snprintf(script, sizeof(script), "%s/double.sh", c.exec_allow);
	FILE *f = fopen(script, "w");
	cr_assert_not_null(f);
	fputs("#!/bin/sh\n"
	      "# reads the input document, prints a JSON object\n"
	      "in=$(cat)\n"
	      "case \"$in\" in *'\"n\":21'*) echo '{\"doubled\": 42}' ;;"
	      " *) echo \"bad input: $in\" >&2; exit 3 ;; esac\n",
	    f);
	fclose(f);
	chmod(script, 0755);
	const char *def = weft_cluster_write(&c, "exec.json",
	    "{\"name\":\"ex\",\"steps\":[{\"id\":\"d\",\"type\":\"exec\","
	    "\"with\":{\"cmd\":[\"double.sh\"],\"n\":\"${input.n}\"}}]}");
	json_t *run = run_wait(def, "{\"n\":21}");
	cr_assert_str_eq(status_of(run), "succeeded");
	cr_expect_eq(json_integer_value(json_object_get(
	                 json_object_get(json_object_get(run, "output"), "d"),
	                 "doubled")),
	    42);
	json_decref(run);

	// A non-zero exit fails the step with the stderr tail in the event.
	run = run_wait(def, "{\"n\":5}");
	cr_assert_str_eq(status_of(run), "failed");
	char *out;
	cr_assert_eq(weft_cluster_cli(&c, &out, "events --run %s --type step_failed",
	                 json_string_value(json_object_get(run, "id"))),
	    0);
	cr_expect(strstr(out, "bad input") != NULL, "stderr tail missing: %s", out);
	cr_expect(strstr(out, "\"exit_code\":3") != NULL, "exit code missing: %s", out);
	free(out);
	json_decref(run);

	// A program outside the allowed directory never runs.
	def = weft_cluster_write(&c, "exec2.json",
	    "{\"name\":\"ex2\",\"steps\":[{\"id\":\"d\",\"type\":\"exec\","
	    "\"with\":{\"cmd\":[\"/bin/sh\",\"-c\",\"echo {}\"]}}]}");
	run = run_wait(def, NULL);
	cr_expect_str_eq(status_of(run), "failed");
	json_t *step = json_array_get(json_object_get(run, "steps"), 0);
	cr_expect(strstr(json_string_value(json_object_get(step, "error")),
	              "exec-allow") != NULL,
	    "%s", json_string_value(json_object_get(step, "error")));
	json_decref(run);
}

Test(e2e, failing_step_fails_run_and_retry_recovers)
{
	const char *def = weft_cluster_write(&c, "fail.json",
	    "{\"name\":\"f\",\"steps\":[{\"id\":\"a\",\"type\":\"fail\","
	    "\"with\":{\"times\":5}},{\"id\":\"b\",\"type\":\"noop\","
	    "\"depends_on\":[\"a\"]}]}");
	json_t *run = run_wait(def, NULL);
	cr_assert_str_eq(status_of(run), "failed");
	json_t *b = json_array_get(json_object_get(run, "steps"), 1);
	cr_expect_str_eq(json_string_value(json_object_get(b, "status")), "upstream_failed");
	cr_expect_eq(weft_cluster_count_events(&c, json_string_value(json_object_get(run, "id")),
	                 "step_failed"),
	    1);
	json_decref(run);

	// With a retry policy the same step succeeds on its third attempt.
	def = weft_cluster_write(&c, "retry.json",
	    "{\"name\":\"r\",\"steps\":[{\"id\":\"a\",\"type\":\"fail\","
	    "\"with\":{\"times\":2},\"retry\":{\"max_attempts\":3,"
	    "\"backoff\":\"fixed\",\"initial_ms\":50}}]}");
	run = run_wait(def, NULL);
	cr_assert_str_eq(status_of(run), "succeeded");
	json_t *a = json_array_get(json_object_get(run, "steps"), 0);
	cr_expect_eq(json_integer_value(json_object_get(a, "attempt")), 3);
	cr_expect_eq(weft_cluster_count_events(&c, json_string_value(json_object_get(run, "id")),
	                 "step_retry_scheduled"),
	    2);
	json_decref(run);
}

Test(e2e, bad_definitions_are_refused_with_where)
{
	char *out;
	const char *def = weft_cluster_write(&c, "cycle.json",
	    "{\"name\":\"cyc\",\"steps\":[{\"id\":\"a\",\"type\":\"noop\","
	    "\"depends_on\":[\"b\"]},{\"id\":\"b\",\"type\":\"noop\","
	    "\"depends_on\":[\"a\"]}]}");
	cr_expect_eq(weft_cluster_cli(&c, &out, "define '%s' 2>&1", def), 1);
	cr_expect(strstr(out, "cycle") != NULL, "%s", out);
	free(out);
	def = weft_cluster_write(&c, "unknown.json",
	    "{\"name\":\"u\",\"steps\":[{\"id\":\"a\",\"type\":\"noop\","
	    "\"depends_on\":[\"zz\"]}]}");
	cr_expect_eq(weft_cluster_cli(&c, &out, "define '%s' 2>&1", def), 1);
	cr_expect(strstr(out, "zz") != NULL, "%s", out);
	free(out);
	cr_expect_eq(weft_cluster_cli(&c, &out, "run no-such-def 2>&1"), 1);
	cr_expect(strstr(out, "no-such-def") != NULL, "%s", out);
	free(out);
	// The coordinator is still fine.
	cr_expect_eq(weft_cluster_cli(&c, NULL, "info"), 0);
}

Test(e2e, killed_worker_is_lost_and_its_steps_rerun)
{
	size_t cap = 8 * 100 + 100, len = 0;
	char  *buf = weft_xalloc(cap);

	len += (size_t) snprintf(buf + len, cap - len,
	    "{\"name\":\"slow\",\"steps\":[");
	for (int i = 0; i < 8; i++) {
		len += (size_t) snprintf(buf + len, cap - len,
		    "%s{\"id\":\"s%d\",\"type\":\"sleep\",\"with\":{\"ms\":1500}}",
		    i ? "," : "", i);
	}
	snprintf(buf + len, cap - len, "]}");
	const char *def = weft_cluster_write(&c, "slow.json", buf);
	free(buf);
	char *out;
	cr_assert_eq(weft_cluster_cli(&c, &out, "run '%s'", def), 0);
	out[strcspn(out, "\n")] = '\0';
	char id[64];
	snprintf(id, sizeof(id), "%s", out);
	free(out);
	// Wait until all 8 run (4 on each worker's slots, so w0 holds some),
	// then kill w0 without warning.
	int64_t      deadline = weft_clock_mono_ms() + weft_h_timeout_ms(10000);
	const size_t want     = 8;
	size_t       started;
	while ((started = weft_cluster_count_events(&c, id, "step_started")) <
	    want) {
		if (weft_clock_mono_ms() > deadline) {
			weft_cluster_dump_logs(&c);
			cr_assert_fail("waited for %zu step_started events of run %s, "
			               "saw %zu",
			    want, id, started);
		}
		weft_clock_sleep_ms(20);
	}
	weft_h_kill(c.workers[0], SIGKILL);
	c.workers[0] = 0;
	json_t *run = weft_cluster_run_end(&c, id, 30000);
	cr_expect_str_eq(status_of(run), "succeeded");
	json_decref(run);
	cr_expect_geq(weft_cluster_count_events(&c, id, "step_lost"), 1);
	char *ws;
	cr_assert_eq(weft_cluster_cli(&c, &ws, "events --type worker_lost"), 0,
	    "weft events --type worker_lost failed: %s", ws);
	cr_expect(strstr(ws, "\"w0\"") != NULL, "%s", ws);
	free(ws);
	cr_expect(weft_h_alive(c.coord), "coordinator survived");
}

Test(e2e, coordinator_restart_resumes_runs)
{
	const char *def = weft_cluster_write(&c, "restart.json",
	    "{\"name\":\"rs\",\"steps\":[{\"id\":\"a\",\"type\":\"sleep\","
	    "\"with\":{\"ms\":300}},{\"id\":\"b\",\"type\":\"sleep\","
	    "\"depends_on\":[\"a\"],\"with\":{\"ms\":1500}},{\"id\":\"c\","
	    "\"type\":\"echo\",\"depends_on\":[\"b\"]}]}");
	char *out;
	cr_assert_eq(weft_cluster_cli(&c, &out, "run '%s'", def), 0);
	char id[64];
	out[strcspn(out, "\n")] = '\0';
	snprintf(id, sizeof(id), "%s", out);
	free(out);
	int64_t      deadline = weft_clock_mono_ms() + weft_h_timeout_ms(10000);
	const size_t want     = 2;
	size_t       started;
	while ((started = weft_cluster_count_events(&c, id, "step_started")) <
	    want) {
		if (weft_clock_mono_ms() > deadline) {
			weft_cluster_dump_logs(&c);
			cr_assert_fail("waited for %zu step_started events of run %s, "
			               "saw %zu",
			    want, id, started);
		}
		weft_clock_sleep_ms(20);
	}
	// b is running on a worker: the coordinator dies and comes back.
	weft_h_kill(c.coord, SIGKILL);
	weft_cluster_start_coord(&c);
	json_t *run = weft_cluster_run_end(&c, id, 30000);
	cr_expect_str_eq(status_of(run), "succeeded");
	json_decref(run);
	cr_expect_eq(weft_cluster_count_events(&c, id, "step_succeeded"), 3,
	    "each step succeeded exactly once");
}

// run_start starts a run of def and returns its id (static storage).
static const char *
run_start(const char *def)
{
	static char id[64];
	char       *out;

	cr_assert_eq(weft_cluster_cli(&c, &out, "run '%s'", def), 0);
	out[strcspn(out, "\n")] = '\0';
	snprintf(id, sizeof(id), "%s", out);
	free(out);
	return (id);
}

// wait_status waits until run id has status want (or the deadline).
static void
wait_status(const char *id, const char *want)
{
	int64_t deadline = weft_clock_mono_ms() + weft_h_timeout_ms(20000);
	for (;;) {
		json_t *run = weft_cluster_cli_json(&c, "status %s", id);
		bool    ok  = strcmp(status_of(run), want) == 0;
		json_decref(run);
		if (ok) {
			return;
		}
		cr_assert(weft_clock_mono_ms() < deadline, "run %s never %s", id, want);
		weft_clock_sleep_ms(50);
	}
}

// step_status returns the status of step sid in a run's status body
// (borrowed from run), or "(none)".
static const char *
step_status(json_t *run, const char *sid)
{
	size_t  k;
	json_t *s;

	json_array_foreach (json_object_get(run, "steps"), k, s) {
		const char *id = json_string_value(json_object_get(s, "id"));
		if (id != NULL && strcmp(id, sid) == 0) {
			const char *st =
			    json_string_value(json_object_get(s, "status"));
			return (st ? st : "(none)");
		}
	}
	return ("(none)");
}

// step_leaves waits until step sid of run id is no longer in status from
// and returns the run's status body then (new reference); fails at the
// deadline.
static json_t *
step_leaves(const char *id, const char *sid, const char *from)
{
	int64_t deadline = weft_clock_mono_ms() + weft_h_timeout_ms(10000);

	for (;;) {
		json_t *run = weft_cluster_cli_json(&c, "status %s", id);
		if (strcmp(step_status(run, sid), from) != 0) {
			return (run);
		}
		json_decref(run);
		if (weft_clock_mono_ms() > deadline) {
			cr_assert_fail("run %s: waited for step %s to leave %s, it "
			               "is still %s",
			    id, sid, from, from);
		}
		weft_clock_sleep_ms(50);
	}
}

// A step's rows on the way (ready, dispatched, running) may be held back
// from the steps table (--projection-lag; docs/operations.md, "The projection lag"):
// a status read still sees them, and a coordinator killed while holding
// them loses nothing: the next one writes them from the events.
Test(e2e, held_step_rows_are_read_and_survive_a_kill)
{
	c.args[0] = "--projection-lag";
	c.args[1] = "60000"; // only the replay and the barrier show a row
	c.args[2] = NULL;
	weft_h_kill(c.coord, SIGKILL);
	weft_cluster_start_coord(&c);
	const char *def = weft_cluster_write(&c, "held.json",
	    "{\"name\":\"held\",\"steps\":[{\"id\":\"a\",\"type\":\"sleep\","
	    "\"with\":{\"ms\":1500}},{\"id\":\"b\",\"type\":\"sleep\","
	    "\"depends_on\":[\"a\"],\"with\":{\"ms\":1500}},{\"id\":\"c\","
	    "\"type\":\"echo\",\"depends_on\":[\"b\"]}]}");
	char id[64];
	snprintf(id, sizeof(id), "%s", run_start(def));
	int64_t deadline = weft_clock_mono_ms() + weft_h_timeout_ms(10000);
	while (weft_cluster_count_events(&c, id, "step_started") < 1) {
		cr_assert(weft_clock_mono_ms() < deadline, "a never started");
		weft_clock_sleep_ms(20);
	}
	// a's rows are held; the coordinator dies holding them.
	weft_h_kill(c.coord, SIGKILL);
	weft_cluster_start_coord(&c);
	cr_expect_eq(weft_h_run_fmt(NULL, "grep -q DB-REPLAY '%s/coordinator.log'",
	                 c.dir),
	    0, "the restart wrote the held rows from the events");
	while (weft_cluster_count_events(&c, id, "step_started") < 2) {
		cr_assert(weft_clock_mono_ms() < deadline, "b never started");
		weft_clock_sleep_ms(20);
	}
	// b's rows are held by this coordinator: the read waits for them.
	json_t *run = weft_cluster_cli_json(&c, "status %s", id);
	cr_expect_str_eq(step_status(run, "a"), "succeeded");
	cr_expect_str_eq(step_status(run, "b"), "running",
	    "the status read waits for the held row");
	json_decref(run);
	run = weft_cluster_run_end(&c, id, 30000);
	cr_expect_str_eq(status_of(run), "succeeded");
	json_decref(run);
	cr_expect_eq(weft_cluster_count_events(&c, id, "step_succeeded"), 3,
	    "each step succeeded once: a's result was taken as running's");

	c.args[0] = NULL;
	weft_h_kill(c.coord, SIGTERM);
	weft_cluster_start_coord(&c);
}

// index_rows counts run id's entries in the run index (run_events),
// read through a store of our own beside the coordinator's.
static uint64_t
index_rows(const char *id)
{
	weft_store *s;
	char        err[512];
	uint64_t    n = 0;

	cr_assert_eq(weft_store_open(&s, c.db, NULL, true, err, sizeof(err)),
	    WEFT_OK, "open %s: %s", c.db, err);
	cr_assert_eq(s->ops->query(s,
	                 "SELECT COUNT(*) FROM run_events WHERE run_id = ?", &id,
	                 1, weft_store_u64_row, &n),
	    WEFT_OK, "%s", s->error);
	weft_store_close(s);
	return (n);
}

// A run's entries in the run index are written once the coordinator is
// idle (WEFT_STORE_IDLE_MS, store.h), not ten projection lags (10 s by
// default) later: every event of the run, within a few seconds.
Test(e2e, idle_coordinator_writes_the_run_index)
{
	json_t *run = run_wait(WEFT_SRC_DIR "/examples/diamond.json",
	    "{\"source\":\"test\"}");
	char    id[64];

	cr_assert_str_eq(status_of(run), "succeeded");
	snprintf(id, sizeof(id), "%s",
	    json_string_value(json_object_get(run, "id")));
	json_decref(run);
	char    *out;
	uint64_t want = 0;
	cr_assert_eq(weft_cluster_cli(&c, &out, "events --run %s --limit 10000",
	                 id),
	    0);
	for (char *p = out; (p = strchr(p, '\n')) != NULL; p++) {
		want++;
	}
	free(out);
	cr_assert_gt(want, 10, "the run's events");
	int64_t deadline = weft_clock_mono_ms() + weft_h_timeout_ms(5000);
	while (index_rows(id) < want) {
		cr_assert(weft_clock_mono_ms() < deadline,
		    "run %s: %llu of %llu events in the run index", id,
		    (unsigned long long) index_rows(id), (unsigned long long) want);
		weft_clock_sleep_ms(50);
	}
	cr_expect_eq(index_rows(id), want, "each event once");
}

Test(e2e, malformed_projection_lag_refused)
{
	static const char *const bad[] = { "-1", "abc", "60001", "1x", "" };

	weft_cluster_expect_flag_refused("--projection-lag", bad,
	    sizeof(bad) / sizeof(bad[0]), "--projection-lag wants a number in 0..60000");
}

Test(e2e, pause_resume_cancel_and_retry)
{
	const char *def = weft_cluster_write(&c, "life.json",
	    "{\"name\":\"life\",\"steps\":[{\"id\":\"a\",\"type\":\"sleep\","
	    "\"with\":{\"ms\":600}},{\"id\":\"b\",\"type\":\"sleep\","
	    "\"depends_on\":[\"a\"],\"with\":{\"ms\":100}}]}");
	char id[64];
	snprintf(id, sizeof(id), "%s", run_start(def));

	// Paused: a finishes, b becomes ready but is not dispatched.
	cr_assert_eq(weft_cluster_cli(&c, NULL, "pause %s", id), 0);
	wait_status(id, "paused");
	// a's success makes b ready, in the same engine iteration (and commit)
	// that would dispatch it: the first state b is seen in after pending
	// is ready, and it stays there.
	json_t *run = step_leaves(id, "b", "pending");
	cr_expect_str_eq(step_status(run, "a"), "succeeded", "a is %s",
	    step_status(run, "a"));
	cr_expect_str_eq(step_status(run, "b"), "ready",
	    "b went %s while paused, want ready", step_status(run, "b"));
	json_decref(run);
	cr_expect_eq(weft_cluster_count_events(&c, id, "step_dispatched"), 1, "b ran while paused");
	cr_expect_neq(weft_cluster_cli(&c, NULL, "pause %s 2>/dev/null", id), 0,
	    "pausing twice is refused");
	cr_assert_eq(weft_cluster_cli(&c, NULL, "resume %s", id), 0);
	wait_status(id, "succeeded");

	// Cancel a running run: the in-flight sleep is aborted on the worker.
	snprintf(id, sizeof(id), "%s", run_start(def));
	int64_t deadline = weft_clock_mono_ms() + weft_h_timeout_ms(10000);
	while (weft_cluster_count_events(&c, id, "step_started") < 1) {
		cr_assert(weft_clock_mono_ms() < deadline,
		    "run %s: waited for a step_started event, saw none", id);
		weft_clock_sleep_ms(20);
	}
	cr_assert_eq(weft_cluster_cli(&c, NULL, "cancel %s", id), 0);
	wait_status(id, "cancelled");
	cr_expect_eq(weft_cluster_count_events(&c, id, "step_cancelled"), 2);
	cr_expect_eq(weft_cluster_count_events(&c, id, "run_cancelled"), 1);

	// Retry the cancelled run: it runs again from where it stopped.
	cr_assert_eq(weft_cluster_cli(&c, NULL, "retry %s", id), 0);
	wait_status(id, "succeeded");
	cr_expect_eq(weft_cluster_count_events(&c, id, "run_retried"), 1);
	cr_expect_neq(weft_cluster_cli(&c, NULL, "cancel %s 2>/dev/null", id), 0,
	    "a succeeded run cannot be cancelled");
}

Test(e2e, step_timeout_retries_then_fails)
{
	const char *def = weft_cluster_write(&c, "tmo.json",
	    "{\"name\":\"tmo\",\"steps\":[{\"id\":\"slow\",\"type\":\"sleep\","
	    "\"with\":{\"ms\":5000},\"timeout_ms\":300,\"retry\":"
	    "{\"max_attempts\":2,\"backoff\":\"fixed\",\"initial_ms\":50}}]}");
	json_t *run = run_wait(def, NULL);
	cr_assert_str_eq(status_of(run), "failed");
	const char *id = json_string_value(json_object_get(run, "id"));
	cr_expect_eq(weft_cluster_count_events(&c, id, "step_timed_out"), 2);
	cr_expect_eq(weft_cluster_count_events(&c, id, "step_retry_scheduled"), 1);
	json_t *a = json_array_get(json_object_get(run, "steps"), 0);
	cr_expect_str_eq(json_string_value(json_object_get(a, "error")), "timed out");
	json_decref(run);
}

Test(e2e, run_timeout_ends_run)
{
	const char *def = weft_cluster_write(&c, "rtmo.json",
	    "{\"name\":\"rtmo\",\"timeout_ms\":400,\"steps\":[{\"id\":\"a\","
	    "\"type\":\"sleep\",\"with\":{\"ms\":3000}}]}");
	json_t *run = run_wait(def, NULL);
	cr_expect_str_eq(status_of(run), "timed_out");
	json_decref(run);
}

Test(e2e, map_fans_out_over_runtime_list)
{
	const char *def = weft_cluster_write(&c, "map.json",
	    "{\"name\":\"fan\",\"steps\":[{\"id\":\"list\",\"type\":\"echo\","
	    "\"with\":{\"ms\":[30,10,50,20,40,10,30,20,10,40,20,30]}},"
	    "{\"id\":\"each\",\"type\":\"sleep\",\"depends_on\":[\"list\"],"
	    "\"map\":\"steps.list.output.with.ms\",\"max_parallel\":3,"
	    "\"with\":{\"ms\":\"${item}\"}},{\"id\":\"total\",\"type\":\"echo\","
	    "\"depends_on\":[\"each\"],\"with\":{\"first\":"
	    "\"${steps.each.output.0.slept_ms}\"}}]}");
	json_t *run = run_wait(def, NULL);
	cr_assert_str_eq(status_of(run), "succeeded");
	json_t *each = json_array_get(json_object_get(run, "steps"), 1);
	json_t *items = json_object_get(each, "items");
	cr_expect_eq(json_integer_value(json_object_get(items, "total")), 12);
	cr_expect_eq(json_integer_value(json_object_get(items, "done")), 12);
	json_t *out = json_object_get(each, "output");
	cr_assert_eq(json_array_size(out), 12);
	cr_expect_eq(json_integer_value(json_object_get(json_array_get(out, 2),
	                 "slept_ms")),
	    50, "outputs keep the list's order");
	// Never more than max_parallel items in flight, in event order.
	const char *id = json_string_value(json_object_get(run, "id"));
	char       *evs;
	cr_assert_eq(weft_cluster_cli(&c, &evs,
	                 "events --run %s --type step_dispatched,step_succeeded "
	                 "--limit 1000",
	                 id),
	    0);
	int   inflight = 0, peak = 0;
	char *line     = strtok(evs, "\n");
	for (; line != NULL; line = strtok(NULL, "\n")) {
		json_t     *ev   = json_loads(line, 0, NULL);
		const char *step = json_string_value(json_object_get(ev, "step"));
		const char *type = json_string_value(json_object_get(ev, "type"));
		if (step != NULL && strncmp(step, "each[", 5) == 0) {
			inflight += strcmp(type, "step_dispatched") == 0 ? 1 : -1;
			peak = inflight > peak ? inflight : peak;
		}
		json_decref(ev);
	}
	free(evs);
	cr_expect_eq(peak, 3, "peak items in flight %d, want 3", peak);
	json_decref(run);
}

// A worker killed -9 mid-step takes its exec program with it: the step's
// side effect does not happen on the dead worker while it is retried.
Test(e2e, exec_program_dies_with_its_worker, .timeout = 120)
{
	char script[1600], def[2000], marker[700], *out;

	snprintf(marker, sizeof(marker), "%s/side-effect", c.dir);
	snprintf(script, sizeof(script),
	    "#!/bin/sh\n"
	    "echo \"$WEFT_IDEMPOTENCY_KEY $WEFT_ATTEMPT\" >> '%s.started'\n"
	    // The side effect comes from the program's own child: it must
	    // die with the worker as well, not only the program.
	    "(sleep 2; echo \"$WEFT_IDEMPOTENCY_KEY $WEFT_ATTEMPT\" >> '%s') &\n"
	    "wait\n",
	    marker, marker);
	const char *path = weft_cluster_write(&c, "bin/effect.sh", script);
	cr_assert_eq(chmod(path, 0755), 0);
	snprintf(def, sizeof(def),
	    "{\"name\":\"effect\",\"steps\":[{\"id\":\"s\",\"type\":\"exec\","
	    "\"with\":{\"cmd\":[\"%s\"]},\"retry\":{\"max_attempts\":3}}]}",
	    path);
	cr_assert_eq(weft_cluster_cli(&c, &out, "run '%s'",
	                 weft_cluster_write(&c, "effect.json", def)),
	    0, "%s", out);
	out[strcspn(out, "\n")] = '\0';
	char id[64];
	snprintf(id, sizeof(id), "%s", out);
	free(out);
	// Wait until the program runs, then kill its worker outright.
	char started[800];
	snprintf(started, sizeof(started), "%s.started", marker);
	int64_t deadline = weft_clock_mono_ms() + weft_h_timeout_ms(15000);
	while (access(started, F_OK) != 0) {
		cr_assert(weft_clock_mono_ms() < deadline, "the step never ran");
		weft_clock_sleep_ms(20);
	}
	json_t *run  = weft_cluster_cli_json(&c, "status %s", id);
	json_t *step = json_array_get(json_object_get(run, "steps"), 0);
	const char *node = json_string_value(json_object_get(step, "node"));
	int         victim = node != NULL && strcmp(node, "w1") == 0 ? 1 : 0;
	json_decref(run);
	weft_h_kill(c.workers[victim], SIGKILL);
	json_t *end = weft_cluster_run_end(&c, id, 60000);
	cr_expect_str_eq(json_string_value(json_object_get(end, "status")),
	    "succeeded");
	json_decref(end);
	weft_clock_sleep_ms(2500); // longer than the killed program's sleep
	char *text;
	cr_assert_eq(weft_h_run_fmt(&text, "cat '%s'", marker), 0);
	// One line: the attempt that finished on the live worker. The key is
	// the same for every attempt; the attempt number tells them apart.
	int lines = 0;
	for (char *p = text; (p = strchr(p, '\n')) != NULL; p++) {
		lines++;
	}
	cr_expect_eq(lines, 1, "the side effect ran %d times:\n%s", lines, text);
	char want[100];
	snprintf(want, sizeof(want), "%s/s ", id);
	cr_expect(strncmp(text, want, strlen(want)) == 0, "%s", text);
	free(text);
}
