// values: the flags whose value is one of a known list (--type, --status,
// --format, --overlap, --catchup) are checked here, before anything is
// sent: a misspelt --status used to list no runs at all, and a misspelt
// --type no events, with exit status 0 and nothing said.
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "event.h"
#include "query.h"
#include "run.h"

// The run states as the run machine names them (run.h's X-macro: only the
// names, so the CLI links nothing of the coordinator's).
#define VALUES_STATE_NAME(name, str) str,
static const char *const values_states[] = { WEFT_RUN_STATE_MAP(
    VALUES_STATE_NAME) };
#undef VALUES_STATE_NAME

static const char *const values_formats[] = { "jsonl", "json", "table",
	"csv" };
// As engine/cron.c's lists (the coordinator checks them again).
static const char *const values_overlaps[] = { "skip", "allow",
	"cancel_previous" };
static const char *const values_catchups[] = { "none", "one", "all" };

// values_one_of refuses v, the value of --flag, unless it is one of names.
static int
values_one_of(const char *flag, const char *v, const char *const *names,
    size_t n)
{
	char what[64], err[2048];

	snprintf(what, sizeof(what), "--%s", flag);
	if (weft_query_one_of(what, v, names, n, err, sizeof(err))) {
		return (WEFT_CLI_OK);
	}
	return (weft_cli_usage_error("%s", err));
}

int
weft_cli_check_values(weft_cli *c)
{
	static const struct {
		int                flag;
		const char        *name;
		const char *const *names;
		size_t             n;
	} lists[] = {
		{ WEFT_CLI_F_STATUS, "status", values_states,
		    sizeof(values_states) / sizeof(values_states[0]) },
		{ WEFT_CLI_F_FORMAT, "format", values_formats,
		    sizeof(values_formats) / sizeof(values_formats[0]) },
		{ WEFT_CLI_F_OVERLAP, "overlap", values_overlaps,
		    sizeof(values_overlaps) / sizeof(values_overlaps[0]) },
		{ WEFT_CLI_F_CATCHUP, "catchup", values_catchups,
		    sizeof(values_catchups) / sizeof(values_catchups[0]) },
	};
	const char *types[WEFT_EV_COUNT];
	int         rv;

	for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
		const char *v = c->flag[lists[i].flag];
		if (v != NULL && (rv = values_one_of(lists[i].name, v,
		                      lists[i].names, lists[i].n)) != WEFT_CLI_OK) {
			return (rv);
		}
	}
	for (unsigned i = 0; i < WEFT_EV_COUNT; i++) {
		types[i] = weft_event_name((enum weft_event_type) i);
	}
	for (size_t i = 0; i < c->n_types; i++) {
		if ((rv = values_one_of("type", c->types[i], types,
		         WEFT_EV_COUNT)) != WEFT_CLI_OK) {
			return (rv);
		}
	}
	return (WEFT_CLI_OK);
}
