// cron: five-field cron expressions, time zones read from TZif data, and
// the next fire time of a schedule.
//
// Pure: the parser, the matcher and the next-fire search take bytes and
// numbers and touch no global state (no TZ variable, no localtime), so any
// thread may call them. Reading a zone's file is the caller's job.
#ifndef WEFT_CRON_H
#define WEFT_CRON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

// A parsed expression: one bit per allowed value of each field.
typedef struct weft_cron {
	uint64_t minute; // bits 0-59
	uint32_t hour;   // bits 0-23
	uint32_t dom;    // bits 1-31
	uint16_t month;  // bits 1-12
	uint8_t  dow;    // bits 0-6, Sunday 0 (7 is folded onto 0)
	bool     dom_star; // the field began with '*': Vixie cron then
	bool     dow_star; // ANDs the day fields, otherwise ORs them
} weft_cron;

// weft_cron_parse parses expr (borrowed): five fields separated by
// blanks, each a list of `*`, `N`, `A-B`, with an optional `/STEP`, months
// and weekdays also by name (JAN-DEC, SUN-SAT, any case), 7 also Sunday;
// or one of @yearly @annually @monthly @weekly @daily @midnight @hourly.
// WEFT_EINVAL with a message naming the field and the fault in err.
weft_err weft_cron_parse(
    weft_cron *out, const char *expr, char *err, size_t errlen);

// A time zone: its UTC offsets over time, from a TZif file.
typedef struct weft_tz {
	int64_t *at;     // transition instants, UTC seconds, ascending
	uint8_t *idx;    // type index in force from at[i] on
	int32_t *off;    // offset of each type, seconds east of UTC
	size_t   nat, ntypes;
	int32_t  first;  // offset before the first transition
	// The POSIX rule after the last transition (the file's footer);
	// rule_dst false: the standard offset alone.
	bool     has_rule, rule_dst;
	int32_t  std_off, dst_off;   // seconds east of UTC
	int      start_m, start_w, start_d; // DST from: month, week (5 =
	int32_t  start_t;            // last), weekday; at local std secs
	int      end_m, end_w, end_d; // DST until ...
	int32_t  end_t;              // at local dst secs
} weft_tz;

// weft_tz_utc fills tz with UTC (no transitions).
void weft_tz_utc(weft_tz *tz);

// weft_tz_parse reads TZif data (buf, len bytes, borrowed; version 1, 2
// or 3) into tz. WEFT_EINVAL with a message in err when it is not TZif.
// Free with weft_tz_fini.
weft_err weft_tz_parse(
    weft_tz *tz, const uint8_t *buf, size_t len, char *err, size_t errlen);
void     weft_tz_fini(weft_tz *tz);

// weft_tz_name_ok reports whether name (borrowed) may name a zone file
// under the tz database: letters, digits, `_ + -` and `/` between parts,
// no `..`, not absolute, at most 64 bytes.
bool weft_tz_name_ok(const char *name);

// weft_tz_offset gives tz's offset (seconds east of UTC) at t (UTC s).
int32_t weft_tz_offset(const weft_tz *tz, int64_t t);

// weft_cron_next gives the first fire of c in zone tz strictly after
// `after` (UTC ms), in UTC ms (whole minutes). Wall times are local to tz:
// a local time skipped by a DST gap fires once, at the gap's end; one met
// twice in an overlap fires once, at the first. False when nothing
// matches within 8 years (a 31st of February).
bool weft_cron_next(
    const weft_cron *c, const weft_tz *tz, int64_t after, int64_t *next);

#endif
