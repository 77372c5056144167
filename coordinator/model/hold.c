// hold: definition checks and deadlines of the coordinator-side step types
// (wait, delay, sleep_until). See hold.h.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "hold.h"

enum weft_hold
weft_hold_kind(const char *type)
{
	// Called on every enqueue: the first byte rules out nearly every
	// worker type before any strcmp.
	if (type == NULL || (type[0] != 'w' && type[0] != 'd' && type[0] != 's')) {
		return (WEFT_HOLD_NONE);
	}
	if (strcmp(type, "wait") == 0) {
		return (WEFT_HOLD_SIGNAL);
	}
	if (strcmp(type, "workflow") == 0) {
		return (WEFT_HOLD_CHILD);
	}
	if (strcmp(type, "delay") == 0 || strcmp(type, "sleep_until") == 0) {
		return (WEFT_HOLD_TIMER);
	}
	return (WEFT_HOLD_NONE);
}

bool
weft_hold_name_ok(const char *name)
{
	size_t n = name != NULL ? strlen(name) : 0;

	if (n == 0 || n > WEFT_HOLD_NAME_MAX) {
		return (false);
	}
	for (size_t i = 0; i < n; i++) {
		char ch = name[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		        (ch >= '0' && ch <= '9') ||
		        strchr(WEFT_HOLD_NAME_CHARS, ch) != NULL)) {
			return (false);
		}
	}
	return (true);
}

// hold_template: a string holding ${...} is rendered at run time; its
// references were checked with the rest of the step's `with`.
static bool
hold_template(const json_t *v)
{
	return (json_is_string(v) && strstr(json_string_value(v), "${") != NULL);
}

// hold_fields refuses any key of with besides the allowed ones (NULL-ended).
static weft_err
hold_fields(const char *type, const json_t *with, const char *const *allowed,
    char *err, size_t errlen)
{
	const char *key;
	json_t     *v;

	json_object_foreach ((json_t *) with, key, v) {
		bool ok = false;
		for (size_t i = 0; allowed[i] != NULL; i++) {
			ok = ok || strcmp(key, allowed[i]) == 0;
		}
		if (!ok) {
			// "it takes a", "a and b", "a, b and c".
			int n = snprintf(err, errlen, "field \"with.%.64s\": "
			    "unknown for a %s step (it takes %s", key, type,
			    allowed[0]);
			for (size_t i = 1; allowed[i] != NULL && n >= 0 &&
			     (size_t) n < errlen; i++) {
				n += snprintf(err + n, errlen - (size_t) n, "%s%s",
				    allowed[i + 1] != NULL ? ", " : " and ",
				    allowed[i]);
			}
			if (n >= 0 && (size_t) n < errlen) {
				snprintf(err + n, errlen - (size_t) n, ")");
			}
			return (WEFT_EDEF);
		}
	}
	return (WEFT_OK);
}

// hold_time parses a sleep_until `at`: epoch ms, or RFC 3339 text. An age
// ("15m"), which weft_clock_parse_time also takes, is refused: "at" names
// a moment, and an age would move with every restart.
static bool
hold_time(const json_t *v, int64_t *ms)
{
	const char *s;

	if (json_is_integer(v)) {
		*ms = json_integer_value(v);
		return (*ms >= 0 && *ms <= WEFT_CLOCK_MAX_MS);
	}
	if (!json_is_string(v)) {
		return (false);
	}
	s = json_string_value(v);
	return (strlen(s) >= 10 && s[4] == '-' &&
	    weft_clock_parse_time(s, 0, ms));
}

// hold_ms parses a delay's `ms`: a whole number, 0 to a year and more.
static bool
hold_ms(const json_t *v, int64_t *ms)
{
	if (!json_is_integer(v)) {
		return (false);
	}
	*ms = json_integer_value(v);
	return (*ms >= 0 && *ms <= WEFT_CLOCK_MAX_MS);
}

static weft_err
hold_check_wait(const json_t *with, uint32_t *timeout_ms, char *err,
    size_t errlen)
{
	static const char *const allowed[] = { "signal", "timeout_ms", NULL };
	const json_t            *sig = json_object_get(with, "signal");
	const json_t            *tmo = json_object_get(with, "timeout_ms");

	if (hold_fields("wait", with, allowed, err, errlen) != WEFT_OK) {
		return (WEFT_EDEF);
	}
	if (sig == NULL) {
		snprintf(err, errlen, "a wait step needs \"with.signal\" (the "
		    "name of the signal it waits for)");
		return (WEFT_EDEF);
	}
	if (!weft_hold_name_ok(json_string_value(sig))) {
		snprintf(err, errlen, "field \"with.signal\": must be a name of "
		    "1-%d characters of A-Z a-z 0-9 _ . - (not a template)",
		    WEFT_HOLD_NAME_MAX);
		return (WEFT_EDEF);
	}
	if (tmo != NULL) {
		if (!json_is_integer(tmo) || json_integer_value(tmo) < 0 ||
		    json_integer_value(tmo) > (json_int_t) UINT32_MAX) {
			snprintf(err, errlen, "field \"with.timeout_ms\": must be "
			    "a whole number between 0 and %u", UINT32_MAX);
			return (WEFT_EDEF);
		}
		if (*timeout_ms != 0 && json_integer_value(tmo) != 0) {
			snprintf(err, errlen, "field \"with.timeout_ms\": the "
			    "step has \"timeout_ms\" too; give one of them");
			return (WEFT_EDEF);
		}
		if (json_integer_value(tmo) != 0) {
			*timeout_ms = (uint32_t) json_integer_value(tmo);
		}
	}
	return (WEFT_OK);
}

weft_err
weft_hold_check_child(const json_t *with, char *err, size_t errlen)
{
	static const char *const allowed[] = { "name", "version", "input",
		"params", NULL };
	const json_t            *name = json_object_get(with, "name");
	const json_t            *ver  = json_object_get(with, "version");
	json_t                  *v;

	if (hold_fields("workflow", with, allowed, err, errlen) != WEFT_OK) {
		return (WEFT_EDEF);
	}
	if (name == NULL) {
		snprintf(err, errlen, "a workflow step needs \"with.name\" (the "
		    "definition its child run runs)");
		return (WEFT_EDEF);
	}
	// A literal: the registry is asked for it at define time, and
	// what a template would name is known only at run time.
	if (!json_is_string(name) || !weft_hold_name_ok(json_string_value(name))) {
		snprintf(err, errlen, "field \"with.name\": must be a definition "
		    "name of 1-128 characters of A-Z a-z 0-9 _ . - (not a "
		    "template)");
		return (WEFT_EDEF);
	}
	if (ver != NULL && (!json_is_integer(ver) || json_integer_value(ver) < 1)) {
		snprintf(err, errlen, "field \"with.version\": must be a whole "
		    "number >= 1 (leave it out for the latest)");
		return (WEFT_EDEF);
	}
	for (int k = 0; k < 2; k++) {
		const char *f = k == 0 ? "input" : "params";
		v             = json_object_get(with, f);
		if (v != NULL && !json_is_object(v)) {
			snprintf(err, errlen, "field \"with.%s\": must be an "
			    "object (the child run's %s)", f, f);
			return (WEFT_EDEF);
		}
	}
	return (WEFT_OK);
}

weft_err
weft_hold_check(const char *type, const json_t *with, uint32_t *timeout_ms,
    char *err, size_t errlen)
{
	static const char *const delay_f[] = { "ms", NULL };
	static const char *const until_f[] = { "at", NULL };
	bool                     delay = strcmp(type, "delay") == 0;
	const char              *key   = delay ? "ms" : "at";
	const json_t            *v;
	int64_t                  ms;

	if (strcmp(type, "wait") == 0) {
		return (hold_check_wait(with, timeout_ms, err, errlen));
	}
	if (strcmp(type, "workflow") == 0) {
		return (weft_hold_check_child(with, err, errlen));
	}
	if (hold_fields(type, with, delay ? delay_f : until_f, err, errlen) !=
	    WEFT_OK) {
		return (WEFT_EDEF);
	}
	if ((v = json_object_get(with, key)) == NULL) {
		snprintf(err, errlen, "a %s step needs \"with.%s\" (%s)", type,
		    key, delay ? "how many ms to wait" : "when it ends");
		return (WEFT_EDEF);
	}
	if (hold_template(v) ||
	    (delay ? hold_ms(v, &ms) : hold_time(v, &ms))) {
		return (WEFT_OK);
	}
	snprintf(err, errlen, "field \"with.%s\": %s", key, delay
	        ? "must be a whole number of ms >= 0, or a ${...} template"
	        : "must be RFC 3339 (\"2026-12-01T09:00:00Z\"), epoch ms, or a "
	          "${...} template");
	return (WEFT_EDEF);
}

weft_err
weft_hold_deadline(const char *type, const json_t *with, int64_t now,
    int64_t *at_ms, char *err, size_t errlen)
{
	bool          delay = strcmp(type, "delay") == 0;
	const json_t *v     = json_object_get(with, delay ? "ms" : "at");
	char         *text;
	int64_t       ms;

	if (delay ? hold_ms(v, &ms) : hold_time(v, &ms)) {
		*at_ms = delay ? now + ms : ms;
		return (WEFT_OK);
	}
	text = v != NULL ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
	snprintf(err, errlen, "%s: with.%s rendered to %.80s: %s", type,
	    delay ? "ms" : "at", text != NULL ? text : "nothing", delay
	        ? "not a whole number of ms >= 0"
	        : "not an RFC 3339 time or epoch ms");
	free(text);
	return (WEFT_EINVAL);
}
