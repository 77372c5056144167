// store_test: the store on either backend: migrations, the write path
// with its projections, the queries, and refusal of a newer schema.
//
// One body, two binaries: store_test runs it on SQLite, store_test_pg
// (built with WEFT_STORE_TEST_PG) on a PostgreSQL server of its own.
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "harness.h"
#include "migrations.h"
#include "store.h"

static char        dbpath[512];
static weft_store *st;

#ifdef WEFT_STORE_TEST_PG
#include <criterion/hooks.h>

#include "pg.h"

WEFT_PG_SHARED_START()
WEFT_PG_SHARED_STOP()

// new_db creates a fresh, empty database on the binary's server.
static void
new_db(char *url, size_t len)
{
	static int n;
	weft_pg    pg;
	char       name[64];

	cr_assert_eq(weft_pg_import(&pg), 0, "no PostgreSQL test server");
	snprintf(name, sizeof(name), "t%d_%d", (int) getpid(), n++);
	cr_assert_eq(weft_pg_createdb(&pg, name, url, len), 0);
}
#else
static void
new_db(char *url, size_t len)
{
	char *dir = weft_h_tempdir("store");
	snprintf(url, len, "sqlite:%s/t.db", dir);
	free(dir);
}
#endif

static void
setup(void)
{
	char err[512];

	new_db(dbpath, sizeof(dbpath));
	cr_assert_eq(weft_store_open(&st, dbpath, NULL, false, err, sizeof(err)),
	    WEFT_OK, "%s", err);
}

static void
teardown(void)
{
	weft_store_close(st);
}

static weft_event
ev(uint64_t id, const char *run, uint64_t seq, enum weft_event_type type,
    const char *step, json_t *data)
{
	weft_event e = { .id = id, .run_id = run, .seq = seq, .ts_ms = 1000 + (int64_t) id,
		.type = type, .step_id = step, .attempt = step ? 1 : 0,
		.node = step ? "w1" : NULL, .data = data };
	e.data_text = json_dumps(data, JSON_COMPACT);
	return (e);
}

static void
free_evs(weft_event *evs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free((char *) evs[i].data_text);
		json_decref(evs[i].data);
	}
}

static void
write_run(void)
{
	weft_event evs[] = {
		ev(1, NULL, 0, WEFT_EV_DEFINITION_REGISTERED, NULL,
		    json_pack("{s:s, s:i, s:{s:s, s:[{s:s, s:s}, {s:s, s:s}]}}",
		        "name", "two", "version", 1, "definition", "name", "two",
		        "steps", "id", "a", "type", "noop", "id", "b", "type",
		        "noop")),
		ev(2, "R1", 1, WEFT_EV_RUN_QUEUED, NULL,
		    json_pack("{s:s, s:i, s:{}, s:{}, s:i}", "definition", "two",
		        "version", 1, "input", "params", "steps", 2)),
		ev(3, "R1", 2, WEFT_EV_RUN_STARTED, NULL, json_object()),
		ev(4, "R1", 3, WEFT_EV_STEP_READY, "a", json_object()),
		ev(5, "R1", 4, WEFT_EV_STEP_DISPATCHED, "a", json_object()),
		ev(6, "R1", 5, WEFT_EV_STEP_STARTED, "a", json_object()),
		ev(7, "R1", 6, WEFT_EV_STEP_FAILED, "a",
		    json_pack("{s:s}", "error", "disk on fire")),
	};
	size_t n = sizeof(evs) / sizeof(evs[0]);
	cr_assert_eq(weft_store_append(st, evs, n), WEFT_OK, "%s", st->error);
	free_evs(evs, n);
}

TestSuite(store, .init = setup, .fini = teardown, .timeout = 30);

Test(store, projections_follow_events)
{
	json_t *run;

	write_run();
	cr_assert_eq(weft_store_get_run(st, "R1", &run), WEFT_OK, "%s", st->error);
	cr_expect_str_eq(json_string_value(json_object_get(run, "status")),
	    "running");
	cr_expect_eq(json_integer_value(json_object_get(run, "steps_done")), 1);
	json_t *steps = json_object_get(run, "steps");
	cr_assert_eq(json_array_size(steps), 2);
	json_t *a = json_array_get(steps, 0);
	cr_expect_str_eq(json_string_value(json_object_get(a, "status")), "failed");
	cr_expect_str_eq(json_string_value(json_object_get(a, "error")),
	    "disk on fire");
	cr_expect_str_eq(json_string_value(json_object_get(
	                     json_array_get(steps, 1), "status")),
	    "pending");
	json_decref(run);
	cr_expect_eq(weft_store_get_run(st, "nope", &run), WEFT_ENOENT);
}

// status_of returns the status of step id in a run from weft_store_get_run.
static const char *
status_of(json_t *run, const char *id)
{
	size_t  i;
	json_t *s;

	json_array_foreach (json_object_get(run, "steps"), i, s) {
		const char *sid = json_string_value(json_object_get(s, "id"));
		if (sid != NULL && strcmp(sid, id) == 0) {
			return (json_string_value(json_object_get(s, "status")));
		}
	}
	return ("(none)");
}

// Skipped and cancelled steps have ended, a step waiting for its retry has
// not: steps_done counts exactly the ended ones, across batches too.
Test(store, steps_done_counts_every_ending)
{
	json_t    *run;
	weft_event evs[] = {
		ev(1, NULL, 0, WEFT_EV_DEFINITION_REGISTERED, NULL,
		    json_pack("{s:s, s:i, s:{s:s, s:[{s:s}, {s:s}, {s:s}]}}",
		        "name", "three", "version", 1, "definition", "name",
		        "three", "steps", "id", "a", "id", "b", "id", "c")),
		ev(2, "R3", 1, WEFT_EV_RUN_QUEUED, NULL,
		    json_pack("{s:s, s:i, s:{}, s:{}, s:i}", "definition", "three",
		        "version", 1, "input", "params", "steps", 3)),
		ev(3, "R3", 2, WEFT_EV_RUN_STARTED, NULL, json_object()),
		ev(4, "R3", 3, WEFT_EV_STEP_SKIPPED, "a",
		    json_pack("{s:s}", "reason", "trigger")),
		ev(5, "R3", 4, WEFT_EV_STEP_READY, "b", json_object()),
		ev(6, "R3", 5, WEFT_EV_STEP_CANCELLED, "b", json_object()),
		ev(7, "R3", 6, WEFT_EV_STEP_READY, "c", json_object()),
		ev(8, "R3", 7, WEFT_EV_STEP_DISPATCHED, "c", json_object()),
		ev(9, "R3", 8, WEFT_EV_STEP_LOST, "c", json_object()),
		ev(10, "R3", 9, WEFT_EV_STEP_RETRY_SCHEDULED, "c",
		    json_pack("{s:s}", "error", "worker lost")),
	};
	weft_event next[] = {
		ev(11, "R3", 10, WEFT_EV_STEP_READY, "c", json_object()),
		ev(12, "R3", 11, WEFT_EV_STEP_DISPATCHED, "c", json_object()),
		ev(13, "R3", 12, WEFT_EV_STEP_STARTED, "c", json_object()),
		ev(14, "R3", 13, WEFT_EV_STEP_SUCCEEDED, "c",
		    json_pack("{s:i}", "output", 1)),
	};

	size_t n = sizeof(evs) / sizeof(evs[0]), m = sizeof(next) / sizeof(next[0]);
	cr_assert_eq(weft_store_append(st, evs, n), WEFT_OK, "%s", st->error);
	free_evs(evs, n);
	cr_assert_eq(weft_store_get_run(st, "R3", &run), WEFT_OK, "%s", st->error);
	cr_expect_eq(json_integer_value(json_object_get(run, "steps_done")), 2);
	cr_expect_str_eq(status_of(run, "a"), "skipped");
	cr_expect_str_eq(status_of(run, "b"), "cancelled");
	cr_expect_str_eq(status_of(run, "c"), "retry_wait");
	json_decref(run);

	cr_assert_eq(weft_store_append(st, next, m), WEFT_OK, "%s", st->error);
	free_evs(next, m);
	cr_assert_eq(weft_store_get_run(st, "R3", &run), WEFT_OK, "%s", st->error);
	cr_expect_eq(json_integer_value(json_object_get(run, "steps_done")), 3);
	cr_expect_str_eq(status_of(run, "c"), "succeeded");
	json_decref(run);
}

Test(store, event_filters)
{
	json_t     *out;
	const char *types[] = { "step_failed", "run_started" };

	write_run();
	weft_events_filter f = { .run_id = "R1" };
	cr_assert_eq(weft_store_list_events(st, &f, &out), WEFT_OK);
	cr_expect_eq(json_array_size(out), 6);
	json_decref(out);

	weft_events_filter g = { .types = types, .ntypes = 2 };
	weft_store_list_events(st, &g, &out);
	cr_expect_eq(json_array_size(out), 2);
	json_decref(out);

	weft_events_filter h = { .text = "on fire" };
	weft_store_list_events(st, &h, &out);
	cr_assert_eq(json_array_size(out), 1);
	cr_expect_eq(json_integer_value(json_object_get(json_array_get(out, 0), "id")), 7);
	json_decref(out);

	weft_events_filter p = { .after = 3, .limit = 2 };
	weft_store_list_events(st, &p, &out);
	cr_assert_eq(json_array_size(out), 2);
	cr_expect_eq(json_integer_value(json_object_get(json_array_get(out, 0), "id")), 4);
	json_decref(out);

	weft_events_filter s = { .step_id = "a", .node = "w1" };
	weft_store_list_events(st, &s, &out);
	cr_expect_eq(json_array_size(out), 4);
	json_decref(out);
}

Test(store, duplicate_event_rolls_back_whole_batch)
{
	write_run();
	json_t    *d    = json_object();
	weft_event evs[] = { ev(8, "R1", 7, WEFT_EV_STEP_READY, "b", json_object()),
		ev(8, "R1", 8, WEFT_EV_STEP_READY, "b", d) }; // same id
	cr_expect_neq(weft_store_append(st, evs, 2), WEFT_OK);
	free_evs(evs, 2);
	uint64_t max;
	weft_store_max_event_id(st, &max);
	cr_expect_eq(max, 7, "nothing of a failed batch is written");

	// The store is still fine for the next batch.
	weft_event ok[] = { ev(8, "R1", 7, WEFT_EV_STEP_READY, "b", json_object()) };
	cr_assert_eq(weft_store_append(st, ok, 1), WEFT_OK, "%s", st->error);
	free_evs(ok, 1);
	weft_store_max_event_id(st, &max);
	cr_expect_eq(max, 8);
}

// A run's sealed secrets go to run_secrets with its run_queued, in the
// same transaction: a batch that fails keeps neither.
Test(store, run_secrets_written_with_the_run)
{
	char      *box = (char *) 1;
	weft_event evs[] = {
		ev(1, "S1", 1, WEFT_EV_RUN_QUEUED, NULL,
		    json_pack("{s:s, s:i, s:{}, s:{s:s}, s:i}", "definition",
		        "two", "version", 1, "input", "params", "tok", "***",
		        "steps", 2)),
	};
	evs[0].secrets = "c2VhbGVkLWJsb2I=";
	cr_assert_eq(weft_store_append(st, evs, 1), WEFT_OK, "%s", st->error);
	free_evs(evs, 1);
	cr_assert_eq(weft_store_get_secrets(st, "S1", &box), WEFT_OK, "%s",
	    st->error);
	cr_assert_not_null(box);
	cr_expect_str_eq(box, "c2VhbGVkLWJsb2I=");
	free(box);
	cr_assert_eq(weft_store_get_secrets(st, "R1", &box), WEFT_OK);
	cr_expect_null(box, "a run without secrets has no row");

	// A batch refused (a duplicate event id) writes no secrets either.
	weft_event bad[] = {
		ev(2, "S2", 1, WEFT_EV_RUN_QUEUED, NULL,
		    json_pack("{s:s, s:i, s:{}, s:{}, s:i}", "definition", "two",
		        "version", 1, "input", "params", "steps", 2)),
		ev(2, "S2", 2, WEFT_EV_RUN_STARTED, NULL, json_object()),
	};
	bad[0].secrets = "b3RoZXI=";
	cr_expect_neq(weft_store_append(st, bad, 2), WEFT_OK);
	free_evs(bad, 2);
	cr_assert_eq(weft_store_get_secrets(st, "S2", &box), WEFT_OK);
	cr_expect_null(box, "rolled back with its batch");
}

Test(store, runs_list_and_unfinished)
{
	json_t *out;

	write_run();
	weft_runs_filter f = { .status = "running" };
	cr_assert_eq(weft_store_list_runs(st, &f, &out), WEFT_OK);
	cr_expect_eq(json_array_size(out), 1);
	json_decref(out);
	cr_assert_eq(weft_store_unfinished_runs(st, "", 10, &out), WEFT_OK);
	cr_assert_eq(json_array_size(out), 1);
	cr_expect_eq(json_integer_value(json_object_get(json_array_get(out, 0), "last_seq")), 6);
	// The page after the last id is empty: recovery's cursor ends.
	char last[64];
	snprintf(last, sizeof(last), "%s",
	    json_string_value(json_object_get(json_array_get(out, 0), "id")));
	json_decref(out);
	cr_assert_eq(weft_store_unfinished_runs(st, last, 10, &out), WEFT_OK);
	cr_expect_eq(json_array_size(out), 0);
	json_decref(out);
}

Test(store, reopen_applies_nothing_twice_and_refuses_newer_schema)
{
	char        err[512];
	weft_store *again;

	cr_assert_eq(weft_store_open(&again, dbpath, NULL, false, err, sizeof(err)),
	    WEFT_OK, "%s", err);
	cr_assert_eq(again->ops->exec(again,
	                 "INSERT INTO schema_migrations VALUES (9999, 'future', 0)",
	                 NULL, 0),
	    WEFT_OK);
	weft_store_close(again);
	cr_expect_eq(weft_store_open(&again, dbpath, NULL, false, err, sizeof(err)),
	    WEFT_ESCHEMA);
	cr_expect(strstr(err, "9999") != NULL, "%s", err);
}

Test(store, event_time_and_text_filters)
{
	json_t *out;

	write_run(); // event i has ts_ms 1000 + i
	weft_events_filter f = { .since_ms = 1003, .until_ms = 1006 };
	cr_assert_eq(weft_store_list_events(st, &f, &out), WEFT_OK, "%s",
	    st->error);
	cr_assert_eq(json_array_size(out), 3);
	cr_expect_eq(json_integer_value(json_object_get(json_array_get(out, 0), "id")), 3);
	json_decref(out);

	// Text matches inside data, whatever the case.
	weft_events_filter t = { .text = "DISK ON" };
	cr_assert_eq(weft_store_list_events(st, &t, &out), WEFT_OK);
	cr_expect_eq(json_array_size(out), 1);
	json_decref(out);
	weft_events_filter none = { .text = "no such text", .run_id = "R1" };
	cr_assert_eq(weft_store_list_events(st, &none, &out), WEFT_OK);
	cr_expect_eq(json_array_size(out), 0);
	json_decref(out);

	// % and _ in the text are themselves, not wildcards.
	weft_event pc[] = { ev(8, "R1", 7, WEFT_EV_STEP_READY, "b",
		json_pack("{s:s}", "msg", "100%_ok")) };
	cr_assert_eq(weft_store_append(st, pc, 1), WEFT_OK, "%s", st->error);
	free_evs(pc, 1);
	weft_events_filter lit = { .text = "0%_o" };
	cr_assert_eq(weft_store_list_events(st, &lit, &out), WEFT_OK, "%s",
	    st->error);
	cr_expect_eq(json_array_size(out), 1);
	json_decref(out);
	weft_events_filter wild = { .text = "d_sk" };
	cr_assert_eq(weft_store_list_events(st, &wild, &out), WEFT_OK);
	cr_expect_eq(json_array_size(out), 0, "_ matched a character");
	json_decref(out);

	// data comes back as the JSON object that went in.
	weft_events_filter d = { .types = (const char *[]) { "step_failed" },
		.ntypes = 1 };
	cr_assert_eq(weft_store_list_events(st, &d, &out), WEFT_OK);
	cr_expect_str_eq(json_string_value(json_object_get(json_object_get(
	                     json_array_get(out, 0), "data"), "error")),
	    "disk on fire");
	json_decref(out);
}

Test(store, definitions_latest_and_by_version)
{
	json_t *out;
	char   *body;
	int64_t found;

	write_run();
	weft_event evs[] = { ev(8, NULL, 0, WEFT_EV_DEFINITION_REGISTERED, NULL,
		json_pack("{s:s, s:i, s:{s:s, s:[]}}", "name", "two", "version",
		    2, "definition", "name", "two", "steps")) };
	cr_assert_eq(weft_store_append(st, evs, 1), WEFT_OK, "%s", st->error);
	free_evs(evs, 1);
	cr_assert_eq(weft_store_list_definitions(st, &out), WEFT_OK);
	cr_assert_eq(json_array_size(out), 1);
	cr_expect_eq(json_integer_value(json_object_get(json_array_get(out, 0), "version")), 2);
	json_decref(out);
	cr_assert_eq(weft_store_get_definition(st, "two", 1, &body, &found), WEFT_OK);
	cr_expect_eq(found, 1);
	cr_expect(strstr(body, "\"a\"") != NULL, "%s", body);
	free(body);
	cr_assert_eq(weft_store_get_definition(st, "two", 0, &body, &found), WEFT_OK);
	cr_expect_eq(found, 2);
	free(body);
	cr_expect_eq(weft_store_get_definition(st, "nope", 0, &body, &found),
	    WEFT_ENOENT);
}

Test(store, runs_filter_by_definition_and_page)
{
	json_t *out;

	write_run();
	weft_event evs[] = { ev(8, "R2", 1, WEFT_EV_RUN_QUEUED, NULL,
		json_pack("{s:s, s:i, s:{}, s:{}, s:i}", "definition", "other",
		    "version", 1, "input", "params", "steps", 0)) };
	cr_assert_eq(weft_store_append(st, evs, 1), WEFT_OK, "%s", st->error);
	free_evs(evs, 1);
	weft_runs_filter all = { 0 };
	cr_assert_eq(weft_store_list_runs(st, &all, &out), WEFT_OK);
	cr_assert_eq(json_array_size(out), 2);
	cr_expect_str_eq(json_string_value(json_object_get(json_array_get(out, 0), "id")), "R2",
	    "newest first");
	json_decref(out);
	weft_runs_filter def = { .definition = "two" };
	cr_assert_eq(weft_store_list_runs(st, &def, &out), WEFT_OK);
	cr_expect_eq(json_array_size(out), 1);
	json_decref(out);
	weft_runs_filter page = { .before = "R2", .limit = 5 };
	cr_assert_eq(weft_store_list_runs(st, &page, &out), WEFT_OK);
	cr_assert_eq(json_array_size(out), 1);
	cr_expect_str_eq(json_string_value(json_object_get(json_array_get(out, 0), "id")), "R1");
	json_decref(out);
}

Test(store, big_batch_is_one_transaction, .timeout = 120)
{
	enum { NSTEPS = 5000 };
	static const enum weft_event_type types[] = { WEFT_EV_STEP_READY,
		WEFT_EV_STEP_DISPATCHED, WEFT_EV_STEP_STARTED,
		WEFT_EV_STEP_SUCCEEDED };
	size_t      n   = 1 + NSTEPS * 4, k = 0;
	weft_event *evs = calloc(n, sizeof(*evs));
	char      (*ids)[16] = calloc(NSTEPS, sizeof(*ids));
	json_t     *run, *out;

	evs[k++] = ev(1, "B", 1, WEFT_EV_RUN_QUEUED, NULL,
	    json_pack("{s:s, s:i, s:{}, s:{}, s:i}", "definition", "big",
	        "version", 1, "input", "params", "steps", NSTEPS));
	for (int t = 0; t < 4; t++) {
		for (int i = 0; i < NSTEPS; i++, k++) {
			snprintf(ids[i], sizeof(ids[i]), "s%d", i);
			evs[k] = ev(k + 1, "B", k + 1, types[t], ids[i],
			    t == 3 ? json_pack("{s:{s:i}}", "output", "i", i)
			           : json_object());
		}
	}
	cr_assert_eq(weft_store_append(st, evs, n), WEFT_OK, "%s", st->error);
	free_evs(evs, n);
	free(evs);
	free(ids);
	cr_assert_eq(weft_store_get_run(st, "B", &run), WEFT_OK, "%s", st->error);
	cr_expect_eq(json_integer_value(json_object_get(run, "steps_done")), NSTEPS);
	json_decref(run);
	weft_events_filter f = { .run_id = "B", .limit = 10000 };
	cr_assert_eq(weft_store_list_events(st, &f, &out), WEFT_OK);
	cr_expect_eq(json_array_size(out), 10000);
	json_decref(out);
}

// A commit whose answer is lost (the connection broke as the server
// committed) must not be written twice when the batch is given again.
static weft_err (*real_commit)(weft_store *s);

static weft_err
commit_then_lose_answer(weft_store *s)
{
	weft_err rv = real_commit(s);
	cr_assert_eq(rv, WEFT_OK, "%s", s->error);
	return (WEFT_EUNAVAIL);
}

Test(store, lost_commit_answer_is_not_doubled)
{
	const weft_store_ops *ops = st->ops;
	weft_store_ops        lying = *ops;
	json_t               *out;
	uint64_t              max;

	real_commit  = ops->commit;
	lying.commit = commit_then_lose_answer;
	st->ops      = &lying;
	weft_event evs[] = { ev(1, "L", 1, WEFT_EV_RUN_QUEUED, NULL,
		                 json_pack("{s:s, s:i, s:{}, s:{}, s:i}",
		                     "definition", "x", "version", 1, "input",
		                     "params", "steps", 1)),
		ev(2, "L", 2, WEFT_EV_STEP_READY, "a", json_object()) };
	cr_expect_eq(weft_store_append(st, evs, 2), WEFT_EUNAVAIL);
	st->ops = ops;
	cr_assert_eq(weft_store_append(st, evs, 2), WEFT_OK, "%s", st->error);
	free_evs(evs, 2);
	weft_events_filter f = { .run_id = "L" };
	cr_assert_eq(weft_store_list_events(st, &f, &out), WEFT_OK);
	cr_expect_eq(json_array_size(out), 2, "each event once");
	json_decref(out);
	weft_event next[] = { ev(3, "L", 3, WEFT_EV_STEP_DISPATCHED, "a", json_object()) };
	cr_assert_eq(weft_store_append(st, next, 1), WEFT_OK, "%s", st->error);
	free_evs(next, 1);
	weft_store_max_event_id(st, &max);
	cr_expect_eq(max, 3);
}

// Two coordinators starting at once on an empty database: both open it,
// and each migration is applied once.
typedef struct opener {
	const char *url;
	weft_err    rv;
	char        err[512];
	weft_store *s;
} opener;

static void *
open_main(void *arg)
{
	opener *o = arg;
	o->rv = weft_store_open(&o->s, o->url, NULL, false, o->err, sizeof(o->err));
	return (NULL);
}

Test(store, concurrent_first_open_migrates_once)
{
	char      url[512];
	opener    o[4];
	pthread_t th[4];
	uint64_t  n = 0;

	new_db(url, sizeof(url));
	for (int i = 0; i < 4; i++) {
		memset(&o[i], 0, sizeof(o[i]));
		o[i].url = url;
		pthread_create(&th[i], NULL, open_main, &o[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		cr_expect_eq(o[i].rv, WEFT_OK, "opener %d: %s", i, o[i].err);
	}
	for (int i = 0; i < 4; i++) {
		if (o[i].s != NULL && n == 0) {
			cr_assert_eq(o[i].s->ops->query(o[i].s,
			                 "SELECT COUNT(*) FROM schema_migrations",
			                 NULL, 0, weft_store_u64_row, &n),
			    WEFT_OK);
		}
		weft_store_close(o[i].s);
	}
	uint64_t known = 0;
	for (const weft_migration *m = weft_store_is_pg(url)
	         ? weft_migrations_postgres
	         : weft_migrations_sqlite;
	     m->sql != NULL; m++) {
		known++;
	}
	cr_expect_eq(n, known, "each migration applied once");
}

// The same with processes, as two coordinators started together are: each
// opens the new database on its own connection and must succeed (SQLite
// gives the second a "database is locked" while the first switches the
// new file to WAL, unless the store waits it out).
Test(store, concurrent_first_open_processes)
{
	char  url[512];
	pid_t pid[4];

	new_db(url, sizeof(url));
	for (int i = 0; i < 4; i++) {
		if ((pid[i] = fork()) == 0) {
			weft_store *s;
			char        err[512];
			if (weft_store_open(&s, url, NULL, false, err, sizeof(err)) !=
			    WEFT_OK) {
				fprintf(stderr, "opener %d: %s\n", i, err);
				_exit(1);
			}
			weft_store_close(s);
			_exit(0);
		}
		cr_assert_gt(pid[i], 0);
	}
	for (int i = 0; i < 4; i++) {
		int ws;
		cr_assert_eq(waitpid(pid[i], &ws, 0), pid[i]);
		cr_expect(WIFEXITED(ws) && WEXITSTATUS(ws) == 0,
		    "opener %d failed (status %d)", i, ws);
	}
}

// indexes_named counts the indexes of st (on url) among names, a SQL list
// of quoted names.
static uint64_t
indexes_named(const char *url, const char *names)
{
	char     sql[256];
	uint64_t n = 99;

	snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM %s IN (%s)",
	    weft_store_is_pg(url) ? "pg_indexes WHERE indexname"
	                          : "sqlite_master WHERE name",
	    names);
	cr_assert_eq(st->ops->query(st, sql, NULL, 0, weft_store_u64_row, &n),
	    WEFT_OK, "%s", st->error);
	return (n);
}

// plan_row appends each row's cells to the plan text (arg, 4096 bytes).
static int
plan_row(void *arg, int ncols, const char **c)
{
	char *plan = arg;

	for (int i = 0; i < ncols; i++) {
		size_t o = strlen(plan);
		snprintf(plan + o, 4096 - o, "%s ", c[i] != NULL ? c[i] : "");
	}
	return (0);
}

// ---- retention: weft_store_delete_runs ----

// ended_run writes run id: queued (its definition's retain_ms when > 0,
// sealed secrets when secrets is set), started, one step that succeeded,
// and end (an ending event, or WEFT_EV_COUNT for a run still running)
// stamped at ts. *next is the next event id.
static void
ended_run(uint64_t *next, const char *id, enum weft_event_type end, int64_t ts,
    int64_t retain_ms, const char *secrets)
{
	json_t *q = json_pack("{s:s, s:i, s:{}, s:{}, s:i}", "definition",
	    "two", "version", 1, "input", "params", "steps", 1);
	if (retain_ms > 0) {
		json_object_set_new(q, "retain_ms", json_integer(retain_ms));
	}
	uint64_t   i     = *next;
	weft_event evs[] = {
		ev(i, id, 1, WEFT_EV_RUN_QUEUED, NULL, q),
		ev(i + 1, id, 2, WEFT_EV_RUN_STARTED, NULL, json_object()),
		ev(i + 2, id, 3, WEFT_EV_STEP_READY, "a", json_object()),
		ev(i + 3, id, 4, WEFT_EV_STEP_SUCCEEDED, "a",
		    json_pack("{s:i}", "output", 1)),
		ev(i + 4, id, 5, end == WEFT_EV_COUNT ? WEFT_EV_STEP_STARTED : end,
		    end == WEFT_EV_COUNT ? "b" : NULL, json_object()),
	};
	size_t n = sizeof(evs) / sizeof(evs[0]);
	for (size_t k = 0; k < n; k++) {
		evs[k].ts_ms = ts;
	}
	evs[0].secrets = secrets;
	cr_assert_eq(weft_store_append(st, evs, n), WEFT_OK, "%s", st->error);
	free_evs(evs, n);
	*next = i + n;
}

static uint64_t
count_sql(const char *sql, const char *arg)
{
	uint64_t    n    = 0;
	const char *p[1] = { arg };
	cr_assert_eq(st->ops->query(st, sql, p, arg ? 1 : 0, weft_store_u64_row,
	                 &n),
	    WEFT_OK, "%s", st->error);
	return (n);
}

// run_left says whether run id is still in the store, and checks that a
// deleted run left nothing behind: no events, steps or secrets.
static bool
run_left(const char *id)
{
	json_t *run;
	char   *box = NULL;

	if (weft_store_get_run(st, id, &run) == WEFT_OK) {
		json_decref(run);
		return (true);
	}
	cr_expect_eq(count_sql("SELECT COUNT(*) FROM events WHERE run_id = ?", id),
	    0, "events of deleted run %s", id);
	cr_expect_eq(count_sql("SELECT COUNT(*) FROM run_events WHERE run_id = "
	                       "?", id),
	    0, "run index entries of deleted run %s", id);
	cr_expect_eq(count_sql("SELECT COUNT(*) FROM steps WHERE run_id = ?", id),
	    0, "steps of deleted run %s", id);
	cr_assert_eq(weft_store_get_secrets(st, id, &box), WEFT_OK);
	cr_expect_null(box, "secrets of deleted run %s", id);
	free(box);
	return (false);
}

// delete_runs runs one batch for f with an audit event numbered *next.
static uint32_t
delete_runs(weft_delete_filter *f, uint64_t *next, bool *more)
{
	uint32_t   n  = 0;
	bool       m  = false;
	weft_event au = { .id = *next, .ts_ms = 9999999,
		.type = WEFT_EV_RUNS_DELETED, .node = "coord",
		.data = json_object() };

	cr_assert_eq(weft_store_delete_runs(st, f, &au, &n, &m), WEFT_OK, "%s",
	    st->error);
	if (n > 0) {
		cr_expect_eq(json_integer_value(json_object_get(au.data, "count")),
		    n);
		(*next)++;
	}
	json_decref(au.data);
	if (more != NULL) {
		*more = m;
	}
	return (n);
}

// Retention drops the time index's buckets below the oldest event left.
Test(store, delete_runs_prunes_the_time_index)
{
	uint64_t next = 1;

	ended_run(&next, "A", WEFT_EV_RUN_SUCCEEDED, 2000, 0, NULL);
	next = 2 * WEFT_EVENT_TIME_BUCKET + 5;
	ended_run(&next, "B", WEFT_EV_RUN_SUCCEEDED, 5000, 0, NULL);
	cr_expect_eq(count_sql("SELECT COUNT(*) FROM event_time", NULL), 2);

	weft_delete_filter f = { .before_ms = 3000 };
	cr_expect_eq(delete_runs(&f, &next, NULL), 1);
	cr_expect_eq(count_sql("SELECT COUNT(*) FROM event_time WHERE bucket "
	                       "= 0",
	                 NULL),
	    0, "A's bucket, empty now");
	cr_expect_eq(count_sql("SELECT COUNT(*) FROM event_time WHERE bucket "
	                       "= 2",
	                 NULL),
	    1, "B's (and the audit event's)");
	json_t            *out;
	weft_events_filter g = { .since_ms = 4000, .until_ms = 6000 };
	cr_assert_eq(weft_store_list_events(st, &g, &out), WEFT_OK, "%s",
	    st->error);
	cr_expect_eq(json_array_size(out), 5, "B's events, found by time");
	json_decref(out);
}

Test(store, delete_runs_before_with_and_without_status)
{
	uint64_t next = 1;
	json_t  *out;

	ended_run(&next, "A", WEFT_EV_RUN_SUCCEEDED, 2000, 0, "c2VhbGVk");
	ended_run(&next, "B", WEFT_EV_RUN_FAILED, 2100, 0, NULL);
	ended_run(&next, "C", WEFT_EV_COUNT, 1000, 0, NULL); // running
	ended_run(&next, "D", WEFT_EV_RUN_SUCCEEDED, 5000, 0, NULL);
	ended_run(&next, "E", WEFT_EV_RUN_CANCELLED, 2900, 0, NULL);

	weft_delete_filter f = { .before_ms = 3000, .status = "failed" };
	cr_expect_eq(delete_runs(&f, &next, NULL), 1);
	cr_expect_not(run_left("B"));
	cr_expect(run_left("A") && run_left("C") && run_left("D") &&
	    run_left("E"));

	f.status = NULL;
	cr_expect_eq(delete_runs(&f, &next, NULL), 2, "A and E");
	cr_expect_not(run_left("A"));
	cr_expect_not(run_left("E"));
	cr_expect(run_left("C"), "a running run is never deleted");
	cr_expect(run_left("D"), "ended after the cutoff");
	cr_expect_eq(count_sql("SELECT COUNT(*) FROM events WHERE run_id = ?",
	                 "D"),
	    5);

	// Nothing left to delete: no event, no count.
	cr_expect_eq(delete_runs(&f, &next, NULL), 0);
	// The audit trail: one runs_deleted per batch that deleted runs.
	weft_events_filter ef = { .types = (const char *[]) { "runs_deleted" },
		.ntypes = 1 };
	cr_assert_eq(weft_store_list_events(st, &ef, &out), WEFT_OK);
	cr_expect_eq(json_array_size(out), 2);
	json_decref(out);
	cr_expect(weft_store_status_ended("timed_out"));
	cr_expect_not(weft_store_status_ended("running"));
	cr_expect_not(weft_store_status_ended("queued"));
}

// Deleting the run that holds the newest event must not let a restarted
// engine (which numbers from the store's largest id) reuse that id.
Test(store, delete_keeps_event_ids_above_every_id_used)
{
	uint64_t    next = 1, max = 0;
	char        err[512];
	weft_store *again;

	ended_run(&next, "OLD", WEFT_EV_RUN_SUCCEEDED, 2000, 0, NULL);
	uint64_t used = next - 1; // the newest id, OLD's run_succeeded
	weft_delete_filter f = { .before_ms = 3000 };
	cr_assert_eq(delete_runs(&f, &next, NULL), 1);
	weft_store_close(st);
	st = NULL;
	cr_assert_eq(weft_store_open(&again, dbpath, NULL, false, err,
	                 sizeof(err)),
	    WEFT_OK, "%s", err);
	st = again;
	cr_assert_eq(weft_store_max_event_id(st, &max), WEFT_OK);
	cr_expect_gt(max, used, "next id after a restart: %llu > %llu",
	    (unsigned long long) max + 1, (unsigned long long) used);
}

Test(store, delete_runs_in_batches_oldest_first)
{
	uint64_t next = 1;
	bool     more = false;
	char     id[16];
	uint32_t total = 0, calls = 0;

	for (int i = 0; i < 25; i++) {
		snprintf(id, sizeof(id), "B%02d", i);
		ended_run(&next, id, WEFT_EV_RUN_SUCCEEDED, 2000 + i, 0, NULL);
	}
	weft_delete_filter f = { .before_ms = 2010, .max_runs = 4 };
	do {
		uint32_t n = delete_runs(&f, &next, &more);
		cr_assert_leq(n, 4);
		total += n;
		calls++;
	} while (more && calls < 20);
	cr_expect_eq(total, 10, "B00..B09 ended before 2010");
	cr_expect_eq(calls, 3, "4 + 4 + 2");
	cr_expect_not(run_left("B09"));
	cr_expect(run_left("B10"));

	// An event budget: each run costs ~8 estimated events here, so a
	// budget of 20 takes two at a time; one run always goes.
	f.before_ms  = 3000;
	f.max_runs   = 0;
	f.max_events = 20;
	cr_expect_eq(delete_runs(&f, &next, &more), 2);
	cr_expect(more);
	f.max_events = 1;
	cr_expect_eq(delete_runs(&f, &next, &more), 1);
}

static bool
skip_keep(void *arg, const char *id)
{
	return (strcmp(arg, id) == 0);
}

// A definition's retain: expire_ms = ended_ms + retain_ms; the --retain
// cutoff spares runs that carry their own.
Test(store, own_retain_expires_and_overrides_the_cutoff)
{
	uint64_t next = 1;

	ended_run(&next, "SHORT", WEFT_EV_RUN_SUCCEEDED, 2000, 100, NULL);
	ended_run(&next, "LONG", WEFT_EV_RUN_FAILED, 2000, 1000000, NULL);
	ended_run(&next, "PLAIN", WEFT_EV_RUN_SUCCEEDED, 2000, 0, NULL);
	ended_run(&next, "KEPT", WEFT_EV_RUN_SUCCEEDED, 2000, 0, NULL);

	weft_delete_filter f = { .expire_ms = 2050 };
	cr_expect_eq(delete_runs(&f, &next, NULL), 0, "SHORT expires at 2100");
	f.expire_ms = 2101;
	cr_expect_eq(delete_runs(&f, &next, NULL), 1);
	cr_expect_not(run_left("SHORT"));

	// --retain's cutoff with own_retain: LONG keeps its own retain.
	f = (weft_delete_filter) { .expire_ms = 3000, .before_ms = 3000,
		.own_retain = true, .skip = skip_keep, .skip_arg = "KEPT" };
	cr_expect_eq(delete_runs(&f, &next, NULL), 1, "PLAIN only");
	cr_expect_not(run_left("PLAIN"));
	cr_expect(run_left("LONG"));
	cr_expect(run_left("KEPT"), "the engine holds it: skipped");
	// An explicit delete (no own_retain) takes LONG too.
	f = (weft_delete_filter) { .before_ms = 3000 };
	cr_expect_eq(delete_runs(&f, &next, NULL), 2);
	cr_expect_not(run_left("LONG"));
}

// mixed_batch fills evs with two runs whose events interleave, one of
// which fails, is retried and runs its failed step again, all in one
// batch's worth of events; returns the count.
static size_t
mixed_batch(weft_event *evs)
{
	size_t   n = 0;
	uint64_t id = 1;

	evs[n++] = ev(id++, NULL, 0, WEFT_EV_DEFINITION_REGISTERED, NULL,
	    json_pack("{s:s, s:i, s:{s:s, s:[{s:s}, {s:s}]}}", "name", "mix",
	        "version", 1, "definition", "name", "mix", "steps", "id", "a",
	        "id", "b"));
	for (int r = 0; r < 2; r++) {
		const char *run = r ? "MB" : "MA";
		evs[n++] = ev(id++, run, 1, WEFT_EV_RUN_QUEUED, NULL,
		    json_pack("{s:s, s:i, s:{}, s:{}, s:i}", "definition", "mix",
		        "version", 1, "input", "params", "steps", 2));
		evs[n++] = ev(id++, run, 2, WEFT_EV_RUN_STARTED, NULL,
		    json_object());
	}
	evs[n++] = ev(id++, "MA", 3, WEFT_EV_STEP_SUCCEEDED, "a",
	    json_pack("{s:i}", "output", 1));
	evs[n++] = ev(id++, "MB", 3, WEFT_EV_STEP_SUCCEEDED, "a",
	    json_pack("{s:i}", "output", 2));
	evs[n++] = ev(id++, "MA", 4, WEFT_EV_STEP_FAILED, "b",
	    json_pack("{s:s}", "error", "flaky"));
	evs[n++] = ev(id++, "MB", 4, WEFT_EV_STEP_SUCCEEDED, "b",
	    json_pack("{s:i}", "output", 3));
	evs[n++] = ev(id++, "MA", 5, WEFT_EV_RUN_FAILED, NULL,
	    json_pack("{s:s}", "error", "step b failed"));
	evs[n++] = ev(id++, "MB", 5, WEFT_EV_RUN_SUCCEEDED, NULL,
	    json_pack("{s:{}}", "output"));
	evs[n++] = ev(id++, "MA", 6, WEFT_EV_RUN_RETRIED, NULL, json_object());
	evs[n++] = ev(id++, "MA", 7, WEFT_EV_STEP_READY, "b", json_object());
	evs[n++] = ev(id++, "MA", 8, WEFT_EV_STEP_DISPATCHED, "b",
	    json_object());
	return (n);
}

// The projections of a batch are those of its events written one batch
// each, whatever run events sit between the step events: steps_done after
// a retry counts the steps that succeeded before it, in the same batch.
Test(store, one_batch_projects_as_one_event_a_batch)
{
	weft_event  evs[32];
	size_t      n = mixed_batch(evs);
	weft_store *one;
	char        url[512], err[512];

	new_db(url, sizeof(url));
	cr_assert_eq(weft_store_open(&one, url, NULL, false, err, sizeof(err)),
	    WEFT_OK, "%s", err);
	cr_assert_eq(weft_store_append(st, evs, n), WEFT_OK, "%s", st->error);
	for (size_t i = 0; i < n; i++) {
		cr_assert_eq(weft_store_append(one, &evs[i], 1), WEFT_OK, "%s",
		    one->error);
	}
	free_evs(evs, n);
	for (int r = 0; r < 2; r++) {
		const char *run = r ? "MB" : "MA";
		json_t     *got, *want;
		cr_assert_eq(weft_store_get_run(st, run, &got), WEFT_OK);
		cr_assert_eq(weft_store_get_run(one, run, &want), WEFT_OK);
		char *g = json_dumps(got, JSON_SORT_KEYS | JSON_COMPACT);
		char *w = json_dumps(want, JSON_SORT_KEYS | JSON_COMPACT);
		cr_expect_str_eq(g, w, "run %s: one batch gives %s, one event "
		                       "a batch %s", run, g, w);
		free(g);
		free(w);
		json_decref(got);
		json_decref(want);
	}
	json_t *ma;
	cr_assert_eq(weft_store_get_run(st, "MA", &ma), WEFT_OK);
	cr_expect_eq(json_integer_value(json_object_get(ma, "steps_done")), 1,
	    "after the retry only a has ended");
	json_decref(ma);
	weft_store_close(one);
}

// A run admitted at once is inserted already started when its run_started
// follows its run_queued in the batch: the row is the one the two events
// written one by one would leave, and nothing else is folded. Each case is
// a sequence of run events (Q = queued, S = started, T = queued with tags)
// on runs A and B, cut into batches at '|'; then what each row says.
typedef struct {
	const char *events; // e.g. "QA SA | QB"
	const char *a_status, *b_status; // NULL: no row
	int64_t     a_started, b_started; // the started_ms (ts), 0: NULL
} fold_case;

static void
fold_check(const char *run, const char *status, int64_t started,
    const char *events)
{
	json_t *r = NULL;

	if (status == NULL) {
		cr_expect_eq(weft_store_get_run(st, run, &r), WEFT_ENOENT,
		    "%s: run %s has a row", events, run);
		json_decref(r);
		return;
	}
	cr_assert_eq(weft_store_get_run(st, run, &r), WEFT_OK, "%s: run %s",
	    events, run);
	cr_expect_str_eq(json_string_value(json_object_get(r, "status")),
	    status, "%s: run %s", events, run);
	json_t *sm = json_object_get(r, "started_ms");
	cr_expect_eq(json_is_integer(sm) ? json_integer_value(sm) : 0, started,
	    "%s: run %s started_ms", events, run);
	cr_expect_eq(json_integer_value(json_object_get(r, "created_ms")) > 0,
	    true);
	if (strstr(events, "T") != NULL && strcmp(run, "FA") == 0) {
		cr_expect_str_eq(json_string_value(json_object_get(
		                     json_object_get(r, "tags"), "team")),
		    "x", "%s: tags", events);
	}
	json_decref(r);
}

Test(store, a_run_admitted_at_once_is_inserted_started)
{
	// Event i (from 1) has ts 1000 + i + 1 (ev() and the definition's
	// id 1).
	static const fold_case cases[] = {
		{ "QA SA", "running", NULL, 1003, 0 },
		{ "QA | SA", "running", NULL, 1003, 0 },
		{ "QA", "queued", NULL, 0, 0 },
		{ "QA QB SA", "running", "queued", 1004, 0 },
		{ "QA QB SB SA", "running", "running", 1005, 1004 },
		{ "QB QA SB", "queued", "running", 0, 1004 },
		{ "QB | QA SB", "queued", "running", 0, 1004 },
		{ "TA SA", "running", NULL, 1003, 0 },
		{ "QA SA QB | SB", "running", "running", 1003, 1005 },
	};

	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		const fold_case *k = &cases[c];
		weft_event       evs[16];
		size_t           n = 0;
		uint64_t         id = 1, seq[2] = { 0, 0 };
		char             url[512], err[512];

		weft_store_close(st);
		new_db(url, sizeof(url));
		cr_assert_eq(weft_store_open(&st, url, NULL, false, err,
		                 sizeof(err)),
		    WEFT_OK, "%s", err);
		evs[n++] = ev(id++, NULL, 0, WEFT_EV_DEFINITION_REGISTERED, NULL,
		    json_pack("{s:s, s:i, s:{s:s, s:[{s:s}]}}", "name", "f",
		        "version", 1, "definition", "name", "f", "steps", "id",
		        "a"));
		for (const char *t = k->events;; t++) {
			if (*t == '|' || *t == '\0') {
				cr_assert_eq(weft_store_append(st, evs, n), WEFT_OK,
				    "%s: %s", k->events, st->error);
				free_evs(evs, n);
				n = 0;
				if (*t == '\0') {
					break;
				}
				continue;
			}
			if (*t == ' ') {
				continue;
			}
			const char *run = t[1] == 'A' ? "FA" : "FB";
			uint64_t   *sq  = &seq[t[1] == 'A' ? 0 : 1];
			if (t[0] == 'S') {
				evs[n++] = ev(id++, run, ++*sq, WEFT_EV_RUN_STARTED,
				    NULL, json_object());
			} else {
				json_t *d = json_pack("{s:s, s:i, s:{}, s:{}, s:i}",
				    "definition", "f", "version", 1, "input",
				    "params", "steps", 1);
				if (t[0] == 'T') {
					json_object_set_new(d, "tags",
					    json_pack("{s:s}", "team", "x"));
				}
				evs[n++] = ev(id++, run, ++*sq, WEFT_EV_RUN_QUEUED,
				    NULL, d);
			}
			t++;
		}
		fold_check("FA", k->a_status, k->a_started, k->events);
		fold_check("FB", k->b_status, k->b_started, k->events);
	}
}

// A step the coordinator holds starts with step_started and no node (it
// is never dispatched): its start time is that event's.
Test(store, held_step_starts_at_its_started_event)
{
	json_t    *run, *a = NULL;
	size_t     i;
	weft_event evs[] = {
		ev(1, NULL, 0, WEFT_EV_DEFINITION_REGISTERED, NULL,
		    json_pack("{s:s, s:i, s:{s:s, s:[{s:s, s:s}]}}", "name",
		        "held", "version", 1, "definition", "name", "held",
		        "steps", "id", "a", "type", "delay")),
		ev(2, "RH", 1, WEFT_EV_RUN_QUEUED, NULL,
		    json_pack("{s:s, s:i, s:{}, s:{}, s:i}", "definition", "held",
		        "version", 1, "input", "params", "steps", 1)),
		ev(3, "RH", 2, WEFT_EV_RUN_STARTED, NULL, json_object()),
		ev(4, "RH", 3, WEFT_EV_STEP_READY, "a", json_object()),
		ev(5, "RH", 4, WEFT_EV_STEP_STARTED, "a", json_object()),
	};
	size_t n = sizeof(evs) / sizeof(evs[0]);

	evs[4].node = NULL;
	cr_assert_eq(weft_store_append(st, evs, n), WEFT_OK, "%s", st->error);
	free_evs(evs, n);
	cr_assert_eq(weft_store_get_run(st, "RH", &run), WEFT_OK);
	json_array_foreach (json_object_get(run, "steps"), i, a) {
		break;
	}
	cr_assert_not_null(a);
	cr_expect_str_eq(json_string_value(json_object_get(a, "status")),
	    "running");
	cr_expect_eq(json_integer_value(json_object_get(a, "started_ms")),
	    1005, "%s", json_dumps(a, 0));
	json_decref(run);
}

// A retried run is running again: its old end no longer counts.
Test(store, retried_run_is_not_expired)
{
	uint64_t next = 1;

	ended_run(&next, "RT", WEFT_EV_RUN_FAILED, 2000, 100, NULL);
	weft_event r[] = { ev(next, "RT", 6, WEFT_EV_RUN_RETRIED, NULL,
		json_object()) };
	cr_assert_eq(weft_store_append(st, r, 1), WEFT_OK, "%s", st->error);
	free_evs(r, 1);
	next++;
	weft_delete_filter f = { .expire_ms = 99999, .before_ms = 99999 };
	cr_expect_eq(delete_runs(&f, &next, NULL), 0);
	cr_expect(run_left("RT"));
}

// ---- large values (blob.h) ----

// big_text returns a JSON string value whose compact text is exactly len
// bytes (quotes included), of 'x' with a multi-byte character every so
// often so that chunk cuts must respect UTF-8.
static json_t *
big_value(size_t len, char fill)
{
	char  *s = malloc(len + 1);
	json_t *v;
	size_t n = len - 2; // the quotes

	memset(s, fill, n);
	// "é" is two bytes: put some across the first chunk boundary.
	for (size_t i = WEFT_BLOB_CHUNK - 5; i + 1 < n && i < WEFT_BLOB_CHUNK + 5;
	     i += 2) {
		s[i]     = (char) 0xC3;
		s[i + 1] = (char) 0xA9;
	}
	s[n] = '\0';
	v    = json_string(s);
	free(s);
	cr_assert_not_null(v);
	return (v);
}

// blob_ev builds an event whose data is {key: value} as the engine writes
// it: large members replaced by references (blob.h), the blobs attached.
static weft_event
blob_ev(uint64_t id, const char *run, uint64_t seq, enum weft_event_type type,
    const char *step, json_t *data)
{
	char      *text = json_dumps(data, JSON_COMPACT);
	weft_blob *b    = NULL;
	size_t     n    = 0;
	json_t    *refd = weft_blob_extract(data, strlen(text), &b, &n);

	free(text);
	if (refd != NULL) {
		json_decref(data);
		data = refd;
	}
	weft_event e = ev(id, run, seq, type, step, data);
	e.blobs      = b;
	e.nblobs     = n;
	return (e);
}

static void
free_blob_evs(weft_event *evs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		weft_blob_free((weft_blob *) evs[i].blobs, evs[i].nblobs);
	}
	free_evs(evs, n);
}

Test(store, blob_threshold_is_exact)
{
	weft_blob *b = NULL;
	size_t     n = 0;
	json_t    *at = json_pack("{s:o, s:i}", "output",
            big_value(WEFT_BLOB_THRESHOLD, 'a'), "small", 1);
	json_t    *over = json_pack("{s:o, s:i}", "output",
            big_value(WEFT_BLOB_THRESHOLD + 1, 'a'), "small", 1);
	char      *t1 = json_dumps(at, JSON_COMPACT);
	char      *t2 = json_dumps(over, JSON_COMPACT);
	json_t    *r;

	cr_expect_null(weft_blob_extract(at, strlen(t1), &b, &n),
	    "a value of exactly the threshold stays inline");
	cr_expect_eq(n, 0);
	cr_assert_not_null(r = weft_blob_extract(over, strlen(t2), &b, &n),
	    "one byte over the threshold is a blob");
	cr_assert_eq(n, 1);
	json_t *ref = json_object_get(r, "output");
	cr_expect_str_eq(weft_blob_ref_hash(ref), b[0].hash);
	cr_expect_eq(json_integer_value(json_object_get(ref, "size")),
	    WEFT_BLOB_THRESHOLD + 1);
	cr_expect_eq(json_string_length(json_object_get(ref, "preview")),
	    WEFT_BLOB_PREVIEW);
	cr_expect_eq(json_integer_value(json_object_get(r, "small")), 1,
	    "small members stay as they are");
	cr_expect_eq(b[0].len, WEFT_BLOB_THRESHOLD + 1);
	cr_expect_null(weft_blob_ref_hash(json_object_get(r, "small")));
	json_decref(r);
	weft_blob_free(b, n);
	free(t1);
	free(t2);
	json_decref(at);
	json_decref(over);
}

Test(store, large_values_stored_once_referenced_everywhere)
{
	// Over a chunk: the value is stored in two chunks, cut between
	// whole UTF-8 characters.
	json_t *big = big_value(WEFT_BLOB_CHUNK + 100, 'o');
	char   *want = json_dumps(big, JSON_COMPACT | JSON_ENCODE_ANY);
	json_t *out, *run, *step;
	char   *text = NULL, *chunk = NULL;
	size_t  len;
	uint64_t size;
	uint32_t nch;

	write_run();
	weft_event evs[] = {
		blob_ev(8, "R1", 7, WEFT_EV_STEP_READY, "b", json_object()),
		blob_ev(9, "R1", 8, WEFT_EV_STEP_SUCCEEDED, "b",
		    json_pack("{s:O}", "output", big)),
		blob_ev(10, "R1", 9, WEFT_EV_RUN_SUCCEEDED, NULL,
		    json_pack("{s:{s:O}}", "output", "b", big)),
		blob_ev(11, "R2", 1, WEFT_EV_RUN_QUEUED, NULL,
		    json_pack("{s:s, s:i, s:{s:O}, s:{}, s:i}", "definition",
		        "two", "version", 1, "input", "same", big, "params",
		        "steps", 2)),
	};
	size_t n = sizeof(evs) / sizeof(evs[0]);
	cr_assert_eq(evs[1].nblobs, 1);
	cr_assert_eq(weft_store_append(st, evs, n), WEFT_OK, "%s", st->error);

	// The step's value: once in blobs, referenced from both runs.
	const char *h = evs[1].blobs[0].hash;
	cr_expect_eq(count_sql("SELECT COUNT(*) FROM blobs WHERE hash = ?", h), 1);
	cr_expect_eq(count_sql("SELECT COUNT(*) FROM blob_chunks WHERE hash = ?",
	                 h),
	    2);
	cr_assert_eq(weft_store_blob_get(st, h, &text, &len), WEFT_OK, "%s",
	    st->error);
	cr_expect_eq(len, strlen(want));
	cr_expect(memcmp(text, want, len) == 0, "the value comes back exact");
	free(text);
	cr_assert_eq(weft_store_blob_chunk(st, h, 1, &chunk, &size, &nch),
	    WEFT_OK, "%s", st->error);
	cr_expect_eq(size, strlen(want));
	cr_expect_eq(nch, 2);
	cr_expect_str_eq(chunk, want + (strlen(want) - strlen(chunk)));
	free(chunk);
	cr_expect_eq(weft_store_blob_chunk(st, h, 2, &chunk, &size, &nch),
	    WEFT_ENOENT);

	// Events and projections hold the reference.
	weft_events_filter f = { .run_id = "R1", .types = (const char *[]) {
		"step_succeeded" }, .ntypes = 1 };
	cr_assert_eq(weft_store_list_events(st, &f, &out), WEFT_OK);
	cr_expect_str_eq(weft_blob_ref_hash(json_object_get(json_object_get(
	                     json_array_get(out, 0), "data"), "output")),
	    h);
	json_decref(out);
	cr_assert_eq(weft_store_output(st, "R1", "b", &out), WEFT_OK);
	cr_expect_str_eq(weft_blob_ref_hash(out), h);
	json_decref(out);
	cr_expect_eq(weft_store_output(st, "R1", "zz", &out), WEFT_ENOENT);
	cr_assert_eq(weft_store_get_run(st, "R1", &run), WEFT_OK);
	step = json_array_get(json_object_get(run, "steps"), 1);
	cr_expect_str_eq(weft_blob_ref_hash(json_object_get(step, "output")), h);
	cr_expect_not_null(weft_blob_ref_hash(json_object_get(run, "output")));
	json_decref(run);

	// Recovery puts the real value back.
	cr_assert_eq(weft_store_unfinished_runs(st, "", 10, &out), WEFT_OK);
	cr_assert_eq(json_array_size(out), 1, "R2 is queued");
	json_t *r2 = json_array_get(out, 0);
	cr_expect_not_null(weft_blob_ref_hash(json_object_get(r2, "input")));
	cr_assert_eq(weft_store_blob_resolve(st, r2, "input"), WEFT_OK);
	cr_expect(json_equal(json_object_get(json_object_get(r2, "input"),
	                         "same"),
	    big));
	json_decref(out);
	free_blob_evs(evs, n);
	free(want);
	json_decref(big);
}

Test(store, deleting_runs_deletes_the_blobs_only_they_refer_to)
{
	uint64_t next = 1;
	json_t  *shared = big_value(WEFT_BLOB_THRESHOLD + 10, 's');
	json_t  *own    = big_value(WEFT_BLOB_THRESHOLD + 10, 'o');

	write_run();
	next = 8;
	ended_run(&next, "A", WEFT_EV_RUN_SUCCEEDED, 2000, 0, NULL);
	ended_run(&next, "B", WEFT_EV_RUN_SUCCEEDED, 2000, 0, NULL);
	weft_event evs[] = {
		blob_ev(next, "A", 6, WEFT_EV_STEP_PROGRESS, "a",
		    json_pack("{s:O, s:O}", "progress", shared, "other", own)),
		blob_ev(next + 1, "B", 6, WEFT_EV_STEP_PROGRESS, "a",
		    json_pack("{s:O}", "progress", shared)),
	};
	cr_assert_eq(weft_store_append(st, evs, 2), WEFT_OK, "%s", st->error);
	next += 2;
	cr_expect_eq(count_sql("SELECT COUNT(*) FROM blobs", NULL), 2);

	weft_delete_filter f = { .before_ms = 99999999 };
	st->ops->exec(st, "UPDATE runs SET ended_ms = 1 WHERE id = 'B'", NULL, 0);
	f.before_ms = 1500; // A ended at 2000: B only
	cr_expect_eq(delete_runs(&f, &next, NULL), 1);
	cr_expect_eq(count_sql("SELECT COUNT(*) FROM blobs", NULL), 2,
	    "A still refers to both");
	f.before_ms = 99999999;
	cr_expect_eq(delete_runs(&f, &next, NULL), 1);
	cr_expect_eq(count_sql("SELECT COUNT(*) FROM blobs", NULL), 0);
	cr_expect_eq(count_sql("SELECT COUNT(*) FROM blob_chunks", NULL), 0);
	cr_expect_eq(count_sql("SELECT COUNT(*) FROM blob_refs", NULL), 0);
	free_blob_evs(evs, 2);
	json_decref(shared);
	json_decref(own);
}

Test(store, definition_over_the_threshold_is_registered_whole)
{
	json_t *def = json_pack("{s:s, s:[{s:s, s:s, s:o}]}", "name", "fat",
	    "steps", "id", "a", "type", "noop", "with",
	    big_value(WEFT_BLOB_THRESHOLD + 5, 'd'));
	char   *want = json_dumps(def, JSON_COMPACT);
	char   *body = NULL;
	int64_t found;

	weft_event evs[] = { blob_ev(1, NULL, 0, WEFT_EV_DEFINITION_REGISTERED,
		NULL, json_pack("{s:s, s:i, s:O}", "name", "fat", "version", 1,
		          "definition", def)) };
	cr_assert_eq(evs[0].nblobs, 1);
	cr_assert_eq(weft_store_append(st, evs, 1), WEFT_OK, "%s", st->error);
	cr_assert_eq(weft_store_get_definition(st, "fat", 0, &body, &found),
	    WEFT_OK);
	cr_expect_str_eq(body, want, "the definitions table holds the body");
	free(body);
	free(want);
	free_blob_evs(evs, 1);
	json_decref(def);
}

// Pages are bounded in bytes as well as rows: events that each stay under
// the blob threshold but add up past WEFT_QUERY_BYTES come in several
// pages, each naming where the next starts; the last names nothing.
Test(store, event_pages_are_cut_by_bytes_and_name_the_next)
{
	enum { N = 200 };
	static weft_event evs[N];
	char    *pad = malloc(60001);
	json_t  *out;
	char     next[32];
	uint64_t after = 0, seen = 0;
	int      pages = 0;

	memset(pad, 'q', 60000);
	pad[60000] = '\0';
	write_run();
	for (int i = 0; i < N; i++) {
		evs[i] = ev(8 + (uint64_t) i, "R1", 7 + (uint64_t) i,
		    WEFT_EV_STEP_PROGRESS, "a", json_pack("{s:s}", "progress", pad));
	}
	cr_assert_eq(weft_store_append(st, evs, N), WEFT_OK, "%s", st->error);
	for (;;) {
		weft_events_filter f = { .run_id = "R1", .after = after,
			.limit = 10000, .next = next, .next_len = sizeof(next) };
		cr_assert_eq(weft_store_list_events(st, &f, &out), WEFT_OK);
		size_t n = json_array_size(out);
		pages++;
		seen += n;
		// write_run's six small events, and what 8 MiB holds.
		cr_expect_leq(n, 6 + WEFT_QUERY_BYTES / 60000,
		    "page %d: %zu events of 60 KB", pages, n);
		if (next[0] == '\0') {
			json_decref(out);
			break;
		}
		cr_expect_eq(strtoull(next, NULL, 10),
		    (uint64_t) json_integer_value(json_object_get(
		        json_array_get(out, n - 1), "id")));
		after = strtoull(next, NULL, 10);
		json_decref(out);
		cr_assert_lt(pages, 10);
	}
	cr_expect_geq(pages, 2, "12 MB do not fit one page");
	cr_expect_eq(seen, 6 + N, "every event, once: %llu in %d pages",
	    (unsigned long long) seen, pages);
	free_evs(evs, N);
	free(pad);
}

// A listing is a summary: never the input, params or output of a run
// (they may be megabytes), the error cut short, and a cut page's cursor.
Test(store, runs_listing_is_summaries_with_a_cursor)
{
	json_t *out;
	char    next[64];
	char   *longerr = malloc(5001);

	memset(longerr, 'e', 5000);
	longerr[5000] = '\0';
	write_run();
	weft_event evs[] = {
		ev(8, "R2", 1, WEFT_EV_RUN_QUEUED, NULL,
		    json_pack("{s:s, s:i, s:{s:s}, s:{s:i}, s:i}", "definition",
		        "two", "version", 1, "input", "k", "v", "params", "p", 1,
		        "steps", 2)),
		ev(9, "R2", 2, WEFT_EV_RUN_FAILED, NULL,
		    json_pack("{s:s}", "error", longerr)),
	};
	cr_assert_eq(weft_store_append(st, evs, 2), WEFT_OK, "%s", st->error);
	weft_runs_filter f = { .limit = 1, .next = next,
		.next_len = sizeof(next) };
	cr_assert_eq(weft_store_list_runs(st, &f, &out), WEFT_OK);
	cr_assert_eq(json_array_size(out), 1);
	json_t *r = json_array_get(out, 0);
	cr_expect_str_eq(json_string_value(json_object_get(r, "id")), "R2");
	cr_expect_null(json_object_get(r, "input"));
	cr_expect_null(json_object_get(r, "params"));
	cr_expect_null(json_object_get(r, "output"));
	cr_expect_eq(json_integer_value(json_object_get(r, "steps_total")), 2);
	cr_expect_lt(json_string_length(json_object_get(r, "error")),
	    WEFT_RUNS_ERROR_MAX + 4, "the error is cut");
	cr_expect_str_eq(next, "R2", "a cut page names its last run");
	json_decref(out);
	f.before = next;
	f.limit  = 100;
	char next2[64];
	f.next = next2;
	cr_assert_eq(weft_store_list_runs(st, &f, &out), WEFT_OK);
	cr_expect_eq(json_array_size(out), 1);
	cr_expect_str_eq(next2, "", "the last page names nothing");
	json_decref(out);
	free_evs(evs, 2);
	free(longerr);
}

// Status pages its steps in definition order after a step id cursor.
Test(store, status_pages_steps_after_a_cursor)
{
	json_t         *run, *statuses = NULL;
	char            next[64];
	weft_steps_page pg = { .limit = 1, .bytes = WEFT_QUERY_BYTES,
		.next = next, .next_len = sizeof(next), .statuses = &statuses };

	write_run();
	cr_assert_eq(weft_store_get_run_page(st, "R1", &pg, &run), WEFT_OK);
	cr_assert_eq(json_array_size(json_object_get(run, "steps")), 1);
	cr_expect_str_eq(next, "a");
	cr_expect_str_eq(json_string_value(json_object_get(statuses, "b")),
	    "pending", "statuses cover steps off the page");
	cr_expect_str_eq(json_string_value(json_object_get(statuses, "a")),
	    "failed");
	json_decref(run);
	json_decref(statuses);
	pg.after    = "a";
	pg.statuses = NULL;
	cr_assert_eq(weft_store_get_run_page(st, "R1", &pg, &run), WEFT_OK);
	cr_expect_str_eq(json_string_value(json_object_get(json_array_get(
	                     json_object_get(run, "steps"), 0), "id")),
	    "b");
	cr_expect_str_eq(next, "");
	json_decref(run);
	pg.after = "zz";
	cr_expect_eq(weft_store_get_run_page(st, "R1", &pg, &run), WEFT_EINVAL);
	cr_expect(strstr(st->error, "steps_after") != NULL, "%s", st->error);
	cr_expect_null(run);
}

// A time range starts its page at the smallest id in the range (read from
// events_ts), not at the first event in time: with the clock set back,
// an event with a later id may have an earlier time, and none of the
// events in the range may be skipped for it, nor any outside it shown.
Test(store, time_range_is_exact_when_the_clock_went_back)
{
	json_t  *out;
	int64_t  ts[] = { 5000, 9000, 7000, 3000, 8000, 9500, 6000 };
	size_t   n    = sizeof(ts) / sizeof(ts[0]);
	weft_event evs[7];

	for (size_t i = 0; i < n; i++) {
		evs[i]       = ev(i + 1, "R1", i + 1, WEFT_EV_RUN_PAUSED, NULL,
		          json_object());
		evs[i].ts_ms = ts[i];
	}
	cr_assert_eq(weft_store_append(st, evs, n), WEFT_OK, "%s", st->error);
	free_evs(evs, n);

	// [6000, 9000): ids 3 (7000), 5 (8000), 7 (6000); not 2 (9000).
	weft_events_filter f = { .since_ms = 6000, .until_ms = 9000 };
	cr_assert_eq(weft_store_list_events(st, &f, &out), WEFT_OK, "%s",
	    st->error);
	cr_assert_eq(json_array_size(out), 3, "%zu events",
	    json_array_size(out));
	int64_t want[] = { 3, 5, 7 };
	for (size_t i = 0; i < 3; i++) {
		cr_expect_eq(json_integer_value(json_object_get(
		                 json_array_get(out, i), "id")),
		    want[i]);
	}
	json_decref(out);

	// Open-ended: from 8000 on are ids 2, 5, 6, and a cursor past 2
	// still applies.
	weft_events_filter g = { .since_ms = 8000, .after = 2, .limit = 1 };
	char next[24];
	g.next     = next;
	g.next_len = sizeof(next);
	cr_assert_eq(weft_store_list_events(st, &g, &out), WEFT_OK, "%s",
	    st->error);
	cr_assert_eq(json_array_size(out), 1);
	cr_expect_eq(json_integer_value(json_object_get(json_array_get(out, 0),
	                 "id")),
	    5);
	cr_expect_str_eq(next, "5", "the page names the next one");
	json_decref(out);

	// Nothing in the range: nothing at all, not everything after it.
	weft_events_filter h = { .since_ms = 20000 };
	cr_assert_eq(weft_store_list_events(st, &h, &out), WEFT_OK);
	cr_expect_eq(json_array_size(out), 0);
	json_decref(out);
	weft_events_filter k = { .since_ms = 1, .until_ms = 3000 };
	cr_assert_eq(weft_store_list_events(st, &k, &out), WEFT_OK);
	cr_expect_eq(json_array_size(out), 0, "3000 is not before 3000");
	json_decref(out);
}

// dur_row counts step_durations rows (arg: uint64_t[2]: rows, and the
// sum of count * 1000 + sum_ms over them, a checksum of what was read).
static int
dur_row(void *arg, int ncols, const char **c)
{
	uint64_t *t = arg;

	cr_assert_eq(ncols, 6);
	t[0]++;
	t[1] += strtoull(c[3], NULL, 10) * 1000 + strtoull(c[4], NULL, 10);
	return (0);
}

// Learned durations go to the store many rows to a statement: more than
// one statement's worth, a short last one, and again as updates.
Test(store, learned_durations_round_trip)
{
	const size_t  n = 150; // 64 + 64 + 22
	weft_dur_rows rows = { .rows = calloc(n, sizeof(weft_dur_row)), .n = n };
	uint64_t      t[2] = { 0, 0 }, want = 0;

	cr_assert_not_null(rows.rows);
	for (size_t i = 0; i < n; i++) {
		char step[16];
		snprintf(step, sizeof(step), "s%zu", i);
		rows.rows[i] = (weft_dur_row) { .definition = strdup("d"),
			.version = 1, .step = strdup(step), .count = 1,
			.sum_ms = (int64_t) i, .samples = strdup("[1]") };
	}
	cr_assert_eq(weft_store_append_with(st, NULL, 0, &rows), WEFT_OK, "%s",
	    st->error);
	// Then the first 70 again, learned twice more.
	for (size_t i = 0; i < 70; i++) {
		rows.rows[i].count  = 3;
		rows.rows[i].sum_ms = 1000 + (int64_t) i;
	}
	rows.n = 70;
	cr_assert_eq(weft_store_append_with(st, NULL, 0, &rows), WEFT_OK, "%s",
	    st->error);
	rows.n = n;
	for (size_t i = 0; i < n; i++) {
		want += i < 70 ? 3000 + 1000 + i : 1000 + i;
	}
	cr_assert_eq(weft_store_load_durations(st, dur_row, t), WEFT_OK, "%s",
	    st->error);
	cr_expect_eq(t[0], n, "%llu rows", (unsigned long long) t[0]);
	cr_expect_eq(t[1], want, "what was read back");
	for (size_t i = 0; i < n; i++) {
		free(rows.rows[i].definition);
		free(rows.rows[i].step);
		free(rows.rows[i].samples);
	}
	free(rows.rows);
}

// A time range over several buckets of event_time (migration 0011): the
// page reads from the first bucket with an event in the range to the end
// of the last, and tests each time, so an event whose clock was set back
// into the range is found in a later bucket, and one of a bucket in the
// range but outside it in time is not shown.
Test(store, time_range_spans_buckets)
{
	const size_t n = 3 * WEFT_EVENT_TIME_BUCKET;
	weft_event  *evs = calloc(n, sizeof(*evs));
	char         name[16];
	json_t      *out;

	cr_assert_not_null(evs);
	// Bucket 0: times 0-1023; 1: 10000-11023; 2: 20000-..., except id
	// 2100 (bucket 2), stamped 10500 by a clock set back.
	for (size_t i = 0; i < n; i++) {
		uint64_t id = i + 1;
		evs[i]      = ev(id, NULL, 0, WEFT_EV_NODE_CONFLICT, NULL,
		         json_object());
		evs[i].ts_ms = (int64_t) (id / WEFT_EVENT_TIME_BUCKET) * 10000 +
		    (int64_t) (id % WEFT_EVENT_TIME_BUCKET);
		if (id == 2100) {
			evs[i].ts_ms = 10500;
		}
	}
	// Two commits, the second starting inside bucket 1.
	cr_assert_eq(weft_store_append(st, evs, 1500), WEFT_OK, "%s",
	    st->error);
	cr_assert_eq(weft_store_append(st, evs + 1500, n - 1500), WEFT_OK,
	    "%s", st->error);
	free_evs(evs, n);
	free(evs);

	// [10500, 10510): ids 1524-1533 of bucket 1, and 2100.
	weft_events_filter f = { .since_ms = 10500, .until_ms = 10510 };
	cr_assert_eq(weft_store_list_events(st, &f, &out), WEFT_OK, "%s",
	    st->error);
	cr_assert_eq(json_array_size(out), 11, "%zu events",
	    json_array_size(out));
	cr_expect_eq(json_integer_value(json_object_get(json_array_get(out, 0),
	                 "id")),
	    1524);
	cr_expect_eq(json_integer_value(json_object_get(json_array_get(out, 10),
	                 "id")),
	    2100, "the event whose clock went back");
	json_decref(out);

	// The first id of a bucket: id 1024, at 10000.
	weft_events_filter b1 = { .since_ms = 10000, .until_ms = 10001 };
	cr_assert_eq(weft_store_list_events(st, &b1, &out), WEFT_OK);
	cr_assert_eq(json_array_size(out), 1);
	cr_expect_eq(json_integer_value(json_object_get(json_array_get(out, 0),
	                 "id")),
	    WEFT_EVENT_TIME_BUCKET);
	json_decref(out);

	// Until alone, and since alone past every event.
	weft_events_filter g = { .until_ms = 3 };
	cr_assert_eq(weft_store_list_events(st, &g, &out), WEFT_OK);
	cr_expect_eq(json_array_size(out), 2, "ids 1 and 2 (times 1, 2)");
	json_decref(out);
	weft_events_filter h = { .since_ms = 40000 };
	snprintf(name, sizeof(name), "x");
	h.next     = name;
	h.next_len = sizeof(name);
	cr_assert_eq(weft_store_list_events(st, &h, &out), WEFT_OK);
	cr_expect_eq(json_array_size(out), 0);
	cr_expect_str_eq(name, "", "no next page");
	json_decref(out);
}

// Every type is found by --type, whether events_type_ts holds it (the
// rare ones) or not (the four every step has): the query adds the
// index's WHERE only for the rare ones.
Test(store, every_type_is_found_by_type)
{
	static const char *const types[] = { "step_ready", "step_dispatched",
		"step_started", "step_failed", "run_queued", "run_started",
		"definition_registered" };
	json_t *out;

	write_run();
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		const char        *t[1] = { types[i] };
		weft_events_filter f    = { .types = t, .ntypes = 1 };
		cr_assert_eq(weft_store_list_events(st, &f, &out), WEFT_OK,
		    "%s", st->error);
		cr_expect_eq(json_array_size(out), 1, "%s: %zu events", types[i],
		    json_array_size(out));
		json_decref(out);
	}
	// A hot and a rare type together: both.
	const char        *two[2] = { "step_ready", "step_failed" };
	weft_events_filter g      = { .types = two, .ntypes = 2 };
	cr_assert_eq(weft_store_list_events(st, &g, &out), WEFT_OK);
	cr_expect_eq(json_array_size(out), 2);
	json_decref(out);
}

// The text a rare-type query adds is the partial index's own: the planner
// takes events_type_ts for it (a drift between store.h and migration
// 0011 would make every such query read the whole log).
Test(store, rare_type_query_takes_the_type_index)
{
	char plan[4096] = "";

	if (weft_store_is_pg(dbpath)) {
		// An empty table is read whole unless sequential scans are
		// priced out.
		cr_assert_eq(st->ops->script(st, "SET enable_seqscan = off"),
		    WEFT_OK, "%s", st->error);
	}
	cr_assert_eq(indexes_named(dbpath, "'events_type_ts'"), 1);
	cr_assert_eq(st->ops->query(st,
	                 weft_store_is_pg(dbpath)
	                     ? "EXPLAIN SELECT id FROM events WHERE id > 0 AND "
	                       "type IN ('step_failed') AND "
	                       WEFT_EVENTS_TYPE_INDEXED " ORDER BY id LIMIT 10"
	                     : "EXPLAIN QUERY PLAN SELECT id FROM events WHERE "
	                       "id > 0 AND type IN ('step_failed') AND "
	                       WEFT_EVENTS_TYPE_INDEXED " ORDER BY id LIMIT 10",
	                 NULL, 0, plan_row, plan),
	    WEFT_OK, "%s", st->error);
	cr_expect(strstr(plan, "events_type_ts") != NULL, "plan: %s", plan);
}

// A database made by the binary before migration 6 (with its data) is
// upgraded in place: the two indexes go, the events stay, and the step
// and node filters still answer (by scanning).
Test(store, upgrade_from_version_5_keeps_the_events)
{
	char        url[512], err[512];
	weft_store *old;
	uint64_t    n = 0;
	json_t     *out;

	weft_store_close(st);
	st = NULL;
	new_db(url, sizeof(url));
	// The old binary: migrations 1-5 only, applied as it did.
	weft_err orv = weft_store_is_pg(url)
	    ? weft_store_pg_open(&old, url, false, err, sizeof(err))
	    : weft_store_sqlite_open(&old, url + 7, false, err, sizeof(err));
	cr_assert_eq(orv, WEFT_OK, "%s", err);
	const weft_migration *list = weft_store_is_pg(url)
	    ? weft_migrations_postgres
	    : weft_migrations_sqlite;
	cr_assert_eq(old->ops->script(old,
	                 "CREATE TABLE schema_migrations (version INTEGER "
	                 "PRIMARY KEY, name TEXT NOT NULL, applied_ms BIGINT "
	                 "NOT NULL)"),
	    WEFT_OK, "%s", old->error);
	for (const weft_migration *m = list; m->sql != NULL; m++) {
		char        ver[16];
		const char *p[2] = { ver, m->name };
		if (m->version > 5) {
			break;
		}
		snprintf(ver, sizeof(ver), "%d", m->version);
		cr_assert_eq(old->ops->script(old, m->sql), WEFT_OK, "%s",
		    old->error);
		cr_assert_eq(old->ops->exec(old,
		                 "INSERT INTO schema_migrations VALUES (?, ?, 0)",
		                 p, 2),
		    WEFT_OK, "%s", old->error);
	}
	// Its events, as it wrote them (today's write path also fills
	// event_time, which version 5 has not got).
	for (int i = 0; i < 4; i++) {
		static const char *const types[] = { "step_ready",
			"step_dispatched", "step_started", "step_failed" };
		char        id[8], ts[16];
		const char *p[4] = { id, ts, ts, types[i] };
		snprintf(id, sizeof(id), "%d", 3000 + i);
		snprintf(ts, sizeof(ts), "%d", 5000 + i);
		cr_assert_eq(old->ops->exec(old,
		                 "INSERT INTO events (id, run_id, seq, ts_ms, type, "
		                 "step_id, attempt, node) VALUES (?, 'R1', ? - "
		                 "4999, ?, ?, 'a', 1, 'w1')",
		                 p, 4),
		    WEFT_OK, "%s", old->error);
	}
	weft_store_close(old);

	cr_assert_eq(weft_store_open(&st, url, NULL, false, err, sizeof(err)),
	    WEFT_OK, "%s", err);
	cr_assert_eq(st->ops->query(st,
	                 "SELECT COUNT(*) FROM schema_migrations WHERE version "
	                 "= 6",
	                 NULL, 0, weft_store_u64_row, &n),
	    WEFT_OK, "%s", st->error);
	cr_expect_eq(n, 1, "migration 6 applied");
	cr_expect_eq(indexes_named(url, "'events_step', 'events_node'"), 0,
	    "the step and node indexes are gone");
	weft_events_filter f = { .step_id = "a", .node = "w1" };
	cr_assert_eq(weft_store_list_events(st, &f, &out), WEFT_OK, "%s",
	    st->error);
	cr_expect_eq(json_array_size(out), 4, "a's four events, kept");
	json_decref(out);

	// Migration 11: the time index covers the old events, and the type
	// index still finds the rare ones.
	weft_events_filter g = { .since_ms = 5001, .until_ms = 5003 };
	cr_assert_eq(weft_store_list_events(st, &g, &out), WEFT_OK, "%s",
	    st->error);
	cr_expect_eq(json_array_size(out), 2, "5001 and 5002 of the old log");
	json_decref(out);
	const char        *failed[] = { "step_failed" };
	weft_events_filter h = { .types = failed, .ntypes = 1 };
	cr_assert_eq(weft_store_list_events(st, &h, &out), WEFT_OK, "%s",
	    st->error);
	cr_expect_eq(json_array_size(out), 1, "the failure");
	json_decref(out);

	// Migration 13: the old events are in the run index, and a run's
	// query (which reads it below the mark) finds them all.
	uint64_t all = 0, indexed = 0;
	cr_assert_eq(st->ops->query(st,
	                 "SELECT COUNT(*) FROM events WHERE run_id = 'R1'", NULL,
	                 0, weft_store_u64_row, &all),
	    WEFT_OK, "%s", st->error);
	cr_assert_eq(st->ops->query(st,
	                 "SELECT COUNT(*) FROM run_events WHERE run_id = 'R1'",
	                 NULL, 0, weft_store_u64_row, &indexed),
	    WEFT_OK, "%s", st->error);
	cr_expect_geq(all, 4);
	cr_expect_eq(indexed, all, "R1's events copied into run_events");
	weft_events_filter r = { .run_id = "R1" };
	cr_assert_eq(weft_store_list_events(st, &r, &out), WEFT_OK, "%s",
	    st->error);
	cr_expect_eq(json_array_size(out), all, "R1's events by run");
	json_decref(out);
}

// ---- the projection lag (store.h) ----

// write_run_queued writes definition "two" (a, b), and run `run` of it
// queued and started: events first, first + 1, first + 2.
static void
write_run_queued(const char *run, uint64_t first)
{
	weft_event evs[] = {
		ev(first, NULL, 0, WEFT_EV_DEFINITION_REGISTERED, NULL,
		    json_pack("{s:s, s:i, s:{s:s, s:[{s:s, s:s}, {s:s, s:s}]}}",
		        "name", "two", "version", 1, "definition", "name", "two",
		        "steps", "id", "a", "type", "noop", "id", "b", "type",
		        "noop")),
		ev(first + 1, run, 1, WEFT_EV_RUN_QUEUED, NULL,
		    json_pack("{s:s, s:i, s:{}, s:{}, s:i}", "definition", "two",
		        "version", 1, "input", "params", "steps", 2)),
		ev(first + 2, run, 2, WEFT_EV_RUN_STARTED, NULL, json_object()),
	};
	cr_assert_eq(weft_store_append(st, evs, 3), WEFT_OK, "%s", st->error);
	free_evs(evs, 3);
}

static int
lag_text_row(void *arg, int ncols, const char **c)
{
	char **out = arg;

	if (ncols > 0 && *out == NULL) {
		*out = strdup(c[0] != NULL ? c[0] : "(null)");
	}
	return (1);
}

// append_one writes one event (data: an empty object) as its own batch.
static void
append_one(uint64_t id, const char *run, uint64_t seq,
    enum weft_event_type type, const char *step)
{
	weft_event e = ev(id, run, seq, type, step, json_object());
	cr_assert_eq(weft_store_append(st, &e, 1), WEFT_OK, "%s", st->error);
	free_evs(&e, 1);
}

// lag_run writes a run of two steps and takes a and b to running, a batch
// per event: with a lag, no step row is written.
static void
lag_run(void)
{
	write_run_queued("L1", 10);
	append_one(13, "L1", 3, WEFT_EV_STEP_READY, "a");
	append_one(14, "L1", 4, WEFT_EV_STEP_DISPATCHED, "a");
	append_one(15, "L1", 5, WEFT_EV_STEP_STARTED, "a");
	append_one(16, "L1", 6, WEFT_EV_STEP_READY, "b");
}

static char *
step_cell(const char *col, const char *step)
{
	char  sql[200];
	char *out = NULL;

	snprintf(sql, sizeof(sql),
	    "SELECT CAST(%s AS TEXT) FROM steps WHERE run_id = 'L1' AND "
	    "step_id = ?", col);
	cr_assert_eq(st->ops->query(st, sql, &step, 1, lag_text_row, &out),
	    WEFT_OK, "%s", st->error);
	return (out);
}

Test(store, lag_holds_the_steps_on_the_way_and_writes_their_ending)
{
	weft_store_lag_set(st, 60000);
	lag_run();
	cr_expect_eq(count_sql("SELECT COUNT(*) FROM steps", NULL), 0,
	    "ready, dispatched and running rows are held");
	cr_expect_eq(atomic_load(&st->lag_held), 2);
	cr_expect_eq(count_sql("SELECT steps_from FROM weft_database", NULL), 13,
	    "the first held event is marked");
	append_one(17, "L1", 7, WEFT_EV_STEP_SUCCEEDED, "a");
	char *s = step_cell("status", "a"), *t = step_cell("started_ms", "a"),
	     *n = step_cell("node", "a");
	cr_expect_str_eq(s, "succeeded", "an ending is written in its batch");
	cr_expect_str_eq(t, "1014", "with what the held row gathered");
	cr_expect_str_eq(n, "w1");
	free(s);
	free(t);
	free(n);
	cr_expect_eq(count_sql("SELECT steps_done FROM runs WHERE id = 'L1'",
	                 NULL), 1);
	// b's ready (16) is the first event still held; the mark may stay
	// earlier until a scan of the held rows (a replay from there
	// writes the same rows).
	uint64_t mark = count_sql("SELECT steps_from FROM weft_database", NULL);
	cr_expect(mark >= 13 && mark <= 16, "steps_from %llu",
	    (unsigned long long) mark);
	cr_assert_eq(weft_store_lag_flush(st), WEFT_OK, "%s", st->error);
	s = step_cell("status", "b");
	cr_expect_str_eq(s, "ready");
	free(s);
	cr_expect_eq(atomic_load(&st->lag_held), 0);
	cr_expect_eq(count_sql("SELECT steps_from FROM weft_database", NULL), 0);
}

Test(store, lag_writes_the_rows_older_than_the_lag_and_those_of_an_ended_run)
{
	weft_store_lag_set(st, 50);
	lag_run();
	cr_expect_eq(count_sql("SELECT COUNT(*) FROM steps", NULL), 0);
	weft_clock_sleep_ms(80);
	// Any batch writes the held rows past the lag.
	append_one(17, NULL, 0, WEFT_EV_WORKER_LOST, NULL);
	cr_expect_eq(count_sql("SELECT COUNT(*) FROM steps WHERE status IN "
	                       "('running', 'ready')", NULL), 2);
	cr_expect_eq(count_sql("SELECT steps_from FROM weft_database", NULL), 0);

	// A run's end writes its held rows with it, however young.
	weft_store_lag_set(st, 60000);
	append_one(18, "L1", 7, WEFT_EV_STEP_DISPATCHED, "b");
	cr_expect_eq(count_sql("SELECT COUNT(*) FROM steps WHERE status = "
	                       "'dispatched'", NULL), 0, "held");
	weft_event e = ev(19, "L1", 8, WEFT_EV_RUN_CANCELLED, NULL,
	    json_object());
	cr_assert_eq(weft_store_append(st, &e, 1), WEFT_OK, "%s", st->error);
	free_evs(&e, 1);
	cr_expect_eq(count_sql("SELECT COUNT(*) FROM steps WHERE status = "
	                       "'dispatched'", NULL), 1, "written with the end");
}

Test(store, lag_replay_writes_what_a_crash_left_held)
{
	char     err[512];
	size_t   rows = 99;
	weft_err rv;

	weft_store_lag_set(st, 60000);
	lag_run();
	append_one(17, "L1", 7, WEFT_EV_STEP_SUCCEEDED, "a");
	append_one(18, "L1", 8, WEFT_EV_STEP_DISPATCHED, "b");
	// A crash: the held rows die with the process, unwritten.
	weft_store_close(st);
	cr_assert_eq(weft_store_open(&st, dbpath, NULL, false, err, sizeof(err)),
	    WEFT_OK, "%s", err);
	cr_expect_eq(count_sql("SELECT COUNT(*) FROM steps", NULL), 1,
	    "a's ending only");
	rv = weft_store_lag_replay(st, &rows);
	cr_assert_eq(rv, WEFT_OK, "%s", st->error);
	cr_expect_eq(rows, 1, "b's row; a's ending was written already");
	char *s = step_cell("status", "b"), *t = step_cell("started_ms", "b"),
	     *a = step_cell("status", "a");
	cr_expect_str_eq(s, "dispatched");
	cr_expect_str_eq(t, "1018");
	cr_expect_str_eq(a, "succeeded", "an ending is not replayed over");
	free(s);
	free(t);
	free(a);
	cr_expect_eq(count_sql("SELECT steps_from FROM weft_database", NULL), 0);
	rv = weft_store_lag_replay(st, &rows);
	cr_expect_eq(rv, WEFT_OK);
	cr_expect_eq(rows, 0, "nothing left to replay");
}

Test(store, lag_keeps_the_held_rows_of_a_batch_that_fails)
{
	weft_store_lag_set(st, 60000);
	lag_run();
	// Run L1 queued again: the batch is refused at its last event, after
	// its step events took a's held row (to write) and b's (to hold).
	weft_event evs[3] = {
		ev(17, "L1", 7, WEFT_EV_STEP_SUCCEEDED, "a", json_object()),
		ev(18, "L1", 8, WEFT_EV_STEP_DISPATCHED, "b", json_object()),
		ev(19, "L1", 9, WEFT_EV_RUN_QUEUED, NULL,
		    json_pack("{s:s, s:i, s:{}, s:{}, s:i}", "definition", "two",
		        "version", 1, "input", "params", "steps", 2)),
	};
	cr_assert_neq(weft_store_append(st, evs, 3), WEFT_OK);
	free_evs(evs, 3);
	cr_expect_eq(atomic_load(&st->lag_held), 2, "as they were");
	cr_expect_eq(count_sql("SELECT COUNT(*) FROM steps", NULL), 0);
	cr_assert_eq(weft_store_lag_flush(st), WEFT_OK, "%s", st->error);
	char *a = step_cell("status", "a"), *b = step_cell("status", "b");
	cr_expect_str_eq(a, "running");
	cr_expect_str_eq(b, "ready");
	free(a);
	free(b);
}

// A batch whose commit answer was lost (the connection broke at COMMIT)
// may be durable or not; the held rows must follow what it became, found
// out before anything else is written: by the batch given again, or by a
// flush of the held rows that comes first (a reader's barrier, a stop).
// chaos_pg_test found it (seed 1796277666458): a's held `running` row,
// which the lost batch had written over with a's ending, stayed held and
// was written later over `succeeded`; a restarted coordinator then took
// a's result again, a second step_succeeded.
static weft_err
rollback_then_lose_answer(weft_store *s)
{
	s->ops->rollback(s);
	return (WEFT_EUNAVAIL);
}

Test(store, lag_follows_a_batch_whose_commit_answer_was_lost)
{
	static const struct {
		weft_err (*commit)(weft_store *);
		bool flush_first;
		const char *what;
	} cases[] = {
		{ commit_then_lose_answer, false, "committed, given again" },
		{ commit_then_lose_answer, true, "committed, a flush first" },
		{ rollback_then_lose_answer, false, "not committed, given again" },
		{ rollback_then_lose_answer, true, "not committed, a flush first" },
	};

	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		const weft_store_ops *ops   = st->ops;
		weft_store_ops        lying = *ops;
		const char           *id = cases[k].what;

		if (k > 0) {
			teardown();
			setup();
		}
		weft_store_lag_set(st, 60000);
		lag_run(); // a running, b ready: both held
		real_commit  = ops->commit;
		lying.commit = cases[k].commit;
		weft_event evs[2] = {
			ev(17, "L1", 7, WEFT_EV_STEP_SUCCEEDED, "a", json_object()),
			ev(18, "L1", 8, WEFT_EV_STEP_DISPATCHED, "b", json_object()),
		};
		st->ops = &lying;
		cr_expect_eq(weft_store_append(st, evs, 2), WEFT_EUNAVAIL, "%s", id);
		st->ops = ops;
		if (cases[k].flush_first) {
			cr_assert_eq(weft_store_lag_flush(st), WEFT_OK, "%s: %s", id,
			    st->error);
		}
		cr_assert_eq(weft_store_append(st, evs, 2), WEFT_OK, "%s: %s", id,
		    st->error);
		free_evs(evs, 2);
		cr_expect_eq(count_sql("SELECT COUNT(*) FROM events", NULL), 9,
		    "%s: each event once", id);
		cr_assert_eq(weft_store_lag_flush(st), WEFT_OK, "%s: %s", id,
		    st->error);
		char *a = step_cell("status", "a"), *b = step_cell("status", "b"),
		     *bt = step_cell("started_ms", "b");
		cr_expect_str_eq(a, "succeeded", "%s: a's ending stays", id);
		cr_expect_str_eq(b, "dispatched", "%s: b's held row is written", id);
		cr_expect_str_eq(bt, "1018", "%s", id);
		free(a);
		free(b);
		free(bt);
		cr_expect_eq(count_sql("SELECT steps_done FROM runs WHERE id = 'L1'",
		                 NULL), 1, "%s", id);
		cr_expect_eq(count_sql("SELECT steps_from FROM weft_database",
		                 NULL), 0, "%s: nothing left to replay", id);
	}
}

// The same for a flush of the held rows (a reader's barrier, an idle
// engine, a stop): committed or not, the rows held after it must be
// found by a restart's replay. Before, a flush committed but unanswered
// left the mark in memory stale: the next batch held b's new row without
// writing its mark, the database kept steps_from 0, and a crash lost it.
Test(store, lag_follows_a_flush_whose_commit_answer_was_lost)
{
	static const struct {
		weft_err (*commit)(weft_store *);
		const char *what;
	} cases[] = {
		{ commit_then_lose_answer, "committed" },
		{ rollback_then_lose_answer, "not committed" },
	};

	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		const weft_store_ops *ops   = st->ops;
		weft_store_ops        lying = *ops;
		const char           *id    = cases[k].what;
		char                  err[512];
		size_t                rows;

		if (k > 0) {
			teardown();
			setup();
		}
		weft_store_lag_set(st, 60000);
		lag_run(); // a running, b ready: both held
		append_one(17, "L1", 7, WEFT_EV_STEP_DISPATCHED, "b");
		real_commit  = ops->commit;
		lying.commit = cases[k].commit;
		st->ops      = &lying;
		cr_expect_eq(weft_store_lag_flush(st), WEFT_EUNAVAIL, "%s", id);
		st->ops = ops;
		append_one(18, "L1", 8, WEFT_EV_STEP_STARTED, "b");
		// A crash: what is held dies with the process.
		weft_store_close(st);
		cr_assert_eq(weft_store_open(&st, dbpath, NULL, false, err,
		                 sizeof(err)), WEFT_OK, "%s", err);
		cr_assert_eq(weft_store_lag_replay(st, &rows), WEFT_OK, "%s: %s",
		    id, st->error);
		char *a = step_cell("status", "a"), *b = step_cell("status", "b");
		cr_expect_str_eq(a, "running", "%s", id);
		cr_expect_str_eq(b, "running", "%s: b's last row was lost", id);
		free(a);
		free(b);
	}
}

// A map item's ending moves no steps_done and may carry no output: it is
// written in its batch all the same, as every ending is.
Test(store, lag_writes_an_items_ending_at_once)
{
	weft_store_lag_set(st, 60000);
	write_run_queued("L1", 10);
	append_one(13, "L1", 3, WEFT_EV_STEP_READY, "a[0]");
	append_one(14, "L1", 4, WEFT_EV_STEP_SUCCEEDED, "a[0]");
	append_one(15, "L1", 5, WEFT_EV_STEP_READY, "a[1]");
	append_one(16, "L1", 6, WEFT_EV_STEP_SKIPPED, "a[1]");
	cr_expect_eq(count_sql("SELECT COUNT(*) FROM steps WHERE status IN "
	                       "('succeeded', 'skipped')", NULL), 2);
	cr_expect_eq(atomic_load(&st->lag_held), 0);
}

// An event the replay cannot read (a type this binary does not know)
// stops it with the event named; nothing is written, the mark stays.
Test(store, lag_replay_refuses_an_unreadable_event_naming_it)
{
	char        err[512];
	size_t      rows = 99;
	const char *p[1] = { "bogus" };

	weft_store_lag_set(st, 60000);
	lag_run();
	weft_store_close(st);
	cr_assert_eq(weft_store_open(&st, dbpath, NULL, false, err, sizeof(err)),
	    WEFT_OK, "%s", err);
	cr_assert_eq(st->ops->exec(st, "UPDATE events SET type = ? WHERE id = 15",
	                 p, 1),
	    WEFT_OK, "%s", st->error);
	cr_expect_eq(weft_store_lag_replay(st, &rows), WEFT_ESTORE);
	cr_expect(strstr(st->error, "event 15") != NULL &&
	        strstr(st->error, "bogus") != NULL,
	    "%s", st->error);
	cr_expect_eq(count_sql("SELECT COUNT(*) FROM steps", NULL), 0);
	cr_expect_eq(count_sql("SELECT steps_from FROM weft_database", NULL), 13);
}

// ---- the run index (store.h, migration 0013) ----

// run_event_ids lists run's events through the store's query (after: the
// cursor; limit 0: the default) as "id,id,...".
static void
run_event_ids(const char *run, uint64_t after, uint32_t limit, char *out,
    size_t len)
{
	json_t            *rows;
	weft_events_filter f = { .run_id = run, .after = after, .limit = limit };
	size_t             o = 0;

	cr_assert_eq(weft_store_list_events(st, &f, &rows), WEFT_OK, "%s",
	    st->error);
	out[0] = '\0';
	for (size_t i = 0; i < json_array_size(rows); i++) {
		json_t *e = json_array_get(rows, i);
		cr_expect_str_eq(json_string_value(json_object_get(e, "run")),
		    run);
		o += (size_t) snprintf(out + o, len - o, "%s%lld", i ? "," : "",
		    (long long) json_integer_value(json_object_get(e, "id")));
	}
	json_decref(rows);
}

// interleaved_runs writes runs A and B a batch per event, interleaved.
static void
interleaved_runs(void)
{
	write_run_queued("A", 10); // 10 registers, 11 queued, 12 started
	weft_event b[] = {
		ev(13, "B", 1, WEFT_EV_RUN_QUEUED, NULL,
		    json_pack("{s:s, s:i, s:{}, s:{}, s:i}", "definition", "two",
		        "version", 1, "input", "params", "steps", 2)),
		ev(14, "B", 2, WEFT_EV_RUN_STARTED, NULL, json_object()),
	};
	cr_assert_eq(weft_store_append(st, b, 2), WEFT_OK, "%s", st->error);
	free_evs(b, 2);
	append_one(15, "A", 3, WEFT_EV_STEP_READY, "a");
	append_one(16, "B", 3, WEFT_EV_STEP_READY, "a");
	append_one(17, "A", 4, WEFT_EV_STEP_DISPATCHED, "a");
}

// With a lag, a run's events wait for the index and are found all the
// same; once the first of them is older than the lag, the next batch
// writes them all; a restart finds the mark where it was.
Test(store, run_index_waits_for_the_lag_and_finds_every_event)
{
	char     ids[200];
	uint64_t seq = 0;

	weft_store_lag_set(st, 60000);
	interleaved_runs();
	cr_expect_eq(count_sql("SELECT COUNT(*) FROM run_events", NULL), 0,
	    "nothing indexed within the lag");
	cr_expect_eq(st->index_pending, 8);
	run_event_ids("A", 0, 0, ids, sizeof(ids));
	cr_expect_str_eq(ids, "11,12,15,17");
	run_event_ids("B", 0, 0, ids, sizeof(ids));
	cr_expect_str_eq(ids, "13,14,16");
	run_event_ids("A", 12, 0, ids, sizeof(ids));
	cr_expect_str_eq(ids, "15,17", "after a cursor");
	run_event_ids("A", 0, 1, ids, sizeof(ids));
	cr_expect_str_eq(ids, "11", "a page of one");
	cr_assert_eq(weft_store_run_last_seq(st, "A", &seq), WEFT_OK);
	cr_expect_eq(seq, 4, "the last seq counts the events waiting");

	weft_store_lag_set(st, 1);
	weft_clock_sleep_ms(2 * WEFT_STORE_INDEX_LAGS);
	append_one(18, "B", 4, WEFT_EV_STEP_DISPATCHED, "a");
	cr_expect_eq(count_sql("SELECT COUNT(*) FROM run_events", NULL), 8,
	    "every run event, once the lag is over");
	cr_expect_eq(count_sql("SELECT run_events_from FROM weft_database",
	                 NULL), 19);
	cr_expect_eq(st->index_pending, 0);
	run_event_ids("A", 0, 0, ids, sizeof(ids));
	cr_expect_str_eq(ids, "11,12,15,17");
	run_event_ids("B", 13, 0, ids, sizeof(ids));
	cr_expect_str_eq(ids, "14,16,18");

	// Some indexed, some waiting: both halves, in order.
	weft_store_lag_set(st, 60000);
	append_one(19, "A", 5, WEFT_EV_STEP_STARTED, "a");
	run_event_ids("A", 12, 0, ids, sizeof(ids));
	cr_expect_str_eq(ids, "15,17,19");
	cr_assert_eq(weft_store_run_last_seq(st, "A", &seq), WEFT_OK);
	cr_expect_eq(seq, 5);

	// A restart copies what waits (event 19) before anything reads the
	// runs: recovery reads each unfinished run's last event.
	char err[512];
	weft_store_close(st);
	cr_assert_eq(weft_store_open(&st, dbpath, NULL, false, err, sizeof(err)),
	    WEFT_OK, "%s", err);
	cr_expect_eq(st->index_from, 20);
	cr_expect_eq(st->index_pending, 0);
	cr_expect_eq(count_sql("SELECT COUNT(*) FROM run_events", NULL), 9);
	cr_assert_eq(weft_store_run_last_seq(st, "A", &seq), WEFT_OK);
	cr_expect_eq(seq, 5);
	json_t *runs = NULL;
	cr_assert_eq(weft_store_unfinished_runs(st, "", 10, &runs), WEFT_OK,
	    "%s", st->error);
	for (size_t i = 0; i < json_array_size(runs); i++) {
		json_t *r = json_array_get(runs, i);
		const char *id = json_string_value(json_object_get(r, "id"));
		cr_expect_eq(json_integer_value(json_object_get(r, "last_seq")),
		    strcmp(id, "A") == 0 ? 5 : 4, "run %s's last seq", id);
	}
	cr_expect_eq(json_array_size(runs), 2);
	json_decref(runs);
	weft_store_lag_set(st, 0); // no lag: every batch writes the index
	append_one(20, "B", 5, WEFT_EV_STEP_STARTED, "a");
	cr_expect_eq(count_sql("SELECT COUNT(*) FROM run_events", NULL), 10);
	cr_expect_eq(count_sql("SELECT COUNT(*) FROM run_events WHERE run_id = "
	                       "?", "A"),
	    5);
	run_event_ids("A", 0, 0, ids, sizeof(ids));
	cr_expect_str_eq(ids, "11,12,15,17,19");

	// Recovery reads the unfinished runs a page at a time and commits
	// each page's events before the next: a page's read copies what
	// waits first, so each run's last event is one seek, not a scan of
	// everything the earlier pages wrote.
	weft_store_lag_set(st, 60000);
	append_one(21, "A", 6, WEFT_EV_STEP_SUCCEEDED, "a");
	cr_expect_eq(st->index_pending, 1);
	cr_assert_eq(weft_store_unfinished_runs(st, "", 10, &runs), WEFT_OK,
	    "%s", st->error);
	json_decref(runs);
	cr_expect_eq(st->index_pending, 0, "copied by the page's read");
	cr_expect_eq(count_sql("SELECT COUNT(*) FROM run_events", NULL), 11);
	cr_expect_eq(count_sql("SELECT run_events_from FROM weft_database",
	                 NULL), 22);
}

// A run deleted while some of its events wait for the index leaves
// nothing behind (run_left looks at every table).
Test(store, deleting_a_run_deletes_the_events_that_wait_for_the_index)
{
	uint64_t next = 1;

	weft_store_lag_set(st, 0);
	ended_run(&next, "A", WEFT_EV_COUNT, 2000, 0, NULL); // indexed
	weft_store_lag_set(st, 60000);
	append_one(next, "A", 6, WEFT_EV_STEP_SUCCEEDED, "b");
	append_one(next + 1, "A", 7, WEFT_EV_RUN_SUCCEEDED, NULL);
	next += 2;
	ended_run(&next, "B", WEFT_EV_RUN_SUCCEEDED, 5000, 0, NULL); // waits
	cr_expect_eq(count_sql("SELECT COUNT(*) FROM run_events", NULL), 5);

	weft_delete_filter f = { .before_ms = 1000000 };
	cr_expect_eq(delete_runs(&f, &next, NULL), 2);
	cr_expect(!run_left("A"));
	cr_expect(!run_left("B"));
}

// A batch that wrote the index and lost its commit answer: found
// committed or not, the index ends up with each event once.
// lost_answer_case sets up case k of two (a fresh store after the first)
// with interleaved_runs waiting for the index, and *lying as st's ops
// whose commit loses its answer: case 0 after committing, case 1 after
// rolling back. Returns the real ops.
static const weft_store_ops *
lost_answer_case(size_t k, weft_store_ops *lying)
{
	static weft_err (*const commits[])(weft_store *) = {
		commit_then_lose_answer, rollback_then_lose_answer };

	if (k > 0) {
		teardown();
		setup();
	}
	*lying        = *st->ops;
	real_commit   = st->ops->commit;
	lying->commit = commits[k];
	weft_store_lag_set(st, 60000);
	interleaved_runs();
	return (st->ops);
}

Test(store, run_index_follows_a_batch_whose_commit_answer_was_lost)
{
	for (size_t k = 0; k < 2; k++) {
		weft_store_ops        lying;
		const weft_store_ops *ops = lost_answer_case(k, &lying);
		char                  ids[200];

		weft_store_lag_set(st, 1);
		// The next batch copies what waits.
		weft_clock_sleep_ms(2 * WEFT_STORE_INDEX_LAGS);
		weft_event e = ev(18, "B", 4, WEFT_EV_STEP_DISPATCHED, "a",
		    json_object());
		st->ops = &lying;
		cr_expect_eq(weft_store_append(st, &e, 1), WEFT_EUNAVAIL);
		st->ops = ops;
		cr_assert_eq(weft_store_append(st, &e, 1), WEFT_OK, "%s",
		    st->error);
		free_evs(&e, 1);
		// Found committed or written again: the copy is in memory too.
		cr_expect_eq(st->index_from, 19, "case %zu", k);
		cr_expect_eq(st->index_pending, 0, "case %zu", k);
		cr_expect_eq(st->index_oldest, 0, "case %zu", k);
		weft_store_lag_set(st, 60000);
		append_one(19, "A", 5, WEFT_EV_STEP_STARTED, "a");
		cr_expect_eq(st->index_pending, 1, "case %zu: 19 waits", k);
		weft_store_lag_set(st, 0);
		append_one(20, "B", 5, WEFT_EV_STEP_STARTED, "a");
		cr_expect_eq(count_sql("SELECT COUNT(*) FROM run_events", NULL),
		    10, "case %zu: each run event once", k);
		run_event_ids("B", 0, 0, ids, sizeof(ids));
		cr_expect_str_eq(ids, "13,14,16,18,20", "case %zu", k);
	}
}

// An idle store copies what waits for the index: due once no append has
// committed for WEFT_STORE_IDLE_MS, long before the lags, and copied by
// weft_store_index_flush alone (the held step rows wait for their lag).
// While appends are recent it waits; so does the append that follows the
// idle moment (the copy is not put in a batch's way).
Test(store, idle_store_copies_what_waits_for_the_index)
{
	char    ids[200];
	int64_t next = 0, last;
	size_t  held;

	weft_store_lag_set(st, 60000);
	interleaved_runs();
	last = st->last_append_ms;
	held = st->lag.count;
	cr_assert_gt(held, 0, "rows on the way are held");
	cr_expect(!weft_store_index_due(st, last), "busy: not due");
	cr_expect(!weft_store_lag_due(st, last, &next));
	cr_expect_eq(next, last + WEFT_STORE_IDLE_MS, "the engine wakes then");
	cr_expect(weft_store_index_due(st, last + WEFT_STORE_IDLE_MS));
	cr_expect(!weft_store_lag_due(st, last + WEFT_STORE_IDLE_MS, &next),
	    "the held rows are not due");
	cr_assert_eq(weft_store_index_flush(st), WEFT_OK, "%s", st->error);
	if (weft_clock_mono_ms() < last + WEFT_STORE_IDLE_MS) {
		cr_expect_eq(st->index_pending, 8, "a flush of a busy store");
	}
	weft_clock_sleep_ms(WEFT_STORE_IDLE_MS + 10);
	cr_assert_eq(weft_store_index_flush(st), WEFT_OK, "%s", st->error);
	cr_expect_eq(st->index_pending, 0, "copied by the idle flush");
	cr_expect_eq(count_sql("SELECT COUNT(*) FROM run_events", NULL), 7);
	cr_expect_eq(count_sql("SELECT run_events_from FROM weft_database",
	                 NULL), 18);
	cr_expect_eq(st->lag.count, held, "the held rows stay held");
	cr_expect_neq(count_sql("SELECT steps_from FROM weft_database", NULL),
	    0, "and their mark stays");
	cr_expect(!weft_store_index_due(st, weft_clock_mono_ms()));

	// After an idle moment, an append leaves its events waiting.
	weft_clock_sleep_ms(WEFT_STORE_IDLE_MS + 10);
	append_one(18, "B", 4, WEFT_EV_STEP_DISPATCHED, "a");
	cr_expect_eq(st->index_pending, 1);
	run_event_ids("B", 0, 0, ids, sizeof(ids));
	cr_expect_str_eq(ids, "13,14,16,18");
}

// An idle flush that copied the index and lost its commit answer: found
// committed (by the index's mark: no step row was held, so steps_from
// tells nothing) or not, the index ends up with each event once.
Test(store, idle_copy_follows_a_flush_whose_commit_answer_was_lost)
{
	for (size_t k = 0; k < 2; k++) {
		weft_store_ops        lying;
		const weft_store_ops *ops = lost_answer_case(k, &lying);
		char                  ids[200];

		weft_store_lag_set(st, 0); // rows written at once: none held
		append_one(18, "B", 4, WEFT_EV_STEP_DISPATCHED, "a");
		cr_expect_eq(st->index_pending, 0, "case %zu", k);
		weft_store_lag_set(st, 60000);
		// Progress leaves the step row alone: nothing is held.
		append_one(19, "A", 5, WEFT_EV_STEP_PROGRESS, "a");
		cr_assert_eq(st->lag.count, 0, "case %zu: a step row held", k);
		weft_clock_sleep_ms(WEFT_STORE_IDLE_MS + 10);
		st->ops = &lying;
		cr_expect_eq(weft_store_index_flush(st), WEFT_EUNAVAIL,
		    "case %zu", k);
		st->ops = ops;
		cr_assert_eq(weft_store_index_flush(st), WEFT_OK, "%s",
		    st->error);
		cr_expect_eq(st->index_pending, 0, "case %zu", k);
		cr_expect_eq(st->index_from, 20, "case %zu", k);
		cr_expect_eq(count_sql("SELECT COUNT(*) FROM run_events", NULL),
		    9, "case %zu: each run event once", k);
		run_event_ids("A", 0, 0, ids, sizeof(ids));
		cr_expect_str_eq(ids, "11,12,15,17,19", "case %zu", k);
	}
}

// ---- run endings, many to a statement ----

// run_cell returns column col of run id's row as text (malloc'd; "(null)"
// for NULL).
static char *
run_cell(const char *col, const char *id)
{
	char  sql[160];
	char *out = NULL;

	snprintf(sql, sizeof(sql),
	    "SELECT CAST(%s AS TEXT) FROM runs WHERE id = ?", col);
	cr_assert_eq(st->ops->query(st, sql, &id, 1, lag_text_row, &out),
	    WEFT_OK, "%s", st->error);
	cr_assert_not_null(out, "no run %s", id);
	return (out);
}

static void
expect_run_cell(const char *id, const char *col, const char *want)
{
	char *got = run_cell(col, id);
	cr_expect_str_eq(got, want, "run %s: %s", id, col);
	free(got);
}

// One batch ends 150 runs (three statements' worth) in every way an
// ending is written: each row as its own ending says, the retention
// deadline from its ended time, and a run that ends, is retried and ends
// again in the same batch keeps the last ending.
Test(store, many_run_endings_in_one_batch_each_as_its_event_says)
{
	enum { N = 150 };
	static char ids[N][16];
	weft_event  q[N], end[N + 2];
	size_t      ne = 0;

	for (int i = 0; i < N; i++) {
		snprintf(ids[i], sizeof(ids[i]), "E%03d", i);
		json_t *d = json_pack("{s:s, s:i, s:{}, s:{}, s:i}", "definition",
		    "two", "version", 1, "input", "params", "steps", 2);
		if (i % 2 == 0) {
			json_object_set_new(d, "retain_ms", json_integer(500));
		}
		q[i] = ev(1 + (uint64_t) i, ids[i], 1, WEFT_EV_RUN_QUEUED, NULL, d);
	}
	cr_assert_eq(weft_store_append(st, q, N), WEFT_OK, "%s", st->error);
	free_evs(q, N);
	uint64_t id = 1000;
	for (int i = 0; i < N; i++) {
		enum weft_event_type t = i % 3 == 0 ? WEFT_EV_RUN_SUCCEEDED
		    : i % 3 == 1                    ? WEFT_EV_RUN_FAILED
		                                    : WEFT_EV_RUN_CANCELLED;
		json_t *d = t == WEFT_EV_RUN_SUCCEEDED
		    ? json_pack("{s:{s:i}}", "output", "n", i)
		    : t == WEFT_EV_RUN_FAILED ? json_pack("{s:s}", "error", "boom")
		                              : json_object();
		end[ne++] = ev(id++, ids[i], 2, t, NULL, d);
		if (i == 7) { // failed, retried, succeeded: all in this batch
			end[ne++] = ev(id++, ids[i], 3, WEFT_EV_RUN_RETRIED, NULL,
			    json_object());
			end[ne++] = ev(id++, ids[i], 4, WEFT_EV_RUN_SUCCEEDED, NULL,
			    json_pack("{s:s}", "output", "again"));
		}
	}
	cr_assert_eq(weft_store_append(st, end, ne), WEFT_OK, "%s", st->error);
	free_evs(end, ne);

	expect_run_cell("E000", "status", "succeeded");
	expect_run_cell("E000", "output", "{\"n\":0}");
	expect_run_cell("E000", "error", "(null)");
	expect_run_cell("E000", "ended_ms", "2000");
	expect_run_cell("E000", "expire_ms", "2500");
	expect_run_cell("E001", "status", "failed");
	expect_run_cell("E001", "error", "boom");
	expect_run_cell("E001", "expire_ms", "(null)");
	expect_run_cell("E002", "status", "cancelled");
	expect_run_cell("E002", "error", "cancelled");
	expect_run_cell("E002", "output", "(null)");
	expect_run_cell("E002", "expire_ms", "2502");
	expect_run_cell("E007", "status", "succeeded");
	expect_run_cell("E007", "output", "\"again\"");
	expect_run_cell("E007", "error", "(null)");
	expect_run_cell("E149", "status", "cancelled");
	expect_run_cell("E149", "ended_ms", "2151");
	cr_expect_eq(count_sql("SELECT COUNT(*) FROM runs WHERE ended_ms IS "
	                       "NULL",
	                 NULL),
	    0, "every run ended");
}
