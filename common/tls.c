// tls: the files behind --tls-cert/--tls-key/--tls-ca, checked once, and
// the nng TLS configurations every listener and dialer gets from them.
//
// The files are checked with mbedTLS (the engine of Debian's nng, which
// libnng-dev depends on), so a bad file is refused at startup with its
// name and the reason instead of failing every handshake later.
#include "tls.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/pk.h>
#include <mbedtls/version.h>
#include <mbedtls/x509_crt.h>
#include <nng/supplemental/tls/tls.h>

#include "alloc.h"
#include "clock.h"
#include "log.h"

#define TLS_FILE_MAX (1024 * 1024) // largest PEM file read
#define TLS_WATCH_MAX 256          // endpoints watched at once
#define TLS_WATCH_MS 1000          // how often handshake counters are read
#define TLS_REPEAT_MS 10000        // least time between two logs of one

// One watched endpoint: its nng "auth" statistic counts failed handshakes.
typedef struct tls_watch {
	bool         dialer;
	nng_dialer   d;
	nng_listener l;
	char         url[256];
	uint64_t     failed;    // count seen so far
	uint64_t     logged;    // count when last logged
	int64_t      logged_ms; // monotonic
} tls_watch;

struct weft_tls {
	nng_tls_config *listener, *dialer, *http;
	bool            mutual;

	pthread_mutex_t lock; // guards watch[], nwatch, stop
	pthread_cond_t  cv;
	tls_watch       watch[TLS_WATCH_MAX];
	size_t          nwatch;
	bool            stop;
	pthread_t       thread;
	bool            started;
};

bool
weft_tls_url(const char *url)
{
	return (url != NULL &&
	    (strncmp(url, "tls+tcp://", 10) == 0 ||
	        strncmp(url, "tls+tcp4://", 11) == 0 ||
	        strncmp(url, "tls+tcp6://", 11) == 0 ||
	        strncmp(url, "wss://", 6) == 0 || strncmp(url, "wss4://", 7) == 0 ||
	        strncmp(url, "wss6://", 7) == 0));
}

bool
weft_tls_mutual(const weft_tls *t)
{
	return (t != NULL && t->mutual);
}

// ---- reading and checking the files ----

// tls_read reads path into a new NUL-terminated buffer (*out, free()).
static weft_err
tls_read(const char *flag, const char *path, char **out, size_t *len,
    char *err, size_t errlen)
{
	FILE  *f = fopen(path, "rb");
	char  *buf;
	size_t n;

	if (f == NULL) {
		snprintf(err, errlen, "%s %s: cannot read: %s", flag, path,
		    strerror(errno));
		return (WEFT_EINVAL);
	}
	buf = weft_xalloc(TLS_FILE_MAX + 1);
	n   = fread(buf, 1, TLS_FILE_MAX + 1, f);
	if (ferror(f)) {
		snprintf(err, errlen, "%s %s: cannot read: %s", flag, path,
		    strerror(errno));
		fclose(f);
		free(buf);
		return (WEFT_EINVAL);
	}
	fclose(f);
	if (n > TLS_FILE_MAX || n == 0) {
		snprintf(err, errlen, "%s %s: %s", flag, path,
		    n == 0 ? "the file is empty" : "larger than 1 MiB: not PEM");
		free(buf);
		return (WEFT_EINVAL);
	}
	buf[n] = '\0';
	*out   = buf;
	*len   = n + 1; // mbedTLS counts the terminator of PEM text
	return (WEFT_OK);
}

// tls_pem_certs parses every certificate of a PEM file into crt.
static weft_err
tls_pem_certs(mbedtls_x509_crt *crt, const char *flag, const char *path,
    const char *pem, size_t len, char *err, size_t errlen)
{
	int rv;

	if (strstr(pem, "-----BEGIN CERTIFICATE-----") == NULL) {
		snprintf(err, errlen, "%s %s: no PEM certificate in it "
		    "(-----BEGIN CERTIFICATE-----)", flag, path);
		return (WEFT_EINVAL);
	}
	if ((rv = mbedtls_x509_crt_parse(crt, (const unsigned char *) pem,
	         len)) != 0) {
		snprintf(err, errlen, "%s %s: not a valid PEM certificate "
		    "(mbedTLS error -0x%04x)", flag, path, (unsigned) -rv);
		return (WEFT_EINVAL);
	}
	return (WEFT_OK);
}

// tls_check checks the files against each other: the key parses and
// belongs to the certificate; with a CA, the certificate is signed by it
// and valid now.
static weft_err
tls_check(const char *cert_path, const char *cert, size_t cert_len,
    const char *key_path, const char *key, size_t key_len,
    const char *ca_path, const char *ca, size_t ca_len, char *err,
    size_t errlen)
{
	mbedtls_x509_crt crt, cas;
	mbedtls_pk_context pk;
	weft_err         rv = WEFT_EINVAL;
	uint32_t         flags;
	int              n;

	mbedtls_x509_crt_init(&crt);
	mbedtls_x509_crt_init(&cas);
	mbedtls_pk_init(&pk);
	if (tls_pem_certs(&crt, "--tls-cert", cert_path, cert, cert_len, err,
	        errlen) != WEFT_OK) {
		goto done;
	}
	if (strstr(key, "PRIVATE KEY-----") == NULL) {
		snprintf(err, errlen, "--tls-key %s: no PEM private key in it",
		    key_path);
		goto done;
	}
#if MBEDTLS_VERSION_MAJOR < 3
	n = mbedtls_pk_parse_key(&pk, (const unsigned char *) key, key_len,
	    NULL, 0);
#else
	n = mbedtls_pk_parse_key(&pk, (const unsigned char *) key, key_len,
	    NULL, 0, NULL, NULL);
#endif
	if (n != 0) {
		snprintf(err, errlen, "--tls-key %s: not a usable private key "
		    "(encrypted keys are not supported; mbedTLS error -0x%04x)",
		    key_path, (unsigned) -n);
		goto done;
	}
#if MBEDTLS_VERSION_MAJOR < 3
	n = mbedtls_pk_check_pair(&crt.pk, &pk);
#else
	n = mbedtls_pk_check_pair(&crt.pk, &pk, NULL, NULL);
#endif
	if (n != 0) {
		snprintf(err, errlen, "--tls-key %s: not the key of the "
		    "certificate in --tls-cert %s", key_path, cert_path);
		goto done;
	}
	if (ca != NULL) {
		char why[256];
		if (tls_pem_certs(&cas, "--tls-ca", ca_path, ca, ca_len, err,
		        errlen) != WEFT_OK) {
			goto done;
		}
		if (mbedtls_x509_crt_verify(&crt, &cas, NULL, NULL, &flags, NULL,
		        NULL) != 0) {
			mbedtls_x509_crt_verify_info(why, sizeof(why), "", flags);
			why[strcspn(why, "\n")] = '\0';
			snprintf(err, errlen, "--tls-cert %s: not accepted by "
			    "--tls-ca %s: %s", cert_path, ca_path, why);
			goto done;
		}
	} else if (mbedtls_x509_time_is_past(&crt.valid_to) ||
	    mbedtls_x509_time_is_future(&crt.valid_from)) {
		snprintf(err, errlen, "--tls-cert %s: not valid now", cert_path);
		goto done;
	}
	rv = WEFT_OK;
done:
	mbedtls_x509_crt_free(&crt);
	mbedtls_x509_crt_free(&cas);
	mbedtls_pk_free(&pk);
	return (rv);
}

// tls_config makes one nng configuration from the checked PEM text.
static weft_err
tls_config(nng_tls_config **out, nng_tls_mode mode, nng_tls_auth_mode auth,
    const char *cert, const char *key, const char *ca, char *err,
    size_t errlen)
{
	int rv;

	if ((rv = nng_tls_config_alloc(out, mode)) != 0 ||
	    (rv = nng_tls_config_own_cert(*out, cert, key, NULL)) != 0 ||
	    (ca != NULL && (rv = nng_tls_config_ca_chain(*out, ca, NULL)) != 0) ||
	    (rv = nng_tls_config_auth_mode(*out, auth)) != 0) {
		snprintf(err, errlen, "cannot set up TLS: %s", nng_strerror(rv));
		return (weft_err_from_nng(rv));
	}
	return (WEFT_OK);
}

// ---- watching handshakes ----

// tls_watch_add remembers an endpoint whose failed handshakes get logged.
static void
tls_watch_add(weft_tls *t, bool dialer, nng_dialer d, nng_listener l,
    const char *url)
{
	tls_watch *w;

	pthread_mutex_lock(&t->lock);
	if (t->nwatch < TLS_WATCH_MAX) {
		w = &t->watch[t->nwatch++];
		memset(w, 0, sizeof(*w));
		w->dialer = dialer;
		w->d      = d;
		w->l      = l;
		snprintf(w->url, sizeof(w->url), "%s", url);
	}
	pthread_mutex_unlock(&t->lock);
}

// tls_watch_bound puts a listener's bound port into its url for port 0,
// so the log tells listeners apart.
static void
tls_watch_bound(tls_watch *w)
{
	const char *colon = strrchr(w->url, ':');
	int         port;

	if (!w->dialer && colon != NULL && strcmp(colon, ":0") == 0 &&
	    nng_listener_get_int(w->l, NNG_OPT_TCP_BOUND_PORT, &port) == 0) {
		snprintf(w->url + (colon - w->url), sizeof(w->url) -
		    (size_t) (colon - w->url), ":%d", port);
	}
}

// tls_watch_one reads one endpoint's count of failed handshakes; false
// when the endpoint is gone.
static bool
tls_watch_one(tls_watch *w, nng_stat *all, int64_t now)
{
	nng_stat *ep = w->dialer ? nng_stat_find_dialer(all, w->d)
	                         : nng_stat_find_listener(all, w->l);
	nng_stat *auth;

	if (ep == NULL) {
		return (false);
	}
	if ((auth = nng_stat_find(ep, "auth")) == NULL) {
		return (true);
	}
	tls_watch_bound(w);
	w->failed = nng_stat_value(auth);
	if (w->failed > w->logged &&
	    (w->logged == 0 || now - w->logged_ms >= TLS_REPEAT_MS)) {
		if (w->dialer) {
			weft_log_warn("TLS-HANDSHAKE",
			    "side=dial url=%s failed=%" PRIu64 " handshakes failed "
			    "so far: the peer's certificate is not signed by "
			    "our --tls-ca, or the peer refused ours",
			    w->url, w->failed);
		} else {
			weft_log_warn("TLS-HANDSHAKE",
			    "side=listen url=%s rejected=%" PRIu64 " handshakes "
			    "failed so far: a peer without a certificate "
			    "signed by --tls-ca, or not speaking TLS",
			    w->url, w->failed);
		}
		w->logged    = w->failed;
		w->logged_ms = now;
	}
	return (true);
}

static void *
tls_watch_main(void *arg)
{
	weft_tls *t = arg;

	pthread_mutex_lock(&t->lock);
	while (!t->stop) {
		struct timespec due =
		    weft_clock_mono_ts(weft_clock_mono_ms() + TLS_WATCH_MS);
		nng_stat *all = NULL;

		if (t->nwatch > 0 && nng_stats_get(&all) == 0) {
			int64_t now = weft_clock_mono_ms();
			for (size_t i = 0; i < t->nwatch;) {
				if (tls_watch_one(&t->watch[i], all, now)) {
					i++;
				} else {
					t->watch[i] = t->watch[--t->nwatch];
				}
			}
			nng_stats_free(all);
		}
		while (!t->stop &&
		    pthread_cond_timedwait(&t->cv, &t->lock, &due) == 0) {
		}
	}
	pthread_mutex_unlock(&t->lock);
	return (NULL);
}

// ---- open, close, apply ----

weft_err
weft_tls_open(weft_tls **out, const char *cert_path, const char *key_path,
    const char *ca_path, char *err, size_t errlen)
{
	char    *cert = NULL, *key = NULL, *ca = NULL;
	size_t   cert_len = 0, key_len = 0, ca_len = 0;
	weft_tls *t = NULL;
	weft_err rv;

	*out = NULL;
	cert_path = cert_path != NULL && cert_path[0] != '\0' ? cert_path : NULL;
	key_path  = key_path != NULL && key_path[0] != '\0' ? key_path : NULL;
	ca_path   = ca_path != NULL && ca_path[0] != '\0' ? ca_path : NULL;
	if (cert_path == NULL && key_path == NULL && ca_path == NULL) {
		return (WEFT_OK);
	}
	if ((cert_path == NULL) != (key_path == NULL)) {
		snprintf(err, errlen, "--tls-cert and --tls-key go together: "
		    "%s is missing", cert_path == NULL ? "--tls-cert" : "--tls-key");
		return (WEFT_EINVAL);
	}
	if (cert_path == NULL) {
		snprintf(err, errlen, "--tls-ca needs --tls-cert and --tls-key "
		    "too: a TLS node always presents its own certificate");
		return (WEFT_EINVAL);
	}
	if ((rv = tls_read("--tls-cert", cert_path, &cert, &cert_len, err,
	         errlen)) != WEFT_OK ||
	    (rv = tls_read("--tls-key", key_path, &key, &key_len, err,
	         errlen)) != WEFT_OK ||
	    (ca_path != NULL &&
	        (rv = tls_read("--tls-ca", ca_path, &ca, &ca_len, err,
	             errlen)) != WEFT_OK) ||
	    (rv = tls_check(cert_path, cert, cert_len, key_path, key, key_len,
	         ca_path, ca, ca_len, err, errlen)) != WEFT_OK) {
		goto fail;
	}
	t = weft_xalloc(sizeof(*t));
	pthread_mutex_init(&t->lock, NULL);
	weft_clock_cond_init(&t->cv);
	t->mutual = ca != NULL;
	if ((rv = tls_config(&t->listener, NNG_TLS_MODE_SERVER,
	         ca != NULL ? NNG_TLS_AUTH_MODE_REQUIRED : NNG_TLS_AUTH_MODE_NONE,
	         cert, key, ca, err, errlen)) != WEFT_OK ||
	    (rv = tls_config(&t->dialer, NNG_TLS_MODE_CLIENT,
	         ca != NULL ? NNG_TLS_AUTH_MODE_REQUIRED : NNG_TLS_AUTH_MODE_NONE,
	         cert, key, ca, err, errlen)) != WEFT_OK ||
	    (rv = tls_config(&t->http, NNG_TLS_MODE_SERVER,
	         NNG_TLS_AUTH_MODE_NONE, cert, key, NULL, err, errlen)) !=
	        WEFT_OK) {
		goto fail;
	}
	if (pthread_create(&t->thread, NULL, tls_watch_main, t) != 0) {
		snprintf(err, errlen, "cannot start the TLS watch thread");
		rv = WEFT_ENOMEM;
		goto fail;
	}
	t->started = true;
	if (ca == NULL) {
		weft_log_warn("TLS-NO-CA",
		    "no --tls-ca: traffic is encrypted but peers are not "
		    "authenticated (anyone can connect, and a dialer cannot "
		    "tell its peer from an impostor)");
	}
	free(cert);
	free(key);
	free(ca);
	*out = t;
	return (WEFT_OK);
fail:
	free(cert);
	free(key);
	free(ca);
	weft_tls_close(t);
	return (rv);
}

void
weft_tls_close(weft_tls *t)
{
	if (t == NULL) {
		return;
	}
	if (t->started) {
		pthread_mutex_lock(&t->lock);
		t->stop = true;
		pthread_cond_signal(&t->cv);
		pthread_mutex_unlock(&t->lock);
		pthread_join(t->thread, NULL);
	}
	if (t->listener != NULL) {
		nng_tls_config_free(t->listener);
	}
	if (t->dialer != NULL) {
		nng_tls_config_free(t->dialer);
	}
	if (t->http != NULL) {
		nng_tls_config_free(t->http);
	}
	pthread_mutex_destroy(&t->lock);
	pthread_cond_destroy(&t->cv);
	free(t);
}

// tls_need refuses a TLS url when TLS is off; false when url needs none.
static bool
tls_need(const weft_tls *t, const char *url, weft_err *rv, char *err,
    size_t errlen)
{
	*rv = WEFT_OK;
	if (!weft_tls_url(url)) {
		return (false);
	}
	if (t == NULL) {
		snprintf(err, errlen, "%s is a TLS address: give --tls-cert and "
		    "--tls-key (and --tls-ca for mutual TLS)", url);
		*rv = WEFT_EINVAL;
		return (false);
	}
	return (true);
}

static weft_err
tls_set_failed(const char *url, int rv, char *err, size_t errlen)
{
	snprintf(err, errlen, "%s: cannot set the TLS configuration: %s", url,
	    nng_strerror(rv));
	return (weft_err_from_nng(rv));
}

weft_err
weft_tls_listener(weft_tls *t, nng_listener l, const char *url, char *err,
    size_t errlen)
{
	weft_err rv;
	int      n;

	if (!tls_need(t, url, &rv, err, errlen)) {
		return (rv);
	}
	if ((n = nng_listener_set_ptr(l, NNG_OPT_TLS_CONFIG, t->listener)) !=
	    0) {
		return (tls_set_failed(url, n, err, errlen));
	}
	nng_dialer none = NNG_DIALER_INITIALIZER;
	tls_watch_add(t, false, none, l, url);
	return (WEFT_OK);
}

weft_err
weft_tls_dialer(weft_tls *t, nng_dialer d, const char *url, char *err,
    size_t errlen)
{
	weft_err rv;
	int      n;

	if (!tls_need(t, url, &rv, err, errlen)) {
		return (rv);
	}
	if ((n = nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, t->dialer)) != 0) {
		return (tls_set_failed(url, n, err, errlen));
	}
	nng_listener none = NNG_LISTENER_INITIALIZER;
	tls_watch_add(t, true, d, none, url);
	return (WEFT_OK);
}

weft_err
weft_tls_http(const weft_tls *t, nng_http_server *s, char *err, size_t errlen)
{
	int n;

	if ((n = nng_http_server_set_tls(s, t->http)) != 0) {
		snprintf(err, errlen, "https: cannot set the TLS configuration: %s",
		    nng_strerror(n));
		return (weft_err_from_nng(n));
	}
	return (WEFT_OK);
}

weft_err
weft_tls_http_listener(weft_tls *t, nng_listener l, const char *url,
    char *err, size_t errlen)
{
	weft_err rv;
	int      n;

	if (!tls_need(t, url, &rv, err, errlen)) {
		return (rv);
	}
	if ((n = nng_listener_set_ptr(l, NNG_OPT_TLS_CONFIG, t->http)) != 0) {
		return (tls_set_failed(url, n, err, errlen));
	}
	return (WEFT_OK);
}
