// runreq_fuzz: libFuzzer target for a run request as JSON (the body of POST
// /api/v1/runs, an item of /runs/batch, a line of weft submit) and the
// issue-14 members it carries: weft_runreq_from_json on arbitrary bytes,
// then weft_tags_check on its tags and weft_tag_parse ("key=value", the
// filters) on the raw bytes. Checks: no crash or leak, a refusal says why,
// accepted tags keep every bound (tags.h), parsing is deterministic.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "runreq.h"
#include "tags.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

// fuzz_tags_bounds aborts unless tags (accepted) keeps the documented bounds.
static void
fuzz_tags_bounds(json_t *tags)
{
	const char *k;
	json_t     *v;

	if (json_object_size(tags) > WEFT_TAGS_MAX) {
		abort();
	}
	json_object_foreach (tags, k, v) {
		if (strlen(k) == 0 || strlen(k) > WEFT_TAG_KEY_MAX ||
		    strchr(k, '=') != NULL || !json_is_string(v) ||
		    json_string_length(v) > WEFT_TAG_VALUE_MAX) {
			abort();
		}
	}
}

static void
fuzz_tag_parse(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	char  k[WEFT_TAG_KEY_MAX + 1], v[WEFT_TAG_VALUE_MAX + 1], err[512];

	if (s == NULL) {
		abort();
	}
	memcpy(s, data, size);
	s[size] = '\0';
	err[0]  = '\0';
	if (weft_tag_parse(s, k, sizeof(k), v, sizeof(v), err, sizeof(err))) {
		// The key and value put back together are the input.
		size_t kl = strlen(k);
		if (kl == 0 || strncmp(s, k, kl) != 0 || s[kl] != '=' ||
		    strcmp(s + kl + 1, v) != 0) {
			abort();
		}
	} else if (err[0] == '\0') {
		abort(); // a refusal must say why
	}
	free(s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t     *obj = json_loadb((const char *) data, size, 0, NULL);
	weft_runreq q;
	char        err[512] = "";

	fuzz_tag_parse(data, size);
	if (obj == NULL) {
		return (0);
	}
	if (!weft_runreq_from_json(&q, obj, err, sizeof(err))) {
		if (err[0] == '\0') {
			abort();
		}
		json_decref(obj);
		return (0);
	}
	if (q.rr.tags_json != NULL && q.rr.tags_json[0] != '\0') {
		json_t *tags = json_loads(q.rr.tags_json, JSON_DECODE_ANY, NULL);
		char    e1[512] = "", e2[512] = "";
		bool    a = weft_tags_check(tags, e1, sizeof(e1));
		bool    b = weft_tags_check(tags, e2, sizeof(e2));
		if (a != b || strcmp(e1, e2) != 0 || (!a && e1[0] == '\0')) {
			abort();
		}
		if (a) {
			fuzz_tags_bounds(tags);
		}
		json_decref(tags);
	}
	weft_runreq_fini(&q);
	json_decref(obj);
	return (0);
}
