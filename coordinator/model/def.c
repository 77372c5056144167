// def: parse and validate workflow definitions and compile their DAG.
//
// Parsing is linear in the size of the definition: step ids are looked up in
// a jansson object used as a hash, duplicate dependencies are found with a
// per-step stamp array, and the cycle check is an iterative DFS.
#include "def.h"

#include <limits.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "clock.h"
#include "depends.h"
#include "expr.h"

// Fields a definition may carry; anything else is an error, never ignored.
static const char *const def_top_fields[] = { "name", "version", "description",
	"params", "timeout_ms", "steps", "retain", "schedule_timeout_ms",
	"fail_fast", "status_from", "max_depth",
	"priority", "max_concurrent_runs", "concurrency", // sched
	NULL };
static const char *const def_param_fields[] = { "type", "default", "required",
	"description", "secret", "enum", "minimum", "maximum", "pattern", NULL };
static const char *const def_param_types[]  = { "string", "int", "number",
	 "bool", "object", "array", "any", NULL };
static const char *const def_step_fields[]  = { "id", "type", "with",
	 "depends_on", "retry", "timeout_ms", "trigger", "when", "map",
	 "max_parallel", "map_tolerate",
	 "heartbeat_timeout_ms", "schedule_timeout_ms", "depends", "expand",
	 "priority", // sched
	 NULL };
static const char *const def_retry_fields[]  = { "max_attempts", "backoff",
	 "initial_ms", "max_ms", "jitter", NULL };
static const char *const def_backoffs[] = { "fixed", "linear", "exponential",
	NULL };
// In enum weft_trigger order.
static const char *const def_triggers[] = { "all_success", "all_done",
	"one_success", "none_failed", "all_failed", "one_failed", "one_done",
	"none_failed_min_one_success", "none_skipped", "all_skipped", NULL };
// In enum weft_status_from order.
static const char *const def_status_from[] = { "all", "leaves", NULL };

#define DEF_NAME_MAX 128

// Where an error is, and the caller's buffer for it.
struct def_ctx {
	char  *err;
	size_t errlen;
	char   where[192]; // "definition", "params.x", "steps[3] (id \"x\")"
};

struct def_parser {
	weft_def      *def;
	struct def_ctx c;
	uint32_t      *stamp; // per step: 1 + index of the step that marked it
};

// ---- small helpers ----

// def_fail writes "<where>: <message>" and returns WEFT_EDEF.
static weft_err
def_fail(const struct def_ctx *c, const char *fmt, ...)
{
	va_list ap;
	int     n = snprintf(c->err, c->errlen, "%s: ", c->where);

	if (n >= 0 && (size_t) n < c->errlen) {
		va_start(ap, fmt);
		vsnprintf(c->err + n, c->errlen - (size_t) n, fmt, ap);
		va_end(ap);
	}
	return (WEFT_EDEF);
}

// def_quote copies user text s into buf for an error message: at most 64
// bytes, with quotes, backslashes and control bytes escaped so the message
// stays on one line.
static const char *
def_quote(char *buf, size_t n, const char *s)
{
	size_t o = 0;

	for (size_t i = 0; s[i] != '\0' && o + 8 < n; i++) {
		unsigned char ch = (unsigned char) s[i];
		if (i == 64) {
			o += (size_t) snprintf(buf + o, n - o, "...");
			break;
		}
		if (ch == '"' || ch == '\\') {
			o += (size_t) snprintf(buf + o, n - o, "\\%c", ch);
		} else if (ch < 0x20 || ch == 0x7f) {
			o += (size_t) snprintf(buf + o, n - o, "\\x%02x", ch);
		} else {
			buf[o++] = (char) ch;
		}
	}
	buf[o] = '\0';
	return (buf);
}

static bool
def_in(const char *const *list, const char *s)
{
	for (size_t i = 0; list[i] != NULL; i++) {
		if (strcmp(list[i], s) == 0) {
			return (true);
		}
	}
	return (false);
}

// def_index_of returns the position of s in list, or -1.
static int
def_index_of(const char *const *list, const char *s)
{
	for (int i = 0; list[i] != NULL; i++) {
		if (strcmp(list[i], s) == 0) {
			return (i);
		}
	}
	return (-1);
}

// def_name_ok: s[0..n) has 1..128 bytes, each alphanumeric or in extra.
static bool
def_name_ok(const char *s, size_t n, const char *extra)
{
	if (n == 0 || n > DEF_NAME_MAX) {
		return (false);
	}
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		        (ch >= '0' && ch <= '9') ||
		        (ch != '\0' && strchr(extra, ch) != NULL))) {
			return (false);
		}
	}
	return (true);
}

// def_str_ok is def_name_ok for a JSON string (embedded NULs fail).
static bool
def_str_ok(const json_t *v, const char *extra)
{
	return (
	    def_name_ok(json_string_value(v), json_string_length(v), extra));
}

// def_type_name names the JSON type of v the way definitions spell types.
static const char *def_type_name(const json_t *v);

const char *
weft_def_type_name(const json_t *v)
{
	return (def_type_name(v));
}

static const char *
def_type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return ("object");
	case JSON_ARRAY:
		return ("array");
	case JSON_STRING:
		return ("string");
	case JSON_INTEGER:
		return ("int");
	case JSON_REAL:
		return ("number");
	case JSON_TRUE:
	case JSON_FALSE:
		return ("bool");
	default:
		return ("null");
	}
}

// def_type_matches: v is acceptable for a parameter or field of type, one
// of def_param_types ("number" takes integers too, "any" takes anything).
static bool
def_type_matches(const char *type, const json_t *v)
{
	if (strcmp(type, "any") == 0) {
		return (true);
	}
	if (strcmp(type, "number") == 0) {
		return (json_is_number(v));
	}
	return (strcmp(type, def_type_name(v)) == 0);
}

// ---- typed field access ----

// def_field sets *out to obj[key] (borrowed, NULL when absent) after checking
// its type. label is how the field is named in messages ("retry.max_ms");
// its last component is the key.
static weft_err
def_field(const struct def_ctx *c, json_t *obj, const char *label,
    const char *want, bool required, json_t **out)
{
	const char *dot = strrchr(label, '.');
	json_t     *v   = json_object_get(obj, dot ? dot + 1 : label);

	*out = v;
	if (v == NULL) {
		return (required
		        ? def_fail(c, "missing required field \"%s\"", label)
		        : WEFT_OK);
	}
	if (!def_type_matches(want, v)) {
		return (def_fail(c, "field \"%s\": expected %s, got %s", label,
		    want, def_type_name(v)));
	}
	return (WEFT_OK);
}

// def_get_int reads an optional integer in [lo, hi] into *out (unchanged
// when absent).
static weft_err
def_get_int(const struct def_ctx *c, json_t *obj, const char *label,
    json_int_t lo, json_int_t hi, json_int_t *out)
{
	json_t  *v;
	weft_err rv;

	if ((rv = def_field(c, obj, label, "int", false, &v)) != WEFT_OK ||
	    v == NULL) {
		return (rv);
	}
	if (hi == LLONG_MAX && json_integer_value(v) < lo) {
		return (def_fail(c,
		    "field \"%s\": must be >= %" JSON_INTEGER_FORMAT
		    ", got %" JSON_INTEGER_FORMAT,
		    label, lo, json_integer_value(v)));
	}
	if (json_integer_value(v) < lo || json_integer_value(v) > hi) {
		return (def_fail(c,
		    "field \"%s\": must be between %" JSON_INTEGER_FORMAT
		    " and %" JSON_INTEGER_FORMAT ", got %" JSON_INTEGER_FORMAT,
		    label, lo, hi, json_integer_value(v)));
	}
	*out = json_integer_value(v);
	return (WEFT_OK);
}

// def_get_u32 is def_get_int for uint32_t fields (milliseconds, counts).
static weft_err
def_get_u32(const struct def_ctx *c, json_t *obj, const char *label,
    uint32_t lo, uint32_t hi, uint32_t *out)
{
	json_int_t v = *out;
	weft_err   rv;

	if ((rv = def_get_int(c, obj, label, lo, hi, &v)) == WEFT_OK) {
		*out = (uint32_t) v;
	}
	return (rv);
}

// def_get_enum reads an optional string that must be one of list, storing
// its position in *out (unchanged when absent).
static weft_err
def_get_enum(const struct def_ctx *c, json_t *obj, const char *label,
    const char *const *list, int *out)
{
	json_t  *v;
	weft_err rv;
	char     q[80];
	char     want[160] = "";

	if ((rv = def_field(c, obj, label, "string", false, &v)) != WEFT_OK ||
	    v == NULL) {
		return (rv);
	}
	if ((*out = def_index_of(list, json_string_value(v))) >= 0) {
		return (WEFT_OK);
	}
	for (size_t i = 0; list[i] != NULL; i++) {
		strncat(want, i ? ", " : "", sizeof(want) - strlen(want) - 1);
		strncat(want, list[i], sizeof(want) - strlen(want) - 1);
	}
	return (
	    def_fail(c, "field \"%s\": unknown value \"%s\" (want one of %s)",
	        label, def_quote(q, sizeof(q), json_string_value(v)), want));
}

// def_check_fields rejects keys of obj outside allowed (and reserved ones
// with their own message); prefix names the object ("retry.").
static weft_err
def_check_fields(const struct def_ctx *c, json_t *obj, const char *prefix,
    const char *const *allowed, const char *const *reserved)
{
	const char *key;
	json_t     *v;
	char        q[80];

	json_object_foreach (obj, key, v) {
		if (reserved != NULL && def_in(reserved, key)) {
			return (
			    def_fail(c, "field \"%s%s\" is not supported yet",
			        prefix, key));
		}
		if (!def_in(allowed, key)) {
			return (def_fail(c, "unknown field \"%s%s\"", prefix,
			    def_quote(q, sizeof(q), key)));
		}
	}
	return (WEFT_OK);
}

// ---- parameter rules: enum, minimum, maximum, pattern ----

// def_num_cmp orders two JSON numbers; integers compare exactly (a
// double loses precision past 2^53).
static int
def_num_cmp(const json_t *a, const json_t *b)
{
	if (json_is_integer(a) && json_is_integer(b)) {
		json_int_t x = json_integer_value(a), y = json_integer_value(b);
		return ((x > y) - (x < y));
	}
	double x = json_number_value(a), y = json_number_value(b);
	return ((x > y) - (x < y));
}

// def_value_text writes v for a message into buf: a string quoted and
// escaped (def_quote), anything else as compact JSON cut to fit.
static const char *
def_value_text(char *buf, size_t n, const json_t *v)
{
	if (json_is_string(v)) {
		char q[80];
		bool nul = strlen(json_string_value(v)) != json_string_length(v);
		snprintf(buf, n, "\"%s%s\"",
		    def_quote(q, sizeof(q), json_string_value(v)),
		    nul ? "\\x00..." : "");
	} else {
		char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		snprintf(buf, n, "%s", t != NULL ? t : "?");
		free(t);
	}
	return (buf);
}

// A param's "pattern", compiled once with its definition: compiling costs
// more than the rest of binding a run's params together.
struct def_pattern {
	const json_t *spec; // the param's spec object (in def->params)
	regex_t      *re;   // compiled (owned)
};

// def_pattern_find returns the compiled pattern of param spec, NULL if
// it has none.
static const regex_t *
def_pattern_find(const weft_def *def, const json_t *spec)
{
	for (size_t i = 0; i < def->npatterns; i++) {
		if (def->patterns[i].spec == spec) {
			return (def->patterns[i].re);
		}
	}
	return (NULL);
}

// def_pattern_match says string v matches the param's compiled pattern
// re, searched unanchored like JSON Schema's "pattern". A string with a
// NUL never matches: regexec would see only its head.
static bool
def_pattern_match(const regex_t *re, const json_t *v)
{
	return (re != NULL &&
	    strlen(json_string_value(v)) == json_string_length(v) &&
	    regexec(re, json_string_value(v), 0, NULL, 0) == 0);
}

// def_param_check applies the rules of spec (enum, minimum, maximum,
// pattern; already validated) to value v and fails naming the rule:
// "<what>must be <= 10 (maximum), got 12". what is "" for a given value
// or "field \"default\": "; a secret's value is never quoted back.
static weft_err
def_param_check(const struct def_ctx *c, const weft_def *def, json_t *spec,
    json_t *v, const char *what)
{
	json_t *en  = json_object_get(spec, "enum");
	json_t *min = json_object_get(spec, "minimum");
	json_t *max = json_object_get(spec, "maximum");
	json_t *pat = json_object_get(spec, "pattern");
	char    got[120] = "", rule[200];
	size_t  k;
	json_t *e;
	bool    found = false;

	if (!json_is_true(json_object_get(spec, "secret"))) {
		char t[96];
		snprintf(got, sizeof(got), ", got %s",
		    def_value_text(t, sizeof(t), v));
	}
	json_array_foreach (en, k, e) {
		found = found || json_equal(e, v);
	}
	if (en != NULL && !found) {
		def_value_text(rule, sizeof(rule), en);
		return (def_fail(c, "%smust be one of %s (enum)%s", what, rule,
		    got));
	}
	if (min != NULL && json_is_number(v) && def_num_cmp(v, min) < 0) {
		return (def_fail(c, "%smust be >= %s (minimum)%s", what,
		    def_value_text(rule, sizeof(rule), min), got));
	}
	if (max != NULL && json_is_number(v) && def_num_cmp(v, max) > 0) {
		return (def_fail(c, "%smust be <= %s (maximum)%s", what,
		    def_value_text(rule, sizeof(rule), max), got));
	}
	if (pat != NULL && json_is_string(v) &&
	    !def_pattern_match(def_pattern_find(def, spec), v)) {
		return (def_fail(c, "%smust match pattern %s%s", what,
		    def_value_text(rule, sizeof(rule), pat), got));
	}
	return (WEFT_OK);
}

// def_parse_enum checks "enum": a non-empty array of values of the
// parameter's type.
static weft_err
def_parse_enum(const struct def_ctx *c, json_t *spec, const char *type)
{
	json_t  *en, *e;
	size_t   k;
	weft_err rv;

	if ((rv = def_field(c, spec, "enum", "array", false, &en)) != WEFT_OK ||
	    en == NULL) {
		return (rv);
	}
	if (json_array_size(en) == 0) {
		return (def_fail(c, "field \"enum\": needs at least one value"));
	}
	json_array_foreach (en, k, e) {
		if (!def_type_matches(type, e)) {
			return (def_fail(c,
			    "field \"enum[%zu]\": expected %s, got %s", k, type,
			    def_type_name(e)));
		}
	}
	return (WEFT_OK);
}

// def_parse_rules validates a parameter's rules against its type: bounds
// for numbers, a pattern (compiled here, so a bad one is refused now, not
// at each run) for strings.

// The most nodes a pattern may expand to in glibc's regcomp, which copies
// what {n,m} repeats m times and what + repeats twice, nesting included:
// def_fuzz found a 160-byte pattern of stacked +'s whose compile took
// 2 GiB, and definitions come in over the API. Its cost is not linear
// either: x{1,1000} takes 10 MB here, x{1,4000} 128 MB, (x?){1,1000}
// 31 MB.
#define DEF_RE_MAX 1024

static uint64_t
def_re_cap(uint64_t n)
{
	return (n > DEF_RE_MAX ? DEF_RE_MAX + 1 : n);
}

// def_re_size estimates the nodes of the ERE at *pp up to an unmatched
// ')' or its end, and moves *pp there. Syntax errors are regcomp's to
// report: this only has to stay finite and never under-count.
static uint64_t
def_re_size(const char **pp, int depth)
{
	const char *p     = *pp;
	uint64_t    total = 0, branch = 0;

	while (*p != '\0' && *p != ')') {
		uint64_t atom = 1;
		if (*p == '|') {
			total = def_re_cap(total + branch + 1);
			branch = 0;
			p++;
			continue;
		}
		if (*p == '(') {
			p++;
			atom = depth < 32 ? def_re_size(&p, depth + 1) + 1
			                  : DEF_RE_MAX + 1;
			p += *p == ')';
		} else if (*p == '[') {
			p++;
			p += *p == '^';
			p += *p == ']'; // a leading ] is a member
			while (*p != '\0' && *p != ']') {
				char end = p[1];
				if (p[0] == '[' && (end == ':' || end == '.' || end == '=')) {
					for (p += 2; *p != '\0' &&
					     !(p[0] == end && p[1] == ']');
					     p++) {
					}
					p += *p != '\0' ? 2 : 0;
					continue;
				}
				p++;
			}
			p += *p == ']';
		} else {
			p += p[0] == '\\' && p[1] != '\0' ? 2 : 1;
		}
		for (;;) { // its repetitions
			char         *end;
			unsigned long n, m;
			if (*p == '*' || *p == '?') {
				p++;
				continue;
			}
			if (*p == '+') {
				atom = def_re_cap(atom * 2);
				p++;
				continue;
			}
			if (*p != '{' || p[1] < '0' || p[1] > '9') {
				break;
			}
			n = m = strtoul(p + 1, &end, 10);
			if (*end == ',') {
				end++;
				m = *end >= '0' && *end <= '9' ? strtoul(end, &end, 10)
				                               : n + 1;
			}
			if (*end != '}') {
				break; // not a bound: regcomp says what it is
			}
			p = end + 1;
			m = m > n ? m : n;
			atom = m >= DEF_RE_MAX ? DEF_RE_MAX + 1
			                       : def_re_cap(atom * (m + 1));
		}
		branch = def_re_cap(branch + atom);
	}
	*pp = p;
	return (def_re_cap(total + branch));
}

// def_re_too_big tells whether pattern would expand past DEF_RE_MAX.
static bool
def_re_too_big(const char *pattern)
{
	const char *p    = pattern;
	uint64_t    size = 0;

	for (;;) {
		size = def_re_cap(size + def_re_size(&p, 0));
		if (*p != ')') {
			return (size > DEF_RE_MAX);
		}
		p++; // unbalanced: regcomp refuses it
	}
}

static weft_err
def_parse_rules(
    const struct def_ctx *c, weft_def *def, json_t *spec, const char *type)
{
	bool     num = strcmp(type, "int") == 0 || strcmp(type, "number") == 0 ||
	    strcmp(type, "any") == 0;
	bool     str = strcmp(type, "string") == 0 || strcmp(type, "any") == 0;
	json_t  *min, *max, *pat;
	weft_err rv;
	regex_t *re;
	int      rc = 0;

	if ((rv = def_parse_enum(c, spec, type)) != WEFT_OK ||
	    (rv = def_field(c, spec, "minimum", "number", false, &min)) != 0 ||
	    (rv = def_field(c, spec, "maximum", "number", false, &max)) != 0 ||
	    (rv = def_field(c, spec, "pattern", "string", false, &pat)) != 0) {
		return (rv);
	}
	if ((min != NULL || max != NULL) && !num) {
		return (def_fail(c, "field \"%s\": only for a parameter of type "
		    "int, number or any, not %s", min ? "minimum" : "maximum",
		    type));
	}
	if (min != NULL && max != NULL && def_num_cmp(min, max) > 0) {
		return (def_fail(c, "field \"maximum\": must be >= minimum"));
	}
	if (pat == NULL) {
		return (WEFT_OK);
	}
	if (!str) {
		return (def_fail(c, "field \"pattern\": only for a parameter of "
		    "type string or any, not %s", type));
	}
	// glibc's matcher backtracks on back-references, exponentially in
	// the worst case, and a run's params are matched when the run is
	// created: one crafted value would hold that up for everyone.
	for (const char *b = json_string_value(pat); *b != '\0'; b++) {
		if (b[0] == '\\' && b[1] >= '1' && b[1] <= '9') {
			return (def_fail(c, "field \"pattern\": back-references "
			    "(\\%c) are not supported", b[1]));
		}
		b += b[0] == '\\' && b[1] != '\0';
	}
	if (def_re_too_big(json_string_value(pat))) {
		return (def_fail(c, "field \"pattern\": too complex: its "
		    "repetitions expand to more than %d nodes ({n,m} copies "
		    "what it repeats m times, + twice)", DEF_RE_MAX));
	}
	re = weft_xalloc(sizeof(*re));
	if (strlen(json_string_value(pat)) != json_string_length(pat) ||
	    (rc = regcomp(re, json_string_value(pat),
	         REG_EXTENDED | REG_NOSUB)) != 0) {
		char msg[128] = "contains a NUL byte", q[80];
		if (strlen(json_string_value(pat)) == json_string_length(pat)) {
			regerror(rc, re, msg, sizeof(msg));
		}
		free(re);
		return (def_fail(c,
		    "field \"pattern\": \"%s\" is not a valid POSIX extended "
		    "regular expression: %s",
		    def_quote(q, sizeof(q), json_string_value(pat)), msg));
	}
	def->patterns = weft_xrealloc(def->patterns,
	    (def->npatterns + 1) * sizeof(*def->patterns));
	def->patterns[def->npatterns++] = (struct def_pattern) { spec, re };
	return (WEFT_OK);
}

// ---- parameters ----

// def_parse_param validates one parameter spec; c->where is "params.<name>".
static weft_err
def_parse_param(const struct def_ctx *c, weft_def *def, json_t *spec)
{
	json_t     *v;
	json_t     *dflt;
	const char *type = "any";
	weft_err    rv;

	if (!json_is_object(spec)) {
		return (def_fail(
		    c, "expected an object, got %s", def_type_name(spec)));
	}
	if ((rv = def_check_fields(c, spec, "", def_param_fields, NULL)) != 0 ||
	    (rv = def_field(c, spec, "type", "string", false, &v)) != 0) {
		return (rv);
	}
	if (v != NULL &&
	    !def_in(def_param_types, (type = json_string_value(v)))) {
		char q[80];
		return (def_fail(c,
		    "field \"type\": unknown type \"%s\" (want string, int, "
		    "number, bool, object, array or any)",
		    def_quote(q, sizeof(q), type)));
	}
	if ((rv = def_field(c, spec, "required", "bool", false, &v)) != 0 ||
	    (rv = def_field(c, spec, "description", "string", false, &v)) !=
	        0 ||
	    (rv = def_field(c, spec, "default", type, false, &dflt)) != 0 ||
	    (rv = def_field(c, spec, "secret", "bool", false, &v)) != 0) {
		return (rv);
	}
	// A definition is stored and served in clear: a default would be
	// a secret everyone can read.
	if (json_is_true(v) && dflt != NULL) {
		return (def_fail(c,
		    "a secret parameter cannot have a default (definitions "
		    "are stored and shown in clear)"));
	}
	if ((rv = def_parse_rules(c, def, spec, type)) != WEFT_OK) {
		return (rv);
	}
	// A default that breaks its own rules would fail every run that
	// leaves the parameter out: refuse it with the definition.
	if (dflt != NULL) {
		return (def_param_check(c, def, spec, dflt, "field \"default\": "));
	}
	return (WEFT_OK);
}

// def_parse_params validates the "params" object and keeps it in def.
static weft_err
def_parse_params(struct def_parser *p, json_t *root)
{
	struct def_ctx c = p->c;
	const char    *name;
	json_t        *spec;
	json_t        *params;
	weft_err       rv;
	char           q[80];

	if ((rv = def_field(&p->c, root, "params", "object", false, &params)) !=
	    WEFT_OK) {
		return (rv);
	}
	p->def->params = params ? json_incref(params) : json_object();
	json_object_foreach (p->def->params, name, spec) {
		snprintf(c.where, sizeof(c.where), "params.%s",
		    def_quote(q, sizeof(q), name));
		if (!def_name_ok(name, strlen(name), "_-")) {
			return (def_fail(&c,
			    "invalid parameter name (1-128 characters of "
			    "A-Z a-z 0-9 _ -)"));
		}
		if ((rv = def_parse_param(&c, p->def, spec)) != WEFT_OK) {
			return (rv);
		}
	}
	return (WEFT_OK);
}

// ---- steps ----

// def_step_where names step i in c->where, with its id once it is known
// to be valid.
static void
def_step_where(struct def_ctx *c, size_t i, const char *id)
{
	if (id == NULL) {
		snprintf(c->where, sizeof(c->where), "steps[%zu]", i);
	} else {
		snprintf(c->where, sizeof(c->where), "steps[%zu] (id \"%s\")",
		    i, id);
	}
}

// def_parse_step_id checks that step i has a valid, unique id and enters it
// in the index.
static weft_err
def_parse_step_id(struct def_parser *p, struct def_ctx *c, size_t i, json_t *js)
{
	json_t     *v;
	json_t     *prev;
	const char *id;
	weft_err    rv;

	if ((rv = def_field(c, js, "id", "string", true, &v)) != WEFT_OK) {
		return (rv);
	}
	// A spliced definition's expansion steps are named
	// "<expanding step>.<id>" (expand.c made the names from valid ids).
	if (p->def->spliced ? json_string_length(v) == 0
	                    : !def_str_ok(v, "_-")) {
		return (def_fail(c,
		    "field \"id\": must be 1-128 characters of "
		    "A-Z a-z 0-9 _ -"));
	}
	id = json_string_value(v);
	def_step_where(c, i, id);
	if ((prev = json_object_get(p->def->index, id)) != NULL) {
		return (def_fail(c,
		    "duplicate id, first used by steps[%" JSON_INTEGER_FORMAT
		    "]",
		    json_integer_value(prev)));
	}
	json_object_set_new(p->def->index, id, json_integer((json_int_t) i));
	p->def->steps[i].id = weft_xstrdup(id);
	return (WEFT_OK);
}

// def_parse_retry fills rt from the optional "retry" object of step js.
static weft_err
def_parse_retry(const struct def_ctx *c, json_t *js, weft_retry *rt)
{
	json_t  *r;
	json_t  *jit;
	int      backoff = (int) rt->backoff;
	weft_err rv;

	if ((rv = def_field(c, js, "retry", "object", false, &r)) != WEFT_OK ||
	    r == NULL) {
		return (rv);
	}
	if ((rv = def_check_fields(c, r, "retry.", def_retry_fields, NULL)) !=
	        WEFT_OK ||
	    (rv = def_get_u32(c, r, "retry.max_attempts", 1, 1000,
	         &rt->max_attempts)) != WEFT_OK ||
	    (rv = def_get_enum(
	         c, r, "retry.backoff", def_backoffs, &backoff)) != WEFT_OK ||
	    (rv = def_get_u32(c, r, "retry.initial_ms", 0, UINT32_MAX,
	         &rt->initial_ms)) != WEFT_OK ||
	    (rv = def_get_u32(c, r, "retry.max_ms", 0, UINT32_MAX,
	         &rt->max_ms)) != WEFT_OK ||
	    (rv = def_field(c, r, "retry.jitter", "bool", false, &jit)) !=
	        WEFT_OK) {
		return (rv);
	}
	if (rt->max_ms < rt->initial_ms) {
		return (def_fail(c,
		    "field \"retry.max_ms\": must be >= retry.initial_ms (%u), "
		    "got %u",
		    rt->initial_ms, rt->max_ms));
	}
	rt->backoff = (enum weft_backoff) backoff;
	rt->jitter  = jit != NULL && json_is_true(jit);
	return (WEFT_OK);
}

// def_parse_deps checks the shape of "depends_on"; names are resolved once
// every id is known (def_link_step).
static weft_err
def_parse_deps(const struct def_ctx *c, json_t *js)
{
	json_t  *deps;
	json_t  *d;
	size_t   k;
	weft_err rv;

	if ((rv = def_field(c, js, "depends_on", "array", false, &deps)) !=
	    WEFT_OK) {
		return (rv);
	}
	json_array_foreach (deps, k, d) {
		if (!json_is_string(d)) {
			return (def_fail(c,
			    "field \"depends_on[%zu]\": expected string, got "
			    "%s",
			    k, def_type_name(d)));
		}
	}
	return (WEFT_OK);
}

// def_parse_when compiles the optional "when" condition of step js.
static weft_err
def_parse_when(const struct def_ctx *c, json_t *js, weft_def_step *st)
{
	json_t  *v;
	weft_err rv;
	char     msg[160];

	if ((rv = def_field(c, js, "when", "string", false, &v)) != WEFT_OK ||
	    v == NULL) {
		return (rv);
	}
	st->when = weft_xstrdup(json_string_value(v));
	if (weft_expr_compile(&st->when_expr, st->when, msg, sizeof(msg)) !=
	    WEFT_OK) {
		return (def_fail(c, "field \"when\": %s", msg));
	}
	return (WEFT_OK);
}

// def_parse_depends compiles the optional "depends" condition of step js,
// which stands instead of "depends_on" and "trigger": both at once would
// be two answers to one question.
static weft_err
def_parse_depends(const struct def_ctx *c, json_t *js, weft_def_step *st)
{
	json_t  *v;
	weft_err rv;
	char     msg[200];

	if ((rv = def_field(c, js, "depends", "string", false, &v)) !=
	        WEFT_OK ||
	    v == NULL) {
		return (rv);
	}
	if (json_object_get(js, "depends_on") != NULL ||
	    json_object_get(js, "trigger") != NULL) {
		return (def_fail(c,
		    "field \"depends\" replaces \"depends_on\" and \"trigger\": "
		    "give one or the other"));
	}
	st->depends = weft_xstrdup(json_string_value(v));
	if (weft_depends_compile(&st->depends_expr, st->depends, msg,
	        sizeof(msg)) != WEFT_OK) {
		return (def_fail(c, "field \"depends\": %s", msg));
	}
	return (WEFT_OK);
}

// def_parse_map reads "map" (the path of the array to fan out over, or
// the array itself), "max_parallel" (at most that many items at once) and
// "map_tolerate" (items that may fail with the step still succeeding);
// the last two only with map. Whether the path names a dependency is
// checked when steps are linked.
static weft_err
def_parse_map(const struct def_ctx *c, json_t *js, weft_def_step *st)
{
	json_t  *v = json_object_get(js, "map");
	weft_err rv;

	if (json_is_array(v)) {
		// A literal list: st->map stays the "is a map step" mark every
		// reader tests, spelled so that messages show what it is.
		st->map_list = json_incref(v);
		st->map      = weft_xstrdup("(literal list)");
	} else if ((rv = def_field(c, js, "map", "string", false, &v)) !=
	    WEFT_OK) {
		return (def_fail(c, "field \"map\": expected string or array, "
		    "got %s", def_type_name(v)));
	} else if (v != NULL) {
		const char *m = json_string_value(v);
		if (strncmp(m, "input", 5) != 0 && strncmp(m, "params.", 7) != 0 &&
		    strncmp(m, "steps.", 6) != 0) {
			return (def_fail(c,
			    "field \"map\": a path that starts with input, "
			    "params or steps, such as steps.fetch.output.files, "
			    "or an array"));
		}
		st->map = weft_xstrdup(m);
	}
	if ((rv = def_get_u32(c, js, "max_parallel", 1, UINT32_MAX,
	         &st->max_parallel)) != WEFT_OK ||
	    (rv = def_get_u32(c, js, "map_tolerate", 0, UINT32_MAX,
	         &st->map_tolerate)) != WEFT_OK) {
		return (rv);
	}
	if (st->max_parallel != 0 && st->map == NULL) {
		return (def_fail(c, "field \"max_parallel\": only with \"map\""));
	}
	if (json_object_get(js, "map_tolerate") != NULL && st->map == NULL) {
		return (def_fail(c, "field \"map_tolerate\": only with \"map\""));
	}
	return (WEFT_OK);
}

// def_parse_exec checks what an exec step cannot run without: with.cmd, a
// non-empty array of strings or one whole "${...}" reference that renders
// to one. Without this the worker would refuse every attempt at run time.
static weft_err
def_parse_exec(const struct def_ctx *c, const weft_def_step *st)
{
	json_t *cmd = json_object_get(st->with, "cmd");
	json_t *e;
	size_t  k;

	if (strcmp(st->type, "exec") != 0) {
		return (WEFT_OK);
	}
	if (cmd == NULL) {
		return (def_fail(c, "field \"with.cmd\": required for an exec "
		    "step (the program and its arguments, e.g. "
		    "[\"script.sh\", \"--flag\"])"));
	}
	if (json_is_string(cmd)) {
		const char *t = json_string_value(cmd);
		size_t      n = strlen(t);
		if (n > 3 && strncmp(t, "${", 2) == 0 && t[n - 1] == '}' &&
		    strchr(t, '}') == t + n - 1) {
			return (WEFT_OK);
		}
		return (def_fail(c, "field \"with.cmd\": expected an array of "
		    "strings (or one \"${...}\" reference), got a string"));
	}
	if (!json_is_array(cmd) || json_array_size(cmd) == 0) {
		return (def_fail(c, "field \"with.cmd\": expected a non-empty "
		    "array of strings, got %s",
		    json_is_array(cmd) ? "[]" : def_type_name(cmd)));
	}
	json_array_foreach (cmd, k, e) {
		if (!json_is_string(e)) {
			return (def_fail(c, "field \"with.cmd[%zu]\": expected "
			    "string, got %s", k, def_type_name(e)));
		}
	}
	return (WEFT_OK);
}

static weft_err def_parse_hold(const struct def_ctx *c, weft_def_step *st);
static weft_err def_parse_expand(
    const struct def_ctx *c, json_t *js, weft_def_step *st);

// def_parse_step_priority reads a step's "priority": its units are
// ordered by it instead of their run's priority.
static weft_err
def_parse_step_priority(
    const struct def_ctx *c, json_t *js, weft_def_step *st)
{
	json_int_t v = 0;
	weft_err   rv;

	if (json_object_get(js, "priority") == NULL) {
		return (WEFT_OK);
	}
	if ((rv = def_get_int(c, js, "priority", INT32_MIN, INT32_MAX, &v)) !=
	    WEFT_OK) {
		return (rv);
	}
	st->has_priority = true;
	st->priority     = (int32_t) v;
	return (WEFT_OK);
}

// def_parse_step validates step i (js) and fills def->steps[i], except
// for deps and outs.
static weft_err
def_parse_step(struct def_parser *p, size_t i, json_t *js)
{
	struct def_ctx c       = p->c;
	weft_def_step *st      = &p->def->steps[i];
	int            trigger = WEFT_TRIGGER_ALL_SUCCESS;
	json_t        *v;
	weft_err       rv;

	def_step_where(&c, i, NULL);
	// The definition's top-level schedule_timeout_ms is every step's
	// default (parsed before the steps); a step's own, 0 included, wins.
	st->schedule_timeout_ms = p->def->schedule_timeout_ms;
	st->retry = (weft_retry) { .max_attempts = 1,
		.backoff                         = WEFT_BACKOFF_EXPONENTIAL,
		.initial_ms                      = 1000,
		.max_ms                          = 60000 };
	if (!json_is_object(js)) {
		return (def_fail(
		    &c, "expected an object, got %s", def_type_name(js)));
	}
	if ((rv = def_parse_step_id(p, &c, i, js)) != WEFT_OK ||
	    (rv = def_check_fields(
	         &c, js, "", def_step_fields, NULL)) != WEFT_OK ||
	    (rv = def_field(&c, js, "type", "string", true, &v)) != WEFT_OK) {
		return (rv);
	}
	if (!def_str_ok(v, "_.-")) {
		return (def_fail(&c,
		    "field \"type\": must be 1-128 characters "
		    "of A-Z a-z 0-9 _ . -"));
	}
	st->type = weft_xstrdup(json_string_value(v));
	if ((rv = def_field(&c, js, "with", "object", false, &v)) != WEFT_OK) {
		return (rv);
	}
	st->with = json_incref(v);
	if ((rv = def_parse_deps(&c, js)) != WEFT_OK ||
	    (rv = def_parse_retry(&c, js, &st->retry)) != WEFT_OK ||
	    (rv = def_get_u32(&c, js, "timeout_ms", 0, UINT32_MAX,
	         &st->timeout_ms)) != WEFT_OK ||
	    (rv = def_get_u32(&c, js, "heartbeat_timeout_ms", 0, UINT32_MAX,
	         &st->heartbeat_timeout_ms)) != WEFT_OK ||
	    (rv = def_get_u32(&c, js, "schedule_timeout_ms", 0, UINT32_MAX,
	         &st->schedule_timeout_ms)) != WEFT_OK ||
	    (rv = def_get_enum(&c, js, "trigger", def_triggers, &trigger)) !=
	        WEFT_OK) {
		return (rv);
	}
	st->trigger = (enum weft_trigger) trigger;
	if ((rv = def_parse_map(&c, js, st)) != WEFT_OK ||
	    (rv = def_parse_exec(&c, st)) != WEFT_OK ||
	    (rv = def_parse_depends(&c, js, st)) != WEFT_OK) {
		return (rv);
	}
	if ((rv = def_parse_when(&c, js, st)) != WEFT_OK ||
	    (rv = def_parse_hold(&c, st)) != WEFT_OK ||
	    (rv = def_parse_step_priority(&c, js, st)) != WEFT_OK) {
		return (rv);
	}
	return (def_parse_expand(&c, js, st));
}

// def_parse_expand reads "expand": the step's output is a definition's
// "steps" that the run splices in (expand.h). A worker produces it: a step
// the coordinator runs, or a map (one expansion per item?), cannot.
static weft_err
def_parse_expand(const struct def_ctx *c, json_t *js, weft_def_step *st)
{
	json_t  *v;
	weft_err rv;

	if ((rv = def_field(c, js, "expand", "bool", false, &v)) != WEFT_OK) {
		return (rv);
	}
	st->expand = json_is_true(v);
	if (st->expand && st->map != NULL) {
		return (def_fail(c, "field \"expand\": a map step cannot "
		    "expand (expand a step that makes the list instead)"));
	}
	if (st->expand && st->hold != WEFT_HOLD_NONE) {
		return (def_fail(c, "field \"expand\": a %s step runs on the "
		    "coordinator and has no output to expand", st->type));
	}
	return (WEFT_OK);
}

// def_parse_hold checks a step the coordinator runs itself (wait, delay,
// sleep_until: hold.h): its `with` says what it waits for, and nothing a
// worker would act on applies to it.
static weft_err
def_parse_hold(const struct def_ctx *c, weft_def_step *st)
{
	char msg[300];

	if ((st->hold = weft_hold_kind(st->type)) == WEFT_HOLD_NONE) {
		return (WEFT_OK);
	}
	if (st->heartbeat_timeout_ms != 0) {
		return (def_fail(c, "field \"heartbeat_timeout_ms\": a %s step "
		    "runs on the coordinator and has no heartbeat", st->type));
	}
	if (weft_hold_check(st->type, st->with, &st->timeout_ms, msg,
	        sizeof(msg)) != WEFT_OK) {
		return (def_fail(c, "%s", msg));
	}
	return (WEFT_OK);
}

// def_parse_steps validates the "steps" array.
static weft_err
def_parse_steps(struct def_parser *p, json_t *root)
{
	json_t  *steps;
	json_t  *js;
	size_t   i;
	weft_err rv;

	if ((rv = def_field(&p->c, root, "steps", "array", true, &steps)) !=
	    WEFT_OK) {
		return (rv);
	}
	if (json_array_size(steps) == 0) {
		return (def_fail(
		    &p->c, "field \"steps\": needs at least one step"));
	}
	if (json_array_size(steps) > WEFT_DEF_MAX_STEPS) {
		return (def_fail(&p->c,
		    "field \"steps\": %zu steps exceed the limit of %u",
		    json_array_size(steps), WEFT_DEF_MAX_STEPS));
	}
	p->def->nsteps = json_array_size(steps);
	p->def->steps  = weft_xalloc(p->def->nsteps * sizeof(weft_def_step));
	json_array_foreach (steps, i, js) {
		if ((rv = def_parse_step(p, i, js)) != WEFT_OK) {
			return (rv);
		}
	}
	return (WEFT_OK);
}

// ---- linking: deps, outs, roots, sinks, references, cycles ----

struct def_when_arg {
	struct def_parser    *p;
	const struct def_ctx *c;
	size_t                i; // the step whose condition this is
};

// def_ref checks one path a step reads, from its `when` (where says "field
// \"when\": col N") or a ${...} in its `with`: steps.<id> must name a
// dependency (a step's input document holds only its dependencies) and
// params.<name> a declared parameter; anything else would silently be null
// or fail at run time.
static weft_err
def_ref(struct def_when_arg *a, const char *const *segs, size_t n,
    const char *where)
{
	long idx;
	char q[80];

	if (n < 2) {
		return (WEFT_OK);
	}
	if (strcmp(segs[0], "steps") == 0) {
		if ((idx = weft_def_find(a->p->def, segs[1])) < 0) {
			return (def_fail(a->c, "%s: unknown step \"%s\"", where,
			    def_quote(q, sizeof(q), segs[1])));
		}
		if (a->p->stamp[idx] != a->i + 1) {
			return (def_fail(a->c,
			    "%s: step \"%s\" is not in depends_on", where,
			    segs[1]));
		}
	} else if (strcmp(segs[0], "params") == 0 &&
	    json_object_get(a->p->def->params, segs[1]) == NULL) {
		return (def_fail(a->c, "%s: unknown parameter \"%s\"", where,
		    def_quote(q, sizeof(q), segs[1])));
	}
	return (WEFT_OK);
}

static weft_err
def_when_ref(void *arg, const char *const *segs, size_t n, int col)
{
	struct def_when_arg *a = arg;
	weft_def_step       *st = &a->p->def->steps[a->i];
	char                 where[64];

	snprintf(where, sizeof(where), "field \"when\": col %d", col);
	if (strcmp(segs[0], "item") == 0 || strcmp(segs[0], "index") == 0) {
		if (st->map == NULL) {
			return (def_fail(a->c, "%s: %s only in a map step", where,
			    segs[0]));
		}
		// Read per item: each item whose condition is false is
		// skipped, the step itself is not.
		st->when_item = true;
		return (WEFT_OK);
	}
	return (def_ref(arg, segs, n, where));
}

// def_with_refs checks every ${path} inside the strings of value v, named
// field in messages ("with.cmd[1]", or "map" for the map path written as a
// reference): each must be closed and name what the step may read.
static weft_err
def_with_refs(struct def_when_arg *a, json_t *v, const char *field)
{
	const char *s, *open, *close;
	json_t     *e;
	size_t      k;
	weft_err    rv;
	char        sub[256];

	if (json_is_array(v)) {
		json_array_foreach (v, k, e) {
			snprintf(sub, sizeof(sub), "%s[%zu]", field, k);
			if ((rv = def_with_refs(a, e, sub)) != WEFT_OK) {
				return (rv);
			}
		}
		return (WEFT_OK);
	}
	if (json_is_object(v)) {
		const char *key;
		json_object_foreach (v, key, e) {
			char q[80];
			snprintf(sub, sizeof(sub), "%s.%s", field,
			    def_quote(q, sizeof(q), key));
			if ((rv = def_with_refs(a, e, sub)) != WEFT_OK) {
				return (rv);
			}
		}
		return (WEFT_OK);
	}
	if (!json_is_string(v)) {
		return (WEFT_OK);
	}
	for (s = json_string_value(v); (open = strstr(s, "${")) != NULL;
	     s = close + 1) {
		char        path[256], where[300];
		const char *segs[16];
		size_t      n = 0;
		if ((close = strchr(open, '}')) == NULL) {
			// Rendering would pass it through as text: a typo
			// that silently sends "${params.x" to the step.
			char q[80];
			return (def_fail(a->c,
			    "field \"%s\": unclosed \"${\" in \"%s\"", field,
			    def_quote(q, sizeof(q), json_string_value(v))));
		}
		snprintf(path, sizeof(path), "%.*s", (int) (close - open - 2),
		    open + 2);
		snprintf(where, sizeof(where), "field \"%s\": ${%s}", field, path);
		for (char *t = strtok(path, "."); t != NULL && n < 16;
		     t = strtok(NULL, ".")) {
			segs[n++] = t;
		}
		if (n > 0 && strchr(segs[0], '[') != NULL) {
			*strchr((char *) segs[0], '[') = '\0'; // "item[*]": item
		}
		bool item = n > 0 && (strcmp(segs[0], "item") == 0 ||
		                         strcmp(segs[0], "index") == 0);
		if (item && a->p->def->steps[a->i].map != NULL) {
			continue; // a map item's own element and position
		}
		if (n == 0 || (strcmp(segs[0], "input") != 0 &&
		                  strcmp(segs[0], "params") != 0 &&
		                  strcmp(segs[0], "steps") != 0)) {
			return (def_fail(a->c,
			    "%s: a reference starts with input, params or steps%s",
			    where, item ? " (item and index only in a map step)" : ""));
		}
		if ((rv = def_ref(a, segs, n, where)) != WEFT_OK) {
			return (rv);
		}
	}
	return (WEFT_OK);
}

// def_link_refs checks the references of step st's with, map and when:
// each must name one of its dependencies (stamped by def_link_step).
static weft_err
def_link_refs(struct def_when_arg *wa, weft_def_step *st)
{
	if (st->with != NULL) {
		weft_err rv = def_with_refs(wa, st->with, "with");
		if (rv != WEFT_OK) {
			return (rv);
		}
	}
	if (st->map != NULL && st->map_list == NULL) {
		// The same rule as a ${...}: written as one to reuse the check.
		char     ref[600];
		json_t  *tmp;
		weft_err rv;
		snprintf(ref, sizeof(ref), "${%s}", st->map);
		tmp = json_string(ref);
		rv  = def_with_refs(wa, tmp, "map");
		json_decref(tmp);
		if (rv != WEFT_OK) {
			return (rv);
		}
	}
	if (st->when_expr == NULL) {
		return (WEFT_OK);
	}
	return (weft_expr_paths(st->when_expr, def_when_ref, wa));
}


// def_link_step resolves the dependencies of step i (definition js):
// its "depends_on", or the steps its "depends" names, counting dependents
// in their nouts, then checks what its with, map and when reference.
static weft_err
def_link_step(struct def_parser *p, size_t i, json_t *js)
{
	weft_def_step      *st    = &p->def->steps[i];
	json_t             *deps  = json_object_get(js, "depends_on");
	json_t             *names = NULL;
	struct def_ctx      c     = p->c;
	struct def_when_arg wa    = { p, &c, i };
	json_t             *d;
	size_t              k;
	char                q[80];

	def_step_where(&c, i, st->id);
	if (st->depends_expr != NULL) {
		deps = names = weft_depends_names(st->depends_expr);
	}
	if (json_array_size(deps) > 0) {
		st->deps =
		    weft_xalloc(json_array_size(deps) * sizeof(uint32_t));
	}
	json_array_foreach (deps, k, d) {
		long idx = weft_def_find(p->def, json_string_value(d));
		if (idx < 0) {
			def_fail(&c, "%s \"%s\"",
			    names != NULL ? "field \"depends\": unknown step"
			                  : "unknown dependency",
			    def_quote(q, sizeof(q), json_string_value(d)));
			json_decref(names);
			return (WEFT_EDEF);
		}
		if (p->stamp[idx] == i + 1) {
			json_decref(names); // NULL: names lists each step once
			return (def_fail(&c, "dependency \"%s\" listed twice",
			    json_string_value(d)));
		}
		p->stamp[idx]         = (uint32_t) (i + 1);
		st->deps[st->ndeps++] = (uint32_t) idx;
		p->def->steps[idx].nouts++;
	}
	json_decref(names);
	if (p->def->spliced && strchr(st->id, '.') != NULL) {
		// Checked in its expansion's namespace, where its references
		// name its siblings by their own ids (expand.c).
		return (WEFT_OK);
	}
	return (def_link_refs(&wa, st));
}

// def_zero_list returns a new array of the indices of steps with no
// dependencies (by_outs false: roots) or no dependents (true: sinks).
static uint32_t *
def_zero_list(const weft_def *def, bool by_outs, size_t *n)
{
	uint32_t *v;

	*n = 0;
	for (size_t i = 0; i < def->nsteps; i++) {
		*n +=
		    (by_outs ? def->steps[i].nouts : def->steps[i].ndeps) == 0;
	}
	v  = weft_xalloc(*n * sizeof(uint32_t));
	*n = 0;
	for (size_t i = 0; i < def->nsteps; i++) {
		if ((by_outs ? def->steps[i].nouts : def->steps[i].ndeps) ==
		    0) {
			v[(*n)++] = (uint32_t) i;
		}
	}
	return (v);
}

// def_link_parents names each expansion step's expanding step (the id up
// to its last '.') and drops expansion steps from the sinks: the run's
// output and outcome are its own steps'; an expansion ends in its step.
static void
def_link_parents(weft_def *def)
{
	size_t n = 0;

	for (size_t i = 0; i < def->nsteps; i++) {
		const char *dot = strrchr(def->steps[i].id, '.');
		char        pid[4096];
		def->steps[i].parent = -1;
		if (!def->spliced || dot == NULL) {
			continue;
		}
		snprintf(pid, sizeof(pid), "%.*s",
		    (int) (dot - def->steps[i].id), def->steps[i].id);
		def->steps[i].parent = weft_def_find(def, pid);
	}
	for (size_t k = 0; k < def->nsinks; k++) {
		if (def->steps[def->sinks[k]].parent < 0) {
			def->sinks[n++] = def->sinks[k];
		}
	}
	def->nsinks = n;
}

// def_link_outs fills each step's outs (in dependent order) from the counts
// def_link_step left in nouts, then the roots and sinks lists.
static void def_link_parents(weft_def *def);

static void
def_link_outs(weft_def *def)
{
	for (size_t i = 0; i < def->nsteps; i++) {
		weft_def_step *st = &def->steps[i];
		if (st->nouts > 0) {
			st->outs = weft_xalloc(st->nouts * sizeof(uint32_t));
		}
		st->nouts = 0;
	}
	for (size_t i = 0; i < def->nsteps; i++) {
		for (size_t k = 0; k < def->steps[i].ndeps; k++) {
			weft_def_step *dep = &def->steps[def->steps[i].deps[k]];
			dep->outs[dep->nouts++] = (uint32_t) i;
		}
	}
	def->roots = def_zero_list(def, false, &def->nroots);
	def->sinks = def_zero_list(def, true, &def->nsinks);
	def_link_parents(def);
}

// def_link resolves every step's dependencies and builds the reverse edges.
static weft_err
def_link(struct def_parser *p, json_t *root)
{
	json_t  *steps = json_object_get(root, "steps");
	weft_err rv;

	p->stamp = weft_xalloc(p->def->nsteps * sizeof(uint32_t));
	for (size_t i = 0; i < p->def->nsteps; i++) {
		rv = def_link_step(p, i, json_array_get(steps, i));
		if (rv != WEFT_OK) {
			return (rv);
		}
	}
	def_link_outs(p->def);
	return (WEFT_OK);
}

// def_cycle_fail writes "cycle: a -> b -> a" for the cycle that closes at w:
// the DFS stack from w's position to the top, then w again.
static weft_err
def_cycle_fail(
    const struct def_parser *p, const uint32_t *stack, size_t top, uint32_t w)
{
	const weft_def *def = p->def;
	size_t          j   = 0;
	size_t          off;
	int             k;

	while (stack[j] != w) {
		j++;
	}
	k   = snprintf(p->c.err, p->c.errlen, "cycle:");
	off = k > 0 ? (size_t) k : 0;
	for (; j <= top && off < p->c.errlen; j++) {
		const char *id = def->steps[j < top ? stack[j] : w].id;
		k = snprintf(p->c.err + off, p->c.errlen - off, "%s%s",
		    off > 6 ? " -> " : " ", id);
		off += k > 0 ? (size_t) k : 0;
	}
	return (WEFT_EDEF);
}

// def_dfs walks dependents from s without recursion (a 100k-step chain
// would overflow the stack). Colours: 0 unseen, 1 on the stack, 2 done; an
// edge to a colour-1 step closes a cycle.
static weft_err
def_dfs(const struct def_parser *p, uint32_t s, uint8_t *color, uint32_t *stack,
    size_t *next)
{
	const weft_def *def = p->def;
	size_t          top = 1;

	stack[0] = s;
	next[0]  = 0;
	color[s] = 1;
	while (top > 0) {
		const weft_def_step *v = &def->steps[stack[top - 1]];
		uint32_t             w;
		if (next[top - 1] == v->nouts) {
			color[stack[--top]] = 2;
			continue;
		}
		w = v->outs[next[top - 1]++];
		if (color[w] == 1) {
			return (def_cycle_fail(p, stack, top, w));
		}
		if (color[w] == 0) {
			color[w]   = 1;
			stack[top] = w;
			next[top]  = 0;
			top++;
		}
	}
	return (WEFT_OK);
}

// def_check_cycles runs def_dfs from every unseen step, in definition order,
// so the cycle reported is deterministic.
static weft_err
def_check_cycles(const struct def_parser *p)
{
	size_t    n     = p->def->nsteps;
	uint8_t  *color = weft_xalloc(n);
	uint32_t *stack = weft_xalloc(n * sizeof(uint32_t));
	size_t   *next  = weft_xalloc(n * sizeof(size_t));
	weft_err  rv    = WEFT_OK;

	for (size_t s = 0; s < n && rv == WEFT_OK; s++) {
		if (color[s] == 0) {
			rv = def_dfs(p, (uint32_t) s, color, stack, next);
		}
	}
	free(color);
	free(stack);
	free(next);
	return (rv);
}

// ---- the definition as a whole ----

// def_parse_top validates the top-level fields other than steps and fills
// in the default version in the document.
// def_has_unit says a duration ends in a unit letter.
static bool
def_has_unit(const char *s)
{
	size_t n = strlen(s);
	return (n > 0 && s[n - 1] >= 'a' && s[n - 1] <= 'z');
}

// def_parse_retain reads "retain": how long the store keeps this
// definition's runs once they have ended ("7d"; the units of
// weft_clock_parse_duration). It overrides the coordinator's --retain for
// the runs started from this version, longer or shorter.
static weft_err
def_parse_retain(struct def_parser *p, json_t *root)
{
	json_t  *v;
	weft_err rv;
	int64_t  ms;
	char     q[80];

	if ((rv = def_field(&p->c, root, "retain", "string", false, &v)) !=
	        WEFT_OK ||
	    v == NULL) {
		return (rv);
	}
	// A unit is required: a bare "30" (seconds, to the parser) is too
	// easily meant as days when it decides what is deleted.
	if (!weft_clock_parse_duration(json_string_value(v), &ms) || ms <= 0 ||
	    !def_has_unit(json_string_value(v))) {
		return (def_fail(&p->c,
		    "field \"retain\": \"%s\" is not a duration (want a whole "
		    "number with d, h, m, s or ms, such as \"30d\")",
		    def_quote(q, sizeof(q), json_string_value(v))));
	}
	p->def->retain_ms = ms;
	return (WEFT_OK);
}

// def_parse_outcome reads the run outcome policy: "fail_fast" (a bool) and
// "status_from" ("all" or "leaves").
static weft_err
def_parse_outcome(struct def_parser *p, json_t *root)
{
	json_t  *v;
	int      from = WEFT_STATUS_FROM_ALL;
	weft_err rv;

	if ((rv = def_field(&p->c, root, "fail_fast", "bool", false, &v)) !=
	        WEFT_OK ||
	    (rv = def_get_enum(&p->c, root, "status_from", def_status_from,
	         &from)) != WEFT_OK) {
		return (rv);
	}
	p->def->fail_fast   = json_is_true(v);
	p->def->status_from = (enum weft_status_from) from;
	p->def->max_depth   = WEFT_DEF_MAX_DEPTH;
	return (def_get_u32(&p->c, root, "max_depth", 0,
	    WEFT_DEF_MAX_DEPTH_CEIL, &p->def->max_depth));
}

// def_parse_limits reads the scheduling fields of a definition (sched):
// "priority" (its runs' default), "max_concurrent_runs" (most of its runs
// running at once, 0 none) and "concurrency": {"key": TEMPLATE, "limit":
// N}, at most N running runs per rendered key.
static weft_err
def_parse_limits(struct def_parser *p, json_t *root)
{
	static const char *const fields[] = { "key", "limit", NULL };
	json_int_t prio = 0;
	json_t    *cc, *key;
	weft_err   rv;

	if ((rv = def_get_int(&p->c, root, "priority", INT32_MIN, INT32_MAX,
	         &prio)) != WEFT_OK ||
	    (rv = def_get_u32(&p->c, root, "max_concurrent_runs", 1,
	         UINT32_MAX, &p->def->max_concurrent_runs)) != WEFT_OK ||
	    (rv = def_field(&p->c, root, "concurrency", "object", false,
	         &cc)) != WEFT_OK) {
		return (rv);
	}
	p->def->priority = (int32_t) prio;
	if (cc == NULL) {
		return (WEFT_OK);
	}
	if ((rv = def_check_fields(&p->c, cc, "concurrency.", fields, NULL)) !=
	        WEFT_OK ||
	    (rv = def_field(&p->c, cc, "concurrency.key", "string", true,
	         &key)) != WEFT_OK) {
		return (rv);
	}
	if (json_object_get(cc, "limit") == NULL) {
		return (def_fail(&p->c,
		    "missing required field \"concurrency.limit\""));
	}
	if (json_string_length(key) == 0 || json_string_length(key) > 512) {
		return (def_fail(&p->c,
		    "field \"concurrency.key\": must be 1-512 characters, "
		    "such as \"${params.customer}\""));
	}
	if ((rv = def_get_u32(&p->c, cc, "concurrency.limit", 1, UINT32_MAX,
	         &p->def->concurrency_limit)) != WEFT_OK) {
		return (rv);
	}
	p->def->concurrency_key = json_incref(key);
	return (WEFT_OK);
}

static weft_err
def_parse_top(struct def_parser *p, json_t *root)
{
	weft_def  *def     = p->def;
	json_int_t version = 1;
	json_t    *v;
	weft_err   rv;

	if (!json_is_object(root)) {
		return (def_fail(
		    &p->c, "expected an object, got %s", def_type_name(root)));
	}
	if ((rv = def_check_fields(&p->c, root, "", def_top_fields, NULL)) !=
	        WEFT_OK ||
	    (rv = def_field(&p->c, root, "name", "string", true, &v)) !=
	        WEFT_OK) {
		return (rv);
	}
	if (!def_str_ok(v, "_.-")) {
		return (def_fail(&p->c,
		    "field \"name\": must be 1-128 "
		    "characters of A-Z a-z 0-9 _ . -"));
	}
	def->name = weft_xstrdup(json_string_value(v));
	if ((rv = def_get_int(
	         &p->c, root, "version", 1, LLONG_MAX, &version)) != WEFT_OK ||
	    (rv = def_field(&p->c, root, "description", "string", false, &v)) !=
	        WEFT_OK ||
	    (rv = def_get_u32(&p->c, root, "timeout_ms", 0, UINT32_MAX,
	         &def->timeout_ms)) != WEFT_OK ||
	    (rv = def_get_u32(&p->c, root, "schedule_timeout_ms", 0,
	         UINT32_MAX, &def->schedule_timeout_ms)) != WEFT_OK) {
		return (rv);
	}
	def->version     = version;
	def->description = v ? weft_xstrdup(json_string_value(v)) : NULL;
	json_object_set_new(root, "version", json_integer(version));
	if ((rv = def_parse_retain(p, root)) != WEFT_OK ||
	    (rv = def_parse_outcome(p, root)) != WEFT_OK ||
	    (rv = def_parse_limits(p, root)) != WEFT_OK) {
		return (rv);
	}
	return (def_parse_params(p, root));
}

static weft_err def_parse_root(
    struct def_parser *p0, json_t *root, bool spliced, weft_def **out);

weft_err
weft_def_parse(
    weft_def **out, const char *text, size_t len, char *err, size_t errlen)
{
	struct def_parser p;
	json_error_t      jerr;
	json_t           *root;

	*out = NULL;
	memset(&p, 0, sizeof(p));
	p.c.err    = err;
	p.c.errlen = errlen;
	snprintf(p.c.where, sizeof(p.c.where), "definition");
	if (len > (size_t) WEFT_DEF_MAX_BYTES) {
		def_fail(&p.c,
		    "%zu bytes exceed the definition limit of %u bytes (8 MiB)",
		    len, WEFT_DEF_MAX_BYTES);
		return (WEFT_ETOOBIG);
	}
	root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		return (def_fail(&p.c, "invalid JSON at line %d, column %d: %s",
		    jerr.line, jerr.column, jerr.text));
	}
	return (def_parse_root(&p, root, false, out));
}

weft_err
weft_def_parse_spliced(
    weft_def **out, const json_t *root, char *err, size_t errlen)
{
	struct def_parser p;

	*out = NULL;
	memset(&p, 0, sizeof(p));
	p.c.err    = err;
	p.c.errlen = errlen;
	snprintf(p.c.where, sizeof(p.c.where), "definition");
	return (def_parse_root(&p, json_deep_copy(root), true, out));
}

// def_parse_root parses and checks root (taken), a whole definition.
static weft_err
def_parse_root(struct def_parser *p0, json_t *root, bool spliced,
    weft_def **out)
{
	struct def_parser p = *p0;
	weft_err          rv;

	p.def          = weft_xalloc(sizeof(weft_def));
	p.def->json    = root;
	p.def->index   = json_object();
	p.def->spliced = spliced;
	if ((rv = def_parse_top(&p, root)) != WEFT_OK ||
	    (rv = def_parse_steps(&p, root)) != WEFT_OK ||
	    (rv = def_link(&p, root)) != WEFT_OK ||
	    (rv = def_check_cycles(&p)) != WEFT_OK) {
		goto fail;
	}
	free(p.stamp);
	*out = p.def;
	return (WEFT_OK);
fail:
	free(p.stamp);
	weft_def_free(p.def);
	return (rv);
}

void
weft_def_free(weft_def *def)
{
	if (def == NULL) {
		return;
	}
	json_decref(def->concurrency_key);
	for (size_t i = 0; i < def->nsteps; i++) {
		weft_def_step *st = &def->steps[i];
		free(st->id);
		free(st->type);
		json_decref(st->with);
		free(st->deps);
		free(st->outs);
		free(st->when);
		free(st->map);
		json_decref(st->map_list);
		weft_expr_free(st->when_expr);
		free(st->depends);
		weft_depends_free(st->depends_expr);
	}
	for (size_t i = 0; i < def->npatterns; i++) {
		regfree(def->patterns[i].re);
		free(def->patterns[i].re);
	}
	free(def->patterns);
	free(def->steps);
	free(def->name);
	free(def->description);
	json_decref(def->params);
	json_decref(def->json);
	json_decref(def->index);
	free(def->sinks);
	free(def->roots);
	free(def);
}

long
weft_def_find(const weft_def *def, const char *id)
{
	json_t *v = json_object_get(def->index, id);

	return (v != NULL ? (long) json_integer_value(v) : -1);
}

// ---- parameters at run creation ----

// def_bind_given copies the given parameters into res, checking names and
// types against the spec.
static weft_err
def_bind_given(
    const weft_def *def, json_t *given, json_t *res, struct def_ctx *c)
{
	const char *name;
	json_t     *v;
	char        q[80];

	json_object_foreach (given, name, v) {
		json_t     *spec = json_object_get(def->params, name);
		json_t     *t    = json_object_get(spec, "type");
		const char *type = t ? json_string_value(t) : "any";
		snprintf(c->where, sizeof(c->where), "params.%s",
		    def_quote(q, sizeof(q), name));
		if (spec == NULL) {
			def_fail(c, "unknown parameter");
			return (WEFT_EINVAL);
		}
		if (!def_type_matches(type, v)) {
			def_fail(
			    c, "expected %s, got %s", type, def_type_name(v));
			return (WEFT_EINVAL);
		}
		if (def_param_check(c, def, spec, v, "") != WEFT_OK) {
			return (WEFT_EINVAL);
		}
		json_object_set_new(res, name, json_deep_copy(v));
	}
	return (WEFT_OK);
}

// def_bind_defaults fills in defaults for parameters not given and fails
// on a missing required one.
static weft_err
def_bind_defaults(const weft_def *def, json_t *res, struct def_ctx *c)
{
	const char *name;
	json_t     *spec;

	json_object_foreach (def->params, name, spec) {
		json_t *dflt = json_object_get(spec, "default");
		if (json_object_get(res, name) != NULL) {
			continue;
		}
		if (dflt != NULL) {
			json_object_set_new(res, name, json_deep_copy(dflt));
		} else if (json_is_true(json_object_get(spec, "required"))) {
			snprintf(c->where, sizeof(c->where), "params.%s", name);
			def_fail(c, "required");
			return (WEFT_EINVAL);
		}
	}
	return (WEFT_OK);
}

weft_err
weft_def_bind_params(
    const weft_def *def, json_t *given, json_t **out, char *err, size_t errlen)
{
	struct def_ctx c = { .err = err, .errlen = errlen, .where = "params" };
	json_t        *res;
	weft_err       rv;

	*out = NULL;
	if (given != NULL && !json_is_object(given)) {
		def_fail(
		    &c, "expected an object, got %s", def_type_name(given));
		return (WEFT_EINVAL);
	}
	res = json_object();
	if ((rv = def_bind_given(def, given, res, &c)) != WEFT_OK ||
	    (rv = def_bind_defaults(def, res, &c)) != WEFT_OK) {
		json_decref(res);
		return (rv);
	}
	*out = res;
	return (WEFT_OK);
}

uint32_t
weft_retry_delay_ms(const weft_retry *r, uint32_t next)
{
	uint64_t d;

	if (next < 2) {
		return (0);
	}
	switch (r->backoff) {
	case WEFT_BACKOFF_FIXED:
		d = r->initial_ms;
		break;
	case WEFT_BACKOFF_LINEAR:
		// Both factors are below 2^32, so the product fits.
		d = (uint64_t) r->initial_ms * (next - 1);
		break;
	default:
		if (next - 2 >= 32) {
			d = r->initial_ms ? UINT64_MAX : 0;
		} else {
			d = (uint64_t) r->initial_ms << (next - 2);
		}
		break;
	}
	return (d > r->max_ms ? r->max_ms : (uint32_t) d);
}
