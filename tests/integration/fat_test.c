// fat_test: runs that carry data, end to end on a real cluster. After a
// run of 500 echo items with a 60 KB parameter and five runs with 3.9 MB
// inputs, every listing, status, event query and wait still answers, with
// bounded sizes (large values are blob references, docs/events.md); the
// output endpoint and `weft status --output` return a large value whole
// and exact; malformed paging parameters are refused naming themselves.
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "cluster.h"
#include "harness.h"

static weft_cluster c;

static void
up(void)
{
	weft_cluster_start(&c, 2, 200);
}

static void
down(void)
{
	weft_cluster_stop(&c);
}

TestSuite(fat, .init = up, .fini = down, .timeout = 900);

// curl_get GETs path; returns the status, *body (malloc'd) the answer and
// *len its size (the body may be megabytes).
static int
curl_get(const char *path, char **body, size_t *len)
{
	char  cmd[2048], out[700];
	char *code;
	int   status;
	FILE *f;

	snprintf(out, sizeof(out), "%s/fat.out", c.dir);
	snprintf(cmd, sizeof(cmd),
	    "curl -s -D '%s.h' -o '%s' -w '%%{http_code}' 'http://%s%s'", out,
	    out, c.http, path);
	cr_assert_eq(weft_h_run(cmd, &code), 0, "curl failed: %s", cmd);
	status = atoi(code);
	free(code);
	cr_assert_not_null(f = fopen(out, "rb"));
	fseek(f, 0, SEEK_END);
	*len = (size_t) ftell(f);
	rewind(f);
	*body = malloc(*len + 1);
	cr_assert_eq(fread(*body, 1, *len, f), *len);
	(*body)[*len] = '\0';
	fclose(f);
	return (status);
}

// header_of returns the value of header name in the last curl_get's
// answer (malloc'd), or NULL.
static char *
header_of(const char *name)
{
	char *out = NULL;

	weft_h_run_fmt(&out,
	    "tr -d '\\r' < '%s/fat.out.h' | sed -n 's/^%s: //Ip'", c.dir, name);
	if (out != NULL && out[0] == '\0') {
		free(out);
		return (NULL);
	}
	if (out != NULL) {
		out[strcspn(out, "\n")] = '\0';
	}
	return (out);
}

// get_json GETs path, expecting want, the answer under max bytes.
static json_t *
get_json(const char *path, int want, size_t max)
{
	char   *body;
	size_t  len;
	int     st = curl_get(path, &body, &len);
	json_t *v  = json_loadb(body, len, JSON_DECODE_ANY, NULL);

	cr_assert_eq(st, want, "GET %s: %d, want %d: %.300s", path, st, want,
	    body);
	cr_assert_not_null(v, "GET %s: not JSON: %.300s", path, body);
	cr_expect_lt(len, max, "GET %s: %zu bytes, want under %zu", path, len,
	    max);
	free(body);
	return (v);
}

// expect_400 checks that path is refused with 400 and an error naming
// what.
static void
expect_error(const char *path, int want, const char *what)
{
	json_t     *v   = get_json(path, want, 4096);
	const char *msg = json_string_value(json_object_get(v, "error"));

	cr_expect(msg != NULL && strstr(msg, what) != NULL,
	    "GET %s: error \"%s\" lacks \"%s\"", path, msg, what);
	json_decref(v);
}

// big_string returns n bytes of text (malloc'd): letters, and every so
// often an "é" so that no chunk boundary may cut a character.
static char *
big_string(size_t n, char fill)
{
	char *s = malloc(n + 1);

	for (size_t i = 0; i < n; i++) {
		s[i] = (char) (fill + (char) (i % 7));
	}
	for (size_t i = 1000; i + 1 < n; i += 4099) {
		s[i]     = (char) 0xC3;
		s[i + 1] = (char) 0xA9;
	}
	s[n] = '\0';
	return (s);
}

// write_json writes v into file name in the cluster dir; returns its path
// (static).
static const char *
write_json(const char *name, json_t *v)
{
	char *text = json_dumps(v, JSON_COMPACT);
	const char *p = weft_cluster_write(&c, name, text);
	free(text);
	return (p);
}

// cli_out runs the CLI (a fragment) expecting exit status want; returns its
// stdout (malloc'd) and checks it is under max bytes.
static char *
cli_out(int want, size_t max, const char *args)
{
	char *out = NULL;
	int   st  = weft_cluster_cli(&c, &out, "%s", args);

	cr_assert_eq(st, want, "weft %s: exit %d, want %d: %.300s", args, st,
	    want, out ? out : "");
	cr_expect_lt(strlen(out ? out : ""), max, "weft %s: %zu bytes", args,
	    strlen(out ? out : ""));
	return (out);
}

// The map steps run 8 items at a time and retry: this test is about what
// a fat run leaves behind, and a data-heavy map that floods the workers
// may lose attempts on a slow machine (the maps work of the same issue,
// tested there).
#define FAT_RETRY                                                       \
	"\"max_parallel\":8,\"retry\":{\"max_attempts\":10,"             \
	"\"backoff\":\"fixed\",\"initial_ms\":100},"

static const char *fat_def =
    "{\"name\":\"fat\",\"params\":{\"big\":{\"type\":\"string\"}},"
    "\"steps\":[{\"id\":\"m\",\"type\":\"echo\",\"map\":\"input.items\","
    FAT_RETRY "\"with\":{\"p\":\"${params.big}\",\"i\":\"${index}\"}},"
    "{\"id\":\"whole\",\"type\":\"echo\",\"with\":{\"v\":\"${params.big}\","
    "\"w\":\"${params.big}\"}}]}";

static const char *mid_def =
    "{\"name\":\"mid\",\"steps\":[{\"id\":\"m\",\"type\":\"echo\","
    "\"map\":\"input.items\"," FAT_RETRY
    "\"with\":{\"p\":\"${input.pad}\"}}]}";

static const char *thin_def =
    "{\"name\":\"thin\",\"steps\":[{\"id\":\"a\",\"type\":\"noop\"}]}";

// start_fat runs definition fat (500 items, a 60 KB parameter) to its end
// with `weft run --wait`, which must succeed; writes the run id into id.
static void
start_fat(char *id, size_t len, char **big)
{
	json_t *items = json_array();
	char    args[2048];
	char   *out;

	*big = big_string(60000, 'a');
	for (int i = 0; i < 500; i++) {
		json_array_append_new(items, json_integer(i));
	}
	json_t *in = json_pack("{s:o}", "items", items);
	json_t *pa = json_pack("{s:s}", "big", *big);
	char    inpath[700], papath[700];
	snprintf(inpath, sizeof(inpath), "%s", write_json("fat-in.json", in));
	snprintf(papath, sizeof(papath), "%s", write_json("fat-pa.json", pa));
	json_decref(in);
	json_decref(pa);
	cr_assert_eq(weft_cluster_cli(&c, NULL, "define '%s'",
	                 weft_cluster_write(&c, "fat.json", fat_def)),
	    0);
	snprintf(args, sizeof(args),
	    "run fat --input @'%s' --params @'%s' --wait --timeout 600",
	    inpath, papath);
	out = NULL;
	if (weft_cluster_cli(&c, &out, "%s", args) != 0) {
		char *why = NULL;
		cr_assert_eq(sscanf(out, "run %63s", id), 1, "%s", out);
		weft_cluster_cli(&c, &why,
		    "events --run %s --type step_failed,step_lost,run_failed "
		    "--format table | cut -c1-400",
		    id);
		cr_assert_fail("the fat run failed: %s", why);
	}
	// "run ID succeeded", and the output as a reference with the way
	// to fetch it.
	cr_expect(strstr(out, "succeeded") != NULL, "%s", out);
	cr_expect(strstr(out, "--output") != NULL, "%s", out);
	cr_assert_eq(sscanf(out, "run %63s", id), 1, "%s", out);
	(void) len;
	free(out);
}

Test(fat, listings_status_events_and_outputs_after_fat_runs)
{
	char    id[64], path[512], args[2048];
	char   *big, *out, *body;
	size_t  len;
	json_t *v, *run;

	start_fat(id, sizeof(id), &big);

	// Five runs with 3.9 MB inputs.
	cr_assert_eq(weft_cluster_cli(&c, NULL, "define '%s'",
	                 weft_cluster_write(&c, "thin.json", thin_def)),
	    0);
	char   *huge = big_string(3900000, 'k');
	json_t *in   = json_pack("{s:s}", "blob", huge);
	char    inpath[700];
	snprintf(inpath, sizeof(inpath), "%s", write_json("huge.json", in));
	json_decref(in);
	for (int i = 0; i < 5; i++) {
		snprintf(args, sizeof(args),
		    "run thin --input @'%s' --wait --timeout 120", inpath);
		free(cli_out(0, 64 * 1024, args));
	}

	// Listings: summaries only, small, whatever the runs carry.
	free(cli_out(0, 64 * 1024, "runs"));
	free(cli_out(0, 16 * 1024, "runs --limit 5"));
	v = get_json("/api/v1/runs", 200, 64 * 1024);
	json_t *rs = json_object_get(v, "runs");
	cr_expect_eq(json_array_size(rs), 6);
	for (size_t i = 0; i < json_array_size(rs); i++) {
		json_t *r = json_array_get(rs, i);
		cr_expect_null(json_object_get(r, "input"), "a listing has no input");
		cr_expect_null(json_object_get(r, "params"));
		cr_expect_null(json_object_get(r, "output"));
		cr_expect_not_null(json_object_get(r, "steps_total"));
	}
	json_decref(v);
	// A cut page says where the next one starts.
	v = get_json("/api/v1/runs?limit=2", 200, 8192);
	cr_expect_eq(json_array_size(json_object_get(v, "runs")), 2);
	char *nb = header_of("Next-Before");
	cr_assert_not_null(nb, "a cut page names the next cursor");
	cr_expect_str_eq(nb,
	    json_string_value(json_object_get(
	        json_array_get(json_object_get(v, "runs"), 1), "id")));
	json_decref(v);
	snprintf(path, sizeof(path), "/api/v1/runs?limit=100&before=%s", nb);
	v = get_json(path, 200, 64 * 1024);
	cr_expect_eq(json_array_size(json_object_get(v, "runs")), 4,
	    "the rest, after the cursor");
	cr_expect_null(header_of("Next-Before"), "the last page is not cut");
	json_decref(v);
	free(nb);
	out = NULL;
	cr_expect_eq(weft_cluster_cli(&c, &out, "runs --limit 2 2>&1"), 0);
	cr_expect(out != NULL && strstr(out, "--before") != NULL,
	    "weft runs says the page was cut: %s", out);
	free(out);

	// Status of the fat run: bounded, large values are references.
	snprintf(args, sizeof(args), "status %s", id);
	free(cli_out(0, 256 * 1024, args));
	snprintf(path, sizeof(path), "/api/v1/runs/%s", id);
	run = get_json(path, 200, 1024 * 1024);
	cr_expect_str_eq(json_string_value(json_object_get(run, "status")),
	    "succeeded");
	json_t *m = json_array_get(json_object_get(run, "steps"), 0);
	cr_expect_str_eq(json_string_value(json_object_get(m, "id")), "m");
	cr_expect(json_is_string(json_object_get(json_object_get(m, "output"),
	              "$blob")),
	    "the map's combined output is a reference");
	json_int_t msize = json_integer_value(
	    json_object_get(json_object_get(m, "output"), "size"));
	cr_expect_gt(msize, 500 * 60000);
	cr_expect(json_is_string(json_object_get(
	    json_object_get(run, "output"), "$blob")));
	cr_expect(json_is_string(json_object_get(json_object_get(run, "params"),
	    "$blob")) || json_string_length(json_object_get(json_object_get(run,
	    "params"), "big")) == 60000);
	json_decref(run);
	// Paged: one step a page.
	snprintf(path, sizeof(path), "/api/v1/runs/%s?steps_limit=1", id);
	run = get_json(path, 200, 64 * 1024);
	cr_expect_eq(json_array_size(json_object_get(run, "steps")), 1);
	cr_expect_str_eq(json_string_value(json_object_get(run, "next_after")),
	    "m");
	json_decref(run);
	snprintf(path, sizeof(path),
	    "/api/v1/runs/%s?steps_limit=1&steps_after=m", id);
	run = get_json(path, 200, 1024 * 1024);
	cr_expect_str_eq(json_string_value(json_object_get(json_array_get(
	                     json_object_get(run, "steps"), 0), "id")),
	    "whole");
	cr_expect(json_is_null(json_object_get(run, "next_after")));
	json_decref(run);
	out = NULL;
	cr_expect_eq(weft_cluster_cli(&c, &out,
	                 "status %s --steps-limit 1 2>&1", id), 0);
	cr_expect(out != NULL && strstr(out, "--steps-after 'm'") != NULL,
	    "%s", out);
	free(out);

	// The big outputs, whole and exact: over HTTP and with the CLI.
	snprintf(path, sizeof(path), "/api/v1/runs/%s/steps/m/output", id);
	cr_assert_eq(curl_get(path, &body, &len), 200, "%.300s", body);
	cr_expect_eq((json_int_t) len, msize, "the whole value");
	v = json_loadb(body, len, 0, NULL);
	cr_assert(json_is_array(v), "the map's output: %.200s", body);
	cr_expect_eq(json_array_size(v), 500);
	json_t *w = json_object_get(json_array_get(v, 499), "with");
	cr_expect_str_eq(json_string_value(json_object_get(w, "p")), big);
	cr_expect_eq(json_integer_value(json_object_get(w, "i")), 499);
	json_decref(v);
	snprintf(args, sizeof(args), "status %s --step m --output", id);
	out = cli_out(0, (size_t) msize + 2, args);
	cr_expect_eq(strlen(out), len + 1, "the CLI prints it whole, and a "
	                                   "newline");
	cr_expect(memcmp(out, body, len) == 0, "the same bytes");
	free(out);
	free(body);
	snprintf(path, sizeof(path), "/api/v1/runs/%s/steps/whole/output", id);
	cr_assert_eq(curl_get(path, &body, &len), 200, "%.300s", body);
	v = json_loadb(body, len, 0, NULL);
	w = json_object_get(v, "with");
	cr_expect_str_eq(json_string_value(json_object_get(w, "v")), big);
	cr_expect_str_eq(json_string_value(json_object_get(w, "w")), big);
	json_decref(v);
	free(body);
	snprintf(path, sizeof(path), "/api/v1/runs/%s/output", id);
	v = get_json(path, 200, 1u << 30);
	cr_expect_eq(json_array_size(json_object_get(v, "m")), 500);
	json_decref(v);

	// Events of the fat run: bounded (its large values are references).
	snprintf(path, sizeof(path), "/api/v1/events?run=%s&limit=10000", id);
	v = get_json(path, 200, 12 * 1024 * 1024);
	cr_expect_gt(json_array_size(json_object_get(v, "events")), 1500);
	json_decref(v);
	snprintf(args, sizeof(args), "events --run %s --limit 10000", id);
	free(cli_out(0, 12 * 1024 * 1024, args));

	// Events whose data stays under the blob threshold but adds up to
	// more than a page holds: 500 items of ~20-40 KB each. The page is
	// cut by bytes and names the next cursor.
	char    mid[64];
	char   *pad = big_string(20000, 'p');
	json_t *items = json_array();
	for (int i = 0; i < 500; i++) {
		json_array_append_new(items, json_integer(i));
	}
	in = json_pack("{s:o, s:s}", "items", items, "pad", pad);
	snprintf(inpath, sizeof(inpath), "%s", write_json("mid-in.json", in));
	json_decref(in);
	cr_assert_eq(weft_cluster_cli(&c, NULL, "define '%s'",
	                 weft_cluster_write(&c, "mid.json", mid_def)),
	    0);
	snprintf(args, sizeof(args),
	    "run mid --input @'%s' --wait --timeout 600", inpath);
	out = cli_out(0, 64 * 1024, args);
	cr_assert_eq(sscanf(out, "run %63s", mid), 1, "%s", out);
	free(out);
	snprintf(path, sizeof(path), "/api/v1/events?run=%s&limit=10000", mid);
	v = get_json(path, 200, 12 * 1024 * 1024);
	json_t *evs = json_object_get(v, "events");
	cr_expect_gt(json_array_size(evs), 0);
	cr_expect_lt(json_array_size(evs), 1500, "cut by bytes");
	char *na = header_of("Next-After");
	cr_expect_not_null(na, "10 MB of events do not fit one page");
	cr_expect(json_is_integer(json_object_get(v, "next_after")),
	    "a page cut by bytes says so in the body");
	if (na != NULL) {
		cr_expect_eq(strtoll(na, NULL, 10),
		    json_integer_value(json_object_get(
		        json_array_get(evs, json_array_size(evs) - 1), "id")));
		cr_expect_eq(strtoll(na, NULL, 10),
		    json_integer_value(json_object_get(v, "next_after")));
	}
	json_decref(v);
	free(na);
	free(pad);
	out = NULL;
	snprintf(args, sizeof(args), "events --run %s --limit 10000 2>&1", mid);
	cr_expect_eq(weft_cluster_cli(&c, &out, "%s", args), 0);
	cr_expect(out != NULL && strstr(out, "--after") != NULL,
	    "weft events says where to go on");
	free(out);
	free(cli_out(0, 64 * 1024 * 1024, "events"));
	// Following the whole log pages through all of it.
	out = NULL;
	snprintf(args, sizeof(args), "events --run %s --follow --timeout 60 "
	                             "--format csv | wc -l", mid);
	cr_expect_eq(weft_cluster_cli(&c, &out, "%s", args), 0);
	cr_expect_gt(atoi(out ? out : "0"), 1500, "every event of the run");
	free(out);
	free(big);
	free(huge);
}

Test(fat, malformed_paging_parameters_are_refused)
{
	char  path[256], id[64];
	char *out = NULL;

	cr_assert_eq(weft_cluster_cli(&c, NULL, "define '%s'",
	                 weft_cluster_write(&c, "thin.json", thin_def)),
	    0);
	cr_assert_eq(weft_cluster_cli(&c, &out, "run thin --wait"), 0);
	cr_assert_eq(sscanf(out, "run %63s", id), 1);
	free(out);
	expect_error("/api/v1/runs?limit=abc", 400, "limit");
	expect_error("/api/v1/runs?limit=10001", 400, "10000");
	expect_error("/api/v1/runs?limit=-1", 400, "limit");
	expect_error("/api/v1/events?limit=99999", 400, "10000");
	expect_error("/api/v1/events?after=garbage", 400, "after");
	// Past int64 (ids are int64): refused, not read as a negative
	// cursor that would give the log from its start.
	expect_error("/api/v1/events?after=9223372036854775808", 400,
	    "9223372036854775807");
	snprintf(path, sizeof(path), "/api/v1/runs/%s?steps_limit=-1", id);
	expect_error(path, 400, "steps_limit");
	snprintf(path, sizeof(path), "/api/v1/runs/%s?steps_limit=10001", id);
	expect_error(path, 400, "steps_limit");
	snprintf(path, sizeof(path), "/api/v1/runs/%s?steps_after=nope", id);
	expect_error(path, 400, "steps_after");
	snprintf(path, sizeof(path), "/api/v1/runs/%s/steps/nope/output", id);
	expect_error(path, 404, "nope");
	expect_error("/api/v1/runs/NOSUCHRUN/output", 404, "NOSUCHRUN");
	// The CLI refuses the same before asking.
	cr_expect_eq(weft_cluster_cli(&c, NULL, "runs --limit 10001"), 2);
	cr_expect_eq(weft_cluster_cli(&c, NULL, "events --limit 20000"), 2);
	out = NULL;
	cr_expect_neq(weft_cluster_cli(&c, &out,
	                  "status %s --step nope --output 2>&1", id),
	    0);
	cr_expect(out != NULL && strstr(out, "nope") != NULL, "%s", out);
	free(out);
	// A small output comes whole too.
	out = NULL;
	cr_expect_eq(weft_cluster_cli(&c, &out, "status %s --step a --output",
	                 id),
	    0);
	cr_expect_str_eq(out, "null\n", "a noop's output");
	free(out);
}

// page_through follows a listing page by page from first (a path with its
// limit): list names the array in the body, field the next page's cursor
// beside it, param the query parameter it goes into and header the header
// that repeats it. A cut page's cursor must be the id of its last item,
// the same in body and header; the last page's is null, with no header.
// Returns every item's id in order (a new array); *pages the page count.
static json_t *
page_through(const char *first, const char *list, const char *field,
    const char *param, const char *header, int *pages)
{
	json_t *ids = json_array();
	char    path[512], cur[64];

	snprintf(path, sizeof(path), "%s", first);
	for (*pages = 1; *pages <= 1000; (*pages)++) {
		json_t *v     = get_json(path, 200, 1024 * 1024);
		json_t *items = json_object_get(v, list);
		json_t *next  = json_object_get(v, field);
		char   *hdr   = header_of(header);
		size_t  n     = json_array_size(items);

		cr_assert(json_is_array(items), "GET %s: no \"%s\" array", path,
		    list);
		cr_assert_not_null(next, "GET %s: no \"%s\" in the body", path,
		    field);
		for (size_t i = 0; i < n; i++) {
			json_array_append(ids,
			    json_object_get(json_array_get(items, i), "id"));
		}
		if (json_is_null(next)) {
			cr_expect_null(hdr, "GET %s: the last page has %s: %s", path,
			    header, hdr);
			free(hdr);
			json_decref(v);
			return (ids);
		}
		cr_assert_gt(n, 0, "GET %s: a cut page with nothing on it", path);
		cr_assert(json_equal(next,
		              json_object_get(json_array_get(items, n - 1), "id")),
		    "GET %s: %s is not the id of the page's last item", path, field);
		if (json_is_string(next)) {
			snprintf(cur, sizeof(cur), "%s", json_string_value(next));
		} else {
			snprintf(cur, sizeof(cur), "%" JSON_INTEGER_FORMAT,
			    json_integer_value(next));
		}
		cr_expect(hdr != NULL && strcmp(hdr, cur) == 0,
		    "GET %s: header %s '%s', body %s '%s'", path, header,
		    hdr ? hdr : "(none)", field, cur);
		free(hdr);
		json_decref(v);
		snprintf(path, sizeof(path), "%s&%s=%s", first, param, cur);
	}
	cr_assert_fail("%s: more than 1000 pages", first);
	return (NULL);
}

// The cursor of a cut page is in the body (tools read next_before /
// next_after, not headers), null on the last page, and following it
// visits every item once, in order, also when the last page is full.
Test(fat, cut_pages_name_the_next_cursor_in_the_body)
{
	static const char *const evq =
	    "/api/v1/events?type=run_queued,run_started,run_succeeded";
	char    path[256], *out;
	json_t *all, *ids;
	int     pages;
	size_t  n;

	cr_assert_eq(weft_cluster_cli(&c, NULL, "define '%s'",
	                 weft_cluster_write(&c, "thin.json", thin_def)),
	    0);
	for (int i = 0; i < 7; i++) {
		free(cli_out(0, 4096, "run thin --wait"));
	}

	// Runs, newest first, 3 a page: 3 + 3 + 1.
	all = get_json("/api/v1/runs?limit=100", 200, 64 * 1024);
	cr_assert_eq(json_array_size(json_object_get(all, "runs")), 7);
	cr_expect(json_is_null(json_object_get(all, "next_before")),
	    "one page holds all: next_before is null");
	ids = page_through("/api/v1/runs?limit=3", "runs", "next_before",
	    "before", "Next-Before", &pages);
	cr_expect_eq(pages, 3);
	json_t *want = json_array();
	for (size_t i = 0; i < 7; i++) {
		json_array_append(want, json_object_get(json_array_get(
		                            json_object_get(all, "runs"), i), "id"));
	}
	cr_expect(json_equal(ids, want), "every run once, newest first");
	json_decref(ids);
	// A full page that is the last one is not cut.
	ids = page_through("/api/v1/runs?limit=7", "runs", "next_before",
	    "before", "Next-Before", &pages);
	cr_expect_eq(pages, 1, "7 runs, limit 7: one page");
	cr_expect(json_equal(ids, want));
	json_decref(ids);
	json_decref(want);

	// Events, ascending, of runs that have ended (nothing adds to them).
	snprintf(path, sizeof(path), "%s&limit=10000", evq);
	json_decref(all);
	all = get_json(path, 200, 1024 * 1024);
	n   = json_array_size(json_object_get(all, "events"));
	cr_assert_geq(n, 14, "queued, started, succeeded of 7 runs");
	cr_expect(json_is_null(json_object_get(all, "next_after")));
	want = json_array();
	for (size_t i = 0; i < n; i++) {
		json_array_append(want, json_object_get(json_array_get(
		                            json_object_get(all, "events"), i), "id"));
	}
	// 4 a page, and all in one full page that is the last.
	size_t lims[] = { 4, n };
	for (size_t k = 0; k < 2; k++) {
		size_t lim = lims[k];
		snprintf(path, sizeof(path), "%s&limit=%zu", evq, lim);
		ids = page_through(path, "events", "next_after", "after",
		    "Next-After", &pages);
		cr_expect_eq((size_t) pages, (n + lim - 1) / lim, "limit %zu", lim);
		cr_expect(json_equal(ids, want), "limit %zu: every event once, "
		                                 "in order", lim);
		json_decref(ids);
	}
	json_decref(want);

	// The CLI says the same on stderr, and nothing on the last page.
	json_t *first = get_json("/api/v1/runs?limit=3", 200, 8192);
	char    nb[96];
	snprintf(nb, sizeof(nb), "--before %s",
	    json_string_value(json_object_get(first, "next_before")));
	out = NULL;
	cr_expect_eq(weft_cluster_cli(&c, &out, "runs --limit 3 2>&1 >/dev/null"),
	    0);
	cr_expect(out != NULL && strstr(out, nb) != NULL,
	    "weft runs names the cursor on stderr (%s): %s", nb, out);
	free(out);
	json_decref(first);
	out = NULL;
	cr_expect_eq(weft_cluster_cli(&c, &out, "runs --limit 7 2>&1 >/dev/null"),
	    0);
	cr_expect(out == NULL || out[0] == '\0', "the last page: %s", out);
	free(out);
	snprintf(path, sizeof(path), "%s&limit=4", evq);
	first = get_json(path, 200, 8192);
	char na[32];
	snprintf(na, sizeof(na), "--after %" JSON_INTEGER_FORMAT,
	    json_integer_value(json_object_get(first, "next_after")));
	out = NULL;
	cr_expect_eq(weft_cluster_cli(&c, &out,
	                 "events --type run_queued,run_started,run_succeeded "
	                 "--limit 4 2>&1 >/dev/null"),
	    0);
	cr_expect(out != NULL && strstr(out, na) != NULL,
	    "weft events names the cursor on stderr (%s): %s", na, out);
	free(out);
	json_decref(first);
	json_decref(all);
}
