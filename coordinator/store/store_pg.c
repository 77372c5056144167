// store_pg: the PostgreSQL backend of the store (libpq).
//
// Statements are prepared once per connection and cached by their SQL text.
// Writes inside a transaction are pipelined: each exec is queued without
// waiting, and commit reads every result at once, so a batch costs a few
// round trips rather than one per statement. A lost connection turns into
// WEFT_EUNAVAIL; the next call reconnects and the caller retries.
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "alloc.h"
#include "log.h"
#include "map.h"
#include "store.h"

// The advisory lock key that serializes migrations between coordinators:
// "weft" in ASCII.
#define PG_SCHEMA_LOCK_KEY "2003133812"

// NOTIFY payloads must stay under 8000 bytes.
#define PG_NOTIFY_MAX 7900

typedef struct pg_stmt {
	char name[24]; // server-side name, unique on this connection
} pg_stmt;

typedef struct store_pg {
	weft_store base;
	PGconn    *conn;      // NULL or bad: reconnect on the next call
	char      *conninfo;  // owned; may hold a password: never logged
	bool       readonly;  // the query connection: no writes at all
	weft_map   stmts;     // SQL text -> pg_stmt *, for this connection
	uint64_t   nstmt;     // statement names handed out on conn
	bool       in_tx;     // between begin and commit/rollback
	bool       piped;     // in pipeline mode: results still to read
	bool       broken;    // the server dropped us: reconnect
	bool       was_up;    // connected once: a loss is worth a log line
	bool       lost;      // logged the loss, not yet the reconnect
} store_pg;

// ---- errors ----

// SQLSTATE classes and codes that mean "try again later" rather than "this
// statement is wrong"; everything else is WEFT_ESTORE.
static const struct {
	const char *state; // a whole code, or a two-character class
	weft_err    err;
} pg_err_map[] = {
	{ "08", WEFT_EUNAVAIL },    // connection exception
	{ "53", WEFT_EUNAVAIL },    // insufficient resources
	{ "57P01", WEFT_EUNAVAIL }, // admin shutdown (pg_ctl stop/restart)
	{ "57P02", WEFT_EUNAVAIL }, // crash shutdown
	{ "57P03", WEFT_EUNAVAIL }, // cannot connect now (starting up)
	{ "40001", WEFT_EUNAVAIL }, // serialization failure
	{ "40P01", WEFT_EUNAVAIL }, // deadlock detected
	{ "23", WEFT_ESTORE },      // integrity constraint violation
};

static weft_err
pg_err_from_state(const char *state)
{
	if (state == NULL) {
		return (WEFT_ESTORE);
	}
	for (size_t i = 0; i < sizeof(pg_err_map) / sizeof(pg_err_map[0]); i++) {
		size_t n = strlen(pg_err_map[i].state);
		if (strncmp(state, pg_err_map[i].state, n) == 0) {
			return (pg_err_map[i].err);
		}
	}
	return (WEFT_ESTORE);
}

// pg_fail records why an operation failed (r may be NULL) and maps it to a
// weft_err. A broken connection is WEFT_EUNAVAIL whatever the result says.
static weft_err
pg_fail(store_pg *s, const PGresult *r, const char *what)
{
	const char *msg   = r ? PQresultErrorMessage(r) : "";
	const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	weft_err    rv    = pg_err_from_state(state);
	size_t      n;

	if (msg == NULL || msg[0] == '\0') {
		msg = s->conn != NULL ? PQerrorMessage(s->conn) : "no connection";
	}
	snprintf(s->base.error, sizeof(s->base.error), "postgres %s: %s%s%s",
	    what, state ? state : "", state ? " " : "", msg);
	// libpq's messages span lines; logs want one line per record.
	n = 0;
	for (char *c = s->base.error; *c != '\0'; c++) {
		bool space = *c == '\n' || *c == '\t' || *c == ' ';
		if (!space || (n > 0 && s->base.error[n - 1] != ' ')) {
			s->base.error[n++] = space ? ' ' : *c;
		}
	}
	while (n > 0 && s->base.error[n - 1] == ' ') {
		n--;
	}
	s->base.error[n] = '\0';
	// Connection exceptions and shutdowns end the session even when
	// libpq has not noticed the closed socket yet.
	if (s->conn == NULL || PQstatus(s->conn) == CONNECTION_BAD ||
	    (state != NULL &&
	        (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0))) {
		s->broken = true;
		rv        = WEFT_EUNAVAIL;
	}
	if (s->broken && s->was_up && !s->lost) {
		s->lost = true;
		weft_log_warn("DB-LOST", "store %s%s unavailable: %s",
		    s->base.url, s->readonly ? " (queries)" : "",
		    s->base.error);
	}
	s->base.ok = false;
	return (rv);
}

// ---- connection ----

static void
pg_forget_stmts(store_pg *s)
{
	const char *k;
	void       *v;

	for (size_t i = 0; weft_map_each(&s->stmts, &i, &k, &v);) {
		free(v);
	}
	weft_map_fini(&s->stmts);
	weft_map_init(&s->stmts);
}

static void
pg_disconnect(store_pg *s)
{
	pg_forget_stmts(s);
	if (s->conn != NULL) {
		PQfinish(s->conn);
		s->conn = NULL;
	}
	s->in_tx  = false;
	s->piped  = false;
	s->broken = false;
}

static void
pg_notice_cb(void *arg, const char *msg)
{
	// Notices (e.g. "relation already exists, skipping") are not errors.
	(void) arg;
	weft_log_debug("DB-NOTICE", "%s", msg);
}

// pg_connect opens a new connection. Our defaults come first so that
// anything the user's URL or conninfo says overrides them.
static weft_err
pg_connect(store_pg *s)
{
	const char *keys[] = { "connect_timeout", "application_name",
		"client_encoding", "keepalives_idle", "dbname", NULL };
	const char *vals[] = { "10",
		s->readonly ? "weft-coordinator-query" : "weft-coordinator",
		"UTF8", "30", s->conninfo, NULL };
	PGresult *r;

	pg_disconnect(s);
	s->conn = PQconnectdbParams(keys, vals, 1);
	if (s->conn == NULL || PQstatus(s->conn) != CONNECTION_OK) {
		return (pg_fail(s, NULL, "connect"));
	}
	PQsetNoticeProcessor(s->conn, pg_notice_cb, NULL);
	if (s->readonly) {
		r = PQexec(s->conn, "SET default_transaction_read_only = on");
		if (PQresultStatus(r) != PGRES_COMMAND_OK) {
			weft_err rv = pg_fail(s, r, "connect");
			PQclear(r);
			return (rv);
		}
		PQclear(r);
	}
	s->was_up = true;
	if (s->lost) {
		s->lost = false;
		weft_log_notice("DB-RECONNECT", "store %s%s available again",
		    s->base.url, s->readonly ? " (queries)" : "");
	}
	s->nstmt = 0;
	return (WEFT_OK);
}

// pg_ready makes sure there is a connection, reconnecting if the last one
// broke. Within a transaction a broken connection is final: the work
// queued on it is gone, so the caller must start over.
static weft_err
pg_ready(store_pg *s)
{
	if (s->conn != NULL && !s->broken &&
	    PQstatus(s->conn) == CONNECTION_OK) {
		return (WEFT_OK);
	}
	if (s->in_tx) {
		return (pg_fail(s, NULL, "transaction"));
	}
	return (pg_connect(s));
}

// ---- statements ----

// pg_rewrite turns '?' placeholders into $1, $2, ... outside quoted text.
static char *
pg_rewrite(const char *sql, int *nparams)
{
	size_t len = strlen(sql);
	char  *out = weft_xalloc(len * 4 + 1);
	char   quote = 0;
	size_t o     = 0;
	int    n     = 0;

	for (const char *p = sql; *p != '\0'; p++) {
		if (quote != 0) {
			quote = *p == quote ? 0 : quote;
		} else if (*p == '\'' || *p == '"') {
			quote = *p;
		} else if (*p == '?') {
			o += (size_t) sprintf(out + o, "$%d", ++n);
			continue;
		}
		out[o++] = *p;
	}
	out[o]   = '\0';
	*nparams = n;
	return (out);
}

// pg_stmt_get returns the prepared statement for sql, preparing it first
// (queued, not waited for, when piped).
static weft_err
pg_stmt_get(store_pg *s, const char *sql, pg_stmt **out)
{
	pg_stmt  *st = weft_map_get(&s->stmts, sql);
	char     *text;
	int       n;
	weft_err  rv = WEFT_OK;
	PGresult *r;

	if (st != NULL) {
		*out = st;
		return (WEFT_OK);
	}
	st = weft_xalloc(sizeof(*st));
	snprintf(st->name, sizeof(st->name), "w%" PRIu64, ++s->nstmt);
	text = pg_rewrite(sql, &n);
	if (s->piped) {
		if (!PQsendPrepare(s->conn, st->name, text, n, NULL)) {
			rv = pg_fail(s, NULL, "prepare");
		}
	} else {
		r = PQprepare(s->conn, st->name, text, n, NULL);
		if (PQresultStatus(r) != PGRES_COMMAND_OK) {
			rv = pg_fail(s, r, "prepare");
		}
		PQclear(r);
	}
	free(text);
	if (rv != WEFT_OK) {
		free(st);
		return (rv);
	}
	weft_map_put(&s->stmts, sql, st);
	*out = st;
	return (WEFT_OK);
}

// pg_drain ends the pipeline: a sync point, then every queued result in
// order. The first error wins. After an error the server skipped the rest
// of the pipeline, statements prepared in it included, so the statement
// cache is dropped (names are never reused on a connection, so a stale
// server-side statement is merely unused).
static weft_err
pg_drain(store_pg *s)
{
	weft_err  rv    = WEFT_OK;
	int       nulls = 0;
	PGresult *r;

	if (!s->piped) {
		return (WEFT_OK);
	}
	s->piped = false;
	if (!PQpipelineSync(s->conn)) {
		rv = pg_fail(s, NULL, "sync");
		pg_forget_stmts(s);
		return (rv);
	}
	for (;;) {
		r = PQgetResult(s->conn);
		if (r == NULL) {
			// End of one command's results. A dead connection never
			// gets to the sync point; two NULLs in a row mean libpq
			// has nothing more to give either.
			if (PQstatus(s->conn) == CONNECTION_BAD || ++nulls > 1) {
				if (rv == WEFT_OK) {
					rv = pg_fail(s, NULL, "pipeline");
				}
				break;
			}
			continue;
		}
		nulls = 0;
		ExecStatusType st = PQresultStatus(r);
		if (st == PGRES_PIPELINE_SYNC) {
			PQclear(r);
			break;
		}
		if (st == PGRES_FATAL_ERROR && rv == WEFT_OK) {
			rv = pg_fail(s, r, "pipeline");
		} else if (st == PGRES_PIPELINE_ABORTED && rv == WEFT_OK) {
			rv = pg_fail(s, r, "pipeline");
		}
		PQclear(r);
	}
	if (PQstatus(s->conn) != CONNECTION_BAD) {
		PQexitPipelineMode(s->conn);
	}
	if (rv != WEFT_OK) {
		pg_forget_stmts(s);
	}
	return (rv);
}

static weft_err
pg_query(weft_store *base, const char *sql, const char **params,
    int nparams, weft_store_row_fn fn, void *arg)
{
	store_pg   *s = (store_pg *) base;
	pg_stmt    *st;
	PGresult   *r;
	weft_err    rv;
	const char *cols[64];

	for (int attempt = 0;; attempt++) {
		if ((rv = pg_ready(s)) != WEFT_OK ||
		    (rv = pg_drain(s)) != WEFT_OK ||
		    (rv = pg_stmt_get(s, sql, &st)) != WEFT_OK) {
			if (rv == WEFT_EUNAVAIL && !s->in_tx && attempt == 0) {
				continue;
			}
			return (rv);
		}
		r = PQexecPrepared(
		    s->conn, st->name, nparams, params, NULL, NULL, 0);
		if (PQresultStatus(r) == PGRES_TUPLES_OK ||
		    PQresultStatus(r) == PGRES_COMMAND_OK) {
			break;
		}
		rv = pg_fail(s, r, "query");
		PQclear(r);
		// Outside a transaction a query that met a connection cut by
		// a server restart is simply asked again, once, on a new one.
		if (rv != WEFT_EUNAVAIL || s->in_tx || attempt > 0) {
			return (rv);
		}
	}
	int nrows = PQntuples(r), ncols = PQnfields(r);
	if (ncols > 64) {
		ncols = 64;
	}
	for (int i = 0; i < nrows && fn != NULL; i++) {
		for (int j = 0; j < ncols; j++) {
			cols[j] = PQgetisnull(r, i, j) ? NULL : PQgetvalue(r, i, j);
		}
		if (fn(arg, ncols, cols) != 0) {
			break;
		}
	}
	PQclear(r);
	base->ok = true;
	return (WEFT_OK);
}

static weft_err
pg_exec(weft_store *base, const char *sql, const char **params, int nparams)
{
	store_pg *s = (store_pg *) base;
	pg_stmt  *st;
	weft_err  rv;

	if (!s->in_tx) {
		return (pg_query(base, sql, params, nparams, NULL, NULL));
	}
	if ((rv = pg_ready(s)) != WEFT_OK) {
		return (rv);
	}
	if (!s->piped) {
		if (!PQenterPipelineMode(s->conn)) {
			return (pg_fail(s, NULL, "pipeline"));
		}
		s->piped = true;
	}
	if ((rv = pg_stmt_get(s, sql, &st)) != WEFT_OK) {
		return (rv);
	}
	if (!PQsendQueryPrepared(
	        s->conn, st->name, nparams, params, NULL, NULL, 0)) {
		return (pg_fail(s, NULL, "send"));
	}
	return (WEFT_OK);
}

// pg_simple runs sql (no parameters, maybe several statements) outside
// the pipeline.
static weft_err
pg_simple(store_pg *s, const char *sql, const char *what)
{
	PGresult *r;
	weft_err  rv;

	if ((rv = pg_ready(s)) != WEFT_OK || (rv = pg_drain(s)) != WEFT_OK) {
		return (rv);
	}
	r = PQexec(s->conn, sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK &&
	    PQresultStatus(r) != PGRES_TUPLES_OK) {
		rv = pg_fail(s, r, what);
		PQclear(r);
		return (rv);
	}
	PQclear(r);
	s->base.ok = true;
	return (WEFT_OK);
}

static weft_err
pg_script(weft_store *base, const char *sql)
{
	return (pg_simple((store_pg *) base, sql, "script"));
}

static weft_err
pg_begin(weft_store *base)
{
	store_pg *s = (store_pg *) base;
	weft_err  rv;

	if (s->in_tx) {
		return (WEFT_ESTATE);
	}
	// A connection cut while idle (say, by a server restart) shows only
	// now; nothing is lost yet, so reconnect and begin once more.
	rv = pg_simple(s, "BEGIN", "begin");
	if (rv == WEFT_EUNAVAIL) {
		rv = pg_simple(s, "BEGIN", "begin");
	}
	s->in_tx = rv == WEFT_OK;
	return (rv);
}

static weft_err
pg_commit(weft_store *base)
{
	store_pg *s = (store_pg *) base;
	weft_err  rv;

	if (!s->in_tx) {
		return (WEFT_ESTATE);
	}
	if (s->conn == NULL || s->broken ||
	    PQstatus(s->conn) == CONNECTION_BAD) {
		return (pg_fail(s, NULL, "commit"));
	}
	if (s->piped) {
		// COMMIT goes down the same pipe: the whole batch is one
		// round trip to the server and one WAL flush.
		if (!PQsendQueryParams(
		        s->conn, "COMMIT", 0, NULL, NULL, NULL, NULL, 0)) {
			return (pg_fail(s, NULL, "commit"));
		}
		if ((rv = pg_drain(s)) != WEFT_OK) {
			return (rv);
		}
	} else if ((rv = pg_simple(s, "COMMIT", "commit")) != WEFT_OK) {
		return (rv);
	}
	// COMMIT of a failed transaction "succeeds" as a rollback.
	if (PQtransactionStatus(s->conn) != PQTRANS_IDLE) {
		snprintf(base->error, sizeof(base->error),
		    "postgres commit: transaction was not committed");
		return (WEFT_ESTORE);
	}
	s->in_tx = false;
	return (WEFT_OK);
}

static void
pg_rollback(weft_store *base)
{
	store_pg *s = (store_pg *) base;

	if (s->conn != NULL && !s->broken &&
	    PQstatus(s->conn) == CONNECTION_OK) {
		pg_drain(s);
		if (PQtransactionStatus(s->conn) != PQTRANS_IDLE) {
			PGresult *r = PQexec(s->conn, "ROLLBACK");
			PQclear(r);
		}
	}
	s->in_tx = false;
	s->piped = false;
}

static weft_err
pg_lock_schema(weft_store *base, bool lock)
{
	// A session-level advisory lock: held across the migrations'
	// transactions, released by unlock or by the connection's end.
	return (pg_simple((store_pg *) base,
	    lock ? "SELECT pg_advisory_lock(" PG_SCHEMA_LOCK_KEY ")"
	         : "SELECT pg_advisory_unlock(" PG_SCHEMA_LOCK_KEY ")",
	    "lock"));
}

// pg_notify queues NOTIFY weft_events in the batch's transaction, so the
// notification goes out if and only if the batch commits. Payload:
// {"first": id, "last": id, "runs": [run ids, each once, in order],
// "truncated": true when the run list was cut to fit 8000 bytes}.
static weft_err
pg_notify(weft_store *base, const weft_event *evs, size_t n)
{
	char       payload[PG_NOTIFY_MAX + 128];
	size_t     len;
	weft_map   seen;
	bool       cut = false;
	const char *p[1] = { payload };
	weft_err   rv;

	if (n == 0) {
		return (WEFT_OK);
	}
	len = (size_t) snprintf(payload, sizeof(payload),
	    "{\"first\":%" PRIu64 ",\"last\":%" PRIu64 ",\"runs\":[", evs[0].id,
	    evs[n - 1].id);
	weft_map_init(&seen);
	for (size_t i = 0; i < n && !cut; i++) {
		const char *id = evs[i].run_id;
		char       *q;
		if (id == NULL || weft_map_get(&seen, id) != NULL) {
			continue;
		}
		weft_map_put(&seen, id, (void *) id);
		json_t *js = json_string(id);
		q          = js ? json_dumps(js, JSON_ENCODE_ANY) : NULL;
		json_decref(js);
		if (q == NULL) {
			continue;
		}
		// Room for the separator, "]" and ",\"truncated\":true}".
		if (len + strlen(q) + 1 + 24 > PG_NOTIFY_MAX) {
			cut = true;
		} else {
			len += (size_t) snprintf(payload + len,
			    sizeof(payload) - len, "%s%s",
			    payload[len - 1] == '[' ? "" : ",", q);
		}
		free(q);
	}
	weft_map_fini(&seen);
	snprintf(payload + len, sizeof(payload) - len, "]%s}",
	    cut ? ",\"truncated\":true" : "");
	rv = pg_exec(base, "SELECT pg_notify('weft_events', ?)", p, 1);
	return (rv);
}

static void
pg_close(weft_store *base)
{
	store_pg *s = (store_pg *) base;

	if (s == NULL) {
		return;
	}
	pg_disconnect(s);
	weft_map_fini(&s->stmts);
	free(s->conninfo);
	free(s);
}

static const weft_store_ops pg_ops = {
	.name        = "postgres",
	.exec        = pg_exec,
	.query       = pg_query,
	.script      = pg_script,
	.begin       = pg_begin,
	.commit      = pg_commit,
	.rollback    = pg_rollback,
	.lock_schema = pg_lock_schema,
	.notify      = pg_notify,
	.data_like   = "data ILIKE ? ESCAPE '\\'",
	.close       = pg_close,
};

// weft_store_pg_redact describes conninfo for logs as
// postgres://user@host:port/db: never the password, whatever form the
// conninfo has. WEFT_EINVAL when libpq cannot parse it.
weft_err
weft_store_pg_redact(const char *conninfo, char *out, size_t len)
{
	char             *msg  = NULL;
	PQconninfoOption *opts = PQconninfoParse(conninfo, &msg);
	const char       *user = "", *host = "", *port = "", *db = "";

	if (opts == NULL) {
		// The parser's message may quote the string, password and all.
		PQfreemem(msg);
		return (WEFT_EINVAL);
	}
	for (PQconninfoOption *o = opts; o->keyword != NULL; o++) {
		const char *v = o->val != NULL ? o->val : "";
		if (strcmp(o->keyword, "user") == 0) {
			user = v;
		} else if (strcmp(o->keyword, "host") == 0) {
			host = v;
		} else if (strcmp(o->keyword, "port") == 0) {
			port = v;
		} else if (strcmp(o->keyword, "dbname") == 0) {
			db = v;
		}
	}
	snprintf(out, len, "postgres://%s%s%s%s%s/%s", user, user[0] ? "@" : "",
	    host, port[0] ? ":" : "", port, db);
	PQconninfoFree(opts);
	return (WEFT_OK);
}

weft_err
weft_store_pg_open(weft_store **out, const char *conninfo, bool readonly,
    char *err, size_t errlen)
{
	store_pg *s = weft_xalloc(sizeof(*s));
	weft_err  rv;

	*out        = NULL;
	s->base.ops = &pg_ops;
	s->readonly = readonly;
	s->conninfo = weft_xstrdup(conninfo);
	weft_map_init(&s->stmts);
	if (weft_store_pg_redact(conninfo, s->base.url, sizeof(s->base.url)) !=
	    WEFT_OK) {
		snprintf(err, errlen,
		    "invalid PostgreSQL connection string: use "
		    "postgres://user:password@host:port/db or "
		    "\"host=... dbname=...\"");
		pg_close(&s->base);
		return (WEFT_EINVAL);
	}
	if ((rv = pg_connect(s)) != WEFT_OK) {
		snprintf(err, errlen, "cannot connect to %s: %s", s->base.url,
		    s->base.error);
		pg_close(&s->base);
		return (rv);
	}
	s->base.ok = true;
	*out       = &s->base;
	return (WEFT_OK);
}
