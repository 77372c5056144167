// schedule_test: delayed starts and cron schedules with the real binaries.
// The coordinator runs with --test-clock, and `weft clock advance` moves
// its clock, so fires come without waiting minutes (one test waits for a
// minute boundary made near by the offset, on the running clock).
// Schedules: create, list, get, pause, resume, trigger, delete through
// the CLI and the HTTP API; fires create runs with the schedule's input
// and params; overlap skip / allow / cancel_previous; catchup none / one /
// all across a restart; no double fire after kill -9 right after a fire.
// Delayed runs: scheduled, listed, cancelled, started after a restart.
// Malformed input everywhere, each refusal naming what is wrong.
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "cluster.h"
#include "harness.h"

static weft_cluster c;
static char         offset_arg[32] = "0";

static void
up(void)
{
	weft_cluster_opts o = { .nworkers = 1, .survey_ms = 200,
		.args = { "--test-clock", offset_arg, NULL } };
	weft_cluster_start_opts(&c, &o);
}

static void
down(void)
{
	weft_cluster_stop(&c);
}

TestSuite(schedule, .init = up, .fini = down, .timeout = 300);

static const char *tick_def =
    "{\"name\":\"tick\",\"params\":{\"x\":{\"type\":\"string\","
    "\"default\":\"d\"}},\"steps\":[{\"id\":\"a\",\"type\":\"echo\","
    "\"with\":{\"x\":\"${params.x}\",\"k\":\"${input.k}\"}}]}";

// A run that stays active until signalled: no worker needed.
static const char *hold_def =
    "{\"name\":\"hold\",\"steps\":[{\"id\":\"w\",\"type\":\"wait\","
    "\"with\":{\"signal\":\"go\"}}]}";

// cli runs the CLI and returns its stdout (malloc'd); want its status.
static char *
cli(int want, const char *args)
{
	char *out = NULL;
	int   st  = weft_cluster_cli(&c, &out, "%s", args);
	if (st != want) {
		weft_cluster_dump_logs(&c);
	}
	cr_assert_eq(st, want, "weft %s: exit %d, want %d: %s", args, st, want,
	    out ? out : "");
	return (out);
}

// cli_err runs the CLI expecting exit status want; returns stderr+stdout.
static char *
cli_err(int want, const char *args)
{
	char cmd[4096];
	snprintf(cmd, sizeof(cmd), "%s 2>&1", args);
	return (cli(want, cmd));
}

static void
define(const char *def)
{
	char args[1024];
	snprintf(args, sizeof(args), "define '%s'",
	    weft_cluster_write(&c, "def.json", def));
	free(cli(0, args));
}

static int64_t
advance(const char *d)
{
	char    args[128];
	json_t *r;
	int64_t now;
	snprintf(args, sizeof(args), "clock advance %s", d);
	r   = weft_cluster_cli_json(&c, "%s", args);
	now = json_integer_value(json_object_get(r, "now_ms"));
	json_decref(r);
	return (now);
}

// events returns the events of one type, as an array (new reference).
static json_t *
events(const char *type)
{
	char    args[128], *out, *line, *save = NULL;
	json_t *arr = json_array();
	snprintf(args, sizeof(args), "events --type %s --limit 10000", type);
	out = cli(0, args);
	for (line = strtok_r(out, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		json_t *ev = json_loads(line, 0, NULL);
		cr_assert_not_null(ev, "event line: %s", line);
		json_array_append_new(arr, ev);
	}
	free(out);
	return (arr);
}

// fires returns the schedule_fired events of schedule name (new ref).
static json_t *
fires(const char *name)
{
	json_t *all = events("schedule_fired"), *mine = json_array(), *ev;
	size_t  i;
	json_array_foreach (all, i, ev) {
		const char *s = json_string_value(
		    json_object_get(json_object_get(ev, "data"), "schedule"));
		if (s != NULL && strcmp(s, name) == 0) {
			json_array_append(mine, ev);
		}
	}
	json_decref(all);
	return (mine);
}

static size_t
nfires(const char *name)
{
	json_t *f = fires(name);
	size_t  n = json_array_size(f);
	json_decref(f);
	return (n);
}

// await_fires waits until schedule name has fired n times (at least).
static void
await_fires(const char *name, size_t n)
{
	int64_t deadline = weft_clock_mono_ms() + weft_h_timeout_ms(20000);
	size_t  got;
	while ((got = nfires(name)) < n && weft_clock_mono_ms() < deadline) {
		weft_clock_sleep_ms(100);
	}
	if (got < n) {
		weft_cluster_dump_logs(&c);
	}
	cr_assert_geq(got, n, "schedule %s fired %zu times, want %zu", name,
	    got, n);
}

// run_status returns the status of run id (static).
static const char *
run_status(const char *id)
{
	static char st[32];
	json_t     *r = weft_cluster_cli_json(&c, "status %s", id);
	snprintf(st, sizeof(st), "%s",
	    json_string_value(json_object_get(r, "status")));
	json_decref(r);
	return (st);
}

static void
await_status(const char *id, const char *want)
{
	int64_t deadline = weft_clock_mono_ms() + weft_h_timeout_ms(20000);
	while (strcmp(run_status(id), want) != 0 &&
	    weft_clock_mono_ms() < deadline) {
		weft_clock_sleep_ms(100);
	}
	if (strcmp(run_status(id), want) != 0) {
		weft_cluster_dump_logs(&c);
	}
	cr_assert_str_eq(run_status(id), want, "run %s is %s, want %s", id,
	    run_status(id), want);
}

static char *
first_line(char *out)
{
	out[strcspn(out, "\n")] = '\0';
	return (out);
}

// restart stops the coordinator (SIGKILL when kill9, else SIGTERM) and
// starts it again with the test clock offset by offset_ms.
static void
restart(bool kill9, int64_t offset_ms)
{
	weft_h_kill(c.coord, kill9 ? SIGKILL : SIGTERM);
	snprintf(offset_arg, sizeof(offset_arg), "%lld", (long long) offset_ms);
	weft_cluster_start_coord(&c);
	weft_cluster_wait_workers(&c, 1);
}

// clock_offset gives the engine clock's current offset from the system's.
static int64_t
clock_offset(void)
{
	json_t *r = weft_cluster_cli_json(&c, "clock advance 0");
	int64_t o = json_integer_value(json_object_get(r, "offset_ms"));
	json_decref(r);
	return (o);
}

Test(schedule, crud_through_the_cli)
{
	json_t *s, *list;
	char   *out;

	define(tick_def);
	s = weft_cluster_cli_json(&c,
	    "schedule create nightly --definition tick --cron '30 2 * * *' "
	    "--timezone Europe/Berlin --input '{\"k\":1}' --params "
	    "'{\"x\":\"p\"}' --overlap allow --catchup all");
	cr_assert_str_eq(json_string_value(json_object_get(s, "timezone")),
	    "Europe/Berlin");
	cr_assert_str_eq(json_string_value(json_object_get(s, "overlap")),
	    "allow");
	cr_assert_str_eq(json_string_value(json_object_get(s, "catchup")),
	    "all");
	cr_assert(json_is_integer(json_object_get(s, "next_fire_ms")));
	// 02:30 in Berlin is 00:30 or 01:30 UTC.
	int64_t next = json_integer_value(json_object_get(s, "next_fire_ms"));
	int64_t tod  = next % 86400000;
	cr_assert(tod == 1800000 || tod == 5400000, "next fire %lld",
	    (long long) next);
	json_decref(s);
	// The table names what it shows.
	out = cli(0, "schedule list");
	cr_assert(strstr(out, "nightly") && strstr(out, "NEXT FIRE") &&
	        strstr(out, "30 2 * * *"),
	    "%s", out);
	free(out);
	// Duplicate names, unknown definitions, bad fields: refused, named.
	static const struct {
		const char *args, *want;
	} bad[] = {
		{ "schedule create nightly --definition tick --cron '* * * * *'",
		    "\"nightly\" already exists" },
		{ "schedule create n2 --definition nope --cron '* * * * *'",
		    "no definition named \"nope\"" },
		{ "schedule create n2 --definition tick --cron '* 25 * * *'",
		    "field 2 (hour): 25 is out of range 0-23" },
		{ "schedule create n2 --definition tick --cron '* * * * FUNDAY'",
		    "field 5 (day of week): unknown name \"FUNDAY\"" },
		{ "schedule create n2 --definition tick --cron '* * * *'",
		    "4 fields, want 5" },
		{ "schedule create n2 --definition tick --cron '0 0 31 2 *'",
		    "never fires" },
		{ "schedule create n2 --definition tick --cron '* * * * *' "
		  "--timezone Mars/Olympus_Mons",
		    "unknown time zone \"Mars/Olympus_Mons\"" },
		{ "schedule create n2 --definition tick --cron '* * * * *' "
		  "--timezone ../../etc/passwd",
		    "bad time zone" },
		{ "schedule create 'n 2' --definition tick --cron '* * * * *'",
		    "bad name" },
		{ "schedule create n2 --definition tick --cron '* * * * *' "
		  "--params '{\"nope\":1}'",
		    "nope" },
		{ "schedule get nothere", "no schedule \"nothere\"" },
		{ "schedule pause nothere", "no schedule \"nothere\"" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		out = cli_err(1, bad[i].args);
		cr_expect(strstr(out, bad[i].want) != NULL,
		    "weft %s: \"%s\" lacks \"%s\"", bad[i].args, out,
		    bad[i].want);
		free(out);
	}
	// Usage errors: exit 2.
	out = cli_err(2, "schedule create n3 --cron '* * * * *'");
	cr_expect(strstr(out, "needs --definition D and --cron EXPR"), "%s", out);
	free(out);
	// The CLI checks --overlap and --catchup itself (nothing is sent);
	// the coordinator's own check is reached by HTTP below.
	out = cli_err(2, "schedule create n2 --definition tick --cron "
	                 "'* * * * *' --overlap sometimes");
	cr_expect(strstr(out, "--overlap: \"sometimes\" is not one of skip, "
	                      "allow, cancel_previous"),
	    "%s", out);
	free(out);
	out = cli_err(2, "schedule create n2 --definition tick --cron "
	                 "'* * * * *' --catchup most");
	cr_expect(strstr(out, "--catchup: \"most\" is not one of none, one, "
	                      "all"),
	    "%s", out);
	free(out);
	out = cli_err(2, "schedule explode n3");
	cr_expect(strstr(out, "unknown action 'explode'"), "%s", out);
	free(out);
	out = cli_err(2, "schedule pause nightly --cron '* * * * *'");
	cr_expect(strstr(out, "go with create"), "%s", out);
	free(out);
	// Pause: no next fire; resume: one again.
	s = weft_cluster_cli_json(&c, "schedule pause nightly");
	cr_assert(json_is_true(json_object_get(s, "paused")));
	cr_assert(json_is_null(json_object_get(s, "next_fire_ms")));
	json_decref(s);
	s = weft_cluster_cli_json(&c, "schedule resume nightly");
	cr_assert(json_is_false(json_object_get(s, "paused")));
	cr_assert(json_is_integer(json_object_get(s, "next_fire_ms")));
	// Counting starts again at the resume.
	int64_t resumed = json_integer_value(json_object_get(s, "last_fire_ms"));
	cr_assert_gt(resumed, 0);
	json_decref(s);
	// Trigger: a run now, with the schedule's input and params; the
	// cadence (last_fire_ms) unchanged.
	out = first_line(cli(0, "schedule trigger nightly"));
	await_status(out, "succeeded");
	json_t *r = weft_cluster_cli_json(&c, "status %s", out);
	cr_assert_str_eq(json_string_value(json_object_get(
	                     json_object_get(r, "params"), "x")),
	    "p");
	cr_assert_eq(json_integer_value(
	                 json_object_get(json_object_get(r, "input"), "k")),
	    1);
	json_decref(r);
	json_t *f = fires("nightly");
	cr_assert_eq(json_array_size(f), 1);
	json_t *d = json_object_get(json_array_get(f, 0), "data");
	cr_assert_str_eq(json_string_value(json_object_get(d, "run_id")), out);
	cr_assert(json_is_true(json_object_get(d, "trigger")));
	json_decref(f);
	s = weft_cluster_cli_json(&c, "schedule get nightly");
	cr_assert_eq(json_integer_value(json_object_get(s, "last_fire_ms")),
	    resumed);
	cr_assert_str_eq(
	    json_string_value(json_object_get(s, "last_run_id")), out);
	json_decref(s);
	free(out);
	// Delete: gone from the list, and stays gone after a restart.
	free(cli(0, "schedule delete nightly"));
	restart(false, clock_offset());
	list = weft_cluster_cli_json(&c, "schedule list");
	cr_assert_eq(json_array_size(list), 0, "%s",
	    json_dumps(list, JSON_COMPACT));
	json_decref(list);
}

Test(schedule, fires_on_the_test_clock)
{
	json_t *f;

	define(tick_def);
	// Every two hours: the real clock crossing a mark during the test
	// is unlikely (a few seconds in two hours).
	free(cli(0, "schedule create five --definition tick --cron "
	            "'0 */2 * * *' --input '{\"k\":7}' --params "
	            "'{\"x\":\"q\"}'"));
	cr_assert_eq(nfires("five"), 0);
	advance("2h");
	await_fires("five", 1);
	advance("2h");
	await_fires("five", 2);
	f = fires("five");
	cr_assert_eq(json_array_size(f), 2);
	int64_t t0 = json_integer_value(json_object_get(
	    json_object_get(json_array_get(f, 0), "data"), "fire_ms"));
	int64_t t1 = json_integer_value(json_object_get(
	    json_object_get(json_array_get(f, 1), "data"), "fire_ms"));
	cr_assert_eq(t0 % 7200000, 0, "fire at %lld", (long long) t0);
	cr_assert_eq(t1 - t0, 7200000);
	const char *id = json_string_value(json_object_get(
	    json_object_get(json_array_get(f, 1), "data"), "run_id"));
	await_status(id, "succeeded");
	json_t *r = weft_cluster_cli_json(&c, "status %s", id);
	cr_assert_eq(json_integer_value(
	                 json_object_get(json_object_get(r, "input"), "k")),
	    7);
	json_decref(r);
	json_decref(f);
	// The list shows the last fire and the next.
	json_t *l = weft_cluster_cli_json(&c, "schedule list");
	json_t *s = json_array_get(l, 0);
	cr_assert_eq(json_integer_value(json_object_get(s, "last_fire_ms")), t1);
	cr_assert_eq(json_integer_value(json_object_get(s, "next_fire_ms")),
	    t1 + 7200000);
	json_decref(l);
	// Paused, it does not fire.
	free(cli(0, "schedule pause five"));
	advance("4h");
	weft_clock_sleep_ms(1500); // a quiet period: nothing may happen
	cr_assert_eq(nfires("five"), 2);
}

Test(schedule, overlap_modes)
{
	define(hold_def);
	// Hourly, moved an hour at a time: the real clock adds no fire.
	free(cli(0, "schedule create s-skip --definition hold --cron '0 * * * *'"));
	free(cli(0, "schedule create s-allow --definition hold --cron "
	            "'0 * * * *' --overlap allow"));
	free(cli(0, "schedule create s-cancel --definition hold --cron "
	            "'0 * * * *' --overlap cancel_previous"));
	advance("1h");
	await_fires("s-skip", 1);
	await_fires("s-allow", 1);
	await_fires("s-cancel", 1);
	json_t *fc = fires("s-cancel");
	char    first[64];
	snprintf(first, sizeof(first), "%s",
	    json_string_value(json_object_get(
	        json_object_get(json_array_get(fc, 0), "data"), "run_id")));
	json_decref(fc);
	advance("1h");
	await_fires("s-allow", 2);
	await_fires("s-cancel", 2);
	// skip: the previous run is still running: a schedule_skipped.
	int64_t deadline = weft_clock_mono_ms() + weft_h_timeout_ms(20000);
	json_t *sk;
	for (;;) {
		sk = events("schedule_skipped");
		if (json_array_size(sk) > 0 || weft_clock_mono_ms() > deadline) {
			break;
		}
		json_decref(sk);
		weft_clock_sleep_ms(100);
	}
	cr_assert_eq(json_array_size(sk), 1);
	json_t *d = json_object_get(json_array_get(sk, 0), "data");
	cr_assert_str_eq(json_string_value(json_object_get(d, "name")), "s-skip");
	cr_assert(strstr(json_string_value(json_object_get(d, "reason")),
	    "still running"));
	json_decref(sk);
	cr_assert_eq(nfires("s-skip"), 1);
	// cancel_previous: the first run was cancelled for the second.
	await_status(first, "cancelled");
	fc = fires("s-cancel");
	const char *second = json_string_value(json_object_get(
	    json_object_get(json_array_get(fc, 1), "data"), "run_id"));
	cr_assert_str_eq(run_status(second), "running");
	json_decref(fc);
	// allow: both run.
	json_t *fa = fires("s-allow");
	for (size_t i = 0; i < 2; i++) {
		cr_assert_str_eq(run_status(json_string_value(json_object_get(
		                     json_object_get(json_array_get(fa, i), "data"),
		                     "run_id"))),
		    "running");
	}
	json_decref(fa);
}

Test(schedule, catchup_across_a_restart)
{
	define(tick_def);
	free(cli(0, "schedule create c-none --definition tick --cron "
	            "'0 * * * *' --catchup none --overlap allow"));
	free(cli(0, "schedule create c-one --definition tick --cron "
	            "'0 * * * *' --catchup one --overlap allow"));
	free(cli(0, "schedule create c-all --definition tick --cron "
	            "'0 * * * *' --catchup all --overlap allow"));
	// Down for six hours: six hour marks go by.
	restart(false, 6 * 3600000);
	// none: nothing made up, one schedule_skipped saying how many.
	await_fires("c-one", 1);
	await_fires("c-all", 6);
	cr_assert_eq(nfires("c-none"), 0);
	cr_assert_eq(nfires("c-one"), 1);
	size_t  nall = nfires("c-all");
	json_t *sk   = events("schedule_skipped");
	cr_assert_eq(json_array_size(sk), 1);
	json_t *d = json_object_get(json_array_get(sk, 0), "data");
	cr_assert_str_eq(json_string_value(json_object_get(d, "name")), "c-none");
	cr_assert_eq((size_t) json_integer_value(json_object_get(d, "missed")),
	    nall, "none missed as many as all made up");
	json_decref(sk);
	cr_assert(nall == 6 || nall == 7, "all: %zu fires", nall);
	// all: in order, an hour apart; one: the latest of them.
	json_t *fa = fires("c-all"), *fo = fires("c-one");
	for (size_t i = 1; i < nall; i++) {
		int64_t a = json_integer_value(json_object_get(
		    json_object_get(json_array_get(fa, i - 1), "data"), "fire_ms"));
		int64_t b = json_integer_value(json_object_get(
		    json_object_get(json_array_get(fa, i), "data"), "fire_ms"));
		cr_assert_eq(b - a, 3600000, "fire %zu", i);
	}
	cr_assert_eq(json_integer_value(json_object_get(
	                 json_object_get(json_array_get(fo, 0), "data"), "fire_ms")),
	    json_integer_value(json_object_get(
	        json_object_get(json_array_get(fa, nall - 1), "data"), "fire_ms")));
	json_decref(fa);
	json_decref(fo);
	// A second restart makes up nothing more: the fires are stored.
	restart(true, clock_offset());
	free(cli(0, "schedule list"));
	cr_assert_eq(nfires("c-all"), nall);
	cr_assert_eq(nfires("c-one"), 1);
}

Test(schedule, no_double_fire_after_kill_9)
{
	define(tick_def);
	free(cli(0, "schedule create every --definition tick --cron "
	            "'0 * * * *' --overlap allow --catchup all"));
	// To one second past the next hour mark: it fires; then an hour of
	// real time before another mark, time enough for the restart.
	int64_t now = advance("0s");
	char    d[32];
	snprintf(d, sizeof(d), "%lldms",
	    (long long) (3600000 - now % 3600000 + 1000));
	advance(d);
	await_fires("every", 1);
	restart(true, clock_offset());
	// Recovery is done once the coordinator answers; had the fire been
	// lost or kept twice, catchup all would fire it again by now.
	json_t *l = weft_cluster_cli_json(&c, "schedule list");
	cr_assert_eq(json_array_size(l), 1);
	json_decref(l);
	cr_assert_eq(nfires("every"), 1);
	json_t *runs = weft_cluster_cli_json(&c, "runs --definition tick");
	cr_assert_eq(json_array_size(runs), 1);
	json_decref(runs);
}

Test(schedule, delayed_runs_survive_restarts_and_cancel)
{
	char   *a, *b, *far, *out;
	json_t *r, *list;

	define(tick_def);
	int64_t now = advance("0s");
	a   = first_line(cli(0, "run tick --delay 10m --input '{\"k\":1}'"));
	b   = first_line(cli(0, "run tick --delay 10m"));
	far = first_line(cli(0, "run tick --at 2099-01-01T00:00:00+01:00"));
	cr_assert_str_eq(run_status(a), "scheduled");
	r = weft_cluster_cli_json(&c, "status %s", far);
	cr_assert_eq(json_integer_value(json_object_get(r, "start_at_ms")),
	    INT64_C(4070905200000));
	json_decref(r);
	r = weft_cluster_cli_json(&c, "status %s", a);
	int64_t at = json_integer_value(json_object_get(r, "start_at_ms"));
	cr_assert(at >= now + 590000 && at <= now + 660000, "start_at %lld",
	    (long long) at);
	json_decref(r);
	list = weft_cluster_cli_json(&c, "runs --status scheduled");
	cr_assert_eq(json_array_size(list), 3);
	json_decref(list);
	// The table says when.
	out = cli(0, "runs --status scheduled");
	cr_assert(strstr(out, "scheduled 2098-12-31T23:00:00") != NULL, "%s", out);
	free(out);
	// Cancel while scheduled.
	char args[128];
	snprintf(args, sizeof(args), "cancel %s", b);
	free(cli(0, args));
	cr_assert_str_eq(run_status(b), "cancelled");
	// Down past its start: it starts at once after the restart; the
	// cancelled one stays cancelled, the far one scheduled.
	restart(true, clock_offset() + 11 * 60000);
	await_status(a, "succeeded");
	cr_assert_str_eq(run_status(b), "cancelled");
	cr_assert_str_eq(run_status(far), "scheduled");
	// And one that comes due while the coordinator runs.
	char *d = first_line(cli(0, "run tick --delay 1h --input '{\"k\":1}'"));
	restart(true, clock_offset()); // re-armed from the store
	cr_assert_str_eq(run_status(d), "scheduled");
	advance("1h");
	await_status(d, "succeeded");
	cr_assert_eq(weft_cluster_count_events(&c, d, "run_scheduled"), 1);
	free(a);
	free(b);
	free(far);
	free(d);
}

// A delayed run whose time comes while the concurrency limits are full
// waits, still scheduled, saying which limit, and starts when room frees:
// the start timer goes through admission like a new run.
Test(schedule, delayed_start_obeys_the_limits)
{
	char   *holder, *late;
	json_t *r = NULL;
	bool    told = false;

	// The coordinator again, with one running run allowed.
	weft_h_kill(c.coord, SIGTERM);
	c.args[2] = "--max-running-runs";
	c.args[3] = "1";
	c.args[4] = NULL;
	weft_cluster_start_coord(&c);
	weft_cluster_wait_workers(&c, 1);
	define(hold_def);
	define(tick_def);
	holder = first_line(cli(0, "run hold"));
	await_status(holder, "running");
	late = first_line(cli(0, "run tick --delay 10m --input '{\"k\":1}'"));
	cr_assert_str_eq(run_status(late), "scheduled");
	advance("11m");
	// Its time has come; the only place is taken: it waits, and says why.
	int64_t deadline = weft_clock_mono_ms() + weft_h_timeout_ms(20000);
	while (!told && weft_clock_mono_ms() < deadline) {
		json_decref(r);
		r = weft_cluster_cli_json(&c, "status %s", late);
		const char *why = json_string_value(json_object_get(
		    json_object_get(r, "waiting_for"), "reason"));
		told = why != NULL && strcmp(why, "max_running_runs") == 0;
		if (!told) {
			weft_clock_sleep_ms(100);
		}
	}
	cr_assert(told, "no max_running_runs wait on the due run");
	cr_assert_str_eq(json_string_value(json_object_get(r, "status")),
	    "scheduled");
	json_decref(r);
	// Room frees: it starts and ends.
	char args[128];
	snprintf(args, sizeof(args), "signal %s go", holder);
	free(cli(0, args));
	await_status(holder, "succeeded");
	await_status(late, "succeeded");
	free(holder);
	free(late);
}

// curl does one HTTP request; returns the status, *body the answer.
static int
curl(const char *method, const char *path, const char *data, char **body)
{
	return (weft_cluster_http(&c, method, path, data, body, NULL));
}

static void
expect_http(const char *method, const char *path, const char *data,
    int want, const char *part)
{
	char *body;
	int   st = curl(method, path, data, &body);
	cr_expect_eq(st, want, "%s %s %s: %d, want %d: %s", method, path,
	    data ? data : "", st, want, body);
	cr_expect(part == NULL || strstr(body, part) != NULL,
	    "%s %s: \"%s\" lacks \"%s\"", method, path, body, part);
	free(body);
}

Test(schedule, http_api)
{
	define(tick_def);
	expect_http("POST", "/api/v1/schedules",
	    "{\"name\":\"h1\",\"definition\":\"tick\",\"cron\":\"0 9 * * "
	    "MON-FRI\",\"timezone\":\"America/New_York\",\"input\":{\"k\":2},"
	    "\"overlap\":\"allow\"}",
	    201, "\"next_fire_ms\"");
	expect_http("GET", "/api/v1/schedules", NULL, 200, "\"h1\"");
	expect_http("GET", "/api/v1/schedules/h1", NULL, 200,
	    "\"America/New_York\"");
	expect_http("POST", "/api/v1/schedules/h1/pause", "", 200,
	    "\"paused\":true");
	expect_http("POST", "/api/v1/schedules/h1/resume", "", 200,
	    "\"paused\":false");
	expect_http("POST", "/api/v1/schedules/h1/trigger", "", 200, "run_id");
	await_fires("h1", 1);
	// Malformed: each names what and where.
	expect_http("POST", "/api/v1/schedules",
	    "{\"name\":\"h1\",\"definition\":\"tick\",\"cron\":\"* * * * *\"}",
	    409, "already exists");
	expect_http("POST", "/api/v1/schedules",
	    "{\"name\":\"h2\",\"definition\":\"tick\"}", 400,
	    "\\\"cron\\\" is required");
	expect_http("POST", "/api/v1/schedules",
	    "{\"name\":\"h2\",\"definition\":\"tick\",\"cron\":5}", 400,
	    "\\\"cron\\\" must be a string");
	expect_http("POST", "/api/v1/schedules",
	    "{\"name\":\"h2\",\"definition\":\"tick\",\"cron\":\"* * 0 * *\"}",
	    400, "field 3 (day of month): 0 is out of range 1-31");
	expect_http("POST", "/api/v1/schedules",
	    "{\"name\":\"h2\",\"definition\":\"tick\",\"cron\":\"* * * * *\","
	    "\"input\":[1]}",
	    400, "\\\"input\\\" must be a JSON object");
	expect_http("POST", "/api/v1/schedules",
	    "{\"name\":\"h2\",\"definition\":\"gone\",\"cron\":\"* * * * *\"}",
	    400, "EDEF");
	expect_http("POST", "/api/v1/schedules",
	    "{\"name\":\"h2\",\"definition\":\"tick\",\"cron\":\"* * * * *\","
	    "\"overlap\":\"sometimes\"}",
	    400, "bad overlap \\\"sometimes\\\"");
	expect_http("POST", "/api/v1/schedules",
	    "{\"name\":\"h2\",\"definition\":\"tick\",\"cron\":\"* * * * *\","
	    "\"catchup\":\"most\"}",
	    400, "bad catchup \\\"most\\\"");
	expect_http("POST", "/api/v1/schedules", "[]", 400, "JSON object");
	expect_http("GET", "/api/v1/schedules/nothere", NULL, 404,
	    "no schedule \\\"nothere\\\"");
	expect_http("POST", "/api/v1/schedules/h1/explode", "", 404,
	    "pause, resume, trigger");
	expect_http("PUT", "/api/v1/schedules/h1", "{}", 405, NULL);
	expect_http("DELETE", "/api/v1/schedules/h1", NULL, 200, "deleted");
	expect_http("GET", "/api/v1/schedules/h1", NULL, 404, NULL);
	// start_at on POST /api/v1/runs and in a batch.
	expect_http("POST", "/api/v1/runs",
	    "{\"definition\":\"tick\",\"start_at\":\"2099-01-01T00:00:00Z\"}",
	    201, "run_id");
	expect_http("POST", "/api/v1/runs",
	    "{\"definition\":\"tick\",\"start_at\":4070908800000}", 201,
	    "run_id");
	expect_http("GET", "/api/v1/runs?status=scheduled", NULL, 200,
	    "\"start_at_ms\":4070908800000");
	expect_http("POST", "/api/v1/runs",
	    "{\"definition\":\"tick\",\"start_at\":\"tomorrow\"}", 400,
	    "\\\"start_at\\\" must be an RFC 3339 time");
	expect_http("POST", "/api/v1/runs",
	    "{\"definition\":\"tick\",\"start_at\":\"10m\"}", 400,
	    "start_at");
	expect_http("POST", "/api/v1/runs",
	    "{\"definition\":\"tick\",\"start_at\":-5}", 400, "start_at");
	expect_http("POST", "/api/v1/runs/batch",
	    "{\"runs\":[{\"definition\":\"tick\",\"start_at\":"
	    "\"2099-01-01T00:00:00Z\"},{\"definition\":\"tick\",\"start_at\":"
	    "true}]}",
	    200, "start_at");
	json_t *l = weft_cluster_cli_json(&c, "runs --status scheduled");
	cr_assert_eq(json_array_size(l), 3, "two single, one of the batch");
	json_decref(l);
}

Test(schedule, malformed_cli_and_clock)
{
	char *out;

	define(tick_def);
	static const struct {
		const char *args, *want;
	} bad[] = {
		{ "run tick --at tomorrow", "--at wants a time" },
		{ "run tick --at 10m", "for a time from now: --delay 10m" },
		{ "run tick --delay soon", "--delay wants a duration" },
		{ "run tick --delay 0s", "--delay wants a duration" },
		{ "run tick --at 1 --delay 1s", "--at and --delay: give one" },
		{ "clock advance forever", "clock advance" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		out = cli_err(2, bad[i].args);
		cr_expect(strstr(out, bad[i].want) != NULL,
		    "weft %s: \"%s\" lacks \"%s\"", bad[i].args, out,
		    bad[i].want);
		free(out);
	}
	// Without --test-clock the clock is not for moving.
	weft_h_kill(c.coord, SIGTERM);
	c.args[0] = NULL;
	weft_cluster_start_coord(&c);
	out = cli_err(1, "clock advance 1m");
	cr_expect(strstr(out, "not started with --test-clock"), "%s", out);
	free(out);
}

// One fire on the running clock: the offset puts the next minute mark a
// few seconds ahead, and nothing moves the clock after that.
Test(schedule, fires_on_the_running_clock)
{
	int64_t now = weft_clock_wall_ms();
	weft_h_kill(c.coord, SIGTERM);
	// The mark 8 s from now (time enough to start and create).
	snprintf(offset_arg, sizeof(offset_arg), "%lld",
	    (long long) (60000 - (now + 8000) % 60000));
	weft_cluster_start_coord(&c);
	weft_cluster_wait_workers(&c, 1);
	define(tick_def);
	free(cli(0, "schedule create real --definition tick --cron '* * * * *' "
	            "--input '{\"k\":1}'"));
	await_fires("real", 1);
	json_t *f = fires("real");
	const char *id = json_string_value(json_object_get(
	    json_object_get(json_array_get(f, 0), "data"), "run_id"));
	await_status(id, "succeeded");
	json_decref(f);
}
