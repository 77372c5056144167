// tags: checking a run's tag map and parsing "key=value" filters.
#include <stdio.h>
#include <string.h>

#include "tags.h"

// tags_key_ok checks a key's length and characters; false with err set.
static bool
tags_key_ok(const char *k, size_t n, char *err, size_t errlen)
{
	if (n == 0 || n > WEFT_TAG_KEY_MAX) {
		snprintf(err, errlen,
		    "tag key \"%.*s\": must be 1-%d bytes, got %zu", 80,
		    k, WEFT_TAG_KEY_MAX, n);
		return (false);
	}
	for (size_t i = 0; i < n; i++) {
		char c = k[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		        (c >= '0' && c <= '9') || c == '_' || c == '.' ||
		        c == '-' || c == '/')) {
			snprintf(err, errlen,
			    "tag key \"%.*s\": only A-Z a-z 0-9 _ . - / are "
			    "allowed (byte %zu is not)",
			    (int) n, k, i + 1);
			return (false);
		}
	}
	return (true);
}

static bool
tags_value_ok(const char *k, const char *v, size_t n, char *err,
    size_t errlen)
{
	if (n > WEFT_TAG_VALUE_MAX || strlen(v) != n) {
		snprintf(err, errlen,
		    "tag \"%s\": the value must be at most %d bytes without "
		    "NUL, got %zu bytes",
		    k, WEFT_TAG_VALUE_MAX, n);
		return (false);
	}
	return (true);
}

bool
weft_tags_check(json_t *tags, char *err, size_t errlen)
{
	const char *k;
	json_t     *v;

	if (!json_is_object(tags)) {
		snprintf(err, errlen,
		    "tags: must be an object of strings {\"key\": \"value\"}");
		return (false);
	}
	if (json_object_size(tags) > WEFT_TAGS_MAX) {
		snprintf(err, errlen, "tags: %zu tags, over the limit of %d",
		    json_object_size(tags), WEFT_TAGS_MAX);
		return (false);
	}
	json_object_foreach (tags, k, v) {
		if (!tags_key_ok(k, strlen(k), err, errlen)) {
			return (false);
		}
		if (!json_is_string(v)) {
			snprintf(err, errlen,
			    "tag \"%s\": the value must be a string", k);
			return (false);
		}
		if (!tags_value_ok(k, json_string_value(v),
		        json_string_length(v), err, errlen)) {
			return (false);
		}
	}
	return (true);
}

bool
weft_tag_parse(const char *kv, char *key, size_t klen, char *value,
    size_t vlen, char *err, size_t errlen)
{
	const char *eq = strchr(kv, '=');
	size_t      n;

	if (eq == NULL) {
		snprintf(err, errlen, "tag \"%s\": use key=value", kv);
		return (false);
	}
	n = (size_t) (eq - kv);
	if (!tags_key_ok(kv, n, err, errlen)) {
		return (false);
	}
	if (!tags_value_ok(kv, eq + 1, strlen(eq + 1), err, errlen)) {
		return (false);
	}
	snprintf(key, klen, "%.*s", (int) n, kv);
	snprintf(value, vlen, "%s", eq + 1);
	return (true);
}
