// secret: mask a run's secret values, and find them in recorded text.
//
// Masking replaces values by where they are (declared params, the input's
// "secrets" object). Scrubbing finds the same values wherever a step put
// them (an output that echoes a token, an error quoting it): a string
// search, so it catches exact copies only, not encodings of a secret.
#include "secret.h"

#include <stdlib.h>
#include <string.h>

#include "alloc.h"

bool
weft_secret_param(const weft_def *def, const char *name)
{
	json_t *spec = json_object_get(def->params, name);

	return (json_is_true(json_object_get(spec, "secret")));
}

bool
weft_secret_present(
    const weft_def *def, const json_t *input, const json_t *params)
{
	const char *name;
	json_t     *v;

	if (json_object_get(input, WEFT_SECRET_INPUT) != NULL) {
		return (true);
	}
	json_object_foreach ((json_t *) params, name, v) {
		if (weft_secret_param(def, name)) {
			return (true);
		}
	}
	return (false);
}

json_t *
weft_secret_mask(const json_t *doc, const weft_def *def)
{
	json_t     *copy, *params, *input, *sec, *v;
	const char *name;

	if (doc == NULL) {
		return (NULL);
	}
	copy = json_deep_copy(doc);
	if ((params = json_object_get(copy, "params")) != NULL) {
		json_object_foreach (params, name, v) {
			if (weft_secret_param(def, name)) {
				json_object_set_new(
				    params, name, json_string(WEFT_SECRET_MASK));
			}
		}
	}
	input = json_object_get(copy, "input");
	if ((sec = json_object_get(input, WEFT_SECRET_INPUT)) == NULL) {
		return (copy);
	}
	if (!json_is_object(sec)) {
		json_object_set_new(
		    input, WEFT_SECRET_INPUT, json_string(WEFT_SECRET_MASK));
		return (copy);
	}
	json_object_foreach (sec, name, v) {
		json_object_set_new(sec, name, json_string(WEFT_SECRET_MASK));
	}
	return (copy);
}

// secret_collect adds the string leaves of v worth searching for to set
// (an object used as a set of strings).
static void
secret_collect(const json_t *v, json_t *set)
{
	const char *k;
	json_t     *m;
	size_t      i;

	if (v == NULL) {
		return;
	}
	switch (json_typeof(v)) {
	case JSON_STRING:
		if (json_string_length(v) >= WEFT_SECRET_MIN_SCRUB &&
		    strcmp(json_string_value(v), WEFT_SECRET_MASK) != 0 &&
		    strlen(json_string_value(v)) == json_string_length(v)) {
			json_object_set_new(set, json_string_value(v), json_null());
		}
		break;
	case JSON_OBJECT:
		json_object_foreach ((json_t *) v, k, m) {
			secret_collect(m, set);
		}
		break;
	case JSON_ARRAY:
		json_array_foreach (v, i, m) {
			secret_collect(m, set);
		}
		break;
	default:
		break; // numbers, booleans, null: not searched for
	}
}

static int
secret_longest_first(const void *a, const void *b)
{
	size_t la = strlen(*(const char *const *) a);
	size_t lb = strlen(*(const char *const *) b);

	if (la != lb) {
		return (la < lb ? 1 : -1);
	}
	return (strcmp(*(const char *const *) a, *(const char *const *) b));
}

json_t *
weft_secret_values(
    const weft_def *def, const json_t *input, const json_t *params)
{
	json_t      *set = json_object();
	json_t      *v, *out;
	const char  *name;
	const char **keys;
	size_t       n = 0;

	secret_collect(json_object_get(input, WEFT_SECRET_INPUT), set);
	json_object_foreach ((json_t *) params, name, v) {
		if (weft_secret_param(def, name)) {
			secret_collect(v, set);
		}
	}
	if (json_object_size(set) == 0) {
		json_decref(set);
		return (NULL);
	}
	keys = weft_xalloc(json_object_size(set) * sizeof(*keys));
	json_object_foreach (set, name, v) {
		keys[n++] = name;
	}
	qsort(keys, n, sizeof(*keys), secret_longest_first);
	out = json_array();
	for (size_t i = 0; i < n; i++) {
		json_array_append_new(out, json_string(keys[i]));
	}
	free(keys);
	json_decref(set);
	return (out);
}

char *
weft_secret_scrub_text(const char *text, const json_t *values)
{
	char  *cur = NULL; // the text so far, once something matched
	size_t i;
	json_t *v;

	if (text == NULL) {
		return (NULL);
	}
	json_array_foreach (values, i, v) {
		const char *s   = json_string_value(v);
		const char *src = cur != NULL ? cur : text;
		const char *p;
		size_t      sl, n = 0, len;
		char       *dst, *w;

		if (s == NULL || (sl = strlen(s)) == 0 ||
		    strstr(src, s) == NULL) {
			continue;
		}
		for (p = src; (p = strstr(p, s)) != NULL; p += sl) {
			n++;
		}
		len = strlen(src) - n * sl + n * strlen(WEFT_SECRET_MASK);
		dst = w = weft_xalloc(len + 1);
		for (p = src;;) {
			const char *hit = strstr(p, s);
			size_t      pre = hit != NULL ? (size_t) (hit - p) : strlen(p);
			memcpy(w, p, pre);
			w += pre;
			if (hit == NULL) {
				break;
			}
			memcpy(w, WEFT_SECRET_MASK, strlen(WEFT_SECRET_MASK));
			w += strlen(WEFT_SECRET_MASK);
			p = hit + sl;
		}
		*w = '\0';
		free(cur);
		cur = dst;
	}
	return (cur);
}

// secret_scrub_in changes v, a private deep copy, in place; true when
// something was replaced.
static bool
secret_scrub_in(json_t *v, const json_t *values)
{
	const char *k;
	json_t     *m;
	size_t      i;
	bool        hit = false;
	char       *s;

	switch (json_typeof(v)) {
	case JSON_STRING:
		if ((s = weft_secret_scrub_text(json_string_value(v), values)) !=
		    NULL) {
			json_string_set(v, s);
			free(s);
			return (true);
		}
		return (false);
	case JSON_OBJECT:
		json_object_foreach (v, k, m) {
			hit = secret_scrub_in(m, values) || hit;
		}
		return (hit);
	case JSON_ARRAY:
		json_array_foreach (v, i, m) {
			hit = secret_scrub_in(m, values) || hit;
		}
		return (hit);
	default:
		return (false);
	}
}

// secret_found reports whether a string of v, at any depth, holds one of
// values: the common case (nothing to mask) then costs no copy.
static bool
secret_found(const json_t *v, const json_t *values)
{
	const char *k;
	json_t     *m, *s;
	size_t      i;

	switch (json_typeof(v)) {
	case JSON_STRING:
		json_array_foreach (values, i, s) {
			if (json_string_value(s) != NULL &&
			    strstr(json_string_value(v), json_string_value(s)) !=
			        NULL) {
				return (true);
			}
		}
		return (false);
	case JSON_OBJECT:
		json_object_foreach ((json_t *) v, k, m) {
			if (secret_found(m, values)) {
				return (true);
			}
		}
		return (false);
	case JSON_ARRAY:
		json_array_foreach (v, i, m) {
			if (secret_found(m, values)) {
				return (true);
			}
		}
		return (false);
	default:
		return (false);
	}
}

json_t *
weft_secret_scrub(json_t *v, const json_t *values)
{
	json_t *copy;

	if (v == NULL) {
		return (NULL);
	}
	if (json_array_size(values) == 0 || !secret_found(v, values)) {
		return (json_incref(v));
	}
	copy = json_deep_copy(v);
	secret_scrub_in(copy, values);
	return (copy);
}
