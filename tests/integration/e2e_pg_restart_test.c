// e2e_pg_restart_test: the real binaries on PostgreSQL while the database
// goes away mid-run: restarted (every connection cut), or down for a while
// as results keep coming. The run must still succeed with every step
// succeeded exactly once and the event log whole: no gap, no double.
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>
#include <nng/nng.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "clock.h"
#include "cluster.h"
#include "harness.h"
#include "sub.h"
#include "pg.h"
#include "wire.h"

static weft_pg      pg;
static weft_cluster c;

static void
up(void)
{
	cr_assert_eq(weft_pg_start(&pg), 0, "PostgreSQL did not start");
	setenv("WEFT_TEST_DB", weft_pg_url(&pg), 1);
	weft_cluster_start(&c, 2, 200);
}

static void
down(void)
{
	weft_cluster_stop(&c);
	weft_pg_stop(&pg);
}

TestSuite(e2e_pg, .init = up, .fini = down, .timeout = 180);

// The run: six 1.5 s sleeps side by side, four shorter ones after them,
// and a join.
static const char *
write_def(void)
{
	return (weft_cluster_write(&c, "sleepy.json",
	    "{\"name\":\"sleepy\",\"steps\":["
	    "{\"id\":\"a0\",\"type\":\"sleep\",\"with\":{\"ms\":1500}},"
	    "{\"id\":\"a1\",\"type\":\"sleep\",\"with\":{\"ms\":1500}},"
	    "{\"id\":\"a2\",\"type\":\"sleep\",\"with\":{\"ms\":1500}},"
	    "{\"id\":\"a3\",\"type\":\"sleep\",\"with\":{\"ms\":1500}},"
	    "{\"id\":\"a4\",\"type\":\"sleep\",\"with\":{\"ms\":1500}},"
	    "{\"id\":\"a5\",\"type\":\"sleep\",\"with\":{\"ms\":1500}},"
	    "{\"id\":\"b0\",\"type\":\"sleep\",\"with\":{\"ms\":300},"
	    "\"depends_on\":[\"a0\",\"a1\",\"a2\",\"a3\",\"a4\",\"a5\"]},"
	    "{\"id\":\"b1\",\"type\":\"sleep\",\"with\":{\"ms\":300},"
	    "\"depends_on\":[\"a0\",\"a1\",\"a2\",\"a3\",\"a4\",\"a5\"]},"
	    "{\"id\":\"b2\",\"type\":\"sleep\",\"with\":{\"ms\":300},"
	    "\"depends_on\":[\"a0\",\"a1\",\"a2\",\"a3\",\"a4\",\"a5\"]},"
	    "{\"id\":\"b3\",\"type\":\"sleep\",\"with\":{\"ms\":300},"
	    "\"depends_on\":[\"a0\",\"a1\",\"a2\",\"a3\",\"a4\",\"a5\"]},"
	    "{\"id\":\"join\",\"type\":\"echo\","
	    "\"depends_on\":[\"b0\",\"b1\",\"b2\",\"b3\"]}]}"));
}

#define NSTEPS 11

// db_text runs one query straight on the database (not through weft) and
// returns the first column of its first row (static storage; "" when no
// row).
static const char *
db_text(const char *sql, const char *arg)
{
	static char v[256];

	cr_assert_eq(weft_pg_value(weft_pg_url(&pg), sql, arg, v, sizeof(v)), 0,
	    "%s", v);
	return (v);
}

// db_u64 is db_text read as a number.
static uint64_t
db_u64(const char *sql, const char *arg)
{
	return (strtoull(db_text(sql, arg), NULL, 10));
}


// start_run starts a run of def (a file) and waits until its six first
// steps run.
static void
start_run(char *id, size_t len, const char *def)
{
	char *out;

	cr_assert_eq(weft_cluster_cli(&c, &out, "run '%s'", def), 0);
	out[strcspn(out, "\n")] = '\0';
	snprintf(id, len, "%s", out);
	free(out);
	int64_t deadline = weft_clock_mono_ms() + weft_h_timeout_ms(15000);
	while (weft_cluster_count_events(&c, id, "step_started") < 6) {
		cr_assert_lt(weft_clock_mono_ms(), deadline, "steps did not start");
		weft_clock_sleep_ms(20);
	}
}

// wait_end polls the run's status until it is no longer running.
static json_t *
wait_end(const char *id)
{
	int64_t deadline = weft_clock_mono_ms() + weft_h_timeout_ms(60000);
	json_t *run;

	for (;;) {
		char *out = NULL;
		run       = NULL;
		// Right after the database returns, a query may still fail.
		if (weft_cluster_cli(&c, &out, "status %s --json", id) == 0) {
			run = json_loads(out, 0, NULL);
		}
		free(out);
		const char *st = json_string_value(json_object_get(run, "status"));
		if (st != NULL && strcmp(st, "running") != 0 &&
		    strcmp(st, "queued") != 0) {
			return (run);
		}
		json_decref(run);
		if (weft_clock_mono_ms() > deadline) {
			weft_cluster_dump_logs(&c);
			cr_assert_fail("run %s did not end", id);
		}
		weft_clock_sleep_ms(100);
	}
}

// check_log asserts the run succeeded and the log is whole: every step
// succeeded once, per-run seqs 1..n and global ids without a gap.
static void
check_log(const char *id, json_t *run)
{
	char *out;

	cr_expect_str_eq(json_string_value(json_object_get(run, "status")),
	    "succeeded");
	cr_expect_eq(json_integer_value(json_object_get(run, "steps_done")),
	    NSTEPS);
	cr_assert_eq(weft_cluster_cli(&c, &out,
	                 "events --run %s --type step_succeeded --limit 1000", id),
	    0);
	json_t *seen = json_object();
	size_t  n    = 0;
	for (char *line = strtok(out, "\n"); line != NULL;
	     line       = strtok(NULL, "\n"), n++) {
		json_t     *ev   = json_loads(line, 0, NULL);
		const char *step = json_string_value(json_object_get(ev, "step"));
		cr_assert_not_null(step, "%s", line);
		cr_expect_null(json_object_get(seen, step),
		    "step %s succeeded twice", step);
		json_object_set_new(seen, step, json_true());
		json_decref(ev);
	}
	free(out);
	cr_expect_eq(n, NSTEPS, "every step succeeded exactly once");
	cr_expect_eq(json_object_size(seen), NSTEPS);
	json_decref(seen);
	cr_expect_eq(weft_cluster_count_events(&c, id, "run_succeeded"), 1);
	cr_expect_eq(db_u64("SELECT COUNT(*) FROM events WHERE run_id = $1", id),
	    db_u64("SELECT MAX(seq) FROM events WHERE run_id = $1", id),
	    "the run's seqs have no gap");
	cr_expect_eq(db_u64("SELECT COUNT(*) FROM events", NULL),
	    db_u64("SELECT MAX(id) - MIN(id) + 1 FROM events", NULL),
	    "event ids have no gap");
}

// wait_retries waits until the engine has retried a failed commit n times
// (the database is down); brings the database back and fails at the
// deadline.
static void
wait_retries(int n)
{
	char    cmd[700];
	int64_t deadline = weft_clock_mono_ms() + weft_h_timeout_ms(15000);

	snprintf(cmd, sizeof(cmd),
	    "[ $(grep -c DB-RETRY '%s/coordinator.log') -ge %d ]", c.dir, n);
	while (weft_h_run(cmd, NULL) != 0) {
		if (weft_clock_mono_ms() > deadline) {
			weft_pg_up(&pg);
			weft_cluster_dump_logs(&c);
			cr_assert_fail("the engine never retried a commit");
		}
		weft_clock_sleep_ms(20);
	}
}

Test(e2e_pg, postgres_restarted_mid_run)
{
	char id[64];

	start_run(id, sizeof(id), write_def());
	// The sleeps are running on the workers: every connection is cut.
	cr_assert_eq(weft_pg_restart(&pg), 0);
	json_t *run = wait_end(id);
	check_log(id, run);
	json_decref(run);
	cr_expect(weft_h_alive(c.coord), "the coordinator survived");
}

Test(e2e_pg, postgres_down_while_results_arrive)
{
	char id[64];

	start_run(id, sizeof(id), write_def());
	// Down until results have come back and failed to commit a few
	// times: the engine retries them until the database returns.
	cr_assert_eq(weft_pg_down(&pg), 0);
	wait_retries(3);
	cr_assert_eq(weft_pg_up(&pg), 0);
	json_t *run = wait_end(id);
	check_log(id, run);
	json_decref(run);
	cr_expect(weft_h_alive(c.coord), "the coordinator survived");
}

// ---- the write-ahead rule with the store down ----
//
// Nothing may leave the coordinator before the store holds it: no event
// published, no result acknowledged, no assignment sent. With the
// database down the engine retries its batch; stopped then, it must exit
// with the batch untold. Every event a subscriber saw must be in the
// store under the same id, and once the database and the coordinator are
// back, every step must have run exactly once (a result acknowledged but
// never stored would make its step run again).

#define SUB_MAX 4096

typedef struct seen_event {
	uint64_t id;
	char     type[48];
} seen_event;

typedef struct subscriber {
	weft_sub       sub;
	seen_event     ev[SUB_MAX];
	atomic_size_t  n;
	weft_wire      wire; // keyed: every event is verified
} subscriber;

// sub_take records the events of one message (on the sub thread).
static void
sub_take(void *arg, nng_msg *m)
{
	subscriber     *s   = arg;
	Weft__Envelope *env = NULL;

	if (weft_wire_unpack(&s->wire, m, 1, &env) == WEFT_OK &&
	    env->body_case == WEFT__ENVELOPE__BODY_EVENTS) {
		for (size_t k = 0; k < env->events->n_events; k++) {
			size_t i = atomic_load(&s->n);
			if (i < SUB_MAX) {
				s->ev[i].id = env->events->events[k]->id;
				snprintf(s->ev[i].type, sizeof(s->ev[i].type), "%s",
				    env->events->events[k]->type);
				atomic_store(&s->n, i + 1);
			}
		}
	}
	weft_wire_free(env);
}

static void
sub_start(subscriber *s, const char *url)
{
	weft_cluster_wire(&c, &s->wire, "test-subscriber");
	weft_sub_start(&s->sub, url, sub_take, s);
}

static void
sub_stop(subscriber *s)
{
	weft_sub_stop(&s->sub);
	weft_wire_fini(&s->wire);
}

// coord_wait_exit waits for the coordinator to exit by itself and returns
// its wait status; fails the test at the deadline.
static int
coord_wait_exit(int64_t ms)
{
	int64_t deadline = weft_clock_mono_ms() + weft_h_timeout_ms(ms);
	int     st;

	while (waitpid(c.coord, &st, WNOHANG) == 0) {
		if (weft_clock_mono_ms() > deadline) {
			weft_cluster_dump_logs(&c);
			cr_assert_fail("the coordinator did not stop within %lld ms "
			               "of SIGTERM with the store down",
			    (long long) ms);
		}
		weft_clock_sleep_ms(20);
	}
	c.coord = 0;
	return (st);
}

// db_type returns the type of stored event id ("" when there is none).
static const char *
db_type(uint64_t id)
{
	char arg[32];

	snprintf(arg, sizeof(arg), "%llu", (unsigned long long) id);
	return (db_text("SELECT type FROM events WHERE id = $1", arg));
}

// The marked run: six 1 s steps side by side, four after them, a join;
// each step's program appends its id to marks.txt when it runs.
static const char *
write_marked_def(void)
{
	char        script[1200], def[4000];
	size_t      n = 0;
	const char *path;

	snprintf(script, sizeof(script),
	    "#!/bin/sh\necho \"$1\" >> '%s/marks.txt'\nsleep \"$2\"\n"
	    "cat >/dev/null\necho '{}'\n",
	    c.dir);
	path = weft_cluster_write(&c, "bin/mark.sh", script);
	cr_assert_eq(chmod(path, 0755), 0);
	n += (size_t) snprintf(def + n, sizeof(def) - n,
	    "{\"name\":\"marked\",\"steps\":[");
	for (int i = 0; i < 6; i++) {
		n += (size_t) snprintf(def + n, sizeof(def) - n,
		    "{\"id\":\"a%d\",\"type\":\"exec\",\"with\":{\"cmd\":"
		    "[\"mark.sh\",\"a%d\",\"1\"]}},",
		    i, i);
	}
	for (int i = 0; i < 4; i++) {
		n += (size_t) snprintf(def + n, sizeof(def) - n,
		    "{\"id\":\"b%d\",\"type\":\"exec\",\"with\":{\"cmd\":"
		    "[\"mark.sh\",\"b%d\",\"0.2\"]},\"depends_on\":[\"a0\","
		    "\"a1\",\"a2\",\"a3\",\"a4\",\"a5\"]},",
		    i, i);
	}
	snprintf(def + n, sizeof(def) - n,
	    "{\"id\":\"join\",\"type\":\"exec\",\"with\":{\"cmd\":"
	    "[\"mark.sh\",\"join\",\"0\"]},\"depends_on\":[\"b0\",\"b1\","
	    "\"b2\",\"b3\"]}]}");
	return (weft_cluster_write(&c, "marked.json", def));
}

// check_marks asserts each step's program ran exactly once.
static void
check_marks(void)
{
	char  path[700], line[64];
	FILE *f;
	int   count[11] = { 0 };

	snprintf(path, sizeof(path), "%s/marks.txt", c.dir);
	cr_assert_not_null(f = fopen(path, "r"), "%s", path);
	while (fgets(line, sizeof(line), f) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		if (line[0] == 'a') {
			count[atoi(line + 1)]++;
		} else if (line[0] == 'b') {
			count[6 + atoi(line + 1)]++;
		} else {
			count[10]++;
		}
	}
	fclose(f);
	for (int i = 0; i < 11; i++) {
		cr_expect_eq(count[i], 1, "step #%d ran %d times", i, count[i]);
	}
}

Test(e2e_pg, stopped_with_store_down_releases_nothing)
{
	static subscriber sub;
	char              id[64];
	uint64_t          stored;

	sub_start(&sub, c.events);
	start_run(id, sizeof(id), write_marked_def());

	// Down while the six steps finish: their results reach an engine
	// that cannot commit them, and it retries.
	cr_assert_eq(weft_pg_down(&pg), 0);
	wait_retries(2);

	// Stopped mid-retry: it must exit on its own, its batch untold.
	cr_assert_eq(kill(c.coord, SIGTERM), 0);
	int st = coord_wait_exit(15000);
	cr_expect(WIFEXITED(st), "the coordinator died of signal %d",
	    WIFSIGNALED(st) ? WTERMSIG(st) : 0);
	// What was sent before the exit has arrived by now or never will.
	weft_clock_sleep_ms(300);
	sub_stop(&sub);

	cr_assert_eq(weft_pg_up(&pg), 0);
	stored = db_u64("SELECT COALESCE(MAX(id), 0) FROM events", NULL);
	size_t n = atomic_load(&sub.n);
	cr_assert_gt(n, 0, "the subscriber saw no event at all");
	for (size_t i = 0; i < n; i++) {
		cr_expect_leq(sub.ev[i].id, stored,
		    "event %llu (%s) was published but the store ends at %llu",
		    (unsigned long long) sub.ev[i].id, sub.ev[i].type,
		    (unsigned long long) stored);
		if (sub.ev[i].id <= stored) {
			cr_expect_str_eq(db_type(sub.ev[i].id), sub.ev[i].type,
			    "event %llu", (unsigned long long) sub.ev[i].id);
		}
	}

	// Back: the held results arrive again and are stored once.
	weft_cluster_start_coord(&c);
	json_t *run = wait_end(id);
	check_log(id, run);
	json_decref(run);
	check_marks();
}
