// main: the `weft` command line: the table of commands and flags, argument
// parsing, the usage text generated from those tables, and dispatch.
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "cli.h"
#include "clock.h"
#include "cookie.h"
#include "tls.h"

// 64 bits: the flags outgrew 32.
#define F(x) (UINT64_C(1) << WEFT_CLI_F_##x)
// Flags every command accepts.
#define MAIN_GLOBAL                                                    \
	(F(COORDINATOR) | F(HELP) | F(TOKEN) | F(STREAM) | F(TLS_CERT) |    \
	    F(TLS_KEY) | F(TLS_CA))

// The filters a lifecycle command takes instead of a run (bulk.c).
#define MAIN_BULK \
	(F(STATUS) | F(DEFINITION) | F(SINCE) | F(TAG) | F(DRY_RUN))

// The flags. Every command accepts --coordinator and --help.
static const struct main_flag {
	const char *name;
	const char *arg;  // metavariable; NULL for a boolean flag
	const char *help;
} main_flags[WEFT_CLI_F_COUNT] = {
	[WEFT_CLI_F_COORDINATOR] = { "coordinator", "URL",
	    "control address of the coordinator (env WEFT_COORDINATOR; "
	    "default " WEFT_CLI_DEFAULT_URL ")" },
	[WEFT_CLI_F_HELP]        = { "help", NULL,
	           "show the usage (of one command after its name)" },
	[WEFT_CLI_F_TOKEN]       = { "token", "TOKEN",
	          "API token, when the coordinator has --api-tokens (env "
	          "WEFT_TOKEN; the environment keeps it out of ps)" },
	[WEFT_CLI_F_STREAM]      = { "stream", "URL",
	         "event stream to follow instead of the coordinator's "
	         "tcp:// one, e.g. ws://HOST:PORT/api/v1/stream, dialed with "
	         "the token (env WEFT_STREAM)" },
	[WEFT_CLI_F_TLS_CERT]    = { "tls-cert", "FILE",
	       "this client's certificate (PEM), for tls+tcp:// addresses" },
	[WEFT_CLI_F_TLS_KEY]     = { "tls-key", "FILE",
	        "the certificate's private key (PEM, unencrypted)" },
	[WEFT_CLI_F_TLS_CA]      = { "tls-ca", "FILE",
	         "CA certificate(s) (PEM) the coordinator's certificate must "
	         "be signed by" },
	[WEFT_CLI_F_JSON]        = { "json", NULL,
	           "print the reply body as JSON" },
	[WEFT_CLI_F_INPUT]       = { "input", "JSON",
	          "run input: JSON text, or @FILE to read it from FILE" },
	[WEFT_CLI_F_PARAMS]      = { "params", "JSON",
	         "run parameters: a JSON object, or @FILE" },
	[WEFT_CLI_F_WAIT]        = { "wait", NULL,
	           "wait for the run to end and print its final status; "
	           "exit 0 only if it succeeded" },
	[WEFT_CLI_F_STATUS]      = { "status", "S",
	         "only runs in status S (queued, scheduled, running, paused, "
	         "succeeded, failed, cancelled, timed_out)" },
	[WEFT_CLI_F_DEFINITION]  = { "definition", "D",
	     "only runs of definition D (schedule create: the definition "
	     "each fire runs)" },
	[WEFT_CLI_F_BEFORE]      = { "before", "RUN|TIME",
	         "runs: only runs older than RUN (paging cursor); runs "
	         "delete: the runs that ended before TIME" },
	[WEFT_CLI_F_RUN]         = { "run", "RUN", "only events of run RUN" },
	[WEFT_CLI_F_TYPE]        = { "type", "T",
	           "only events of type T; repeat it or separate types with "
	           "commas" },
	[WEFT_CLI_F_STEP]        = { "step", "S",
	           "events: only events of step S; status --output: the "
	           "output of step S (a map item is S[K])" },
	[WEFT_CLI_F_OUTPUT]      = { "output", NULL,
	         "print the run's output (with --step, that step's) whole, as "
	         "JSON, however large: outputs over 64 KiB are shown "
	         "elsewhere as a reference {\"$blob\", \"size\", \"preview\"}" },
	[WEFT_CLI_F_STEPS_AFTER] = { "steps-after", "S",
	    "show the steps after step S (the cursor a cut page names)" },
	[WEFT_CLI_F_STEPS_LIMIT] = { "steps-limit", "N",
	    "show at most N steps (default 1000, at most 10000)" },
	[WEFT_CLI_F_NODE]        = { "node", "N", "only events on node N" },
	[WEFT_CLI_F_NRUNS]       = { "count", "N",
	         "start N runs of the same definition, input and params in "
	         "batch requests (10,000 runs each) and print their ids, one "
	         "per line; with --wait, wait for each" },
	[WEFT_CLI_F_DATA]        = { "data", "JSON",
	           "signal: the data (JSON text, or @FILE), which becomes the "
	           "waiting steps' output (default {})" },
	[WEFT_CLI_F_REJECT]      = { "reject", NULL,
	           "signal: reject: the waiting steps fail (the data's "
	           "\"reason\" says why)" },
	[WEFT_CLI_F_TAG]         = { "tag", "KEY=VALUE",
	           "run: give the run this tag (repeat it: at most 32; keys "
	           "1-64 bytes of A-Z a-z 0-9 _ . - /, values up to 256 "
	           "bytes); runs, cancel, pause, resume, retry: only runs "
	           "carrying it (repeat it: all must match)" },
	[WEFT_CLI_F_IDEMPOTENCY_KEY] = { "idempotency-key", "K",
	    "run: a second run request with the same key within the "
	    "coordinator's --idempotency-window (default 24h) answers the "
	    "run the first one made instead of making another" },
	[WEFT_CLI_F_VERSION]     = { "version", "N",
	         "run: run version N of the named definition (default: the "
	         "latest); definitions NAME: print version N's body" },
	[WEFT_CLI_F_FROM]        = { "from", "STEP",
	           "retry: re-run STEP and every step downstream of it, on any "
	           "ended run (a succeeded one too); the other steps keep "
	           "their outputs" },
	[WEFT_CLI_F_DRY_RUN]     = { "dry-run", NULL,
	        "with filters instead of a run: report what would be done to "
	        "each matching run, and change nothing" },
	[WEFT_CLI_F_PRIORITY]    = { "priority", "N",
	            "the run's priority, an integer: higher runs first "
	            "(default: the definition's \"priority\", else 0)" },
	[WEFT_CLI_F_AFTER]       = { "after", "ID",
	          "only events after event id ID (paging cursor)" },
	[WEFT_CLI_F_SINCE]       = { "since", "TIME",
	          "only events at or after TIME (epoch ms, RFC 3339, or an "
	          "age such as 15m, 2h, 7d)" },
	[WEFT_CLI_F_UNTIL]       = { "until", "TIME",
	          "only events before TIME (same forms as --since)" },
	[WEFT_CLI_F_TEXT]        = { "text", "STR",
	           "only events whose data, as JSON text, contains STR (an "
	           "error message, say)" },
	[WEFT_CLI_F_LIMIT]       = { "limit", "N",
	          "at most N results, up to 10000 (default: 100 runs, 1000 "
	          "events; with --follow: of the stored events; the rest of "
	          "them is skipped). A page cut short says on stderr how to "
	          "go on" },
	[WEFT_CLI_F_FORMAT]      = { "format", "jsonl|table|csv",
	         "events as JSON lines (the default; json is the same), an "
	         "aligned table, or CSV with a header line" },
	[WEFT_CLI_F_FOLLOW]      = { "follow", NULL,
	         "after the stored events, print new ones as they happen: "
	         "with --run until the run ends, otherwise until interrupted" },
	[WEFT_CLI_F_TIMEOUT]     = { "timeout", "DURATION",
	        "waiting or following: give up with exit status 3 once the "
	        "coordinator has shown no life (no reply, no event) for this "
	        "long: 30s, 500ms, 2m, 1h; a bare number is seconds; 0 never "
	        "gives up (default 60s). A long run is waited for as long as "
	        "the coordinator answers" },
	[WEFT_CLI_F_AT]          = { "at", "TIME",
	            "start the run at TIME, not now: RFC 3339 with an offset or "
	            "Z (2026-12-01T09:00:00+01:00) or epoch ms; it waits "
	            "`scheduled` until then, across restarts, and can be "
	            "cancelled" },
	[WEFT_CLI_F_DELAY]       = { "delay", "DURATION",
	         "start the run this long from now: 500ms, 30s, 10m, 2h, 1d "
	         "(like --at)" },
	[WEFT_CLI_F_CRON]        = { "cron", "EXPR",
	          "schedule create: when: 5 fields, minute hour day-of-month "
	          "month day-of-week, with * , - / and names (JAN-DEC, "
	          "SUN-SAT), e.g. \"*/15 9-17 * * MON-FRI\"; or @daily, "
	          "@hourly, @weekly, @monthly, @yearly" },
	[WEFT_CLI_F_TIMEZONE]    = { "timezone", "TZ",
	      "schedule create: the zone the cron fields are read in (a tz "
	      "database name such as Europe/Berlin; default UTC)" },
	[WEFT_CLI_F_OVERLAP]     = { "overlap", "skip|allow|cancel_previous",
	       "schedule create: a fire while the previous fire's run is "
	       "still active is skipped (default), starts anyway, or cancels "
	       "that run first" },
	[WEFT_CLI_F_CATCHUP]     = { "catchup", "none|one|all",
	       "schedule create: fires missed while the coordinator was down: "
	       "none, the latest one (default), or all of them (at most 100)" },
};

// The commands, in the order the usage lists them.
static const struct main_cmd {
	const char *name;
	const char *args;     // positional arguments, for the usage
	int         min_args; // positional argument count
	int         max_args;
	uint64_t    flags;    // mask of accepted flags, F(...)
	int (*fn)(weft_cli *);
	const char *help;
} main_cmds[] = {
	{ "define", "FILE", 1, 1, F(JSON), weft_cli_cmd_define,
	    "Register a workflow definition (FILE - reads standard input)." },
	{ "run", "NAME|FILE", 1, 1,
	    F(INPUT) | F(PARAMS) | F(WAIT) | F(TIMEOUT) | F(JSON) | F(NRUNS) |
	        F(AT) | F(DELAY) | F(TAG) | F(IDEMPOTENCY_KEY) | F(VERSION) |
	        F(PRIORITY),
	    weft_cli_cmd_run,
	    "Start a run of a registered definition or of a definition file; "
	    "prints the run id (--count N: N runs, N ids)." },
	{ "submit", "FILE", 1, 1, F(JSON), weft_cli_cmd_submit,
	    "Start the runs a JSON lines file (- reads standard input) "
	    "describes, one run request per line like the body of POST "
	    "/api/v1/runs: {\"definition\": NAME, \"input\": {...}}. Sent in "
	    "batches of up to 10,000; prints one line per input line, in "
	    "order: the run id, or `line K: error`. Exit status 1 when any "
	    "line failed; the other lines still run." },
	{ "status", "RUN", 1, 1,
	    F(JSON) | F(STEP) | F(OUTPUT) | F(STEPS_AFTER) | F(STEPS_LIMIT),
	    weft_cli_cmd_status,
	    "Show a run and its steps (a page of them: --steps-after, "
	    "--steps-limit), and why each step that has not ended waits (no "
	    "worker for its type, workers full, dependencies, paused, retry "
	    "backoff). With --output, print the run's output (--step S: "
	    "step S's) whole instead." },
	{ "runs", "[delete]", 0, 1,
	    F(STATUS) | F(DEFINITION) | F(BEFORE) | F(SINCE) | F(UNTIL) |
	        F(LIMIT) | F(JSON) | F(TAG),
	    weft_cli_cmd_runs,
	    "List runs, newest first (--since/--until: created then). `runs "
	    "delete --before TIME [--status S]` deletes the runs that ended "
	    "before TIME (an age such as 30d, RFC 3339 or epoch ms), with "
	    "their steps and events, and prints how many." },
	{ "events", "", 0, 0,
	    F(RUN) | F(TYPE) | F(STEP) | F(NODE) | F(TEXT) | F(SINCE) |
	        F(UNTIL) | F(AFTER) | F(LIMIT) | F(FORMAT) | F(FOLLOW) |
	        F(TIMEOUT) | F(JSON),
	    weft_cli_cmd_events,
	    "Query the event log, oldest first; the filters combine. Prints "
	    "one JSON object per line (id, run, seq, ts, type, step, attempt, "
	    "node, data) unless --format says otherwise. With --follow it "
	    "goes on with the events that happen next, without gaps or "
	    "repeats." },
	{ "watch", "[RUN]", 0, 1, F(TIMEOUT) | F(JSON), weft_cli_cmd_watch,
	    "Follow events as they happen: of one run (its history first; "
	    "ends with the run) or of everything (until interrupted). Prints "
	    "a table line per event, or JSON lines with --json." },
	{ "definitions", "[NAME]", 0, 1, F(JSON) | F(VERSION),
	    weft_cli_cmd_definitions,
	    "List the registered definitions (the latest version of "
	    "each); with NAME, every version of that one (number, created, "
	    "sha256 of its body); with --version N too, version N's body." },
	{ "workers", "", 0, 0, F(JSON), weft_cli_cmd_workers,
	    "List the workers." },
	{ "cancel", "RUN|FILTERS", 0, 1, F(JSON) | MAIN_BULK,
	    weft_cli_cmd_lifecycle,
	    "Cancel a run, or (with --status, --definition, --since, --tag "
	    "instead of RUN) every matching run, in chunks of 500, with a "
	    "line per run (--json) or a summary; --dry-run changes nothing." },
	{ "pause", "RUN|FILTERS", 0, 1, F(JSON) | MAIN_BULK,
	    weft_cli_cmd_lifecycle,
	    "Pause a run (or the matching runs, as cancel): no new steps "
	    "start." },
	{ "resume", "RUN|FILTERS", 0, 1, F(JSON) | MAIN_BULK,
	    weft_cli_cmd_lifecycle,
	    "Resume a paused run (or the matching runs, as cancel)." },
	{ "retry", "RUN|FILTERS", 0, 1, F(JSON) | F(FROM) | MAIN_BULK,
	    weft_cli_cmd_lifecycle,
	    "Retry a run that did not succeed (or the matching runs, as "
	    "cancel). --from STEP re-runs STEP and everything downstream of "
	    "it, on any ended run, a succeeded one too." },
	{ "signal", "RUN NAME", 2, 2, F(DATA) | F(REJECT) | F(JSON),
	    weft_cli_cmd_signal,
	    "Deliver signal NAME to run RUN: every wait step of the run "
	    "waiting for it ends, with the data as its output, or failed "
	    "with --reject. Refused (exit 1) when nothing waits for it now: "
	    "a signal is not kept for later." },
	{ "schedule", "ACTION [NAME]", 1, 2,
	    F(DEFINITION) | F(CRON) | F(TIMEZONE) | F(INPUT) | F(PARAMS) |
	        F(OVERLAP) | F(CATCHUP) | F(JSON),
	    weft_cli_cmd_schedule,
	    "Cron schedules that start runs of a definition. `schedule create "
	    "NAME --definition D --cron EXPR [--timezone TZ] [--input JSON] "
	    "[--params JSON] [--overlap M] [--catchup M]`; `schedule list` "
	    "(name, cron, zone, next and last fire, paused); `schedule "
	    "get|pause|resume|delete|trigger NAME` (trigger: one run now, the "
	    "cadence unchanged)." },
	{ "clock", "advance DURATION", 2, 2, F(JSON), weft_cli_cmd_clock,
	    "Tests only: move the clock of a coordinator started with "
	    "--test-clock forward (cron fires and delayed starts come due); "
	    "refused otherwise." },
	{ "info", "", 0, 0, F(JSON), weft_cli_cmd_info,
	    "Show the coordinator's name, addresses and store state." },
	{ "help", "[COMMAND]", 0, 1, 0, NULL,
	    "Show this usage, or one command's." },
};

#define MAIN_NCMDS (sizeof(main_cmds) / sizeof(main_cmds[0]))
#define MAIN_WIDTH 79

int
weft_cli_usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("weft: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return (WEFT_CLI_USAGE);
}

// usage_text prints words (separated by single spaces) from column *col,
// wrapping before MAIN_WIDTH to lines indented by indent.
static void
usage_text(FILE *f, const char *words, int indent, int *col)
{
	const char *p = words;

	while (*p != '\0') {
		int n = (int) strcspn(p, " ");
		if (*col > indent && *col + 1 + n > MAIN_WIDTH) {
			fprintf(f, "\n%*s", indent, "");
			*col = indent;
		}
		if (*col > indent) {
			fputc(' ', f);
			(*col)++;
		}
		fprintf(f, "%.*s", n, p);
		*col += n;
		p += n + (p[n] == ' ');
	}
}

// usage_synopsis prints one command's synopsis (name, arguments, flags).
static void
usage_synopsis(FILE *f, const struct main_cmd *cmd, int col)
{
	char word[64];

	fputs(cmd->name, f);
	col += (int) strlen(cmd->name);
	for (int i = -1; i < WEFT_CLI_F_COUNT; i++) {
		if (i < 0) {
			snprintf(word, sizeof(word), "%s", cmd->args);
		} else if ((cmd->flags & (UINT64_C(1) << i)) == 0) {
			continue;
		} else if (main_flags[i].arg != NULL) {
			// A non-breaking flag: "[--input JSON]" is one word.
			snprintf(word, sizeof(word), "[--%s\x01%s]",
			    main_flags[i].name, main_flags[i].arg);
		} else {
			snprintf(word, sizeof(word), "[--%s]",
			    main_flags[i].name);
		}
		if (word[0] == '\0') {
			continue;
		}
		if (col + 1 + (int) strlen(word) > MAIN_WIDTH) {
			fprintf(f, "\n%*s", 6, "");
			col = 6;
		} else {
			fputc(' ', f);
			col++;
		}
		for (char *p = word; *p != '\0'; p++) {
			fputc(*p == '\x01' ? ' ' : *p, f);
		}
		col += (int) strlen(word);
	}
	fputc('\n', f);
}

// usage_cmd prints one command's synopsis and description.
static void
usage_cmd(FILE *f, const struct main_cmd *cmd)
{
	int col = 6;

	fputs("  ", f);
	usage_synopsis(f, cmd, 2);
	fputs("      ", f);
	usage_text(f, cmd->help, 6, &col);
	fputc('\n', f);
}

// usage_flags prints the help of the flags in mask.
static void
usage_flags(FILE *f, uint64_t mask)
{
	char word[64];
	int  col;

	for (int i = 0; i < WEFT_CLI_F_COUNT; i++) {
		if ((mask & (UINT64_C(1) << i)) == 0) {
			continue;
		}
		snprintf(word, sizeof(word), "--%s%s%s", main_flags[i].name,
		    main_flags[i].arg != NULL ? " " : "",
		    main_flags[i].arg != NULL ? main_flags[i].arg : "");
		// A long flag gets its help on the next line.
		fprintf(f, "  %-20s%s", word,
		    strlen(word) > 20 ? "\n                       " : " ");
		col = 23;
		usage_text(f, main_flags[i].help, 23, &col);
		fputc('\n', f);
	}
}

// usage prints the whole usage, or one command's when cmd is not NULL.
static void
usage(FILE *f, const struct main_cmd *cmd)
{
	uint64_t all = MAIN_GLOBAL;
	int      col = 6;

	if (cmd != NULL) {
		fputs("usage: weft [--coordinator URL] ", f);
		usage_synopsis(f, cmd, 32);
		fputs("\n      ", f);
		usage_text(f, cmd->help, 6, &col);
		fputs("\n\nflags:\n", f);
		usage_flags(f, cmd->flags | MAIN_GLOBAL);
		return;
	}
	fprintf(f, "usage: weft [--coordinator URL] COMMAND [ARGS] [FLAGS]\n"
	           "\ncommands:\n");
	for (size_t i = 0; i < MAIN_NCMDS; i++) {
		usage_cmd(f, &main_cmds[i]);
		all |= main_cmds[i].flags;
	}
	fprintf(f, "\nflags:\n");
	usage_flags(f, all);
	fprintf(f,
	    "\nenvironment:\n"
	    "  WEFT_COORDINATOR     default for --coordinator\n"
	    "  WEFT_TOKEN           default for --token\n"
	    "  WEFT_STREAM          default for --stream\n"
	    "  WEFT_TIMEOUT_MS      how long to wait for a reply, in ms "
	    "(default %d)\n"
	    "\nexit status: 0 done; 1 error reply, or the run did not succeed "
	    "(run --wait);\n2 usage error; 3 coordinator unreachable or not "
	    "answering (waiting or\nfollowing: for as long as --timeout "
	    "says).\n",
	    WEFT_CLI_DEFAULT_TIMEOUT_MS);
}

// usage_short prints, after a usage error, the synopsis of cmd (or the
// command names) and where the full usage is.
static void
usage_short(const struct main_cmd *cmd)
{
	if (cmd != NULL) {
		fputs("usage: weft [--coordinator URL] ", stderr);
		usage_synopsis(stderr, cmd, 32);
	} else {
		int col = 9;
		fputs("commands:", stderr);
		for (size_t i = 0; i < MAIN_NCMDS; i++) {
			usage_text(stderr, main_cmds[i].name, 2, &col);
		}
		fputc('\n', stderr);
	}
	fprintf(stderr, "Run 'weft help%s%s' for the usage.\n",
	    cmd != NULL ? " " : "", cmd != NULL ? cmd->name : "");
}

// main_find_cmd looks a command up by name.
static const struct main_cmd *
main_find_cmd(const char *name)
{
	for (size_t i = 0; i < MAIN_NCMDS; i++) {
		if (strcmp(main_cmds[i].name, name) == 0) {
			return (&main_cmds[i]);
		}
	}
	return (NULL);
}

// main_find_flag looks a flag up by name (len bytes of name).
static int
main_find_flag(const char *name, size_t len)
{
	for (int i = 0; i < WEFT_CLI_F_COUNT; i++) {
		if (strlen(main_flags[i].name) == len &&
		    strncmp(main_flags[i].name, name, len) == 0) {
			return (i);
		}
	}
	return (-1);
}

// main_add_types splits a --type value on commas into c->types.
static void
main_add_types(weft_cli *c, const char *val)
{
	const char *p = val;

	while (*p != '\0') {
		size_t n = strcspn(p, ",");
		if (n > 0) {
			c->types = weft_xrealloc(
			    c->types, (c->n_types + 1) * sizeof(char *));
			c->types[c->n_types++] = weft_xstrndup(p, n);
		}
		p += n + (p[n] == ',');
	}
}

// main_flag takes the flag at argv[*i] (and its value), advancing *i.
static int
main_flag(weft_cli *c, int argc, char **argv, int *i)
{
	const char *arg = argv[*i] + 2;
	const char *eq  = strchr(arg, '=');
	size_t      len = eq != NULL ? (size_t) (eq - arg) : strlen(arg);
	const char *val = eq != NULL ? eq + 1 : NULL;
	int         f;

	if (strcmp(argv[*i], "-h") == 0) {
		c->flag[WEFT_CLI_F_HELP] = "";
		return (WEFT_CLI_OK);
	}
	if (argv[*i][1] != '-' || (f = main_find_flag(arg, len)) < 0) {
		return (weft_cli_usage_error("unknown flag %s", argv[*i]));
	}
	if (main_flags[f].arg == NULL) {
		if (val != NULL) {
			return (weft_cli_usage_error(
			    "--%s takes no value", main_flags[f].name));
		}
		val = "";
	} else if (val == NULL) {
		if (*i + 1 >= argc) {
			return (weft_cli_usage_error("--%s needs a value (%s)",
			    main_flags[f].name, main_flags[f].arg));
		}
		val = argv[++*i];
	}
	c->flag[f] = val;
	if (f == WEFT_CLI_F_TYPE) {
		main_add_types(c, val);
	}
	if (f == WEFT_CLI_F_TAG) {
		// Repeatable, never split: a value may hold commas.
		c->tags = weft_xrealloc(c->tags, (c->n_tags + 1) * sizeof(char *));
		c->tags[c->n_tags++] = val;
	}
	return (WEFT_CLI_OK);
}

// main_check validates the parsed line against the command's table entry.
static int
main_check(weft_cli *c, const struct main_cmd *cmd)
{
	uint64_t ok = cmd->flags | MAIN_GLOBAL;

	for (int i = 0; i < WEFT_CLI_F_COUNT; i++) {
		if (c->flag[i] != NULL && (ok & (UINT64_C(1) << i)) == 0) {
			return (weft_cli_usage_error("%s does not take --%s",
			    cmd->name, main_flags[i].name));
		}
	}
	if (c->nargs < cmd->min_args) {
		return (weft_cli_usage_error("%s needs %s", cmd->name,
		    cmd->args));
	}
	if (c->nargs > cmd->max_args) {
		return (weft_cli_usage_error("%s: unexpected argument '%s'",
		    cmd->name, c->args[cmd->max_args]));
	}
	return (WEFT_CLI_OK);
}

// main_settings fills the connection settings from the flags and the
// environment.
static int
main_settings(weft_cli *c)
{
	const char *env;
	const char *tmo = c->flag[WEFT_CLI_F_TIMEOUT];
	char        err[1024];
	char       *end;
	long        ms;

	c->url = c->flag[WEFT_CLI_F_COORDINATOR];
	if (c->url == NULL) {
		env    = getenv("WEFT_COORDINATOR");
		c->url = env != NULL && env[0] != '\0' ? env
		                                      : WEFT_CLI_DEFAULT_URL;
	}
	c->token = c->flag[WEFT_CLI_F_TOKEN];
	if (c->token == NULL && (env = getenv("WEFT_TOKEN")) != NULL &&
	    env[0] != '\0') {
		c->token = env;
	}
	c->stream = c->flag[WEFT_CLI_F_STREAM];
	if (c->stream == NULL && (env = getenv("WEFT_STREAM")) != NULL &&
	    env[0] != '\0') {
		c->stream = env;
	}
	c->timeout_ms = WEFT_CLI_DEFAULT_TIMEOUT_MS;
	if ((env = getenv("WEFT_TIMEOUT_MS")) != NULL && env[0] != '\0') {
		errno = 0;
		ms    = strtol(env, &end, 10);
		if (*end != '\0' || errno != 0 || ms <= 0 || ms > INT_MAX) {
			return (weft_cli_usage_error("WEFT_TIMEOUT_MS must be a "
			                             "positive number of ms, not "
			                             "'%s'",
			    env));
		}
		c->timeout_ms = (int) ms;
	}
	c->unreachable_ms = WEFT_CLI_DEFAULT_UNREACHABLE_MS;
	if (tmo != NULL && !weft_clock_parse_duration(tmo, &c->unreachable_ms)) {
		return (weft_cli_usage_error("--timeout wants a duration such "
		                             "as 30s, 500ms or 2m (a bare "
		                             "number is seconds; 0 waits "
		                             "forever), not '%s'",
		    tmo));
	}
	c->json = c->flag[WEFT_CLI_F_JSON] != NULL;
	if (weft_tls_open(&c->tls, c->flag[WEFT_CLI_F_TLS_CERT],
	        c->flag[WEFT_CLI_F_TLS_KEY], c->flag[WEFT_CLI_F_TLS_CA], err,
	        sizeof(err)) != WEFT_OK) {
		fprintf(stderr, "weft: %s\n", err);
		return (WEFT_CLI_USAGE);
	}
	return (WEFT_CLI_OK);
}

// main_parse parses argv into c and *cmd. Returns -1 to go on and run the
// command, otherwise the exit status (usage printed).
static int
main_parse(weft_cli *c, int argc, char **argv, const struct main_cmd **cmd)
{
	bool flags_done = false;
	int  rv;

	c->args = weft_xalloc((size_t) argc * sizeof(char *));
	for (int i = 1; i < argc; i++) {
		if (!flags_done && strcmp(argv[i], "--") == 0) {
			flags_done = true;
		} else if (!flags_done && argv[i][0] == '-' &&
		    argv[i][1] != '\0') {
			if ((rv = main_flag(c, argc, argv, &i)) != WEFT_CLI_OK) {
				usage_short(c->command != NULL
				        ? main_find_cmd(c->command)
				        : NULL);
				return (rv);
			}
		} else if (c->command == NULL) {
			c->command = argv[i];
		} else {
			c->args[c->nargs++] = argv[i];
		}
	}
	if (c->command == NULL) {
		usage(c->flag[WEFT_CLI_F_HELP] != NULL ? stdout : stderr, NULL);
		return (c->flag[WEFT_CLI_F_HELP] != NULL ? WEFT_CLI_OK
		                                         : WEFT_CLI_USAGE);
	}
	if ((*cmd = main_find_cmd(c->command)) == NULL) {
		weft_cli_usage_error("unknown command '%s'", c->command);
		usage_short(NULL);
		return (WEFT_CLI_USAGE);
	}
	if (c->flag[WEFT_CLI_F_HELP] != NULL) {
		usage(stdout, *cmd);
		return (WEFT_CLI_OK);
	}
	if ((rv = main_check(c, *cmd)) != WEFT_CLI_OK ||
	    (rv = weft_cli_check_values(c)) != WEFT_CLI_OK) {
		usage_short(*cmd);
		return (rv);
	}
	if ((*cmd)->fn == NULL) { // help [COMMAND]
		const struct main_cmd *about =
		    c->nargs > 0 ? main_find_cmd(c->args[0]) : NULL;
		if (c->nargs > 0 && about == NULL) {
			weft_cli_usage_error("unknown command '%s'", c->args[0]);
			usage_short(NULL);
			return (WEFT_CLI_USAGE);
		}
		usage(stdout, about);
		return (WEFT_CLI_OK);
	}
	return (main_settings(c) == WEFT_CLI_OK ? -1 : WEFT_CLI_USAGE);
}

// main_cookie keys the CLI's wire with the cluster cookie when there is
// one to read, so the event stream it follows is verified. Without one
// (a machine that is not a node) events are read unverified; remote
// watchers use the coordinator's authenticated WebSocket stream.
static void
main_cookie(weft_cli *c)
{
	weft_cookie cookie;
	char        path[4096], err[512];

	if (weft_crypto_init() != 0) {
		return;
	}
	weft_cookie_path(NULL, path, sizeof(path));
	switch (weft_cookie_load(&cookie, path, false, err, sizeof(err))) {
	case WEFT_OK:
		weft_wire_set_key(&c->wire, &cookie, WEFT_CLOCK_SKEW_MS);
		weft_cookie_clear(&cookie);
		break;
	case WEFT_ENOENT:
		break;
	default:
		fprintf(stderr, "weft: warning: %s\n", err);
		break;
	}
}

int
main(int argc, char **argv)
{
	weft_cli               c   = { 0 };
	const struct main_cmd *cmd = NULL;
	int                    rv;

	if ((rv = main_parse(&c, argc, argv, &cmd)) < 0 && cmd != NULL) {
		weft_wire_init(&c.wire, "weft-cli");
		main_cookie(&c);
		rv = cmd->fn(&c);
		weft_cli_close(&c);
		weft_wire_fini(&c.wire);
	}
	weft_tls_close(c.tls);
	for (size_t i = 0; i < c.n_types; i++) {
		free(c.types[i]);
	}
	free(c.types);
	free(c.tags);
	free(c.args);
	return (rv);
}
