// cli: what the files of the `weft` command line client share: the parsed
// command line, the control connection to the coordinator, the printing
// helpers (tables, event lines) and the commands themselves.
#ifndef WEFT_CLI_H
#define WEFT_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>
#include <nng/nng.h>

#include "wire.h"

// Exit statuses of the weft command.
enum weft_cli_exit {
	WEFT_CLI_OK          = 0, // done; for `run --wait`: the run succeeded
	WEFT_CLI_FAIL        = 1, // error reply, bad reply, run did not succeed
	WEFT_CLI_USAGE       = 2, // bad command line or bad local input
	WEFT_CLI_UNREACHABLE = 3, // no connection to or no reply from the coordinator
};

// Flags of the command line. Each command accepts a subset (main.c).
enum weft_cli_flag {
	WEFT_CLI_F_COORDINATOR, // global
	WEFT_CLI_F_HELP,        // global
	WEFT_CLI_F_TOKEN,       // global
	WEFT_CLI_F_STREAM,      // global
	WEFT_CLI_F_TLS_CERT,    // global
	WEFT_CLI_F_TLS_KEY,     // global
	WEFT_CLI_F_TLS_CA,      // global
	WEFT_CLI_F_INPUT,
	WEFT_CLI_F_PARAMS,
	WEFT_CLI_F_WAIT,
	WEFT_CLI_F_STATUS,
	WEFT_CLI_F_DEFINITION,
	WEFT_CLI_F_BEFORE,
	WEFT_CLI_F_RUN,
	WEFT_CLI_F_TYPE, // repeatable, comma-separated
	WEFT_CLI_F_STEP,
	WEFT_CLI_F_NODE,
	WEFT_CLI_F_TEXT,
	WEFT_CLI_F_AFTER,
	WEFT_CLI_F_SINCE,
	WEFT_CLI_F_UNTIL,
	WEFT_CLI_F_LIMIT,
	WEFT_CLI_F_FORMAT,
	WEFT_CLI_F_FOLLOW,
	WEFT_CLI_F_TIMEOUT,
	WEFT_CLI_F_JSON,
	WEFT_CLI_F_OUTPUT,      // status: print an output whole
	WEFT_CLI_F_STEPS_AFTER, // status: steps after this one
	WEFT_CLI_F_STEPS_LIMIT, // status: most steps shown
	WEFT_CLI_F_NRUNS,       // run --count: how many runs
	WEFT_CLI_F_DATA,        // signal: the data (JSON)
	WEFT_CLI_F_REJECT,      // signal: reject instead
	WEFT_CLI_F_AT,          // run: delayed start at a time
	WEFT_CLI_F_DELAY,       // run: delayed start after a duration
	WEFT_CLI_F_CRON,        // schedule create: the expression
	WEFT_CLI_F_TIMEZONE,    // schedule create: its zone
	WEFT_CLI_F_OVERLAP,     // schedule create: skip|allow|cancel_previous
	WEFT_CLI_F_CATCHUP,     // schedule create: none|one|all
	WEFT_CLI_F_TAG,         // repeatable: run tags, or tag filters
	WEFT_CLI_F_IDEMPOTENCY_KEY, // run: the request's idempotency key
	WEFT_CLI_F_VERSION,     // run: the definition's version
	WEFT_CLI_F_FROM,        // retry: from this step
	WEFT_CLI_F_DRY_RUN,     // bulk: report only
	WEFT_CLI_F_PRIORITY,    // run: the run's priority (sched)
	WEFT_CLI_F_COUNT
};

#define WEFT_CLI_DEFAULT_URL "tcp://127.0.0.1:7420"
#define WEFT_CLI_DEFAULT_TIMEOUT_MS 10000
// How long `run --wait`, `watch` and `events --follow` go on while the
// coordinator is unreachable, unless --timeout says otherwise.
#define WEFT_CLI_DEFAULT_UNREACHABLE_MS 60000

// One invocation of the client: the parsed command line and the control
// connection. Strings are borrowed from argv and the environment unless
// noted.
typedef struct weft_cli {
	const char *command;              // command name ("run")
	const char *flag[WEFT_CLI_F_COUNT]; // value; "" for a set boolean; NULL unset
	char      **types;                // --type values, split (malloc'd)
	size_t      n_types;
	const char **tags;                // --tag values (the array malloc'd)
	size_t      n_tags;
	char      **args;                 // positional arguments after the command
	int         nargs;
	const char *url;                  // control URL of the coordinator
	const char *token;                // API token (--token, WEFT_TOKEN),
	                                  // or NULL
	const char *stream;               // event stream URL (--stream,
	                                  // WEFT_STREAM), or NULL: the
	                                  // coordinator's events_url
	int         timeout_ms;           // reply timeout, ms
	int64_t     unreachable_ms;       // --timeout: a wait or a follow
	                                  // gives up after the coordinator
	                                  // was unreachable this long, ms;
	                                  // 0: never
	bool        waiting;              // a wait or a follow is on: a call
	                                  // waits for its reply at most until
	                                  // heard_ms + unreachable_ms
	int64_t     heard_ms;             // monotonic ms of the coordinator's
	                                  // last sign of life: a reply
	                                  // (control.c), an event (watch.c)
	bool        json;                 // --json given
	nng_socket  sock;                 // req0, dialed on the first request
	bool        sock_open;            // sock is open and dialed
	weft_wire   wire;                 // envelope sender state
	struct weft_tls *tls;             // --tls-* files; NULL: TLS off
} weft_cli;

// ---- control.c: requests to the coordinator and the event stream ----

// weft_cli_call sends req (borrowed) to the coordinator and waits for the
// reply. On WEFT_CLI_OK *body is the reply body (new reference; JSON null
// when empty). Otherwise the problem has been printed to stderr and the
// result is the exit status: WEFT_CLI_FAIL for an error or malformed reply,
// WEFT_CLI_UNREACHABLE when the coordinator cannot be reached or does not
// answer within c->timeout_ms (while c->waiting, at the latest when it has
// been unreachable for c->unreachable_ms). Any reply sets c->heard_ms.
int weft_cli_call(weft_cli *c, Weft__ControlRequest *req, json_t **body);

// weft_cli_call_print is weft_cli_call, then the answer printed: as JSON
// with --json, else as "key  value" lines.
int weft_cli_call_print(weft_cli *c, Weft__ControlRequest *req);

// weft_cli_call_page is weft_cli_call for a list: next (nextlen bytes, or
// NULL) gets the cursor of the next page when the coordinator cut this one
// short ("" when it is the last).
int weft_cli_call_page(weft_cli *c, Weft__ControlRequest *req, json_t **body,
    char *next, size_t nextlen);

// weft_cli_output writes to out the output step_id (NULL: the run itself)
// of run_id recorded, whole, however large: one OutputRequest per chunk.
// Returns an exit status (problems printed to stderr).
int weft_cli_output(
    weft_cli *c, const char *run_id, const char *step_id, FILE *out);

// weft_cli_close closes the control socket (if open).
void weft_cli_close(weft_cli *c);

// weft_cli_close_socket closes s, waiting at most 2 s: nng 1.5.2's close
// can hang, and the CLI is on its way out (stdout is flushed first).
void weft_cli_close_socket(nng_socket s);

// weft_cli_sub_open opens a sub0 socket on *out subscribed to the events of
// topic (a "run:<id>" topic exactly, and WEFT_TOPIC_MIXED with it: the
// caller keeps the events of its run; "" for every event) and dials c->stream
// if set, else url (with c's TLS files for a tls+tcp:// or wss:// url),
// blocking until connected. A ws:// or wss:// stream is dialed with
// c->token as "Authorization: Bearer". Returns 0 or an nng error (nothing
// left open); *used gets the URL dialed (borrowed).
int weft_cli_sub_open(weft_cli *c, nng_socket *out, const char *url,
    const char *topic, const char **used);

// weft_cli_sub_recv waits up to timeout_ms for one batch of events. Returns 1
// with *env (free with weft_wire_free; env->events is set), 0 when nothing
// usable came (timeout, undecodable or unauthentic message), or -1 when the
// socket failed. With the cluster cookie (found at the default path or
// $WEFT_COOKIE_FILE) every message's tag is verified.
int weft_cli_sub_recv(weft_cli *c, nng_socket s, int timeout_ms,
    Weft__Envelope **env);

// ---- print.c: output formats ----

// weft_cli_event_from_reply returns a new event object with exactly the
// standard keys (id, run, seq, ts, type, step, attempt, node, data), in that
// order, from one element of an events reply (borrowed). Absent run, step
// and node are null, so are attempt 0 and an absent attempt; ts is an RFC
// 3339 string; data an object.
json_t *weft_cli_event_from_reply(json_t *ev);

// weft_cli_event_from_pb is weft_cli_event_from_reply for an event from the
// stream (borrowed).
json_t *weft_cli_event_from_pb(const Weft__Event *ev);

// weft_cli_event_id returns the id of an event object (0 when absent).
uint64_t weft_cli_event_id(json_t *ev);

// weft_cli_event_terminal reports whether type ends a run.
bool weft_cli_event_terminal(const char *type);

// weft_cli_status_terminal reports whether a run status is final.
bool weft_cli_status_terminal(const char *status);

// weft_cli_print_json prints v (borrowed) as compact JSON and a newline.
void weft_cli_print_json(json_t *v);

// weft_cli_print_fields prints an object as aligned "key  value" lines
// (strings bare, other values as compact JSON); anything else as JSON.
void weft_cli_print_fields(json_t *v);

// weft_cli_text returns a new string for a cell: strings bare, null "-",
// anything else compact JSON; control characters become spaces and the
// result is cut to at most max characters (0: no limit). free() it.
char *weft_cli_text(json_t *v, size_t max);

// weft_cli_fmt_time writes a wall-clock ms value (a JSON number, or an RFC
// 3339 string kept as is) into buf (48 bytes); "-" when absent or zero.
const char *weft_cli_fmt_time(json_t *v, char *buf);

// weft_cli_fmt_duration writes ms as "850ms", "12.3s", "4m05s", "2h03m" or
// "3d04h" into buf (32 bytes); "-" when ms < 0.
const char *weft_cli_fmt_duration(int64_t ms, char *buf);

// Cells of readable tables are cut to this many characters.
#define WEFT_CLI_CELL_MAX 60

// A table printed with aligned columns; cells are copied.
typedef struct weft_cli_table {
	size_t ncols;
	size_t nrows; // including the header row
	size_t cap;   // rows allocated
	char **cells; // nrows * ncols strings, malloc'd
} weft_cli_table;

// weft_cli_table_init starts a table with header (ncols strings, borrowed).
void weft_cli_table_init(weft_cli_table *t, size_t ncols,
    const char *const *header);

// weft_cli_table_add appends a row of ncols strings (borrowed; NULL is "-").
void weft_cli_table_add(weft_cli_table *t, const char *const *row);

// weft_cli_table_print prints the table on stdout and frees its cells.
void weft_cli_table_print(weft_cli_table *t);

// Output formats of events.
enum weft_cli_evfmt {
	WEFT_CLI_EV_JSONL, // one compact JSON object per line, standard keys
	WEFT_CLI_EV_TABLE, // aligned columns under a header line
	WEFT_CLI_EV_CSV,   // a header line, then RFC 4180 rows
};

// The printer of events: `weft events` (a page, or following) and `weft
// watch` all print through one. The caller sets fmt and stream (zeroing the
// rest), then calls begin, put for each event, and end.
typedef struct weft_cli_evout {
	enum weft_cli_evfmt fmt;
	bool                stream; // table: each row as it comes, in fixed
	                            // columns; otherwise sized at the end
	weft_cli_table      table;  // a sized table: its rows so far
} weft_cli_evout;

// weft_cli_evout_begin prints what comes before the events: the header of a
// CSV or of a streamed table.
void weft_cli_evout_begin(weft_cli_evout *o);

// weft_cli_evout_put prints one event object in the standard form
// (borrowed); a sized table keeps the row until the end.
void weft_cli_evout_put(weft_cli_evout *o, json_t *ev);

// weft_cli_evout_end prints a sized table; frees what the printer holds.
void weft_cli_evout_end(weft_cli_evout *o);

// ---- filter.c: which events ----

// The events `weft events` asks for, and `weft watch` follows. Strings are
// borrowed; NULL (or 0) leaves a field out.
typedef struct weft_cli_evfilter {
	const char *run;      // one run
	char      **types;    // one of these types (n_types 0: any)
	size_t      n_types;
	const char *step;
	const char *node;
	const char *text;     // a substring of the data as JSON text
	uint64_t    since_ms; // ts >= since_ms
	uint64_t    until_ms; // ts < until_ms
} weft_cli_evfilter;

// weft_cli_evfilter_request fills er (after, limit are left alone) from f:
// every field, or only the run unless full. er borrows f's strings.
void weft_cli_evfilter_request(const weft_cli_evfilter *f, bool full,
    Weft__EventsRequest *er);

// weft_cli_evfilter_match reports whether an event object in the standard
// form (borrowed) passes f (NULL passes everything), the way the store
// would filter it.
bool weft_cli_evfilter_match(const weft_cli_evfilter *f, json_t *ev);

// ---- commands.c: one function per command; each returns an exit status ----

int weft_cli_cmd_define(weft_cli *c);
int weft_cli_cmd_run(weft_cli *c);
int weft_cli_cmd_status(weft_cli *c);
int weft_cli_cmd_runs(weft_cli *c);
int weft_cli_cmd_events(weft_cli *c);
int weft_cli_cmd_definitions(weft_cli *c);
int weft_cli_cmd_workers(weft_cli *c);
int weft_cli_cmd_lifecycle(weft_cli *c);
// weft_cli_cmd_signal: `weft signal RUN NAME [--data JSON] [--reject]`.
int weft_cli_cmd_signal(weft_cli *c);
int weft_cli_cmd_info(weft_cli *c);
// weft_cli_json_flag checks the JSON text of flag f (name for messages;
// "@FILE" reads a file; object: must be an object) and sets *out to its
// compact text (malloc'd), NULL when f is unset; else a usage error.
int weft_cli_json_flag(weft_cli *c, enum weft_cli_flag f, const char *name,
    bool object, char **out);
// schedule.c: `weft schedule ...` and the test clock's `weft clock`.
int weft_cli_cmd_schedule(weft_cli *c);
int weft_cli_cmd_clock(weft_cli *c);
// weft_cli_start_at reads --at / --delay into *ms (wall ms; 0 when
// neither is given); a usage error names the flag and the forms.
int weft_cli_start_at(weft_cli *c, int64_t *ms);

// weft_cli_check_values refuses (a usage error naming the flag and the
// values it takes) a --type, --status, --format, --overlap or --catchup
// outside its list; values.c. Called before any request is sent.
int weft_cli_check_values(weft_cli *c);

// weft_cli_usage_error prints "weft: <message>" and a hint to stderr and
// returns WEFT_CLI_USAGE (main.c).
int weft_cli_usage_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

// ---- submit.c: many runs in few requests ----

// weft_cli_run_many starts count runs of run (borrowed) in batch requests
// and prints their ids, one per line (with --json, the results once at
// the end); a run refused is named on stderr. With --wait, then waits for
// each run in turn. Returns WEFT_CLI_OK only if every run was created
// (and, waiting, succeeded).
int weft_cli_run_many(weft_cli *c, Weft__RunRequest *run, uint64_t count);

// weft_cli_cmd_submit sends each line of the file args[0] ("-": stdin), a
// JSON run request like the body of POST /api/v1/runs, in batch requests,
// and prints one line per input line in order: the run id, or "line K:
// error" (blank lines are skipped). WEFT_CLI_FAIL when any line failed.
int weft_cli_cmd_submit(weft_cli *c);

// ---- watch.c: following the event stream ----

// What weft_cli_follow prints: the stored events (history) then the live
// ones, all passing the filter. Pointers are borrowed.
typedef struct weft_cli_follow_opts {
	const weft_cli_evfilter *filter; // filter->run: follow one run, and
	                                 // end with it; otherwise everything,
	                                 // until SIGINT or SIGTERM
	bool            history;         // print the stored events first
	uint64_t        after;           // the history starts after this id
	uint64_t        limit;           // the history prints at most this
	                                 // many (0: all); the rest is skipped
	weft_cli_evout *out;             // begun and ended here
} weft_cli_follow_opts;

// weft_cli_follow subscribes to the event stream, prints the history when
// asked, then the events of the stream as they come, filling the gaps
// pub/sub leaves from the store, so that each event passing the filter
// prints once and in order. Returns an exit status: WEFT_CLI_UNREACHABLE
// once the coordinator has shown no life (no reply, no event) for
// c->unreachable_ms (when not 0); a quiet stream is checked on with a
// request every second or so.
int weft_cli_follow(weft_cli *c, const weft_cli_follow_opts *o);

// weft_cli_cmd_watch follows the events of one run (args[0]) or of all
// runs, filling gaps in the stream from the store.
int weft_cli_cmd_watch(weft_cli *c);

// weft_cli_wait waits until run_id (borrowed) ends, listening on events_url
// (borrowed; NULL or "" polls only) and polling its status every second
// (more often under a short c->unreachable_ms), and prints the final status.
// WEFT_CLI_OK only if the run succeeded; WEFT_CLI_UNREACHABLE once the
// coordinator has shown no life for c->unreachable_ms (when not 0), however
// long the run itself takes.
int weft_cli_wait(weft_cli *c, const char *run_id, const char *events_url);

// weft_cli_wait_all is weft_cli_wait for each run of ids (a JSON array of
// run ids, borrowed) in turn, on one subscription; returns the worst exit
// status (stopping at WEFT_CLI_UNREACHABLE).
int weft_cli_wait_all(weft_cli *c, json_t *ids, const char *events_url);

// ---- ops.c: issue 14's additions ----

// weft_cli_run_extras puts --version, --idempotency-key and the --tag
// flags of c into run (the key borrowed from argv; *tags, malloc'd, holds
// the tags' JSON, free() it). A usage error is printed and returned.
int weft_cli_run_extras(weft_cli *c, Weft__RunRequest *run, char **tags);

// weft_cli_tags_text writes a run's tags (borrowed; {} or NULL for none)
// as "k=v k2=v2" into out (len), cut at a whole tag when it does not fit.
void weft_cli_tags_text(json_t *tags, char *out, size_t len);

// weft_cli_definition_versions runs `weft definitions NAME [--version N]`:
// NAME's versions as a table (--json: the API's answer), or with
// --version, that version's body as JSON.
int weft_cli_definition_versions(weft_cli *c);

// weft_cli_bulk_check refuses a lifecycle command line that mixes a run
// with filters, or has neither (usage error printed and returned).
int weft_cli_bulk_check(const weft_cli *c);

// weft_cli_bulk runs a lifecycle command with filters instead of a run:
// chunk after chunk until none is left, a JSON line per run with --json,
// a summary otherwise (errors on stderr). Exit 1 when any run had an
// error; skipped runs (their state did not allow it) are no error.
int weft_cli_bulk(weft_cli *c);

#endif
