// tokens_test: the API token file parser against good and malformed
// input (each error names file:line and never the token), the lookup, the
// file mode check, and which listen addresses count as loopback.
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth.h"
#include "cookie.h"

#define T16 "0123456789abcdef"

static void
setup(void)
{
	cr_assert_eq(weft_crypto_init(), 0);
}

TestSuite(tokens, .init = setup);

Test(tokens, parses_names_roles_and_finds_tokens)
{
	static const char text[] =
	    "# the tokens\r\n"
	    "\n"
	    "   \t\n"
	    "alice operate " T16 "-alice\r\n"
	    "\tbob\tread\t" T16 "-bob   \n"
	    "ci@build.host-1 read " T16 "-ci"; // no final newline
	weft_tokens       t;
	char              err[256] = "";
	const weft_token *k;

	cr_assert_eq(weft_tokens_parse(&t, text, strlen(text), "f", err,
	                 sizeof(err)),
	    WEFT_OK, "%s", err);
	cr_assert_eq(t.n, 3);
	k = weft_tokens_find(&t, T16 "-alice", strlen(T16 "-alice"));
	cr_assert_not_null(k);
	cr_expect_str_eq(k->name, "alice");
	cr_expect_eq(k->role, WEFT_ROLE_OPERATE);
	k = weft_tokens_find(&t, T16 "-bob", strlen(T16 "-bob"));
	cr_assert_not_null(k);
	cr_expect_eq(k->role, WEFT_ROLE_READ);
	cr_expect_not_null(weft_tokens_find(&t, T16 "-ci", strlen(T16 "-ci")));
	// Near misses are nobody: a prefix, a longer one, another case.
	cr_expect_null(weft_tokens_find(&t, T16 "-bo", strlen(T16 "-bo")));
	cr_expect_null(weft_tokens_find(&t, T16 "-bobb", strlen(T16 "-bobb")));
	cr_expect_null(weft_tokens_find(&t, T16 "-BOB", strlen(T16 "-BOB")));
	cr_expect_null(weft_tokens_find(&t, "", 0));
	cr_expect_str_eq(weft_role_name(WEFT_ROLE_READ), "read");
	cr_expect_str_eq(weft_role_name(WEFT_ROLE_OPERATE), "operate");
	weft_tokens_fini(&t);
	weft_tokens_fini(&t); // twice is fine
}

Test(tokens, malformed_files_name_the_line)
{
	static const struct {
		const char *what, *text, *says;
	} rows[] = {
		{ "empty", "", "f: no tokens" },
		{ "comments only", "# a\n\n#b\n", "f: no tokens" },
		{ "one field", "alice\n", "f:1: want NAME ROLE TOKEN" },
		{ "two fields", "# x\nalice read\n", "f:2: want NAME ROLE TOKEN" },
		{ "four fields", "alice read " T16 " more\n", "f:1: want NAME ROLE "
		                                             "TOKEN: extra" },
		{ "unknown role", "alice admin " T16 "\n", "f:1: ROLE must be" },
		{ "role case", "alice READ " T16 "\n", "f:1: ROLE must be" },
		{ "short token", "\n\n\nalice read 0123456789abcde\n",
		    "f:4: TOKEN is too short" },
		{ "bad name", "al/ice read " T16 "\n", "f:1: NAME must be" },
		{ "long name",
		    "a123456789012345678901234567890123456789012345678901234567890123"
		    "4 read " T16 "\n",
		    "f:1: NAME must be" },
		{ "control char in token", "alice read " T16 "\x01x\n",
		    "f:1: TOKEN must be printable" },
		{ "non-ASCII token", "alice read " T16 "\xc3\xa9\n",
		    "f:1: TOKEN must be printable" },
		{ "duplicate name", "a read " T16 "1\na read " T16 "2\n",
		    "f:2: NAME is used twice" },
		{ "duplicate token", "a read " T16 "\nb operate " T16 "\n",
		    "f:2: the same TOKEN is listed twice" },
	};

	for (size_t k = 0; k < sizeof(rows) / sizeof(rows[0]); k++) {
		weft_tokens t;
		char        err[256] = "";
		weft_err    rv = weft_tokens_parse(&t, rows[k].text,
		       strlen(rows[k].text), "f", err, sizeof(err));
		cr_expect_eq(rv, WEFT_EINVAL, "%s: accepted", rows[k].what);
		cr_expect(strstr(err, rows[k].says) != NULL,
		    "%s: error \"%s\" lacks \"%s\"", rows[k].what, err,
		    rows[k].says);
		cr_expect_null(strstr(err, T16), "%s: error shows the token: %s",
		    rows[k].what, err);
		cr_expect_eq(t.n, 0, "%s: tokens kept", rows[k].what);
		cr_expect_null(t.list, "%s: list kept", rows[k].what);
	}
	// A NUL byte inside.
	weft_tokens t;
	char        err[256];
	static const char nul[] = "alice read " T16 "\0x\n";
	cr_expect_eq(weft_tokens_parse(&t, nul, sizeof(nul) - 1, "f", err,
	                 sizeof(err)),
	    WEFT_EINVAL);
}

// Random bytes and mutations of a good file: never a crash, and either
// tokens or an error naming the file.
Test(tokens, garbage_never_crashes)
{
	static const char good[] = "alice operate " T16 "\nbob read " T16 "x\n";
	char              buf[256];
	unsigned          seed = 12345;

	for (int i = 0; i < 20000; i++) {
		weft_tokens t;
		char        err[256] = "";
		size_t      len;
		seed = seed * 1103515245u + 12345u;
		if (i % 2 == 0) {
			len = (seed >> 8) % sizeof(buf);
			for (size_t k = 0; k < len; k++) {
				seed   = seed * 1103515245u + 12345u;
				buf[k] = (char) (seed >> 16);
			}
		} else {
			len = sizeof(good) - 1;
			memcpy(buf, good, len);
			for (int m = 0; m < 3; m++) {
				seed = seed * 1103515245u + 12345u;
				buf[(seed >> 8) % len] = (char) (seed >> 20);
			}
		}
		if (weft_tokens_parse(&t, buf, len, "g", err, sizeof(err)) ==
		    WEFT_OK) {
			cr_assert(t.n > 0 && t.n <= 2);
			weft_tokens_fini(&t);
		} else {
			cr_assert(strncmp(err, "g", 1) == 0, "error: %s", err);
			cr_assert_eq(t.n, 0);
		}
	}
}

Test(tokens, file_mode_is_checked)
{
	char        path[] = "/tmp/weft-tokens-XXXXXX";
	int         fd     = mkstemp(path);
	weft_tokens t;
	char        err[512] = "";
	static const char text[] = "alice read " T16 "\n";

	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, text, strlen(text)), (ssize_t) strlen(text));
	close(fd);
	chmod(path, 0600);
	cr_expect_eq(weft_tokens_load(&t, path, err, sizeof(err)), WEFT_OK,
	    "%s", err);
	cr_expect_eq(t.n, 1);
	weft_tokens_fini(&t);
	chmod(path, 0644);
	cr_expect_eq(weft_tokens_load(&t, path, err, sizeof(err)), WEFT_EAUTH);
	cr_expect(strstr(err, "group or others") != NULL, "%s", err);
	unlink(path);
	cr_expect_eq(weft_tokens_load(&t, path, err, sizeof(err)), WEFT_EIO);
	cr_expect(strstr(err, path) != NULL, "%s", err);
}

Test(tokens, loopback_addresses)
{
	static const struct {
		const char *addr;
		bool        loop;
	} rows[] = {
		{ "127.0.0.1:7480", true },
		{ "127.1.2.3:0", true },
		{ "localhost:7480", true },
		{ "LOCALHOST:1", true },
		{ "[::1]:7480", true },
		{ "tcp://127.0.0.1:7420", true },
		{ "tcp://localhost:7420", true },
		{ "tcp://[::1]:7420", true },
		{ "ws://127.0.0.1:80/api/v1/stream", true },
		{ "ipc:///tmp/weft.sock", true },
		{ "inproc://x", true },
		{ "0.0.0.0:7480", false },
		{ "tcp://0.0.0.0:7420", false },
		{ "tcp://:7420", false },
		{ ":7480", false },
		{ "10.0.0.1:7480", false },
		{ "[::]:7480", false },
		{ "tcp://[::]:7420", false },
		{ "127.example.com:80", false },
		{ "127.0.0.1.evil:80", false },
		{ "128.0.0.1:80", false },
		{ "localhost.evil:80", false },
		{ "example.com:7480", false },
	};

	for (size_t k = 0; k < sizeof(rows) / sizeof(rows[0]); k++) {
		cr_expect_eq(weft_auth_addr_loopback(rows[k].addr), rows[k].loop,
		    "%s: want %s", rows[k].addr,
		    rows[k].loop ? "loopback" : "not loopback");
	}
}
