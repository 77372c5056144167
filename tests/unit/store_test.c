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
		ev(9, "R1", 7, WEFT_EV_STEP_READY, "b", d) }; // same (run, seq)
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

	// A batch refused (a duplicate (run, seq)) writes no secrets either.
	weft_event bad[] = {
		ev(2, "S2", 1, WEFT_EV_RUN_QUEUED, NULL,
		    json_pack("{s:s, s:i, s:{}, s:{}, s:i}", "definition", "two",
		        "version", 1, "input", "params", "steps", 2)),
		ev(3, "S2", 1, WEFT_EV_RUN_STARTED, NULL, json_object()),
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
	cr_assert_eq(weft_store_unfinished_runs(st, &out), WEFT_OK);
	cr_assert_eq(json_array_size(out), 1);
	cr_expect_eq(json_integer_value(json_object_get(json_array_get(out, 0), "last_seq")), 6);
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
