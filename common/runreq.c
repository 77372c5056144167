// runreq: a run request written as JSON into the protobuf RunRequest.
// The engine does every check that needs a definition or the store; this
// only refuses what cannot be put into the message at all.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "clock.h"
#include "query.h"
#include "runreq.h"

// runreq_text returns obj[key] as compact JSON text (malloc'd), "" when
// absent or null: protobuf's absent string, which the engine reads as
// "not given".
static char *
runreq_text(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	if (v == NULL || json_is_null(v)) {
		return (weft_xstrdup(""));
	}
	return (json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY));
}

// runreq_priority reads "priority" (sched): an integer in int32 range, or
// absent/null for the definition's default.
static bool
runreq_priority(weft_runreq *q, json_t *obj, char *err, size_t errlen)
{
	json_t *v = json_object_get(obj, "priority");

	if (v == NULL || json_is_null(v)) {
		return (true);
	}
	if (!json_is_integer(v) || json_integer_value(v) < INT32_MIN ||
	    json_integer_value(v) > INT32_MAX) {
		snprintf(err, errlen,
		    "\"priority\" must be an integer from %d to %d (higher "
		    "runs first)",
		    INT32_MIN, INT32_MAX);
		return (false);
	}
	q->rr.priority = (int32_t) json_integer_value(v);
	return (true);
}

// runreq_start_at reads "start_at" (a delayed start): epoch ms, or an
// RFC 3339 time with an offset or Z. Absent or null: 0 (now).
static bool
runreq_start_at(weft_runreq *q, json_t *obj, char *err, size_t errlen)
{
	json_t     *v = json_object_get(obj, "start_at");
	const char *s = json_string_value(v);
	int64_t     ms;

	if (v == NULL || json_is_null(v)) {
		return (true);
	}
	if (json_is_integer(v) && json_integer_value(v) >= 0 &&
	    json_integer_value(v) <= WEFT_CLOCK_MAX_MS) {
		q->rr.start_at_ms = json_integer_value(v);
		return (true);
	}
	// A string must be a time, not an age ("15m" means ago elsewhere).
	if (s != NULL && strchr(s, 'T') != NULL &&
	    weft_clock_parse_time(s, 0, &ms)) {
		q->rr.start_at_ms = ms;
		return (true);
	}
	snprintf(err, errlen,
	    "\"start_at\" must be an RFC 3339 time with an offset or Z "
	    "(\"2026-12-01T09:00:00Z\") or epoch milliseconds, got %s%.64s%s",
	    s != NULL ? "\"" : "", s != NULL ? s : "a non-time",
	    s != NULL ? "\"" : "");
	return (false);
}

// runreq_extras reads the members issue 14 added: "version",
// "idempotency_key" and "tags" (checked by the engine: tags.h).
static bool
runreq_extras(weft_runreq *q, json_t *obj, char *err, size_t errlen)
{
	json_t *ver = json_object_get(obj, "version");
	json_t *key = json_object_get(obj, "idempotency_key");

	if (ver != NULL && !json_is_null(ver)) {
		if (!json_is_integer(ver) || json_integer_value(ver) < 1 ||
		    json_integer_value(ver) > UINT32_MAX) {
			snprintf(err, errlen, "\"version\" must be a whole "
			                      "number from 1 (a registered "
			                      "version of the definition)");
			return (false);
		}
		q->rr.version = (uint32_t) json_integer_value(ver);
	}
	if (key != NULL && !json_is_null(key)) {
		if (!json_is_string(key)) {
			snprintf(err, errlen,
			    "\"idempotency_key\" must be a string");
			return (false);
		}
		q->rr.idempotency_key = (char *) json_string_value(key);
	}
	q->tags         = runreq_text(obj, "tags");
	q->rr.tags_json = q->tags;
	return (true);
}

// runreq_object says whether obj[key] is absent, null or an object: a
// run's input and params are objects (steps read ${input.x}), and a list
// or a number there used to reach the engine and fail later, further
// from what was wrong.
static bool
runreq_object(json_t *obj, const char *key, char *err, size_t errlen)
{
	json_t *v = json_object_get(obj, key);

	if (v == NULL || json_is_null(v) || json_is_object(v)) {
		return (true);
	}
	snprintf(err, errlen, "\"%s\" must be a JSON object, not %s", key,
	    json_is_array(v)    ? "a list"
	    : json_is_string(v) ? "a string"
	                        : "a number or boolean");
	return (false);
}

bool
weft_runreq_from_json(weft_runreq *q, json_t *obj, char *err, size_t errlen)
{
	json_t *name = json_object_get(obj, "definition");

	memset(q, 0, sizeof(*q));
	weft__run_request__init(&q->rr);
	if (!json_is_object(obj)) {
		snprintf(err, errlen, "a run request must be a JSON object "
		                      "{\"definition\": NAME, \"input\": {...}}");
		return (false);
	}
	if (name != NULL && !json_is_string(name)) {
		snprintf(err, errlen, "\"definition\" must be the name of a "
		                      "registered definition");
		return (false);
	}
	if (!weft_query_fields(obj, "definition,definition_json,input,params,"
	        "version,idempotency_key,tags,start_at,priority",
	        "a run request", err, errlen) ||
	    !runreq_object(obj, "input", err, errlen) ||
	    !runreq_object(obj, "params", err, errlen)) {
		return (false);
	}
	q->rr.definition = (char *) (name ? json_string_value(name) : "");
	if (json_object_get(obj, "definition_json") != NULL) {
		q->def                = runreq_text(obj, "definition_json");
		q->rr.definition_json = q->def;
	}
	if (!runreq_extras(q, obj, err, errlen)) {
		weft_runreq_fini(q);
		return (false);
	}
	q->input          = runreq_text(obj, "input");
	q->params         = runreq_text(obj, "params");
	q->rr.input_json  = q->input;
	q->rr.params_json = q->params;
	if (!runreq_start_at(q, obj, err, errlen) ||
	    !runreq_priority(q, obj, err, errlen)) {
		weft_runreq_fini(q);
		memset(q, 0, sizeof(*q));
		return (false);
	}
	return (true);
}

void
weft_runreq_fini(weft_runreq *q)
{
	free(q->def);
	free(q->input);
	free(q->params);
	free(q->tags);
	q->def = q->input = q->params = q->tags = NULL;
}
