// progress: the lines an exec program writes to the descriptor named in
// WEFT_PROGRESS_FD, cut into lines, checked (length, UTF-8) and thinned
// out in time. The newest good line is the attempt's progress: parsed as
// JSON when it is JSON, else kept as a string. Nothing here blocks or
// allocates per byte: the program may write as fast as it likes.
#include "worker_impl.h"

#include <string.h>

void
worker_progress_init(worker_progress *p)
{
	memset(p, 0, sizeof(*p));
}

size_t
worker_utf8_len(const unsigned char *s, size_t i, size_t len)
{
	unsigned char c = s[i];
	size_t        n = c < 0x80 ? 0
	           : (c >= 0xC2 && c <= 0xDF) ? 1
	           : (c >= 0xE0 && c <= 0xEF) ? 2
	           : (c >= 0xF0 && c <= 0xF4) ? 3
	                                      : 9;
	bool          ok = n != 9 && i + n < len && c != 0;

	for (size_t k = 1; ok && k <= n; k++) {
		ok = (s[i + k] & 0xC0) == 0x80;
	}
	// Overlong forms and surrogates, as jansson rejects them.
	if (ok && n >= 2) {
		unsigned char d = s[i + 1];
		ok = !((c == 0xE0 && d < 0xA0) || (c == 0xED && d >= 0xA0) ||
		    (c == 0xF0 && d < 0x90) || (c == 0xF4 && d >= 0x90));
	}
	return (ok ? n + 1 : 0);
}

// progress_utf8_ok reports whether s (len bytes) is valid UTF-8 with no NUL.
static bool
progress_utf8_ok(const unsigned char *s, size_t len)
{
	size_t i = 0, n;

	while (i < len) {
		if ((n = worker_utf8_len(s, i, len)) == 0) {
			return (false);
		}
		i += n;
	}
	return (true);
}

// progress_line judges one complete line (without its newline).
static void
progress_line(worker_progress *p)
{
	size_t len = p->len;

	p->len = 0;
	p->lines++;
	if (len > 0 && p->line[len - 1] == '\r') {
		len--;
	}
	if (len == 0) {
		return; // a blank line says nothing
	}
	if (!progress_utf8_ok((const unsigned char *) p->line, len)) {
		p->not_utf8++;
		return;
	}
	// A line not taken yet is replaced: only the newest counts.
	p->too_fast += p->have;
	memcpy(p->latest, p->line, len);
	p->latest[len] = '\0';
	p->have        = true;
}

void
worker_progress_feed(worker_progress *p, const char *buf, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = buf[i];
		if (c == '\n') {
			if (p->skipping) {
				p->skipping = false;
				p->len      = 0;
				p->lines++;
			} else {
				progress_line(p);
			}
			continue;
		}
		if (p->skipping) {
			continue;
		}
		if (p->len == WORKER_PROGRESS_LINE_MAX) {
			// Too long: counted once, dropped up to its newline.
			p->too_long++;
			p->skipping = true;
			continue;
		}
		p->line[p->len++] = c;
	}
}

json_t *
worker_progress_take(worker_progress *p, int64_t now, bool force, int *wait_ms)
{
	int64_t left;
	json_t *v;

	if (wait_ms != NULL) {
		*wait_ms = -1;
	}
	if (!p->have) {
		return (NULL);
	}
	left = p->taken_ms == 0 ? 0 : p->taken_ms + WORKER_PROGRESS_MIN_MS - now;
	if (left > 0 && !force) {
		if (wait_ms != NULL) {
			*wait_ms = (int) left;
		}
		return (NULL);
	}
	p->have     = false;
	p->taken_ms = now > 0 ? now : 1;
	if ((v = json_loads(p->latest, JSON_DECODE_ANY, NULL)) == NULL) {
		v = json_string(p->latest);
	}
	return (v);
}
