// cookie_test: the cluster cookie file: created once with mode 0600 and 64
// hex characters; refused when readable by others, too short, too long, a
// symlink or a directory; a trailing newline is not part of the key.
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cookie.h"
#include "harness.h"

static char dir[512];

static void
setup(void)
{
	char *d = weft_h_tempdir("cookie");
	snprintf(dir, sizeof(dir), "%s", d);
	free(d);
	cr_assert_eq(weft_crypto_init(), 0);
}

static void
teardown(void)
{
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	(void) !system(cmd);
}

TestSuite(cookie, .init = setup, .fini = teardown);

static const char *
at(const char *name)
{
	static char path[700];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return (path);
}

static void
put(const char *name, const char *text, mode_t mode)
{
	int fd = open(at(name), O_WRONLY | O_CREAT | O_TRUNC, mode);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, text, strlen(text)), (ssize_t) strlen(text));
	close(fd);
	chmod(at(name), mode);
}

Test(cookie, created_once_0600_64_hex)
{
	weft_cookie a, b;
	char        err[512];
	struct stat st;

	cr_assert_eq(weft_cookie_load(&a, at("home/.weft/cookie"), true, err,
	                 sizeof(err)),
	    WEFT_OK, "%s", err);
	cr_expect(a.created);
	cr_assert_eq(stat(at("home/.weft/cookie"), &st), 0);
	cr_expect_eq(st.st_mode & 0777, 0600);
	cr_assert_eq(stat(at("home/.weft"), &st), 0);
	cr_expect_eq(st.st_mode & 0777, 0700, "its directory");
	cr_assert_eq(stat(at("home"), &st), 0, "a missing parent is made too");
	cr_expect_eq(a.len, 64);
	for (size_t i = 0; i < a.len; i++) {
		cr_expect(strchr("0123456789abcdef", a.key[i]) != NULL);
	}
	// The second start reads the same one.
	cr_assert_eq(weft_cookie_load(&b, at("home/.weft/cookie"), true, err,
	                 sizeof(err)),
	    WEFT_OK);
	cr_expect(!b.created);
	cr_expect_eq(memcmp(a.key, b.key, a.len), 0);
}

Test(cookie, racing_creators_agree)
{
	pid_t       kids[8];
	weft_cookie mine;
	char        err[512];

	for (int i = 0; i < 8; i++) {
		if ((kids[i] = fork()) == 0) {
			weft_cookie c;
			_exit(weft_cookie_load(&c, at("race"), true, err,
			          sizeof(err)) == WEFT_OK
			        ? 0
			        : 1);
		}
	}
	for (int i = 0; i < 8; i++) {
		int st;
		waitpid(kids[i], &st, 0);
		cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	cr_assert_eq(weft_cookie_load(&mine, at("race"), false, err,
	                 sizeof(err)),
	    WEFT_OK, "%s", err);
	cr_expect_eq(mine.len, 64);
}

Test(cookie, missing_without_create_says_what_to_do)
{
	weft_cookie c;
	char        err[512];

	cr_expect_eq(weft_cookie_load(&c, at("none"), false, err, sizeof(err)),
	    WEFT_ENOENT);
	cr_expect(strstr(err, at("none")) != NULL, "%s", err);
	cr_expect(strstr(err, "--cookie-file") != NULL, "%s", err);
	cr_expect_eq(access(at("none"), F_OK), -1, "made without create");
}

typedef struct bad_case {
	const char *name;
	const char *text;
	mode_t      mode;
	weft_err    want;
	const char *says;
} bad_case;

Test(cookie, bad_files_are_refused)
{
	static const bad_case cases[] = {
		{ "group", "0123456789abcdef0123456789abcdef01", 0640, WEFT_EAUTH,
		    "chmod 600" },
		{ "world", "0123456789abcdef0123456789abcdef01", 0604, WEFT_EAUTH,
		    "accessible by group or others" },
		{ "short", "0123456789abcdef0123456789abcde\n", 0600, WEFT_EINVAL,
		    "at least 32" },
		{ "empty", "", 0600, WEFT_EINVAL, "is 0 bytes" },
	};
	char err[512];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		weft_cookie c;
		put(cases[i].name, cases[i].text, cases[i].mode);
		cr_expect_eq(weft_cookie_load(&c, at(cases[i].name), true, err,
		                 sizeof(err)),
		    cases[i].want, "%s", cases[i].name);
		cr_expect(strstr(err, cases[i].says) != NULL, "%s: %s",
		    cases[i].name, err);
		cr_expect(strstr(err, at(cases[i].name)) != NULL, "%s: %s",
		    cases[i].name, err);
	}
}

Test(cookie, too_long_symlink_and_directory_are_refused)
{
	weft_cookie c;
	char        err[512];
	char       *big = malloc(WEFT_COOKIE_MAX + 10);

	memset(big, 'a', WEFT_COOKIE_MAX + 9);
	big[WEFT_COOKIE_MAX + 9] = '\0';
	put("long", big, 0600);
	free(big);
	cr_expect_eq(weft_cookie_load(&c, at("long"), false, err, sizeof(err)),
	    WEFT_EINVAL, "%s", err);
	put("real", "0123456789abcdef0123456789abcdef", 0600);
	char real[700];
	snprintf(real, sizeof(real), "%s", at("real"));
	cr_assert_eq(symlink(real, at("link")), 0);
	cr_expect_neq(weft_cookie_load(&c, at("link"), true, err, sizeof(err)),
	    WEFT_OK, "a symlink was followed");
	mkdir(at("adir"), 0700);
	cr_expect_neq(weft_cookie_load(&c, at("adir"), true, err, sizeof(err)),
	    WEFT_OK);
}

Test(cookie, trailing_newline_is_not_key_and_keys_differ_by_purpose)
{
	weft_cookie a, b;
	uint8_t     k1[WEFT_KEY_LEN], k2[WEFT_KEY_LEN], k3[WEFT_KEY_LEN];
	char        err[512];

	put("nl", "0123456789abcdef0123456789abcdef\n", 0600);
	put("nonl", "0123456789abcdef0123456789abcdef", 0600);
	cr_assert_eq(weft_cookie_load(&a, at("nl"), false, err, sizeof(err)),
	    WEFT_OK);
	cr_assert_eq(weft_cookie_load(&b, at("nonl"), false, err, sizeof(err)),
	    WEFT_OK);
	cr_expect_eq(a.len, 32);
	weft_cookie_derive(&a, "wire", k1);
	weft_cookie_derive(&b, "wire", k2);
	weft_cookie_derive(&a, "secrets", k3);
	cr_expect_eq(memcmp(k1, k2, sizeof(k1)), 0);
	cr_expect_neq(memcmp(k1, k3, sizeof(k1)), 0);
	weft_cookie_clear(&a);
	cr_expect_eq(a.len, 0);
}
