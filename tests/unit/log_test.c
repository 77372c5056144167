// log_test: records rendered from call-site text, in both formats, from a
// table: fields taken from the leading key=value pairs, the rest as msg,
// quoting and escaping, the node and an attempt's context, and records
// that must stay one valid line whatever the text holds.
#include <criterion/criterion.h>
#include <jansson.h>
#include <string.h>

#include "log.h"

// The record without its timestamp (it changes), for comparing.
static const char *
after_ts(const char *line, int format)
{
	const char *p = format == WEFT_LOG_JSON ? strstr(line, "\",\"level\"")
	                                        : strstr(line, " level=");
	cr_assert_not_null(p, "no level after ts: %s", line);
	return (format == WEFT_LOG_JSON ? p + 2 : p + 1);
}

typedef struct {
	const char *name;
	const char *id, *text;
	const char *logfmt; // after ts=…
	const char *json;   // after {"ts":…,
} log_case;

static const log_case cases[] = {
	{ "fields only", "WORKER-JOIN", "worker=w1 url=tcp://h:1 slots=4",
	    "level=info node=n1 component=test event=WORKER-JOIN worker=w1 "
	    "url=tcp://h:1 slots=4",
	    "\"level\":\"info\",\"node\":\"n1\",\"component\":\"test\","
	    "\"event\":\"WORKER-JOIN\",\"worker\":\"w1\",\"url\":\"tcp://h:1\","
	    "\"slots\":4}" },
	{ "a sentence after a field, its colon dropped", "RECOVER",
	    "run=R1: exit codes not read: gone",
	    "level=info node=n1 component=test event=RECOVER run=R1 "
	    "msg=\"exit codes not read: gone\"",
	    "\"level\":\"info\",\"node\":\"n1\",\"component\":\"test\","
	    "\"event\":\"RECOVER\",\"run\":\"R1\",\"msg\":\"exit codes not "
	    "read: gone\"}" },
	{ "prose only", "STOP", "signal received, shutting down",
	    "level=info node=n1 component=test event=STOP msg=\"signal "
	    "received, shutting down\"",
	    "\"level\":\"info\",\"node\":\"n1\",\"component\":\"test\","
	    "\"event\":\"STOP\",\"msg\":\"signal received, shutting down\"}" },
	{ "a quoted value with escapes", "WORKER-TLS",
	    "error=\"bad \\\"key\\\" file\" path=/k",
	    "level=info node=n1 component=test event=WORKER-TLS "
	    "error=\"bad \\\"key\\\" file\" path=/k",
	    "\"level\":\"info\",\"node\":\"n1\",\"component\":\"test\","
	    "\"event\":\"WORKER-TLS\",\"error\":\"bad \\\"key\\\" file\","
	    "\"path\":\"/k\"}" },
	{ "prose with quotes and a newline", "X", "the name \"a b\"\nsecond",
	    "level=info node=n1 component=test event=X msg=\"the name "
	    "\\\"a b\\\"\\nsecond\"",
	    "\"level\":\"info\",\"node\":\"n1\",\"component\":\"test\","
	    "\"event\":\"X\",\"msg\":\"the name \\\"a b\\\"\\nsecond\"}" },
	{ "numbers: only plain integers are numbers", "N",
	    "a=12 b=-3 c=007 d=1.5 e=12345678901234567",
	    "level=info node=n1 component=test event=N a=12 b=-3 c=007 d=1.5 "
	    "e=12345678901234567",
	    "\"level\":\"info\",\"node\":\"n1\",\"component\":\"test\","
	    "\"event\":\"N\",\"a\":12,\"b\":-3,\"c\":\"007\",\"d\":\"1.5\","
	    "\"e\":\"12345678901234567\"}" },
	{ "an unclosed quote is prose", "Q", "error=\"no end",
	    "level=info node=n1 component=test event=Q msg=\"error=\\\"no "
	    "end\"",
	    "\"level\":\"info\",\"node\":\"n1\",\"component\":\"test\","
	    "\"event\":\"Q\",\"msg\":\"error=\\\"no end\"}" },
	{ "empty text", "E", "",
	    "level=info node=n1 component=test event=E",
	    "\"level\":\"info\",\"node\":\"n1\",\"component\":\"test\","
	    "\"event\":\"E\"}" },
};

Test(log, table)
{
	char line[4096];

	weft_log_init("test", WEFT_LOG_INFO);
	weft_log_set_node("n1");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const log_case *c = &cases[i];

		weft_log_render(line, sizeof(line), WEFT_LOG_LOGFMT,
		    WEFT_LOG_INFO, c->id, c->text);
		cr_expect_str_eq(after_ts(line, WEFT_LOG_LOGFMT), c->logfmt,
		    "%s (logfmt)", c->name);
		cr_expect_eq(strncmp(line, "ts=", 3), 0, "%s: %s", c->name, line);
		weft_log_render(line, sizeof(line), WEFT_LOG_JSON,
		    WEFT_LOG_INFO, c->id, c->text);
		cr_expect_str_eq(after_ts(line, WEFT_LOG_JSON), c->json,
		    "%s (json)", c->name);
		json_error_t err;
		json_t      *o = json_loads(line, 0, &err);
		cr_expect_not_null(o, "%s: not JSON (%s): %s", c->name, err.text,
		    line);
		json_decref(o);
	}
}

// A thread working for an attempt names it on every record, unless the
// text names the field itself; cleared, it names nothing.
Test(log, attempt_context)
{
	char line[4096];

	weft_log_init("worker", WEFT_LOG_INFO);
	weft_log_set_node("w1");
	weft_log_ctx_set("R9", "build", 3);
	weft_log_render(line, sizeof(line), WEFT_LOG_LOGFMT, WEFT_LOG_WARN,
	    "EXEC-REFUSED", "cmd=x reason=outside");
	cr_expect_str_eq(after_ts(line, WEFT_LOG_LOGFMT),
	    "level=warn node=w1 component=worker event=EXEC-REFUSED run=R9 "
	    "step=build attempt=3 cmd=x reason=outside");
	weft_log_render(line, sizeof(line), WEFT_LOG_LOGFMT, WEFT_LOG_WARN,
	    "OTHER", "run=R1 step=s");
	cr_expect_str_eq(after_ts(line, WEFT_LOG_LOGFMT),
	    "level=warn node=w1 component=worker event=OTHER attempt=3 run=R1 "
	    "step=s");
	weft_log_ctx_clear();
	weft_log_render(line, sizeof(line), WEFT_LOG_LOGFMT, WEFT_LOG_ERR, "Z",
	    "k=v");
	cr_expect_str_eq(after_ts(line, WEFT_LOG_LOGFMT),
	    "level=err node=w1 component=worker event=Z k=v");
}

// Whatever bytes the text holds (control characters, a lone backslash,
// long values), a JSON record parses and a logfmt record is one line.
Test(log, hostile_text_stays_one_record)
{
	static const char *texts[] = { "a=\"\\", "\x01\x02 k=\x7f", "k=\"a\\\"",
		"=x", "k= v", "k=\"\" rest", "\t\r\n", };
	char line[4096], big[3000];

	weft_log_init("t", WEFT_LOG_INFO);
	memset(big, 'x', sizeof(big) - 1);
	memcpy(big, "k=\"", 3);
	big[sizeof(big) - 2] = '"';
	big[sizeof(big) - 1] = '\0';
	for (size_t i = 0; i <= sizeof(texts) / sizeof(texts[0]); i++) {
		const char *t = i < sizeof(texts) / sizeof(texts[0]) ? texts[i]
		                                                      : big;
		weft_log_render(line, sizeof(line), WEFT_LOG_JSON, WEFT_LOG_INFO,
		    "H", t);
		json_t *o = json_loads(line, 0, NULL);
		cr_expect_not_null(o, "text %zu: not JSON: %s", i, line);
		json_decref(o);
		weft_log_render(line, sizeof(line), WEFT_LOG_LOGFMT,
		    WEFT_LOG_INFO, "H", t);
		cr_expect_null(strchr(line, '\n'), "text %zu: two lines", i);
	}
	// A record cut by a small buffer is still terminated.
	weft_log_render(line, 40, WEFT_LOG_LOGFMT, WEFT_LOG_INFO, "H", big);
	cr_expect_lt(strlen(line), 40u);
}
