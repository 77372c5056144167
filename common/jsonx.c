// jsonx: path lookup and template rendering over jansson values.
#include "jsonx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

json_t *
weft_json_path(json_t *root, const char *path)
{
	json_t     *cur = root;
	const char *p   = path;
	char        key[256];

	while (cur != NULL && *p != '\0') {
		const char *dot = strchr(p, '.');
		size_t      len = dot ? (size_t) (dot - p) : strlen(p);
		if (len == 0 || len >= sizeof(key)) {
			return (NULL);
		}
		memcpy(key, p, len);
		key[len] = '\0';
		if (json_is_object(cur)) {
			cur = json_object_get(cur, key);
		} else if (json_is_array(cur)) {
			char *end;
			long  idx = strtol(key, &end, 10);
			if (*end != '\0' || idx < 0) {
				return (NULL);
			}
			cur = json_array_get(cur, (size_t) idx);
		} else {
			return (NULL);
		}
		p += len;
		if (*p == '.') {
			p++;
		}
	}
	return (cur);
}

json_t *
weft_json_get(json_t *root, const char *path)
{
	const char *star = strstr(path, "[*]");
	char       *head;
	const char *rest;
	json_t     *at, *out, *el;
	size_t      k;

	if (star == NULL) {
		json_t *v = weft_json_path(root, path);
		return (v != NULL ? json_incref(v) : NULL);
	}
	head = weft_xstrndup(path, (size_t) (star - path));
	at   = weft_json_path(root, head);
	free(head);
	rest = star + 3;
	if (*rest == '.') {
		rest++;
	} else if (*rest != '\0' && strncmp(rest, "[*]", 3) != 0) {
		return (NULL); // "a[*]b": not a path
	}
	if (!json_is_array(at)) {
		return (NULL);
	}
	out = json_array();
	json_array_foreach (at, k, el) {
		json_t *v = weft_json_get(el, rest);
		json_array_append_new(out, v != NULL ? v : json_null());
	}
	return (out);
}

// render_string expands the ${...} references of one string.
static json_t *
render_string(const char *s, json_t *doc, char *err, size_t errlen)
{
	const char *open = strstr(s, "${");
	char       *out  = NULL;
	size_t      len  = 0;
	FILE       *f;

	if (open == NULL) {
		return (json_string(s));
	}
	// Whole-string reference keeps the value's type.
	if (open == s && s[strlen(s) - 1] == '}' && strchr(s + 2, '}') ==
	    s + strlen(s) - 1) {
		char   *path = weft_xstrndup(s + 2, strlen(s) - 3);
		json_t *v    = weft_json_get(doc, path);
		if (v == NULL) {
			snprintf(err, errlen, "reference ${%s} resolves to nothing",
			    path);
			free(path);
			return (NULL);
		}
		free(path);
		return (v);
	}
	f = open_memstream(&out, &len);
	while (open != NULL) {
		const char *close = strchr(open, '}');
		char       *path;
		json_t     *v;
		if (close == NULL) {
			break;
		}
		fwrite(s, 1, (size_t) (open - s), f);
		path = weft_xstrndup(open + 2, (size_t) (close - open - 2));
		v    = weft_json_get(doc, path);
		if (v == NULL) {
			snprintf(err, errlen, "reference ${%s} resolves to nothing",
			    path);
			free(path);
			fclose(f);
			free(out);
			return (NULL);
		}
		free(path);
		if (json_is_string(v)) {
			fputs(json_string_value(v), f);
		} else {
			char *t = weft_json_dump(v);
			fputs(t, f);
			free(t);
		}
		json_decref(v);
		s    = close + 1;
		open = strstr(s, "${");
	}
	fputs(s, f);
	fclose(f);
	json_t *r = json_string(out);
	free(out);
	return (r);
}

json_t *
weft_json_render(json_t *tmpl, json_t *doc, char *err, size_t errlen)
{
	if (json_is_string(tmpl)) {
		return (render_string(json_string_value(tmpl), doc, err, errlen));
	}
	if (json_is_array(tmpl)) {
		json_t *out = json_array();
		size_t  i;
		json_t *v;
		json_array_foreach (tmpl, i, v) {
			json_t *r = weft_json_render(v, doc, err, errlen);
			if (r == NULL) {
				json_decref(out);
				return (NULL);
			}
			json_array_append_new(out, r);
		}
		return (out);
	}
	if (json_is_object(tmpl)) {
		json_t     *out = json_object();
		const char *k;
		json_t     *v;
		json_object_foreach (tmpl, k, v) {
			json_t *r = weft_json_render(v, doc, err, errlen);
			if (r == NULL) {
				json_decref(out);
				return (NULL);
			}
			json_object_set_new(out, k, r);
		}
		return (out);
	}
	return (json_incref(tmpl));
}

void
weft_json_put_string(FILE *f, const char *str)
{
	// Upper case, as jansson writes \u001B.
	static const char    hex[] = "0123456789ABCDEF";
	const unsigned char *c     = (const unsigned char *) str;

	putc('"', f);
	for (;;) {
		// The run of characters that need no escape, in one write.
		const unsigned char *run = c;
		while (*c >= 0x20 && *c != '"' && *c != '\\') {
			c++;
		}
		fwrite(run, 1, (size_t) (c - run), f);
		switch (*c) {
		case '\0':
			putc('"', f);
			return;
		case '"':
			fputs("\\\"", f);
			break;
		case '\\':
			fputs("\\\\", f);
			break;
		case '\b':
			fputs("\\b", f);
			break;
		case '\f':
			fputs("\\f", f);
			break;
		case '\n':
			fputs("\\n", f);
			break;
		case '\r':
			fputs("\\r", f);
			break;
		case '\t':
			fputs("\\t", f);
			break;
		default:
			fprintf(f, "\\u00%c%c", hex[*c >> 4], hex[*c & 15]);
		}
		c++;
	}
}

char *
weft_json_dump(const json_t *v)
{
	char *s;
	if (v == NULL) {
		return (weft_xstrdup("null"));
	}
	// Most events carry no data (ready, dispatched, started): their
	// "{}" needs none of the dumper's buffers.
	if (json_is_object(v) && json_object_size(v) == 0) {
		return (weft_xstrdup("{}"));
	}
	s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	if (s == NULL) {
		return (weft_xstrdup("null"));
	}
	return (s);
}

char *
weft_json_dump_field(const json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);
	return (v != NULL ? weft_json_dump(v) : NULL);
}

json_t *
weft_json_parse_cell(const char *text)
{
	json_t *v;
	// Most steps' outputs are null: no parser for that (its setup is
	// most of the cost of a value this small).
	if (text == NULL || strcmp(text, "null") == 0) {
		return (json_null());
	}
	v = json_loads(text, JSON_DECODE_ANY, NULL);
	return (v != NULL ? v : json_null());
}
