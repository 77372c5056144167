// heartbeat_test: heartbeats and progress end to end, on a real
// coordinator with a weft-worker and a second worker in this process
// (the library) whose C step never heartbeats: that attempt is timed out
// (phase heartbeat), aborted on its worker and retried; an exec program
// that lives heartbeats by living, and the progress lines it writes show
// in `weft status --json` and GET /api/v1/runs/{id}.
#include <criterion/criterion.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "clock.h"
#include "cluster.h"
#include "cookie.h"
#include "harness.h"
#include "worker.h"

#define SURVEY_MS 200

static weft_cluster c;
static weft_worker *hw;            // the worker in this process
static _Atomic int  hang_aborted;  // hang attempts that saw their abort
static _Atomic int  hang_attempts; // hang attempts started

// hang_step never heartbeats: its first attempt blocks until aborted (a
// step stuck while its worker is fine); later attempts succeed at once.
static int
hang_step(void *arg, const weft_step_ctx *ctx, json_t *input,
    json_t **output, char **error)
{
	(void) arg;
	(void) input;
	atomic_fetch_add(&hang_attempts, 1);
	if (ctx->attempt >= 2) {
		*output = json_pack("{s:i}", "attempt", (int) ctx->attempt);
		return (0);
	}
	while (weft_step_sleep(ctx, 1000) == WEFT_OK) {
	}
	atomic_fetch_add(&hang_aborted, 1);
	*error = strdup("hang: aborted");
	return (-1);
}

static void
up(void)
{
	weft_worker_cfg cfg;
	weft_cookie     cookie;
	char            url[128], why[256];

	weft_cluster_start(&c, 1, SURVEY_MS);
	cr_assert_eq(weft_crypto_init(), 0);
	cr_assert_eq(weft_cookie_load(&cookie, c.cookie, false, why, sizeof(why)),
	    WEFT_OK, "cookie %s: %s", c.cookie, why);
	snprintf(url, sizeof(url), "%s", c.cluster);
	memset(&cfg, 0, sizeof(cfg));
	cfg.join_url   = url;
	cfg.listen_url = "tcp://127.0.0.1:0";
	cfg.name       = "w-hang";
	cfg.slots      = 2;
	cfg.cookie     = &cookie;
	cr_assert_eq(weft_worker_open(&hw, &cfg), WEFT_OK);
	cr_assert_eq(weft_worker_register(hw, "hang", hang_step, NULL), WEFT_OK);
	cr_assert_eq(weft_worker_start(hw), WEFT_OK);
	weft_cluster_wait_workers(&c, 2);
}

static void
down(void)
{
	weft_worker_close(hw);
	weft_cluster_stop(&c);
}

TestSuite(heartbeat, .init = up, .fini = down, .timeout = 120);

// event_data returns the data of the first event of type in the run's log
// (new reference), or NULL.
static json_t *
event_data(const char *run, const char *type)
{
	char   *out;
	json_t *data = NULL;

	cr_assert_eq(weft_cluster_cli(&c, &out, "events --run %s --type %s",
	                 run, type),
	    0);
	char *nl = strchr(out, '\n');
	if (nl != NULL) {
		*nl = '\0';
	}
	json_t *ev = json_loads(out, 0, NULL);
	if (ev != NULL) {
		data = json_incref(json_object_get(ev, "data"));
	}
	json_decref(ev);
	free(out);
	return (data);
}

Test(heartbeat, silent_c_step_is_timed_out_aborted_and_retried)
{
	const char *def = weft_cluster_write(&c, "hang.json",
	    "{\"name\":\"hang\",\"steps\":[{\"id\":\"stuck\",\"type\":\"hang\","
	    "\"heartbeat_timeout_ms\":1000,\"retry\":{\"max_attempts\":2,"
	    "\"backoff\":\"fixed\",\"initial_ms\":100}}]}");
	json_t *run = weft_cluster_cli_json(&c, "run '%s' --wait --json", def);
	const char *id = json_string_value(json_object_get(run, "id"));

	cr_assert_str_eq(json_string_value(json_object_get(run, "status")),
	    "succeeded", "the run is not failed by a stuck step");
	cr_expect_eq(weft_cluster_count_events(&c, id, "step_timed_out"), 1);
	cr_expect_eq(weft_cluster_count_events(&c, id, "step_retry_scheduled"),
	    1);
	json_t *d = event_data(id, "step_timed_out");
	cr_assert_not_null(d);
	cr_expect_str_eq(json_string_value(json_object_get(d, "phase")),
	    "heartbeat");
	cr_expect_eq(json_integer_value(json_object_get(d,
	                 "heartbeat_timeout_ms")),
	    1000);
	cr_expect_geq(json_integer_value(json_object_get(d, "silent_ms")), 1000);
	json_decref(d);
	d = event_data(id, "step_retry_scheduled");
	cr_expect(strstr(json_string_value(json_object_get(d, "error")),
	              "no heartbeat for") != NULL,
	    "retry reason: %s", json_string_value(json_object_get(d, "error")));
	json_decref(d);
	// The stuck attempt was told to stop on its worker.
	int64_t end = weft_clock_mono_ms() + weft_h_timeout_ms(10000);
	while (atomic_load(&hang_aborted) < 1 && weft_clock_mono_ms() < end) {
		weft_clock_sleep_ms(20);
	}
	cr_expect_eq(atomic_load(&hang_aborted), 1,
	    "the timed-out attempt was never aborted on its worker");
	cr_expect_eq(atomic_load(&hang_attempts), 2);
	json_decref(run);
}

// gated_script writes NAME into the exec directory: a program that runs
// `each` (a shell line) every 100 ms until the file its first argument
// names exists (at most 60 s), then prints {"done": true}. Nothing on
// stdout before: only living (and progress) can be its heartbeat.
static void
gated_script(const char *name, const char *each)
{
	char  path[800];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", c.exec_allow, name);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	fprintf(f,
	    "#!/bin/sh\n"
	    "i=0\n"
	    "while [ ! -e \"$1\" ] && [ $i -lt 600 ]; do\n"
	    "  %s\n"
	    "  sleep 0.1; i=$((i + 1))\n"
	    "done\n"
	    "echo '{\"done\": true}'\n",
	    each);
	fclose(f);
	chmod(path, 0755);
}

// status_until asks for the run's status until done(status) holds or 30 s
// (scaled) pass; returns the last status (new reference).
static json_t *
status_until(const char *id, bool (*done)(json_t *))
{
	int64_t end = weft_clock_mono_ms() + weft_h_timeout_ms(30000);
	json_t *st  = NULL;

	while (weft_clock_mono_ms() < end) {
		json_decref(st);
		st = weft_cluster_cli_json(&c, "status %s --json", id);
		if (done(st)) {
			break;
		}
		weft_clock_sleep_ms(100);
	}
	return (st);
}

// release_ends creates flag (the gated programs end) and expects run id
// to succeed without a single step timed out.
static void
release_ends(const char *flag, const char *id)
{
	FILE *f = fopen(flag, "w");

	cr_assert_not_null(f);
	fclose(f);
	json_t *run = weft_cluster_run_end(&c, id, 30000);
	cr_expect_str_eq(json_string_value(json_object_get(run, "status")),
	    "succeeded");
	json_decref(run);
	cr_expect_eq(weft_cluster_count_events(&c, id, "step_timed_out"), 0);
}

// progress_t returns progress.value.t of the first step in a status body
// (-1 when absent).
static json_int_t
progress_t(json_t *status)
{
	json_t *step = json_array_get(json_object_get(status, "steps"), 0);
	json_t *v    = json_object_get(json_object_get(step, "progress"), "value");

	return (json_is_integer(json_object_get(v, "t"))
	        ? json_integer_value(json_object_get(v, "t"))
	        : -1);
}

static bool
ran_3s(json_t *st)
{
	return (progress_t(st) >= 3);
}

Test(heartbeat, exec_lives_so_it_beats_and_its_progress_shows)
{
	char flag[800], defjson[2048], id[64];

	// A progress line every 100 ms, "t" in whole seconds.
	gated_script("progress.sh",
	    "echo \"{\\\"pct\\\": 50, \\\"t\\\": $((i / 10))}\" "
	    ">&\"$WEFT_PROGRESS_FD\"");
	snprintf(flag, sizeof(flag), "%s/progress.go", c.dir);
	snprintf(defjson, sizeof(defjson),
	    "{\"name\":\"prog\",\"steps\":[{\"id\":\"work\",\"type\":\"exec\","
	    "\"heartbeat_timeout_ms\":1000,"
	    "\"with\":{\"cmd\":[\"progress.sh\",\"%s\"]}}]}",
	    flag);
	weft_cluster_run_def(&c, "prog.json", defjson, id);

	// The status shows the program has run for 3 s: three heartbeat
	// timeouts' worth, with nothing on stdout.
	json_t *st = status_until(id, ran_3s);
	cr_assert_geq(progress_t(st), 3, "no progress in weft status");
	json_t *step = json_array_get(json_object_get(st, "steps"), 0);
	json_t *p    = json_object_get(step, "progress");
	cr_expect_eq(json_integer_value(json_object_get(
	                 json_object_get(p, "value"), "pct")),
	    50);
	cr_expect_eq(json_integer_value(json_object_get(p, "attempt")), 1);
	cr_expect_gt(json_integer_value(json_object_get(p, "ts_ms")), 0);
	cr_expect_str_eq(json_string_value(json_object_get(step, "status")),
	    "running");
	json_decref(st);

	// The same through the HTTP API.
	char  cmd[1024];
	char *out;
	snprintf(cmd, sizeof(cmd), "curl -sf 'http://%s/api/v1/runs/%s'", c.http,
	    id);
	cr_assert_eq(weft_h_run(cmd, &out), 0, "%s", cmd);
	json_t *api = json_loads(out, 0, NULL);
	cr_assert_not_null(api, "%s", out);
	free(out);
	cr_expect_geq(progress_t(api), 3, "no progress in the API's run");
	json_decref(api);

	// It never timed out, and progress events stayed few (at most one
	// per step every 2 s).
	release_ends(flag, id);
	size_t n = weft_cluster_count_events(&c, id, "step_progress");
	cr_expect(n >= 2 && n <= 30, "%zu step_progress events", n);
}

// step_status returns the status of step i in a status body.
static const char *
step_status(json_t *status, size_t i)
{
	return (json_string_value(json_object_get(
	    json_array_get(json_object_get(status, "steps"), i), "status")));
}

static bool
first_step_ended(json_t *st)
{
	const char *s = step_status(st, 0);

	return (strcmp(s, "pending") != 0 && strcmp(s, "ready") != 0 &&
	    strcmp(s, "dispatched") != 0 && strcmp(s, "running") != 0);
}

Test(heartbeat, quiet_exec_and_sleep_beat_by_living)
{
	char flag[800], defjson[2048], id[64];

	gated_script("quiet.sh", ":"); // says nothing at all
	snprintf(flag, sizeof(flag), "%s/quiet.go", c.dir);
	// "clock" sleeps 3 s, three heartbeat timeouts, beside "quiet".
	snprintf(defjson, sizeof(defjson),
	    "{\"name\":\"quiet\",\"steps\":["
	    "{\"id\":\"clock\",\"type\":\"sleep\",\"heartbeat_timeout_ms\":1000,"
	    "\"with\":{\"ms\":3000}},"
	    "{\"id\":\"quiet\",\"type\":\"exec\",\"heartbeat_timeout_ms\":1000,"
	    "\"with\":{\"cmd\":[\"quiet.sh\",\"%s\"]}}]}",
	    flag);
	weft_cluster_run_def(&c, "quiet.json", defjson, id);

	// Once the clock step is done the quiet program has lived 3 s.
	json_t *st = status_until(id, first_step_ended);
	cr_assert_str_eq(step_status(st, 0), "succeeded",
	    "the sleep step ended otherwise");
	cr_expect_str_eq(step_status(st, 1), "running",
	    "a quiet exec program that lives was timed out");
	json_decref(st);
	release_ends(flag, id);
	cr_expect_eq(weft_cluster_count_events(&c, id, "step_progress"), 0,
	    "nothing reported, nothing recorded");
}

Test(heartbeat, heartbeat_timeout_below_two_surveys_is_refused)
{
	const char *def = weft_cluster_write(&c, "fast.json",
	    "{\"name\":\"fast\",\"steps\":[{\"id\":\"a\",\"type\":\"noop\"},"
	    "{\"id\":\"b\",\"type\":\"hang\",\"heartbeat_timeout_ms\":300}]}");
	char *out;

	cr_expect_neq(weft_cluster_cli(&c, &out, "define '%s' 2>&1", def), 0);
	cr_expect(strstr(out, "steps[1] (id \"b\"): field "
	                      "\"heartbeat_timeout_ms\": must be at least 400") !=
	        NULL,
	    "%s", out);
	free(out);
	def = weft_cluster_write(&c, "neg.json",
	    "{\"name\":\"neg\",\"steps\":[{\"id\":\"a\",\"type\":\"noop\","
	    "\"heartbeat_timeout_ms\":-1}]}");
	cr_expect_neq(weft_cluster_cli(&c, &out, "define '%s' 2>&1", def), 0);
	cr_expect(strstr(out, "steps[0] (id \"a\"): field "
	                      "\"heartbeat_timeout_ms\": must be between 0") !=
	        NULL,
	    "%s", out);
	free(out);
}
