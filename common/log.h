// log: one structured record per line on stderr, logfmt by default
// (`ts=… level=info node=w1 component=worker event=WORKER-START name=w1
// slots=4`) or JSON lines (--log-format json / WEFT_LOG_FORMAT=json).
//
// Call sites write `weft_log_info("EVENT-ID", "key=value key=\"v w\"
// free text", …)`: the leading key=value pairs of the text become fields,
// the rest becomes msg. Every record carries the node's name
// (weft_log_set_node) and, on a thread working for one attempt, its run,
// step and attempt (weft_log_ctx_set), unless the text names them itself.
#ifndef WEFT_LOG_H
#define WEFT_LOG_H

#include <stddef.h>
#include <stdint.h>

// Levels use the syslog numbers.
enum weft_log_level {
	WEFT_LOG_ERR    = 3,
	WEFT_LOG_WARN   = 4,
	WEFT_LOG_NOTICE = 5,
	WEFT_LOG_INFO   = 6,
	WEFT_LOG_DEBUG  = 7,
};

enum weft_log_format {
	WEFT_LOG_LOGFMT = 0,
	WEFT_LOG_JSON   = 1,
};

extern int weft_log_level_current;

// weft_log_init sets the component name (static storage, retained) and the
// level; WEFT_LOG_LEVEL in the environment (err..debug) overrides level,
// WEFT_LOG_FORMAT (logfmt or json) the format.
void weft_log_init(const char *component, int level);

// weft_thread_name names the calling thread (at most 15 bytes kept) as
// ps, top, perf and gdb show it: "engine", "store", "slot" and so on.
void weft_thread_name(const char *name);

// weft_log_format_parse maps "logfmt" / "json" to a weft_log_format; -1
// for anything else.
int weft_log_format_parse(const char *s);

// weft_log_set_format sets the format (before threads start logging).
void weft_log_set_format(int format);

// weft_log_set_node sets the node name every record carries (copied;
// before threads start logging).
void weft_log_set_node(const char *node);

// weft_log_ctx_set makes this thread's records carry run, step and
// attempt (copied; NULL or 0 leaves one out) until weft_log_ctx_clear.
void weft_log_ctx_set(const char *run, const char *step, uint32_t attempt);
void weft_log_ctx_clear(void);

// weft_log_render renders one record (level, event id, text) into out
// (always terminated; cut at len). The logger's core, for tests.
void weft_log_render(char *out, size_t len, int format, int level,
    const char *id, const char *text);

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
