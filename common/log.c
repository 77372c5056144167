// log: rendering and writing of structured log records to stderr.
//
// A record is rendered from its call site's text: the leading key=value
// pairs (a value unquoted up to the next space, or "quoted" with C
// escapes) become fields, the rest of the text becomes msg. So call sites
// stay printf-like and the output stays machine-readable in both formats.
#include "log.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

#define LOG_LINE_MAX 4096 // one record, cut beyond
#define LOG_TEXT_MAX 2048 // the call site's text
#define LOG_FIELDS_MAX 32 // fields taken from the text
#define LOG_CTX_MAX 128   // bytes of a context value

int weft_log_level_current = WEFT_LOG_INFO;

static const char *log_component = "weft";
static int         log_format    = WEFT_LOG_LOGFMT;
static char        log_node[128];

// This thread's attempt, if it works for one.
static _Thread_local char     log_ctx_run[LOG_CTX_MAX];
static _Thread_local char     log_ctx_step[LOG_CTX_MAX];
static _Thread_local uint32_t log_ctx_attempt;

static const char *log_levels[] = { "emerg", "alert", "crit", "err", "warn",
	"notice", "info", "debug" };

int
weft_log_format_parse(const char *s)
{
	if (s != NULL && strcmp(s, "logfmt") == 0) {
		return (WEFT_LOG_LOGFMT);
	}
	if (s != NULL && strcmp(s, "json") == 0) {
		return (WEFT_LOG_JSON);
	}
	return (-1);
}

void
weft_log_init(const char *component, int level)
{
	const char *env;
	int         f;

	log_component          = component;
	weft_log_level_current = level;
	if ((env = getenv("WEFT_LOG_LEVEL")) != NULL) {
		for (int i = 3; i < 8; i++) {
			if (strcmp(env, log_levels[i]) == 0) {
				weft_log_level_current = i;
			}
		}
	}
	if ((f = weft_log_format_parse(getenv("WEFT_LOG_FORMAT"))) >= 0) {
		log_format = f;
	}
}

void
weft_log_set_format(int format)
{
	log_format = format == WEFT_LOG_JSON ? WEFT_LOG_JSON : WEFT_LOG_LOGFMT;
}

void
weft_log_set_node(const char *node)
{
	snprintf(log_node, sizeof(log_node), "%s", node ? node : "");
}

void
weft_log_ctx_set(const char *run, const char *step, uint32_t attempt)
{
	snprintf(log_ctx_run, sizeof(log_ctx_run), "%s", run ? run : "");
	snprintf(log_ctx_step, sizeof(log_ctx_step), "%s", step ? step : "");
	log_ctx_attempt = attempt;
}

void
weft_log_ctx_clear(void)
{
	log_ctx_run[0]  = '\0';
	log_ctx_step[0] = '\0';
	log_ctx_attempt = 0;
}

// ---- rendering ----

// An output buffer that cuts rather than overflows.
typedef struct log_buf {
	char  *p;
	size_t len, cap; // cap includes the terminator
} log_buf;

static void
log_putc(log_buf *b, char c)
{
	if (b->len + 1 < b->cap) {
		b->p[b->len++] = c;
		b->p[b->len]   = '\0';
	}
}

static void
log_putn(log_buf *b, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		log_putc(b, s[i]);
	}
}

static void
log_puts(log_buf *b, const char *s)
{
	log_putn(b, s, strlen(s));
}

// One field of a record: key and value (the value raw: C escapes still
// in it when quoted).
typedef struct log_field {
	const char *key, *val;
	size_t      klen, vlen;
	bool        quoted;
} log_field;

// log_decoded appends f's value through put, its C escapes decoded when
// it was quoted.
static void
log_decoded(const log_field *f, void (*put)(log_buf *, char), log_buf *b)
{
	for (size_t i = 0; i < f->vlen; i++) {
		char c = f->val[i];

		if (f->quoted && c == '\\' && i + 1 < f->vlen) {
			c = f->val[++i];
			c = c == 'n' ? '\n' : c == 't' ? '\t' : c;
		}
		put(b, c);
	}
}

// log_number tells whether a field's value is an integer JSON can carry.
static bool
log_number(const log_field *f)
{
	size_t i = f->vlen > 0 && f->val[0] == '-' ? 1 : 0;

	if (f->quoted || f->vlen == i || f->vlen - i > 15 ||
	    (f->val[i] == '0' && f->vlen - i > 1)) {
		return (false);
	}
	for (; i < f->vlen; i++) {
		if (!isdigit((unsigned char) f->val[i])) {
			return (false);
		}
	}
	return (true);
}

// log_esc_putc appends c escaped inside a quoted value: quote, backslash
// and newline as \" \\ \n; other control characters as \u00XX in JSON,
// a space in logfmt (either way, a record stays one line).
static void
log_esc_putc(log_buf *b, char c, bool json)
{
	char esc[8];

	if (c == '"' || c == '\\') {
		log_putc(b, '\\');
		log_putc(b, c);
	} else if (c == '\n') {
		log_puts(b, "\\n");
	} else if ((unsigned char) c < 0x20 && json) {
		snprintf(esc, sizeof(esc), "\\u%04x", (unsigned char) c);
		log_puts(b, esc);
	} else {
		log_putc(b, (unsigned char) c < 0x20 ? ' ' : c);
	}
}

static void
log_json_putc(log_buf *b, char c)
{
	log_esc_putc(b, c, true);
}

static void
log_fmt_putc(log_buf *b, char c)
{
	log_esc_putc(b, c, false);
}

// log_needs_quotes tells whether a logfmt value must be quoted.
static bool
log_needs_quotes(const log_field *f)
{
	if (f->vlen == 0 || f->quoted) {
		return (true);
	}
	for (size_t i = 0; i < f->vlen; i++) {
		unsigned char c = (unsigned char) f->val[i];

		if (c <= ' ' || c == '"' || c == '=' || c == '\\') {
			return (true);
		}
	}
	return (false);
}

static void
log_emit(log_buf *b, int format, const log_field *f)
{
	if (format == WEFT_LOG_JSON) {
		log_puts(b, ",\"");
		log_putn(b, f->key, f->klen);
		log_puts(b, "\":");
		if (log_number(f)) {
			log_putn(b, f->val, f->vlen);
			return;
		}
		log_putc(b, '"');
		log_decoded(f, log_json_putc, b);
		log_putc(b, '"');
		return;
	}
	if (b->len > 0) {
		log_putc(b, ' ');
	}
	log_putn(b, f->key, f->klen);
	log_putc(b, '=');
	if (!log_needs_quotes(f)) {
		log_putn(b, f->val, f->vlen);
		return;
	}
	log_putc(b, '"');
	log_decoded(f, log_fmt_putc, b);
	log_putc(b, '"');
}

static log_field
log_kv(const char *key, const char *val)
{
	return ((log_field) { key, val, strlen(key), strlen(val), false });
}

// log_parse_field reads one key=value at *s; false (and *s unchanged)
// when the text there is no field.
static bool
log_parse_field(const char **s, log_field *f)
{
	const char *p = *s, *k = p;

	if (!isalpha((unsigned char) *p) && *p != '_') {
		return (false);
	}
	while (isalnum((unsigned char) *p) || *p == '_' || *p == '.' ||
	    *p == '-') {
		p++;
	}
	if (*p != '=') {
		return (false);
	}
	f->key  = k;
	f->klen = (size_t) (p - k);
	p++;
	if (*p == '"') {
		const char *v = ++p;

		while (*p != '\0' && *p != '"') {
			p += p[0] == '\\' && p[1] != '\0' ? 2 : 1;
		}
		if (*p != '"' || (p[1] != '\0' && p[1] != ' ' &&
		                     p[1] != ':' && p[1] != ',')) {
			return (false); // not a value we can tell the end of
		}
		f->val    = v;
		f->vlen   = (size_t) (p - v);
		f->quoted = true;
		p++;
	} else {
		const char *v = p;

		while (*p != '\0' && *p != ' ') {
			p++;
		}
		f->val    = v;
		f->vlen   = (size_t) (p - v);
		f->quoted = false;
		// "run=X: what happened": the colon is the sentence's.
		while (f->vlen > 0 && (v[f->vlen - 1] == ':' ||
		                          v[f->vlen - 1] == ',' ||
		                          v[f->vlen - 1] == ';')) {
			f->vlen--;
		}
	}
	while (*p == ':' || *p == ',' || *p == ';') {
		p++;
	}
	while (*p == ' ') {
		p++;
	}
	*s = p;
	return (true);
}

static bool
log_has_key(const log_field *fs, int n, const char *key)
{
	for (int i = 0; i < n; i++) {
		if (fs[i].klen == strlen(key) &&
		    strncmp(fs[i].key, key, fs[i].klen) == 0) {
			return (true);
		}
	}
	return (false);
}

void
weft_log_render(char *out, size_t len, int format, int level,
    const char *id, const char *text)
{
	log_buf         b = { out, 0, len };
	log_field       fs[LOG_FIELDS_MAX];
	int             n = 0;
	const char     *rest = text;
	char            ts[40], attempt[16];
	struct timespec now;
	struct tm       tm;

	if (len == 0) {
		return;
	}
	out[0] = '\0';
	while (*rest == ' ') {
		rest++;
	}
	while (n < LOG_FIELDS_MAX && log_parse_field(&rest, &fs[n])) {
		n++;
	}
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
	    (tm.tm_year + 1900) % 10000, (tm.tm_mon + 1) % 100,
	    tm.tm_mday % 100, tm.tm_hour % 100, tm.tm_min % 100,
	    tm.tm_sec % 100, (int) (now.tv_nsec / 1000000) % 1000);
	if (format == WEFT_LOG_JSON) {
		log_puts(&b, "{\"ts\":\"");
		log_puts(&b, ts);
		log_putc(&b, '"');
	} else {
		log_puts(&b, "ts=");
		log_puts(&b, ts);
	}
	log_field fixed[] = {
		log_kv("level", log_levels[level & 7]),
		log_kv("node", log_node[0] ? log_node : log_component),
		log_kv("component", log_component),
		log_kv("event", id),
	};
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
		log_emit(&b, format, &fixed[i]);
	}
	if (log_ctx_run[0] != '\0' && !log_has_key(fs, n, "run")) {
		log_field f = log_kv("run", log_ctx_run);
		log_emit(&b, format, &f);
	}
	if (log_ctx_step[0] != '\0' && !log_has_key(fs, n, "step")) {
		log_field f = log_kv("step", log_ctx_step);
		log_emit(&b, format, &f);
	}
	if (log_ctx_attempt != 0 && !log_has_key(fs, n, "attempt")) {
		snprintf(attempt, sizeof(attempt), "%u", log_ctx_attempt);
		log_field f = log_kv("attempt", attempt);
		log_emit(&b, format, &f);
	}
	for (int i = 0; i < n; i++) {
		log_emit(&b, format, &fs[i]);
	}
	if (*rest != '\0') {
		log_field f = log_kv("msg", rest);
		f.quoted    = false;
		if (format == WEFT_LOG_LOGFMT) {
			// Always quoted, even one word: msg is prose.
			log_puts(&b, " msg=\"");
			for (const char *p = rest; *p != '\0'; p++) {
				log_fmt_putc(&b, *p);
			}
			log_putc(&b, '"');
		} else {
			log_emit(&b, format, &f);
		}
	}
	if (format == WEFT_LOG_JSON) {
		// A cut record still closes (the last bytes are ours).
		if (b.len + 3 > b.cap) {
			b.len = b.cap > 3 ? b.cap - 3 : 0;
			out[b.len] = '\0';
			log_puts(&b, "\"}");
		} else {
			log_putc(&b, '}');
		}
	}
}

void
weft_log_write(int level, const char *id, const char *fmt, ...)
{
	char    text[LOG_TEXT_MAX];
	char    line[LOG_LINE_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	weft_log_render(line, sizeof(line), log_format, level, id, text);
	// One fprintf per record keeps lines whole across threads.
	fprintf(stderr, "%s\n", line);
}

void
weft_thread_name(const char *name)
{
	// prctl, not pthread_setname_np: the latter needs _GNU_SOURCE.
	(void) prctl(PR_SET_NAME, (unsigned long) name, 0, 0, 0);
}
