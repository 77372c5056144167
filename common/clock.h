// clock: monotonic and wall-clock milliseconds.
#ifndef WEFT_CLOCK_H
#define WEFT_CLOCK_H

#include <stdint.h>

// weft_clock_mono_ms returns monotonic milliseconds (for deadlines).
int64_t weft_clock_mono_ms(void);

// weft_clock_wall_ms returns wall-clock milliseconds since the epoch.
int64_t weft_clock_wall_ms(void);

// weft_clock_format_rfc3339 writes ms (wall) as "2026-11-22T17:03:11.123Z"
// into buf of at least 48 bytes; returns buf.
char *weft_clock_format_rfc3339(int64_t ms, char *buf);

// weft_clock_sleep_ms sleeps ms milliseconds (signals may shorten it).
void weft_clock_sleep_ms(int64_t ms);

#endif
