// err: the one error enum of weft, its names and messages from one list.
//
// A weft_err says "this call could not do what you asked". A failed step is
// not an error code: it is an event for the state machine.
#ifndef WEFT_ERR_H
#define WEFT_ERR_H

#define WEFT_ERR_MAP(X)                                                   \
	X(OK, "success")                                                  \
	X(ENOMEM, "out of memory")                                        \
	X(EINVAL, "invalid argument")                                     \
	X(ENOENT, "not found")                                            \
	X(EEXIST, "already exists")                                       \
	X(ESTATE, "illegal in the current state")                         \
	X(EPROTO, "protocol error")                                       \
	X(EVERSION, "unknown protocol version")                           \
	X(EAUTH, "authentication failed")                                 \
	X(ETOOBIG, "message too large")                                   \
	X(ETIMEDOUT, "timed out")                                         \
	X(ECLOSED, "closed")                                              \
	X(ESTORE, "store error")                                          \
	X(EUNAVAIL, "unavailable")                                        \
	X(EIO, "input/output error")                                      \
	X(ENET, "network error")                                          \
	X(EDEF, "invalid workflow definition")                            \
	X(ESCHEMA, "database schema is newer than this binary")           \
	X(EREPLAY, "replayed or stale message")

typedef enum weft_err {
#define WEFT_ERR_ENUM(name, msg) WEFT_##name,
	WEFT_ERR_MAP(WEFT_ERR_ENUM)
#undef WEFT_ERR_ENUM
	WEFT_ERR_COUNT
} weft_err;

// weft_err_name returns the symbolic name ("ENOENT") of err; static storage.
const char *weft_err_name(weft_err err);

// weft_err_str returns a human message for err; static storage.
const char *weft_err_str(weft_err err);

// weft_err_from_nng maps an nng error number to a weft_err.
weft_err weft_err_from_nng(int rv);

#endif
