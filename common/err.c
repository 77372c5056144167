// err: names and messages for weft_err, and the nng error table.
#include "err.h"

#include <nng/nng.h>

static const char *err_names[] = {
#define WEFT_ERR_NAME(name, msg) #name,
	WEFT_ERR_MAP(WEFT_ERR_NAME)
#undef WEFT_ERR_NAME
};

static const char *err_msgs[] = {
#define WEFT_ERR_MSG(name, msg) msg,
	WEFT_ERR_MAP(WEFT_ERR_MSG)
#undef WEFT_ERR_MSG
};

const char *
weft_err_name(weft_err err)
{
	if ((unsigned) err >= WEFT_ERR_COUNT) {
		return ("EUNKNOWN");
	}
	return (err_names[err]);
}

const char *
weft_err_str(weft_err err)
{
	if ((unsigned) err >= WEFT_ERR_COUNT) {
		return ("unknown error");
	}
	return (err_msgs[err]);
}

weft_err
weft_err_from_nng(int rv)
{
	static const struct {
		int      nng;
		weft_err weft;
	} map[] = {
		{ 0, WEFT_OK },
		{ NNG_ENOMEM, WEFT_ENOMEM },
		{ NNG_EINVAL, WEFT_EINVAL },
		{ NNG_ENOENT, WEFT_ENOENT },
		{ NNG_ETIMEDOUT, WEFT_ETIMEDOUT },
		{ NNG_ECLOSED, WEFT_ECLOSED },
		{ NNG_ESTATE, WEFT_ESTATE },
		{ NNG_EMSGSIZE, WEFT_ETOOBIG },
		{ NNG_EPROTO, WEFT_EPROTO },
		{ NNG_ECONNREFUSED, WEFT_ENET },
		{ NNG_ECONNRESET, WEFT_ENET },
		{ NNG_EADDRINUSE, WEFT_ENET },
		{ NNG_EADDRINVAL, WEFT_EINVAL },
	};
	for (unsigned i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		if (map[i].nng == rv) {
			return (map[i].weft);
		}
	}
	return (WEFT_ENET);
}
