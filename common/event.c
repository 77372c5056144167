// event: the tables WEFT_EVENT_TYPES generates, and their lookups.
#include "event.h"

#include <stddef.h>
#include <string.h>

#include "alloc.h"

static const struct event_info {
	const char           *name;
	enum weft_event_scope scope;
	bool                  terminal;
	const char           *step_status; // NULL: none
	const char           *run_status;  // NULL: none
} event_table[WEFT_EV_COUNT] = {
#define WEFT_EVENT_ROW(sfx, name, scope, term, step_st, run_st) \
	[WEFT_EV_##sfx] = { name, WEFT_EV_SCOPE_##scope, term, step_st, run_st },
	WEFT_EVENT_TYPES(WEFT_EVENT_ROW)
#undef WEFT_EVENT_ROW
};

static const struct event_info *
event_info(enum weft_event_type t)
{
	WEFT_ASSERT((unsigned) t < WEFT_EV_COUNT);
	return (&event_table[t]);
}

const char *
weft_event_name(enum weft_event_type t)
{
	return (event_info(t)->name);
}

bool
weft_event_from_name(const char *name, enum weft_event_type *out)
{
	if (name == NULL) {
		return (false);
	}
	// Two dozen short names: a scan is as quick as a hash here.
	for (unsigned i = 0; i < WEFT_EV_COUNT; i++) {
		if (strcmp(event_table[i].name, name) == 0) {
			*out = (enum weft_event_type) i;
			return (true);
		}
	}
	return (false);
}

enum weft_event_scope
weft_event_scope(enum weft_event_type t)
{
	return (event_info(t)->scope);
}

const char *
weft_event_scope_name(enum weft_event_scope s)
{
	switch (s) {
	case WEFT_EV_SCOPE_RUN:
		return ("run");
	case WEFT_EV_SCOPE_STEP:
		return ("step");
	case WEFT_EV_SCOPE_NODE:
		return ("node");
	}
	return ("unknown");
}

bool
weft_event_terminal(enum weft_event_type t)
{
	return (event_info(t)->terminal);
}

const char *
weft_event_step_status(enum weft_event_type t)
{
	return (event_info(t)->step_status);
}

const char *
weft_event_run_status(enum weft_event_type t)
{
	return (event_info(t)->run_status);
}
