// commands: one function per `weft` command (following the event stream,
// for watch and events --follow, is in watch.c). Each builds its
// ControlRequest from the parsed command line, sends it through
// weft_cli_call and prints the reply: the body as JSON with --json, a
// readable form otherwise.
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "alloc.h"
#include "clock.h"
#include "cli.h"

// cmd_read reads a whole file ("-" is stdin) into *out (malloc'd; free()).
static int
cmd_read(const char *path, char **out)
{
	FILE  *f   = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	char  *buf = NULL;
	size_t len = 0, cap = 0, n;

	if (f == NULL) {
		fprintf(stderr, "weft: cannot read %s: %s\n", path,
		    strerror(errno));
		return (WEFT_CLI_USAGE);
	}
	do {
		if (cap - len < 4096) {
			cap = cap ? cap * 2 : 16384;
			buf = weft_xrealloc(buf, cap);
		}
		n = fread(buf + len, 1, cap - len - 1, f);
		len += n;
	} while (n > 0);
	if (ferror(f)) {
		fprintf(stderr, "weft: cannot read %s: %s\n", path,
		    strerror(errno));
		free(buf);
		buf = NULL;
	}
	if (f != stdin) {
		fclose(f);
	}
	if (buf == NULL) {
		return (WEFT_CLI_USAGE);
	}
	buf[len] = '\0';
	*out     = buf;
	return (WEFT_CLI_OK);
}

// cmd_json_flag checks the JSON text of flag f ("@FILE" reads a file) and
// sets *out to its compact form (malloc'd), or NULL when f is unset.
static int
cmd_json_flag(weft_cli *c, enum weft_cli_flag f, const char *name,
    bool object, char **out)
{
	const char  *val = c->flag[f];
	char        *text = NULL;
	json_t      *v;
	json_error_t jerr;
	int          rv;

	*out = NULL;
	if (val == NULL) {
		return (WEFT_CLI_OK);
	}
	if (val[0] == '@') {
		if ((rv = cmd_read(val + 1, &text)) != WEFT_CLI_OK) {
			return (rv);
		}
		val = text;
	}
	v = json_loads(val, JSON_DECODE_ANY, &jerr);
	free(text);
	if (v == NULL) {
		return (weft_cli_usage_error(
		    "--%s is not valid JSON: %s (line %d, column %d)", name,
		    jerr.text, jerr.line, jerr.column));
	}
	if (object && !json_is_object(v)) {
		json_decref(v);
		return (weft_cli_usage_error("--%s must be a JSON object", name));
	}
	*out = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	json_decref(v);
	return (WEFT_CLI_OK);
}

int
weft_cli_json_flag(weft_cli *c, enum weft_cli_flag f, const char *name,
    bool object, char **out)
{
	return (cmd_json_flag(c, f, name, object, out));
}

// cmd_num_flag parses flag f as an unsigned number up to max into *out
// (left alone when f is unset).
static int
cmd_num_flag(weft_cli *c, enum weft_cli_flag f, const char *name,
    uint64_t max, uint64_t *out)
{
	const char        *val = c->flag[f];
	char              *end;
	unsigned long long n;

	if (val == NULL) {
		return (WEFT_CLI_OK);
	}
	errno = 0;
	n     = strtoull(val, &end, 10);
	if (val[0] < '0' || val[0] > '9' || *end != '\0' || errno != 0 ||
	    n > max) {
		return (weft_cli_usage_error(
		    "--%s wants a number up to %llu, not '%s'", name,
		    (unsigned long long) max, val));
	}
	*out = (uint64_t) n;
	return (WEFT_CLI_OK);
}

// cmd_time_flag parses flag f as a time (epoch ms, RFC 3339 or an age).
static int
cmd_time_flag(weft_cli *c, enum weft_cli_flag f, const char *name,
    uint64_t *out)
{
	int64_t ms;

	if (c->flag[f] == NULL) {
		return (WEFT_CLI_OK);
	}
	if (!weft_clock_parse_time(c->flag[f], weft_clock_wall_ms(), &ms) ||
	    ms < 0) {
		return (weft_cli_usage_error("--%s wants epoch milliseconds, an "
		                             "RFC 3339 time or an age such as "
		                             "15m, not '%s'",
		    name, c->flag[f]));
	}
	*out = (uint64_t) ms;
	return (WEFT_CLI_OK);
}

// The most results one page may hold (the coordinator refuses more).
#define CMD_MAX_LIMIT 10000

// The most runs one `run --count` starts (in batches of 10,000).
#define CMD_MAX_COUNT 1000000

// cmd_str returns flag f's value, or "" (protobuf's absent string).
static char *
cmd_str(weft_cli *c, enum weft_cli_flag f)
{
	return ((char *) (c->flag[f] != NULL ? c->flag[f] : ""));
}

// cmd_sv returns the string at key of obj, or "-" when absent.
static const char *
cmd_sv(json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));
	return (s != NULL ? s : "-");
}

// cmd_ms returns the integer at key of obj (0 when absent).
static int64_t
cmd_ms(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);
	return (json_is_integer(v) ? (int64_t) json_integer_value(v) : 0);
}

// cmd_span returns how long something that started at from has taken: until
// to, or until now while it is still going; -1 when it has not started.
static int64_t
cmd_span(int64_t from, int64_t to)
{
	if (from <= 0) {
		return (-1);
	}
	return ((to > 0 ? to : weft_clock_wall_ms()) - from);
}

// cmd_expect_array checks the shape of a list reply.
static int
cmd_expect_array(json_t *body)
{
	if (!json_is_array(body)) {
		fprintf(stderr, "weft: bad reply from coordinator: expected a "
		                "JSON array\n");
		return (WEFT_CLI_FAIL);
	}
	return (WEFT_CLI_OK);
}

int
weft_cli_cmd_define(weft_cli *c)
{
	Weft__ControlRequest req = WEFT__CONTROL_REQUEST__INIT;
	Weft__DefineRequest  def = WEFT__DEFINE_REQUEST__INIT;
	json_t              *body, *steps;
	char                *text;
	int                  rv;

	if ((rv = cmd_read(c->args[0], &text)) != WEFT_CLI_OK) {
		return (rv);
	}
	def.definition_json = text;
	req.req_case        = WEFT__CONTROL_REQUEST__REQ_DEFINE;
	req.define          = &def;
	rv                  = weft_cli_call(c, &req, &body);
	free(text);
	if (rv != WEFT_CLI_OK) {
		return (rv);
	}
	if (c->json) {
		weft_cli_print_json(body);
	} else {
		steps = json_object_get(body, "steps");
		printf("registered %s version %lld (%lld steps)\n",
		    cmd_sv(body, "name"),
		    (long long) cmd_ms(body, "version"),
		    json_is_array(steps) ? (long long) json_array_size(steps)
		                         : (long long) cmd_ms(body, "steps"));
	}
	json_decref(body);
	return (WEFT_CLI_OK);
}

// cmd_run_is_file decides whether `weft run ARG` names a definition file
// rather than a registered definition.
static bool
cmd_run_is_file(const char *arg)
{
	struct stat st;
	size_t      n = strlen(arg);

	return (strcmp(arg, "-") == 0 ||
	    (stat(arg, &st) == 0 && S_ISREG(st.st_mode)) ||
	    (n > 5 && strcmp(arg + n - 5, ".json") == 0));
}

// cmd_priority_flag reads --priority N (sched) into run: an integer in
// int32 range, negative allowed.
static int
cmd_priority_flag(weft_cli *c, Weft__RunRequest *run)
{
	const char *val = c->flag[WEFT_CLI_F_PRIORITY];
	char       *end;
	long long   n;

	if (val == NULL) {
		return (WEFT_CLI_OK);
	}
	errno = 0;
	n     = strtoll(val, &end, 10);
	if (val[0] == '\0' || *end != '\0' || errno != 0 || n < INT32_MIN ||
	    n > INT32_MAX) {
		return (weft_cli_usage_error("--priority wants an integer from "
		                             "%d to %d (higher runs first), "
		                             "not '%s'",
		    INT32_MIN, INT32_MAX, val));
	}
	run->priority     = (int32_t) n;
	return (WEFT_CLI_OK);
}

int
weft_cli_cmd_run(weft_cli *c)
{
	Weft__ControlRequest req  = WEFT__CONTROL_REQUEST__INIT;
	Weft__RunRequest     run  = WEFT__RUN_REQUEST__INIT;
	json_t              *body = NULL;
	char                *input = NULL, *params = NULL, *def = NULL;
	char                *tags = NULL;
	const char          *run_id;
	uint64_t             count = 0;
	int                  rv;

	if ((rv = cmd_num_flag(c, WEFT_CLI_F_NRUNS, "count", CMD_MAX_COUNT,
	         &count)) != WEFT_CLI_OK) {
		return (rv);
	}
	if (c->flag[WEFT_CLI_F_NRUNS] != NULL && count == 0) {
		return (weft_cli_usage_error("--count wants a number from 1 to "
		                             "%d, not '0'",
		    CMD_MAX_COUNT));
	}
	if (c->flag[WEFT_CLI_F_TIMEOUT] != NULL &&
	    c->flag[WEFT_CLI_F_WAIT] == NULL) {
		return (weft_cli_usage_error("--timeout goes with --wait"));
	}
	if ((rv = cmd_json_flag(c, WEFT_CLI_F_INPUT, "input", false,
	         &input)) != WEFT_CLI_OK ||
	    (rv = cmd_json_flag(c, WEFT_CLI_F_PARAMS, "params", true,
	         &params)) != WEFT_CLI_OK) {
		goto done;
	}
	if (cmd_run_is_file(c->args[0])) {
		if ((rv = cmd_read(c->args[0], &def)) != WEFT_CLI_OK) {
			goto done;
		}
		run.definition_json = def;
	} else {
		run.definition = c->args[0];
	}
	run.input_json  = input != NULL ? input : "";
	run.params_json = params != NULL ? params : "";
	if ((rv = weft_cli_start_at(c, &run.start_at_ms)) != WEFT_CLI_OK ||
	    (rv = weft_cli_run_extras(c, &run, &tags)) != WEFT_CLI_OK ||
	    (rv = cmd_priority_flag(c, &run)) != WEFT_CLI_OK) {
		goto done;
	}
	if (count > 0) {
		// --count: the same request count times, in batches.
		rv = weft_cli_run_many(c, &run, count);
		goto done;
	}
	req.req_case    = WEFT__CONTROL_REQUEST__REQ_RUN;
	req.run         = &run;
	if ((rv = weft_cli_call(c, &req, &body)) != WEFT_CLI_OK) {
		goto done;
	}
	if ((run_id = json_string_value(json_object_get(body, "run_id"))) ==
	    NULL) {
		fprintf(stderr, "weft: bad reply from coordinator: no run_id\n");
		rv = WEFT_CLI_FAIL;
		goto done;
	}
	if (json_is_true(json_object_get(body, "existed"))) {
		// Said on stderr: stdout is the run id either way.
		fprintf(stderr, "weft: run %s already existed (idempotency key "
		                "\"%s\"): not started again\n",
		    run_id, run.idempotency_key);
	}
	if (c->flag[WEFT_CLI_F_WAIT] != NULL) {
		rv = weft_cli_wait(c, run_id,
		    json_string_value(json_object_get(body, "events_url")));
	} else if (c->json) {
		weft_cli_print_json(body);
	} else {
		printf("%s\n", run_id);
	}
done:
	json_decref(body);
	free(input);
	free(params);
	free(def);
	free(tags);
	return (rv);
}

// status_sched prints the run's scheduling (sched): its priority, why a
// queued run waits (a concurrency limit), a running run's ETA.
static void
status_sched(json_t *b)
{
	json_t *wf = json_object_get(b, "waiting_for");
	char    t[48];

	printf("%-10s  %lld\n", "priority", (long long) cmd_ms(b, "priority"));
	if (json_is_object(wf)) {
		printf("%-10s  %s\n", "waiting", cmd_sv(wf, "message"));
	}
	if (json_is_integer(json_object_get(b, "eta_ms"))) {
		printf("%-10s  %s\n", "eta",
		    weft_cli_fmt_time(json_object_get(b, "eta_ms"), t));
	}
}

// status_header prints the run's own fields, one per line.
static void
status_header(json_t *b)
{
	static const char *docs[] = { "input", "params", "output" };
	char    t[48], d[32];
	char   *text;
	json_t *err = json_object_get(b, "error");
	int64_t started = cmd_ms(b, "started_ms"), ended = cmd_ms(b, "ended_ms");

	printf("%-10s  %s\n", "run", cmd_sv(b, "id"));
	printf("%-10s  %s (version %lld)\n", "definition",
	    cmd_sv(b, "definition"), (long long) cmd_ms(b, "version"));
	printf("%-10s  %s\n", "status", cmd_sv(b, "status"));
	if (json_object_size(json_object_get(b, "tags")) > 0) {
		char tags[1024];
		weft_cli_tags_text(json_object_get(b, "tags"), tags, sizeof(tags));
		printf("%-10s  %s\n", "tags", tags);
	}
	status_sched(b);
	if (json_is_object(json_object_get(b, "parent"))) {
		// A child run (a workflow step's): where it came from.
		json_t *p = json_object_get(b, "parent");
		printf("%-10s  %s (step %s)\n", "parent", cmd_sv(p, "run_id"),
		    cmd_sv(p, "step"));
	}
	printf("%-10s  %s\n", "created",
	    weft_cli_fmt_time(json_object_get(b, "created_ms"), t));
	if (json_is_integer(json_object_get(b, "start_at_ms"))) {
		// A delayed start (--at, --delay): when it starts, or started.
		printf("%-10s  %s\n", "start_at",
		    weft_cli_fmt_time(json_object_get(b, "start_at_ms"), t));
	}
	printf("%-10s  %s\n", "started",
	    weft_cli_fmt_time(json_object_get(b, "started_ms"), t));
	printf("%-10s  %s\n", "ended",
	    weft_cli_fmt_time(json_object_get(b, "ended_ms"), t));
	printf("%-10s  %s\n", "duration",
	    weft_cli_fmt_duration(cmd_span(started, ended), d));
	for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
		text = weft_cli_text(json_object_get(b, docs[i]), WEFT_CLI_CELL_MAX);
		printf("%-10s  %s\n", docs[i], text);
		free(text);
	}
	if (json_is_string(err) && json_string_length(err) > 0) {
		text = weft_cli_text(err, 0);
		printf("%-10s  %s\n", "error", text);
		free(text);
	}
}

// status_progress returns "progress: VALUE" (malloc'd) for a step that
// has reported progress and has no output yet, else NULL.
static char *
status_progress(json_t *s)
{
	json_t *p   = json_object_get(json_object_get(s, "progress"), "value");
	json_t *out = json_object_get(s, "output");
	char   *text, *cell;
	size_t  len;

	if (p == NULL || (out != NULL && !json_is_null(out))) {
		return (NULL);
	}
	text = weft_cli_text(p, WEFT_CLI_CELL_MAX - 10);
	len  = strlen(text) + 11;
	cell = weft_xalloc(len);
	snprintf(cell, len, "progress: %s", text);
	free(text);
	return (cell);
}

// status_steps prints the steps of a run as a table.
static void
status_steps(json_t *steps)
{
	static const char *head[] = { "STEP", "TYPE", "STATUS", "ATTEMPT",
		"NODE", "DURATION", "OUTPUT" };
	weft_cli_table t;
	json_t        *s;
	size_t         i;

	weft_cli_table_init(&t, 7, head);
	json_array_foreach (steps, i, s) {
		json_t *err = json_object_get(s, "error");
		char    d[32];
		char   *attempt = weft_cli_text(json_object_get(s, "attempt"), 0);
		char   *node    = weft_cli_text(json_object_get(s, "node"), 0);
		char   *out, *row_out;
		if (json_is_string(json_object_get(s, "child_run"))) {
			// A workflow step runs no worker: its child run instead.
			free(node);
			node = weft_cli_text(json_object_get(s, "child_run"), 0);
		}
		json_t *wf = json_object_get(s, "waiting_for");
		if (json_is_string(err) && json_string_length(err) > 0) {
			out = weft_cli_text(err, WEFT_CLI_CELL_MAX - 7);
			row_out = weft_xalloc(strlen(out) + 8);
			snprintf(row_out, strlen(out) + 8, "error: %s", out);
			free(out);
		} else if ((row_out = status_progress(s)) != NULL) {
			// A running step's progress, where its output will be.
		} else if (wf != NULL) {
			// Why it is not done yet: the coordinator's sentence.
			out     = weft_cli_text(json_object_get(wf, "message"),
			        120);
			row_out = weft_xalloc(strlen(out) + 10);
			snprintf(row_out, strlen(out) + 10, "waiting: %s", out);
			free(out);
		} else {
			row_out = weft_cli_text(
			    json_object_get(s, "output"), WEFT_CLI_CELL_MAX);
		}
		const char *row[] = {
			json_string_value(json_object_get(s, "id")),
			json_string_value(json_object_get(s, "type")),
			json_string_value(json_object_get(s, "status")),
			attempt,
			node,
			weft_cli_fmt_duration(cmd_span(cmd_ms(s, "started_ms"),
			                          cmd_ms(s, "ended_ms")),
			    d),
			row_out,
		};
		weft_cli_table_add(&t, row);
		free(attempt);
		free(node);
		free(row_out);
	}
	weft_cli_table_print(&t);
}

int
weft_cli_cmd_status(weft_cli *c)
{
	Weft__ControlRequest req = WEFT__CONTROL_REQUEST__INIT;
	Weft__StatusRequest  st  = WEFT__STATUS_REQUEST__INIT;
	json_t              *body;
	uint64_t             limit = 0;
	const char          *next;
	int                  rv;

	if (c->flag[WEFT_CLI_F_OUTPUT] != NULL) {
		if (c->flag[WEFT_CLI_F_STEPS_AFTER] != NULL ||
		    c->flag[WEFT_CLI_F_STEPS_LIMIT] != NULL || c->json) {
			return (weft_cli_usage_error("status --output takes "
			                             "--step only (it prints "
			                             "JSON)"));
		}
		return (weft_cli_output(c, c->args[0], c->flag[WEFT_CLI_F_STEP],
		    stdout));
	}
	if (c->flag[WEFT_CLI_F_STEP] != NULL) {
		return (weft_cli_usage_error("status: --step goes with --output"));
	}
	if ((rv = cmd_num_flag(c, WEFT_CLI_F_STEPS_LIMIT, "steps-limit",
	         10000, &limit)) != WEFT_CLI_OK) {
		return (rv);
	}
	st.run_id      = c->args[0];
	st.steps_after = cmd_str(c, WEFT_CLI_F_STEPS_AFTER);
	st.steps_limit = (uint32_t) limit;
	req.req_case   = WEFT__CONTROL_REQUEST__REQ_STATUS;
	req.status     = &st;
	if ((rv = weft_cli_call(c, &req, &body)) != WEFT_CLI_OK) {
		return (rv);
	}
	if (c->json) {
		weft_cli_print_json(body);
	} else {
		status_header(body);
		if (json_array_size(json_object_get(body, "steps")) > 0) {
			printf("\n");
			status_steps(json_object_get(body, "steps"));
		}
	}
	if ((next = json_string_value(json_object_get(body, "next_after"))) !=
	    NULL) {
		fprintf(stderr,
		    "weft: %zu steps shown; the next ones: weft status %s "
		    "--steps-after '%s'\n",
		    json_array_size(json_object_get(body, "steps")), c->args[0],
		    next);
	}
	json_decref(body);
	return (WEFT_CLI_OK);
}

// cmd_list asks for a list. With --json it prints the reply and sets *body
// to NULL; otherwise *body is the array for the caller to print.
static int
cmd_list(weft_cli *c, Weft__ControlRequest *req, json_t **body, char *next,
    size_t nextlen)
{
	int rv;

	if ((rv = weft_cli_call_page(c, req, body, next, nextlen)) !=
	    WEFT_CLI_OK) {
		return (rv);
	}
	if ((rv = cmd_expect_array(*body)) != WEFT_CLI_OK || c->json) {
		if (rv == WEFT_CLI_OK) {
			weft_cli_print_json(*body);
		}
		json_decref(*body);
		*body = NULL;
	}
	return (rv);
}

// How long `runs delete` waits for its answer by default, ms.
#define CMD_DELETE_MS 600000

// cmd_runs_delete is `weft runs delete --before TIME [--status S]`.
static int
cmd_runs_delete(weft_cli *c)
{
	Weft__ControlRequest    req = WEFT__CONTROL_REQUEST__INIT;
	Weft__DeleteRunsRequest dr  = WEFT__DELETE_RUNS_REQUEST__INIT;
	json_t                 *body;
	int                     rv;

	if (c->flag[WEFT_CLI_F_BEFORE] == NULL) {
		return (weft_cli_usage_error("runs delete: --before TIME is "
		                             "required (the runs that ended "
		                             "before it are deleted)"));
	}
	if (c->flag[WEFT_CLI_F_DEFINITION] != NULL ||
	    c->flag[WEFT_CLI_F_SINCE] != NULL ||
	    c->flag[WEFT_CLI_F_UNTIL] != NULL ||
	    c->flag[WEFT_CLI_F_LIMIT] != NULL) {
		return (weft_cli_usage_error("runs delete takes --before and "
		                             "--status only"));
	}
	if ((rv = cmd_time_flag(c, WEFT_CLI_F_BEFORE, "before",
	         &dr.before_ms)) != WEFT_CLI_OK) {
		return (rv);
	}
	// The answer comes when the last batch is deleted: about 4,000
	// runs a second here. Unless WEFT_TIMEOUT_MS says otherwise, wait
	// longer than for other requests (the deletion goes on regardless).
	if (getenv("WEFT_TIMEOUT_MS") == NULL && c->timeout_ms < CMD_DELETE_MS) {
		c->timeout_ms = CMD_DELETE_MS;
	}
	dr.status       = cmd_str(c, WEFT_CLI_F_STATUS);
	req.req_case    = WEFT__CONTROL_REQUEST__REQ_DELETE_RUNS;
	req.delete_runs = &dr;
	if ((rv = weft_cli_call(c, &req, &body)) != WEFT_CLI_OK) {
		return (rv);
	}
	if (c->json) {
		weft_cli_print_json(body);
	} else {
		printf("deleted %lld runs\n", (long long) cmd_ms(body, "deleted"));
	}
	json_decref(body);
	return (WEFT_CLI_OK);
}

int
weft_cli_cmd_runs(weft_cli *c)
{
	static const char *head[] = { "RUN", "DEFINITION", "STATUS", "STEPS",
		"CREATED", "DURATION", "PRIORITY", "TAGS" };
	Weft__ControlRequest req   = WEFT__CONTROL_REQUEST__INIT;
	Weft__RunsRequest    runs  = WEFT__RUNS_REQUEST__INIT;
	uint64_t             limit = 0;
	json_t              *body, *r;
	weft_cli_table       t;
	size_t               i;
	int                  rv;
	char                 next[128];

	if (c->nargs > 0 && strcmp(c->args[0], "delete") == 0) {
		return (cmd_runs_delete(c));
	}
	if (c->nargs > 0) {
		return (weft_cli_usage_error("runs: unknown subcommand '%s' (the "
		                             "one there is: delete)",
		    c->args[0]));
	}
	if ((rv = cmd_num_flag(c, WEFT_CLI_F_LIMIT, "limit", CMD_MAX_LIMIT,
	         &limit)) != WEFT_CLI_OK ||
	    (rv = cmd_time_flag(c, WEFT_CLI_F_SINCE, "since",
	         &runs.since_ms)) != WEFT_CLI_OK ||
	    (rv = cmd_time_flag(c, WEFT_CLI_F_UNTIL, "until",
	         &runs.until_ms)) != WEFT_CLI_OK) {
		return (rv);
	}
	runs.status     = cmd_str(c, WEFT_CLI_F_STATUS);
	runs.definition = cmd_str(c, WEFT_CLI_F_DEFINITION);
	runs.before     = cmd_str(c, WEFT_CLI_F_BEFORE);
	runs.limit      = (uint32_t) limit;
	runs.tags       = (char **) c->tags;
	runs.n_tags     = c->n_tags;
	req.req_case    = WEFT__CONTROL_REQUEST__REQ_RUNS;
	req.runs        = &runs;
	if ((rv = cmd_list(c, &req, &body, next, sizeof(next))) !=
	    WEFT_CLI_OK) {
		return (rv);
	}
	if (next[0] != '\0') {
		// Said on stderr, so that stdout stays the list (or JSON).
		fprintf(stderr, "weft: more runs: weft runs --before %s (with "
		                "the same filters)\n",
		    next);
	}
	if (body == NULL) {
		return (rv);
	}
	// A TAGS column only when a run of the page has tags.
	bool tagged = false;
	json_array_foreach (body, i, r) {
		tagged = tagged || json_object_size(json_object_get(r, "tags")) > 0;
	}
	weft_cli_table_init(&t, tagged ? 8 : 7, head);
	json_array_foreach (body, i, r) {
		char steps[48], created[48], d[32], st[96], at[48], tags[1024];
		char prio[24];
		snprintf(prio, sizeof(prio), "%lld",
		    (long long) cmd_ms(r, "priority"));
		snprintf(steps, sizeof(steps), "%lld/%lld",
		    (long long) cmd_ms(r, "steps_done"),
		    (long long) cmd_ms(r, "steps_total"));
		// A scheduled run says when it starts (--json: start_at_ms).
		snprintf(st, sizeof(st), "%s", cmd_sv(r, "status"));
		if (strcmp(st, "scheduled") == 0) {
			snprintf(st, sizeof(st), "scheduled %s",
			    weft_cli_fmt_time(json_object_get(r, "start_at_ms"), at));
		}
		weft_cli_tags_text(json_object_get(r, "tags"), tags, sizeof(tags));
		const char *row[] = {
			json_string_value(json_object_get(r, "id")),
			json_string_value(json_object_get(r, "definition")),
			st,
			steps,
			weft_cli_fmt_time(json_object_get(r, "created_ms"), created),
			weft_cli_fmt_duration(cmd_span(cmd_ms(r, "created_ms"),
			                          cmd_ms(r, "ended_ms")),
			    d),
			prio,
			tags,
		};
		weft_cli_table_add(&t, row);
	}
	weft_cli_table_print(&t);
	json_decref(body);
	return (WEFT_CLI_OK);
}

// events_format reads --format (and --json, its jsonl) into *fmt.
static int
events_format(weft_cli *c, enum weft_cli_evfmt *fmt)
{
	static const struct {
		const char         *name;
		enum weft_cli_evfmt fmt;
	} names[] = { { "jsonl", WEFT_CLI_EV_JSONL },
		{ "json", WEFT_CLI_EV_JSONL }, { "table", WEFT_CLI_EV_TABLE },
		{ "csv", WEFT_CLI_EV_CSV } };
	const char *s = c->flag[WEFT_CLI_F_FORMAT];

	*fmt = WEFT_CLI_EV_JSONL;
	if (s == NULL) {
		return (WEFT_CLI_OK);
	}
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(s, names[i].name) == 0) {
			*fmt = names[i].fmt;
			if (c->json && *fmt != WEFT_CLI_EV_JSONL) {
				return (weft_cli_usage_error(
				    "--json contradicts --format %s", s));
			}
			return (WEFT_CLI_OK);
		}
	}
	return (weft_cli_usage_error(
	    "--format is jsonl, table or csv, not '%s'", s));
}

// events_filter fills f from the command line.
static int
events_filter(weft_cli *c, weft_cli_evfilter *f)
{
	int rv;

	if ((rv = cmd_time_flag(c, WEFT_CLI_F_SINCE, "since", &f->since_ms)) !=
	        WEFT_CLI_OK ||
	    (rv = cmd_time_flag(c, WEFT_CLI_F_UNTIL, "until", &f->until_ms)) !=
	        WEFT_CLI_OK) {
		return (rv);
	}
	if (f->since_ms != 0 && f->until_ms != 0 &&
	    f->since_ms >= f->until_ms) {
		return (weft_cli_usage_error("--since must be before --until"));
	}
	f->run     = c->flag[WEFT_CLI_F_RUN];
	f->types   = c->types;
	f->n_types = c->n_types;
	f->step    = c->flag[WEFT_CLI_F_STEP];
	f->node    = c->flag[WEFT_CLI_F_NODE];
	f->text    = c->flag[WEFT_CLI_F_TEXT];
	return (WEFT_CLI_OK);
}

// events_page prints one page of the event log: the events after after
// passing f, at most limit of them (0: the coordinator's default).
static int
events_page(weft_cli *c, const weft_cli_evfilter *f, uint64_t after,
    uint64_t limit, weft_cli_evout *out)
{
	Weft__ControlRequest req = WEFT__CONTROL_REQUEST__INIT;
	Weft__EventsRequest  er  = WEFT__EVENTS_REQUEST__INIT;
	json_t              *body, *ev, *norm;
	size_t               i;
	int                  rv;

	char                 next[32];

	weft_cli_evfilter_request(f, true, &er);
	er.after     = after;
	er.limit     = (uint32_t) limit;
	req.req_case = WEFT__CONTROL_REQUEST__REQ_EVENTS;
	req.events   = &er;
	if ((rv = weft_cli_call_page(c, &req, &body, next, sizeof(next))) !=
	    WEFT_CLI_OK) {
		return (rv);
	}
	if ((rv = cmd_expect_array(body)) != WEFT_CLI_OK) {
		json_decref(body);
		return (rv);
	}
	weft_cli_evout_begin(out);
	json_array_foreach (body, i, ev) {
		norm = weft_cli_event_from_reply(ev);
		weft_cli_evout_put(out, norm);
		json_decref(norm);
	}
	weft_cli_evout_end(out);
	if (next[0] != '\0') {
		// Stopping at a limit looked like the end of the log.
		fprintf(stderr,
		    "weft: %zu events shown, more match: go on with --after %s "
		    "(and the same filters)\n",
		    json_array_size(body), next);
	}
	json_decref(body);
	return (WEFT_CLI_OK);
}

int
weft_cli_cmd_events(weft_cli *c)
{
	weft_cli_evfilter    f   = { 0 };
	weft_cli_evout       out = { 0 };
	weft_cli_follow_opts fo  = { 0 };
	uint64_t             after = 0, limit = 0;
	int                  rv;

	if ((rv = events_format(c, &out.fmt)) != WEFT_CLI_OK ||
	    (rv = events_filter(c, &f)) != WEFT_CLI_OK ||
	    (rv = cmd_num_flag(c, WEFT_CLI_F_AFTER, "after", INT64_MAX,
	         &after)) != WEFT_CLI_OK ||
	    (rv = cmd_num_flag(c, WEFT_CLI_F_LIMIT, "limit",
	         c->flag[WEFT_CLI_F_FOLLOW] != NULL ? UINT32_MAX
	                                            : CMD_MAX_LIMIT,
	         &limit)) != WEFT_CLI_OK) {
		return (rv);
	}
	if (c->flag[WEFT_CLI_F_FOLLOW] == NULL &&
	    c->flag[WEFT_CLI_F_TIMEOUT] != NULL) {
		return (weft_cli_usage_error("--timeout goes with --follow"));
	}
	if (c->flag[WEFT_CLI_F_FOLLOW] == NULL) {
		return (events_page(c, &f, after, limit, &out));
	}
	out.stream = true;
	fo.filter  = &f;
	fo.history = true;
	fo.after   = after;
	fo.limit   = limit;
	fo.out     = &out;
	return (weft_cli_follow(c, &fo));
}

// definitions_params lists a definition's parameters (borrowed) as "name"
// or "name=default", separated by commas, in a table cell (malloc'd).
static char *
definitions_params(json_t *params)
{
	json_t     *p, *dflt, *joined;
	const char *name;
	char       *text = weft_xstrdup(""), *v, *next, *cell;
	size_t      len;

	json_object_foreach (params, name, p) {
		dflt = json_object_get(p, "default");
		v    = dflt != NULL ? weft_cli_text(dflt, 0) : NULL;
		len  = strlen(text) + strlen(name) + (v ? strlen(v) : 0) + 3;
		next = weft_xalloc(len);
		snprintf(next, len, "%s%s%s%s%s", text, text[0] ? "," : "",
		    name, v != NULL ? "=" : "", v != NULL ? v : "");
		free(text);
		free(v);
		text = next;
	}
	// Cut like every other cell.
	joined = json_string(text);
	cell   = weft_cli_text(joined, WEFT_CLI_CELL_MAX);
	json_decref(joined);
	free(text);
	return (cell);
}

int
weft_cli_cmd_definitions(weft_cli *c)
{
	static const char *head[] = { "NAME", "VERSION", "STEPS", "PARAMS",
		"CREATED" };
	Weft__ControlRequest    req = WEFT__CONTROL_REQUEST__INIT;
	Weft__DefinitionsRequest dr = WEFT__DEFINITIONS_REQUEST__INIT;
	json_t                 *body, *d;
	weft_cli_table          t;
	size_t                  i;
	int                     rv;

	if (c->nargs == 1) {
		return (weft_cli_definition_versions(c)); // one name's versions
	}
	req.req_case    = WEFT__CONTROL_REQUEST__REQ_DEFINITIONS;
	req.definitions = &dr;
	if ((rv = cmd_list(c, &req, &body, NULL, 0)) != WEFT_CLI_OK ||
	    body == NULL) {
		return (rv);
	}
	weft_cli_table_init(&t, 5, head);
	json_array_foreach (body, i, d) {
		json_t *steps = json_object_get(
		    json_object_get(d, "definition"), "steps");
		char version[24], nsteps[24], created[48];
		char *cell = definitions_params(json_object_get(d, "params"));
		snprintf(version, sizeof(version), "%lld",
		    (long long) cmd_ms(d, "version"));
		snprintf(nsteps, sizeof(nsteps), "%zu", json_array_size(steps));
		const char *row[] = {
			json_string_value(json_object_get(d, "name")),
			version,
			nsteps,
			cell[0] != '\0' ? cell : "-",
			weft_cli_fmt_time(
			    json_object_get(d, "created_ms"), created),
		};
		weft_cli_table_add(&t, row);
		free(cell);
	}
	weft_cli_table_print(&t);
	json_decref(body);
	return (WEFT_CLI_OK);
}

// workers_types joins a worker's step types with commas (malloc'd).
static char *
workers_types(json_t *types)
{
	size_t  len = 1, i, at = 0;
	json_t *t;
	char   *s;

	json_array_foreach (types, i, t) {
		len += json_string_length(t) + 1;
	}
	s = weft_xalloc(len); // zeroed, so always terminated
	json_array_foreach (types, i, t) {
		size_t n = json_string_length(t);
		if (i > 0) {
			s[at++] = ',';
		}
		memcpy(s + at, json_is_string(t) ? json_string_value(t) : "", n);
		at += n;
	}
	return (s);
}

int
weft_cli_cmd_workers(weft_cli *c)
{
	static const char *head[] = { "NAME", "ADDRESS", "STATE", "SLOTS",
		"LAST SEEN", "TYPES" };
	Weft__ControlRequest req = WEFT__CONTROL_REQUEST__INIT;
	Weft__WorkersRequest wr  = WEFT__WORKERS_REQUEST__INIT;
	json_t              *body, *w;
	weft_cli_table       t;
	size_t               i;
	int                  rv;

	req.req_case = WEFT__CONTROL_REQUEST__REQ_WORKERS;
	req.workers  = &wr;
	if ((rv = cmd_list(c, &req, &body, NULL, 0)) != WEFT_CLI_OK ||
	    body == NULL) {
		return (rv);
	}
	weft_cli_table_init(&t, 6, head);
	json_array_foreach (body, i, w) {
		char    slots[48], seen[48], d[32];
		int64_t last  = cmd_ms(w, "last_seen_ms");
		char   *types = workers_types(json_object_get(w, "step_types"));
		snprintf(slots, sizeof(slots), "%lld/%lld",
		    (long long) cmd_ms(w, "running"),
		    (long long) cmd_ms(w, "slots"));
		snprintf(seen, sizeof(seen), "%s ago",
		    weft_cli_fmt_duration(cmd_span(last, 0), d));
		const char *row[] = {
			json_string_value(json_object_get(w, "name")),
			json_string_value(json_object_get(w, "address")),
			json_string_value(json_object_get(w, "state")),
			slots,
			last > 0 ? seen : "-",
			types,
		};
		weft_cli_table_add(&t, row);
		free(types);
	}
	weft_cli_table_print(&t);
	json_decref(body);
	return (WEFT_CLI_OK);
}

int
weft_cli_cmd_lifecycle(weft_cli *c)
{
	Weft__ControlRequest   req = WEFT__CONTROL_REQUEST__INIT;
	Weft__LifecycleRequest lr  = WEFT__LIFECYCLE_REQUEST__INIT;
	json_t                *body;
	int                    rv;

	if ((rv = weft_cli_bulk_check(c)) != WEFT_CLI_OK) {
		return (rv);
	}
	if (c->nargs == 0) {
		return (weft_cli_bulk(c));
	}
	lr.run_id     = c->args[0];
	lr.action     = (char *) c->command;
	lr.from       = cmd_str(c, WEFT_CLI_F_FROM);
	req.req_case  = WEFT__CONTROL_REQUEST__REQ_LIFECYCLE;
	req.lifecycle = &lr;
	if ((rv = weft_cli_call(c, &req, &body)) != WEFT_CLI_OK) {
		return (rv);
	}
	if (c->json) {
		weft_cli_print_json(body);
	} else if (json_is_null(body)) {
		printf("%s %s: ok\n", c->command, c->args[0]);
	} else {
		weft_cli_print_fields(body);
	}
	json_decref(body);
	return (WEFT_CLI_OK);
}

int
weft_cli_cmd_info(weft_cli *c)
{
	Weft__ControlRequest req  = WEFT__CONTROL_REQUEST__INIT;
	Weft__InfoRequest    info = WEFT__INFO_REQUEST__INIT;

	req.req_case = WEFT__CONTROL_REQUEST__REQ_INFO;
	req.info     = &info;
	return (weft_cli_call_print(c, &req));
}

int
weft_cli_cmd_signal(weft_cli *c)
{
	Weft__ControlRequest req = WEFT__CONTROL_REQUEST__INIT;
	Weft__SignalRequest  sr  = WEFT__SIGNAL_REQUEST__INIT;
	char                *data = NULL;
	json_t              *body;
	int                  rv;

	if ((rv = cmd_json_flag(c, WEFT_CLI_F_DATA, "data", false, &data)) !=
	    WEFT_CLI_OK) {
		return (rv);
	}
	sr.run_id    = c->args[0];
	sr.name      = c->args[1];
	sr.data_json = data != NULL ? data : "";
	sr.reject    = c->flag[WEFT_CLI_F_REJECT] != NULL;
	req.req_case = WEFT__CONTROL_REQUEST__REQ_SIGNAL;
	req.signal   = &sr;
	rv           = weft_cli_call(c, &req, &body);
	free(data);
	if (rv != WEFT_CLI_OK) {
		return (rv);
	}
	if (c->json) {
		weft_cli_print_json(body);
	} else {
		json_t *st = json_object_get(body, "steps");
		size_t  k;
		json_t *v;
		printf("signal %s %s to run %s:", c->args[1],
		    sr.reject ? "rejected" : "delivered", c->args[0]);
		json_array_foreach (st, k, v) {
			printf(" %s", json_string_value(v));
		}
		printf("\n");
	}
	json_decref(body);
	return (WEFT_CLI_OK);
}
