// triggers_test: trigger rules and the run outcome policy with the real
// binaries on loopback (a coordinator, two workers, the CLI): a failure
// makes its dependents upstream_failed, none_failed and all_failed see
// it through them, one_success fires while another upstream still runs,
// fail_fast ends a run at its first failure, status_from: leaves judges a
// run by its leaves.
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "cluster.h"
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

TestSuite(triggers, .init = up, .fini = down, .timeout = 300);

static const char *
status_of(json_t *run)
{
	return (json_string_value(json_object_get(run, "status")));
}

// step_of returns step sid's row in a status body (borrowed), failing the
// test when there is none.
static json_t *
step_of(json_t *run, const char *sid)
{
	size_t  k;
	json_t *s;

	json_array_foreach (json_object_get(run, "steps"), k, s) {
		const char *id = json_string_value(json_object_get(s, "id"));
		if (id == NULL) {
			id = json_string_value(json_object_get(s, "step_id"));
		}
		if (id != NULL && strcmp(id, sid) == 0) {
			return (s);
		}
	}
	cr_assert_fail("no step %s in the status", sid);
	return (NULL);
}

static const char *
step_status(json_t *run, const char *sid)
{
	return (json_string_value(json_object_get(step_of(run, sid), "status")));
}

// run_start starts a run of the definition text and returns its id
// (malloc'd).
static char *
run_start(const char *file, const char *text)
{
	json_t *r  = weft_cluster_cli_json(
            &c, "run '%s'", weft_cluster_write(&c, file, text));
	char   *id = strdup(json_string_value(json_object_get(r, "run_id")));
	json_decref(r);
	return (id);
}

// expect_refused registers the definition text under file: weft define must
// fail and say want.
static void
expect_refused(const char *file, const char *text, const char *want)
{
	char *out;
	int   rc = weft_cluster_cli(
            &c, &out, "define '%s' 2>&1", weft_cluster_write(&c, file, text));

	cr_expect_neq(rc, 0, "%s was registered", file);
	cr_expect(strstr(out, want) != NULL, "%s: want %s, got %s", file, want,
	    out);
	free(out);
}

Test(triggers, upstream_failed_and_the_rules_that_see_through_it)
{
	// a fails; b (all_success) is upstream_failed; c (none_failed, on b)
	// sees the failure through b; d (all_failed, on b) runs on it;
	// e (one_failed, on c) runs; f (all_done, on c) runs.
	char   *id = run_start("upf.json",
            "{\"name\":\"upf\",\"steps\":["
	      "{\"id\":\"a\",\"type\":\"fail\"},"
	      "{\"id\":\"b\",\"type\":\"noop\",\"depends_on\":[\"a\"]},"
	      "{\"id\":\"c\",\"type\":\"noop\",\"depends_on\":[\"b\"],"
	      "\"trigger\":\"none_failed\"},"
	      "{\"id\":\"d\",\"type\":\"echo\",\"depends_on\":[\"b\"],"
	      "\"trigger\":\"all_failed\"},"
	      "{\"id\":\"e\",\"type\":\"echo\",\"depends_on\":[\"c\"],"
	      "\"trigger\":\"one_failed\"},"
	      "{\"id\":\"f\",\"type\":\"noop\",\"depends_on\":[\"c\"],"
	      "\"trigger\":\"all_done\"}]}");
	json_t *run = weft_cluster_run_end(&c, id, 60000);

	cr_assert_str_eq(status_of(run), "failed");
	cr_expect_str_eq(step_status(run, "a"), "failed");
	cr_expect_str_eq(step_status(run, "b"), "upstream_failed");
	cr_expect_str_eq(step_status(run, "c"), "upstream_failed");
	cr_expect_str_eq(step_status(run, "d"), "succeeded");
	cr_expect_str_eq(step_status(run, "e"), "succeeded");
	cr_expect_str_eq(step_status(run, "f"), "succeeded");
	// The status names the failed upstream as the step's error.
	cr_expect_str_eq(json_string_value(json_object_get(step_of(run, "b"),
	                     "error")),
	    "upstream failed: a");
	cr_expect_str_eq(json_string_value(json_object_get(step_of(run, "c"),
	                     "error")),
	    "upstream failed: b");
	cr_expect_eq(weft_cluster_count_events(&c, id, "step_upstream_failed"), 2);
	cr_expect_eq(weft_cluster_count_events(&c, id, "step_skipped"), 0);
	// The event carries the rule and the upstream steps.
	char *out;
	cr_assert_eq(weft_cluster_cli(&c, &out,
	                 "events --run %s --type step_upstream_failed --json", id),
	    0);
	cr_expect(strstr(out, "\"trigger\":\"none_failed\"") != NULL ||
	        strstr(out, "\"trigger\": \"none_failed\"") != NULL,
	    "%s", out);
	cr_expect(strstr(out, "\"upstream\"") != NULL, "%s", out);
	free(out);
	// The API has the same state.
	cr_assert_eq(weft_cluster_cli(&c, &out, "status %s", id), 0);
	cr_expect(strstr(out, "upstream_failed") != NULL, "%s", out);
	free(out);
	json_decref(run);
	free(id);
}

// await_step waits until step sid of run id has status want; returns the
// status body (new reference).
static json_t *
await_step(const char *id, const char *sid, const char *want)
{
	int64_t deadline = weft_clock_mono_ms() + weft_h_timeout_ms(30000);

	for (;;) {
		json_t *run = weft_cluster_cli_json(&c, "status %s", id);
		if (strcmp(step_status(run, sid), want) == 0) {
			return (run);
		}
		if (weft_clock_mono_ms() > deadline) {
			char *text = json_dumps(run, JSON_INDENT(1));
			weft_cluster_dump_logs(&c);
			cr_assert_fail("step %s never %s:\n%s", sid, want, text);
		}
		json_decref(run);
		weft_clock_sleep_ms(100);
	}
}

Test(triggers, one_success_fires_while_another_upstream_runs)
{
	// slow sleeps far longer than the test waits; fast ends at once, and
	// t, one_success on both, must run on it alone.
	char   *id = run_start("one.json",
            "{\"name\":\"one\",\"steps\":["
	      "{\"id\":\"slow\",\"type\":\"sleep\",\"with\":{\"ms\":120000}},"
	      "{\"id\":\"fast\",\"type\":\"echo\",\"with\":{\"v\":1}},"
	      "{\"id\":\"t\",\"type\":\"echo\",\"depends_on\":[\"slow\","
	      "\"fast\"],\"trigger\":\"one_success\"}]}");
	json_t *run = await_step(id, "t", "succeeded");

	// dispatched or running: the worker's yes to slow's assignment may
	// still wait for a result in its reply (--reply-wait) while fast and
	// t go by on other slots.
	const char *slow = step_status(run, "slow");
	cr_expect(slow != NULL && (strcmp(slow, "running") == 0 ||
	                              strcmp(slow, "dispatched") == 0),
	    "slow must still run when t has ended (it is %s)", slow);
	cr_expect_str_eq(status_of(run), "running");
	json_decref(run);
	cr_assert_eq(weft_cluster_cli(&c, NULL, "cancel %s", id), 0);
	run = weft_cluster_run_end(&c, id, 30000);
	cr_expect_str_eq(status_of(run), "cancelled");
	json_decref(run);
	free(id);
}

Test(triggers, fail_fast_ends_the_run_at_the_first_failure)
{
	// Without fail_fast the run would wait two minutes for slow.
	char   *id  = run_start("ff.json",
            "{\"name\":\"ff\",\"fail_fast\":true,\"steps\":["
	      "{\"id\":\"slow\",\"type\":\"sleep\",\"with\":{\"ms\":120000}},"
	      "{\"id\":\"bad\",\"type\":\"fail\",\"depends_on\":[\"gate\"]},"
	      "{\"id\":\"gate\",\"type\":\"noop\"},"
	      "{\"id\":\"after\",\"type\":\"noop\",\"depends_on\":[\"bad\"],"
	      "\"trigger\":\"all_done\"}]}");
	int64_t t0  = weft_clock_mono_ms();
	json_t *run = weft_cluster_run_end(&c, id, 60000);

	cr_assert_str_eq(status_of(run), "failed");
	cr_expect(weft_clock_mono_ms() - t0 < weft_h_timeout_ms(60000),
	    "the run waited for slow");
	cr_expect_str_eq(step_status(run, "bad"), "failed");
	cr_expect_str_eq(step_status(run, "slow"), "cancelled");
	cr_expect_str_eq(step_status(run, "after"), "cancelled");
	cr_expect_str_eq(step_status(run, "gate"), "succeeded");
	cr_expect(strstr(json_string_value(json_object_get(run, "error")),
	              "fail_fast: step bad failed") != NULL,
	    "%s", json_string_value(json_object_get(run, "error")));
	cr_expect_eq(weft_cluster_count_events(&c, id, "step_cancelled"), 2);
	json_decref(run);
	free(id);
}

Test(triggers, status_from_leaves_judges_by_the_leaves)
{
	// a fails and is handled: the only leaf, report, runs all_done and
	// succeeds, so the run succeeds under status_from: leaves...
	const char *def =
	    "{\"name\":\"lv%s\"%s,\"steps\":["
	    "{\"id\":\"a\",\"type\":\"fail\"},"
	    "{\"id\":\"report\",\"type\":\"echo\",\"depends_on\":[\"a\"],"
	    "\"trigger\":\"all_done\"}]}";
	char text[512];

	snprintf(text, sizeof(text), def, "1", ",\"status_from\":\"leaves\"");
	char   *id  = run_start("lv1.json", text);
	json_t *run = weft_cluster_run_end(&c, id, 60000);
	cr_expect_str_eq(status_of(run), "succeeded");
	cr_expect_str_eq(step_status(run, "a"), "failed");
	json_decref(run);
	free(id);

	// ...and fails by default.
	snprintf(text, sizeof(text), def, "2", "");
	id  = run_start("lv2.json", text);
	run = weft_cluster_run_end(&c, id, 60000);
	cr_expect_str_eq(status_of(run), "failed");
	json_decref(run);
	free(id);
}

Test(triggers, definitions_with_bad_policy_are_refused)
{
	expect_refused("bad.json",
	    "{\"name\":\"bad\",\"status_from\":\"sinks\",\"steps\":"
	    "[{\"id\":\"a\",\"type\":\"noop\"}]}",
	    "field \"status_from\": unknown value \"sinks\" (want one of all, "
	    "leaves)");
	expect_refused("bad2.json",
	    "{\"name\":\"bad2\",\"steps\":[{\"id\":\"a\",\"type\":\"noop\"},"
	    "{\"id\":\"b\",\"type\":\"noop\",\"depends_on\":[\"a\"],"
	    "\"trigger\":\"one_succes\"}]}",
	    "steps[1] (id \"b\"): field \"trigger\": unknown value "
	    "\"one_succes\"");
}

// The examples the docs point at run as their descriptions say.
Test(triggers, examples_run_as_documented)
{
	json_t *run = weft_cluster_cli_json(
	    &c, "run '%s' --wait", WEFT_SRC_DIR "/examples/triggers.json");
	cr_expect_str_eq(status_of(run), "failed");
	cr_expect_str_eq(step_status(run, "fetch_b"), "failed");
	cr_expect_str_eq(step_status(run, "merge"), "succeeded");
	cr_expect_str_eq(step_status(run, "validate"), "upstream_failed");
	cr_expect_str_eq(step_status(run, "notify"), "upstream_failed");
	cr_expect_str_eq(step_status(run, "alert"), "succeeded");
	cr_expect_str_eq(step_status(run, "cleanup"), "succeeded");
	json_decref(run);

	run = weft_cluster_cli_json(
	    &c, "run '%s' --wait", WEFT_SRC_DIR "/examples/fail-fast.json");
	cr_expect_str_eq(status_of(run), "failed");
	cr_expect_str_eq(step_status(run, "build"), "cancelled");
	cr_expect_str_eq(step_status(run, "package"), "cancelled");
	json_decref(run);

	run = weft_cluster_cli_json(
	    &c, "run '%s' --wait", WEFT_SRC_DIR "/examples/leaves.json");
	cr_expect_str_eq(status_of(run), "succeeded");
	cr_expect_str_eq(step_status(run, "deploy"), "failed");
	cr_expect_str_eq(step_status(run, "rollback"), "succeeded");
	json_decref(run);
}

// "depends" instead of depends_on + trigger: the example runs as it says,
// and a definition giving both is refused naming the step.
Test(triggers, depends_conditions)
{
	json_t *run = weft_cluster_cli_json(
	    &c, "run '%s' --wait", WEFT_SRC_DIR "/examples/depends.json");
	cr_expect_str_eq(status_of(run), "failed");
	cr_expect_str_eq(step_status(run, "tests"), "failed");
	cr_expect_str_eq(step_status(run, "report"), "succeeded");
	cr_expect_str_eq(step_status(run, "publish"), "skipped");
	cr_expect_str_eq(step_status(run, "triage"), "succeeded");
	// report read both of the steps its condition names.
	json_t *out = json_object_get(step_of(run, "report"), "output");
	cr_expect_str_eq(json_string_value(json_object_get(
	                     json_object_get(out, "with"), "tests")),
	    "failed");
	json_decref(run);

	expect_refused("both.json",
	    "{\"name\":\"both\",\"steps\":[{\"id\":\"a\",\"type\":\"noop\"},"
	    "{\"id\":\"b\",\"type\":\"noop\",\"depends\":\"a.failed\","
	    "\"depends_on\":[\"a\"]}]}",
	    "steps[1] (id \"b\"): field \"depends\" replaces \"depends_on\" "
	    "and \"trigger\": give one or the other");
	expect_refused("syn.json",
	    "{\"name\":\"syn\",\"steps\":[{\"id\":\"a\",\"type\":\"noop\"},"
	    "{\"id\":\"b\",\"type\":\"noop\",\"depends\":\"a.failed ||\"}]}",
	    "steps[1] (id \"b\"): field \"depends\": col 12: expected a step "
	    "name, got the end");
}

// A coordinator killed mid-run, after a one_success step fired early and
// a failure made two steps upstream_failed, while an all_done step still
// waits on a sleeping one: restarted, it neither decides anything twice
// nor forgets what it decided, and the waiting step runs once slow ends.
Test(triggers, coordinator_restart_keeps_decided_and_waiting_steps)
{
	char   *id = run_start("rs.json",
            "{\"name\":\"rs\",\"steps\":["
	      "{\"id\":\"slow\",\"type\":\"sleep\",\"with\":{\"ms\":4000}},"
	      "{\"id\":\"fast\",\"type\":\"echo\"},"
	      "{\"id\":\"bad\",\"type\":\"fail\"},"
	      "{\"id\":\"t1\",\"type\":\"echo\",\"depends_on\":[\"slow\","
	      "\"fast\"],\"trigger\":\"one_success\"},"
	      "{\"id\":\"t2\",\"type\":\"noop\",\"depends_on\":[\"bad\"]},"
	      "{\"id\":\"t3\",\"type\":\"noop\",\"depends_on\":[\"t2\"],"
	      "\"trigger\":\"none_failed\"},"
	      "{\"id\":\"t4\",\"type\":\"echo\",\"depends_on\":[\"slow\","
	      "\"t3\"],\"trigger\":\"all_done\"}]}");
	json_t *run = await_step(id, "t1", "succeeded");
	json_decref(run);
	run = await_step(id, "t3", "upstream_failed");
	cr_assert_str_eq(step_status(run, "slow"), "running",
	    "the restart must come while slow runs (raise its sleep)");
	cr_expect_str_eq(step_status(run, "t4"), "pending");
	json_decref(run);

	weft_h_kill(c.coord, SIGKILL);
	weft_cluster_start_coord(&c);

	run = weft_cluster_run_end(&c, id, 60000);
	cr_expect_str_eq(status_of(run), "failed");
	cr_expect_str_eq(step_status(run, "t1"), "succeeded");
	cr_expect_str_eq(step_status(run, "t2"), "upstream_failed");
	cr_expect_str_eq(step_status(run, "t3"), "upstream_failed");
	cr_expect_str_eq(json_string_value(json_object_get(step_of(run, "t3"),
	                     "error")),
	    "upstream failed: t2");
	cr_expect_str_eq(step_status(run, "slow"), "succeeded");
	cr_expect_str_eq(step_status(run, "t4"), "succeeded");
	json_decref(run);
	cr_expect_eq(weft_cluster_count_events(&c, id, "step_upstream_failed"), 2,
	    "a restart decides nothing twice");
	size_t ready = weft_cluster_count_events(&c, id, "step_ready");
	cr_expect_eq(ready, 5, "step_ready %zu times, want 5 (t2, t3 never)",
	    ready);
	free(id);
}
