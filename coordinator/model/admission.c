// admission: admission decisions and scheduling flags (admission.h).
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admission.h"

static bool
limit_full(const weft_limit_use *u)
{
	return (u != NULL && u->limit > 0 && u->running >= u->limit);
}

enum weft_limit_kind
weft_limit_admit(const weft_limit_use *runs, const weft_limit_use *def,
    const weft_limit_use *key)
{
	if (limit_full(runs)) {
		return (WEFT_LIMIT_RUNS);
	}
	if (limit_full(def)) {
		return (WEFT_LIMIT_DEF);
	}
	if (limit_full(key)) {
		return (WEFT_LIMIT_KEY);
	}
	return (WEFT_LIMIT_NONE);
}

const char *
weft_limit_reason(enum weft_limit_kind kind)
{
	switch (kind) {
	case WEFT_LIMIT_RUNS:
		return ("max_running_runs");
	case WEFT_LIMIT_DEF:
		return ("max_concurrent_runs");
	case WEFT_LIMIT_KEY:
		return ("concurrency_key");
	default:
		return ("");
	}
}

json_t *
weft_limit_waiting_for(enum weft_limit_kind kind, const weft_limit_use *use,
    const char *key)
{
	char    msg[700];
	json_t *o;

	switch (kind) {
	case WEFT_LIMIT_RUNS:
		snprintf(msg, sizeof(msg),
		    "queued: the coordinator runs at most %u runs at once "
		    "(--max-running-runs); %u running",
		    use->limit, use->running);
		break;
	case WEFT_LIMIT_DEF:
		snprintf(msg, sizeof(msg),
		    "queued: its definition allows %u running runs "
		    "(max_concurrent_runs); %u running",
		    use->limit, use->running);
		break;
	case WEFT_LIMIT_KEY:
		snprintf(msg, sizeof(msg),
		    "queued: concurrency key \"%.512s\" allows %u running "
		    "runs; %u running",
		    key != NULL ? key : "", use->limit, use->running);
		break;
	default:
		return (NULL);
	}
	o = json_pack("{s:s, s:s, s:I, s:I}", "reason", weft_limit_reason(kind),
	    "message", msg, "running", (json_int_t) use->running, "limit",
	    (json_int_t) use->limit);
	if (kind == WEFT_LIMIT_KEY && key != NULL) {
		json_object_set_new(o, "key", json_string(key));
	}
	return (o);
}

bool
weft_limit_parse_type(const char *arg, char *type, size_t typelen,
    uint32_t *n, char *err, size_t errlen)
{
	const char   *eq = arg != NULL ? strrchr(arg, '=') : NULL;
	char         *end;
	unsigned long v;
	size_t        tl;

	if (eq == NULL || eq == arg) {
		snprintf(err, errlen,
		    "--limit '%s': want TYPE=N (at most N attempts of step "
		    "type TYPE running at once), such as shell=4",
		    arg != NULL ? arg : "");
		return (false);
	}
	tl = (size_t) (eq - arg);
	for (size_t i = 0; i < tl; i++) {
		char ch = arg[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		        (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' ||
		        ch == '-')) {
			snprintf(err, errlen,
			    "--limit '%s': the step type must be 1-128 "
			    "characters of A-Z a-z 0-9 _ . -",
			    arg);
			return (false);
		}
	}
	errno = 0;
	v     = strtoul(eq + 1, &end, 10);
	if (eq[1] < '0' || eq[1] > '9' || *end != '\0' || errno != 0 ||
	    v < 1 || v > UINT32_MAX || tl > 128 || tl >= typelen) {
		snprintf(err, errlen,
		    "--limit '%s': N must be a whole number from 1 to %u",
		    arg, (unsigned) UINT32_MAX);
		return (false);
	}
	memcpy(type, arg, tl);
	type[tl] = '\0';
	*n       = (uint32_t) v;
	return (true);
}

bool
weft_order_parse(const char *arg, bool *critical, char *err, size_t errlen)
{
	if (arg != NULL && strcmp(arg, "fifo") == 0) {
		*critical = false;
		return (true);
	}
	if (arg != NULL && strcmp(arg, "critical-path") == 0) {
		*critical = true;
		return (true);
	}
	snprintf(err, errlen, "--order '%s': want fifo or critical-path",
	    arg != NULL ? arg : "");
	return (false);
}
