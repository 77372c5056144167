// sched_e2e_test: scheduling with the real binaries (issue 14 items 1, 2,
// 9): priorities change the dispatch order on one single-slot worker;
// max_concurrent_runs and a concurrency key keep the excess queued, with
// the waiting_for reason and the /metrics gauges, and start it when room
// frees; --limit TYPE=N caps attempts in flight; --max-running-runs holds
// runs queued across a coordinator restart and admits them by priority
// after recovery; the ETA is null without history and appears once
// durations are learned (also after a restart: they are persisted); the
// critical path goes first once known; malformed inputs are refused,
// naming what is wrong.
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
static pid_t        solo; // a single-slot worker, when started

static void
down(void)
{
	if (solo > 0) {
		weft_h_kill(solo, SIGKILL);
		solo = 0;
	}
	weft_cluster_stop(&c);
}

TestSuite(sched, .fini = down, .timeout = 300);

// start_solo starts worker "solo" with one slot.
static void
start_solo(void)
{
	char  log[700];
	char *argv[] = { "weft-worker", "--join", c.cluster, "--name", "solo",
		"--slots", "1", "--exec-allow", c.exec_allow, "--cookie-file",
		c.cookie, NULL };

	snprintf(log, sizeof(log), "%s/solo.log", c.dir);
	solo = weft_h_spawn(argv, log);
}

// run_id starts a run with CLI arguments args and returns its id
// (malloc'd).
static char *
run_id(const char *fmt, const char *a, const char *b)
{
	char *out;

	cr_assert_eq(weft_cluster_cli(&c, &out, fmt, a, b), 0, "%s", out);
	out[strcspn(out, "\n")] = '\0';
	return (out);
}

static json_t *
status(const char *id)
{
	return (weft_cluster_cli_json(&c, "status %s", id));
}

static const char *
str(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return (s != NULL ? s : "(none)");
}

// await_status waits until run id is in state st; returns its status.
static json_t *
await_status(const char *id, const char *st)
{
	int64_t deadline = weft_clock_mono_ms() + weft_h_timeout_ms(30000);

	for (;;) {
		json_t *run = status(id);
		if (strcmp(str(run, "status"), st) == 0) {
			return (run);
		}
		if (weft_clock_mono_ms() > deadline) {
			char *text = json_dumps(run, JSON_INDENT(1));
			weft_cluster_dump_logs(&c);
			cr_assert_fail("run %s never %s:\n%s", id, st, text);
		}
		json_decref(run);
		weft_clock_sleep_ms(100);
	}
}

static int64_t
step_ms(json_t *run, const char *sid, const char *field)
{
	return (json_integer_value(
	    json_object_get(weft_cluster_step(run, sid), field)));
}

static char *
metrics(void)
{
	char *out;

	cr_assert_eq(weft_h_run_fmt(&out, "curl -s 'http://%s/metrics'", c.http),
	    0);
	return (out);
}

// await_metric waits until /metrics holds line.
static void
await_metric(const char *line)
{
	int64_t deadline = weft_clock_mono_ms() + weft_h_timeout_ms(20000);
	char   *m;

	while (strstr((m = metrics()), line) == NULL) {
		if (weft_clock_mono_ms() > deadline) {
			cr_assert_fail("/metrics never said %s:\n%s", line, m);
		}
		free(m);
		weft_clock_sleep_ms(100);
	}
	free(m);
}

Test(sched, priorities_order_dispatch_on_a_single_slot_worker)
{
	weft_cluster_opts o = { .nworkers = 0, .survey_ms = 200 };
	weft_cluster_start_opts(&c, &o);
	const char *def = weft_cluster_write(&c, "p.json",
	    "{\"name\":\"p\",\"priority\":3,\"steps\":[{\"id\":\"s\","
	    "\"type\":\"sleep\",\"with\":{\"ms\":50}}]}");
	// No worker yet: all four wait ready, then one slot takes them in
	// priority order (the definition's 3 for the one without --priority),
	// the two of priority 1 oldest first.
	char *lo1 = run_id("run '%s' --priority 1%s", def, "");
	char *hi  = run_id("run '%s' --priority 10%s", def, "");
	char *dflt = run_id("run '%s'%s", def, "");
	char *lo2 = run_id("run '%s' --priority %s", def, "1");
	char *neg = run_id("run '%s' --priority %s", def, "-4");
	json_t *h = status(hi);
	cr_expect_eq(json_integer_value(json_object_get(h, "priority")), 10);
	json_decref(h);
	start_solo();
	const char *order[] = { hi, dflt, lo1, lo2, neg };
	int64_t     prev    = 0;
	for (size_t k = 0; k < 5; k++) {
		json_t *run = await_status(order[k], "succeeded");
		int64_t at  = step_ms(run, "s", "started_ms");
		cr_expect(at >= prev, "run %zu started at %ld, before %ld", k,
		    (long) at, (long) prev);
		prev = at;
		json_decref(run);
	}
	json_t *runs = weft_cluster_cli_json(&c, "runs");
	size_t  k;
	json_t *r;
	json_array_foreach (runs, k, r) {
		cr_expect(json_is_integer(json_object_get(r, "priority")),
		    "weft runs lists priorities");
	}
	json_decref(runs);
	free(lo1);
	free(hi);
	free(dflt);
	free(lo2);
	free(neg);
}

Test(sched, per_definition_and_key_limits_queue_the_excess)
{
	weft_cluster_start(&c, 1, 200);
	// weft_cluster_write's path is static: each kept in a copy.
	char *one = weft_xstrdup(weft_cluster_write(&c, "one.json",
	    "{\"name\":\"one\",\"max_concurrent_runs\":1,\"steps\":[{\"id\":"
	    "\"s\",\"type\":\"sleep\",\"with\":{\"ms\":60000}}]}"));
	char *cust = weft_xstrdup(weft_cluster_write(&c, "cust.json",
	    "{\"name\":\"cust\",\"params\":{\"customer\":{\"type\":\"string\"}},"
	    "\"concurrency\":{\"key\":\"${params.customer}\",\"limit\":1},"
	    "\"steps\":[{\"id\":\"s\",\"type\":\"sleep\",\"with\":{\"ms\":"
	    "60000}}]}"));
	char *a = run_id("run '%s'%s", one, "");
	json_decref(await_status(a, "running"));
	char   *b  = run_id("run '%s'%s", one, "");
	json_t *qb = await_status(b, "queued");
	json_t *wf = json_object_get(qb, "waiting_for");
	cr_expect_str_eq(str(wf, "reason"), "max_concurrent_runs");
	cr_expect(strstr(str(wf, "message"), "allows 1 running runs") != NULL,
	    "%s", str(wf, "message"));
	json_decref(qb);
	await_metric("weft_limit_waiting{limit=\"max_concurrent_runs\","
	             "definition=\"one\"} 1");
	await_metric("weft_limit_running{limit=\"max_concurrent_runs\","
	             "definition=\"one\"} 1");

	char *x1 = run_id("run '%s' --params '%s'", cust, "{\"customer\":\"acme\"}");
	json_decref(await_status(x1, "running"));
	char *x2 = run_id("run '%s' --params '%s'", cust, "{\"customer\":\"acme\"}");
	char *y1 = run_id("run '%s' --params '%s'", cust, "{\"customer\":\"zeta\"}");
	json_decref(await_status(y1, "running"));
	json_t *q2 = await_status(x2, "queued");
	wf         = json_object_get(q2, "waiting_for");
	cr_expect_str_eq(str(wf, "reason"), "concurrency_key");
	cr_expect_str_eq(str(wf, "key"), "acme");
	json_decref(q2);
	// Also through the API.
	char *out;
	cr_assert_eq(weft_h_run_fmt(&out, "curl -s 'http://%s/api/v1/runs/%s'",
	                 c.http, x2),
	    0);
	json_t *api = json_loads(out, 0, NULL);
	cr_expect_str_eq(str(json_object_get(api, "waiting_for"), "reason"),
	    "concurrency_key", "%s", out);
	json_decref(api);
	free(out);
	await_metric("weft_limit_waiting{limit=\"concurrency_key\","
	             "definition=\"cust\",key=\"acme\"} 1");

	// Room frees: the queued ones start.
	cr_assert_eq(weft_cluster_cli(&c, NULL, "cancel %s", a), 0);
	json_decref(await_status(b, "running"));
	cr_assert_eq(weft_cluster_cli(&c, NULL, "cancel %s", x1), 0);
	json_decref(await_status(x2, "running"));
	await_metric("weft_limit_waiting{limit=\"max_concurrent_runs\","
	             "definition=\"one\"} 0");
	// A queued run can be cancelled, and leaves the queue.
	char *b2 = run_id("run '%s'%s", one, "");
	json_decref(await_status(b2, "queued"));
	cr_assert_eq(weft_cluster_cli(&c, NULL, "cancel %s", b2), 0);
	json_decref(await_status(b2, "cancelled"));
	await_metric("weft_limit_waiting{limit=\"max_concurrent_runs\","
	             "definition=\"one\"} 0");
	const char *all[] = { b, x2, y1 };
	for (size_t k = 0; k < 3; k++) {
		weft_cluster_cli(&c, NULL, "cancel %s", all[k]);
	}
	free(one);
	free(cust);
	free(a);
	free(b);
	free(b2);
	free(x1);
	free(x2);
	free(y1);
}

Test(sched, limit_type_caps_attempts_in_flight)
{
	weft_cluster_opts o = { .nworkers = 1, .survey_ms = 200,
		.args = { "--limit", "sleep=1", NULL } };
	weft_cluster_start_opts(&c, &o);
	const char *def = weft_cluster_write(&c, "par.json",
	    "{\"name\":\"par\",\"steps\":[{\"id\":\"a\",\"type\":\"sleep\","
	    "\"with\":{\"ms\":700}},{\"id\":\"b\",\"type\":\"sleep\",\"with\":"
	    "{\"ms\":700}},{\"id\":\"c\",\"type\":\"sleep\",\"with\":{\"ms\":"
	    "700}}]}");
	char   *id       = run_id("run '%s'%s", def, "");
	int64_t deadline = weft_clock_mono_ms() + weft_h_timeout_ms(20000);
	bool    seen     = false;
	// While one runs, the others say why they wait.
	while (!seen && weft_clock_mono_ms() < deadline) {
		json_t *run = status(id);
		size_t  k;
		json_t *s;
		json_array_foreach (json_object_get(run, "steps"), k, s) {
			json_t *wf = json_object_get(s, "waiting_for");
			if (strcmp(str(wf, "reason"), "type_limit") == 0) {
				seen = true;
				cr_expect(strstr(str(wf, "message"),
				              "--limit sleep=1") != NULL);
			}
		}
		json_decref(run);
		weft_clock_sleep_ms(50);
	}
	cr_expect(seen, "no step said type_limit");
	json_t *run = await_status(id, "succeeded");
	// Never two at once: each starts after the one before ended.
	const char *ids[] = { "a", "b", "c" };
	int64_t     st[3], en[3];
	for (size_t k = 0; k < 3; k++) {
		st[k] = step_ms(run, ids[k], "started_ms");
		en[k] = step_ms(run, ids[k], "ended_ms");
	}
	for (size_t i = 0; i < 3; i++) {
		for (size_t j = 0; j < 3; j++) {
			cr_expect(i == j || st[j] >= en[i] || st[i] >= en[j],
			    "%s [%ld,%ld] overlaps %s [%ld,%ld]", ids[i],
			    (long) st[i], (long) en[i], ids[j], (long) st[j],
			    (long) en[j]);
		}
	}
	json_decref(run);
	await_metric("weft_limit_limit{limit=\"step_type\",type=\"sleep\"} 1");
	free(id);
}

Test(sched, max_running_runs_queues_across_a_restart)
{
	weft_cluster_opts o = { .nworkers = 1, .survey_ms = 200,
		.args = { "--max-running-runs", "1", NULL } };
	weft_cluster_start_opts(&c, &o);
	const char *def = weft_cluster_write(&c, "r.json",
	    "{\"name\":\"r\",\"params\":{\"ms\":{\"type\":\"int\"}},\"steps\":"
	    "[{\"id\":\"s\",\"type\":\"sleep\",\"with\":{\"ms\":"
	    "\"${params.ms}\"}}]}");
	char *a = run_id("run '%s' --params '%s'", def, "{\"ms\":3000}");
	json_decref(await_status(a, "running"));
	char *lo = run_id("run '%s' --params '%s' --priority 1", def,
	    "{\"ms\":100}");
	char *hi = run_id("run '%s' --params '%s' --priority 5", def,
	    "{\"ms\":100}");
	json_t *q = await_status(lo, "queued");
	cr_expect_str_eq(str(json_object_get(q, "waiting_for"), "reason"),
	    "max_running_runs");
	json_decref(q);
	json_decref(await_status(hi, "queued"));
	await_metric("weft_limit_waiting{limit=\"max_running_runs\"} 2");
	// Down and back: the queued runs stay queued, then start one at a
	// time, the higher priority first.
	weft_h_kill(c.coord, SIGKILL);
	weft_cluster_start_coord(&c);
	json_t *ra  = await_status(a, "succeeded");
	json_t *rhi = await_status(hi, "succeeded");
	json_t *rlo = await_status(lo, "succeeded");
	int64_t a_end = step_ms(ra, "s", "ended_ms");
	int64_t hi_st = step_ms(rhi, "s", "started_ms");
	int64_t hi_en = step_ms(rhi, "s", "ended_ms");
	int64_t lo_st = step_ms(rlo, "s", "started_ms");
	cr_expect(hi_st >= a_end, "hi started %ld before a ended %ld",
	    (long) hi_st, (long) a_end);
	cr_expect(lo_st >= hi_en, "lo started %ld before hi ended %ld",
	    (long) lo_st, (long) hi_en);
	json_decref(ra);
	json_decref(rhi);
	json_decref(rlo);
	free(a);
	free(lo);
	free(hi);
}

// await_eta waits until run id (running) has an eta_ms; returns it.
static int64_t
await_eta(const char *id)
{
	int64_t deadline = weft_clock_mono_ms() + weft_h_timeout_ms(20000);

	for (;;) {
		json_t *run = status(id);
		json_t *eta = json_object_get(run, "eta_ms");
		if (json_is_integer(eta)) {
			int64_t v = json_integer_value(eta);
			json_decref(run);
			return (v);
		}
		if (weft_clock_mono_ms() > deadline ||
		    strcmp(str(run, "status"), "running") != 0) {
			char *text = json_dumps(run, JSON_INDENT(1));
			weft_cluster_dump_logs(&c);
			cr_assert_fail("no eta_ms for %s:\n%s", id, text);
		}
		json_decref(run);
		weft_clock_sleep_ms(100);
	}
}

Test(sched, eta_is_null_without_history_then_learned_and_kept)
{
	weft_cluster_start(&c, 1, 200);
	const char *def = weft_cluster_write(&c, "eta.json",
	    "{\"name\":\"eta\",\"steps\":[{\"id\":\"a\",\"type\":\"sleep\","
	    "\"with\":{\"ms\":1500}},{\"id\":\"b\",\"type\":\"sleep\","
	    "\"depends_on\":[\"a\"],\"with\":{\"ms\":1500}}]}");
	char *first = run_id("run '%s'%s", def, "");
	json_t *run = await_status(first, "running");
	// Several survey rounds while it runs: still no history.
	for (int i = 0; i < 5; i++) {
		json_t *r = status(first);
		if (strcmp(str(r, "status"), "running") == 0) {
			cr_expect(json_is_null(json_object_get(r, "eta_ms")),
			    "eta_ms without history");
		}
		json_decref(r);
		weft_clock_sleep_ms(250);
	}
	json_decref(run);
	json_decref(await_status(first, "succeeded"));
	char   *second = run_id("run '%s'%s", def, "");
	int64_t now    = weft_clock_wall_ms();
	int64_t eta    = await_eta(second);
	// Both steps are left (~3 s) or one (~1.5 s): a generous bound.
	cr_expect(eta > now && eta < now + 60000, "eta %ld, now %ld",
	    (long) eta, (long) now);
	char *out;
	cr_assert_eq(weft_cluster_cli(&c, &out, "status %s", second), 0);
	cr_expect(strstr(out, "eta") != NULL, "weft status shows it:\n%s", out);
	free(out);
	json_decref(await_status(second, "succeeded"));
	// Persisted: after a restart a new run has an ETA at once.
	weft_h_kill(c.coord, SIGKILL);
	weft_cluster_start_coord(&c);
	char *third = run_id("run '%s'%s", def, "");
	await_eta(third);
	json_decref(await_status(third, "succeeded"));
	json_t *t = status(third);
	cr_expect(json_is_null(json_object_get(t, "eta_ms")),
	    "an ended run has no ETA");
	json_decref(t);
	free(first);
	free(second);
	free(third);
}

Test(sched, critical_path_first_once_learned)
{
	weft_cluster_opts o = { .nworkers = 0, .survey_ms = 200 };
	weft_cluster_start_opts(&c, &o);
	start_solo();
	weft_cluster_wait_workers(&c, 1);
	// Listed first, the short steps go first while nothing is known;
	// once learned, the long chain's head does.
	const char *def = weft_cluster_write(&c, "cp.json",
	    "{\"name\":\"cp\",\"steps\":["
	    "{\"id\":\"s1\",\"type\":\"sleep\",\"with\":{\"ms\":20}},"
	    "{\"id\":\"s2\",\"type\":\"sleep\",\"with\":{\"ms\":20}},"
	    "{\"id\":\"a\",\"type\":\"sleep\",\"with\":{\"ms\":300}},"
	    "{\"id\":\"b\",\"type\":\"sleep\",\"depends_on\":[\"a\"],"
	    "\"with\":{\"ms\":300}}]}");
	char   *r1  = run_id("run '%s'%s", def, "");
	json_t *run = await_status(r1, "succeeded");
	cr_expect(step_ms(run, "s1", "started_ms") <=
	        step_ms(run, "a", "started_ms"),
	    "without history: FIFO");
	json_decref(run);
	char *r2 = run_id("run '%s'%s", def, "");
	run      = await_status(r2, "succeeded");
	cr_expect(step_ms(run, "a", "started_ms") <=
	        step_ms(run, "s1", "started_ms"),
	    "with history: the critical path first (a %ld, s1 %ld)",
	    (long) step_ms(run, "a", "started_ms"),
	    (long) step_ms(run, "s1", "started_ms"));
	json_decref(run);
	free(r1);
	free(r2);
}

Test(sched, malformed_inputs_are_refused_naming_what)
{
	char *out = NULL;

	weft_cluster_start(&c, 0, 200);
	const char *def = weft_cluster_write(&c, "m.json",
	    "{\"name\":\"m\",\"steps\":[{\"id\":\"s\",\"type\":\"noop\"}]}");
	cr_expect_eq(weft_cluster_cli(&c, &out, "run '%s' --priority abc 2>&1", def),
	    2);
	cr_expect(strstr(out, "--priority wants an integer") != NULL, "%s", out);
	free(out);
	cr_expect_eq(weft_cluster_cli(&c, &out,
	                 "run '%s' --priority 99999999999 2>&1", def),
	    2);
	free(out);
	cr_assert_eq(weft_cluster_cli(&c, NULL, "define '%s'", def), 0);
	// The API: the field named.
	cr_assert_eq(weft_h_run_fmt(&out,
	                 "curl -s -w ' %%{http_code}' -X POST -H 'Content-Type: "
	                 "application/json' -d '{\"definition\":\"m\","
	                 "\"priority\":\"x\"}' 'http://%s/api/v1/runs'",
	                 c.http),
	    0);
	cr_expect(strstr(out, "\\\"priority\\\" must be an integer") != NULL,
	    "%s", out);
	cr_expect(strstr(out, " 400") != NULL, "%s", out);
	free(out);
	cr_assert_eq(weft_h_run_fmt(&out,
	                 "curl -s -X POST -H 'Content-Type: application/json' "
	                 "-d '{\"runs\":[{\"definition\":\"m\",\"priority\":5},"
	                 "{\"definition\":\"m\",\"priority\":1.5}]}' "
	                 "'http://%s/api/v1/runs/batch'",
	                 c.http),
	    0);
	json_t *ans = json_loads(out, 0, NULL);
	json_t *res = json_object_get(ans, "results");
	cr_expect(json_is_string(json_object_get(json_array_get(res, 0),
	              "run_id")),
	    "%s", out);
	cr_expect(strstr(str(json_array_get(res, 1), "error"), "priority") !=
	        NULL,
	    "%s", out);
	json_decref(ans);
	free(out);
	// Definitions: bad concurrency objects, named down to the key.
	const char *bad = weft_cluster_write(&c, "bad.json",
	    "{\"name\":\"bad\",\"concurrency\":{\"key\":\"${params.c}\"},"
	    "\"steps\":[{\"id\":\"s\",\"type\":\"noop\"}]}");
	cr_expect_neq(weft_cluster_cli(&c, &out, "define '%s' 2>&1", bad), 0);
	cr_expect(strstr(out, "missing required field \"concurrency.limit\"") !=
	        NULL,
	    "%s", out);
	free(out);
	bad = weft_cluster_write(&c, "bad2.json",
	    "{\"name\":\"bad2\",\"priority\":\"x\",\"steps\":[{\"id\":\"s\","
	    "\"type\":\"noop\"}]}");
	cr_expect_neq(weft_cluster_cli(&c, &out, "define '%s' 2>&1", bad), 0);
	cr_expect(strstr(out, "field \"priority\": expected int") != NULL, "%s",
	    out);
	free(out);
	// A key that does not render refuses the run, saying why.
	const char *k = weft_cluster_write(&c, "k.json",
	    "{\"name\":\"k\",\"concurrency\":{\"key\":\"${nosuch.x}\","
	    "\"limit\":1},\"steps\":[{\"id\":\"s\",\"type\":\"noop\"}]}");
	cr_expect_neq(weft_cluster_cli(&c, &out, "run '%s' 2>&1", k), 0);
	cr_expect(strstr(out, "concurrency.key does not render") != NULL, "%s",
	    out);
	free(out);
	// The coordinator's flags.
	cr_expect_eq(weft_cluster_coordinator_refuses("--limit foo", &out), 2);
	cr_expect(out != NULL && strstr(out, "--limit 'foo': want TYPE=N"),
	    "%s", out);
	free(out);
	cr_expect_eq(weft_cluster_coordinator_refuses("--limit sleep=0", &out),
	    2);
	free(out);
	cr_expect_eq(weft_cluster_coordinator_refuses("--order bogus", &out), 2);
	cr_expect(out != NULL &&
	        strstr(out, "--order 'bogus': want fifo or critical-path"),
	    "%s", out);
	free(out);
	cr_expect_eq(weft_cluster_coordinator_refuses("--max-running-runs x",
	                 &out),
	    2);
	free(out);
}
