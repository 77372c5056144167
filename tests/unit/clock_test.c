// clock_test: duration flags (weft_duration_parse) from a table: every
// unit, the bare number, and each way a value is wrong, with the message
// saying which.
#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "clock.h"

struct duration_row {
	const char *in;
	weft_err    want;
	int64_t     ms;   // when WEFT_OK
	const char *says; // in the error, when not
};

static const struct duration_row duration_rows[] = {
	{ "500ms", WEFT_OK, 500, NULL },
	{ "30s", WEFT_OK, 30000, NULL },
	{ "2m", WEFT_OK, 120000, NULL },
	{ "1h", WEFT_OK, 3600000, NULL },
	{ "1d", WEFT_OK, 86400000, NULL },
	{ "7", WEFT_OK, 7000, NULL },
	{ "0", WEFT_OK, 0, NULL },
	{ "0ms", WEFT_OK, 0, NULL },
	{ "", WEFT_EINVAL, 0, "empty duration" },
	{ "abc", WEFT_EINVAL, 0, "\"abc\": not a duration" },
	{ "-5s", WEFT_EINVAL, 0, "cannot be negative" },
	{ "5x", WEFT_EINVAL, 0, "unknown unit \"x\"" },
	{ "5 s", WEFT_EINVAL, 0, "unknown unit \" s\"" },
	{ "1.5s", WEFT_EINVAL, 0, "unknown unit \".5s\"" },
	{ "s", WEFT_EINVAL, 0, "not a duration" },
	{ "99999999999999999999s", WEFT_EINVAL, 0, "too large" },
	{ "9999999999999999d", WEFT_EINVAL, 0, "too large" },
};

Test(clock, duration_parse_table)
{
	for (size_t k = 0; k < sizeof(duration_rows) / sizeof(duration_rows[0]);
	     k++) {
		const struct duration_row *row = &duration_rows[k];
		int64_t                    ms  = -42;
		char                       err[256] = "";
		weft_err rv = weft_duration_parse(row->in, &ms, err, sizeof(err));
		cr_expect_eq(rv, row->want, "\"%s\": returned %d", row->in,
		    (int) rv);
		if (row->want == WEFT_OK) {
			cr_expect_eq(ms, row->ms, "\"%s\": %lld ms", row->in,
			    (long long) ms);
		} else {
			cr_expect_eq(ms, -42, "\"%s\": *ms changed on error",
			    row->in);
			cr_expect(strstr(err, row->says) != NULL,
			    "\"%s\": error \"%s\" does not say \"%s\"", row->in, err,
			    row->says);
		}
	}
}

// Points in time (weft_clock_parse_time: --since, --until, --before,
// ?before=): every form, and out-of-range values refused rather than
// read as the end of time (a delete before "the end of time" would take
// every ended run).
struct time_row {
	const char *in;
	bool        ok;
	int64_t     ms; // when ok
};

#define TIME_NOW INT64_C(1796000000000) // 2026-12-01, as the tests' now

static const struct time_row time_rows[] = {
	{ "1795000000000", true, INT64_C(1795000000000) },
	{ "0", true, 0 },
	{ "90s", true, TIME_NOW - 90000 },
	{ "15m", true, TIME_NOW - 900000 },
	{ "2h", true, TIME_NOW - 7200000 },
	{ "7d", true, TIME_NOW - 7 * INT64_C(86400000) },
	{ "500ms", true, TIME_NOW - 500 },
	{ "1970-01-02T00:00:00Z", true, 86400000 },
	{ "2026-11-22T17:03:11.250+01:00", true, INT64_C(1795363391250) },
	{ "9999-12-31T23:59:59.999Z", true, WEFT_CLOCK_MAX_MS },
	{ "253402300799999", true, WEFT_CLOCK_MAX_MS },
	{ "253402300800000", false, 0 },             // past year 9999
	{ "99999999999999999999", false, 0 },        // overflows int64
	{ "150000000000000d", false, 0 },            // an age that overflows
	{ "1000000d", false, 0 },                    // before 1970
	{ "20787d", true, TIME_NOW - 20787 * INT64_C(86400000) }, // 1970-01-01
	{ "-5s", false, 0 },
	{ "5x", false, 0 },
	{ "", false, 0 },
	{ "2026-13-01", false, 0 },
};

Test(clock, parse_time_table)
{
	for (size_t i = 0; i < sizeof(time_rows) / sizeof(time_rows[0]); i++) {
		const struct time_row *r  = &time_rows[i];
		int64_t                ms = -42;
		bool                   ok = weft_clock_parse_time(r->in, TIME_NOW, &ms);
		cr_expect_eq(ok, r->ok, "\"%s\": %s where %s was due", r->in,
		    ok ? "taken" : "refused", r->ok ? "taken" : "refused");
		if (r->ok && ok) {
			cr_expect_eq(ms, r->ms, "\"%s\": %lld, not %lld", r->in,
			    (long long) ms, (long long) r->ms);
		} else if (!ok) {
			cr_expect_eq(ms, -42, "\"%s\": refused but *ms changed",
			    r->in);
		}
	}
}
