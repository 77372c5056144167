// log: formatting and writing of log records to stderr.
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int weft_log_level_current = WEFT_LOG_INFO;

static const char *log_component = "weft";

void
weft_log_init(const char *component, int level)
{
	static const char *names[] = { "", "", "", "err", "warn", "notice",
		"info", "debug" };
	const char *env;

	log_component          = component;
	weft_log_level_current = level;
	if ((env = getenv("WEFT_LOG_LEVEL")) != NULL) {
		for (int i = 3; i < 8; i++) {
			if (strcmp(env, names[i]) == 0) {
				weft_log_level_current = i;
			}
		}
	}
}

void
weft_log_write(int level, const char *id, const char *fmt, ...)
{
	static const char *tags[] = { "EMERG", "ALERT", "CRIT", "ERR", "WARN",
		"NOTICE", "INFO", "DEBUG" };
	char            line[2048];
	struct timespec ts;
	struct tm       tm;
	int             n;
	va_list         ap;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = snprintf(line, sizeof(line),
	    "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s %s ", tm.tm_year + 1900,
	    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
	    ts.tv_nsec / 1000000, tags[level & 7], log_component, id);
	va_start(ap, fmt);
	if (n > 0 && (size_t) n < sizeof(line)) {
		vsnprintf(line + n, sizeof(line) - (size_t) n, fmt, ap);
	}
	va_end(ap);
	// One fputs per record keeps lines whole across threads.
	fprintf(stderr, "%s\n", line);
}
