// json_render_fuzz: libFuzzer target for "${path}" substitution, which
// renders users' `with` templates against step documents that carry other
// steps' outputs: weft_json_render of a template against a document, both
// from the input (template JSON, a NUL byte, document JSON; without the NUL
// the document is a fixed one). The template bytes are also rendered as one
// JSON string (when they are UTF-8), which puts arbitrary text straight into
// the "${...}" scanner. A template without "${" renders to itself.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_doc.h"
#include "jsonx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static json_t *fuzz_doc;

// fuzz_lookup looks path up in doc both ways: weft_json_path, and
// weft_json_get, which also takes "[*]" projections and must give the
// same value where the path has none.
static void
fuzz_lookup(json_t *doc, const char *path)
{
	json_t *a = weft_json_path(doc, path);
	json_t *b = weft_json_get(doc, path);

	if (strstr(path, "[*]") == NULL && a != b) {
		abort();
	}
	json_decref(b);
}

// fuzz_walk looks up every string of v as a path in doc: the lookups get
// the same user text the renderer extracts from "${...}".
static void
fuzz_walk(json_t *v, json_t *doc, int depth)
{
	const char *k;
	json_t     *x;
	size_t      i;

	if (depth > 32) {
		return;
	}
	if (json_is_string(v)) {
		fuzz_lookup(doc, json_string_value(v));
	} else if (json_is_object(v)) {
		json_object_foreach (v, k, x) {
			fuzz_lookup(doc, k);
			fuzz_walk(x, doc, depth + 1);
		}
	} else if (json_is_array(v)) {
		json_array_foreach (v, i, x) {
			fuzz_walk(x, doc, depth + 1);
		}
	}
}

// fuzz_render renders tmpl (borrowed) against doc and checks the result.
static void
fuzz_render(json_t *tmpl, json_t *doc)
{
	char    err[512];
	char   *text;
	json_t *out;

	memset(err, 'x', sizeof(err));
	out  = weft_json_render(tmpl, doc, err, sizeof(err));
	text = weft_json_dump(tmpl);
	if (out == NULL) {
		if (memchr(err, '\0', sizeof(err)) == NULL || err[0] == '\0') {
			abort();
		}
	} else {
		if (strstr(text, "${") == NULL && !json_equal(out, tmpl)) {
			abort();
		}
		free(weft_json_dump(out));
		json_decref(out);
	}
	free(text);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul  = memchr(data, '\0', size);
	size_t         tlen = nul ? (size_t) (nul - data) : size;
	json_t        *tmpl, *doc, *str;

	if (fuzz_doc == NULL) {
		fuzz_doc = fuzz_doc_new();
	}
	doc = nul != NULL ? json_loadb((const char *) nul + 1, size - tlen - 1,
	                        JSON_DECODE_ANY, NULL)
	                  : NULL;
	if (doc == NULL) {
		doc = json_incref(fuzz_doc);
	}
	if ((tmpl = json_loadb((const char *) data, tlen, JSON_DECODE_ANY,
	         NULL)) != NULL) {
		fuzz_render(tmpl, doc);
		fuzz_walk(tmpl, doc, 0);
		json_decref(tmpl);
	}
	// json_stringn refuses invalid UTF-8, which no parsed template holds.
	if ((str = json_stringn((const char *) data, tlen)) != NULL) {
		fuzz_render(str, doc);
		fuzz_lookup(doc, json_string_value(str));
		tmpl = json_pack("{s:O, s:[O, i]}", "k", str, "a", str, 1);
		fuzz_render(tmpl, doc);
		json_decref(tmpl);
		json_decref(str);
	}
	json_decref(doc);
	return (0);
}
