// ops: what issue 14 added to the command line: a run's tags, version and
// idempotency key (weft run), and the lifecycle commands with filters
// instead of a run (bulk actions, a chunk of 500 runs per request).
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "cli.h"
#include "clock.h"
#include "tags.h"

int
weft_cli_run_extras(weft_cli *c, Weft__RunRequest *run, char **tags)
{
	const char *ver = c->flag[WEFT_CLI_F_VERSION];
	const char *key = c->flag[WEFT_CLI_F_IDEMPOTENCY_KEY];
	json_t     *obj;
	char        k[WEFT_TAG_KEY_MAX + 1], v[WEFT_TAG_VALUE_MAX + 1];
	char        err[512];

	*tags = NULL;
	if (ver != NULL) {
		char              *end;
		unsigned long long n;
		errno = 0;
		n     = strtoull(ver, &end, 10);
		if (ver[0] < '1' || ver[0] > '9' || *end != '\0' ||
		    errno != 0 || n > UINT32_MAX) {
			return (weft_cli_usage_error("--version wants a version "
			                             "number from 1, not '%s'",
			    ver));
		}
		if (run->definition_json[0] != '\0') {
			return (weft_cli_usage_error("--version goes with a "
			                             "registered definition's "
			                             "name, not a file"));
		}
		run->version = (uint32_t) n;
	}
	if (key != NULL) {
		if (key[0] == '\0' || strlen(key) > 255) {
			return (weft_cli_usage_error("--idempotency-key wants 1 "
			                             "to 255 bytes"));
		}
		if (c->flag[WEFT_CLI_F_NRUNS] != NULL) {
			return (weft_cli_usage_error("--idempotency-key names "
			                             "one run: not with --count"));
		}
		run->idempotency_key = (char *) key;
	}
	if (c->n_tags == 0) {
		return (WEFT_CLI_OK);
	}
	obj = json_object();
	for (size_t i = 0; i < c->n_tags; i++) {
		if (!weft_tag_parse(c->tags[i], k, sizeof(k), v, sizeof(v), err,
		        sizeof(err))) {
			json_decref(obj);
			return (weft_cli_usage_error("--tag: %s", err));
		}
		if (json_object_get(obj, k) != NULL) {
			json_decref(obj);
			return (weft_cli_usage_error(
			    "--tag: tag \"%s\" given twice", k));
		}
		json_object_set_new(obj, k, json_string(v));
	}
	if (!weft_tags_check(obj, err, sizeof(err))) {
		json_decref(obj);
		return (weft_cli_usage_error("--tag: %s", err));
	}
	*tags        = json_dumps(obj, JSON_COMPACT);
	run->tags_json = *tags;
	json_decref(obj);
	return (WEFT_CLI_OK);
}

void
weft_cli_tags_text(json_t *tags, char *out, size_t len)
{
	const char *k;
	json_t     *v;
	size_t      o = 0;

	out[0] = '\0';
	json_object_foreach (tags, k, v) {
		int n = snprintf(out + o, len - o, "%s%s=%s", o > 0 ? " " : "",
		    k, json_string_value(v) != NULL ? json_string_value(v) : "");
		if (n < 0 || (size_t) n >= len - o) {
			break; // cut: a table cell, not the record
		}
		o += (size_t) n;
	}
}

int
weft_cli_definition_versions(weft_cli *c)
{
	static const char *head[] = { "VERSION", "CREATED", "HASH" };
	Weft__ControlRequest    req = WEFT__CONTROL_REQUEST__INIT;
	Weft__DefinitionRequest dr  = WEFT__DEFINITION_REQUEST__INIT;
	const char             *ver = c->flag[WEFT_CLI_F_VERSION];
	json_t                 *body, *v;
	weft_cli_table          t;
	size_t                  i;
	int                     rv;

	if (ver != NULL) {
		char              *end;
		unsigned long long n;
		errno = 0;
		n     = strtoull(ver, &end, 10);
		if (ver[0] < '1' || ver[0] > '9' || *end != '\0' ||
		    errno != 0 || n > UINT32_MAX) {
			return (weft_cli_usage_error("--version wants a version "
			                             "number from 1, not '%s'",
			    ver));
		}
		dr.version = (uint32_t) n;
	}
	dr.name        = c->args[0];
	req.req_case   = WEFT__CONTROL_REQUEST__REQ_DEFINITION;
	req.definition = &dr;
	if ((rv = weft_cli_call(c, &req, &body)) != WEFT_CLI_OK) {
		return (rv);
	}
	if (c->json || dr.version > 0) {
		// One version: its body, as JSON (what `weft define` takes).
		weft_cli_print_json(
		    dr.version > 0 && !c->json ? json_object_get(body, "definition")
		                               : body);
		json_decref(body);
		return (WEFT_CLI_OK);
	}
	weft_cli_table_init(&t, 3, head);
	json_array_foreach (json_object_get(body, "versions"), i, v) {
		char num[24], created[48];
		snprintf(num, sizeof(num), "%lld",
		    (long long) json_integer_value(json_object_get(v, "version")));
		const char *row[] = { num,
			weft_cli_fmt_time(json_object_get(v, "created_ms"), created),
			json_string_value(json_object_get(v, "hash")) };
		weft_cli_table_add(&t, row);
	}
	weft_cli_table_print(&t);
	json_decref(body);
	return (WEFT_CLI_OK);
}

// ops_filters_given says whether any bulk filter is on the command line.
static bool
ops_filters_given(const weft_cli *c)
{
	return (c->flag[WEFT_CLI_F_STATUS] != NULL ||
	    c->flag[WEFT_CLI_F_DEFINITION] != NULL ||
	    c->flag[WEFT_CLI_F_SINCE] != NULL || c->n_tags > 0);
}

int
weft_cli_bulk_check(const weft_cli *c)
{
	bool filters = ops_filters_given(c);

	if (c->nargs == 1 && (filters || c->flag[WEFT_CLI_F_DRY_RUN] != NULL)) {
		return (weft_cli_usage_error("%s: give a run, or filters "
		                             "(--status, --definition, --since, "
		                             "--tag), not both",
		    c->command));
	}
	if (c->nargs == 0 && !filters) {
		return (weft_cli_usage_error("%s needs a run, or filters: "
		                             "--status, --definition, --since, "
		                             "--tag (all must match)",
		    c->command));
	}
	if (c->nargs == 0 && c->flag[WEFT_CLI_F_FROM] != NULL) {
		return (weft_cli_usage_error("retry --from goes with one run"));
	}
	if (c->flag[WEFT_CLI_F_FROM] != NULL &&
	    c->flag[WEFT_CLI_F_FROM][0] == '\0') {
		return (weft_cli_usage_error("--from wants a step id"));
	}
	return (WEFT_CLI_OK);
}

// ops_report prints one chunk's report (results, borrowed) and counts it.
static void
ops_report(weft_cli *c, json_t *results, size_t count[3])
{
	json_t *r;
	size_t  i;

	json_array_foreach (results, i, r) {
		const char *res = json_string_value(json_object_get(r, "result"));
		int         k   = res == NULL ? 2
		           : strcmp(res, "done") == 0 ? 0
		           : strcmp(res, "skipped") == 0 ? 1
		                                         : 2;
		count[k]++;
		if (c->json) {
			weft_cli_print_json(r);
		} else if (k == 2) {
			// Errors are worth a line each; skips only count.
			fprintf(stderr, "weft: %s: %s\n",
			    json_string_value(json_object_get(r, "run")),
			    json_string_value(json_object_get(r, "reason")));
		}
	}
}

int
weft_cli_bulk(weft_cli *c)
{
	Weft__ControlRequest req = WEFT__CONTROL_REQUEST__INIT;
	Weft__BulkRequest    q   = WEFT__BULK_REQUEST__INIT;
	char                 after[64] = "";
	size_t               count[3]  = { 0, 0, 0 };
	json_t              *body;
	int64_t              since;
	const char          *next;
	int                  rv;

	if (c->flag[WEFT_CLI_F_SINCE] != NULL) {
		if (!weft_clock_parse_time(c->flag[WEFT_CLI_F_SINCE],
		        weft_clock_wall_ms(), &since) ||
		    since < 0) {
			return (weft_cli_usage_error("--since wants epoch "
			                             "milliseconds, an RFC 3339 "
			                             "time or an age such as 15m, "
			                             "not '%s'",
			    c->flag[WEFT_CLI_F_SINCE]));
		}
		q.since_ms = (uint64_t) since;
	}
	q.action     = (char *) c->command;
	q.status     = (char *) (c->flag[WEFT_CLI_F_STATUS] != NULL
	                ? c->flag[WEFT_CLI_F_STATUS]
	                : "");
	q.definition = (char *) (c->flag[WEFT_CLI_F_DEFINITION] != NULL
	                    ? c->flag[WEFT_CLI_F_DEFINITION]
	                    : "");
	q.tags       = (char **) c->tags;
	q.n_tags     = c->n_tags;
	q.dry_run    = c->flag[WEFT_CLI_F_DRY_RUN] != NULL;
	q.after      = after;
	req.req_case = WEFT__CONTROL_REQUEST__REQ_BULK;
	req.bulk     = &q;
	do {
		// One chunk a request: the coordinator serves others between.
		if ((rv = weft_cli_call(c, &req, &body)) != WEFT_CLI_OK) {
			fprintf(stderr, "weft: %s stopped after %zu runs\n",
			    c->command, count[0] + count[1] + count[2]);
			return (rv);
		}
		// The first answer fixes the snapshot: runs created after it
		// are left alone, however long the chunks take.
		q.until_ms = (uint64_t) json_integer_value(
		    json_object_get(body, "until_ms"));
		ops_report(c, json_object_get(body, "results"), count);
		next = json_string_value(json_object_get(body, "next_after"));
		snprintf(after, sizeof(after), "%s", next != NULL ? next : "");
		json_decref(body);
	} while (after[0] != '\0');
	if (!c->json) {
		printf("%s%s: %zu runs matched: %zu %s, %zu skipped, %zu "
		       "errors\n",
		    c->command, q.dry_run ? " --dry-run" : "",
		    count[0] + count[1] + count[2], count[0],
		    q.dry_run ? "would be done" : "done", count[1], count[2]);
	}
	return (count[2] > 0 ? WEFT_CLI_FAIL : WEFT_CLI_OK);
}
