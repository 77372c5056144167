// submit: many runs in few requests, `weft run NAME --count N` and `weft
// submit FILE.jsonl`. Runs travel in RunBatchRequests of at most
// WEFT_WIRE_RUN_BATCH_MAX runs and SUBMIT_BYTES_MAX bytes, one after the
// other; the coordinator creates each batch's runs in one commit and
// answers a result per run, in order, which is what gets printed.
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "cli.h"
#include "runreq.h"

// Bytes of run requests per batch: well under the wire's 16 MiB and the
// HTTP body limit, so that a batch of large inputs still goes as one
// message. A single request larger than this goes alone.
#define SUBMIT_BYTES_MAX ((size_t) 8 << 20)

// The most failed runs `run --count` names on stderr; the rest are
// counted.
#define SUBMIT_SHOW_ERRORS 10

// submit_call sends the n requests of rr (borrowed) as one RunBatchRequest
// and sets *results to its results (new reference: one per request, in
// order) and events_url (len bytes) to the coordinator's event stream.
// Returns an exit status; a problem is printed.
static int
submit_call(weft_cli *c, Weft__RunRequest **rr, size_t n, json_t **results,
    char *events_url, size_t len)
{
	Weft__ControlRequest  req = WEFT__CONTROL_REQUEST__INIT;
	Weft__RunBatchRequest br  = WEFT__RUN_BATCH_REQUEST__INIT;
	json_t               *body = NULL;
	int                   rv;

	br.n_runs     = n;
	br.runs       = rr;
	req.req_case  = WEFT__CONTROL_REQUEST__REQ_RUN_BATCH;
	req.run_batch = &br;
	if ((rv = weft_cli_call(c, &req, &body)) != WEFT_CLI_OK) {
		return (rv);
	}
	*results = json_incref(json_object_get(body, "results"));
	snprintf(events_url, len, "%s",
	    json_string_value(json_object_get(body, "events_url")) != NULL
	        ? json_string_value(json_object_get(body, "events_url"))
	        : "");
	json_decref(body);
	if (json_array_size(*results) != n) {
		fprintf(stderr, "weft: bad reply from coordinator: %zu results "
		                "for %zu runs\n",
		    json_array_size(*results), n);
		json_decref(*results);
		*results = NULL;
		return (WEFT_CLI_FAIL);
	}
	return (WEFT_CLI_OK);
}

// submit_per_batch returns how many copies of run fit in one batch.
static size_t
submit_per_batch(const Weft__RunRequest *run)
{
	size_t one = weft__run_request__get_packed_size(run) + 8;
	size_t k   = SUBMIT_BYTES_MAX / one;

	k = k < 1 ? 1 : k;
	return (k < WEFT_WIRE_RUN_BATCH_MAX ? k : WEFT_WIRE_RUN_BATCH_MAX);
}

int
weft_cli_run_many(weft_cli *c, Weft__RunRequest *run, uint64_t count)
{
	size_t             per   = submit_per_batch(run);
	Weft__RunRequest **rr    = weft_xalloc(per * sizeof(*rr));
	json_t            *ids   = json_array(), *all = json_array();
	json_t            *results, *r;
	char               events_url[512] = "";
	size_t             failed = 0, i;
	int                rv     = WEFT_CLI_OK;

	for (i = 0; i < per; i++) {
		rr[i] = run;
	}
	for (uint64_t done = 0; done < count && rv == WEFT_CLI_OK;) {
		size_t n = count - done < per ? (size_t) (count - done) : per;
		if ((rv = submit_call(c, rr, n, &results, events_url,
		         sizeof(events_url))) != WEFT_CLI_OK) {
			fprintf(stderr, "weft: %llu of %llu runs were not "
			                "submitted\n",
			    (unsigned long long) (count - done),
			    (unsigned long long) count);
			break;
		}
		json_array_foreach (results, i, r) {
			const char *id = json_string_value(
			    json_object_get(r, "run_id"));
			json_array_append(all, r);
			if (id != NULL) {
				json_array_append_new(ids, json_string(id));
				if (!c->json) {
					printf("%s\n", id);
				}
			} else if (failed++ < SUBMIT_SHOW_ERRORS) {
				fprintf(stderr, "weft: run %llu: %s\n",
				    (unsigned long long) done + i + 1,
				    json_string_value(
				        json_object_get(r, "error")));
			}
		}
		json_decref(results);
		done += n;
	}
	if (failed > SUBMIT_SHOW_ERRORS) {
		fprintf(stderr, "weft: %zu runs failed in all\n", failed);
	}
	if (c->json) {
		json_t *o = json_pack("{s:O}", "results", all);
		weft_cli_print_json(o);
		json_decref(o);
	}
	fflush(stdout);
	if (rv == WEFT_CLI_OK && failed > 0) {
		rv = WEFT_CLI_FAIL;
	}
	if (c->flag[WEFT_CLI_F_WAIT] != NULL && json_array_size(ids) > 0) {
		int w = weft_cli_wait_all(c, ids, events_url);
		rv    = w > rv ? w : rv;
	}
	json_decref(ids);
	json_decref(all);
	free(rr);
	return (rv);
}

// ---- weft submit ----

// One line of the file on its way: parsed into q, or refused here (err).
typedef struct submit_line {
	size_t      lineno; // 1-based
	json_t     *obj;    // the line's JSON; NULL when malformed
	weft_runreq q;      // made from obj when err is ""
	char        err[300];
} submit_line;

// A batch of lines: every line read since the last flush, sent or not.
typedef struct submit_batch {
	submit_line       *lines;
	size_t             n, cap;
	Weft__RunRequest **rr;    // the sendable lines' requests, made
	                          // when sent (lines may move until then)
	size_t             nrr;   // lines that can be sent
	size_t             bytes; // their packed size
	size_t             failed; // lines that failed so far, all batches
} submit_batch;

// submit_print prints one line's outcome: the run id, or "line K: error"
// (as a JSON line with --json).
static void
submit_print(weft_cli *c, const submit_line *l, json_t *r)
{
	const char *id  = json_string_value(json_object_get(r, "run_id"));
	const char *err = l->err[0] != '\0'
	    ? l->err
	    : json_string_value(json_object_get(r, "error"));

	if (c->json) {
		json_t *o = id != NULL
		    ? json_pack("{s:I, s:s}", "line", (json_int_t) l->lineno,
		          "run_id", id)
		    : json_pack("{s:I, s:s}", "line", (json_int_t) l->lineno,
		          "error", err != NULL ? err : "no result");
		weft_cli_print_json(o);
		json_decref(o);
	} else if (id != NULL) {
		printf("%s\n", id);
	} else {
		printf("line %zu: %s\n", l->lineno,
		    err != NULL ? err : "no result");
	}
}

// submit_flush sends the batch's sendable lines, prints every line's
// outcome in file order, and empties the batch. Returns an exit status
// for the request as a whole (its lines' own failures are counted).
static int
submit_flush(weft_cli *c, submit_batch *b)
{
	json_t *results = NULL;
	char    events_url[512];
	size_t  k = 0;
	int     rv = WEFT_CLI_OK;

	for (size_t i = 0; i < b->n; i++) {
		if (b->lines[i].err[0] == '\0') {
			b->rr[k++] = &b->lines[i].q.rr;
		}
	}
	k = 0;
	if (b->nrr > 0) {
		rv = submit_call(c, b->rr, b->nrr, &results, events_url,
		    sizeof(events_url));
	}
	for (size_t i = 0; i < b->n; i++) {
		submit_line *l = &b->lines[i];
		json_t      *r = NULL;
		if (rv == WEFT_CLI_OK) {
			r = l->err[0] == '\0' ? json_array_get(results, k++) : NULL;
			submit_print(c, l, r);
			b->failed += json_object_get(r, "run_id") == NULL;
		}
		weft_runreq_fini(&l->q);
		json_decref(l->obj);
	}
	if (rv != WEFT_CLI_OK && b->n > 0) {
		fprintf(stderr, "weft: lines %zu to %zu and the rest were not "
		                "submitted\n",
		    b->lines[0].lineno, b->lines[b->n - 1].lineno);
	}
	json_decref(results);
	fflush(stdout);
	b->n = b->nrr = b->bytes = 0;
	return (rv);
}

// submit_blank reports whether a line holds only white space.
static bool
submit_blank(const char *s)
{
	while (*s != '\0' && isspace((unsigned char) *s)) {
		s++;
	}
	return (*s == '\0');
}

// submit_take parses line text (number lineno) into the batch's next
// line, refusing it there if it is no run request.
static submit_line *
submit_take(submit_batch *b, const char *text, size_t lineno)
{
	submit_line *l;
	json_error_t je;

	if (b->n == b->cap) {
		b->cap   = b->cap ? b->cap * 2 : 256;
		b->lines = weft_xrealloc(b->lines, b->cap * sizeof(*b->lines));
	}
	l = &b->lines[b->n++];
	memset(l, 0, sizeof(*l));
	l->lineno = lineno;
	if ((l->obj = json_loads(text, JSON_DECODE_ANY, &je)) == NULL) {
		snprintf(l->err, sizeof(l->err), "not valid JSON: %s (column %d)",
		    je.text, je.column);
	} else if (!weft_runreq_from_json(&l->q, l->obj, l->err,
	               sizeof(l->err))) {
		// l->err says why.
	} else if (weft__run_request__get_packed_size(&l->q.rr) >
	    WEFT_WIRE_MAX - 4096) {
		snprintf(l->err, sizeof(l->err),
		    "too large: %zu bytes, over the %u-byte message limit",
		    weft__run_request__get_packed_size(&l->q.rr),
		    WEFT_WIRE_MAX);
	}
	return (l);
}

int
weft_cli_cmd_submit(weft_cli *c)
{
	const char  *path = c->args[0];
	FILE        *f    = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
	submit_batch b;
	char        *line = NULL;
	size_t       cap  = 0, lineno = 0, size;
	int          rv   = WEFT_CLI_OK;

	if (f == NULL) {
		fprintf(stderr, "weft: cannot read %s: %s\n", path,
		    strerror(errno));
		return (WEFT_CLI_USAGE);
	}
	memset(&b, 0, sizeof(b));
	b.rr = weft_xalloc(WEFT_WIRE_RUN_BATCH_MAX * sizeof(*b.rr));
	while (rv == WEFT_CLI_OK && getline(&line, &cap, f) >= 0) {
		submit_line *l;
		lineno++;
		if (submit_blank(line)) {
			continue;
		}
		l = submit_take(&b, line, lineno);
		if (l->err[0] != '\0') {
			if (b.n == WEFT_WIRE_RUN_BATCH_MAX) {
				rv = submit_flush(c, &b);
			}
			continue;
		}
		size = weft__run_request__get_packed_size(&l->q.rr) + 8;
		if (b.nrr > 0 && b.bytes + size > SUBMIT_BYTES_MAX) {
			// Send what came before this line; it starts the next
			// batch (moved to the front after the flush).
			submit_line keep = *l;
			b.n--;
			rv = submit_flush(c, &b);
			b.lines[b.n++] = keep;
		}
		b.nrr++;
		b.bytes += size;
		// Lines, not only runs, are bounded: a file of malformed
		// lines is answered as it is read too.
		if (b.n == WEFT_WIRE_RUN_BATCH_MAX && rv == WEFT_CLI_OK) {
			rv = submit_flush(c, &b);
		}
	}
	if (rv == WEFT_CLI_OK && ferror(f)) {
		fprintf(stderr, "weft: cannot read %s: %s\n", path,
		    strerror(errno));
		rv = WEFT_CLI_USAGE;
	}
	if (rv == WEFT_CLI_OK) {
		rv = submit_flush(c, &b);
	}
	for (size_t i = 0; i < b.n; i++) {
		weft_runreq_fini(&b.lines[i].q); // left by a failed request
		json_decref(b.lines[i].obj);
	}
	if (rv == WEFT_CLI_OK && b.failed > 0) {
		fprintf(stderr, "weft: %zu of the lines failed\n", b.failed);
		rv = WEFT_CLI_FAIL;
	}
	free(line);
	free(b.lines);
	free(b.rr);
	if (f != stdin) {
		fclose(f);
	}
	return (rv);
}
