// drain_test: nodes that stop on purpose, end to end. A worker sent
// SIGTERM hands back what it has not started (step_released), lets its
// running attempts finish and exits 0; one whose drain timeout cuts a step
// short reports it lost, retried elsewhere; a second signal exits at once;
// a coordinator sent SIGTERM exits 0 and a restart carries on. The spool:
// a worker killed before its result was acked sends it again when it comes
// back, and the step's program has run once; two workers cannot share a
// spool, and a damaged one is refused by name. Bad flags are refused.
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include "clock.h"
#include "cluster.h"
#include "harness.h"

static weft_cluster c;

static void
down(void)
{
	weft_cluster_stop(&c);
}

TestSuite(drain, .fini = down, .timeout = 180);

// start_run starts def (JSON text) and returns its id (static storage).
static const char *
start_run(const char *name, const char *def)
{
	static char id[64];
	char       *out;

	cr_assert_eq(weft_cluster_cli(&c, &out, "run '%s'",
	                 weft_cluster_write(&c, name, def)),
	    0, "%s", out);
	out[strcspn(out, "\n")] = '\0';
	snprintf(id, sizeof(id), "%s", out);
	free(out);
	return (id);
}

// wait_events waits until run id has at least n events of type.
static void
wait_events(const char *id, const char *type, size_t n, int64_t ms)
{
	int64_t deadline = weft_clock_mono_ms() + weft_h_timeout_ms(ms);

	while (weft_cluster_count_events(&c, id, type) < n) {
		if (weft_clock_mono_ms() > deadline) {
			weft_cluster_dump_logs(&c);
			cr_assert_fail("run %s: fewer than %zu %s events", id, n,
			    type);
		}
		weft_clock_sleep_ms(50);
	}
}

// wait_exit waits up to ms (scaled) for pid to end and returns its wait
// status; fails the test if it does not.
static int
wait_exit(pid_t pid, int64_t ms, const char *what)
{
	int64_t deadline = weft_clock_mono_ms() + weft_h_timeout_ms(ms);
	int     st;

	while (waitpid(pid, &st, WNOHANG) == 0) {
		if (weft_clock_mono_ms() > deadline) {
			weft_cluster_dump_logs(&c);
			cr_assert_fail("%s still running after %lld ms", what,
			    (long long) ms);
		}
		weft_clock_sleep_ms(20);
	}
	return (st);
}

// file_has tells whether the file at path contains text.
static bool
file_has(const char *path, const char *text)
{
	char *out = NULL;
	bool  has;

	weft_h_run_fmt(&out, "cat '%s' 2>/dev/null", path);
	has = out != NULL && strstr(out, text) != NULL;
	free(out);
	return (has);
}

// spawn_worker_log starts a worker of c named name with more arguments
// (NULL-terminated, borrowed), its log in the cluster dir as logname.log.
static pid_t
spawn_worker_log(const char *name, const char *logname,
    const char *const *more)
{
	char  log[700];
	char *argv[24] = { "weft-worker", "--join", c.cluster, "--name",
		(char *) name, "--slots", "4", "--exec-allow", c.exec_allow,
		"--cookie-file", c.cookie, NULL };
	int   n        = 11;

	for (; more != NULL && *more != NULL && n < 22; more++) {
		argv[n++] = (char *) *more;
	}
	argv[n] = NULL;
	snprintf(log, sizeof(log), "%s/%s.log", c.dir, logname);
	return (weft_h_spawn(argv, log));
}

static pid_t
spawn_worker(const char *name, const char *const *more)
{
	return (spawn_worker_log(name, name, more));
}

// sleeps_def writes into def (len bytes) a definition `name` of n
// independent sleep steps of ms each.
static void
sleeps_def(char *def, size_t len, const char *name, int n, int ms)
{
	int k = snprintf(def, len, "{\"name\":\"%s\",\"steps\":[", name);

	for (int i = 0; i < n; i++) {
		k += snprintf(def + k, len - (size_t) k,
		    "%s{\"id\":\"s%d\",\"type\":\"sleep\",\"with\":{\"ms\":%d}}",
		    i ? "," : "", i, ms);
	}
	snprintf(def + k, len - (size_t) k, "]}");
}

// train_sleep runs many 0 ms sleep steps, so the coordinator knows sleep
// steps are fast and keeps a deep queue on each worker (sched_room).
static void
train_sleep(void)
{
	char def[8192];

	sleeps_def(def, sizeof(def), "fast", 40, 0);
	const char *id  = start_run("fast.json", def);
	json_t     *end = weft_cluster_run_end(&c, id, 30000);
	cr_assert_str_eq(json_string_value(json_object_get(end, "status")),
	    "succeeded");
	json_decref(end);
}

// event_ids returns the id of the first event of type in run id (0: none).
static long
first_event_id(const char *id, const char *type)
{
	char  *out;
	long   first = 0;
	json_t *ev;

	if (weft_cluster_cli(&c, &out, "events --run %s --type %s --limit 1",
	        id, type) != 0) {
		free(out);
		return (0);
	}
	if ((ev = json_loads(out, JSON_DISABLE_EOF_CHECK, NULL)) != NULL) {
		first = (long) json_integer_value(json_object_get(ev, "id"));
		json_decref(ev);
	}
	free(out);
	return (first);
}

// SIGTERM to a worker holding queued and running attempts: the queued ones
// come back at once (step_released, before any running one ends), the
// running ones finish there and are acked, it exits 0 well within the
// drain timeout, and no step fails though none has a retry policy.
Test(drain, sigterm_releases_queued_and_finishes_running)
{
	weft_cluster_start(&c, 1, 200);
	train_sleep();
	char def[8192];
	sleeps_def(def, sizeof(def), "slow", 12, 2500);
	const char *rid = start_run("slow.json", def);
	char        id[64];
	snprintf(id, sizeof(id), "%s", rid);
	wait_events(id, "step_started", 12, 15000); // 4 run, 8 queued
	int64_t t0 = weft_clock_mono_ms();
	kill(c.workers[0], SIGTERM);
	int st = wait_exit(c.workers[0], 20000, "the drained worker");
	int64_t took = weft_clock_mono_ms() - t0;
	c.workers[0] = 0;
	cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "exit status %d", st);
	cr_expect_lt(took, weft_h_timeout_ms(15000),
	    "took %lld ms with a 30 s drain timeout and 2.5 s steps",
	    (long long) took);
	size_t released = weft_cluster_count_events(&c, id, "step_released");
	size_t done     = weft_cluster_count_events(&c, id, "step_succeeded");
	cr_expect_eq(released, 8, "queued attempts handed back: %zu", released);
	cr_expect_eq(done, 4, "running attempts finished and acked: %zu", done);
	long rel = first_event_id(id, "step_released");
	long suc = first_event_id(id, "step_succeeded");
	cr_expect(rel > 0 && suc > 0 && rel < suc,
	    "released (event %ld) only after a running step ended (event %ld)",
	    rel, suc);
	cr_expect_eq(weft_cluster_count_events(&c, NULL, "worker_left"), 1);
	cr_expect_eq(weft_cluster_count_events(&c, NULL, "worker_lost"), 0);
	// Another worker takes what was handed back.
	weft_cluster_start_worker(&c, 1);
	json_t *end = weft_cluster_run_end(&c, id, 60000);
	cr_expect_str_eq(json_string_value(json_object_get(end, "status")),
	    "succeeded");
	json_decref(end);
	cr_expect_eq(weft_cluster_count_events(&c, id, "step_failed"), 0);
	cr_expect_eq(weft_cluster_count_events(&c, id, "step_lost"), 0);
	cr_expect_eq(weft_cluster_count_events(&c, id, "step_retry_scheduled"),
	    0, "a release is not a retry");
}

// --drain-timeout 1s and a step that needs far longer: aborted at the
// deadline, reported lost (not failed, no retry policy needed), run again
// on another worker; the worker exits 0 soon after its deadline.
Test(drain, drain_timeout_reports_cut_step_lost)
{
	const char *more[] = { "--drain-timeout", "1s", NULL };

	weft_cluster_start(&c, 0, 200);
	pid_t w = spawn_worker("wd", more);
	weft_cluster_wait_workers(&c, 1);
	const char *rid = start_run("long.json",
	    "{\"name\":\"long\",\"steps\":[{\"id\":\"s\",\"type\":\"sleep\","
	    "\"with\":{\"ms\":6000}}]}");
	char id[64];
	snprintf(id, sizeof(id), "%s", rid);
	wait_events(id, "step_started", 1, 15000);
	int64_t t0 = weft_clock_mono_ms();
	kill(w, SIGTERM);
	int st = wait_exit(w, 10000, "the worker with --drain-timeout 1s");
	int64_t took = weft_clock_mono_ms() - t0;
	cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "exit status %d", st);
	cr_expect_lt(took, weft_h_timeout_ms(5000), "took %lld ms",
	    (long long) took);
	cr_expect_eq(weft_cluster_count_events(&c, id, "step_lost"), 1);
	cr_expect_eq(weft_cluster_count_events(&c, id, "step_failed"), 0);
	cr_expect_eq(weft_cluster_count_events(&c, NULL, "worker_left"), 1);
	weft_cluster_start_worker(&c, 0);
	json_t *end = weft_cluster_run_end(&c, id, 60000);
	cr_expect_str_eq(json_string_value(json_object_get(end, "status")),
	    "succeeded");
	json_decref(end);
}

// A second SIGTERM during a drain exits at once (128 + 15); the attempt it
// held is found lost and runs elsewhere.
Test(drain, second_signal_exits_at_once)
{
	char log[700];

	weft_cluster_start_lost(&c, 0, 200, 5);
	pid_t w = spawn_worker("w2x", NULL);
	weft_cluster_wait_workers(&c, 1);
	const char *rid = start_run("long2.json",
	    "{\"name\":\"long2\",\"steps\":[{\"id\":\"s\",\"type\":\"sleep\","
	    "\"with\":{\"ms\":8000}}]}");
	char id[64];
	snprintf(id, sizeof(id), "%s", rid);
	wait_events(id, "step_started", 1, 15000);
	kill(w, SIGTERM);
	snprintf(log, sizeof(log), "%s/w2x.log", c.dir);
	int64_t deadline = weft_clock_mono_ms() + weft_h_timeout_ms(10000);
	while (!file_has(log, "WORKER-DRAIN ")) {
		cr_assert(weft_clock_mono_ms() < deadline, "no drain began");
		weft_clock_sleep_ms(20);
	}
	int64_t t0 = weft_clock_mono_ms();
	kill(w, SIGTERM);
	int st = wait_exit(w, 5000, "the worker after a second SIGTERM");
	cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 128 + SIGTERM,
	    "exit status %d", st);
	cr_expect_lt(weft_clock_mono_ms() - t0, weft_h_timeout_ms(2000));
	weft_cluster_start_worker(&c, 0);
	json_t *end = weft_cluster_run_end(&c, id, 60000);
	cr_expect_str_eq(json_string_value(json_object_get(end, "status")),
	    "succeeded");
	json_decref(end);
	cr_expect_eq(weft_cluster_count_events(&c, id, "step_failed"), 0);
}

// The coordinator on SIGTERM exits 0; started again, it carries on with
// the run it had.
Test(drain, coordinator_sigterm_exits_0_and_restart_continues)
{
	weft_cluster_start(&c, 2, 200);
	const char *rid = start_run("chain.json",
	    "{\"name\":\"chain\",\"steps\":["
	    "{\"id\":\"a\",\"type\":\"sleep\",\"with\":{\"ms\":1500}},"
	    "{\"id\":\"b\",\"type\":\"sleep\",\"depends_on\":[\"a\"],"
	    "\"with\":{\"ms\":300}}]}");
	char id[64];
	snprintf(id, sizeof(id), "%s", rid);
	wait_events(id, "step_started", 1, 15000);
	kill(c.coord, SIGTERM);
	int st = wait_exit(c.coord, 15000, "the coordinator after SIGTERM");
	c.coord = 0;
	cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "exit status %d", st);
	weft_cluster_start_coord(&c);
	json_t *end = weft_cluster_run_end(&c, id, 60000);
	cr_expect_str_eq(json_string_value(json_object_get(end, "status")),
	    "succeeded");
	json_decref(end);
	cr_expect_eq(weft_cluster_count_events(&c, id, "step_failed"), 0);
}

// spool_results counts the results in a worker's spool file.
static int
spool_results(const char *path)
{
	sqlite3      *db;
	sqlite3_stmt *st;
	int           n = -1;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) ==
	        SQLITE_OK &&
	    sqlite3_prepare_v2(db, "SELECT count(*) FROM results", -1, &st,
	        NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW) {
			n = sqlite3_column_int(st, 0);
		}
		sqlite3_finalize(st);
	}
	sqlite3_close(db);
	return (n);
}

// A worker finishes a step while the coordinator is down, and is killed
// (-9) before any ack could reach it. Both come back: the result is sent
// again from the spool and applied, and the step's program ran once.
Test(drain, spooled_result_survives_kill_and_step_runs_once)
{
	char script[3000], def[2000], marker[700], started[800], spool[800];
	char *text;
	int   st;

	weft_cluster_start(&c, 1, 200);
	snprintf(marker, sizeof(marker), "%s/side-effect", c.dir);
	snprintf(started, sizeof(started), "%s.started", marker);
	snprintf(script, sizeof(script),
	    "#!/bin/sh\n"
	    "echo \"$WEFT_IDEMPOTENCY_KEY $WEFT_ATTEMPT\" >> '%s'\n"
	    "sleep 1\n"
	    "echo \"$WEFT_IDEMPOTENCY_KEY $WEFT_ATTEMPT\" >> '%s'\n"
	    "echo '{\"done\":true}'\n",
	    started, marker);
	const char *path = weft_cluster_write(&c, "bin/once.sh", script);
	cr_assert_eq(chmod(path, 0755), 0);
	snprintf(def, sizeof(def),
	    "{\"name\":\"once\",\"steps\":[{\"id\":\"s\",\"type\":\"exec\","
	    "\"with\":{\"cmd\":[\"%s\"]}}]}",
	    path);
	const char *rid = start_run("once.json", def);
	char        id[64];
	snprintf(id, sizeof(id), "%s", rid);
	int64_t deadline = weft_clock_mono_ms() + weft_h_timeout_ms(15000);
	while (access(started, F_OK) != 0) {
		cr_assert(weft_clock_mono_ms() < deadline, "the step never ran");
		weft_clock_sleep_ms(20);
	}
	// No coordinator to ack: the result can only wait in the spool.
	weft_h_kill(c.coord, SIGKILL);
	c.coord = 0;
	snprintf(spool, sizeof(spool), "%s/worker/w0/spool.db",
	    getenv("WEFT_HOME"));
	deadline = weft_clock_mono_ms() + weft_h_timeout_ms(15000);
	while (spool_results(spool) != 1) {
		cr_assert(weft_clock_mono_ms() < deadline,
		    "no result in the spool %s", spool);
		weft_clock_sleep_ms(20);
	}
	weft_h_kill(c.workers[0], SIGKILL);
	weft_cluster_start_coord(&c);
	weft_cluster_start_worker(&c, 0);
	json_t *end = weft_cluster_run_end(&c, id, 60000);
	cr_expect_str_eq(json_string_value(json_object_get(end, "status")),
	    "succeeded");
	json_decref(end);
	cr_assert_eq(weft_h_run_fmt(&text, "cat '%s'", marker), 0);
	int lines = 0;
	for (char *p = text; (p = strchr(p, '\n')) != NULL; p++) {
		lines++;
	}
	cr_expect_eq(lines, 1, "the program ran %d times:\n%s", lines, text);
	free(text);
	cr_expect_eq(weft_cluster_count_events(&c, id, "step_lost"), 0);
	char log[700];
	snprintf(log, sizeof(log), "%s/w0.log", c.dir);
	cr_expect(file_has(log, "SPOOL-RESTORED"), "the restart did not say "
	                                          "it restored the spool");
	// Acked, it is forgotten: a clean exit leaves no spool behind.
	kill(c.workers[0], SIGTERM);
	st = wait_exit(c.workers[0], 20000, "w0 after SIGTERM");
	c.workers[0] = 0;
	cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "exit status %d", st);
	cr_expect_neq(access(spool, F_OK), 0, "%s is left after a clean exit",
	    spool);
}

// A second worker under a name whose spool is in use exits 3 saying so;
// a file that is not a spool (damaged, or another program's database)
// stops a worker, naming it, and is left as it was.
Test(drain, spool_is_locked_and_checked)
{
	char        log[700], bad[700], badfile[800];
	const char *none[] = { NULL };

	weft_cluster_start(&c, 1, 200);
	pid_t twin = spawn_worker_log("w0", "w0-twin", none);
	int   st   = wait_exit(twin, 10000, "a second worker on w0's spool");
	cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 3, "exit status %d", st);
	snprintf(log, sizeof(log), "%s/w0-twin.log", c.dir);
	cr_expect(file_has(log, "is in use by another worker"),
	    "the twin did not say its spool is taken");
	cr_expect(weft_h_alive(c.workers[0]), "the holder died");

	snprintf(bad, sizeof(bad), "%s/badspool", c.dir);
	mkdir(bad, 0700);
	snprintf(badfile, sizeof(badfile), "%s/spool.db", bad);
	weft_cluster_write(&c, "badspool/spool.db",
	    "this is not a database, but it is long enough to look like one "
	    "to a careless reader of the first page of a file............");
	const char *more[] = { "--spool", bad, NULL };
	pid_t       w      = spawn_worker("wbad", more);
	st = wait_exit(w, 10000, "a worker on a damaged spool");
	cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 1, "exit status %d", st);
	snprintf(log, sizeof(log), "%s/wbad.log", c.dir);
	cr_expect(file_has(log, badfile), "the error does not name %s", badfile);
	cr_expect(file_has(log, "is not a weft worker spool or is damaged"));

	// Someone's SQLite database under the spool's name: refused and
	// left as it was, not taken over (and deleted at the exit).
	snprintf(bad, sizeof(bad), "%s/foreignspool", c.dir);
	mkdir(bad, 0700);
	snprintf(badfile, sizeof(badfile), "%s/spool.db", bad);
	sqlite3 *db;
	cr_assert_eq(sqlite3_open(badfile, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(db, "CREATE TABLE important(x); INSERT INTO "
	                              "important VALUES (1);",
	                 NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(db);
	const char *foreign[] = { "--spool", bad, NULL };
	w  = spawn_worker("wforeign", foreign);
	st = wait_exit(w, 10000, "a worker on someone's database");
	cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 1, "exit status %d", st);
	snprintf(log, sizeof(log), "%s/wforeign.log", c.dir);
	cr_expect(file_has(log, badfile), "the error does not name %s", badfile);
	cr_expect(file_has(log, "another database"));
	cr_expect_eq(access(badfile, F_OK), 0, "%s is gone", badfile);
	cr_expect_eq(spool_results(badfile), -1, "%s was made a spool",
	    badfile);
}

// Bad values of the new flags are refused at once, naming flag and value.
Test(drain, bad_flags_are_refused)
{
	static const struct {
		const char *args;
		const char *says;
	} rows[] = {
		{ "--drain-timeout abc", "bad --drain-timeout: \"abc\": not a "
		                         "duration" },
		{ "--drain-timeout 5x", "unknown unit \"x\"" },
		{ "--drain-timeout -1s", "cannot be negative" },
		{ "--drain-timeout 2d", "at most 1d" },
		{ "--spool ''", "bad --spool" },
		{ "--drain-timeout", "option needs a value" },
		{ "--reply-wait abc", "bad --reply-wait (0..1000): abc" },
		{ "--reply-wait -1", "bad --reply-wait (0..1000): -1" },
		{ "--reply-wait 1001", "bad --reply-wait (0..1000): 1001" },
		{ "--reply-wait", "option needs a value" },
	};
	char *out;

	for (size_t k = 0; k < sizeof(rows) / sizeof(rows[0]); k++) {
		int rc = weft_h_run_fmt(&out, "'%s' %s 2>&1",
		    weft_h_bin("weft-worker"), rows[k].args);
		cr_expect_eq(rc, 2, "%s: exit %d", rows[k].args, rc);
		cr_expect(out != NULL && strstr(out, rows[k].says) != NULL,
		    "%s: output does not say \"%s\": %s", rows[k].args,
		    rows[k].says, out ? out : "");
		free(out);
	}
}
