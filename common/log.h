// log: one line per record on stderr: time, level, component, event id, text.
#ifndef WEFT_LOG_H
#define WEFT_LOG_H

// Levels use the syslog numbers.
enum weft_log_level {
	WEFT_LOG_ERR    = 3,
	WEFT_LOG_WARN   = 4,
	WEFT_LOG_NOTICE = 5,
	WEFT_LOG_INFO   = 6,
	WEFT_LOG_DEBUG  = 7,
};

extern int weft_log_level_current;

// weft_log_init sets the component name (static storage, retained) and the
// level; WEFT_LOG_LEVEL in the environment (err..debug) overrides level.
void weft_log_init(const char *component, int level);

// weft_log_write formats and writes one record. Thread-safe. Use the macros.
void weft_log_write(int level, const char *id, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define weft_log_at(lvl, id, ...)                          \
	do {                                               \
		if ((lvl) <= weft_log_level_current) {     \
			weft_log_write(lvl, id, __VA_ARGS__); \
		}                                          \
	} while (0)

#define weft_log_err(id, ...) weft_log_at(WEFT_LOG_ERR, id, __VA_ARGS__)
#define weft_log_warn(id, ...) weft_log_at(WEFT_LOG_WARN, id, __VA_ARGS__)
#define weft_log_notice(id, ...) weft_log_at(WEFT_LOG_NOTICE, id, __VA_ARGS__)
#define weft_log_info(id, ...) weft_log_at(WEFT_LOG_INFO, id, __VA_ARGS__)
#define weft_log_debug(id, ...) weft_log_at(WEFT_LOG_DEBUG, id, __VA_ARGS__)

#endif
