// clock: time sources and formatting.
#include "clock.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t
weft_clock_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

int64_t
weft_clock_mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000);
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

// days_from_civil counts days from 1970-01-01 to y-m-d (proleptic
// Gregorian; Howard Hinnant's algorithm), avoiding the non-POSIX timegm.
static int64_t
days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return (era * 146097 + doe - 719468);
}

bool
weft_clock_parse_time(const char *s, int64_t now, int64_t *ms)
{
	int         y, mo, d, h = 0, mi = 0, sec = 0, n = 0, oh, om;
	int64_t     frac = 0, scale = 1000;
	const char *p;
	char       *end;
	long long   v;

	errno = 0;
	v     = strtoll(s, &end, 10);
	if (errno == ERANGE) {
		return (false); // not a time: never "the end of time"
	}
	if (end != s && *end == '\0' && v >= 0) {
		if (v > WEFT_CLOCK_MAX_MS) {
			return (false);
		}
		*ms = (int64_t) v;
		return (true);
	}
	if (end != s && v >= 0 && (end[1] == '\0' || strcmp(end, "ms") == 0)) {
		// Relative: that long before now.
		static const struct {
			const char *unit;
			int64_t     ms;
		} units[] = { { "ms", 1 }, { "s", 1000 }, { "m", 60000 },
			{ "h", 3600000 }, { "d", 86400000 } };
		for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
			if (strcmp(end, units[i].unit) == 0) {
				// An age reaching back before 1970 is no time.
				if (now < 0 || v > now / units[i].ms) {
					return (false);
				}
				*ms = now - (int64_t) v * units[i].ms;
				return (true);
			}
		}
		return (false);
	}
	if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3 || n != 10) {
		return (false);
	}
	p = s + n;
	if (*p == 'T' || *p == 't' || *p == ' ') {
		if (sscanf(p + 1, "%2d:%2d:%2d%n", &h, &mi, &sec, &n) != 3 ||
		    n != 8) {
			return (false);
		}
		p += 1 + n;
		if (*p == '.') {
			for (p++; *p >= '0' && *p <= '9'; p++) {
				if (scale > 1) {
					scale /= 10;
					frac += (*p - '0') * scale;
				}
			}
		}
	}
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 ||
	    sec > 60) {
		return (false);
	}
	*ms = ((days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60000 +
	    (int64_t) sec * 1000 + frac;
	if (*p == '\0' || ((*p == 'Z' || *p == 'z') && p[1] == '\0')) {
		return (true);
	}
	if ((*p == '+' || *p == '-') &&
	    sscanf(p + 1, "%2d:%2d%n", &oh, &om, &n) == 2 && n == 5 &&
	    p[6] == '\0') {
		*ms -= (*p == '+' ? 1 : -1) * (int64_t) (oh * 60 + om) * 60000;
		return (true);
	}
	return (false);
}

void
weft_clock_cond_init(pthread_cond_t *cv)
{
	pthread_condattr_t ca;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(cv, &ca);
	pthread_condattr_destroy(&ca);
}

struct timespec
weft_clock_mono_ts(int64_t deadline_ms)
{
	struct timespec ts = { (time_t) (deadline_ms / 1000),
		(long) (deadline_ms % 1000) * 1000000 };
	return (ts);
}

bool
weft_clock_parse_duration(const char *s, int64_t *ms)
{
	static const struct {
		const char *unit;
		int64_t     ms;
	} units[] = { { "", 1000 }, { "ms", 1 }, { "s", 1000 },
		{ "m", 60000 }, { "h", 3600000 }, { "d", 86400000 } };
	unsigned long long v;
	char              *end;

	if (s[0] < '0' || s[0] > '9') {
		return (false);
	}
	errno = 0;
	v     = strtoull(s, &end, 10);
	if (errno != 0) {
		return (false);
	}
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(end, units[i].unit) == 0) {
			if (v > (unsigned long long) (INT64_MAX / 4 /
			            units[i].ms)) {
				return (false);
			}
			*ms = (int64_t) v * units[i].ms;
			return (true);
		}
	}
	return (false);
}

weft_err
weft_duration_parse(const char *s, int64_t *ms, char *err, size_t errlen)
{
	size_t len = s != NULL ? strlen(s) : 0;

	if (s != NULL && weft_clock_parse_duration(s, ms)) {
		return (WEFT_OK);
	}
	if (len == 0) {
		snprintf(err, errlen, "empty duration (a whole number and a "
		    "unit: ms, s, m, h or d; e.g. 30s)");
	} else if (s[0] == '-') {
		snprintf(err, errlen, "\"%.64s\": a duration cannot be negative",
		    s);
	} else if (s[0] < '0' || s[0] > '9') {
		snprintf(err, errlen, "\"%.64s\": not a duration (a whole number "
		    "and a unit: ms, s, m, h or d; e.g. 30s)", s);
	} else {
		const char *u = s;
		while (*u >= '0' && *u <= '9') {
			u++;
		}
		if (*u == '\0' || strcmp(u, "ms") == 0 || strcmp(u, "s") == 0 ||
		    strcmp(u, "m") == 0 || strcmp(u, "h") == 0 ||
		    strcmp(u, "d") == 0) {
			snprintf(err, errlen, "\"%.64s\": too large a duration", s);
		} else {
			snprintf(err, errlen, "\"%.64s\": unknown unit \"%.16s\" "
			    "(ms, s, m, h or d)", s, u);
		}
	}
	return (WEFT_EINVAL);
}
