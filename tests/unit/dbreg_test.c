// dbreg_test: the database registry ($WEFT_HOME/databases): lines read
// and rewritten, malformed lines refused naming the file and line; a
// recorded SQLite file that went missing refused with "was it moved?",
// another database at a recorded path refused, --init accepting both;
// and which SQLite errors are an outage (retry) and which a refusal.
// realpath is XSI, beyond _POSIX_C_SOURCE.
#define _XOPEN_SOURCE 700
#include <criterion/criterion.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "registry.h"
#include "store.h"

static char dir[512];

static void
setup(void)
{
	char *d = weft_h_tempdir("dbreg");
	snprintf(dir, sizeof(dir), "%s", d);
	free(d);
}

static void
teardown(void)
{
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	(void) !system(cmd);
}

TestSuite(dbreg, .init = setup, .fini = teardown, .timeout = 30);

static const char *
at(const char *name)
{
	static char path[4][700];
	static int  k;
	k = (k + 1) % 4;
	snprintf(path[k], sizeof(path[k]), "%s/%s", dir, name);
	return (path[k]);
}

static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f, "fopen %s", path);
	fputs(text, f);
	fclose(f);
}

#define ID_A "0123456789abcdef0123456789abcdef"
#define ID_B "fedcba9876543210fedcba9876543210"

Test(dbreg, lookup_and_record)
{
	char        reg[700], id[64], err[512] = "";
	struct stat st;

	snprintf(reg, sizeof(reg), "%s", at("databases"));
	cr_assert_eq(weft_dbreg_lookup(reg, "/x/a.db", id, sizeof(id), err,
	                 sizeof(err)), WEFT_OK, "a missing file is empty: %s", err);
	cr_assert_str_empty(id);
	cr_assert_eq(weft_dbreg_record(reg, "/x/a.db", ID_A, err, sizeof(err)),
	    WEFT_OK, "%s", err);
	cr_assert_eq(weft_dbreg_record(reg, "/x/with space.db", ID_B, err,
	                 sizeof(err)), WEFT_OK, "%s", err);
	cr_assert_eq(weft_dbreg_record(reg, "/x/a.db", ID_B, err, sizeof(err)),
	    WEFT_OK, "%s", err);
	cr_assert_eq(weft_dbreg_lookup(reg, "/x/a.db", id, sizeof(id), err,
	                 sizeof(err)), WEFT_OK, "%s", err);
	cr_assert_str_eq(id, ID_B, "re-recording replaces the line");
	cr_assert_eq(weft_dbreg_lookup(reg, "/x/with space.db", id, sizeof(id),
	                 err, sizeof(err)), WEFT_OK, "%s", err);
	cr_assert_str_eq(id, ID_B, "a path with a space");
	cr_assert_eq(stat(reg, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0600, "mode %o", st.st_mode & 0777);
	cr_assert_neq(weft_dbreg_record(reg, "/x/b.db", "not-an-id", err,
	                  sizeof(err)), WEFT_OK, "an id is 32 hex digits");
}

Test(dbreg, malformed_lines_named)
{
	static const char *bad[] = {
		"/x/a.db\n",                                 // no id
		"/x/a.db 0123\n",                            // short id
		"/x/a.db " ID_A "x\n",                       // long id
		"/x/a.db 0123456789ABCDEF0123456789ABCDEF\n", // upper case
		" " ID_A "\n",                               // no path
	};
	char        reg[700], id[64], err[512], want[800];

	snprintf(reg, sizeof(reg), "%s", at("databases"));
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		char text[512];
		snprintf(text, sizeof(text), "# comment\n\n/ok.db %s\n%s", ID_A,
		    bad[k]);
		write_file(reg, text);
		err[0] = '\0';
		cr_assert_eq(weft_dbreg_lookup(reg, "/ok.db", id, sizeof(id), err,
		                 sizeof(err)), WEFT_EINVAL, "case %zu accepted", k);
		snprintf(want, sizeof(want), "%s:4: malformed line", reg);
		cr_assert(strstr(err, want) != NULL, "case %zu: \"%s\" lacks \"%s\"",
		    k, err, want);
		// Recording over a malformed file refuses too, and keeps it.
		cr_assert_neq(weft_dbreg_record(reg, "/n.db", ID_B, err,
		                  sizeof(err)), WEFT_OK, "case %zu", k);
	}
}

Test(dbreg, key_is_canonical)
{
	char key[4200], want[4200], real[4096];

	cr_assert(weft_dbreg_key("sqlite::memory:", key, sizeof(key)) == false);
	mkdir(at("sub"), 0700);
	cr_assert_not_null(realpath(dir, real));
	cr_assert(weft_dbreg_key(at("sub/../w.db"), key, sizeof(key)));
	snprintf(want, sizeof(want), "%s/w.db", real);
	cr_assert_str_eq(key, want);
	cr_assert(weft_dbreg_key("postgres://u:secret@h:5432/d", key, sizeof(key)));
	cr_assert(strstr(key, "secret") == NULL, "no password in %s", key);
}

Test(dbreg, missing_and_replaced_files_refused)
{
	char        url[700], url2[700], err[1024] = "", reg[700];
	weft_store *s;

	snprintf(reg, sizeof(reg), "%s", at("databases"));
	snprintf(url, sizeof(url), "sqlite:%s", at("w.db"));
	snprintf(url2, sizeof(url2), "sqlite:%s", at("other.db"));
	cr_assert_eq(weft_store_open_registered(&s, url, reg, false, err,
	                 sizeof(err)), WEFT_OK, "first start needs no flag: %s", err);
	weft_store_close(s);
	cr_assert_eq(weft_store_open_registered(&s, url2, reg, false, err,
	                 sizeof(err)), WEFT_OK, "%s", err);
	weft_store_close(s);

	// Deleted: refused, and not created.
	unlink(at("w.db"));
	unlink(at("w.db-wal"));
	unlink(at("w.db-shm"));
	cr_assert_eq(weft_store_open_registered(&s, url, reg, false, err,
	                 sizeof(err)), WEFT_ENOENT);
	cr_assert(strstr(err, "not found; was it moved? `--init` creates a new "
	                      "one") != NULL, "%s", err);
	cr_assert(access(at("w.db"), F_OK) != 0, "no empty file made");

	// Another weft database moved into its place: refused.
	cr_assert_eq(rename(at("other.db"), at("w.db")), 0);
	cr_assert_eq(weft_store_open_registered(&s, url, reg, false, err,
	                 sizeof(err)), WEFT_EEXIST);
	cr_assert(strstr(err, "was it replaced") != NULL, "%s", err);

	// --init takes it, and from then on it is the path's database.
	cr_assert_eq(weft_store_open_registered(&s, url, reg, true, err,
	                 sizeof(err)), WEFT_OK, "%s", err);
	weft_store_close(s);
	cr_assert_eq(weft_store_open_registered(&s, url, reg, false, err,
	                 sizeof(err)), WEFT_OK, "%s", err);
	weft_store_close(s);

	// --init on a missing file creates a new one.
	unlink(at("w.db"));
	cr_assert_eq(weft_store_open_registered(&s, url, reg, true, err,
	                 sizeof(err)), WEFT_OK, "%s", err);
	weft_store_close(s);
}

// A registry that cannot be written (a read-only home, a service user
// without one) costs the check, not the start.
Test(dbreg, unwritable_registry_still_opens)
{
	char        url[700], err[1024] = "", reg[700];
	weft_store *s;

	// Its directory is a file: nothing can be created under it.
	write_file(at("not-a-dir"), "x");
	snprintf(reg, sizeof(reg), "%s/databases", at("not-a-dir"));
	snprintf(url, sizeof(url), "sqlite:%s", at("u.db"));
	cr_assert_eq(weft_store_open_registered(&s, url, reg, false, err,
	                 sizeof(err)), WEFT_OK, "refused: %s", err);
	weft_store_close(s);
}

Test(dbreg, deleted_file_unavailable_under_a_running_store)
{
	char        url[700], err[1024] = "";
	weft_store *s;

	snprintf(url, sizeof(url), "sqlite:%s", at("w.db"));
	cr_assert_eq(weft_store_open(&s, url, NULL, false, err, sizeof(err)),
	    WEFT_OK, "%s", err);
	cr_assert_eq(weft_store_check(s), WEFT_OK);
	unlink(at("w.db"));
	cr_assert_eq(weft_store_check(s), WEFT_EUNAVAIL);
	cr_assert(strstr(s->error, "was deleted") != NULL, "%s", s->error);
	cr_assert_eq(s->ops->begin(s), WEFT_EUNAVAIL, "no write goes to it");
	weft_store_close(s);

	// Another file put in its place: replaced, unavailable too.
	cr_assert_eq(weft_store_open(&s, url, NULL, false, err, sizeof(err)),
	    WEFT_OK, "%s", err);
	write_file(at("copy.db"), "not a database");
	cr_assert_eq(rename(at("copy.db"), at("w.db")), 0);
	cr_assert_eq(weft_store_check(s), WEFT_EUNAVAIL);
	cr_assert(strstr(s->error, "replaced by another file") != NULL, "%s",
	    s->error);
	uint64_t max;
	cr_assert_eq(weft_store_max_event_id(s, &max), WEFT_EUNAVAIL,
	    "reads fail too");
	weft_store_close(s);
}

// Which SQLite results are an outage (the engine retries the batch) and
// which a refusal of the batch itself.
Test(sqlite_class, outage_or_refusal)
{
	static const struct {
		int      rc;
		weft_err want;
	} rows[] = {
		{ SQLITE_FULL, WEFT_EUNAVAIL },
		{ SQLITE_IOERR, WEFT_EUNAVAIL },
		{ SQLITE_IOERR_WRITE, WEFT_EUNAVAIL },
		{ SQLITE_IOERR_FSYNC, WEFT_EUNAVAIL },
		{ SQLITE_IOERR_SHMMAP, WEFT_EUNAVAIL },
		{ SQLITE_READONLY, WEFT_EUNAVAIL },
		{ SQLITE_READONLY_DBMOVED, WEFT_EUNAVAIL },
		{ SQLITE_BUSY, WEFT_EUNAVAIL },
		{ SQLITE_BUSY_SNAPSHOT, WEFT_EUNAVAIL },
		{ SQLITE_LOCKED, WEFT_EUNAVAIL },
		{ SQLITE_CANTOPEN, WEFT_EUNAVAIL },
		{ SQLITE_NOTADB, WEFT_EUNAVAIL },
		{ SQLITE_CORRUPT, WEFT_EUNAVAIL },
		{ SQLITE_PERM, WEFT_EUNAVAIL },
		{ SQLITE_CONSTRAINT, WEFT_ESTORE },
		{ SQLITE_CONSTRAINT_UNIQUE, WEFT_ESTORE },
		{ SQLITE_MISMATCH, WEFT_ESTORE },
		{ SQLITE_ERROR, WEFT_ESTORE },
		{ SQLITE_TOOBIG, WEFT_ESTORE },
		{ SQLITE_RANGE, WEFT_ESTORE },
	};
	for (size_t k = 0; k < sizeof(rows) / sizeof(rows[0]); k++) {
		cr_assert_eq(weft_store_sqlite_class(rows[k].rc), rows[k].want,
		    "sqlite code %d (%s): got %s", rows[k].rc,
		    sqlite3_errstr(rows[k].rc),
		    weft_err_name(weft_store_sqlite_class(rows[k].rc)));
	}
}
