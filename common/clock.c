// clock: time sources and formatting.
#include "clock.h"

#include <stdio.h>
#include <time.h>

int64_t
weft_clock_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

int64_t
weft_clock_wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return ((int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

char *
weft_clock_format_rfc3339(int64_t ms, char *buf)
{
	time_t    sec = (time_t) (ms / 1000);
	struct tm tm;

	gmtime_r(&sec, &tm);
	snprintf(buf, 48, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
	    tm.tm_sec, (int) (ms % 1000));
	return (buf);
}

void
weft_clock_sleep_ms(int64_t ms)
{
	struct timespec ts = { (time_t) (ms / 1000), (long) (ms % 1000) * 1000000 };
	nanosleep(&ts, NULL);
}
