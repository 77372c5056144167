// waiting_e2e_test: every waiting step says why, with the real binaries:
// waiting_for in `weft status --json`, the human status and GET
// /api/v1/runs/{id}; step_unschedulable after --unschedulable-after and
// step_schedulable when a worker comes; `run --wait` saying why it waits;
// schedule_timeout_ms failing a step no worker took; the ready-queue depth
// falling when a run is cancelled.
#include <criterion/criterion.h>
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

// up0: a coordinator with no worker, unschedulable after 1 s.
static void
up0(void)
{
	weft_cluster_opts o = { .nworkers = 0, .survey_ms = 200,
		.args = { "--unschedulable-after", "1s", NULL } };
	weft_cluster_start_opts(&c, &o);
}

TestSuite(waiting, .fini = down, .timeout = 240);

// run_bg starts a run of def (a file) and returns its id (static).
static const char *
run_bg(const char *def)
{
	static char id[64];
	char       *out;

	cr_assert_eq(weft_cluster_cli(&c, &out, "run '%s'", def), 0, "%s", out);
	out[strcspn(out, "\n")] = '\0';
	snprintf(id, sizeof(id), "%s", out);
	free(out);
	return (id);
}

// step_wait returns the waiting_for of step sid in status body run.
static json_t *
step_wait(json_t *run, const char *sid)
{
	size_t  k;
	json_t *s;

	json_array_foreach (json_object_get(run, "steps"), k, s) {
		if (strcmp(json_string_value(json_object_get(s, "id")), sid) == 0) {
			return (json_object_get(s, "waiting_for"));
		}
	}
	return (NULL);
}

static const char *
reason_of(json_t *wf)
{
	const char *r = json_string_value(json_object_get(wf, "reason"));
	return (r != NULL ? r : "(none)");
}

// await_reason waits until step sid of run id says reason in `weft status
// --json`; returns that status body (new reference).
static json_t *
await_reason(const char *id, const char *sid, const char *reason)
{
	int64_t deadline = weft_clock_mono_ms() + weft_h_timeout_ms(20000);

	for (;;) {
		json_t *run = weft_cluster_cli_json(&c, "status %s", id);
		if (strcmp(reason_of(step_wait(run, sid)), reason) == 0) {
			return (run);
		}
		if (weft_clock_mono_ms() > deadline) {
			char *text = json_dumps(run, JSON_INDENT(1));
			weft_cluster_dump_logs(&c);
			cr_assert_fail("step %s never said %s:\n%s", sid, reason,
			    text);
		}
		json_decref(run);
		weft_clock_sleep_ms(100);
	}
}

// api_reason reads step sid's waiting_for reason from GET /api/v1/runs/ID
// (malloc'd).
static char *
api_reason(const char *id, const char *sid)
{
	char   *out;
	json_t *run;
	char   *r;

	cr_assert_eq(weft_h_run_fmt(&out, "curl -s 'http://%s/api/v1/runs/%s'",
	                 c.http, id),
	    0);
	run = json_loads(out, 0, NULL);
	cr_assert_not_null(run, "not JSON: %s", out);
	r = weft_xstrdup(reason_of(step_wait(run, sid)));
	json_decref(run);
	free(out);
	return (r);
}

static void
await_count(const char *id, const char *type, size_t want)
{
	int64_t deadline = weft_clock_mono_ms() + weft_h_timeout_ms(20000);
	size_t  n;

	while ((n = weft_cluster_count_events(&c, id, type)) != want) {
		if (weft_clock_mono_ms() > deadline) {
			weft_cluster_dump_logs(&c);
			cr_assert_fail("%zu %s events, want %zu", n, type, want);
		}
		weft_clock_sleep_ms(100);
	}
}

// await_file waits until file (in the cluster dir) holds text.
static void
await_file(const char *name, const char *text)
{
	int64_t deadline = weft_clock_mono_ms() + weft_h_timeout_ms(20000);
	char   *out = NULL;

	for (;;) {
		weft_h_run_fmt(&out, "cat '%s/%s' 2>/dev/null", c.dir, name);
		if (out != NULL && strstr(out, text) != NULL) {
			free(out);
			return;
		}
		if (weft_clock_mono_ms() > deadline) {
			cr_assert_fail("%s never said \"%s\":\n%s", name, text,
			    out ? out : "");
		}
		free(out);
		out = NULL;
		weft_clock_sleep_ms(100);
	}
}

Test(waiting, no_worker_then_unschedulable_then_schedulable, .init = up0)
{
	const char *def = weft_cluster_write(&c, "two.json",
	    "{\"name\":\"two\",\"steps\":[{\"id\":\"a\",\"type\":\"echo\"},"
	    "{\"id\":\"b\",\"type\":\"echo\",\"depends_on\":[\"a\"]}]}");
	char       *out;

	// `run --wait` in the background, its words in wait.log.
	cr_assert_eq(weft_cluster_cli(&c, NULL,
	                 "run '%s' --wait --timeout 2m > '%s/wait.log' 2>&1 &",
	                 def, c.dir),
	    0);
	int64_t deadline = weft_clock_mono_ms() + weft_h_timeout_ms(20000);
	json_t *runs;
	while (json_array_size(runs = weft_cluster_cli_json(&c, "runs")) == 0) {
		cr_assert(weft_clock_mono_ms() < deadline, "no run started");
		json_decref(runs);
		weft_clock_sleep_ms(100);
	}
	char id[64];
	snprintf(id, sizeof(id), "%s",
	    json_string_value(json_object_get(json_array_get(runs, 0), "id")));
	json_decref(runs);

	json_t *run = await_reason(id, "a", "no_worker");
	cr_expect(strstr(json_string_value(json_object_get(
	                     step_wait(run, "a"), "message")),
	              "no live worker advertises step type \"echo\"") != NULL);
	json_t *wb = step_wait(run, "b");
	cr_expect_str_eq(reason_of(wb), "dependencies");
	cr_expect_str_eq(json_string_value(json_array_get(
	                     json_object_get(wb, "dependencies"), 0)),
	    "a");
	json_decref(run);
	char *r = api_reason(id, "a");
	cr_expect_str_eq(r, "no_worker", "the API says %s", r);
	free(r);
	r = api_reason(id, "b");
	cr_expect_str_eq(r, "dependencies", "the API says %s", r);
	free(r);

	// After 1 s without an advertiser: one step_unschedulable, and the
	// waiting CLI says why it waits.
	await_count(id, "step_unschedulable", 1);
	await_file("wait.log",
	    "step a is waiting: no live worker advertises step type \"echo\"");
	cr_assert_eq(weft_cluster_cli(&c, &out, "status %s", id), 0);
	cr_expect(strstr(out, "waiting: no live worker advertises") != NULL,
	    "the status table does not say why:\n%s", out);
	free(out);

	// A worker with the type: step_schedulable, and the run succeeds.
	weft_cluster_start_worker(&c, 0);
	json_t *end = weft_cluster_run_end(&c, id, 30000);
	cr_expect_str_eq(json_string_value(json_object_get(end, "status")),
	    "succeeded");
	cr_expect_null(step_wait(end, "a"), "an ended run waits for nothing");
	json_decref(end);
	cr_expect_eq(weft_cluster_count_events(&c, id, "step_schedulable"), 1);
	cr_expect_eq(weft_cluster_count_events(&c, id, "step_unschedulable"), 1,
	    "step_unschedulable is written once");
	await_file("wait.log", "succeeded");
}

Test(waiting, schedule_timeout_fails_the_step_with_phase_schedule,
    .init = up0)
{
	const char *def = weft_cluster_write(&c, "st.json",
	    "{\"name\":\"st\",\"schedule_timeout_ms\":600,\"steps\":["
	    "{\"id\":\"a\",\"type\":\"echo\"}]}");
	const char *id  = run_bg(def);
	json_t     *run = await_reason(id, "a", "no_worker");

	cr_expect_not_null(json_object_get(step_wait(run, "a"),
	                       "schedule_timeout_at_ms"),
	    "the armed schedule timeout is shown");
	json_decref(run);
	json_t *end = weft_cluster_run_end(&c, id, 30000);
	cr_expect_str_eq(json_string_value(json_object_get(end, "status")),
	    "failed");
	json_decref(end);
	// One event each: the CLI prints it as one JSON line.
	cr_assert_eq(weft_cluster_count_events(&c, id, "step_timed_out"), 1);
	json_t *ev = weft_cluster_cli_json(
	    &c, "events --run %s --type step_timed_out", id);
	cr_expect_str_eq(json_string_value(json_object_get(
	                     json_object_get(ev, "data"), "phase")),
	    "schedule");
	json_decref(ev);
	cr_assert_eq(weft_cluster_count_events(&c, id, "step_failed"), 1);
	ev = weft_cluster_cli_json(&c, "events --run %s --type step_failed", id);
	cr_expect(strstr(json_string_value(json_object_get(
	                     json_object_get(ev, "data"), "error")),
	              "schedule_timeout_ms (600 ms)") != NULL);
	json_decref(ev);
}

static void
up1(void)
{
	weft_cluster_start(&c, 1, 200);
	weft_cluster_wait_workers(&c, 1);
}

// metric reads one line's value from GET /metrics.
static long
metric(const char *name)
{
	char *out;
	long  v = -1;

	weft_h_run_fmt(&out, "curl -s 'http://%s/metrics' | grep '^%s '",
	    c.http, name);
	if (out != NULL && out[0] != '\0') {
		v = atol(out + strlen(name) + 1);
	}
	free(out);
	return (v);
}

// With a worker of 4 slots: steps beyond them are workers_full, a paused
// run's ready steps say paused, a failed attempt waiting to retry says
// retry_backoff until when; cancelling the run empties the ready queue.
Test(waiting, full_paused_backoff_and_depth_after_cancel, .init = up1)
{
	char buf[2048];
	int  len;

	// A failed attempt waiting 10 minutes to be retried.
	const char *fid = run_bg(weft_cluster_write(&c, "f.json",
	    "{\"name\":\"f\",\"steps\":[{\"id\":\"f\",\"type\":\"fail\","
	    "\"retry\":{\"max_attempts\":2,\"backoff\":\"fixed\","
	    "\"initial_ms\":600000,\"max_ms\":600000}}]}"));
	json_t *run = await_reason(fid, "f", "retry_backoff");
	json_t *wf  = step_wait(run, "f");
	cr_expect_gt(json_integer_value(json_object_get(wf, "until_ms")),
	    weft_clock_wall_ms() + 500000, "until_ms is the backoff's end");
	cr_expect(strstr(json_string_value(json_object_get(wf, "message")),
	              "retry backoff until ") != NULL);
	json_decref(run);
	cr_assert_eq(weft_cluster_cli(&c, NULL, "cancel %s", fid), 0);

	// 6 sleeps on 4 slots: 2 wait, workers_full.
	len = snprintf(buf, sizeof(buf), "{\"name\":\"full\",\"steps\":[");
	for (int i = 0; i < 6; i++) {
		len += snprintf(buf + len, sizeof(buf) - (size_t) len,
		    "%s{\"id\":\"s%d\",\"type\":\"sleep\",\"with\":{\"ms\":120000}}",
		    i ? "," : "", i);
	}
	snprintf(buf + len, sizeof(buf) - (size_t) len, "]}");
	const char *id = run_bg(weft_cluster_write(&c, "full.json", buf));
	const char *full = NULL;
	int64_t     deadline = weft_clock_mono_ms() + weft_h_timeout_ms(20000);
	while (full == NULL) {
		run = weft_cluster_cli_json(&c, "status %s", id);
		for (int i = 0; i < 6 && full == NULL; i++) {
			char sid[8];
			snprintf(sid, sizeof(sid), "s%d", i);
			if (strcmp(reason_of(step_wait(run, sid)), "workers_full") ==
			    0) {
				full = i < 3 ? "low" : "high";
				cr_expect(strstr(json_string_value(json_object_get(
				                     step_wait(run, sid), "message")),
				              "ready ahead") != NULL);
			}
		}
		json_decref(run);
		cr_assert(full != NULL || weft_clock_mono_ms() < deadline,
		    "no step ever said workers_full");
		weft_clock_sleep_ms(100);
	}
	cr_expect_eq(metric("weft_ready_queue_depth"), 2);

	cr_assert_eq(weft_cluster_cli(&c, NULL, "pause %s", id), 0);
	run = weft_cluster_cli_json(&c, "status %s", id);
	int paused = 0;
	for (int i = 0; i < 6; i++) {
		char sid[8];
		snprintf(sid, sizeof(sid), "s%d", i);
		paused += strcmp(reason_of(step_wait(run, sid)), "paused") == 0;
	}
	cr_expect_eq(paused, 2, "the two ready steps say paused");
	json_decref(run);

	cr_assert_eq(weft_cluster_cli(&c, NULL, "cancel %s", id), 0);
	deadline = weft_clock_mono_ms() + weft_h_timeout_ms(20000);
	while (metric("weft_ready_queue_depth") != 0) {
		cr_assert(weft_clock_mono_ms() < deadline,
		    "the ready-queue depth stays at %ld after cancel",
		    metric("weft_ready_queue_depth"));
		weft_clock_sleep_ms(100);
	}
}
