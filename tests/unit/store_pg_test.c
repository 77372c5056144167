// store_pg_test: what only the PostgreSQL store has: NOTIFY weft_events
// heard by a real LISTEN connection, surviving a server stopped, restarted
// or cutting the connection mid-batch (nothing lost, nothing doubled), a
// read-only query connection, and conninfo passwords kept out of sight.
#include <criterion/criterion.h>
#include <criterion/hooks.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "clock.h"
#include "harness.h"
#include "pg.h"
#include "store.h"

WEFT_PG_SHARED_START()
WEFT_PG_SHARED_STOP()

static weft_pg     pg;     // the shared server, or one of the test's own
static bool        ownpg;  // pg was started by this test
static char        url[512];
static weft_store *st;

// open_fresh creates an empty database on pg and opens the store on it.
static void
open_fresh(void)
{
	static int n;
	char       name[64], err[512];

	snprintf(name, sizeof(name), "p%d_%d", (int) getpid(), n++);
	cr_assert_eq(weft_pg_createdb(&pg, name, url, sizeof(url)), 0);
	cr_assert_eq(weft_store_open(&st, url, NULL, false, err, sizeof(err)),
	    WEFT_OK, "%s", err);
}

static void
setup(void)
{
	cr_assert_eq(weft_pg_import(&pg), 0, "no PostgreSQL test server");
	open_fresh();
}

// setup_own gives the test a server of its own, for tests that stop it.
// Criterion runs the suite's init first: its store is dropped.
static void
setup_own(void)
{
	weft_store_close(st);
	st = NULL;
	cr_assert_eq(weft_pg_start(&pg), 0, "PostgreSQL did not start");
	ownpg = true;
	open_fresh();
}

static void
teardown(void)
{
	weft_store_close(st);
	st = NULL;
	if (ownpg) {
		weft_pg_stop(&pg);
	}
}

TestSuite(store_pg, .init = setup, .fini = teardown, .timeout = 60);

// ---- events ----

typedef struct batch {
	weft_event evs[64];
	char       ids[64][32];
	size_t     n;
} batch;

// batch_make fills b with n step events of run (NULL = cluster events)
// numbered from first, per-run seq equal to the id.
static void
batch_make(batch *b, uint64_t first, size_t n, const char *run)
{
	memset(b, 0, sizeof(*b));
	for (size_t i = 0; i < n && i < 64; i++) {
		weft_event *e = &b->evs[i];
		snprintf(b->ids[i], sizeof(b->ids[i]), "s%zu", i);
		e->id        = first + i;
		e->run_id    = run;
		e->seq       = run ? first + i : 0;
		e->ts_ms     = 1000 + (int64_t) e->id;
		e->type      = run ? WEFT_EV_STEP_READY : WEFT_EV_WORKER_LOST;
		e->step_id   = run ? b->ids[i] : NULL;
		e->node      = run ? NULL : "w9";
		e->data      = json_object();
		e->data_text = "{}";
	}
	b->n = n;
}

static void
batch_free(batch *b)
{
	for (size_t i = 0; i < b->n; i++) {
		json_decref(b->evs[i].data);
	}
}

static uint64_t
count_events(weft_store *s)
{
	uint64_t n = 0;
	cr_assert_eq(s->ops->query(s, "SELECT COUNT(*) FROM events", NULL, 0,
	                 weft_store_u64_row, &n),
	    WEFT_OK, "%s", s->error);
	return (n);
}

// ---- LISTEN ----

static PGconn *
listen_open(void)
{
	PGconn   *c = PQconnectdb(url);
	PGresult *r;

	cr_assert_eq(PQstatus(c), CONNECTION_OK, "%s", PQerrorMessage(c));
	r = PQexec(c, "LISTEN weft_events");
	cr_assert_eq(PQresultStatus(r), PGRES_COMMAND_OK);
	PQclear(r);
	return (c);
}

// listen_next waits up to ms for a notification; returns its payload as
// JSON (NULL when none came).
static json_t *
listen_next(PGconn *c, int ms)
{
	int64_t deadline = weft_clock_mono_ms() + weft_h_timeout_ms(ms);

	for (;;) {
		PGnotify *n;
		PQconsumeInput(c);
		if ((n = PQnotifies(c)) != NULL) {
			json_error_t je;
			json_t      *v = json_loads(n->extra, 0, &je);
			cr_assert_not_null(v, "payload is not JSON: %s", n->extra);
			cr_expect_str_eq(n->relname, "weft_events");
			cr_expect_lt(strlen(n->extra), 8000);
			PQfreemem(n);
			return (v);
		}
		int64_t left = deadline - weft_clock_mono_ms();
		if (left <= 0) {
			return (NULL);
		}
		struct pollfd pfd = { .fd = PQsocket(c), .events = POLLIN };
		poll(&pfd, 1, (int) left);
	}
}

Test(store_pg, notify_tells_listeners_each_committed_batch)
{
	PGconn *c = listen_open();
	batch   b;
	json_t *n;

	batch_make(&b, 1, 5, "R1");
	b.evs[4].run_id = "R2";
	b.evs[4].seq    = 1;
	cr_assert_eq(weft_store_append(st, b.evs, b.n), WEFT_OK, "%s", st->error);
	batch_free(&b);
	cr_assert_not_null(n = listen_next(c, 5000), "no notification");
	cr_expect_eq(json_integer_value(json_object_get(n, "first")), 1);
	cr_expect_eq(json_integer_value(json_object_get(n, "last")), 5);
	json_t *runs = json_object_get(n, "runs");
	cr_assert_eq(json_array_size(runs), 2, "each run once, in order");
	cr_expect_str_eq(json_string_value(json_array_get(runs, 0)), "R1");
	cr_expect_str_eq(json_string_value(json_array_get(runs, 1)), "R2");
	cr_expect_null(json_object_get(n, "truncated"));
	json_decref(n);

	// Cluster events only: no run ids.
	batch_make(&b, 6, 2, NULL);
	cr_assert_eq(weft_store_append(st, b.evs, b.n), WEFT_OK, "%s", st->error);
	batch_free(&b);
	cr_assert_not_null(n = listen_next(c, 5000));
	cr_expect_eq(json_integer_value(json_object_get(n, "first")), 6);
	cr_expect_eq(json_integer_value(json_object_get(n, "last")), 7);
	cr_expect_eq(json_array_size(json_object_get(n, "runs")), 0);
	json_decref(n);

	// A batch that fails (event 7 again) tells nobody anything.
	batch_make(&b, 7, 1, "R3");
	cr_expect_neq(weft_store_append(st, b.evs, b.n), WEFT_OK);
	batch_free(&b);
	n = listen_next(c, 300);
	cr_expect_null(n, "a rolled back batch was announced");
	json_decref(n);
	PQfinish(c);
}

Test(store_pg, notify_caps_the_run_list_under_8000_bytes)
{
	enum { N = 400 };
	PGconn     *c    = listen_open();
	weft_event *evs  = calloc(N, sizeof(*evs));
	char      (*runs)[48] = calloc(N, sizeof(*runs));
	json_t     *n;

	for (int i = 0; i < N; i++) {
		snprintf(runs[i], sizeof(runs[i]), "run-with-a-longish-id-%05d", i);
		evs[i] = (weft_event) { .id = (uint64_t) i + 1, .run_id = runs[i],
			.seq = 1, .ts_ms = 1, .type = WEFT_EV_RUN_PAUSED,
			.data = NULL, .data_text = "{}" };
	}
	cr_assert_eq(weft_store_append(st, evs, N), WEFT_OK, "%s", st->error);
	cr_assert_not_null(n = listen_next(c, 5000));
	cr_expect_eq(json_integer_value(json_object_get(n, "first")), 1);
	cr_expect_eq(json_integer_value(json_object_get(n, "last")), N);
	cr_expect(json_is_true(json_object_get(n, "truncated")));
	size_t k = json_array_size(json_object_get(n, "runs"));
	cr_expect(k > 100 && k < N, "%zu runs listed", k);
	cr_expect_str_eq(json_string_value(json_array_get(
	                     json_object_get(n, "runs"), 0)), runs[0]);
	json_decref(n);
	free(evs);
	free(runs);
	PQfinish(c);
}

// ---- database trouble ----

static weft_store *qs; // a read-only query connection, as the engine has

static void
open_query_store(void)
{
	char err[512];
	cr_assert_eq(weft_store_open(&qs, url, NULL, true, err, sizeof(err)),
	    WEFT_OK, "%s", err);
}

Test(store_pg, server_down_then_back_loses_and_doubles_nothing,
    .init = setup_own, .timeout = 120)
{
	batch    b;
	weft_err rv;

	open_query_store();
	batch_make(&b, 1, 10, "R1");
	cr_assert_eq(weft_store_append(st, b.evs, b.n), WEFT_OK, "%s", st->error);
	batch_free(&b);

	cr_assert_eq(weft_pg_down(&pg), 0);
	batch_make(&b, 11, 10, "R1");
	cr_expect_eq(weft_store_append(st, b.evs, b.n), WEFT_EUNAVAIL,
	    "append while the server is down");
	cr_expect_eq(weft_store_append(st, b.evs, b.n), WEFT_EUNAVAIL);
	cr_expect(!st->ok);
	cr_expect_eq(qs->ops->query(qs, "SELECT 1", NULL, 0, NULL, NULL),
	    WEFT_EUNAVAIL);
	cr_expect(strstr(st->error, "postgres") != NULL, "%s", st->error);

	cr_assert_eq(weft_pg_up(&pg), 0);
	// The engine's loop: the same batch again until it is taken.
	int tries = 0;
	while ((rv = weft_store_append(st, b.evs, b.n)) != WEFT_OK && tries < 50) {
		cr_assert_eq(rv, WEFT_EUNAVAIL, "%s", st->error);
		weft_clock_sleep_ms(100);
		tries++;
	}
	cr_assert_eq(rv, WEFT_OK, "%s", st->error);
	cr_expect_eq(tries, 0, "the first append after the restart reconnects");
	batch_free(&b);
	cr_expect_eq(count_events(st), 20);
	cr_expect_eq(count_events(qs), 20, "the query connection is back too");
	uint64_t max;
	weft_store_max_event_id(st, &max);
	cr_expect_eq(max, 20);
	weft_store_close(qs);
}

Test(store_pg, restart_between_batches_is_invisible, .init = setup_own,
    .timeout = 120)
{
	batch b;

	open_query_store();
	batch_make(&b, 1, 3, "R1");
	cr_assert_eq(weft_store_append(st, b.evs, b.n), WEFT_OK, "%s", st->error);
	batch_free(&b);
	cr_expect_eq(count_events(qs), 3);
	cr_assert_eq(weft_pg_restart(&pg), 0);
	// Both connections were cut; each call reconnects and carries on.
	batch_make(&b, 4, 3, "R1");
	cr_expect_eq(weft_store_append(st, b.evs, b.n), WEFT_OK, "%s", st->error);
	batch_free(&b);
	cr_expect_eq(count_events(qs), 6);
	weft_store_close(qs);
}

// Cut the store's connection from the server side while a batch is in
// flight: just before its commit (notify runs last in the transaction).
static weft_err (*real_notify)(weft_store *, const weft_event *, size_t);
static uint64_t victim;

static weft_err
notify_then_kill(weft_store *s, const weft_event *evs, size_t n)
{
	char      sql[96];
	PGconn   *c = PQconnectdb(url);
	PGresult *r;

	snprintf(sql, sizeof(sql), "SELECT pg_terminate_backend(%llu)",
	    (unsigned long long) victim);
	r = PQexec(c, sql);
	cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s", PQerrorMessage(c));
	PQclear(r);
	PQfinish(c);
	return (real_notify(s, evs, n));
}

Test(store_pg, connection_cut_mid_batch_then_retried_once)
{
	const weft_store_ops *ops = st->ops;
	weft_store_ops        cut = *ops;
	batch                 b;

	batch_make(&b, 1, 2, "R1");
	cr_assert_eq(weft_store_append(st, b.evs, b.n), WEFT_OK, "%s", st->error);
	batch_free(&b);
	cr_assert_eq(st->ops->query(st, "SELECT pg_backend_pid()", NULL, 0,
	                 weft_store_u64_row, &victim),
	    WEFT_OK);
	real_notify = ops->notify;
	cut.notify  = notify_then_kill;
	st->ops     = &cut;
	batch_make(&b, 3, 20, "R1");
	cr_expect_eq(weft_store_append(st, b.evs, b.n), WEFT_EUNAVAIL, "%s",
	    st->error);
	st->ops = ops;
	cr_expect_eq(weft_store_append(st, b.evs, b.n), WEFT_OK, "%s", st->error);
	batch_free(&b);
	cr_expect_eq(count_events(st), 22);
	// And the connection's statement cache works for the next batch.
	batch_make(&b, 23, 2, "R1");
	cr_expect_eq(weft_store_append(st, b.evs, b.n), WEFT_OK, "%s", st->error);
	batch_free(&b);
	cr_expect_eq(count_events(st), 24);
}

Test(store_pg, query_connection_is_read_only)
{
	open_query_store();
	cr_expect_eq(count_events(qs), 0);
	cr_expect_eq(qs->ops->exec(qs,
	                 "INSERT INTO workers (name, address, state, joined_ms, "
	                 "seen_ms) VALUES ('x', 'y', 'alive', 0, 0)",
	                 NULL, 0),
	    WEFT_ESTORE);
	cr_expect(strstr(qs->error, "read-only") != NULL, "%s", qs->error);
	weft_store_close(qs);
}

// ---- secrets ----

Test(store_pg, passwords_stay_out_of_urls_and_errors)
{
	weft_store *s;
	char        u[600], err[512];

	// Trust authentication ignores the password; it must not show.
	// The test server listens on a Unix socket only: its directory is the
	// host.
	snprintf(u, sizeof(u),
	    "postgres://weft:s3cr3t@/weft?host=%s/sock&port=%d", pg.dir,
	    pg.port);
	cr_assert_eq(weft_store_open(&s, u, NULL, true, err, sizeof(err)),
	    WEFT_OK, "%s", err);
	cr_expect_eq(strstr(s->url, "s3cr3t"), NULL, "%s", s->url);
	char want[600];
	snprintf(want, sizeof(want), "postgres://weft@%s/sock:%d/weft", pg.dir,
	    pg.port);
	cr_expect_str_eq(s->url, want);
	weft_store_close(s);

	snprintf(u, sizeof(u),
	    "host=%s/sock port=%d user=weft password=s3cr3t dbname=weft",
	    pg.dir, pg.port);
	cr_assert(weft_store_is_pg(u));
	cr_assert_eq(weft_store_open(&s, u, NULL, true, err, sizeof(err)),
	    WEFT_OK, "%s", err);
	cr_expect_str_eq(s->url, want);
	weft_store_close(s);

	// Nobody listens on port 1: the error names the place, not the secret.
	cr_expect_eq(weft_store_open(&s,
	                 "postgresql://weft:s3cr3t@127.0.0.1:1/weft", NULL, false,
	                 err, sizeof(err)),
	    WEFT_EUNAVAIL);
	cr_expect_null(s);
	cr_expect(strstr(err, "127.0.0.1:1/weft") != NULL, "%s", err);
	cr_expect_eq(strstr(err, "s3cr3t"), NULL, "%s", err);

	// A conninfo libpq cannot parse is refused without quoting it.
	cr_expect_eq(weft_store_open(&s, "host=x password=s3cr3t bogus", NULL,
	                 false, err, sizeof(err)),
	    WEFT_EINVAL);
	cr_expect_eq(strstr(err, "s3cr3t"), NULL, "%s", err);
}

Test(store_pg, urls_choose_the_backend)
{
	cr_expect(weft_store_is_pg("postgres://u@h/db"));
	cr_expect(weft_store_is_pg("postgresql://h:5432/db"));
	cr_expect(weft_store_is_pg("host=/run/postgresql dbname=weft"));
	cr_expect(weft_store_is_pg("  dbname = weft"));
	cr_expect(!weft_store_is_pg("sqlite:/tmp/x=y.db"));
	cr_expect(!weft_store_is_pg("weft.db"));
	cr_expect(!weft_store_is_pg("/var/lib/weft/weft.db"));
	cr_expect(!weft_store_is_pg("sqlite::memory:"));

	char out[128];
	weft_store_redact("host=db.example port=5433 user=ops password=pw "
	                  "dbname=prod", out, sizeof(out));
	cr_expect_str_eq(out, "postgres://ops@db.example:5433/prod");
	weft_store_redact("sqlite:/tmp/w.db", out, sizeof(out));
	cr_expect_str_eq(out, "sqlite:/tmp/w.db");
}
