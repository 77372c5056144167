// print: the client's output formats: events (JSON lines, tables and CSV,
// shared by `events` and `watch`), aligned tables, key/value blocks, times
// and durations.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "clock.h"
#include "cli.h"
#include "event.h"
#include "jsonx.h"

bool
weft_cli_event_terminal(const char *type)
{
	enum weft_event_type t;

	return (weft_event_from_name(type, &t) &&
	    weft_event_scope(t) == WEFT_EV_SCOPE_RUN && weft_event_terminal(t));
}

bool
weft_cli_status_terminal(const char *status)
{
	// A run status is final when an event that ends a run sets it.
	for (unsigned i = 0; i < WEFT_EV_COUNT; i++) {
		enum weft_event_type t  = (enum weft_event_type) i;
		const char          *st = weft_event_run_status(t);
		if (weft_event_terminal(t) && st != NULL &&
		    strcmp(st, status) == 0) {
			return (true);
		}
	}
	return (false);
}

// event_name turns "" into null, so a published event (where protobuf
// cannot tell "" from absent) prints like the same event from the store.
static json_t *
event_name(json_t *v)
{
	if (json_is_string(v) && json_string_length(v) > 0) {
		return (json_incref(v));
	}
	return (json_null());
}

// event_data returns the data object; a JSON text is parsed, anything
// absent becomes {}.
static json_t *
event_data(json_t *v)
{
	json_t *d;

	if (json_is_string(v)) {
		d = json_loads(json_string_value(v), JSON_DECODE_ANY, NULL);
		if (d != NULL) {
			return (d);
		}
	}
	if (v == NULL || json_is_null(v)) {
		return (json_object());
	}
	return (json_incref(v));
}

json_t *
weft_cli_event_from_reply(json_t *ev)
{
	json_t *ts      = json_object_get(ev, "ts");
	json_t *attempt = json_object_get(ev, "attempt");
	json_t *id      = json_object_get(ev, "id");
	json_t *seq     = json_object_get(ev, "seq");
	json_t *type    = json_object_get(ev, "type");
	char    buf[48];

	if (json_is_integer(ts)) {
		ts = json_string(weft_clock_format_rfc3339(
		    (int64_t) json_integer_value(ts), buf));
	} else {
		ts = ts != NULL ? json_incref(ts) : json_null();
	}
	if (json_is_integer(attempt) && json_integer_value(attempt) == 0) {
		attempt = NULL;
	}
	// json_pack "o" takes the references made here; "O" adds its own.
	return (json_pack("{s:O,s:o,s:O,s:o,s:O,s:o,s:O,s:o,s:o}", "id",
	    id ? id : json_null(), "run",
	    event_name(json_object_get(ev, "run")), "seq",
	    seq ? seq : json_null(), "ts", ts, "type",
	    type ? type : json_null(), "step",
	    event_name(json_object_get(ev, "step")), "attempt",
	    attempt ? attempt : json_null(), "node",
	    event_name(json_object_get(ev, "node")), "data",
	    event_data(json_object_get(ev, "data"))));
}

json_t *
weft_cli_event_from_pb(const Weft__Event *ev)
{
	json_t *raw, *out;

	// Build the reply form, then normalise it the one way.
	raw = json_pack("{s:I,s:s,s:I,s:I,s:s,s:s,s:I,s:s,s:s}", "id",
	    (json_int_t) ev->id, "run", ev->run_id, "seq", (json_int_t) ev->seq,
	    "ts", (json_int_t) ev->ts_ms, "type", ev->type, "step",
	    ev->step_id, "attempt", (json_int_t) ev->attempt, "node", ev->node,
	    "data", ev->data_json[0] != '\0' ? ev->data_json : "{}");
	if (raw == NULL) {
		// Only invalid UTF-8 gets here; keep the line, lose the text.
		raw = json_pack("{s:I,s:I,s:I}", "id", (json_int_t) ev->id,
		    "seq", (json_int_t) ev->seq, "ts", (json_int_t) ev->ts_ms);
	}
	out = weft_cli_event_from_reply(raw);
	json_decref(raw);
	return (out);
}

uint64_t
weft_cli_event_id(json_t *ev)
{
	json_t *id = json_object_get(ev, "id");
	return (json_is_integer(id) ? (uint64_t) json_integer_value(id) : 0);
}

void
weft_cli_print_json(json_t *v)
{
	char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

	puts(s != NULL ? s : "null");
	free(s);
}

void
weft_cli_print_fields(json_t *v)
{
	const char *key;
	json_t     *val;
	int         width = 0;

	if (!json_is_object(v)) {
		weft_cli_print_json(v);
		return;
	}
	json_object_foreach (v, key, val) {
		int n = (int) strlen(key);
		width = n > width ? n : width;
	}
	json_object_foreach (v, key, val) {
		char *text = weft_cli_text(val, 0);
		printf("%-*s  %s\n", width, key, text);
		free(text);
	}
}

// text_cut cuts s in place to at most max UTF-8 characters, ending the cut
// text in "...". Continuation bytes do not count and are never split.
static void
text_cut(char *s, size_t max)
{
	size_t chars = 0, keep = 0;

	for (size_t i = 0; s[i] != '\0'; i++) {
		if (((unsigned char) s[i] & 0xC0) == 0x80) {
			continue;
		}
		if (chars == (max > 3 ? max - 3 : 0)) {
			keep = i;
		}
		if (++chars > max) {
			// Four or more characters follow keep, so "..."
			// fits where they were.
			if (max > 3) {
				memcpy(s + keep, "...", 3);
				keep += 3;
			}
			s[keep] = '\0';
			return;
		}
	}
}

// text_clean replaces control characters (newlines in errors, tabs) with
// spaces so a value stays on its line and in its column.
static char *
text_clean(char *s)
{
	for (char *p = s; *p != '\0'; p++) {
		if ((unsigned char) *p < 0x20) {
			*p = ' ';
		}
	}
	return (s);
}

char *
weft_cli_text(json_t *v, size_t max)
{
	char *s;

	if (v == NULL || json_is_null(v)) {
		s = weft_xstrdup("-");
	} else if (json_is_string(json_object_get(v, "$blob"))) {
		// A value over 64 KiB, stored once (docs/events.md): its
		// size and the start of it. `status --output` prints it.
		const char *p = json_string_value(json_object_get(v, "preview"));
		size_t      n = strlen(p != NULL ? p : "") + 48;
		s             = weft_xalloc(n);
		snprintf(s, n, "[%lld bytes] %s...",
		    (long long) json_integer_value(json_object_get(v, "size")),
		    p != NULL ? p : "");
	} else if (json_is_string(v)) {
		s = weft_xstrdup(json_string_value(v));
	} else {
		s = weft_json_dump(v);
	}
	text_clean(s);
	if (max > 0) {
		text_cut(s, max);
	}
	return (s);
}

const char *
weft_cli_fmt_time(json_t *v, char *buf)
{
	if (json_is_integer(v) && json_integer_value(v) > 0) {
		return (weft_clock_format_rfc3339(
		    (int64_t) json_integer_value(v), buf));
	}
	if (json_is_string(v) && json_string_length(v) > 0) {
		snprintf(buf, 48, "%s", json_string_value(v));
		return (buf);
	}
	return ("-");
}

const char *
weft_cli_fmt_duration(int64_t ms, char *buf)
{
	int64_t s = ms / 1000;

	if (ms < 0) {
		return ("-");
	}
	if (ms < 1000) {
		snprintf(buf, 32, "%dms", (int) ms);
	} else if (ms < 60000) {
		snprintf(buf, 32, "%.1fs", (double) (ms / 100) / 10.0);
	} else if (s < 3600) {
		snprintf(buf, 32, "%dm%02ds", (int) (s / 60), (int) (s % 60));
	} else if (s < 86400) {
		snprintf(buf, 32, "%dh%02dm", (int) (s / 3600),
		    (int) (s % 3600 / 60));
	} else {
		snprintf(buf, 32, "%dd%02dh", (int) (s / 86400),
		    (int) (s % 86400 / 3600));
	}
	return (buf);
}


void
weft_cli_table_init(weft_cli_table *t, size_t ncols, const char *const *header)
{
	memset(t, 0, sizeof(*t));
	t->ncols = ncols;
	weft_cli_table_add(t, header);
}

void
weft_cli_table_add(weft_cli_table *t, const char *const *row)
{
	if (t->nrows == t->cap) {
		t->cap   = t->cap ? t->cap * 2 : 16;
		t->cells = weft_xrealloc(
		    t->cells, t->cap * t->ncols * sizeof(t->cells[0]));
	}
	for (size_t i = 0; i < t->ncols; i++) {
		t->cells[t->nrows * t->ncols + i] =
		    text_clean(weft_xstrdup(row[i] != NULL ? row[i] : "-"));
	}
	t->nrows++;
}

// table_width counts the UTF-8 characters of s.
static size_t
table_width(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++) {
		n += ((unsigned char) *s & 0xC0) != 0x80;
	}
	return (n);
}

void
weft_cli_table_print(weft_cli_table *t)
{
	size_t *width = weft_xalloc(t->ncols * sizeof(size_t));

	for (size_t r = 0; r < t->nrows; r++) {
		for (size_t i = 0; i < t->ncols; i++) {
			size_t w = table_width(t->cells[r * t->ncols + i]);
			width[i] = w > width[i] ? w : width[i];
		}
	}
	for (size_t r = 0; r < t->nrows; r++) {
		for (size_t i = 0; i < t->ncols; i++) {
			const char *cell = t->cells[r * t->ncols + i];
			if (i + 1 == t->ncols) {
				printf("%s\n", cell);
			} else {
				printf("%s%*s", cell,
				    (int) (width[i] - table_width(cell) + 2),
				    "");
			}
			free(t->cells[r * t->ncols + i]);
		}
	}
	free(width);
	free(t->cells);
	memset(t, 0, sizeof(*t));
}

// ---- events ----

// The columns of events in a table, and their widths when streamed (a
// longer cell pushes the rest of its line to the right).
static const struct evout_col {
	const char *head;
	const char *key;
	int         width;
} evout_cols[] = {
	{ "ID", "id", 6 },
	{ "TS", "ts", 24 },
	{ "RUN", "run", 8 },
	{ "TYPE", "type", 21 },
	{ "STEP", "step", 12 },
	{ "ATTEMPT", "attempt", 7 },
	{ "NODE", "node", 12 },
	{ "DATA", "data", 0 },
};

#define EVOUT_NCOLS (sizeof(evout_cols) / sizeof(evout_cols[0]))

// The columns of events in CSV, in order (keys of the standard form).
static const char *const evout_csv[] = { "id", "ts", "run", "seq", "type",
	"step", "attempt", "node", "data" };

#define EVOUT_NCSV (sizeof(evout_csv) / sizeof(evout_csv[0]))

// evout_cells fills the table cells of an event (malloc'd; free each).
// The run shows as its last 8 characters: a ULID's leading characters are
// its timestamp and repeat across runs made together.
static void
evout_cells(json_t *ev, char **cell)
{
	for (size_t k = 0; k < EVOUT_NCOLS; k++) {
		const char *key = evout_cols[k].key;
		cell[k] = weft_cli_text(json_object_get(ev, key),
		    strcmp(key, "data") == 0 ? WEFT_CLI_CELL_MAX : 0);
		if (strcmp(key, "run") == 0 && strlen(cell[k]) > 8) {
			memmove(cell[k], cell[k] + strlen(cell[k]) - 8, 9);
		}
	}
}

// evout_line prints one streamed table line of EVOUT_NCOLS cells.
static void
evout_line(const char *const *cell)
{
	for (size_t k = 0; k + 1 < EVOUT_NCOLS; k++) {
		int pad = evout_cols[k].width - (int) table_width(cell[k]);
		printf("%s%*s", cell[k], (pad > 0 ? pad : 0) + 2, "");
	}
	printf("%s\n", cell[EVOUT_NCOLS - 1]);
}

// evout_csv_field prints one CSV field, quoted when it holds a comma, a
// quote or a line break, with quotes doubled (RFC 4180).
static void
evout_csv_field(const char *s, bool last)
{
	if (strpbrk(s, ",\"\r\n") == NULL) {
		fputs(s, stdout);
	} else {
		putchar('"');
		for (; *s != '\0'; s++) {
			if (*s == '"') {
				putchar('"');
			}
			putchar(*s);
		}
		putchar('"');
	}
	putchar(last ? '\n' : ',');
}

// evout_csv_row prints an event as a CSV row: strings as they are, null
// empty, anything else (data) compact JSON.
static void
evout_csv_row(json_t *ev)
{
	for (size_t k = 0; k < EVOUT_NCSV; k++) {
		json_t *v    = json_object_get(ev, evout_csv[k]);
		bool    last = k + 1 == EVOUT_NCSV;
		char   *text;

		if (json_is_string(v)) {
			evout_csv_field(json_string_value(v), last);
		} else if (v == NULL || json_is_null(v)) {
			evout_csv_field("", last);
		} else {
			text = weft_json_dump(v);
			evout_csv_field(text, last);
			free(text);
		}
	}
}

void
weft_cli_evout_begin(weft_cli_evout *o)
{
	const char *head[EVOUT_NCOLS];

	for (size_t k = 0; k < EVOUT_NCOLS; k++) {
		head[k] = evout_cols[k].head;
	}
	if (o->fmt == WEFT_CLI_EV_CSV) {
		for (size_t k = 0; k < EVOUT_NCSV; k++) {
			evout_csv_field(evout_csv[k], k + 1 == EVOUT_NCSV);
		}
	} else if (o->fmt == WEFT_CLI_EV_TABLE && o->stream) {
		evout_line(head);
	} else if (o->fmt == WEFT_CLI_EV_TABLE) {
		weft_cli_table_init(&o->table, EVOUT_NCOLS, head);
	}
}

void
weft_cli_evout_put(weft_cli_evout *o, json_t *ev)
{
	char              *cell[EVOUT_NCOLS];
	const char *const *row = (const char *const *) cell;

	switch (o->fmt) {
	case WEFT_CLI_EV_JSONL:
		weft_cli_print_json(ev);
		break;
	case WEFT_CLI_EV_CSV:
		evout_csv_row(ev);
		break;
	case WEFT_CLI_EV_TABLE:
		evout_cells(ev, cell);
		if (o->stream) {
			evout_line(row);
		} else {
			weft_cli_table_add(&o->table, row);
		}
		for (size_t k = 0; k < EVOUT_NCOLS; k++) {
			free(cell[k]);
		}
		break;
	}
}

void
weft_cli_evout_end(weft_cli_evout *o)
{
	if (o->fmt == WEFT_CLI_EV_TABLE && !o->stream && o->table.ncols > 0) {
		weft_cli_table_print(&o->table);
	}
}
