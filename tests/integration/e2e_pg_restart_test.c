// e2e_pg_restart_test: the real binaries on PostgreSQL while the database
// goes away mid-run: restarted (every connection cut), or down for a while
// as results keep coming. The run must still succeed with every step
// succeeded exactly once and the event log whole: no gap, no double.
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "clock.h"
#include "cluster.h"
#include "harness.h"
#include "pg.h"

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

// db_u64 runs one query straight on the database (not through weft).
static uint64_t
db_u64(const char *sql, const char *arg)
{
	PGconn     *conn = PQconnectdb(weft_pg_url(&pg));
	const char *p[1] = { arg };
	PGresult   *r;
	uint64_t    v;

	cr_assert_eq(PQstatus(conn), CONNECTION_OK, "%s", PQerrorMessage(conn));
	r = PQexecParams(conn, sql, arg ? 1 : 0, NULL, p, NULL, NULL, 0);
	cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s: %s", sql,
	    PQerrorMessage(conn));
	v = strtoull(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	PQfinish(conn);
	return (v);
}


// start_run starts the run and waits until the six first steps run.
static void
start_run(char *id, size_t len)
{
	char *out;

	cr_assert_eq(weft_cluster_cli(&c, &out, "run '%s'", write_def()), 0);
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

Test(e2e_pg, postgres_restarted_mid_run)
{
	char id[64];

	start_run(id, sizeof(id));
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
	char cmd[700];

	start_run(id, sizeof(id));
	// Down until results have come back and failed to commit a few
	// times: the engine retries them until the database returns.
	cr_assert_eq(weft_pg_down(&pg), 0);
	snprintf(cmd, sizeof(cmd),
	    "[ $(grep -c DB-RETRY '%s/coordinator.log') -ge 3 ]", c.dir);
	int64_t deadline = weft_clock_mono_ms() + weft_h_timeout_ms(15000);
	while (weft_h_run(cmd, NULL) != 0) {
		if (weft_clock_mono_ms() > deadline) {
			weft_pg_up(&pg);
			weft_cluster_dump_logs(&c);
			cr_assert_fail("the engine never retried a commit");
		}
		weft_clock_sleep_ms(50);
	}
	cr_assert_eq(weft_pg_up(&pg), 0);
	json_t *run = wait_end(id);
	check_log(id, run);
	json_decref(run);
	cr_expect(weft_h_alive(c.coord), "the coordinator survived");
}
