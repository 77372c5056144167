// runreq: a run request written as JSON into the protobuf RunRequest.
// The engine does every check that needs a definition or the store; this
// only refuses what cannot be put into the message at all.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
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
	q->rr.priority     = (int32_t) json_integer_value(v);
	return (true);
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
	q->rr.definition = (char *) (name ? json_string_value(name) : "");
	if (json_object_get(obj, "definition_json") != NULL) {
		q->def                = runreq_text(obj, "definition_json");
		q->rr.definition_json = q->def;
	}
	q->input          = runreq_text(obj, "input");
	q->params         = runreq_text(obj, "params");
	q->rr.input_json  = q->input;
	q->rr.params_json = q->params;
	if (!runreq_priority(q, obj, err, errlen)) {
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
	q->def = q->input = q->params = NULL;
}
