// clock_test: duration flags (weft_duration_parse) from a table: every
// unit, the bare number, and each way a value is wrong, with the message
// saying which.
#include <criterion/criterion.h>
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
