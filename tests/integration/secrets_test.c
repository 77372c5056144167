// secrets_test: secret params and input.secrets end to end, with real
// processes: the worker gets them in clear, nothing else ever shows them
// (the database files and tables, the logs, the pub stream, the CLI and the
// HTTP API), a coordinator restarted mid-run still hands them to the next
// step (opened from run_secrets), and one restarted with the wrong key
// fails the run's steps saying so, without losing the run: back on the
// right key, `weft retry` finishes it. Run on SQLite as secrets_test and on
// PostgreSQL as secrets_pg_test (the same binary, under e2e_pg_wrap).
#include <criterion/criterion.h>

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nng/nng.h>

#include "clock.h"
#include "cluster.h"
#include "harness.h"
#include "sub.h"
#include "store.h"

// The secrets: long and unlikely, so any copy of them is found.
#define TOK "ParamSecret-91c2-tok"
#define KEY "InputSecret-7f3a-key"

static weft_cluster c;

static void
up(void)
{
	weft_cluster_start(&c, 1, 200);
}

static void
down(void)
{
	weft_cluster_stop(&c);
}

TestSuite(secrets, .init = up, .fini = down, .timeout = 240);

// ---- a raw subscriber on the pub socket: every byte it receives ----

typedef struct subscriber {
	weft_sub sub;
	char    *buf; // every message body, back to back
	size_t   len, cap;
	size_t   msgs;
} subscriber;

// sub_take appends one message (on the sub thread; the test reads buf
// only after sub_stop).
static void
sub_take(void *arg, nng_msg *m)
{
	subscriber *s = arg;
	size_t      n = nng_msg_len(m);

	if (s->len + n + 1 > s->cap) {
		s->cap = (s->len + n + 1) * 2;
		s->buf = realloc(s->buf, s->cap);
		cr_assert_not_null(s->buf);
	}
	memcpy(s->buf + s->len, nng_msg_body(m), n);
	s->len += n;
	s->buf[s->len] = '\0';
	s->msgs++;
}

static void
sub_start(subscriber *s, const char *url)
{
	memset(s, 0, sizeof(*s));
	weft_sub_start(&s->sub, url, sub_take, s);
}

static void
sub_stop(subscriber *s)
{
	weft_sub_stop(&s->sub);
}

// ---- where secrets must not be ----

// has reports whether buf (len bytes) holds needle anywhere.
static bool
has(const char *buf, size_t len, const char *needle)
{
	size_t n = strlen(needle);

	for (size_t i = 0; buf != NULL && i + n <= len; i++) {
		if (memcmp(buf + i, needle, n) == 0) {
			return (true);
		}
	}
	return (false);
}

// expect_clean fails the test if text (what) holds either secret.
static void
expect_clean(const char *what, const char *text, size_t len)
{
	cr_expect(!has(text, len, TOK), "%s shows the secret param", what);
	cr_expect(!has(text, len, KEY), "%s shows input.secrets.key", what);
}

// file_read returns the bytes of path (malloc'd; NULL when missing).
static char *
file_read(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long  n;

	*len = 0;
	if (f == NULL) {
		return (NULL);
	}
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t) n + 1);
	cr_assert_not_null(buf);
	*len = fread(buf, 1, (size_t) n, f);
	buf[*len] = '\0';
	fclose(f);
	return (buf);
}

static void
expect_file_clean(const char *name)
{
	char   path[800];
	size_t len;
	char  *buf;

	snprintf(path, sizeof(path), "%s/%s", c.dir, name);
	buf = file_read(path, &len);
	expect_clean(path, buf, len);
	free(buf);
}

// Every cell of every table, through the store's own backend code (the
// same on SQLite and PostgreSQL).
struct dump {
	char  *text;
	size_t len;
	bool   names;
	json_t *tables;
};

static int
dump_row(void *arg, int ncols, const char **cols)
{
	struct dump *d = arg;

	for (int i = 0; i < ncols; i++) {
		const char *v = cols[i] != NULL ? cols[i] : "";
		size_t      n = strlen(v);
		if (d->names) {
			json_array_append_new(d->tables, json_string(v));
			continue;
		}
		d->text = realloc(d->text, d->len + n + 2);
		cr_assert_not_null(d->text);
		memcpy(d->text + d->len, v, n);
		d->len += n;
		d->text[d->len++] = '\n';
		d->text[d->len]   = '\0';
	}
	return (0);
}

// db_dump returns every cell of every table of the cluster's database
// (malloc'd) and sets *secrets_rows to the rows of run_secrets for run.
static char *
db_dump(size_t *len, const char *run, int *secrets_rows)
{
	weft_store *s;
	char        err[512];
	struct dump d = { .tables = json_array() };
	size_t      i;
	json_t     *t;
	char       *box = NULL;

	cr_assert_eq(weft_store_open(&s, c.db, NULL, true, err, sizeof(err)),
	    WEFT_OK, "open %s: %s", c.db, err);
	d.names = true;
	cr_assert_eq(s->ops->query(s,
	                 strcmp(s->ops->name, "postgres") == 0
	                     ? "SELECT tablename FROM pg_tables WHERE "
	                       "schemaname = current_schema()"
	                     : "SELECT name FROM sqlite_master WHERE type = "
	                       "'table'",
	                 NULL, 0, dump_row, &d),
	    WEFT_OK, "%s", s->error);
	cr_expect_gt(json_array_size(d.tables), 5, "tables found");
	d.names = false;
	json_array_foreach (d.tables, i, t) {
		char sql[300];
		snprintf(sql, sizeof(sql), "SELECT * FROM %s",
		    json_string_value(t));
		cr_assert_eq(s->ops->query(s, sql, NULL, 0, dump_row, &d),
		    WEFT_OK, "%s: %s", sql, s->error);
	}
	cr_assert_eq(weft_store_get_secrets(s, run, &box), WEFT_OK);
	*secrets_rows = box != NULL;
	free(box);
	json_decref(d.tables);
	weft_store_close(s);
	*len = d.len;
	return (d.text);
}

// expect_nowhere looks for the secrets everywhere but the assignments.
static void
expect_nowhere(const char *id, subscriber *sub)
{
	char   *out, *dump;
	size_t  len;
	int     rows = 0;
	json_t *v;
	static const char *const api[] = { "/api/v1/runs", "/api/v1/runs/%s",
		"/api/v1/events?run=%s&limit=10000", "/api/v1/events?limit=10000",
		"/api/v1/definitions" };

	// The database: every table, and on SQLite the files themselves
	// (WAL included), where a deleted or overwritten value could stay.
	dump = db_dump(&len, id, &rows);
	expect_clean("the database's tables", dump, len);
	cr_expect(has(dump, len, "***"), "masked values are stored as ***");
	free(dump);
	cr_expect_eq(rows, 1, "the run's secrets are in run_secrets");
	if (strncmp(c.db, "sqlite:", 7) == 0) {
		expect_file_clean("weft.db");
		expect_file_clean("weft.db-wal");
	}
	// The logs.
	expect_file_clean("coordinator.log");
	expect_file_clean("w0.log");
	// The pub stream.
	cr_expect_gt(sub->msgs, 0, "the subscriber saw no event");
	expect_clean("the pub stream", sub->buf, sub->len);
	// The CLI.
	const char *cli[] = { "status %s --json", "runs --json",
		"events --run %s --limit 10000",
		"events --format jsonl --limit 10000",
		"events --text Secret --limit 10000" };
	for (size_t i = 0; i < sizeof(cli) / sizeof(cli[0]); i++) {
		char cmd[200];
		snprintf(cmd, sizeof(cmd), cli[i], id);
		cr_expect_eq(weft_cluster_cli(&c, &out, "%s", cmd), 0,
		    "weft %s", cmd);
		cr_expect_gt(strlen(out), 0, "weft %s printed nothing", cmd);
		expect_clean(cmd, out, strlen(out));
		free(out);
	}
	// The HTTP API.
	for (size_t i = 0; i < sizeof(api) / sizeof(api[0]); i++) {
		char url[300], cmd[1000];
		snprintf(url, sizeof(url), api[i], id);
		snprintf(cmd, sizeof(cmd), "curl -s 'http://%s%s'", c.http, url);
		cr_expect_eq(weft_h_run(cmd, &out), 0, "%s", cmd);
		cr_expect_gt(strlen(out), 0, "GET %s: empty", url);
		expect_clean(url, out, strlen(out));
		free(out);
	}
	// And what it does show in their place.
	v = weft_cluster_cli_json(&c, "status %s", id);
	cr_expect_str_eq(json_string_value(json_object_get(
	                     json_object_get(v, "params"), "tok")),
	    "***");
	cr_expect_str_eq(json_string_value(json_object_get(
	                     json_object_get(v, "params"), "who")),
	    "world", "plain params are shown");
	cr_expect_str_eq(json_string_value(json_object_get(
	                     json_object_get(json_object_get(v, "input"),
	                         "secrets"),
	                     "key")),
	    "***");
	cr_expect_str_eq(json_string_value(json_object_get(
	                     json_object_get(v, "input"), "plain")),
	    "visible");
	json_decref(v);
}

// ---- helpers ----

static void
script(const char *name, const char *text)
{
	char  path[800];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", c.exec_allow, name);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
	chmod(path, 0755);
}

// scripts writes the two exec steps: dump.sh copies its input document
// to $1; gate.sh waits (at most 60 s) until file $1 exists.
static void
scripts(void)
{
	script("dump.sh", "#!/bin/sh\ncat > \"$1.tmp\" && mv \"$1.tmp\" \"$1\"\n"
	                  "echo '{\"ok\":true}'\n");
	script("gate.sh", "#!/bin/sh\ni=0\n"
	                  "while [ ! -e \"$1\" ] && [ $i -lt 600 ]; do\n"
	                  "  sleep 0.1; i=$((i+1))\ndone\n"
	                  "[ -e \"$1\" ] || exit 1\necho '{}'\n");
}

// write_def writes the definition: show and leak see the secrets, gate
// waits for DIR/go, after runs once gate is through.
static const char *
write_def(void)
{
	char text[3000];

	snprintf(text, sizeof(text),
	    "{\"name\":\"sec\",\"params\":{"
	    "\"tok\":{\"type\":\"string\",\"secret\":true,\"required\":true},"
	    "\"who\":{\"type\":\"string\",\"default\":\"world\"}},"
	    "\"steps\":["
	    "{\"id\":\"show\",\"type\":\"exec\",\"with\":{\"cmd\":[\"dump.sh\","
	    "\"%s/got-show.json\"],\"tok\":\"${params.tok}\","
	    "\"key\":\"${input.secrets.key}\"}},"
	    "{\"id\":\"leak\",\"type\":\"echo\",\"with\":{\"note\":"
	    "\"tok=${params.tok} key=${input.secrets.key}\"}},"
	    "{\"id\":\"gate\",\"type\":\"exec\",\"depends_on\":[\"show\","
	    "\"leak\"],\"with\":{\"cmd\":[\"gate.sh\",\"%s/go\"]}},"
	    "{\"id\":\"after\",\"type\":\"exec\",\"depends_on\":[\"gate\"],"
	    "\"with\":{\"cmd\":[\"dump.sh\",\"%s/got-after.json\"],"
	    "\"tok\":\"${params.tok}\"}}]}",
	    c.dir, c.dir, c.dir);
	return (weft_cluster_write(&c, "sec.json", text));
}

// start_run starts a run of the definition at def with the secrets and
// returns its id (static storage).
static const char *
start_run(const char *def)
{
	static char id[64];
	char       *out;

	cr_assert_eq(weft_cluster_cli(&c, &out,
	                 "run '%s' --input '{\"plain\":\"visible\",\"secrets\":"
	                 "{\"key\":\"" KEY "\"}}' --params '{\"tok\":\"" TOK
	                 "\"}'",
	                 def),
	    0, "weft run: %s", out);
	out[strcspn(out, "\n")] = '\0';
	snprintf(id, sizeof(id), "%s", out);
	free(out);
	return (id);
}

// step_status returns the status of step sid of run id (malloc'd).
static char *
step_status(const char *id, const char *sid)
{
	json_t *run = weft_cluster_cli_json(&c, "status %s", id);
	json_t *s;
	size_t  k;
	char   *st = strdup("?");

	json_array_foreach (json_object_get(run, "steps"), k, s) {
		if (strcmp(json_string_value(json_object_get(s, "id")), sid) ==
		    0) {
			free(st);
			st = strdup(json_string_value(json_object_get(s, "status")));
		}
	}
	json_decref(run);
	return (st);
}

static void
wait_step(const char *id, const char *sid, const char *want)
{
	int64_t deadline = weft_clock_mono_ms() + weft_h_timeout_ms(20000);

	for (;;) {
		char *st = step_status(id, sid);
		bool  ok = strcmp(st, want) == 0;
		free(st);
		if (ok) {
			return;
		}
		if (weft_clock_mono_ms() > deadline) {
			weft_cluster_dump_logs(&c);
			cr_assert_fail("step %s never became %s", sid, want);
		}
		weft_clock_sleep_ms(50);
	}
}

// expect_got checks that the input document a step wrote (name, in the
// cluster dir) holds the clear values.
static void
expect_got(const char *name, bool key_in_with)
{
	char    path[800];
	size_t  len;
	char   *buf;
	json_t *doc;

	snprintf(path, sizeof(path), "%s/%s", c.dir, name);
	buf = file_read(path, &len);
	cr_assert_not_null(buf, "%s: the step wrote no input", name);
	doc = json_loads(buf, 0, NULL);
	cr_assert_not_null(doc, "%s: %s", name, buf);
	cr_expect_str_eq(json_string_value(json_object_get(
	                     json_object_get(doc, "params"), "tok")),
	    TOK, "%s: params.tok in clear", name);
	cr_expect_str_eq(json_string_value(json_object_get(
	                     json_object_get(json_object_get(doc, "input"),
	                         "secrets"),
	                     "key")),
	    KEY, "%s: input.secrets.key in clear", name);
	cr_expect_str_eq(json_string_value(json_object_get(
	                     json_object_get(doc, "with"), "tok")),
	    TOK, "%s: with.tok rendered in clear", name);
	if (key_in_with) {
		cr_expect_str_eq(json_string_value(json_object_get(
		                     json_object_get(doc, "with"), "key")),
		    KEY, "%s: with.key rendered in clear", name);
	}
	json_decref(doc);
	free(buf);
}

static void
touch(const char *name)
{
	weft_cluster_write(&c, name, "");
}

// ---- tests ----

Test(secrets, clear_only_in_assignments_and_kept_across_restart)
{
	subscriber  sub;
	const char *def, *id;
	json_t     *run, *leak = NULL, *s;
	size_t      k;

	scripts();
	def = write_def();
	sub_start(&sub, c.events);
	id = start_run(def);
	wait_step(id, "gate", "running");
	expect_got("got-show.json", true);

	// Restart the coordinator mid-run: the next step's input comes from
	// the sealed copy in run_secrets.
	weft_h_kill(c.coord, SIGTERM);
	weft_cluster_start_coord(&c);
	touch("go");
	run = weft_cluster_run_end(&c, id, 30000);
	if (strcmp(json_string_value(json_object_get(run, "status")),
	        "succeeded") != 0) {
		weft_cluster_dump_logs(&c);
	}
	cr_assert_str_eq(json_string_value(json_object_get(run, "status")),
	    "succeeded");
	expect_got("got-after.json", false);

	// The echo step's output is its input: the copies of the secrets in
	// it are masked before it is kept.
	json_array_foreach (json_object_get(run, "steps"), k, s) {
		if (strcmp(json_string_value(json_object_get(s, "id")), "leak") ==
		    0) {
			leak = json_object_get(s, "output");
		}
	}
	cr_assert_not_null(leak, "no output for leak");
	cr_expect_str_eq(json_string_value(json_object_get(
	                     json_object_get(leak, "with"), "note")),
	    "tok=*** key=***");
	cr_expect_str_eq(json_string_value(json_object_get(
	                     json_object_get(leak, "params"), "tok")),
	    "***");
	json_decref(run);

	// Let the stream drain, then look everywhere.
	weft_clock_sleep_ms(300);
	sub_stop(&sub);
	expect_nowhere(id, &sub);
	free(sub.buf);
}

Test(secrets, a_failing_step_printing_a_secret_is_masked)
{
	const char *def;
	char       *out, id[64];
	json_t     *run;

	script("tell.sh", "#!/bin/sh\nin=$(cat)\n"
	                  "echo \"the token is " TOK "\" >&2\n"
	                  "echo \"and again: " KEY "\" >&2\nexit 4\n");
	def = weft_cluster_write(&c, "tell.json",
	    "{\"name\":\"tell\",\"params\":{\"tok\":{\"type\":\"string\","
	    "\"secret\":true}},\"steps\":[{\"id\":\"t\",\"type\":\"exec\","
	    "\"with\":{\"cmd\":[\"tell.sh\"]}}]}");
	cr_assert_eq(weft_cluster_cli(&c, &out,
	                 "run '%s' --params '{\"tok\":\"" TOK "\"}' --input "
	                 "'{\"secrets\":{\"k\":\"" KEY "\"}}'",
	                 def),
	    0);
	out[strcspn(out, "\n")] = '\0';
	snprintf(id, sizeof(id), "%s", out);
	free(out);
	run = weft_cluster_run_end(&c, id, 20000);
	cr_expect_str_eq(json_string_value(json_object_get(run, "status")),
	    "failed");
	json_decref(run);
	cr_assert_eq(weft_cluster_cli(&c, &out,
	                 "events --run %s --type step_failed", id),
	    0);
	cr_expect(strstr(out, "the token is ***") != NULL,
	    "stderr tail masked, not dropped: %s", out);
	cr_expect(strstr(out, "and again: ***") != NULL, "%s", out);
	expect_clean("step_failed", out, strlen(out));
	free(out);
	expect_file_clean("coordinator.log");
	expect_file_clean("w0.log");
}

Test(secrets, wrong_key_after_restart_fails_the_run_and_keeps_it)
{
	const char *def, *id;
	json_t     *run, *s;
	size_t      k;
	char        keyfile[700], *out;
	const char *args[] = { "--secret-key-file", keyfile, NULL };
	FILE       *f;
	bool        said = false;

	scripts();
	def = write_def();
	id  = start_run(def);
	wait_step(id, "gate", "running");

	// Back with another key: the sealed secrets do not open.
	snprintf(keyfile, sizeof(keyfile), "%s/other.key", c.dir);
	f = fopen(keyfile, "w");
	cr_assert_not_null(f);
	fputs("0123456789abcdef0123456789abcdef-not-the-cookie\n", f);
	fclose(f);
	chmod(keyfile, 0600);
	weft_h_kill(c.coord, SIGTERM);
	c.args[0] = args[0];
	c.args[1] = args[1];
	weft_cluster_start_coord(&c);
	touch("go");
	run = weft_cluster_run_end(&c, id, 30000);
	cr_assert_str_eq(json_string_value(json_object_get(run, "status")),
	    "failed", "a run without its secrets must not succeed");
	json_array_foreach (json_object_get(run, "steps"), k, s) {
		if (strcmp(json_string_value(json_object_get(s, "id")),
		        "after") == 0) {
			const char *e = json_string_value(json_object_get(s, "error"));
			cr_expect(e != NULL &&
			        strstr(e, "secret cannot be decrypted: wrong "
			                  "cookie/secret key") != NULL,
			    "after: error \"%s\"", e ? e : "(none)");
			said = true;
		}
	}
	cr_expect(said, "no step after in the run");
	json_decref(run);
	{
		char path[800];
		size_t len;
		char *log;
		char want[200];
		snprintf(path, sizeof(path), "%s/got-after.json", c.dir);
		cr_expect(access(path, F_OK) != 0,
		    "the step ran without its secrets");
		snprintf(path, sizeof(path), "%s/coordinator.log", c.dir);
		log = file_read(path, &len);
		snprintf(want, sizeof(want),
		    "event=SECRET-OPEN run=%s msg=\"secret cannot be decrypted: "
		    "wrong cookie/secret key", id);
		cr_expect(has(log, len, want), "the log names the run: %s",
		    want);
		free(log);
	}

	// Back on the right key (the cookie), the run is still there and a
	// retry finishes it with the clear values.
	weft_h_kill(c.coord, SIGTERM);
	c.args[0] = c.args[1] = NULL;
	weft_cluster_start_coord(&c);
	cr_assert_eq(weft_cluster_cli(&c, &out, "retry %s", id), 0, "retry: %s",
	    out);
	free(out);
	run = weft_cluster_run_end(&c, id, 30000);
	cr_expect_str_eq(json_string_value(json_object_get(run, "status")),
	    "succeeded");
	json_decref(run);
	expect_got("got-after.json", false);
	expect_file_clean("coordinator.log");
	expect_file_clean("w0.log");
}

// coord_refuses starts a coordinator with --secret-key-file keyfile,
// expects it to exit with an error naming the flag, and returns its log
// (malloc'd).
static char *
coord_refuses(const char *keyfile, const char *logname)
{
	char    log[700];
	char   *argv[] = { "weft-coordinator", "--db", "sqlite::memory:",
		  "--secret-key-file", (char *) keyfile, "--http", "",
		  "--control", "tcp://127.0.0.1:0", "--cluster",
		  "tcp://127.0.0.1:0", "--results", "tcp://127.0.0.1:0",
		  "--events", "tcp://127.0.0.1:0", NULL };
	pid_t   pid;
	int     st = 0;
	int64_t deadline;
	size_t  len;
	char   *text;

	snprintf(log, sizeof(log), "%s/%s", c.dir, logname);
	pid      = weft_h_spawn(argv, log);
	deadline = weft_clock_mono_ms() + weft_h_timeout_ms(10000);
	while (waitpid(pid, &st, WNOHANG) == 0) {
		cr_assert(weft_clock_mono_ms() < deadline,
		    "the coordinator started with key file %s", keyfile);
		weft_clock_sleep_ms(20);
	}
	cr_expect(WIFEXITED(st) && WEXITSTATUS(st) != 0);
	text = file_read(log, &len);
	cr_expect(has(text, len, "--secret-key-file"), "log: %s",
	    text ? text : "");
	return (text);
}

Test(secrets, secret_key_file_must_exist_and_be_private)
{
	char  keyfile[700];
	char *log;
	FILE *f;

	snprintf(keyfile, sizeof(keyfile), "%s/open.key", c.dir);
	f = fopen(keyfile, "w");
	cr_assert_not_null(f);
	fputs("0123456789abcdef0123456789abcdef0123456789\n", f);
	fclose(f);
	chmod(keyfile, 0644);
	free(coord_refuses(keyfile, "open.log"));
	snprintf(keyfile, sizeof(keyfile), "%s/missing.key", c.dir);
	log = coord_refuses(keyfile, "missing.log");
	cr_expect(strstr(log, "No such file") != NULL, "%s", log);
	cr_expect(access(keyfile, F_OK) != 0, "a key file was made up");
	free(log);
}
