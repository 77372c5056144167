// filter: which events `weft events` and `weft watch` show. The store
// filters what it is asked for (an EventsRequest made from the filter); the
// client applies the same filter to the events of the live stream and to the
// gaps it fetches without one.
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "cli.h"
#include "jsonx.h"

// filter_str returns s, or "" (protobuf's absent string) for NULL.
static char *
filter_str(const char *s)
{
	return ((char *) (s != NULL ? s : ""));
}

void
weft_cli_evfilter_request(const weft_cli_evfilter *f, bool full,
    Weft__EventsRequest *er)
{
	er->run_id = filter_str(f->run);
	if (!full) {
		return;
	}
	er->types    = f->types;
	er->n_types  = f->n_types;
	er->step_id  = filter_str(f->step);
	er->node     = filter_str(f->node);
	er->text     = filter_str(f->text);
	er->since_ms = f->since_ms;
	er->until_ms = f->until_ms;
}

// filter_is reports whether the string at key of ev is want (a NULL or ""
// want passes anything; an absent string is "").
static bool
filter_is(json_t *ev, const char *key, const char *want)
{
	const char *s = json_string_value(json_object_get(ev, key));

	return (want == NULL || want[0] == '\0' ||
	    strcmp(s != NULL ? s : "", want) == 0);
}

// filter_type reports whether ev's type is one of f's.
static bool
filter_type(const weft_cli_evfilter *f, json_t *ev)
{
	const char *type = json_string_value(json_object_get(ev, "type"));

	if (f->n_types == 0) {
		return (true);
	}
	for (size_t i = 0; type != NULL && i < f->n_types; i++) {
		if (strcmp(type, f->types[i]) == 0) {
			return (true);
		}
	}
	return (false);
}

// filter_time reports whether ev's time is in [since, until).
static bool
filter_time(const weft_cli_evfilter *f, json_t *ev)
{
	const char *ts = json_string_value(json_object_get(ev, "ts"));
	int64_t     ms;

	if (f->since_ms == 0 && f->until_ms == 0) {
		return (true);
	}
	if (ts == NULL || !weft_clock_parse_time(ts, 0, &ms)) {
		return (false);
	}
	return ((f->since_ms == 0 || ms >= (int64_t) f->since_ms) &&
	    (f->until_ms == 0 || ms < (int64_t) f->until_ms));
}

// filter_text reports whether the data of ev, as compact JSON text (the
// form the store keeps and the stream carries), contains f's text.
static bool
filter_text(const weft_cli_evfilter *f, json_t *ev)
{
	char *data;
	bool  found;

	if (f->text == NULL || f->text[0] == '\0') {
		return (true);
	}
	data  = weft_json_dump(json_object_get(ev, "data"));
	found = strstr(data, f->text) != NULL;
	free(data);
	return (found);
}

bool
weft_cli_evfilter_match(const weft_cli_evfilter *f, json_t *ev)
{
	if (f == NULL) {
		return (true);
	}
	return (filter_is(ev, "run", f->run) && filter_type(f, ev) &&
	    filter_is(ev, "step", f->step) && filter_is(ev, "node", f->node) &&
	    filter_time(f, ev) && filter_text(f, ev));
}
