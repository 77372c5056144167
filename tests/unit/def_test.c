// def_test: workflow definition parsing, validation and DAG compilation,
// parameter binding and retry delays, driven by tables.
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "def.h"
#include "expr.h"

#define T_TIMEOUT (30 * WEFT_TEST_MULT)

// dq returns a copy of s with every ' turned into ", so JSON in the tables
// below reads without escapes; free().
static char *
dq(const char *s)
{
	char *d = strdup(s);

	for (char *p = d; *p != '\0'; p++) {
		if (*p == '\'') {
			*p = '"';
		}
	}
	return (d);
}

// parse parses dq(json) and returns the result code; err gets the message.
static weft_err
parse(const char *json, weft_def **out, char *err, size_t errlen)
{
	char    *text = dq(json);
	weft_err rv   = weft_def_parse(out, text, strlen(text), err, errlen);

	free(text);
	return (rv);
}

struct parse_row {
	const char *name;
	const char *json; // ' stands for "
	bool        want_ok;
	const char *want; // substring of the error (' stands for ")
};

#define ONE_STEP "'steps':[{'id':'a','type':'noop'}]"
#define STEP_A(extra) "{'name':'w','steps':[{'id':'a','type':'noop'" extra "}]}"
#define AB(extra_b)                                      \
	"{'name':'w','steps':[{'id':'a','type':'noop'}," \
	"{'id':'b','type':'noop'" extra_b "}]}"

static const struct parse_row parse_rows[] = {
	// Accepted definitions.
	{ "minimal", "{'name':'w'," ONE_STEP "}", true, NULL },
	{ "full example",
	    "{'name':'etl','version':1,'description':'d',"
	    "'params':{'limit':{'type':'int','default':10,'description':'n'},"
	    "'who':{'type':'string','required':true}},"
	    "'timeout_ms':3600000,'steps':["
	    "{'id':'fetch','type':'exec','with':{'cmd':['./f.sh',"
	    "'${params.limit}']},'retry':{'max_attempts':3,'backoff':"
	    "'exponential','initial_ms':500,'max_ms':30000,'jitter':true},"
	    "'timeout_ms':60000},"
	    "{'id':'report','type':'echo','depends_on':['fetch'],"
	    "'when':'steps.fetch.output.n > 0','trigger':'none_failed'}]}",
	    true, NULL },
	{ "name charset", "{'name':'A-z_0.9'," ONE_STEP "}", true, NULL },
	{ "dotted type", "{'name':'w','steps':[{'id':'a','type':'my.t-1_x'}]}",
	    true, NULL },
	{ "every param type",
	    "{'name':'w','params':{'s':{'type':'string','default':'x'},"
	    "'i':{'type':'int','default':1},'n':{'type':'number','default':1},"
	    "'r':{'type':'number','default':1.5},'b':{'type':'bool',"
	    "'default':false},'o':{'type':'object','default':{}},"
	    "'a':{'type':'array','default':[]},'y':{'type':'any',"
	    "'default':null},'u':{}}," ONE_STEP "}",
	    true, NULL },
	{ "every trigger",
	    "{'name':'w','steps':[{'id':'a','type':'t'},"
	    "{'id':'b','type':'t','depends_on':['a'],'trigger':'all_success'},"
	    "{'id':'c','type':'t','depends_on':['a'],'trigger':'all_done'},"
	    "{'id':'d','type':'t','depends_on':['a'],'trigger':'one_success'},"
	    "{'id':'e','type':'t','depends_on':['a'],'trigger':'all_failed'},"
	    "{'id':'f','type':'t','depends_on':['a'],'trigger':'none_failed'},"
	    "{'id':'g','type':'t','depends_on':['a'],'trigger':'one_failed'},"
	    "{'id':'h','type':'t','depends_on':['a'],'trigger':'one_done'},"
	    "{'id':'i','type':'t','depends_on':['a'],"
	    "'trigger':'none_failed_min_one_success'},"
	    "{'id':'j','type':'t','depends_on':['a'],'trigger':'none_skipped'},"
	    "{'id':'k','type':'t','depends_on':['a'],'trigger':'all_skipped'}]"
	    "}",
	    true, NULL },
	{ "when on params",
	    "{'name':'w','params':{'go':{'type':'bool','default':true}},"
	    "'steps':[{'id':'a','type':'t','when':'params.go && "
	    "length(input) >= 0'}]}",
	    true, NULL },

	// JSON and size.
	{ "malformed json", "{'name':'w',\n 'steps': [}", false,
	    "definition: invalid JSON at line 2, column" },
	{ "empty text", "", false, "definition: invalid JSON at line" },
	{ "duplicate json key", "{'name':'w','name':'v'," ONE_STEP "}", false,
	    "duplicate object key" },
	{ "not an object", "[1]", false,
	    "definition: expected an object, got array" },

	// Top-level fields.
	{ "unknown top field", "{'name':'w','nme':1," ONE_STEP "}", false,
	    "definition: unknown field 'nme'" },
	{ "missing name", "{" ONE_STEP "}", false,
	    "definition: missing required field 'name'" },
	{ "name not string", "{'name':5," ONE_STEP "}", false,
	    "definition: field 'name': expected string, got int" },
	{ "name bad char", "{'name':'a b'," ONE_STEP "}", false,
	    "definition: field 'name': must be 1-128 characters" },
	{ "name empty", "{'name':''," ONE_STEP "}", false,
	    "definition: field 'name': must be 1-128 characters" },
	{ "version zero", "{'name':'w','version':0," ONE_STEP "}", false,
	    "definition: field 'version': must be >= 1, got 0" },
	{ "version string", "{'name':'w','version':'1'," ONE_STEP "}", false,
	    "definition: field 'version': expected int, got string" },
	{ "version real", "{'name':'w','version':1.5," ONE_STEP "}", false,
	    "definition: field 'version': expected int, got number" },
	{ "description type", "{'name':'w','description':[]," ONE_STEP "}",
	    false,
	    "definition: field 'description': expected string, got array" },
	{ "timeout negative", "{'name':'w','timeout_ms':-1," ONE_STEP "}",
	    false,
	    "definition: field 'timeout_ms': must be between 0 and 4294967295, "
	    "got -1" },
	{ "timeout too big",
	    "{'name':'w','timeout_ms':4294967296," ONE_STEP "}", false,
	    "field 'timeout_ms': must be between 0 and 4294967295" },
	{ "timeout bool", "{'name':'w','timeout_ms':true," ONE_STEP "}", false,
	    "definition: field 'timeout_ms': expected int, got bool" },
	{ "retain 30d", "{'name':'w','retain':'30d'," ONE_STEP "}", true,
	    NULL },
	{ "retain 90m", "{'name':'w','retain':'90m'," ONE_STEP "}", true,
	    NULL },
	// Per-dependency conditions.
	{ "depends",
	    "{'name':'w','steps':[{'id':'a','type':'t'},{'id':'b','type':'t'},"
	    "{'id':'c','type':'t','depends':'a.succeeded && (b.failed || "
	    "b.skipped)','with':{'x':'${steps.b.status}'}}]}",
	    true, NULL },
	{ "depends with depends_on",
	    "{'name':'w','steps':[{'id':'a','type':'t'},{'id':'c','type':'t',"
	    "'depends':'a.failed','depends_on':['a']}]}",
	    false, "steps[1] (id 'c'): field 'depends' replaces 'depends_on' "
	    "and 'trigger': give one or the other" },
	{ "depends with trigger",
	    "{'name':'w','steps':[{'id':'a','type':'t'},{'id':'c','type':'t',"
	    "'depends':'a.failed','trigger':'all_done'}]}",
	    false, "steps[1] (id 'c'): field 'depends' replaces 'depends_on' "
	    "and 'trigger': give one or the other" },
	{ "depends unknown step",
	    "{'name':'w','steps':[{'id':'a','type':'t'},{'id':'c','type':'t',"
	    "'depends':'a.failed || x.succeeded'}]}",
	    false, "steps[1] (id 'c'): field 'depends': unknown step 'x'" },
	{ "depends syntax",
	    "{'name':'w','steps':[{'id':'a','type':'t'},{'id':'c','type':'t',"
	    "'depends':'a.failed &'}]}",
	    false, "steps[1] (id 'c'): field 'depends': col 10: unexpected '&' "
	    "(want && or || between terms)" },
	{ "depends bad state",
	    "{'name':'w','steps':[{'id':'a','type':'t'},{'id':'c','type':'t',"
	    "'depends':'a.Failed'}]}",
	    false, "steps[1] (id 'c'): field 'depends': col 3: unknown state "
	    "'Failed' (want succeeded, failed, upstream_failed, skipped, "
	    "cancelled or done)" },
	{ "depends not a string", STEP_A(",'depends':['a']"), false,
	    "steps[0] (id 'a'): field 'depends': expected string, got array" },
	{ "depends on itself",
	    "{'name':'w','steps':[{'id':'a','type':'t','depends':'a.done'}]}",
	    false, "cycle: a -> a" },
	{ "depends: with reads a step it does not name",
	    "{'name':'w','steps':[{'id':'a','type':'t'},{'id':'b','type':'t'},"
	    "{'id':'c','type':'t','depends':'a.failed',"
	    "'with':{'x':'${steps.b.output}'}}]}",
	    false, "steps[2] (id 'c'): field 'with.x': ${steps.b.output}: step 'b' "
	    "is not in depends_on" },

	// Run outcome policy.
	{ "fail_fast and status_from",
	    "{'name':'w','fail_fast':true,'status_from':'leaves'," ONE_STEP "}",
	    true, NULL },
	{ "status_from all", "{'name':'w','status_from':'all'," ONE_STEP "}",
	    true, NULL },
	{ "fail_fast not a bool", "{'name':'w','fail_fast':'yes'," ONE_STEP "}",
	    false, "definition: field 'fail_fast': expected bool, got string" },
	{ "fail_fast null", "{'name':'w','fail_fast':null," ONE_STEP "}",
	    false, "definition: field 'fail_fast': expected bool, got null" },
	{ "status_from unknown",
	    "{'name':'w','status_from':'sinks'," ONE_STEP "}", false,
	    "definition: field 'status_from': unknown value 'sinks' (want one "
	    "of all, leaves)" },
	{ "status_from not a string",
	    "{'name':'w','status_from':['leaves']," ONE_STEP "}", false,
	    "definition: field 'status_from': expected string, got array" },
	{ "status_from on a step", STEP_A(",'status_from':'leaves'"), false,
	    "steps[0] (id 'a'): unknown field 'status_from'" },
	{ "retain number", "{'name':'w','retain':30," ONE_STEP "}", false,
	    "definition: field 'retain': expected string, got int" },
	{ "retain no unit", "{'name':'w','retain':'30'," ONE_STEP "}", false,
	    "definition: field 'retain': '30' is not a duration (want a "
	    "whole number with d, h, m, s or ms, such as '30d')" },
	{ "retain bad unit", "{'name':'w','retain':'3w'," ONE_STEP "}", false,
	    "field 'retain': '3w' is not a duration" },
	{ "retain zero", "{'name':'w','retain':'0d'," ONE_STEP "}", false,
	    "field 'retain': '0d' is not a duration" },
	{ "retain negative", "{'name':'w','retain':'-1d'," ONE_STEP "}", false,
	    "field 'retain': '-1d' is not a duration" },
	{ "missing steps", "{'name':'w'}", false,
	    "definition: missing required field 'steps'" },
	{ "steps object", "{'name':'w','steps':{}}", false,
	    "definition: field 'steps': expected array, got object" },
	{ "steps empty", "{'name':'w','steps':[]}", false,
	    "definition: field 'steps': needs at least one step" },

	// Parameter specs.
	{ "params array", "{'name':'w','params':[]," ONE_STEP "}", false,
	    "definition: field 'params': expected object, got array" },
	{ "param not object", "{'name':'w','params':{'x':5}," ONE_STEP "}",
	    false, "params.x: expected an object, got int" },
	{ "param unknown field",
	    "{'name':'w','params':{'x':{'type':'int','dflt':1}}," ONE_STEP "}",
	    false, "params.x: unknown field 'dflt'" },
	{ "param unknown type",
	    "{'name':'w','params':{'x':{'type':'integer'}}," ONE_STEP "}",
	    false, "params.x: field 'type': unknown type 'integer'" },
	{ "param type not string",
	    "{'name':'w','params':{'x':{'type':1}}," ONE_STEP "}", false,
	    "params.x: field 'type': expected string, got int" },
	{ "param default mismatch",
	    "{'name':'w','params':{'x':{'type':'int','default':'a'}}," ONE_STEP
	    "}",
	    false, "params.x: field 'default': expected int, got string" },
	{ "param int default real",
	    "{'name':'w','params':{'x':{'type':'int','default':1.5}}," ONE_STEP
	    "}",
	    false, "params.x: field 'default': expected int, got number" },
	{ "param required not bool",
	    "{'name':'w','params':{'x':{'required':'yes'}}," ONE_STEP "}",
	    false, "params.x: field 'required': expected bool, got string" },
	{ "param description type",
	    "{'name':'w','params':{'x':{'description':1}}," ONE_STEP "}", false,
	    "params.x: field 'description': expected string, got int" },
	{ "param bad name", "{'name':'w','params':{'a.b':{}}," ONE_STEP "}",
	    false, "params.a.b: invalid parameter name" },
	// Secret parameters: a bool flag, never with a default.
	{ "secret param",
	    "{'name':'w','params':{'tok':{'type':'string','secret':true,"
	    "'required':true},'x':{'secret':false,'default':1}},"
	    "'steps':[{'id':'a','type':'t','with':{'t':'${params.tok}'}}]}",
	    true, NULL },
	{ "secret not bool",
	    "{'name':'w','params':{'x':{'secret':'yes'}}," ONE_STEP "}", false,
	    "params.x: field 'secret': expected bool, got string" },
	{ "secret number",
	    "{'name':'w','params':{'x':{'secret':1}}," ONE_STEP "}", false,
	    "params.x: field 'secret': expected bool, got int" },
	{ "secret null",
	    "{'name':'w','params':{'x':{'secret':null}}," ONE_STEP "}", false,
	    "params.x: field 'secret': expected bool, got null" },
	{ "secret with default",
	    "{'name':'w','params':{'x':{'type':'string','secret':true,"
	    "'default':'hunter2'}}," ONE_STEP "}",
	    false, "params.x: a secret parameter cannot have a default" },
	{ "secret misspelt",
	    "{'name':'w','params':{'x':{'secrets':true}}," ONE_STEP "}", false,
	    "params.x: unknown field 'secrets'" },

	// Step fields.
	{ "step not object", "{'name':'w','steps':[5]}", false,
	    "steps[0]: expected an object, got int" },
	{ "step missing id", "{'name':'w','steps':[{'type':'t'}]}", false,
	    "steps[0]: missing required field 'id'" },
	{ "step id not string", "{'name':'w','steps':[{'id':1,'type':'t'}]}",
	    false, "steps[0]: field 'id': expected string, got int" },
	{ "step id bad char", "{'name':'w','steps':[{'id':'a.b','type':'t'}]}",
	    false, "steps[0]: field 'id': must be 1-128 characters" },
	{ "step id empty", "{'name':'w','steps':[{'id':'','type':'t'}]}", false,
	    "steps[0]: field 'id': must be 1-128 characters" },
	{ "duplicate id",
	    "{'name':'w','steps':[{'id':'a','type':'t'},{'id':'b','type':'t'},"
	    "{'id':'a','type':'t'}]}",
	    false, "steps[2] (id 'a'): duplicate id, first used by steps[0]" },
	{ "unknown step field", STEP_A(",'dependson':['x']"), false,
	    "steps[0] (id 'a'): unknown field 'dependson'" },
	{ "map over input", STEP_A(",'map':'input.xs','max_parallel':2,"
	    "'with':{'x':'${item.name}','i':'${index}'}"), true, NULL },
	{ "map over a dependency",
	    AB(",'depends_on':['a'],'map':'steps.a.output.files'"), true, NULL },
	{ "map over a step not depended on",
	    AB(",'map':'steps.a.output.files'"), false,
	    "steps[1] (id 'b'): field 'map': ${steps.a.output.files}: step 'a' "
	    "is not in depends_on" },
	{ "map bad root", STEP_A(",'map':'files'"), false,
	    "steps[0] (id 'a'): field 'map': a path that starts with input, "
	    "params or steps" },
	{ "map not a string", STEP_A(",'map':3"), false,
	    "steps[0] (id 'a'): field 'map': expected string or array, got "
	    "int" },
	{ "map over a literal list",
	    STEP_A(",'map':[{'n':1},{'n':2}],'with':{'n':'${item.n}'}"), true,
	    NULL },
	{ "map over an empty literal list", STEP_A(",'map':[]"), true, NULL },
	{ "map over params", "{'name':'w','params':{'xs':{'type':'array'}},"
	    "'steps':[{'id':'a','type':'t','map':'params.xs'}]}", true, NULL },
	{ "map over an unknown param", STEP_A(",'map':'params.xs'"), false,
	    "steps[0] (id 'a'): field 'map': ${params.xs}: unknown parameter "
	    "'xs'" },
	{ "map over a projection",
	    AB(",'depends_on':['a'],'map':'steps.a.output[*].files'"), true,
	    NULL },
	{ "when per item", STEP_A(",'map':'input.xs','when':'item.size > 3 "
	    "&& index != 0 && input.go'"), true, NULL },
	{ "when item outside a map step", STEP_A(",'when':'item.size > 3'"),
	    false,
	    "steps[0] (id 'a'): field 'when': col 1: item only in a map step" },
	{ "when index outside a map step", STEP_A(",'when':'index == 0'"),
	    false,
	    "steps[0] (id 'a'): field 'when': col 1: index only in a map step" },
	{ "projection of a map item", STEP_A(",'map':'input.xs','with':"
	    "{'n':'${item[*].n}'}"), true, NULL },
	{ "projection of an unknown root", STEP_A(",'with':{'n':'${env[*]}'}"),
	    false, "field 'with.n': ${env[*]}: a reference starts with input" },
	{ "map_tolerate", STEP_A(",'map':'input.xs','map_tolerate':2"), true,
	    NULL },
	{ "map_tolerate zero", STEP_A(",'map':'input.xs','map_tolerate':0"),
	    true, NULL },
	{ "map_tolerate without map", STEP_A(",'map_tolerate':1"), false,
	    "steps[0] (id 'a'): field 'map_tolerate': only with 'map'" },
	{ "map_tolerate negative",
	    STEP_A(",'map':'input.xs','map_tolerate':-1"), false,
	    "steps[0] (id 'a'): field 'map_tolerate': must be between 0 and "
	    "4294967295, got -1" },
	{ "map_tolerate not a number",
	    STEP_A(",'map':'input.xs','map_tolerate':'1'"), false,
	    "steps[0] (id 'a'): field 'map_tolerate': expected int, got "
	    "string" },
	{ "max_parallel without map", STEP_A(",'max_parallel':2"), false,
	    "steps[0] (id 'a'): field 'max_parallel': only with 'map'" },
	{ "max_parallel zero", STEP_A(",'map':'input.xs','max_parallel':0"),
	    false, "steps[0] (id 'a'): field 'max_parallel'" },
	{ "item outside a map step", STEP_A(",'with':{'x':'${item}'}"), false,
	    "(item and index only in a map step)" },
	{ "expand not bool", STEP_A(",'expand':'yes'"), false,
	    "steps[0] (id 'a'): field 'expand': expected bool, got string" },
	{ "missing type", "{'name':'w','steps':[{'id':'a'}]}", false,
	    "steps[0] (id 'a'): missing required field 'type'" },
	{ "type empty", "{'name':'w','steps':[{'id':'a','type':''}]}", false,
	    "steps[0] (id 'a'): field 'type': must be 1-128 characters" },
	{ "type bad char", "{'name':'w','steps':[{'id':'a','type':'a/b'}]}",
	    false,
	    "steps[0] (id 'a'): field 'type': must be 1-128 characters" },
	{ "type not string", "{'name':'w','steps':[{'id':'a','type':5}]}",
	    false,
	    "steps[0] (id 'a'): field 'type': expected string, got int" },
	{ "with array", STEP_A(",'with':[]"), false,
	    "steps[0] (id 'a'): field 'with': expected object, got array" },
	{ "depends_on string", AB(",'depends_on':'a'"), false,
	    "steps[1] (id 'b'): field 'depends_on': expected array, got "
	    "string" },
	{ "depends_on element", AB(",'depends_on':['a',1]"), false,
	    "steps[1] (id 'b'): field 'depends_on[1]': expected string, got "
	    "int" },
	{ "unknown dependency", AB(",'depends_on':['a','x']"), false,
	    "steps[1] (id 'b'): unknown dependency 'x'" },
	{ "dependency twice", AB(",'depends_on':['a','a']"), false,
	    "steps[1] (id 'b'): dependency 'a' listed twice" },
	{ "schedule timeout", STEP_A(",'schedule_timeout_ms':5000"), true, NULL },
	{ "schedule timeout negative", STEP_A(",'schedule_timeout_ms':-1"), false,
	    "steps[0] (id 'a'): field 'schedule_timeout_ms': must be between 0 "
	    "and 4294967295, got -1" },
	{ "schedule timeout string", STEP_A(",'schedule_timeout_ms':'5s'"), false,
	    "steps[0] (id 'a'): field 'schedule_timeout_ms': expected int, got "
	    "string" },
	{ "schedule timeout default fraction",
	    "{'name':'w','schedule_timeout_ms':1.5," ONE_STEP "}", false,
	    "definition: field 'schedule_timeout_ms': expected int, got number" },
	{ "step timeout negative", STEP_A(",'timeout_ms':-5"), false,
	    "steps[0] (id 'a'): field 'timeout_ms': must be between 0 and" },
	{ "heartbeat timeout", STEP_A(",'heartbeat_timeout_ms':30000"), true,
	    NULL },
	{ "heartbeat timeout negative",
	    STEP_A(",'heartbeat_timeout_ms':-1"), false,
	    "steps[0] (id 'a'): field 'heartbeat_timeout_ms': must be between 0 "
	    "and 4294967295, got -1" },
	{ "heartbeat timeout not an integer",
	    STEP_A(",'heartbeat_timeout_ms':1.5"), false,
	    "steps[0] (id 'a'): field 'heartbeat_timeout_ms': expected int, got "
	    "number" },
	{ "heartbeat timeout string",
	    STEP_A(",'heartbeat_timeout_ms':'30s'"), false,
	    "steps[0] (id 'a'): field 'heartbeat_timeout_ms': expected int, got "
	    "string" },
	{ "trigger unknown", STEP_A(",'trigger':'any'"), false,
	    "steps[0] (id 'a'): field 'trigger': unknown value 'any' (want one "
	    "of all_success, all_done, one_success, none_failed, all_failed, "
	    "one_failed, one_done, none_failed_min_one_success, none_skipped, "
	    "all_skipped)" },
	{ "trigger not string", STEP_A(",'trigger':1"), false,
	    "steps[0] (id 'a'): field 'trigger': expected string, got int" },

	// Retry policy.
	{ "retry not object", STEP_A(",'retry':5"), false,
	    "steps[0] (id 'a'): field 'retry': expected object, got int" },
	{ "retry unknown field", STEP_A(",'retry':{'delay':1}"), false,
	    "steps[0] (id 'a'): unknown field 'retry.delay'" },
	{ "retry attempts zero", STEP_A(",'retry':{'max_attempts':0}"), false,
	    "steps[0] (id 'a'): field 'retry.max_attempts': must be between 1 "
	    "and 1000, got 0" },
	{ "retry attempts 1001", STEP_A(",'retry':{'max_attempts':1001}"),
	    false,
	    "field 'retry.max_attempts': must be between 1 and 1000, got "
	    "1001" },
	{ "retry attempts string", STEP_A(",'retry':{'max_attempts':'3'}"),
	    false, "field 'retry.max_attempts': expected int, got string" },
	{ "retry backoff unknown", STEP_A(",'retry':{'backoff':'quadratic'}"),
	    false, "field 'retry.backoff': unknown value 'quadratic'" },
	{ "retry max below initial",
	    STEP_A(",'retry':{'initial_ms':5000,'max_ms':1000}"), false,
	    "steps[0] (id 'a'): field 'retry.max_ms': must be >= "
	    "retry.initial_ms (5000), got 1000" },
	{ "retry max below default initial", STEP_A(",'retry':{'max_ms':500}"),
	    false, "field 'retry.max_ms': must be >= retry.initial_ms (1000)" },
	{ "retry jitter string", STEP_A(",'retry':{'jitter':'yes'}"), false,
	    "field 'retry.jitter': expected bool, got string" },
	{ "retry initial negative", STEP_A(",'retry':{'initial_ms':-1}"), false,
	    "field 'retry.initial_ms': must be between 0 and 4294967295" },

	// Conditions.
	{ "when not string", STEP_A(",'when':true"), false,
	    "steps[0] (id 'a'): field 'when': expected string, got bool" },
	{ "when syntax", STEP_A(",'when':'(input.x == 1'"), false,
	    "steps[0] (id 'a'): field 'when': col 14: expected " }, // ')'
	{ "when string escape",
	    AB(",'depends_on':['a'],'when':'steps.a.status == \\'ok\\' &&'"),
	    false,
	    "steps[1] (id 'b'): field 'when': col 26: unexpected end of "
	    "expression" },
	{ "when unknown root", STEP_A(",'when':'stepz.a'"), false,
	    "field 'when': col 1: unknown name 'stepz.a'" },
	{ "when unknown step",
	    AB(",'depends_on':['a'],'when':'steps.zz.output'"), false,
	    "steps[1] (id 'b'): field 'when': col 1: unknown step 'zz'" },
	{ "when not a dependency", AB(",'when':'input.x || steps.a.output'"),
	    false,
	    "steps[1] (id 'b'): field 'when': col 12: step 'a' is not in "
	    "depends_on" },
	{ "when on itself", STEP_A(",'when':'steps.a.status'"), false,
	    "field 'when': col 1: step 'a' is not in depends_on" },
	{ "when unknown param", STEP_A(",'when':'params.nope == 1'"), false,
	    "steps[0] (id 'a'): field 'when': col 1: unknown parameter "
	    "'nope'" },
	{ "with reference to a dependency",
	    AB(",'depends_on':['a'],'with':{'x':['${steps.a.output.n}']}"),
	    true, NULL },
	{ "with reference not a dependency",
	    AB(",'with':{'x':'n=${steps.a.output.n}'}"), false,
	    "steps[1] (id 'b'): field 'with.x': ${steps.a.output.n}: step 'a' "
	    "is not in depends_on" },
	{ "with unknown param", STEP_A(",'with':{'x':{'y':'${params.nope}'}}"),
	    false,
	    "steps[0] (id 'a'): field 'with.x.y': ${params.nope}: unknown "
	    "parameter 'nope'" },
	{ "with unknown root", STEP_A(",'with':{'x':'${env.HOME}'}"), false,
	    "field 'with.x': ${env.HOME}: a reference starts with input, params "
	    "or steps" },
	{ "with unclosed reference",
	    STEP_A(",'with':{'x':['ok','hello ${params.who']}"), false,
	    "steps[0] (id 'a'): field 'with.x[1]': unclosed '${' in "
	    "'hello ${params.who'" },
	{ "with unclosed after a closed one",
	    STEP_A(",'with':{'m':'${input.a} and ${input.b'}"), false,
	    "field 'with.m': unclosed '${'" },
	{ "with projection of a dependency",
	    AB(",'depends_on':['a'],'with':{'s':'${steps.a.output[*].score}'}"),
	    true, NULL },
	{ "with projection not a dependency",
	    AB(",'with':{'s':'${steps.a.output[*].score}'}"), false,
	    "field 'with.s': ${steps.a.output[*].score}: step 'a' is not in "
	    "depends_on" },

	// exec needs with.cmd.
	{ "exec without with", "{'name':'w','steps':[{'id':'a','type':'exec'}]}",
	    false,
	    "steps[0] (id 'a'): field 'with.cmd': required for an exec step" },
	{ "exec without cmd",
	    "{'name':'w','steps':[{'id':'a','type':'exec','with':{'cwd':'/'}}]}",
	    false,
	    "steps[0] (id 'a'): field 'with.cmd': required for an exec step" },
	{ "exec cmd empty",
	    "{'name':'w','steps':[{'id':'a','type':'exec','with':{'cmd':[]}}]}",
	    false,
	    "steps[0] (id 'a'): field 'with.cmd': expected a non-empty array "
	    "of strings, got []" },
	{ "exec cmd a plain string",
	    "{'name':'w','steps':[{'id':'a','type':'exec','with':{'cmd':"
	    "'ls -l'}}]}",
	    false, "field 'with.cmd': expected an array of strings" },
	{ "exec cmd an object",
	    "{'name':'w','steps':[{'id':'a','type':'exec','with':{'cmd':{}}}]}",
	    false,
	    "field 'with.cmd': expected a non-empty array of strings, got "
	    "object" },
	{ "exec cmd element not a string",
	    "{'name':'w','steps':[{'id':'a','type':'exec','with':{'cmd':"
	    "['x.sh',3]}}]}",
	    false, "steps[0] (id 'a'): field 'with.cmd[1]': expected string, "
	    "got int" },
	{ "exec cmd from a parameter",
	    "{'name':'w','params':{'c':{'type':'array','default':['x']}},"
	    "'steps':[{'id':'a','type':'exec','with':{'cmd':'${params.c}'}}]}",
	    true, NULL },
	{ "exec-like type needs no cmd",
	    "{'name':'w','steps':[{'id':'a','type':'exec2'}]}", true, NULL },

	// Parameter rules: checked here, and the default against them.
	{ "param rules",
	    "{'name':'w','params':{'env':{'type':'string','enum':['dev',"
	    "'prod'],'default':'dev'},'n':{'type':'int','minimum':1,"
	    "'maximum':10,'default':10},'r':{'type':'number','minimum':-0.5},"
	    "'tag':{'type':'string','pattern':'^v[0-9]+$','default':'v12'},"
	    "'any':{'pattern':'x','minimum':0,'enum':[1,'x',null]}},"
	    ONE_STEP "}",
	    true, NULL },
	{ "enum not an array",
	    "{'name':'w','params':{'e':{'enum':'a'}}," ONE_STEP "}", false,
	    "params.e: field 'enum': expected array, got string" },
	{ "enum empty", "{'name':'w','params':{'e':{'enum':[]}}," ONE_STEP "}",
	    false, "params.e: field 'enum': needs at least one value" },
	{ "enum of another type",
	    "{'name':'w','params':{'e':{'type':'int','enum':[1,'2']}},"
	    ONE_STEP "}",
	    false, "params.e: field 'enum[1]': expected int, got string" },
	{ "default outside enum",
	    "{'name':'w','params':{'e':{'enum':['a','b'],'default':'c'}},"
	    ONE_STEP "}",
	    false,
	    "params.e: field 'default': must be one of ['a','b'] (enum), "
	    "got 'c'" },
	{ "minimum not a number",
	    "{'name':'w','params':{'n':{'type':'int','minimum':'1'}},"
	    ONE_STEP "}",
	    false, "params.n: field 'minimum': expected number, got string" },
	{ "minimum on a string",
	    "{'name':'w','params':{'s':{'type':'string','minimum':1}},"
	    ONE_STEP "}",
	    false,
	    "params.s: field 'minimum': only for a parameter of type int, "
	    "number or any, not string" },
	{ "maximum on a bool",
	    "{'name':'w','params':{'s':{'type':'bool','maximum':1}},"
	    ONE_STEP "}",
	    false, "params.s: field 'maximum': only for a parameter of type" },
	{ "maximum below minimum",
	    "{'name':'w','params':{'n':{'minimum':5,'maximum':4}}," ONE_STEP
	    "}",
	    false, "params.n: field 'maximum': must be >= minimum" },
	{ "default below minimum",
	    "{'name':'w','params':{'n':{'type':'int','minimum':5,"
	    "'default':4}}," ONE_STEP "}",
	    false,
	    "params.n: field 'default': must be >= 5 (minimum), got 4" },
	{ "default above maximum",
	    "{'name':'w','params':{'n':{'type':'number','maximum':2.5,"
	    "'default':3}}," ONE_STEP "}",
	    false,
	    "params.n: field 'default': must be <= 2.5 (maximum), got 3" },
	{ "pattern not a string",
	    "{'name':'w','params':{'s':{'pattern':1}}," ONE_STEP "}", false,
	    "params.s: field 'pattern': expected string, got int" },
	{ "pattern on an int",
	    "{'name':'w','params':{'s':{'type':'int','pattern':'1'}},"
	    ONE_STEP "}",
	    false,
	    "params.s: field 'pattern': only for a parameter of type string "
	    "or any, not int" },
	{ "pattern invalid",
	    "{'name':'w','params':{'s':{'type':'string','pattern':'a(b'}},"
	    ONE_STEP "}",
	    false,
	    "params.s: field 'pattern': 'a(b' is not a valid POSIX extended "
	    "regular expression: " },
	{ "pattern with a back-reference",
	    "{'name':'w','params':{'s':{'pattern':'^(a+)\\\\1$'}}," ONE_STEP
	    "}",
	    false,
	    "params.s: field 'pattern': back-references (\\1) are not "
	    "supported" },
	{ "pattern whose nested bounds expand past the limit",
	    "{'name':'w','params':{'s':{'pattern':'^(a{100}){100}$'}},"
	    ONE_STEP "}",
	    false,
	    "params.s: field 'pattern': too complex: its repetitions expand "
	    "to more than 1024 nodes" },
	{ "pattern of stacked + (def_fuzz's 2 GiB compile)",
	    "{'name':'w','params':{'s':{'pattern':'a5++++++++++++++++[a-z]$'}},"
	    ONE_STEP "}",
	    false,
	    "params.s: field 'pattern': too complex" },
	{ "pattern with a bound past the limit",
	    "{'name':'w','params':{'s':{'pattern':'x{1,5000}'}}," ONE_STEP "}",
	    false, "params.s: field 'pattern': too complex" },
	{ "pattern with bounds, classes and groups within the limit",
	    "{'name':'w','params':{'s':{'pattern':"
	    "'^([[:alpha:]][a-z0-9_]{2,30})(\\\\.[]a-]{1,8}){0,4}|x+y+$'}},"
	    ONE_STEP "}",
	    true, NULL },
	{ "pattern with an escaped backslash before a digit",
	    "{'name':'w','params':{'s':{'pattern':'^a\\\\\\\\1$'}}," ONE_STEP
	    "}",
	    true, NULL },
	{ "default not matching the pattern",
	    "{'name':'w','params':{'s':{'pattern':'^[a-z]+$','default':"
	    "'A1'}}," ONE_STEP "}",
	    false,
	    "params.s: field 'default': must match pattern '^[a-z]+$', got "
	    "'A1'" },
	{ "unknown param field",
	    "{'name':'w','params':{'s':{'patern':'x'}}," ONE_STEP "}", false,
	    "params.s: unknown field 'patern'" },

	// Cycles, named in order from the first step found on one.
	{ "self dependency", STEP_A(",'depends_on':['a']"), false,
	    "cycle: a -> a" },
	{ "two cycle",
	    "{'name':'w','steps':[{'id':'a','type':'t','depends_on':['b']},"
	    "{'id':'b','type':'t','depends_on':['a']}]}",
	    false, "cycle: a -> b -> a" },
	{ "three cycle",
	    "{'name':'w','steps':[{'id':'x','type':'t'},"
	    "{'id':'a','type':'t','depends_on':['c']},"
	    "{'id':'b','type':'t','depends_on':['a']},"
	    "{'id':'c','type':'t','depends_on':['b']},"
	    "{'id':'d','type':'t','depends_on':['x']}]}",
	    false, "cycle: a -> b -> c -> a" },
	{ "cycle below a root",
	    "{'name':'w','steps':[{'id':'r','type':'t'},"
	    "{'id':'a','type':'t','depends_on':['r','c']},"
	    "{'id':'b','type':'t','depends_on':['a']},"
	    "{'id':'c','type':'t','depends_on':['b']}]}",
	    false, "cycle: a -> b -> c -> a" },
};

Test(def, parse_table, .timeout = T_TIMEOUT)
{
	for (size_t i = 0; i < sizeof(parse_rows) / sizeof(parse_rows[0]);
	     i++) {
		const struct parse_row *r        = &parse_rows[i];
		weft_def               *def      = NULL;
		char                    err[512] = "";
		weft_err rv = parse(r->json, &def, err, sizeof(err));

		if (r->want_ok) {
			cr_expect(rv == WEFT_OK, "%s: want ok, got %s: %s",
			    r->name, weft_err_name(rv), err);
			cr_expect(def != NULL, "%s: no definition", r->name);
		} else {
			char *want = dq(r->want);
			cr_expect(rv == WEFT_EDEF, "%s: want EDEF, got %s",
			    r->name, weft_err_name(rv));
			cr_expect(
			    def == NULL, "%s: definition on failure", r->name);
			cr_expect(strstr(err, want) != NULL,
			    "%s: error \"%s\" lacks \"%s\"", r->name, err,
			    want);
			cr_expect(strchr(err, '\n') == NULL,
			    "%s: multi-line error", r->name);
			free(want);
		}
		weft_def_free(def);
	}
}

Test(def, cycle_message_is_exact, .timeout = T_TIMEOUT)
{
	weft_def *def = NULL;
	char      err[256];

	cr_assert_eq(parse("{'name':'w','steps':[{'id':'x','type':'t'},"
	                   "{'id':'a','type':'t','depends_on':['c']},"
	                   "{'id':'b','type':'t','depends_on':['a']},"
	                   "{'id':'c','type':'t','depends_on':['b']}]}",
	                 &def, err, sizeof(err)),
	    WEFT_EDEF);
	cr_expect_str_eq(err, "cycle: a -> b -> c -> a");
}

Test(def, error_text_is_escaped_and_one_line, .timeout = T_TIMEOUT)
{
	const char *text = "{\"name\":\"w\",\"a\\nb\\\"\":1,\"steps\":[]}";
	weft_def   *def  = NULL;
	char        err[256];

	cr_assert_eq(weft_def_parse(&def, text, strlen(text), err, sizeof(err)),
	    WEFT_EDEF);
	cr_expect_str_eq(err, "definition: unknown field \"a\\x0ab\\\"\"");
}

Test(def, small_error_buffer_truncates, .timeout = T_TIMEOUT)
{
	weft_def *def = NULL;
	char      err[8];

	cr_assert_eq(parse("{'name':'w','steps':[{'id':'a','type':'t',"
	                   "'depends_on':['a']}]}",
	                 &def, err, sizeof(err)),
	    WEFT_EDEF);
	cr_expect_str_eq(err, "cycle: ");
	cr_assert_eq(parse("{}", &def, NULL, 0), WEFT_EDEF);
}

// The 128-byte limit on names and ids.
Test(def, name_length_limit, .timeout = T_TIMEOUT)
{
	char      name[130];
	char      text[512];
	char      err[256];
	weft_def *def = NULL;

	memset(name, 'n', 128);
	name[128] = '\0';
	snprintf(text, sizeof(text),
	    "{\"name\":\"%s\",\"steps\":[{\"id\":\"%s\",\"type\":\"%s\"}]}",
	    name, name, name);
	cr_assert_eq(weft_def_parse(&def, text, strlen(text), err, sizeof(err)),
	    WEFT_OK, "%s", err);
	weft_def_free(def);
	strcat(name, "n");
	snprintf(text, sizeof(text),
	    "{\"name\":\"w\",\"steps\":[{\"id\":\"%s\",\"type\":\"t\"}]}",
	    name);
	cr_assert_eq(weft_def_parse(&def, text, strlen(text), err, sizeof(err)),
	    WEFT_EDEF);
	cr_expect(
	    strstr(err, "steps[0]: field \"id\": must be") != NULL, "%s", err);
}

Test(def, oversize_text, .timeout = T_TIMEOUT)
{
	size_t    len  = WEFT_DEF_MAX_BYTES + 1;
	char     *text = malloc(len);
	char      err[256];
	weft_def *def = NULL;

	memset(text, ' ', len);
	cr_assert_eq(
	    weft_def_parse(&def, text, len, err, sizeof(err)), WEFT_ETOOBIG);
	cr_expect(def == NULL);
	cr_expect_str_eq(err,
	    "definition: 8388609 bytes exceed the definition limit of "
	    "8388608 bytes (8 MiB)");
	free(text);
}

// gen builds a definition of n steps; dep(i) gives the dependency of step i
// or -1.
static char *
gen(size_t n, long (*dep)(size_t), size_t *len)
{
	char *text = NULL;
	FILE *f    = open_memstream(&text, len);

	fprintf(f, "{\"name\":\"gen\",\"steps\":[");
	for (size_t i = 0; i < n; i++) {
		long d = dep(i);
		fprintf(
		    f, "%s{\"id\":\"s%zu\",\"type\":\"t\"", i ? "," : "", i);
		if (d >= 0) {
			fprintf(f, ",\"depends_on\":[\"s%ld\"]", d);
		}
		fprintf(f, "}");
	}
	fprintf(f, "]}");
	fclose(f);
	return (text);
}

static long
dep_none(size_t i)
{
	(void) i;
	return (-1);
}

static long
dep_root(size_t i)
{
	return (i == 0 ? -1 : 0);
}

static long
dep_prev(size_t i)
{
	return ((long) i - 1);
}

static long
dep_prev_cyclic(size_t i)
{
	return (i == 0 ? 49999 : (long) i - 1);
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((double) ts.tv_sec + (double) ts.tv_nsec / 1e9);
}

Test(def, fan_out_10000, .timeout = T_TIMEOUT)
{
	size_t    len;
	char     *text = gen(10000, dep_root, &len);
	char      err[256];
	weft_def *def = NULL;

	cr_assert_eq(weft_def_parse(&def, text, len, err, sizeof(err)), WEFT_OK,
	    "%s", err);
	cr_expect_eq(def->nsteps, 10000);
	cr_expect_eq(def->nroots, 1);
	cr_expect_eq(def->roots[0], 0);
	cr_expect_eq(def->nsinks, 9999);
	cr_expect_eq(def->steps[0].nouts, 9999);
	for (size_t i = 1; i < 10000; i++) {
		cr_assert_eq(def->steps[i].ndeps, 1);
		cr_assert_eq(def->steps[i].deps[0], 0);
		cr_assert_eq(def->steps[0].outs[i - 1], i);
		cr_assert_eq(def->sinks[i - 1], i);
	}
	cr_expect_eq(weft_def_find(def, "s9999"), 9999);
	weft_def_free(def);
	free(text);
}

// A 50,000-step chain exercises the iterative cycle check (a recursive one
// would be deep) and linear time; closing it into a ring must be reported.
Test(def, long_chain_and_ring, .timeout = T_TIMEOUT)
{
	size_t    len;
	char     *text = gen(50000, dep_prev, &len);
	char      err[256];
	weft_def *def = NULL;
	double    t0  = now_s();

	cr_assert_eq(weft_def_parse(&def, text, len, err, sizeof(err)), WEFT_OK,
	    "%s", err);
	cr_expect_lt(now_s() - t0, 5.0 * WEFT_TEST_MULT, "parse too slow");
	cr_expect_eq(def->nroots, 1);
	cr_expect_eq(def->nsinks, 1);
	cr_expect_eq(def->sinks[0], 49999);
	weft_def_free(def);
	free(text);

	text = gen(50000, dep_prev_cyclic, &len);
	cr_assert_eq(
	    weft_def_parse(&def, text, len, err, sizeof(err)), WEFT_EDEF);
	cr_expect(
	    strncmp(err, "cycle: s0 -> s1 -> s2 -> ", 25) == 0, "%s", err);
	free(text);
}

Test(def, step_limit, .timeout = T_TIMEOUT)
{
	size_t    len;
	char     *text = gen(WEFT_DEF_MAX_STEPS + 1, dep_none, &len);
	char      err[256];
	weft_def *def = NULL;

	cr_assert_lt(len, WEFT_DEF_MAX_BYTES);
	cr_assert_eq(
	    weft_def_parse(&def, text, len, err, sizeof(err)), WEFT_EDEF);
	cr_expect_str_eq(err,
	    "definition: field \"steps\": 100001 steps exceed "
	    "the limit of 100000");
	free(text);
}

Test(def, diamond_compiles, .timeout = T_TIMEOUT)
{
	weft_def *def = NULL;
	char      err[256];

	cr_assert_eq(
	    parse(
	        "{'name':'dia','description':'four','timeout_ms':9,"
	        "'params':{'p':{'type':'int','default':1}},'steps':["
	        "{'id':'a','type':'t','with':{'k':1}},"
	        "{'id':'b','type':'t','depends_on':['a'],"
	        "'retry':{'max_attempts':4,'backoff':'linear','jitter':true}},"
	        "{'id':'c','type':'t','depends_on':['a'],'timeout_ms':7},"
	        "{'id':'d','type':'t','depends_on':['c','b'],"
	        "'trigger':'all_done','when':'steps.b.status == "
	        "steps.c.status'}"
	        "]}",
	        &def, err, sizeof(err)),
	    WEFT_OK, "%s", err);
	cr_expect_str_eq(def->name, "dia");
	cr_expect_eq(def->version, 1);
	cr_expect_str_eq(def->description, "four");
	cr_expect_eq(def->timeout_ms, 9);
	cr_expect_eq(
	    json_integer_value(json_object_get(def->json, "version")), 1);
	cr_expect_not_null(json_object_get(def->params, "p"));
	cr_expect_eq(def->nsteps, 4);
	cr_expect_eq(def->nroots, 1);
	cr_expect_eq(def->roots[0], 0);
	cr_expect_eq(def->nsinks, 1);
	cr_expect_eq(def->sinks[0], 3);
	cr_expect_eq(def->steps[0].nouts, 2);
	cr_expect_eq(def->steps[0].outs[0], 1);
	cr_expect_eq(def->steps[0].outs[1], 2);
	cr_expect_eq(def->steps[3].ndeps, 2);
	cr_expect_eq(def->steps[3].deps[0], 2);
	cr_expect_eq(def->steps[3].deps[1], 1);
	cr_expect_eq(def->steps[1].outs[0], 3);
	cr_expect_eq(def->steps[2].outs[0], 3);
	cr_expect_eq(def->steps[0].ndeps, 0);
	cr_expect_eq(def->steps[3].nouts, 0);
	cr_expect_eq(weft_def_find(def, "c"), 2);
	cr_expect_eq(weft_def_find(def, "zz"), -1);

	// Defaults and explicit values.
	cr_expect_str_eq(def->steps[0].type, "t");
	cr_expect_eq(
	    json_integer_value(json_object_get(def->steps[0].with, "k")), 1);
	cr_expect_null(def->steps[1].with);
	cr_expect_eq(def->steps[0].retry.max_attempts, 1);
	cr_expect_eq(def->steps[0].retry.backoff, WEFT_BACKOFF_EXPONENTIAL);
	cr_expect_eq(def->steps[0].retry.initial_ms, 1000);
	cr_expect_eq(def->steps[0].retry.max_ms, 60000);
	cr_expect_eq(def->steps[0].retry.jitter, false);
	cr_expect_eq(def->steps[1].retry.max_attempts, 4);
	cr_expect_eq(def->steps[1].retry.backoff, WEFT_BACKOFF_LINEAR);
	cr_expect_eq(def->steps[1].retry.jitter, true);
	cr_expect_eq(def->steps[2].timeout_ms, 7);
	cr_expect_eq(def->steps[0].trigger, WEFT_TRIGGER_ALL_SUCCESS);
	cr_expect_eq(def->steps[3].trigger, WEFT_TRIGGER_ALL_DONE);
	cr_expect_null(def->steps[0].when);
	cr_expect_null(def->steps[0].when_expr);
	cr_expect_str_eq(
	    def->steps[3].when, "steps.b.status == steps.c.status");
	cr_expect_not_null(def->steps[3].when_expr);
	weft_def_free(def);
}

Test(def, version_kept, .timeout = T_TIMEOUT)
{
	weft_def *def = NULL;
	char      err[256];

	cr_assert_eq(parse("{'name':'w','version':7," ONE_STEP "}", &def, err,
	                 sizeof(err)),
	    WEFT_OK, "%s", err);
	cr_expect_eq(def->version, 7);
	cr_expect_eq(
	    json_integer_value(json_object_get(def->json, "version")), 7);
	cr_expect_null(def->description);
	cr_expect_eq(json_object_size(def->params), 0);
	weft_def_free(def);
	weft_def_free(NULL);
}

struct bind_row {
	const char *name;
	const char *params; // the "params" spec (' stands for ")
	const char *given;  // NULL passes NULL
	const char *want;   // bound object on success, else error substring
	bool        want_ok;
};

static const struct bind_row bind_rows[] = {
	{ "default filled", "{'limit':{'type':'int','default':10}}", "{}",
	    "{'limit':10}", true },
	{ "null given", "{'limit':{'type':'int','default':10}}", NULL,
	    "{'limit':10}", true },
	{ "given wins", "{'limit':{'type':'int','default':10}}", "{'limit':3}",
	    "{'limit':3}", true },
	{ "optional absent", "{'x':{'type':'string'}}", "{}", "{}", true },
	{ "required with default", "{'x':{'required':true,'default':'d'}}",
	    "{}", "{'x':'d'}", true },
	{ "number takes int", "{'x':{'type':'number'}}", "{'x':2}", "{'x':2}",
	    true },
	{ "number takes real", "{'x':{'type':'number'}}", "{'x':2.5}",
	    "{'x':2.5}", true },
	{ "any takes null", "{'x':{'type':'any'}}", "{'x':null}", "{'x':null}",
	    true },
	{ "untyped takes array", "{'x':{}}", "{'x':[1]}", "{'x':[1]}", true },
	{ "every type",
	    "{'s':{'type':'string'},'b':{'type':'bool'},'o':{'type':'object'},"
	    "'a':{'type':'array'}}",
	    "{'s':'v','b':false,'o':{'k':1},'a':[]}",
	    "{'s':'v','b':false,'o':{'k':1},'a':[]}", true },
	{ "unknown", "{'x':{}}", "{'y':1}", "params.y: unknown parameter",
	    false },
	{ "int got string", "{'x':{'type':'int'}}", "{'x':'1'}",
	    "params.x: expected int, got string", false },
	{ "int got real", "{'x':{'type':'int'}}", "{'x':1.5}",
	    "params.x: expected int, got number", false },
	{ "string got null", "{'x':{'type':'string'}}", "{'x':null}",
	    "params.x: expected string, got null", false },
	{ "bool got int", "{'x':{'type':'bool'}}", "{'x':1}",
	    "params.x: expected bool, got int", false },
	{ "object got array", "{'x':{'type':'object'}}", "{'x':[]}",
	    "params.x: expected object, got array", false },
	{ "required missing", "{'who':{'type':'string','required':true}}", "{}",
	    "params.who: required", false },
	{ "given not object", "{}", "[]",
	    "params: expected an object, got array", false },
	{ "enum member", "{'e':{'enum':['dev','prod']}}", "{'e':'prod'}",
	    "{'e':'prod'}", true },
	{ "enum of mixed values", "{'e':{'enum':[1,'x',null,{'k':[1]}]}}",
	    "{'e':{'k':[1]}}", "{'e':{'k':[1]}}", true },
	{ "not in enum", "{'e':{'type':'string','enum':['dev','prod']}}",
	    "{'e':'prod2'}",
	    "params.e: must be one of ['dev','prod'] (enum), got 'prod2'",
	    false },
	{ "enum compares exactly", "{'e':{'enum':[1]}}", "{'e':'1'}",
	    "params.e: must be one of [1] (enum), got '1'", false },
	{ "minimum met", "{'n':{'type':'int','minimum':1,'maximum':3}}",
	    "{'n':1}", "{'n':1}", true },
	{ "maximum met", "{'n':{'type':'int','minimum':1,'maximum':3}}",
	    "{'n':3}", "{'n':3}", true },
	{ "below minimum", "{'n':{'type':'int','minimum':1,'maximum':3}}",
	    "{'n':0}", "params.n: must be >= 1 (minimum), got 0", false },
	{ "above maximum", "{'n':{'type':'int','minimum':1,'maximum':3}}",
	    "{'n':4}", "params.n: must be <= 3 (maximum), got 4", false },
	{ "real above maximum", "{'n':{'type':'number','maximum':0.5}}",
	    "{'n':0.75}", "params.n: must be <= 0.5 (maximum), got 0.75",
	    false },
	{ "big integers exactly",
	    "{'n':{'type':'int','maximum':9007199254740992}}",
	    "{'n':9007199254740993}",
	    "params.n: must be <= 9007199254740992 (maximum), got "
	    "9007199254740993",
	    false },
	{ "bounds ignore a string of an any", "{'n':{'minimum':1}}",
	    "{'n':'0'}", "{'n':'0'}", true },
	{ "pattern matches", "{'t':{'type':'string','pattern':'^v[0-9]+$'}}",
	    "{'t':'v12'}", "{'t':'v12'}", true },
	{ "pattern is a search", "{'t':{'type':'string','pattern':'[0-9]'}}",
	    "{'t':'abc1def'}", "{'t':'abc1def'}", true },
	{ "pattern fails", "{'t':{'type':'string','pattern':'^v[0-9]+$'}}",
	    "{'t':'v1x'}", "params.t: must match pattern '^v[0-9]+$', got 'v1x'",
	    false },
	{ "pattern refuses a NUL", "{'t':{'type':'string','pattern':'^ok'}}",
	    "{'t':'ok\\u0000evil'}",
	    "params.t: must match pattern '^ok', got 'ok\\x00...'", false },
	{ "secret not quoted back",
	    "{'tok':{'type':'string','secret':true,'pattern':'^[a-f0-9]{8}$'}}",
	    "{'tok':'hunter2'}",
	    "params.tok: must match pattern '^[a-f0-9]{8}$'", false },
};

Test(def, bind_params_table, .timeout = T_TIMEOUT)
{
	for (size_t i = 0; i < sizeof(bind_rows) / sizeof(bind_rows[0]); i++) {
		const struct bind_row *r = &bind_rows[i];
		char                   text[1024];
		char                   err[256] = "";
		weft_def              *def      = NULL;
		json_t                *given    = NULL;
		json_t                *out      = NULL;
		char                  *want     = dq(r->want);
		weft_err               rv;

		snprintf(text, sizeof(text),
		    "{'name':'w','params':%s," ONE_STEP "}", r->params);
		cr_assert_eq(parse(text, &def, err, sizeof(err)), WEFT_OK,
		    "%s: %s", r->name, err);
		if (r->given != NULL) {
			char *g = dq(r->given);
			// NULs allowed: a run request may carry them, and a
			// pattern must not be fooled by one.
			given   = json_loads(g, JSON_ALLOW_NUL, NULL);
			free(g);
			cr_assert_not_null(given, "%s: bad given", r->name);
		}
		rv = weft_def_bind_params(def, given, &out, err, sizeof(err));
		if (r->want_ok) {
			json_t *w = json_loads(want, 0, NULL);
			cr_expect_eq(rv, WEFT_OK, "%s: %s", r->name, err);
			cr_expect(
			    json_equal(out, w), "%s: wrong result", r->name);
			json_decref(w);
		} else {
			cr_expect_eq(rv, WEFT_EINVAL, "%s", r->name);
			cr_expect_null(out, "%s", r->name);
			cr_expect_str_eq(err, want, "%s", r->name);
		}
		json_decref(out);
		json_decref(given);
		weft_def_free(def);
		free(want);
	}
}

struct delay_row {
	enum weft_backoff backoff;
	uint32_t          initial;
	uint32_t          max;
	uint32_t          next;
	uint32_t          want;
};

static const struct delay_row delay_rows[] = {
	{ WEFT_BACKOFF_FIXED, 500, 30000, 0, 0 },
	{ WEFT_BACKOFF_FIXED, 500, 30000, 1, 0 },
	{ WEFT_BACKOFF_FIXED, 500, 30000, 2, 500 },
	{ WEFT_BACKOFF_FIXED, 500, 30000, 10, 500 },
	{ WEFT_BACKOFF_FIXED, 500, 400, 2, 400 },
	{ WEFT_BACKOFF_LINEAR, 500, 30000, 2, 500 },
	{ WEFT_BACKOFF_LINEAR, 500, 30000, 3, 1000 },
	{ WEFT_BACKOFF_LINEAR, 500, 30000, 5, 2000 },
	{ WEFT_BACKOFF_LINEAR, 500, 30000, 100, 30000 },
	{ WEFT_BACKOFF_LINEAR, UINT32_MAX, UINT32_MAX, UINT32_MAX, UINT32_MAX },
	{ WEFT_BACKOFF_EXPONENTIAL, 500, 30000, 2, 500 },
	{ WEFT_BACKOFF_EXPONENTIAL, 500, 30000, 3, 1000 },
	{ WEFT_BACKOFF_EXPONENTIAL, 500, 30000, 4, 2000 },
	{ WEFT_BACKOFF_EXPONENTIAL, 500, 30000, 7, 16000 },
	{ WEFT_BACKOFF_EXPONENTIAL, 500, 30000, 8, 30000 },
	{ WEFT_BACKOFF_EXPONENTIAL, 500, 30000, 33, 30000 },
	{ WEFT_BACKOFF_EXPONENTIAL, 500, 30000, 34, 30000 },
	{ WEFT_BACKOFF_EXPONENTIAL, 500, 30000, 1000, 30000 },
	{ WEFT_BACKOFF_EXPONENTIAL, 1, UINT32_MAX, 33, 2147483648u },
	{ WEFT_BACKOFF_EXPONENTIAL, 1, UINT32_MAX, 34, UINT32_MAX },
	{ WEFT_BACKOFF_EXPONENTIAL, UINT32_MAX, UINT32_MAX, UINT32_MAX,
	    UINT32_MAX },
	{ WEFT_BACKOFF_EXPONENTIAL, 0, 1000, 40, 0 },
};

Test(def, retry_delay_table, .timeout = T_TIMEOUT)
{
	for (size_t i = 0; i < sizeof(delay_rows) / sizeof(delay_rows[0]);
	     i++) {
		const struct delay_row *r  = &delay_rows[i];
		weft_retry              rt = { .max_attempts = 10,
			             .backoff                = r->backoff,
			             .initial_ms             = r->initial,
			             .max_ms                 = r->max };
		cr_expect_eq(weft_retry_delay_ms(&rt, r->next), r->want,
		    "row %zu: got %u, want %u", i,
		    weft_retry_delay_ms(&rt, r->next), r->want);
	}
}

// "retain" reaches the definition in ms, and run_queued carries it.
Test(def, retain_in_ms, .timeout = T_TIMEOUT)
{
	weft_def *def = NULL;
	char      err[256];

	cr_assert_eq(parse("{'name':'w','retain':'2d'," ONE_STEP "}", &def, err,
	                 sizeof(err)),
	    WEFT_OK, "%s", err);
	cr_expect_eq(def->retain_ms, 2 * 86400000LL);
	weft_def_free(def);
	cr_assert_eq(parse("{'name':'w'," ONE_STEP "}", &def, err, sizeof(err)),
	    WEFT_OK, "%s", err);
	cr_expect_eq(def->retain_ms, 0, "none: the coordinator's --retain");
	weft_def_free(def);
}

Test(def, schedule_timeout_default_and_override)
{
	const char *text = "{\"name\":\"w\",\"schedule_timeout_ms\":700,"
	    "\"steps\":[{\"id\":\"a\",\"type\":\"t\"},"
	    "{\"id\":\"b\",\"type\":\"t\",\"schedule_timeout_ms\":0},"
	    "{\"id\":\"c\",\"type\":\"t\",\"schedule_timeout_ms\":9}]}";
	weft_def   *def;
	char        err[256];

	cr_assert_eq(weft_def_parse(&def, text, strlen(text), err, sizeof(err)),
	    WEFT_OK, "%s", err);
	cr_expect_eq(def->schedule_timeout_ms, 700);
	cr_expect_eq(def->steps[0].schedule_timeout_ms, 700, "the default");
	cr_expect_eq(def->steps[1].schedule_timeout_ms, 0, "0 turns it off");
	cr_expect_eq(def->steps[2].schedule_timeout_ms, 9, "the step's own");
	weft_def_free(def);
}
