// store_query: the read side of the store: runs, steps, events and
// definitions as the JSON bodies of control replies and HTTP answers.
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "clock.h"
#include "jsonx.h"
#include "store.h"

// A SQL text and its parameters, built clause by clause.
typedef struct sqlbuf {
	char        sql[2048];
	size_t      len;
	const char *params[32];
	char        own[8][32]; // storage for numeric parameters
	int         nparams, nown;
} sqlbuf;

static void
sql_add(sqlbuf *b, const char *text)
{
	int n = snprintf(b->sql + b->len, sizeof(b->sql) - b->len, "%s", text);
	if (n > 0 && b->len + (size_t) n < sizeof(b->sql)) {
		b->len += (size_t) n;
	}
}

static void
sql_param(sqlbuf *b, const char *clause, const char *value)
{
	if (b->nparams < 32) {
		sql_add(b, clause);
		b->params[b->nparams++] = value;
	}
}

static void
sql_num(sqlbuf *b, const char *clause, int64_t v)
{
	if (b->nown < 8) {
		snprintf(b->own[b->nown], sizeof(b->own[0]), "%" PRId64, v);
		sql_param(b, clause, b->own[b->nown++]);
	}
}

static json_int_t
cell_int(const char *c)
{
	return (c != NULL ? (json_int_t) strtoll(c, NULL, 10) : 0);
}

static json_t *
cell_str(const char *c)
{
	return (c != NULL ? json_string(c) : json_null());
}

static json_t *
cell_ms(const char *c)
{
	return (c != NULL ? json_integer(cell_int(c)) : json_null());
}

// ---- events ----

// A page being filled: rows up to limit and about bytes of JSON; one row
// more than fits says that the page was cut.
typedef struct page {
	json_t  *rows;
	uint32_t limit;
	size_t   bytes, used;
	bool     cut;
} page;

// page_full notes a row of about len bytes and says whether it goes on a
// page that is full already (it then stays off, and the page is cut).
static bool
page_full(page *pg, size_t len)
{
	size_t n = json_array_size(pg->rows);

	if (n >= pg->limit ||
	    (n > 0 && pg->bytes > 0 && pg->used + len > pg->bytes)) {
		pg->cut = true;
		return (true);
	}
	pg->used += len;
	return (false);
}

static int
event_row(void *arg, int ncols, const char **c)
{
	char  ts[48];
	page *pg = arg;

	if (ncols < 9) {
		return (1);
	}
	if (page_full(pg, 200 + (c[8] != NULL ? strlen(c[8]) : 0))) {
		return (1);
	}
	weft_clock_format_rfc3339(cell_int(c[3]), ts);
	json_array_append_new(pg->rows,
	    json_pack("{s:I, s:o, s:I, s:s, s:I, s:s, s:o, s:I, s:o, s:o}", "id",
	        cell_int(c[0]), "run", cell_str(c[1]), "seq", cell_int(c[2]),
	        "ts", ts, "ts_ms", cell_int(c[3]), "type", c[4] ? c[4] : "",
	        "step", cell_str(c[5]),
	        "attempt", cell_int(c[6]), "node", cell_str(c[7]), "data",
	        weft_json_parse_cell(c[8])));
	return (0);
}

// The id range a time range's events lie in (events_time_range).
typedef struct id_range {
	uint64_t first, last; // bucket + 1 of each end; 0: no bucket
} id_range;

static int
id_range_row(void *arg, int ncols, const char **c)
{
	id_range *r = arg;

	if (ncols >= 2) {
		r->first = c[0] != NULL ? strtoull(c[0], NULL, 10) : 0;
		r->last  = c[1] != NULL ? strtoull(c[1], NULL, 10) : 0;
	}
	return (1);
}

// events_time_range narrows *after and *upto (the id bounds of a page) to
// the events with since_ms <= ts_ms < until_ms (until 0: open); *empty
// when no event can be in the range.
//
// Why: a page is read in id order (ORDER BY id LIMIT), so both databases
// walk the ids from the cursor and test each event's time: "--since 1h"
// read the whole log before the last hour first (0.4 s on 1,000,000
// events). event_time (migration 0011) says which buckets of
// WEFT_EVENT_TIME_BUCKET ids have an event in the range, from their
// earliest and latest times; the page reads from the first such bucket
// to the end of the last. The ids are a superset and every event's
// ts_ms is still tested: exact also when the wall clock was set back (a
// later id with an earlier time), and nothing in the range is skipped.
static weft_err
events_time_range(weft_store *s, const weft_events_filter *f,
    uint64_t *after, uint64_t *upto, bool *empty)
{
	char        since[24], until[24];
	const char *p[2] = { since, until };
	id_range    r    = { 0, 0 };
	weft_err    rv;

	snprintf(since, sizeof(since), "%" PRId64, f->since_ms);
	snprintf(until, sizeof(until), "%" PRId64,
	    f->until_ms > 0 ? f->until_ms : INT64_MAX); // 0: open
	rv = s->ops->query(s,
	    "SELECT MIN(bucket) + 1, MAX(bucket) + 1 FROM event_time WHERE "
	    "max_ts >= ? AND min_ts < ?",
	    p, 2, id_range_row, &r);
	if (rv != WEFT_OK) {
		return (rv);
	}
	*empty = r.first == 0;
	if (!*empty) {
		// Bucket b holds ids b * BUCKET .. (b + 1) * BUCKET - 1.
		uint64_t lo = (r.first - 1) * WEFT_EVENT_TIME_BUCKET;
		*after      = lo > 0 && lo - 1 > *after ? lo - 1 : *after;
		*upto       = r.last * WEFT_EVENT_TIME_BUCKET - 1;
	}
	return (WEFT_OK);
}

// events_types_indexed tells whether every type of f is one the partial
// index events_type_ts holds (WEFT_EVENTS_TYPE_INDEXED).
static bool
events_types_indexed(const weft_events_filter *f)
{
	static const char *const hot[] = { "step_ready", "step_dispatched",
		"step_started", "step_succeeded" };

	for (size_t i = 0; i < f->ntypes && i < 16; i++) {
		for (size_t h = 0; h < sizeof(hot) / sizeof(hot[0]); h++) {
			if (strcmp(f->types[i], hot[h]) == 0) {
				return (false);
			}
		}
	}
	return (f->ntypes > 0);
}

weft_err
weft_store_list_events(
    weft_store *s, const weft_events_filter *f, json_t **out)
{
	sqlbuf   b;
	char     like[512], clause[64], mark[24];
	weft_err rv;
	uint64_t after = f->after, upto = 0;
	bool     empty = false;

	// A run's events come from the run index, better than this bound.
	if ((f->since_ms > 0 || f->until_ms > 0) && f->run_id == NULL) {
		rv = events_time_range(s, f, &after, &upto, &empty);
		if (rv != WEFT_OK) {
			*out = NULL;
			return (rv);
		}
		if (empty) {
			*out = json_array();
			if (f->next != NULL) {
				f->next[0] = '\0';
			}
			return (WEFT_OK);
		}
	}
	memset(&b, 0, sizeof(b));
	sql_add(&b,
	    "SELECT id, run_id, seq, ts_ms, type, step_id, attempt, node, data "
	    "FROM events WHERE");
	// Event ids are positive int64: a larger cursor (a raw control
	// client's) is past every event, not a negative one before them.
	int64_t from = after > INT64_MAX ? INT64_MAX : (int64_t) after;
	if (f->run_id != NULL) {
		// The run's ids from the run index and after it (store.h),
		// the cursor inside (an id range outside would be scanned).
		if ((rv = weft_store_index_mark(s, mark)) != WEFT_OK) {
			return (rv);
		}
		sql_param(&b, " id IN (SELECT id FROM run_events WHERE "
		              "run_id = ?", f->run_id);
		sql_num(&b, " AND id > ?", from);
		sql_param(&b, " UNION ALL SELECT id FROM events WHERE id >= ?",
		    mark);
		sql_num(&b, " AND id > ?", from);
		sql_param(&b, " AND run_id = ?)", f->run_id);
		// Again outside, for a planner that cannot see inside.
		sql_num(&b, " AND id > ?", from);
	} else {
		sql_num(&b, " id > ?", from);
	}
	if (upto > 0) {
		sql_num(&b, " AND id <= ?",
		    upto > INT64_MAX ? INT64_MAX : (int64_t) upto);
	}
	if (f->step_id != NULL) {
		sql_param(&b, " AND step_id = ?", f->step_id);
	}
	if (f->node != NULL) {
		sql_param(&b, " AND node = ?", f->node);
	}
	for (size_t i = 0; i < f->ntypes && i < 16; i++) {
		sql_param(&b, i == 0 ? " AND type IN (?" : ", ?", f->types[i]);
		if (i + 1 == f->ntypes || i == 15) {
			sql_add(&b, ")");
		}
	}
	if (events_types_indexed(f)) {
		sql_add(&b, " AND " WEFT_EVENTS_TYPE_INDEXED);
	}
	if (f->since_ms > 0) {
		sql_num(&b, " AND ts_ms >= ?", f->since_ms);
	}
	if (f->until_ms > 0) {
		sql_num(&b, " AND ts_ms < ?", f->until_ms);
	}
	if (f->text != NULL) {
		// A plain substring: % and _ in the text match themselves.
		size_t o = 0;
		like[o++] = '%';
		for (const char *p = f->text; *p != '\0' && o + 3 < sizeof(like);
		     p++) {
			if (*p == '%' || *p == '_' || *p == '\\') {
				like[o++] = '\\';
			}
			like[o++] = *p;
		}
		like[o++] = '%';
		like[o]   = '\0';
		// Each backend says how it matches text inside the JSON.
		snprintf(clause, sizeof(clause), " AND %s",
		    s->ops->data_like != NULL ? s->ops->data_like
		                              : "data LIKE ? ESCAPE '\\'");
		sql_param(&b, clause, like);
	}
	page pg = { .rows = json_array(), .bytes = WEFT_QUERY_BYTES,
		.limit = f->limit == 0 ? WEFT_EVENTS_DEFAULT_LIMIT
		    : f->limit < WEFT_QUERY_MAX_LIMIT ? f->limit
		                                       : WEFT_QUERY_MAX_LIMIT };
	sql_num(&b, " ORDER BY id LIMIT ?", (int64_t) pg.limit + 1);
	rv = s->ops->query(s, b.sql, b.params, b.nparams, event_row, &pg);
	if (rv != WEFT_OK) {
		json_decref(pg.rows);
		*out = NULL;
		return (rv);
	}
	if (f->next != NULL) {
		size_t  n  = json_array_size(pg.rows);
		json_t *id = json_object_get(json_array_get(pg.rows, n - 1), "id");
		f->next[0] = '\0';
		if (pg.cut && n > 0) {
			snprintf(f->next, f->next_len, "%" JSON_INTEGER_FORMAT,
			    json_integer_value(id));
		}
	}
	*out = pg.rows;
	return (rv);
}

// ---- runs ----

#define RUN_COLS                                                          \
	"id, definition, version, status, input, params, output, error, " \
	"created_ms, started_ms, ended_ms, steps_total, steps_done, " \
	"start_at_ms, tags, idempotency_key, priority"

static json_t *
run_from_row(const char **c)
{
	json_t *r = json_pack(
	    "{s:s, s:s, s:I, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:I, s:I}",
	    "id", c[0], "definition", c[1], "version", cell_int(c[2]),
	    "status", c[3], "input", weft_json_parse_cell(c[4]), "params",
	    weft_json_parse_cell(c[5]), "output", weft_json_parse_cell(c[6]),
	    "error", cell_str(c[7]), "created_ms", cell_ms(c[8]), "started_ms",
	    cell_ms(c[9]), "ended_ms", cell_ms(c[10]), "steps_total",
	    cell_int(c[11]), "steps_done", cell_int(c[12]));
	// A delayed start (migration 0007): when a scheduled run starts.
	json_object_set_new(r, "start_at_ms", cell_ms(c[13]));

	// Migration 0008: the run's tags ({} when none) and idempotency key.
	json_object_set_new(r, "tags",
	    c[14] != NULL ? weft_json_parse_cell(c[14]) : json_object());
	json_object_set_new(r, "idempotency_key", cell_str(c[15]));
	// Migration 0009 (sched): the run's priority.
	json_object_set_new(r, "priority", json_integer(cell_int(c[16])));
	return (r);
}

static int
run_row(void *arg, int ncols, const char **c)
{
	if (ncols < 17 || c[0] == NULL || c[1] == NULL || c[3] == NULL) {
		return (1);
	}
	json_array_append_new(arg, run_from_row(c));
	return (0);
}

// What a listing says of a run: never its input, params or output (any
// of them may be megabytes), and its error cut short.
#define RUN_SUMMARY_COLS                                                   \
	"id, definition, version, status, error, created_ms, started_ms, " \
	"ended_ms, steps_total, steps_done, start_at_ms, tags, priority"

static int
run_summary_row(void *arg, int ncols, const char **c)
{
	page   *pg = arg;
	json_t *err;

	if (ncols < 13 || c[0] == NULL || c[1] == NULL || c[3] == NULL) {
		return (1);
	}
	if (page_full(pg, 400)) {
		return (1);
	}
	if (c[4] != NULL && strlen(c[4]) > WEFT_RUNS_ERROR_MAX) {
		size_t n = weft_blob_cut(c[4], strlen(c[4]), WEFT_RUNS_ERROR_MAX);
		char  *cut = weft_xalloc(n + 4);
		memcpy(cut, c[4], n);
		memcpy(cut + n, "\xe2\x80\xa6", 3); // an ellipsis
		err = json_string(cut);
		free(cut);
	} else {
		err = cell_str(c[4]);
	}
	json_array_append_new(pg->rows,
	    json_pack("{s:s, s:s, s:I, s:s, s:o, s:o, s:o, s:o, s:I, s:I}", "id",
	        c[0], "definition", c[1], "version", cell_int(c[2]), "status",
	        c[3], "error", err ? err : json_null(), "created_ms",
	        cell_ms(c[5]), "started_ms", cell_ms(c[6]), "ended_ms",
	        cell_ms(c[7]), "steps_total", cell_int(c[8]), "steps_done",
	        cell_int(c[9])));
	json_object_set_new(json_array_get(pg->rows,
	                        json_array_size(pg->rows) - 1),
	    "start_at_ms", cell_ms(c[10]));
	// Tags (migration 0008): {} for a run without any.
	json_object_set_new(json_array_get(pg->rows, json_array_size(pg->rows) - 1),
	    "tags", ncols > 11 && c[11] != NULL ? weft_json_parse_cell(c[11])
	                                        : json_object());
	json_object_set_new(json_array_get(pg->rows, json_array_size(pg->rows) - 1),
	    "priority", json_integer(ncols > 12 ? cell_int(c[12]) : 0));
	return (0);
}

// runs_where adds f's filters (but the cursor) to b: status, definition,
// creation time and tags, each tag one indexed lookup in run_tags; with
// after (a bulk chunk's cursor), each tag's lookup starts there too, a
// range of run_tags_kv (key, value, run_id), so a chunk reads the tagged
// runs after the cursor, not all of them.
static void
runs_where(sqlbuf *b, const weft_runs_filter *f, const char *after)
{
	if (f->status != NULL) {
		sql_param(b, " AND status = ?", f->status);
	}
	if (f->definition != NULL) {
		sql_param(b, " AND definition = ?", f->definition);
	}
	if (f->since_ms > 0) {
		sql_num(b, " AND created_ms >= ?", f->since_ms);
	}
	if (f->until_ms > 0) {
		sql_num(b, " AND created_ms < ?", f->until_ms);
	}
	for (size_t i = 0; i < f->ntags && i < WEFT_RUNS_TAGS_MAX; i++) {
		sql_param(b,
		    " AND id IN (SELECT run_id FROM run_tags WHERE key = ?",
		    f->tag_keys[i]);
		sql_param(b, " AND value = ?", f->tag_values[i]);
		if (after != NULL && after[0] != '\0') {
			sql_param(b, " AND run_id > ?", after);
		}
		sql_add(b, ")");
	}
}

static int
match_row(void *arg, int ncols, const char **c)
{
	if (ncols >= 2 && c[0] != NULL && c[1] != NULL) {
		json_array_append_new(arg,
		    json_pack("{s:s, s:s}", "id", c[0], "status", c[1]));
	}
	return (0);
}

weft_err
weft_store_match_runs(weft_store *s, const weft_runs_filter *f,
    const char *after, uint32_t limit, json_t **out)
{
	sqlbuf   b;
	weft_err rv;

	memset(&b, 0, sizeof(b));
	*out = json_array();
	if (f->ntags > 0) {
		// Driven by the first tag: its run_tags_kv range in run id
		// order from the cursor, stopping at the limit, so a chunk
		// costs its own runs whatever number carry the tag.
		weft_runs_filter rest = *f;
		rest.tag_keys++;
		rest.tag_values++;
		rest.ntags--;
		sql_param(&b, "SELECT runs.id, runs.status FROM run_tags t0 JOIN "
		              "runs ON runs.id = t0.run_id WHERE t0.key = ?",
		    f->tag_keys[0]);
		sql_param(&b, " AND t0.value = ?", f->tag_values[0]);
		if (after != NULL && after[0] != '\0') {
			sql_param(&b, " AND t0.run_id > ?", after);
		}
		runs_where(&b, &rest, after);
		sql_num(&b, " ORDER BY t0.run_id LIMIT ?", (int64_t) limit);
	} else {
		sql_add(&b, "SELECT id, status FROM runs WHERE id <> ''");
		runs_where(&b, f, after);
		if (after != NULL && after[0] != '\0') {
			sql_param(&b, " AND id > ?", after);
		}
		sql_num(&b, " ORDER BY id LIMIT ?", (int64_t) limit);
	}
	rv = s->ops->query(s, b.sql, b.params, b.nparams, match_row, *out);
	if (rv != WEFT_OK) {
		json_decref(*out);
		*out = NULL;
	}
	return (rv);
}

weft_err
weft_store_list_runs(weft_store *s, const weft_runs_filter *f, json_t **out)
{
	sqlbuf   b;
	weft_err rv;

	memset(&b, 0, sizeof(b));
	sql_add(&b, "SELECT " RUN_SUMMARY_COLS " FROM runs WHERE id <> ''");
	runs_where(&b, f, NULL);
	if (f->before != NULL) {
		sql_param(&b, " AND id < ?", f->before);
	}
	page pg = { .rows = json_array(), .bytes = WEFT_QUERY_BYTES,
		.limit = f->limit == 0 ? WEFT_RUNS_DEFAULT_LIMIT
		    : f->limit < WEFT_QUERY_MAX_LIMIT ? f->limit
		                                       : WEFT_QUERY_MAX_LIMIT };
	sql_num(&b, " ORDER BY id DESC LIMIT ?", (int64_t) pg.limit + 1);
	rv = s->ops->query(
	    s, b.sql, b.params, b.nparams, run_summary_row, &pg);
	if (rv != WEFT_OK) {
		json_decref(pg.rows);
		*out = NULL;
		return (rv);
	}
	if (f->next != NULL) {
		size_t n = json_array_size(pg.rows);
		snprintf(f->next, f->next_len, "%s",
		    pg.cut && n > 0 ? json_string_value(json_object_get(
		                          json_array_get(pg.rows, n - 1), "id"))
		                    : "");
	}
	*out = pg.rows;
	return (rv);
}

static int
step_row(void *arg, int ncols, const char **c)
{
	json_t *steps = arg;

	if (ncols < 8 || c[0] == NULL) {
		return (1);
	}
	json_object_set_new(steps, c[0],
	    json_pack("{s:s, s:I, s:o, s:o, s:o, s:o, s:o}", "status",
	        c[1] ? c[1] : "pending", "attempt", cell_int(c[2]), "node",
	        cell_str(c[3]), "output", weft_json_parse_cell(c[4]), "error",
	        cell_str(c[5]), "started_ms", cell_ms(c[6]), "ended_ms",
	        cell_ms(c[7])));
	return (0);
}

static int
text_row(void *arg, int ncols, const char **c)
{
	char **out = arg;
	if (ncols > 0 && c[0] != NULL && *out == NULL) {
		*out = weft_xstrdup(c[0]);
	}
	return (0);
}

// expanded_row notes the item count of one expanded map step, or the
// data of an expand step's expansion (arg: {"counts", "spliced"}; a later
// row replaces an earlier one).
static int
expanded_row(void *arg, int ncols, const char **c)
{
	if (ncols >= 2 && c[0] != NULL) {
		json_t *d = weft_json_parse_cell(c[1]);
		if (json_is_array(json_object_get(d, "steps"))) {
			json_object_set(json_object_get(arg, "spliced"), c[0], d);
		} else {
			json_object_set(json_object_get(arg, "counts"), c[0],
			    json_object_get(d, "count"));
		}
		json_decref(d);
	}
	return (0);
}

// expanded_current: the expansion data d is the one step row `row` is in
// (the same attempt, the step running on it or ended): a run retry that
// sent the step back discarded it.
static bool
expanded_current(const json_t *row, const json_t *d)
{
	const char *st = json_string_value(json_object_get(row, "status"));

	return (row != NULL && st != NULL &&
	    json_integer_value(json_object_get(row, "attempt")) ==
	        json_integer_value(json_object_get(d, "attempt")) &&
	    strcmp(st, "pending") != 0 && strcmp(st, "ready") != 0 &&
	    strcmp(st, "dispatched") != 0 && strcmp(st, "retry_wait") != 0);
}

// expanded_fields adds to the row o of step sid (its definition: step)
// what expansion makes of it: a spliced step's depends_on (in full: its
// definition is not the run's), and an expand step's current expansion's
// progress, "expansion": {total, done, failed, running}.
static void
expanded_fields(json_t *o, json_t *step, const char *sid, json_t *spliced,
    json_t *rows)
{
	json_t *d = json_object_get(spliced, sid);
	json_t *js;
	size_t  k;
	int     done = 0, failed = 0, running = 0;

	if (strchr(sid, '.') != NULL) {
		json_t *deps = json_object_get(step, "depends_on");
		json_object_set_new(o, "depends_on",
		    deps != NULL ? json_incref(deps) : json_array());
	}
	if (d == NULL || !expanded_current(json_object_get(rows, sid), d)) {
		return;
	}
	json_array_foreach (json_object_get(d, "steps"), k, js) {
		const char *st = json_string_value(json_object_get(json_object_get(
		    rows, json_string_value(json_object_get(js, "id"))), "status"));
		if (st == NULL) {
			continue; // pending: no row yet
		}
		failed += strcmp(st, "failed") == 0;
		done += strcmp(st, "succeeded") == 0 || strcmp(st, "skipped") == 0 ||
		    strcmp(st, "cancelled") == 0 || strcmp(st, "failed") == 0 ||
		    strcmp(st, "upstream_failed") == 0;
		running += strcmp(st, "dispatched") == 0 ||
		    strcmp(st, "running") == 0;
	}
	json_object_set_new(o, "expansion", json_pack("{s:I, s:i, s:i, s:i}",
	    "total", (json_int_t) json_array_size(json_object_get(d, "steps")),
	    "done", done, "failed", failed, "running", running));
}

// expanded_steps appends to out each step of steps (borrowed) followed by
// the steps of its current expansion, nested ones likewise: the order
// `weft status` lists them in.
static void
expanded_steps(json_t *out, json_t *steps, json_t *spliced, json_t *rows,
    int depth)
{
	json_t *step;
	size_t  i;

	json_array_foreach (steps, i, step) {
		const char *sid = json_string_value(json_object_get(step, "id"));
		json_t     *d   = sid ? json_object_get(spliced, sid) : NULL;
		json_array_append(out, step);
		if (d != NULL && depth < 32 &&
		    expanded_current(json_object_get(rows, sid), d)) {
			expanded_steps(out, json_object_get(d, "steps"), spliced,
			    rows, depth + 1);
		}
	}
}

// progress_row keeps the latest step_progress of each step (rows come in
// sequence order, so a later one replaces an earlier one).
static int
progress_row(void *arg, int ncols, const char **c)
{
	if (ncols >= 4 && c[0] != NULL) {
		json_t *d = weft_json_parse_cell(c[1]);
		json_object_set_new(arg, c[0],
		    json_pack("{s:O, s:I, s:I}", "value",
		        json_object_get(d, "progress") ? json_object_get(d,
		                                             "progress")
		                                       : json_null(),
		        "attempt", cell_int(c[2]), "ts_ms", cell_int(c[3])));
		json_decref(d);
	}
	return (0);
}

// items_summary counts the items of map step sid by state from the rows
// ("sid[k]") and the expansion's count.
static json_t *
items_summary(json_t *rows, const char *sid, json_t *count)
{
	size_t      len = strlen(sid);
	int         done = 0, failed = 0, running = 0;
	const char *key;
	json_t     *row;

	json_object_foreach (rows, key, row) {
		const char *st;
		if (strncmp(key, sid, len) != 0 || key[len] != '[') {
			continue;
		}
		st = json_string_value(json_object_get(row, "status"));
		done += strcmp(st, "succeeded") == 0 || strcmp(st, "skipped") == 0 ||
		    strcmp(st, "cancelled") == 0;
		failed += strcmp(st, "failed") == 0;
		running += strcmp(st, "dispatched") == 0 || strcmp(st, "running") == 0;
	}
	return (json_pack("{s:O, s:i, s:i, s:i}", "total", count, "done",
	    done + failed, "failed", failed, "running", running));
}

// run_def_body returns the body of run's definition (a new reference, or
// NULL) and, in *len, the size of its text.
static weft_err
run_def_body(weft_store *s, json_t *run, json_t **def, size_t *len)
{
	char       *body = NULL;
	char        ver[24];
	const char *p[2] = { json_string_value(json_object_get(run, "definition")),
		ver };
	weft_err    rv;

	snprintf(ver, sizeof(ver), "%" JSON_INTEGER_FORMAT,
	    json_integer_value(json_object_get(run, "version")));
	rv = s->ops->query(s,
	    "SELECT body FROM definitions WHERE name = ? AND version = ?", p, 2,
	    text_row, &body);
	*len = body != NULL ? strlen(body) : 0;
	*def = body != NULL ? json_loads(body, 0, NULL) : NULL;
	free(body);
	return (rv);
}

// run_first_step returns the index in steps (the definition's) of the
// first step after the one named after (NULL: 0); -1 when there is none
// of that name.
static long
run_first_step(json_t *steps, const char *after)
{
	json_t *step;
	size_t  i;

	if (after == NULL) {
		return (0);
	}
	json_array_foreach (steps, i, step) {
		if (strcmp(json_string_value(json_object_get(step, "id")),
		        after) == 0) {
			return ((long) i + 1);
		}
	}
	return (-1);
}

// run_add_steps lists the steps of the definition in order, those of the
// page pg, with the projection's state where the step has one, "pending"
// otherwise; a map step also gets "items": {total, done, failed, running}.
static weft_err
run_add_steps(weft_store *s, json_t *run, weft_steps_page *pg)
{
	const char *id   = json_string_value(json_object_get(run, "id"));
	json_t     *rows = json_object();
	json_t     *list = json_array();
	weft_err    rv;
	json_t     *def = NULL, *step, *dsteps;
	size_t      i, deflen = 0, used = 0;
	long        first = 0;
	uint32_t    limit = pg->limit > 0 ? pg->limit : WEFT_STEPS_DEFAULT_LIMIT;

	if (pg->next != NULL) {
		pg->next[0] = '\0';
	}
	// Map items' outputs are never shown here: leave them in the store
	// (a 100,000-item map would otherwise be read whole for each status).
	rv = s->ops->query(s,
	    "SELECT step_id, status, attempt, node, CASE WHEN step_id LIKE "
	    "'%[%' THEN NULL ELSE output END, error, started_ms, ended_ms FROM "
	    "steps WHERE run_id = ?",
	    &id, 1, step_row, rows);
	if (rv == WEFT_OK) {
		rv = run_def_body(s, run, &def, &deflen);
	}
	json_t     *counts = json_object();
	json_t     *exp    = json_pack("{s:O, s:o}", "counts", counts,
            "spliced", json_object());
	char        mark[24] = "0";
	const char *ex[4]    = { id, mark, id,
                weft_event_name(WEFT_EV_STEP_EXPANDED) };
	if (rv == WEFT_OK) {
		rv = weft_store_index_mark(s, mark);
	}
	if (rv == WEFT_OK) {
		rv = s->ops->query(s,
		    "SELECT step_id, data FROM events WHERE id IN "
		    WEFT_RUN_EVENT_IDS " AND type = ? ORDER BY id",
		    ex, 4, expanded_row, exp);
	}
	// The latest progress of each step: its step_progress events (one
	// every few seconds at most while the step reports a change).
	json_t     *progress = json_object();
	const char *pq[4]    = { id, mark, id,
                weft_event_name(WEFT_EV_STEP_PROGRESS) };
	if (rv == WEFT_OK) {
		rv = s->ops->query(s,
		    "SELECT step_id, data, attempt, ts_ms FROM events WHERE id "
		    "IN " WEFT_RUN_EVENT_IDS " AND type = ? ORDER BY id",
		    pq, 4, progress_row, progress);
	}
	// The definition's steps with the expansions spliced in, each after
	// its expanding step.
	dsteps = json_array();
	expanded_steps(dsteps, json_object_get(def, "steps"),
	    json_object_get(exp, "spliced"), rows, 0);
	if (rv == WEFT_OK && (first = run_first_step(dsteps, pg->after)) < 0) {
		snprintf(s->error, sizeof(s->error),
		    "steps_after: run %s has no step \"%s\"", id, pg->after);
		rv = WEFT_EINVAL;
	}
	if (pg->statuses != NULL) {
		*pg->statuses = json_object();
	}
	json_array_foreach (dsteps, i, step) {
		const char *sid = json_string_value(json_object_get(step, "id"));
		json_t     *row = json_object_get(rows, sid);
		if (pg->statuses != NULL) {
			json_object_set_new(*pg->statuses, sid,
			    row != NULL ? json_incref(json_object_get(row, "status"))
			                : json_string("pending"));
		}
		if (rv != WEFT_OK || (long) i < first) {
			continue;
		}
		size_t n = json_array_size(list);
		json_t *o = NULL;
		size_t  len = 0;
		if (n < limit) {
			o = row != NULL ? json_deep_copy(row)
			                : json_pack("{s:s, s:I}", "status", "pending",
			                      "attempt", (json_int_t) 0);
			json_object_set_new(o, "id", json_string(sid));
			json_object_set(o, "type", json_object_get(step, "type"));
			if (json_object_get(step, "map") != NULL) {
				json_t *c = json_object_get(counts, sid);
				json_object_set_new(o, "items",
				    items_summary(rows, sid, c ? c : json_null()));
			}
			if (json_object_get(progress, sid) != NULL) {
				json_object_set(
				    o, "progress", json_object_get(progress, sid));
			}
			expanded_fields(o, step, sid,
			    json_object_get(exp, "spliced"), rows);
			// Measured as it will be sent, plus room for the
			// waiting_for the query thread adds.
			len = 300 + json_dumpb(o, NULL, 0, JSON_COMPACT);
		}
		if (o == NULL ||
		    (n > 0 && pg->bytes > 0 && used + len > pg->bytes)) {
			// Cut: the next page starts after the last one here.
			json_decref(o);
			if (pg->next != NULL) {
				snprintf(pg->next, pg->next_len, "%s",
				    json_string_value(json_object_get(
				        json_array_get(list, n - 1), "id")));
			}
			if (pg->statuses == NULL) {
				break;
			}
			first = LONG_MAX;
			continue;
		}
		used += len;
		json_array_append_new(list, o);
	}
	json_decref(progress);
	json_decref(counts);
	json_decref(exp);
	json_decref(dsteps);
	json_decref(rows);
	if (def != NULL && pg->bytes > 0 && deflen > WEFT_STATUS_DEF_MAX) {
		// Too big to come with every status page: GET the
		// definition itself for it.
		json_decref(def);
		def = NULL;
		json_object_set_new(run, "definition_body_omitted",
		    json_integer((json_int_t) deflen));
	}
	json_object_set_new(run, "definition_body", def ? def : json_null());
	json_object_set_new(run, "steps", list);
	return (rv);
}

// data_row keeps the data of each step's latest event (rows come in seq
// order: a later one replaces).
static int
data_row(void *arg, int ncols, const char **c)
{
	if (ncols >= 2 && c[0] != NULL) {
		json_object_set_new(arg, c[0], weft_json_parse_cell(c[1]));
	}
	return (0);
}

weft_err
weft_store_last_step_data(
    weft_store *s, const char *id, const char *type, json_t **out)
{
	char        mark[24];
	const char *p[4] = { id, mark, id, type };
	weft_err    rv;

	*out = json_object();
	if ((rv = weft_store_index_mark(s, mark)) != WEFT_OK) {
		return (rv);
	}
	return (s->ops->query(s,
	    "SELECT step_id, data FROM events WHERE id IN " WEFT_RUN_EVENT_IDS
	    " AND type = ? ORDER BY id",
	    p, 4, data_row, *out));
}

weft_err
weft_store_get_run_page(
    weft_store *s, const char *id, weft_steps_page *pg, json_t **out)
{
	json_t  *arr = json_array();
	weft_err rv;

	*out = NULL;
	if (pg->statuses != NULL) {
		*pg->statuses = NULL;
	}
	rv = s->ops->query(s, "SELECT " RUN_COLS " FROM runs WHERE id = ?", &id,
	    1, run_row, arr);
	if (rv == WEFT_OK && json_array_size(arr) == 0) {
		rv = WEFT_ENOENT;
	}
	if (rv == WEFT_OK) {
		*out = json_incref(json_array_get(arr, 0));
		rv   = run_add_steps(s, *out, pg);
	}
	if (rv != WEFT_OK) {
		json_decref(*out);
		*out = NULL;
		if (pg->statuses != NULL) {
			json_decref(*pg->statuses);
			*pg->statuses = NULL;
		}
	}
	json_decref(arr);
	return (rv);
}

weft_err
weft_store_get_run(weft_store *s, const char *id, json_t **out)
{
	weft_steps_page all = { .limit = UINT32_MAX };

	return (weft_store_get_run_page(s, id, &all, out));
}

static int
secrets_row(void *arg, int ncols, const char **c)
{
	char **box = arg;

	if (ncols > 0 && c[0] != NULL && *box == NULL) {
		*box = weft_xstrdup(c[0]);
	}
	return (0);
}

weft_err
weft_store_get_secrets(weft_store *s, const char *id, char **box)
{
	*box = NULL;
	return (s->ops->query(s, "SELECT box FROM run_secrets WHERE run_id = ?",
	    &id, 1, secrets_row, box));
}

// ---- definitions ----

static int
def_row(void *arg, int ncols, const char **c)
{
	page  *pg = arg;
	size_t len;

	if (ncols < 4 || c[0] == NULL) {
		return (1);
	}
	json_t *body = weft_json_parse_cell(c[2]);
	json_t *d    = json_pack("{s:s, s:I, s:o, s:I}", "name", c[0],
            "version", cell_int(c[1]), "params",
            json_object_get(body, "params")
	               ? json_incref(json_object_get(body, "params"))
	               : json_object(),
            "created_ms", cell_int(c[3]));
	// Every definition is listed, but the bodies only while they fit
	// the answer: a few 4 MiB definitions would pass the wire's limit.
	len = c[2] != NULL ? strlen(c[2]) : 0;
	if (pg->used + len > pg->bytes) {
		json_decref(body);
		json_object_set_new(d, "definition", json_null());
		json_object_set_new(d, "definition_omitted",
		    json_integer((json_int_t) len));
	} else {
		pg->used += len;
		json_object_set_new(d, "definition", body);
	}
	json_array_append_new(pg->rows, d);
	return (0);
}

weft_err
weft_store_list_definitions(weft_store *s, json_t **out)
{
	page pg = { .rows = json_array(), .bytes = WEFT_QUERY_BYTES };

	*out = pg.rows;
	// The latest version of each name.
	return (s->ops->query(s,
	    "SELECT d.name, d.version, d.body, d.created_ms FROM definitions d "
	    "WHERE d.version = (SELECT MAX(version) FROM definitions e WHERE "
	    "e.name = d.name) ORDER BY d.name",
	    NULL, 0, def_row, &pg));
}

static int
body_version_row(void *arg, int ncols, const char **c)
{
	json_t *o = arg;
	if (ncols >= 2 && c[0] != NULL) {
		json_object_set_new(o, "body", json_string(c[0]));
		json_object_set_new(o, "version", json_integer(cell_int(c[1])));
	}
	return (1);
}

weft_err
weft_store_get_definition(weft_store *s, const char *name, int64_t version,
    char **body, int64_t *found)
{
	json_t  *o = json_object();
	char     ver[24];
	weft_err rv;

	snprintf(ver, sizeof(ver), "%" PRId64, version);
	const char *p[2] = { name, ver };
	rv               = version > 0
	                  ? s->ops->query(s,
                  "SELECT body, version FROM definitions WHERE name = ? "
                  "AND version = ?",
                  p, 2, body_version_row, o)
	                  : s->ops->query(s,
                  "SELECT body, version FROM definitions WHERE name = ? "
                  "ORDER BY version DESC LIMIT 1",
                  p, 1, body_version_row, o);
	if (rv == WEFT_OK && json_object_get(o, "body") == NULL) {
		rv = WEFT_ENOENT;
	}
	if (rv == WEFT_OK) {
		*body  = weft_xstrdup(json_string_value(json_object_get(o, "body")));
		*found = json_integer_value(json_object_get(o, "version"));
	}
	json_decref(o);
	return (rv);
}

// ---- recovery ----

static int
recover_step_row(void *arg, int ncols, const char **c)
{
	if (ncols < 6 || c[0] == NULL) {
		return (1);
	}
	json_array_append_new(arg,
	    json_pack("{s:s, s:s, s:I, s:o, s:o, s:o}", "step_id", c[0],
	        "status", c[1] ? c[1] : "pending", "attempt", cell_int(c[2]),
	        "node", cell_str(c[3]), "output", weft_json_parse_cell(c[4]),
	        "error", cell_str(c[5])));
	return (0);
}

weft_err
weft_store_unfinished_runs(
    weft_store *s, const char *after, size_t limit, json_t **out)
{
	json_t  *runs = json_array();
	json_t  *run;
	size_t   i;
	weft_err rv;
	char     sql[512];

	// A page at a time, in id order from the cursor: recovery holds one
	// page of stored runs, not all of them, beside the live runs it
	// builds (the primary key orders and resumes the scan).
	snprintf(sql, sizeof(sql),
	    "SELECT " RUN_COLS " FROM runs WHERE status IN ('queued', "
	    "'scheduled', 'running', 'paused') AND id > ? ORDER BY id "
	    "LIMIT %zu",
	    limit);
	// One read transaction for the page: SQLite would otherwise take
	// and drop its file lock (fcntl, fstat, access) around each of the
	// two statements per run, a fifth of recovery's time.
	// The events that wait for the run index go in first: recovery
	// commits each page's events before it reads the next, and each
	// run's last event would otherwise be looked for among all of
	// them (a page later, a scan that grew with every page).
	uint64_t to = 0;
	if ((rv = s->ops->begin(s)) == WEFT_OK &&
	    (rv = weft_store_index_copy(s, &to)) == WEFT_OK) {
		rv = s->ops->query(s, sql, &after, 1, run_row, runs);
	}
	// Nothing waits after that copy: the mark is where it put it.
	char mark[24];
	snprintf(mark, sizeof(mark), "%" PRIu64, to);
	json_array_foreach (runs, i, run) {
		const char *id    = json_string_value(json_object_get(run, "id"));
		json_t     *steps = json_array();
		uint64_t    seq   = 0;
		if (rv == WEFT_OK) {
			rv = s->ops->query(s,
			    "SELECT step_id, status, attempt, node, output, error "
			    "FROM steps WHERE run_id = ?",
			    &id, 1, recover_step_row, steps);
		}
		const char *three[3] = { id, mark, id };
		if (rv == WEFT_OK) {
			rv = s->ops->query(s,
			    "SELECT COALESCE(MAX(seq), 0) FROM events WHERE id IN "
			    WEFT_RUN_LAST_EVENT_IDS,
			    three, 3, weft_store_u64_row, &seq);
		}
		json_object_set_new(run, "steps", steps);
		json_object_set_new(run, "last_seq", json_integer((json_int_t) seq));
	}
	if (rv == WEFT_OK) {
		rv = s->ops->commit(s);
	} else {
		s->ops->rollback(s);
	}
	if (rv != WEFT_OK) {
		json_decref(runs);
		runs = NULL;
	} else {
		weft_store_index_moved(s, to);
	}
	*out = runs;
	return (rv);
}

weft_err
weft_store_run_last_seq(weft_store *s, const char *id, uint64_t *out)
{
	char        mark[24];
	const char *p[3] = { id, mark, id };
	weft_err    rv;

	*out = 0;
	if ((rv = weft_store_index_mark(s, mark)) != WEFT_OK) {
		return (rv);
	}
	return (s->ops->query(s,
	    "SELECT COALESCE(MAX(seq), 0) FROM events WHERE id IN "
	    WEFT_RUN_LAST_EVENT_IDS,
	    p, 3, weft_store_u64_row, out));
}

weft_err
weft_store_runs_by_status(weft_store *s, weft_store_row_fn fn, void *arg)
{
	return (s->ops->query(s,
	    "SELECT status, COUNT(*) FROM runs GROUP BY status", NULL, 0, fn,
	    arg));
}

// ---- schedules ----

static int
schedule_row(void *arg, int ncols, const char **c)
{
	if (ncols < 12 || c[0] == NULL || c[1] == NULL || c[2] == NULL) {
		return (1);
	}
	json_array_append_new(arg,
	    json_pack("{s:s, s:s, s:s, s:s, s:o, s:o, s:s, s:s, s:b, s:o, s:o, "
	              "s:o}",
	        "name", c[0], "definition", c[1], "cron", c[2], "timezone",
	        c[3] ? c[3] : "UTC", "input", weft_json_parse_cell(c[4]),
	        "params", weft_json_parse_cell(c[5]), "overlap",
	        c[6] ? c[6] : "skip", "catchup", c[7] ? c[7] : "one", "paused",
	        c[8] != NULL && strcmp(c[8], "0") != 0, "created_ms",
	        cell_ms(c[9]), "last_fire_ms", cell_ms(c[10]), "last_run_id",
	        cell_str(c[11])));
	return (0);
}

weft_err
weft_store_list_schedules(weft_store *s, json_t **out)
{
	json_t  *arr = json_array();
	weft_err rv  = s->ops->query(s,
	     "SELECT name, definition, cron, timezone, input, params, "
	      "overlap, catchup, paused, created_ms, last_fire_ms, last_run_id "
	      "FROM schedules ORDER BY name",
	     NULL, 0, schedule_row, arr);

	if (rv != WEFT_OK) {
		json_decref(arr);
		return (rv);
	}
	*out = arr;
	return (WEFT_OK);
}
