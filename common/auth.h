// auth: API tokens for the HTTP API, the control socket and the event
// stream: the token file, roles, the constant-time lookup, and which
// listen addresses are loopback (where tokens are optional).
//
// The file has one token a line, `NAME ROLE TOKEN`; blank lines and lines
// starting with # are ignored. Only a hash of each token is kept in memory.
#ifndef WEFT_AUTH_H
#define WEFT_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define WEFT_AUTH_TOKEN_MIN 16  // shortest token accepted, bytes
#define WEFT_AUTH_TOKEN_MAX 512 // longest token accepted, bytes
#define WEFT_AUTH_NAME_MAX 64   // longest token name, bytes
#define WEFT_AUTH_MAX 4096      // most tokens in one file

// What a caller may do. Ordered: a role allows everything below it.
enum weft_role {
	WEFT_ROLE_NONE    = 0, // nothing (no token, or an unknown one)
	WEFT_ROLE_READ    = 1, // every GET and the event stream
	WEFT_ROLE_OPERATE = 2, // also every request that changes state
};

// One token of the file; the token itself is kept only as a hash.
typedef struct weft_token {
	char           name[WEFT_AUTH_NAME_MAX + 1];
	enum weft_role role;
	uint8_t        hash[32]; // BLAKE2b-256 of the token
} weft_token;

typedef struct weft_tokens {
	weft_token *list;
	size_t      n;
} weft_tokens;

// weft_role_name returns "read", "operate" or "none"; static storage.
const char *weft_role_name(enum weft_role r);

// weft_tokens_parse parses the text of a token file (len bytes, borrowed;
// need not be NUL-terminated) into *t, which weft_tokens_fini frees. what
// names the file in errors. On error nothing is kept and err (errlen
// bytes) names what:line and the problem, never a token's text.
// WEFT_EINVAL for any malformed line, an empty file included.
weft_err weft_tokens_parse(weft_tokens *t, const char *text, size_t len,
    const char *what, char *err, size_t errlen);

// weft_tokens_load reads and parses the token file at path (borrowed). A
// file readable or writable by group or others is refused (WEFT_EAUTH),
// like the cluster cookie; WEFT_EIO when it cannot be read.
weft_err weft_tokens_load(weft_tokens *t, const char *path, char *err,
    size_t errlen);

// weft_tokens_find returns the entry whose token is tok (len bytes,
// borrowed), or NULL. It hashes tok and compares against every entry in
// constant time, so neither the result nor the time taken tells how much
// of a wrong token was right. Any thread: t is not changed after load.
const weft_token *weft_tokens_find(const weft_tokens *t, const char *tok,
    size_t len);

// weft_tokens_fini frees the list and wipes the hashes. NULL and a zeroed
// struct are fine.
void weft_tokens_fini(weft_tokens *t);

// weft_auth_host_loopback reports whether host (a host name or address,
// IPv6 with or without brackets) is loopback: 127.0.0.0/8, ::1 or
// localhost.
bool weft_auth_host_loopback(const char *host);

// weft_auth_addr_loopback reports whether a listen address is reachable
// from this machine only: HOST:PORT (as --http takes) or a URL
// (tcp://HOST:PORT, ws://HOST:PORT/path); ipc:// and inproc:// are local.
// A wildcard or empty host (tcp://:7420, 0.0.0.0) is not loopback.
bool weft_auth_addr_loopback(const char *addr);

#endif
