// print: the client's output formats: event lines (shared by `events` and
// `watch`), aligned tables, key/value blocks, times and durations.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "clock.h"
#include "cli.h"
#include "jsonx.h"

bool
weft_cli_event_terminal(const char *type)
{
	return (strcmp(type, "run_succeeded") == 0 ||
	    strcmp(type, "run_failed") == 0 ||
	    strcmp(type, "run_cancelled") == 0 ||
	    strcmp(type, "run_timed_out") == 0);
}

bool
weft_cli_status_terminal(const char *status)
{
	return (strcmp(status, "succeeded") == 0 ||
	    strcmp(status, "failed") == 0 || strcmp(status, "cancelled") == 0 ||
	    strcmp(status, "timed_out") == 0);
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

const char *
weft_cli_short_id(const char *run)
{
	size_t n = strlen(run);
	return (n > 8 ? run + n - 8 : run);
}

void
weft_cli_event_print(json_t *ev, enum weft_cli_evfmt fmt)
{
	char *cell[6];

	if (fmt == WEFT_CLI_EV_JSON) {
		weft_cli_print_json(ev);
		return;
	}
	cell[0] = weft_cli_text(json_object_get(ev, "ts"), 0);
	cell[1] = weft_cli_text(json_object_get(ev, "type"), 0);
	cell[2] = weft_cli_text(json_object_get(ev, "run"), 0);
	cell[3] = weft_cli_text(json_object_get(ev, "step"), 0);
	cell[4] = weft_cli_text(json_object_get(ev, "attempt"), 0);
	cell[5] = weft_cli_text(json_object_get(ev, "node"), 0);
	printf("%-24s  %-21s  %-26s  %-16s  %-3s  %s\n", cell[0], cell[1],
	    cell[2], cell[3], cell[4], cell[5]);
	for (int i = 0; i < 6; i++) {
		free(cell[i]);
	}
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
