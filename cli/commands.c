// commands: one function per `weft` command (watch is in watch.c). Each
// builds its ControlRequest from the parsed command line, sends it through
// weft_cli_call and prints the reply: the body as JSON with --json, a
// readable form otherwise.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "alloc.h"
#include "clock.h"
#include "cli.h"

// Cells of tables are cut to this many characters.
#define CMD_CELL_MAX 60

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

// cmd_time_flag parses flag f as a time (epoch ms or RFC 3339).
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
		return (weft_cli_usage_error("--%s wants epoch milliseconds or "
		                             "an RFC 3339 time, not '%s'",
		    name, c->flag[f]));
	}
	*out = (uint64_t) ms;
	return (WEFT_CLI_OK);
}

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

int
weft_cli_cmd_run(weft_cli *c)
{
	Weft__ControlRequest req  = WEFT__CONTROL_REQUEST__INIT;
	Weft__RunRequest     run  = WEFT__RUN_REQUEST__INIT;
	json_t              *body = NULL;
	char                *input = NULL, *params = NULL, *def = NULL;
	const char          *run_id;
	int                  rv;

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
	req.req_case    = WEFT__CONTROL_REQUEST__REQ_RUN;
	req.run         = &run;
	if ((rv = weft_cli_call(c, &req, &body)) != WEFT_CLI_OK) {
		goto done;
	}
	if ((run_id = json_string_value(json_object_get(body, "run_id"))) ==
	    NULL) {
		fprintf(stderr, "weft: bad reply from coordinator: no run_id\n");
		rv = WEFT_CLI_FAIL;
	} else if (c->flag[WEFT_CLI_F_WAIT] != NULL) {
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
	return (rv);
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
	printf("%-10s  %s\n", "created",
	    weft_cli_fmt_time(json_object_get(b, "created_ms"), t));
	printf("%-10s  %s\n", "started",
	    weft_cli_fmt_time(json_object_get(b, "started_ms"), t));
	printf("%-10s  %s\n", "ended",
	    weft_cli_fmt_time(json_object_get(b, "ended_ms"), t));
	printf("%-10s  %s\n", "duration",
	    weft_cli_fmt_duration(cmd_span(started, ended), d));
	for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
		text = weft_cli_text(json_object_get(b, docs[i]), CMD_CELL_MAX);
		printf("%-10s  %s\n", docs[i], text);
		free(text);
	}
	if (json_is_string(err) && json_string_length(err) > 0) {
		text = weft_cli_text(err, 0);
		printf("%-10s  %s\n", "error", text);
		free(text);
	}
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
		if (json_is_string(err) && json_string_length(err) > 0) {
			out = weft_cli_text(err, CMD_CELL_MAX - 7);
			row_out = weft_xalloc(strlen(out) + 8);
			snprintf(row_out, strlen(out) + 8, "error: %s", out);
			free(out);
		} else {
			row_out = weft_cli_text(
			    json_object_get(s, "output"), CMD_CELL_MAX);
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
	int                  rv;

	st.run_id    = c->args[0];
	req.req_case = WEFT__CONTROL_REQUEST__REQ_STATUS;
	req.status   = &st;
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
	json_decref(body);
	return (WEFT_CLI_OK);
}

int
weft_cli_cmd_runs(weft_cli *c)
{
	static const char *head[] = { "RUN", "DEFINITION", "STATUS", "STEPS",
		"CREATED", "DURATION" };
	Weft__ControlRequest req   = WEFT__CONTROL_REQUEST__INIT;
	Weft__RunsRequest    runs  = WEFT__RUNS_REQUEST__INIT;
	uint64_t             limit = 0;
	json_t              *body, *r;
	weft_cli_table       t;
	size_t               i;
	int                  rv;

	if ((rv = cmd_num_flag(c, WEFT_CLI_F_LIMIT, "limit", UINT32_MAX,
	         &limit)) != WEFT_CLI_OK) {
		return (rv);
	}
	runs.status     = cmd_str(c, WEFT_CLI_F_STATUS);
	runs.definition = cmd_str(c, WEFT_CLI_F_DEFINITION);
	runs.before     = cmd_str(c, WEFT_CLI_F_BEFORE);
	runs.limit      = (uint32_t) limit;
	req.req_case    = WEFT__CONTROL_REQUEST__REQ_RUNS;
	req.runs        = &runs;
	if ((rv = weft_cli_call(c, &req, &body)) != WEFT_CLI_OK) {
		return (rv);
	}
	if ((rv = cmd_expect_array(body)) != WEFT_CLI_OK || c->json) {
		if (rv == WEFT_CLI_OK) {
			weft_cli_print_json(body);
		}
		json_decref(body);
		return (rv);
	}
	weft_cli_table_init(&t, 6, head);
	json_array_foreach (body, i, r) {
		char steps[48], created[48], d[32];
		snprintf(steps, sizeof(steps), "%lld/%lld",
		    (long long) cmd_ms(r, "steps_done"),
		    (long long) cmd_ms(r, "steps_total"));
		const char *row[] = {
			json_string_value(json_object_get(r, "id")),
			json_string_value(json_object_get(r, "definition")),
			json_string_value(json_object_get(r, "status")),
			steps,
			weft_cli_fmt_time(json_object_get(r, "created_ms"), created),
			weft_cli_fmt_duration(cmd_span(cmd_ms(r, "created_ms"),
			                          cmd_ms(r, "ended_ms")),
			    d),
		};
		weft_cli_table_add(&t, row);
	}
	weft_cli_table_print(&t);
	json_decref(body);
	return (WEFT_CLI_OK);
}

// events_table prints events (already in the standard form) as a table.
static void
events_table(json_t *events)
{
	static const char *head[] = { "ID", "TS", "RUN", "TYPE", "STEP",
		"ATTEMPT", "NODE", "DATA" };
	static const char *keys[] = { "id", "ts", "run", "type", "step",
		"attempt", "node", "data" };
	weft_cli_table t;
	json_t        *ev;
	size_t         i;

	weft_cli_table_init(&t, 8, head);
	json_array_foreach (events, i, ev) {
		char       *cell[8];
		const char *row[8];
		for (size_t k = 0; k < 8; k++) {
			cell[k] = weft_cli_text(json_object_get(ev, keys[k]),
			    k == 7 ? CMD_CELL_MAX : 0);
			row[k]  = cell[k];
		}
		row[2] = weft_cli_short_id(cell[2]);
		weft_cli_table_add(&t, row);
		for (size_t k = 0; k < 8; k++) {
			free(cell[k]);
		}
	}
	weft_cli_table_print(&t);
}

// events_request fills er from the command line.
static int
events_request(weft_cli *c, Weft__EventsRequest *er)
{
	uint64_t after = 0, limit = 0;
	int      rv;

	if ((rv = cmd_num_flag(c, WEFT_CLI_F_AFTER, "after", UINT64_MAX,
	         &after)) != WEFT_CLI_OK ||
	    (rv = cmd_num_flag(c, WEFT_CLI_F_LIMIT, "limit", UINT32_MAX,
	         &limit)) != WEFT_CLI_OK ||
	    (rv = cmd_time_flag(c, WEFT_CLI_F_SINCE, "since",
	         &er->since_ms)) != WEFT_CLI_OK ||
	    (rv = cmd_time_flag(c, WEFT_CLI_F_UNTIL, "until",
	         &er->until_ms)) != WEFT_CLI_OK) {
		return (rv);
	}
	er->run_id  = cmd_str(c, WEFT_CLI_F_RUN);
	er->step_id = cmd_str(c, WEFT_CLI_F_STEP);
	er->node    = cmd_str(c, WEFT_CLI_F_NODE);
	er->types   = c->types;
	er->n_types = c->n_types;
	er->after   = after;
	er->limit   = (uint32_t) limit;
	return (WEFT_CLI_OK);
}

int
weft_cli_cmd_events(weft_cli *c)
{
	Weft__ControlRequest req    = WEFT__CONTROL_REQUEST__INIT;
	Weft__EventsRequest  er     = WEFT__EVENTS_REQUEST__INIT;
	const char          *format = c->flag[WEFT_CLI_F_FORMAT];
	bool                 table  = false;
	json_t              *body, *ev, *norm;
	size_t               i;
	int                  rv;

	if (format != NULL && !c->json) {
		if (strcmp(format, "table") == 0) {
			table = true;
		} else if (strcmp(format, "json") != 0) {
			return (weft_cli_usage_error(
			    "--format is json or table, not '%s'", format));
		}
	}
	if ((rv = events_request(c, &er)) != WEFT_CLI_OK) {
		return (rv);
	}
	req.req_case = WEFT__CONTROL_REQUEST__REQ_EVENTS;
	req.events   = &er;
	if ((rv = weft_cli_call(c, &req, &body)) != WEFT_CLI_OK) {
		return (rv);
	}
	if ((rv = cmd_expect_array(body)) != WEFT_CLI_OK) {
		json_decref(body);
		return (rv);
	}
	norm = json_array();
	json_array_foreach (body, i, ev) {
		json_array_append_new(norm, weft_cli_event_from_reply(ev));
	}
	if (table) {
		events_table(norm);
	} else {
		json_array_foreach (norm, i, ev) {
			weft_cli_event_print(ev, WEFT_CLI_EV_JSON);
		}
	}
	json_decref(norm);
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
	if ((rv = weft_cli_call(c, &req, &body)) != WEFT_CLI_OK) {
		return (rv);
	}
	if ((rv = cmd_expect_array(body)) != WEFT_CLI_OK || c->json) {
		if (rv == WEFT_CLI_OK) {
			weft_cli_print_json(body);
		}
		json_decref(body);
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

	lr.run_id     = c->args[0];
	lr.action     = (char *) c->command;
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
	json_t              *body;
	int                  rv;

	req.req_case = WEFT__CONTROL_REQUEST__REQ_INFO;
	req.info     = &info;
	if ((rv = weft_cli_call(c, &req, &body)) != WEFT_CLI_OK) {
		return (rv);
	}
	if (c->json) {
		weft_cli_print_json(body);
	} else {
		weft_cli_print_fields(body);
	}
	json_decref(body);
	return (WEFT_CLI_OK);
}
