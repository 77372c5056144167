// jsonx: helpers over jansson for the document every step reads: dotted
// paths ("steps.fetch.output.files.0") and "${path}" substitution.
#ifndef WEFT_JSONX_H
#define WEFT_JSONX_H

#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

// weft_json_path returns the value at a dotted path in root (borrowed
// reference, NULL when absent). Array elements are addressed by index.
json_t *weft_json_path(json_t *root, const char *path);

// weft_json_get is weft_json_path returning a new reference, where a
// segment may end in "[*]": the rest of the path is then taken from each
// element of the array there, giving an array in element order (null where
// an element lacks it): "steps.m.output[*].score". NULL when absent, or when
// what precedes a "[*]" is not an array.
json_t *weft_json_get(json_t *root, const char *path);

// weft_json_render returns a new reference: tmpl with every "${path}" inside
// strings replaced by the value at path in doc. A string that is exactly
// "${path}" takes the value with its type; inside longer strings, values are
// inserted as text (strings bare, everything else as compact JSON). A path
// that resolves to nothing is an error: NULL is returned and err (errlen
// bytes) says which.
json_t *weft_json_render(json_t *tmpl, json_t *doc, char *err, size_t errlen);

// weft_json_dump returns compact JSON text of v (malloc'd; free()). NULL v
// gives "null".
char *weft_json_dump(const json_t *v);

// weft_json_put_string writes str to f as a JSON string, quoted and escaped
// as weft_json_dump escapes it (", \\, and control characters; UTF-8 as it
// is): for JSON text written piece by piece.
void weft_json_put_string(FILE *f, const char *str);

// weft_json_dump_field returns compact JSON text of obj[key] (malloc'd), or
// NULL when the key is absent.
char *weft_json_dump_field(const json_t *obj, const char *key);

// weft_json_parse_cell parses text as JSON (any value); NULL text or bad
// JSON give JSON null. New reference.
json_t *weft_json_parse_cell(const char *text);

#endif
