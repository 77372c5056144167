// chaos_test: 50 runs of a 20-step workflow while the cluster is shot at.
//
// Three workers (each with its spool) and a coordinator; a seeded schedule
// kills them with SIGKILL or stops them with SIGTERM, one at a time, and
// starts each again at once; on PostgreSQL (chaos_pg_test, under
// e2e_pg_wrap) the database server is restarted too. Then every run must
// have succeeded, and the event log must show why nothing was lost or
// doubled:
//   - each step of each run succeeded exactly once (one step_succeeded);
//   - each run's seq numbers are 1..n without a gap;
//   - the only failed attempts are the `flaky` step's planned failures: a
//     SIGTERM (a drained worker, a stopped coordinator) fails nothing;
//   - every process stopped with SIGTERM exited 0;
//   - every lost attempt (step_lost) follows a kill -9 of its worker or
//     of the coordinator (a dispatch committed but never sent), never a
//     SIGTERM alone;
//   - the exec steps' side-effect log holds one line per step, except for
//     steps whose attempt was lost after a worker was killed mid-step
//     (SIGKILL): those are counted and printed, and each must have a
//     step_lost event.
// The schedule is seeded: WEFT_CHAOS_SEED=N replays a failing one (the
// seed is printed first).
#define _GNU_SOURCE // strptime, timegm
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "cluster.h"
#include "harness.h"
#include "pg.h"

#define CHAOS_RUNS    50
#define CHAOS_WORKERS 3
#define CHAOS_STEPS   20
#define CHAOS_EXEC    4 // exec steps per run: e0..e3

static weft_cluster c;
static weft_pg      pg;
static bool         have_pg; // running under e2e_pg_wrap: restart it too

// A small deterministic generator (xorshift64*): the schedule is the seed.
static uint64_t chaos_state;

static uint64_t
chaos_rand(void)
{
	chaos_state ^= chaos_state >> 12;
	chaos_state ^= chaos_state << 25;
	chaos_state ^= chaos_state >> 27;
	return (chaos_state * 2685821657736338717ULL);
}

static int
chaos_between(int lo, int hi)
{
	return (lo + (int) (chaos_rand() % (uint64_t) (hi - lo + 1)));
}

// The workflow: a root, sleeps, exec side effects, a step that fails once
// and is retried, noops, and a join, 20 steps in four layers.
static const char *
chaos_definition(const char *effect)
{
	static char def[8192];
	size_t      n = 0;

	n += (size_t) snprintf(def + n, sizeof(def) - n,
	    "{\"name\":\"chaos\",\"steps\":["
	    "{\"id\":\"root\",\"type\":\"noop\"},"
	    "{\"id\":\"flaky\",\"type\":\"fail\",\"depends_on\":[\"root\"],"
	    "\"with\":{\"times\":1},\"retry\":{\"max_attempts\":3,"
	    "\"backoff\":\"fixed\",\"initial_ms\":100}}");
	for (int i = 0; i < 6; i++) { // s0..s5: 300-800 ms
		n += (size_t) snprintf(def + n, sizeof(def) - n,
		    ",{\"id\":\"s%d\",\"type\":\"sleep\",\"depends_on\":"
		    "[\"root\"],\"with\":{\"ms\":%d}}",
		    i, 300 + 100 * i);
	}
	for (int i = 0; i < CHAOS_EXEC; i++) { // e0..e3 after a sleep each
		n += (size_t) snprintf(def + n, sizeof(def) - n,
		    ",{\"id\":\"e%d\",\"type\":\"exec\",\"depends_on\":"
		    "[\"s%d\"],\"with\":{\"cmd\":[\"%s\"]}}",
		    i, i, effect);
	}
	for (int i = 0; i < 6; i++) { // n0..n5 after flaky and an exec
		n += (size_t) snprintf(def + n, sizeof(def) - n,
		    ",{\"id\":\"n%d\",\"type\":\"%s\",\"depends_on\":"
		    "[\"flaky\",\"e%d\"]%s}",
		    i, i % 2 == 0 ? "noop" : "sleep", i % CHAOS_EXEC,
		    i % 2 == 0 ? "" : ",\"with\":{\"ms\":200}");
	}
	n += (size_t) snprintf(def + n, sizeof(def) - n,
	    ",{\"id\":\"s6\",\"type\":\"sleep\",\"depends_on\":[\"s4\",\"s5\"],"
	    "\"with\":{\"ms\":400}}"
	    ",{\"id\":\"join\",\"type\":\"noop\",\"depends_on\":[\"n0\",\"n1\","
	    "\"n2\",\"n3\",\"n4\",\"n5\",\"s6\"]}]}");
	cr_assert(n < sizeof(def));
	return (def);
}

static void
chaos_kill9(pid_t pid)
{
	weft_h_kill(pid, SIGKILL);
}

enum chaos_action {
	CHAOS_WORKER_KILL,
	CHAOS_WORKER_TERM,
	CHAOS_COORD_KILL,
	CHAOS_COORD_TERM,
	CHAOS_PG_RESTART,
	CHAOS_NACTIONS
};

static const char *chaos_action_name[] = { "kill -9 worker", "SIGTERM worker",
	"kill -9 coordinator", "SIGTERM coordinator",
	"restart PostgreSQL" };

typedef struct chaos_log {
	int  counts[CHAOS_NACTIONS];
	struct {
		int     worker;
		int64_t wall_ms;
	} kills[256]; // every kill -9, when: of worker wN, or -1 for the
	              // coordinator
	int  nkills;
	int  term_bad; // SIGTERMed processes that did not exit 0
	char bad[2048];
} chaos_log;

static void
chaos_act(enum chaos_action a, int victim, chaos_log *log)
{
	int st;

	switch (a) {
	case CHAOS_WORKER_KILL:
		if (log->nkills < 256) {
			log->kills[log->nkills].worker  = victim;
			log->kills[log->nkills].wall_ms = weft_clock_wall_ms();
			log->nkills++;
		}
		chaos_kill9(c.workers[victim]);
		weft_cluster_start_worker(&c, victim);
		break;
	case CHAOS_WORKER_TERM:
		if ((st = weft_h_term(c.workers[victim], 20000)) != 0) {
			log->term_bad++;
			size_t n = strlen(log->bad);
			snprintf(log->bad + n, sizeof(log->bad) - n,
			    " worker w%d exit %d;", victim, st);
		}
		weft_cluster_start_worker(&c, victim);
		break;
	case CHAOS_COORD_KILL:
		if (log->nkills < 256) {
			log->kills[log->nkills].worker  = -1;
			log->kills[log->nkills].wall_ms = weft_clock_wall_ms();
			log->nkills++;
		}
		chaos_kill9(c.coord);
		weft_cluster_start_coord(&c);
		break;
	case CHAOS_COORD_TERM:
		if ((st = weft_h_term(c.coord, 20000)) != 0) {
			log->term_bad++;
			size_t n = strlen(log->bad);
			snprintf(log->bad + n, sizeof(log->bad) - n,
			    " coordinator exit %d;", st);
			// Now, before the next coordinator logs on top: a
			// stop over 10 s logged its phase and stacks there
			// (STOP-SLOW, STOP-STACK).
			char *out = NULL;
			(void) weft_h_run_fmt(&out,
			    "tail -n 400 '%s/coordinator.log'", c.dir);
			fprintf(stderr, "chaos: the coordinator did not stop on "
			                "SIGTERM; its log's end:\n%s\n",
			    out != NULL ? out : "");
			free(out);
		}
		weft_cluster_start_coord(&c);
		break;
	case CHAOS_PG_RESTART:
		cr_assert_eq(weft_pg_restart(&pg), 0, "pg_ctl restart failed");
		break;
	case CHAOS_NACTIONS:
		break;
	}
	log->counts[a]++;
}

// chaos_ended counts the runs that are no longer queued or running.
static int
chaos_ended(char ids[][64], int n)
{
	char   *out;
	int     ended = 0;
	json_t *runs;
	size_t  k;
	json_t *r;

	if (weft_cluster_cli(&c, &out, "runs --definition chaos --limit 100 "
	                               "--json") != 0) {
		free(out);
		return (0); // the coordinator is restarting
	}
	runs = json_loads(out, 0, NULL);
	free(out);
	json_array_foreach (runs, k, r) {
		const char *st = json_string_value(json_object_get(r, "status"));
		if (st != NULL && strcmp(st, "queued") != 0 &&
		    strcmp(st, "running") != 0) {
			ended++;
		}
	}
	json_decref(runs);
	(void) ids;
	return (ended < n ? ended : n);
}

// chaos_killed_before says whether worker wN (node) or the coordinator
// was killed with SIGKILL at most 30 s before wall time ts (an event's
// "ts"): a lost attempt must have a kill -9 to blame, never a SIGTERM. A
// coordinator killed between committing a dispatch and sending it loses
// the attempt too: the worker never had it (and never ran it).
static bool
chaos_killed_before(const chaos_log *log, const char *node, const char *ts)
{
	struct tm tm = { 0 };
	int       ms = 0;
	const char *rest;

	if (node == NULL || ts == NULL || node[0] != 'w' ||
	    (rest = strptime(ts, "%Y-%m-%dT%H:%M:%S", &tm)) == NULL) {
		return (false);
	}
	if (*rest == '.') {
		ms = atoi(rest + 1);
	}
	int64_t at = (int64_t) timegm(&tm) * 1000 + ms;
	int     w  = atoi(node + 1);
	for (int k = 0; k < log->nkills; k++) {
		if ((log->kills[k].worker == w || log->kills[k].worker < 0) &&
		    log->kills[k].wall_ms <= at + 50 &&
		    at - log->kills[k].wall_ms <= 30000) {
			return (true);
		}
	}
	return (false);
}

// chaos_check_run checks one run's log: every step succeeded once, seq is
// gap-free, no failure but flaky's, and returns the steps lost (by name,
// into lost, as "step," entries).
static void
chaos_check_run(const chaos_log *log, const char *id, char *lost,
    size_t lostlen, int *failures)
{
	char   *out;
	int     succeeded[CHAOS_STEPS + 8] = { 0 };
	char    names[CHAOS_STEPS + 8][16];
	int     nnames = 0;
	json_t *ev;
	json_error_t jerr;

	cr_assert_eq(weft_cluster_cli(&c, &out,
	                 "events --run %s --limit 10000", id),
	    0, "weft events --run %s: %s", id, out);
	uint64_t want_seq = 1;
	for (char *line = out, *next; *line != '\0'; line = next) {
		next = strchr(line, '\n');
		next = next != NULL ? (*next = '\0', next + 1) : line + strlen(line);
		if (*line == '\0') {
			continue;
		}
		cr_assert_not_null(ev = json_loads(line, 0, &jerr),
		    "run %s: bad event line: %s", id, line);
		const char *type = json_string_value(json_object_get(ev, "type"));
		const char *step = json_string_value(json_object_get(ev, "step"));
		uint64_t    seq  = (uint64_t) json_integer_value(
                    json_object_get(ev, "seq"));
		cr_expect_eq(seq, want_seq, "run %s: seq %llu where %llu was due",
		    id, (unsigned long long) seq, (unsigned long long) want_seq);
		want_seq = seq + 1;
		if (strcmp(type, "step_succeeded") == 0) {
			int k;
			for (k = 0; k < nnames && strcmp(names[k], step) != 0; k++) {
			}
			if (k == nnames) {
				cr_assert(nnames < CHAOS_STEPS + 8);
				snprintf(names[nnames++], sizeof(names[0]), "%s", step);
			}
			succeeded[k]++;
		} else if (strcmp(type, "step_failed") == 0 ||
		    strcmp(type, "step_retry_scheduled") == 0 ||
		    strcmp(type, "step_timed_out") == 0) {
			const char *err = json_string_value(json_object_get(
			    json_object_get(ev, "data"), "error"));
			// The flaky step's own failures, and the retry of an
			// attempt lost with its worker (checked below).
			bool planned = (strcmp(step, "flaky") == 0 && err != NULL &&
			                   strstr(err, "set to fail") != NULL) ||
			    (strcmp(type, "step_retry_scheduled") == 0 &&
			        err != NULL && strcmp(err, "worker lost") == 0);
			if (!planned) {
				(*failures)++;
				cr_expect(false, "run %s: unplanned failure: %s", id,
				    line);
			}
		} else if (strcmp(type, "step_lost") == 0) {
			const char *node = json_string_value(
			    json_object_get(ev, "node"));
			if (!chaos_killed_before(log, node,
			        json_string_value(json_object_get(ev, "ts")))) {
				(*failures)++;
				cr_expect(false, "run %s: an attempt lost on %s with "
				    "no kill -9 of it to blame: %s", id,
				    node != NULL ? node : "?", line);
			}
			size_t n = strlen(lost);
			snprintf(lost + n, lostlen - n, "%s,", step);
		}
		json_decref(ev);
	}
	free(out);
	cr_expect_eq(nnames, CHAOS_STEPS, "run %s: %d steps succeeded, not %d",
	    id, nnames, CHAOS_STEPS);
	for (int k = 0; k < nnames; k++) {
		cr_expect_eq(succeeded[k], 1, "run %s: step %s succeeded %d times",
		    id, names[k], succeeded[k]);
	}
}

static void
chaos_main(void)
{
	const char *seed_env = getenv("WEFT_CHAOS_SEED");
	uint64_t    seed     = seed_env != NULL
	           ? strtoull(seed_env, NULL, 10)
	           : (uint64_t) weft_clock_wall_ms();
	char        effect_log[700], script[1600], ids[CHAOS_RUNS][64], *out;
	chaos_log   log = { 0 };

	fprintf(stderr, "chaos: seed %llu (WEFT_CHAOS_SEED=%llu replays it)%s\n",
	    (unsigned long long) seed, (unsigned long long) seed,
	    have_pg ? ", on PostgreSQL" : "");
	chaos_state = seed != 0 ? seed : 1;

	// The side effect: one line per execution, first thing, then a
	// short sleep so that a kill -9 lands mid-step now and then (and the
	// step runs again: counted below) and a SIGTERM's drain has a step
	// to wait for (it must not run again).
	snprintf(effect_log, sizeof(effect_log), "%s/effects", c.dir);
	snprintf(script, sizeof(script),
	    "#!/bin/sh\necho \"$WEFT_IDEMPOTENCY_KEY $WEFT_ATTEMPT\" "
	    ">> '%s'\nsleep 0.3\n",
	    effect_log);
	const char *effect = weft_cluster_write(&c, "bin/effect.sh", script);
	cr_assert_eq(chmod(effect, 0755), 0);
	const char *def = weft_cluster_write(&c, "chaos.json",
	    chaos_definition(effect));
	cr_assert_eq(weft_cluster_cli(&c, &out, "define '%s'", def), 0, "%s",
	    out);
	free(out);
	for (int i = 0; i < CHAOS_RUNS; i++) {
		cr_assert_eq(weft_cluster_cli(&c, &out, "run chaos"), 0, "%s", out);
		out[strcspn(out, "\n")] = '\0';
		snprintf(ids[i], sizeof(ids[i]), "%s", out);
		free(out);
	}

	// The schedule: every kind of fault at least once, in a seeded
	// order, then seeded faults until every run has ended (bounded).
	enum chaos_action plan[CHAOS_NACTIONS];
	int               nplan = 0;
	for (int a = 0; a < CHAOS_NACTIONS; a++) {
		if (a != CHAOS_PG_RESTART || have_pg) {
			plan[nplan++] = (enum chaos_action) a;
		}
	}
	for (int i = nplan - 1; i > 0; i--) {
		int               j = chaos_between(0, i);
		enum chaos_action t = plan[i];
		plan[i]             = plan[j];
		plan[j]             = t;
	}
	int64_t deadline = weft_clock_mono_ms() + weft_h_timeout_ms(120000);
	int     acts     = 0;
	while (acts < nplan || (chaos_ended(ids, CHAOS_RUNS) < CHAOS_RUNS &&
	                           weft_clock_mono_ms() < deadline)) {
		weft_clock_sleep_ms(chaos_between(800, 2500));
		enum chaos_action a = acts < nplan
		    ? plan[acts]
		    : (enum chaos_action) chaos_between(0, nplan - 1);
		int victim = chaos_between(0, CHAOS_WORKERS - 1);
		fprintf(stderr, "chaos: %lld %s%s\n",
		    (long long) weft_clock_wall_ms(), chaos_action_name[a],
		    a == CHAOS_WORKER_KILL || a == CHAOS_WORKER_TERM
		        ? (victim == 0 ? " w0" : victim == 1 ? " w1" : " w2")
		        : "");
		chaos_act(a, victim, &log);
		acts++;
	}
	fprintf(stderr, "chaos: %d faults:", acts);
	for (int a = 0; a < CHAOS_NACTIONS; a++) {
		fprintf(stderr, " %s ×%d,", chaos_action_name[a], log.counts[a]);
	}
	fprintf(stderr, "\n");

	// Everything is up again: every run must end, and succeed.
	for (int i = 0; i < CHAOS_RUNS; i++) {
		json_t *end = weft_cluster_run_end(&c, ids[i], 120000);
		cr_expect_str_eq(json_string_value(json_object_get(end, "status")),
		    "succeeded", "run %s ended %s", ids[i],
		    json_string_value(json_object_get(end, "status")));
		json_decref(end);
	}
	cr_expect_eq(log.term_bad, 0, "SIGTERM did not end in exit 0:%s",
	    log.bad);

	// The log, run by run; then the side effects against the losses.
	static char lost[CHAOS_RUNS][4096];
	int         failures = 0;
	for (int i = 0; i < CHAOS_RUNS; i++) {
		chaos_check_run(&log, ids[i], lost[i], sizeof(lost[i]), &failures);
	}
	char *text = NULL;
	cr_assert_eq(weft_h_run_fmt(&text, "sort '%s'", effect_log), 0);
	int reexec = 0, lines = 0;
	for (int i = 0; i < CHAOS_RUNS; i++) {
		for (int k = 0; k < CHAOS_EXEC; k++) {
			char key[100];
			int  n = 0;
			snprintf(key, sizeof(key), "%.63s/e%d ", ids[i], k);
			for (char *p = text; (p = strstr(p, key)) != NULL;
			     p += strlen(key)) {
				n++;
			}
			lines += n;
			cr_expect(n >= 1, "run %s: e%d never ran", ids[i], k);
			if (n > 1) {
				char step[16];
				snprintf(step, sizeof(step), "e%d,", k);
				reexec += n - 1;
				fprintf(stderr, "chaos: run %s e%d ran %d times "
				                "(lost: %s)\n",
				    ids[i], k, n, lost[i]);
				cr_expect(strstr(lost[i], step) != NULL,
				    "run %s: e%d ran %d times without a lost "
				    "attempt: a re-execution no kill -9 explains",
				    ids[i], k, n);
				cr_expect(log.counts[CHAOS_WORKER_KILL] > 0,
				    "re-execution without any worker killed");
			}
		}
	}
	free(text);
	fprintf(stderr, "chaos: %d exec side effects for %d exec steps: %d "
	                "re-executions, each after a kill -9 mid-step\n",
	    lines, CHAOS_RUNS * CHAOS_EXEC, reexec);
	if (failures > 0 || log.term_bad > 0) {
		weft_cluster_dump_logs(&c);
	}
}

static void
up(void)
{
	have_pg = weft_pg_import(&pg) == 0;
	weft_cluster_start(&c, CHAOS_WORKERS, 200);
}

static void
down(void)
{
	weft_cluster_stop(&c);
}

TestSuite(chaos, .init = up, .fini = down, .timeout = 420);

Test(chaos, kill_and_stop_every_node_and_lose_nothing)
{
	chaos_main();
}
