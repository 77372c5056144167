// cron_test: the cron parser, TZif zones and the next-fire search
// (coordinator/model/cron.c), from tables: every field and its faults,
// Vixie's day-of-month / day-of-week rule, names, steps, and DST gaps and
// overlaps in Europe/Berlin and America/New_York (the system's tz files).
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "cron.h"

#define T_TIMEOUT (30 * WEFT_TEST_MULT)

static int64_t
at(const char *rfc3339)
{
	int64_t ms = 0;
	cr_assert(weft_clock_parse_time(rfc3339, 0, &ms), "time %s", rfc3339);
	return (ms);
}

static void
zone(weft_tz *tz, const char *name)
{
	char    path[256], err[256];
	uint8_t buf[1 << 16];
	size_t  n;
	FILE   *f;

	if (strcmp(name, "UTC") == 0) {
		weft_tz_utc(tz);
		return;
	}
	snprintf(path, sizeof(path), "/usr/share/zoneinfo/%s", name);
	cr_assert_not_null((f = fopen(path, "rb")), "zone file %s", path);
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	cr_assert_eq(weft_tz_parse(tz, buf, n, err, sizeof(err)), WEFT_OK,
	    "%s: %s", name, err);
}

static const struct {
	const char *expr, *want; // want: a part of the error message
} bad[] = {
	{ "", "0 fields, want 5" },
	{ "* * * *", "4 fields, want 5" },
	{ "* * * * * *", "more than 5 fields" },
	{ "60 * * * *", "field 1 (minute): 60 is out of range 0-59" },
	{ "* 24 * * *", "field 2 (hour): 24 is out of range 0-23" },
	{ "* * 0 * *", "field 3 (day of month): 0 is out of range 1-31" },
	{ "* * 32 * *", "field 3 (day of month): 32 is out of range" },
	{ "* * * 13 *", "field 4 (month): 13 is out of range 1-12" },
	{ "* * * * 8", "field 5 (day of week): 8 is out of range 0-7" },
	{ "* * * FOO *", "field 4 (month): unknown name \"FOO\"" },
	{ "* * * * MONDAY", "field 5 (day of week): unknown name \"MONDAY\"" },
	{ "MON * * * *", "field 1 (minute): expected a number at \"MON" },
	{ "5-1 * * * *", "field 1 (minute): range 5-1 is reversed" },
	{ "*/0 * * * *", "field 1 (minute): step 0 is out of range 1-60" },
	{ "*/x * * * *", "field 1 (minute): a step must be a number" },
	{ "1,,2 * * * *", "field 1 (minute): empty list item" },
	{ "1, * * * *", "field 1 (minute): empty list item" },
	{ "1-2-3 * * * *", "field 1 (minute): unexpected \"-\"" },
	{ "? * * * *", "field 1 (minute): expected a number" },
	{ "@often", "unknown macro \"@often\"" },
	{ "@daily 5", "unknown macro" },
	{ "99999999999 * * * *", "field 1 (minute): " },
};

Test(cron, parse_errors_name_the_field, .timeout = T_TIMEOUT)
{
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		weft_cron c;
		char      err[256] = "";
		cr_expect_eq(weft_cron_parse(&c, bad[i].expr, err, sizeof(err)),
		    WEFT_EINVAL, "row %zu \"%s\" parsed", i, bad[i].expr);
		cr_expect(strstr(err, bad[i].want) != NULL,
		    "row %zu \"%s\": error \"%s\" lacks \"%s\"", i, bad[i].expr,
		    err, bad[i].want);
	}
}

static const struct {
	const char *expr, *zone, *after, *want; // want NULL: never fires
} next[] = {
	// fields, ranges, steps, lists
	{ "*/15 * * * *", "UTC", "2026-01-01T00:07:00Z", "2026-01-01T00:15:00Z" },
	{ "*/15 * * * *", "UTC", "2026-01-01T00:15:00Z", "2026-01-01T00:30:00Z" },
	{ "*/15 * * * *", "UTC", "2026-01-01T00:14:59.999Z", "2026-01-01T00:15:00Z" },
	{ "5/20 * * * *", "UTC", "2026-01-01T00:06:00Z", "2026-01-01T00:25:00Z" },
	{ "10-12 * * * *", "UTC", "2026-01-01T00:12:00Z", "2026-01-01T01:10:00Z" },
	{ "0 9 * * MON-FRI", "UTC", "2026-01-02T10:00:00Z", "2026-01-05T09:00:00Z" },
	{ "0 0 1,15 * *", "UTC", "2026-01-02T00:00:00Z", "2026-01-15T00:00:00Z" },
	{ "0 22 * * *", "UTC", "2026-12-31T22:00:00Z", "2027-01-01T22:00:00Z" },
	{ "59 23 31 12 *", "UTC", "2026-06-01T00:00:00Z", "2026-12-31T23:59:00Z" },
	// names, either case; 7 is Sunday too
	{ "30 6 * JAN,jul sun", "UTC", "2026-01-01T00:00:00Z", "2026-01-04T06:30:00Z" },
	{ "30 6 * jan,JUL SUN", "UTC", "2026-02-01T00:00:00Z", "2026-07-05T06:30:00Z" },
	{ "0 0 * * 7", "UTC", "2026-01-01T00:00:00Z", "2026-01-04T00:00:00Z" },
	{ "0 0 * * 0", "UTC", "2026-01-01T00:00:00Z", "2026-01-04T00:00:00Z" },
	{ "0 0 * * FRI-SUN", "UTC", "2026-01-03T00:00:00Z", "2026-01-04T00:00:00Z" },
	// Vixie: both day fields restricted -> either; one a star -> both
	{ "0 0 13 * 5", "UTC", "2026-01-02T01:00:00Z", "2026-01-09T00:00:00Z" },
	{ "0 0 13 * *", "UTC", "2026-01-02T01:00:00Z", "2026-01-13T00:00:00Z" },
	{ "0 0 * * 5", "UTC", "2026-01-02T01:00:00Z", "2026-01-09T00:00:00Z" },
	{ "0 0 */10 * 1", "UTC", "2026-01-01T00:00:00Z", "2026-05-11T00:00:00Z" },
	// the 29th of February; the 31st never comes
	{ "0 0 29 2 *", "UTC", "2026-01-01T00:00:00Z", "2028-02-29T00:00:00Z" },
	{ "0 0 31 2 *", "UTC", "2026-01-01T00:00:00Z", NULL },
	{ "0 0 30 2 *", "UTC", "2026-01-01T00:00:00Z", NULL },
	// macros
	{ "@hourly", "UTC", "2026-01-01T00:30:00Z", "2026-01-01T01:00:00Z" },
	{ "@daily", "UTC", "2026-01-01T00:30:00Z", "2026-01-02T00:00:00Z" },
	{ "@weekly", "UTC", "2026-01-01T00:30:00Z", "2026-01-04T00:00:00Z" },
	{ "@monthly", "UTC", "2026-01-01T00:30:00Z", "2026-02-01T00:00:00Z" },
	{ "@yearly", "UTC", "2026-01-01T00:30:00Z", "2027-01-01T00:00:00Z" },
	// zones: winter and summer offsets
	{ "0 9 * * *", "Europe/Berlin", "2026-01-05T00:00:00Z", "2026-01-05T08:00:00Z" },
	{ "0 9 * * *", "Europe/Berlin", "2026-07-05T00:00:00Z", "2026-07-05T07:00:00Z" },
	{ "0 9 * * *", "America/New_York", "2026-01-05T00:00:00Z", "2026-01-05T14:00:00Z" },
	// the local date, not UTC's, decides the day
	{ "0 23 * * SUN", "America/New_York", "2026-01-03T00:00:00Z", "2026-01-05T04:00:00Z" },
	// DST gap: 02:30 does not exist on 2026-03-29 in Berlin: once, at
	// the gap's end (03:00 CEST), then 02:30 CEST the next day
	{ "30 2 * * *", "Europe/Berlin", "2026-03-28T12:00:00Z", "2026-03-29T01:00:00Z" },
	{ "30 2 * * *", "Europe/Berlin", "2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z" },
	{ "*/15 2 * * *", "Europe/Berlin", "2026-03-29T00:50:00Z", "2026-03-29T01:00:00Z" },
	{ "*/15 2 * * *", "Europe/Berlin", "2026-03-29T01:00:00Z", "2026-03-30T00:00:00Z" },
	// DST overlap: 02:30 happens twice on 2026-10-25: the first only
	{ "30 2 * * *", "Europe/Berlin", "2026-10-24T12:00:00Z", "2026-10-25T00:30:00Z" },
	{ "30 2 * * *", "Europe/Berlin", "2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z" },
	{ "0 * * * *", "Europe/Berlin", "2026-10-25T00:00:00Z", "2026-10-25T02:00:00Z" },
	{ "0 2 * * *", "America/New_York", "2026-03-07T12:00:00Z", "2026-03-08T07:00:00Z" },
	{ "30 1 * * *", "America/New_York", "2026-10-31T12:00:00Z", "2026-11-01T05:30:00Z" },
	{ "30 1 * * *", "America/New_York", "2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z" },
	// past the file's last transition: the footer's rule
	{ "0 12 1 7 *", "Europe/Berlin", "2050-01-01T00:00:00Z", "2050-07-01T10:00:00Z" },
	{ "0 12 1 1 *", "Europe/Berlin", "2049-12-02T00:00:00Z", "2050-01-01T11:00:00Z" },
	{ "30 2 * * *", "Europe/Berlin", "2050-03-26T12:00:00Z", "2050-03-27T01:00:00Z" },
	{ "0 12 1 7 *", "America/New_York", "2060-01-01T00:00:00Z", "2060-07-01T16:00:00Z" },
};

Test(cron, next_fire_table, .timeout = T_TIMEOUT)
{
	for (size_t i = 0; i < sizeof(next) / sizeof(next[0]); i++) {
		weft_cron c;
		weft_tz   tz;
		char      err[256] = "", got[48] = "none";
		int64_t   t        = 0;
		bool      ok;
		cr_assert_eq(weft_cron_parse(&c, next[i].expr, err, sizeof(err)),
		    WEFT_OK, "row %zu: %s", i, err);
		zone(&tz, next[i].zone);
		ok = weft_cron_next(&c, &tz, at(next[i].after), &t);
		if (ok) {
			weft_clock_format_rfc3339(t, got);
		}
		if (next[i].want == NULL) {
			cr_expect(!ok, "row %zu \"%s\": fires at %s", i,
			    next[i].expr, got);
		} else {
			cr_expect(ok && t == at(next[i].want),
			    "row %zu \"%s\" %s after %s: got %s, want %s", i,
			    next[i].expr, next[i].zone, next[i].after, got,
			    next[i].want);
		}
		weft_tz_fini(&tz);
	}
}

Test(cron, zone_offsets, .timeout = T_TIMEOUT)
{
	weft_tz tz;
	zone(&tz, "Europe/Berlin");
	cr_expect_eq(weft_tz_offset(&tz, at("2026-01-15T12:00:00Z") / 1000), 3600);
	cr_expect_eq(weft_tz_offset(&tz, at("2026-07-15T12:00:00Z") / 1000), 7200);
	// the instant of the change, both sides
	cr_expect_eq(weft_tz_offset(&tz, at("2026-03-29T00:59:59Z") / 1000), 3600);
	cr_expect_eq(weft_tz_offset(&tz, at("2026-03-29T01:00:00Z") / 1000), 7200);
	cr_expect_eq(weft_tz_offset(&tz, at("2090-07-15T12:00:00Z") / 1000), 7200);
	cr_expect_eq(weft_tz_offset(&tz, at("2090-12-15T12:00:00Z") / 1000), 3600);
	weft_tz_fini(&tz);
	zone(&tz, "Australia/Sydney"); // southern: DST over new year
	cr_expect_eq(weft_tz_offset(&tz, at("2080-01-15T12:00:00Z") / 1000), 39600);
	cr_expect_eq(weft_tz_offset(&tz, at("2080-07-15T12:00:00Z") / 1000), 36000);
	weft_tz_fini(&tz);
}

Test(cron, bad_zones, .timeout = T_TIMEOUT)
{
	weft_tz tz;
	char    err[128] = "";
	const uint8_t junk[] = "TZif2 not really a zone file at all, too short";
	cr_expect_eq(weft_tz_parse(&tz, (const uint8_t *) "hello", 5, err,
	                 sizeof(err)),
	    WEFT_EINVAL);
	cr_expect_eq(weft_tz_parse(&tz, junk, sizeof(junk), err, sizeof(err)),
	    WEFT_EINVAL);
	static const struct {
		const char *name;
		bool        ok;
	} names[] = { { "Europe/Berlin", true }, { "UTC", true },
		{ "America/Argentina/Buenos_Aires", true }, { "Etc/GMT+5", true },
		{ "../etc/passwd", false }, { "/etc/passwd", false },
		{ "Europe/../../x", false }, { "a b", false }, { "", false },
		{ "Europe/", false }, { "Europe//Berlin", false } };
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		cr_expect_eq(weft_tz_name_ok(names[i].name), names[i].ok, "%s",
		    names[i].name);
	}
}
