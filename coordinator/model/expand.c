// expand: checking an expansion document and splicing it into a run's
// definition. The checks are def.c's: the expansion is parsed as a
// definition of its own, with stand-ins for what it may read.
#include "expand.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


uint32_t
weft_expand_depth(const char *id)
{
	uint32_t n = 0;

	for (; *id != '\0'; id++) {
		n += *id == '.';
	}
	return (n);
}

const char *
weft_expand_local(const char *id)
{
	const char *dot = strrchr(id, '.');

	return (dot != NULL ? dot + 1 : id);
}

// expand_fail writes "expansion of step X: <message>" into err.
static weft_err
expand_fail(char *err, size_t errlen, const char *x, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static weft_err
expand_fail(char *err, size_t errlen, const char *x, const char *fmt, ...)
{
	va_list ap;
	int     n = snprintf(err, errlen, "expansion of step %s: ", x);

	va_start(ap, fmt);
	if (n >= 0 && (size_t) n < errlen) {
		vsnprintf(err + n, errlen - (size_t) n, fmt, ap);
	}
	va_end(ap);
	return (WEFT_EDEF);
}

// expand_spliced counts the steps def already has from expansions.
static size_t
expand_spliced(const weft_def *def)
{
	size_t n = 0;

	for (size_t i = 0; i < def->nsteps; i++) {
		n += def->steps[i].parent >= 0;
	}
	return (n);
}

// expand_shape checks the document's shape and caps before the definition
// checks: an object with a non-empty "steps" array of objects, no
// "depends" (its names would need rewriting), ids not taken by what the
// expansion reads, within depth and size.
static weft_err
expand_shape(const weft_def *def, long x, const json_t *output,
    const json_t *readable, char *err, size_t errlen)
{
	const char *xid   = def->steps[x].id;
	json_t     *steps = json_object_get(output, "steps");
	uint32_t    depth = weft_expand_depth(xid) + 1;
	json_t     *js;
	size_t      i;

	if (!json_is_object(output)) {
		return (expand_fail(err, errlen, xid,
		    "the output is a JSON %s, not an object with \"steps\" (an exec "
		    "step's stdout must be that JSON)",
		    output == NULL ? "missing" : weft_def_type_name(output)));
	}
	if (steps == NULL) {
		return (expand_fail(err, errlen, xid,
		    "missing field \"steps\" (an array of steps)"));
	}
	if (!json_is_array(steps)) {
		return (expand_fail(err, errlen, xid,
		    "field \"steps\": expected an array of steps, got %s",
		    weft_def_type_name(steps)));
	}
	if (json_array_size(steps) == 0) {
		// Stand-ins keep def.c from seeing an empty definition.
		return (expand_fail(err, errlen, xid,
		    "field \"steps\": needs at least one step"));
	}
	if (depth > def->max_depth) {
		return (expand_fail(err, errlen, xid,
		    "depth %u exceeds the definition's max_depth of %u", depth,
		    def->max_depth));
	}
	if (json_array_size(steps) > WEFT_EXPAND_MAX_STEPS) {
		return (expand_fail(err, errlen, xid,
		    "%zu steps exceed the limit of %u steps per expansion",
		    json_array_size(steps), WEFT_EXPAND_MAX_STEPS));
	}
	if (expand_spliced(def) + json_array_size(steps) >
	    WEFT_EXPAND_MAX_TOTAL) {
		return (expand_fail(err, errlen, xid,
		    "%zu more steps exceed the limit of %u expansion steps "
		    "per run (%zu spliced so far)",
		    json_array_size(steps), WEFT_EXPAND_MAX_TOTAL,
		    expand_spliced(def)));
	}
	json_array_foreach (steps, i, js) {
		json_t *id = json_object_get(js, "id");
		if (json_is_object(js) &&
		    json_object_get(js, "depends") != NULL) {
			return (expand_fail(err, errlen, xid,
			    "steps[%zu]: field \"depends\" is not supported in "
			    "an expansion (use depends_on and trigger)", i));
		}
		if (json_is_string(id) &&
		    json_object_get(readable, json_string_value(id)) != NULL) {
			return (expand_fail(err, errlen, xid,
			    "steps[%zu]: id \"%s\" is taken by %s", i,
			    json_string_value(id),
			    json_is_true(json_object_get(readable,
			        json_string_value(id)))
			        ? "the expanding step"
			        : "a dependency of the expanding step"));
		}
	}
	return (WEFT_OK);
}

// expand_check_doc builds the definition def.c checks: the expansion's
// steps, each also depending on x (so that steps.<x> may be read), then
// a stand-in for x and each of its dependencies, under def's params.
static json_t *
expand_check_doc(const weft_def *def, long x, const json_t *steps)
{
	const weft_def_step *xs  = &def->steps[x];
	const char          *xl  = weft_expand_local(xs->id);
	json_t              *all = json_array();
	json_t              *js;
	json_t              *params = json_object_get(def->json, "params");
	size_t               i;

	json_array_foreach (steps, i, js) {
		json_t *c = json_deep_copy(js);
		json_t *deps;
		bool    has = false;
		size_t  k;
		json_t *d;
		if (json_is_object(c) &&
		    json_is_array(deps = json_object_get(c, "depends_on"))) {
			json_array_foreach (deps, k, d) {
				has = has || (json_is_string(d) &&
				    strcmp(json_string_value(d), xl) == 0);
			}
			if (!has) {
				json_array_append_new(deps, json_string(xl));
			}
		} else if (json_is_object(c) &&
		    json_object_get(c, "depends_on") == NULL) {
			json_object_set_new(c, "depends_on", json_pack("[s]", xl));
		}
		json_array_append_new(all, c);
	}
	json_array_append_new(all, json_pack("{s:s, s:s}", "id", xl, "type",
	    "expanding"));
	for (size_t k = 0; k < xs->ndeps; k++) {
		json_array_append_new(all, json_pack("{s:s, s:s}", "id",
		    weft_expand_local(def->steps[xs->deps[k]].id), "type",
		    "dependency"));
	}
	// "o" takes a reference: the definition's params are shared, a
	// fresh empty object is given away.
	return (json_pack("{s:s, s:o, s:o}", "name", def->name, "params",
	    params != NULL ? json_incref(params) : json_object(), "steps", all));
}

// expand_full rewrites the checked steps into the run's namespace: ids and
// depends_on in full, x itself dropped from depends_on.
static json_t *
expand_full(const weft_def *def, long x, const json_t *steps)
{
	const weft_def_step *xs  = &def->steps[x];
	json_t              *out = json_array();
	json_t              *js;
	size_t               i;
	char                 id[4096];

	json_array_foreach (steps, i, js) {
		json_t *c    = json_deep_copy(js);
		json_t *deps = json_object_get(c, "depends_on");
		json_t *full = json_array();
		json_t *d;
		size_t  k;
		snprintf(id, sizeof(id), "%s.%s", xs->id,
		    json_string_value(json_object_get(c, "id")));
		json_object_set_new(c, "id", json_string(id));
		json_array_foreach (deps, k, d) {
			const char *n = json_string_value(d);
			if (strcmp(n, weft_expand_local(xs->id)) == 0) {
				continue;
			}
			snprintf(id, sizeof(id), "%s.%s", xs->id, n);
			for (size_t j = 0; j < xs->ndeps; j++) {
				const char *dep = def->steps[xs->deps[j]].id;
				if (strcmp(weft_expand_local(dep), n) == 0) {
					snprintf(id, sizeof(id), "%s", dep);
				}
			}
			json_array_append_new(full, json_string(id));
		}
		json_object_set_new(c, "depends_on", full);
		json_array_append_new(out, c);
	}
	return (out);
}

weft_err
weft_expand_check(const weft_def *def, long x, const json_t *output,
    json_t **steps, char *err, size_t errlen)
{
	const weft_def_step *xs       = &def->steps[x];
	json_t              *readable = json_object();
	json_t              *doc;
	weft_def            *chk = NULL;
	weft_err             rv;
	char                 msg[1024];

	*steps = NULL;
	json_object_set_new(readable, weft_expand_local(xs->id), json_true());
	for (size_t k = 0; k < xs->ndeps; k++) {
		json_object_set_new(readable,
		    weft_expand_local(def->steps[xs->deps[k]].id), json_false());
	}
	rv = expand_shape(def, x, output, readable, err, errlen);
	json_decref(readable);
	if (rv != WEFT_OK) {
		return (rv);
	}
	doc = expand_check_doc(def, x, json_object_get(output, "steps"));
	char *text = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	rv = weft_def_parse(&chk, text, strlen(text), msg, sizeof(msg));
	free(text);
	if (rv != WEFT_OK) {
		return (expand_fail(err, errlen, xs->id, "%s", msg));
	}
	weft_def_free(chk);
	*steps = expand_full(def, x, json_object_get(output, "steps"));
	return (WEFT_OK);
}

weft_err
weft_expand_splice(const weft_def *def, const json_t *steps, weft_def **out,
    char *err, size_t errlen)
{
	json_t  *root = json_deep_copy(def->json);
	json_t  *all  = json_object_get(root, "steps");
	weft_err rv;

	json_array_extend(all, (json_t *) steps);
	rv = weft_def_parse_spliced(out, root, err, errlen);
	json_decref(root);
	return (rv);
}

weft_err
weft_expand_drop(const weft_def *def, const char *x_id, weft_def **out,
    char *err, size_t errlen)
{
	json_t  *root = json_deep_copy(def->json);
	json_t  *all  = json_object_get(root, "steps");
	json_t  *kept = json_array();
	json_t  *js;
	size_t   i, n = strlen(x_id), spliced = 0;
	weft_err rv = WEFT_OK;

	*out = NULL;
	json_array_foreach (all, i, js) {
		const char *id = json_string_value(json_object_get(js, "id"));
		if (strncmp(id, x_id, n) == 0 && id[n] == '.') {
			continue;
		}
		spliced += strchr(id, '.') != NULL;
		json_array_append(kept, js);
	}
	json_object_set_new(root, "steps", kept);
	if (spliced > 0) {
		rv = weft_def_parse_spliced(out, root, err, errlen);
	}
	json_decref(root);
	return (rv);
}
