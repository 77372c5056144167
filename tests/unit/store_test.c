// store_test: the SQLite store: migrations, the write path with its
// projections, the queries, and refusal of a newer schema.
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "store.h"

static char        dbpath[512];
static weft_store *st;

static void
setup(void)
{
	char *dir = weft_h_tempdir("store");
	char  err[512];
	snprintf(dbpath, sizeof(dbpath), "sqlite:%s/t.db", dir);
	free(dir);
	cr_assert_eq(weft_store_open(&st, dbpath, NULL, false, err, sizeof(err)),
	    WEFT_OK, "%s", err);
}

static void
teardown(void)
{
	weft_store_close(st);
}

static weft_event
ev(uint64_t id, const char *run, uint64_t seq, const char *type,
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
		ev(1, NULL, 0, "definition_registered", NULL,
		    json_pack("{s:s, s:i, s:{s:s, s:[{s:s, s:s}, {s:s, s:s}]}}",
		        "name", "two", "version", 1, "definition", "name", "two",
		        "steps", "id", "a", "type", "noop", "id", "b", "type",
		        "noop")),
		ev(2, "R1", 1, "run_queued", NULL,
		    json_pack("{s:s, s:i, s:{}, s:{}, s:i}", "definition", "two",
		        "version", 1, "input", "params", "steps", 2)),
		ev(3, "R1", 2, "run_started", NULL, json_object()),
		ev(4, "R1", 3, "step_ready", "a", json_object()),
		ev(5, "R1", 4, "step_dispatched", "a", json_object()),
		ev(6, "R1", 5, "step_started", "a", json_object()),
		ev(7, "R1", 6, "step_failed", "a",
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
	weft_event evs[] = { ev(8, "R1", 7, "step_ready", "b", json_object()),
		ev(9, "R1", 7, "step_ready", "b", d) }; // same (run, seq)
	cr_expect_neq(weft_store_append(st, evs, 2), WEFT_OK);
	free_evs(evs, 2);
	uint64_t max;
	weft_store_max_event_id(st, &max);
	cr_expect_eq(max, 7, "nothing of a failed batch is written");
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
