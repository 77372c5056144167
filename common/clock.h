// clock: monotonic and wall-clock milliseconds.
#ifndef WEFT_CLOCK_H
#define WEFT_CLOCK_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "err.h"

// weft_clock_mono_ms returns monotonic milliseconds (for deadlines).
int64_t weft_clock_mono_ms(void);

// weft_clock_mono_us returns monotonic microseconds (for latencies).
int64_t weft_clock_mono_us(void);

// weft_clock_wall_ms returns wall-clock milliseconds since the epoch.
int64_t weft_clock_wall_ms(void);

// weft_clock_format_rfc3339 writes ms (wall) as "2026-11-22T17:03:11.123Z"
// into buf of at least 48 bytes; returns buf.
char *weft_clock_format_rfc3339(int64_t ms, char *buf);

// weft_clock_cond_init initializes cv to measure pthread_cond_timedwait
// deadlines on the monotonic clock; weft_clock_mono_ts turns a deadline in
// weft_clock_mono_ms terms into the timespec such a wait takes.
void            weft_clock_cond_init(pthread_cond_t *cv);
struct timespec weft_clock_mono_ts(int64_t deadline_ms);

// weft_clock_sleep_ms sleeps ms milliseconds (signals may shorten it).
void weft_clock_sleep_ms(int64_t ms);

// weft_clock_parse_time parses a point in time into wall ms: epoch
// milliseconds ("1795000000000"), RFC 3339 ("2026-11-22T17:03:11Z",
// "...+01:00", fractions allowed) or an age before now ("90s", "15m", "2h",
// "7d", "500ms"). Returns false, leaving *ms alone, when s is none of these
// or out of range: epoch ms past WEFT_CLOCK_MAX_MS (year 9999), an age
// reaching back before 1970, a number that overflows.
#define WEFT_CLOCK_MAX_MS INT64_C(253402300799999) // 9999-12-31T23:59:59.999Z
bool weft_clock_parse_time(const char *s, int64_t now, int64_t *ms);

// weft_clock_parse_duration parses a duration flag into *ms: a whole
// number followed by ms, s, m, h or d, or by nothing for seconds. False
// when s is none of these, or absurdly large (nothing may overflow when
// added to a clock reading).
bool weft_clock_parse_duration(const char *s, int64_t *ms);

// weft_duration_parse parses a duration flag (borrowed) into *ms, as
// weft_clock_parse_duration does (500ms, 30s, 2m, 1h, 1d; a bare number
// is seconds), and on failure writes into err (errlen bytes) what is
// wrong, quoting s: WEFT_EINVAL, *ms left alone.
weft_err weft_duration_parse(const char *s, int64_t *ms, char *err,
    size_t errlen);

#endif
