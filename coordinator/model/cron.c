// cron: the cron expression parser, TZif zones and the next-fire search.
//
// Why not the C library: localtime_r reads the zone of the TZ variable, and
// changing TZ (setenv + tzset) while libpq, SQLite or nng threads read the
// environment is undefined behaviour. A zone here is plain data read from
// the same tz database files, so every schedule can have its own and any
// thread may compute with it. Debian has no cron library (cron and cronie
// are daemons), so the parser is here too, small and fuzzed.
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "cron.h"

// ---- calendar arithmetic (proleptic Gregorian, days since 1970-01-01) ----

static int64_t
cron_floor_div(int64_t a, int64_t b)
{
	return (a / b - ((a % b != 0) && ((a < 0) != (b < 0))));
}

// cron_days_from_civil: H. Hinnant's algorithm.
static int64_t
cron_days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t  era = cron_floor_div(y, 400);
	int64_t  yoe = y - era * 400;
	int64_t  doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t  doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return (era * 146097 + doe - 719468);
}

static void
cron_civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
	z += 719468;
	int64_t era = cron_floor_div(z, 146097);
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp  = (5 * doy + 2) / 153;
	*d          = (int) (doy - (153 * mp + 2) / 5 + 1);
	*m          = (int) (mp < 10 ? mp + 3 : mp - 9);
	*y          = yoe + era * 400 + (*m <= 2);
}

// cron_weekday: 0 Sunday; 1970-01-01 was a Thursday.
static int
cron_weekday(int64_t days)
{
	return ((int) (((days + 4) % 7 + 7) % 7));
}

static int
cron_month_days(int64_t y, int m)
{
	static const int n[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30,
		31 };
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	return (m == 2 && leap ? 29 : n[m - 1]);
}

// ---- the expression ----

typedef struct cron_field {
	const char        *name;
	int                lo, hi;
	const char *const *names; // NULL, or hi - lo + 1 names from lo
} cron_field;

static const char *const cron_months[] = { "JAN", "FEB", "MAR", "APR",
	"MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC" };
static const char *const cron_days[] = { "SUN", "MON", "TUE", "WED", "THU",
	"FRI", "SAT", "SUN" };

static const cron_field cron_fields[5] = {
	{ "minute", 0, 59, NULL },
	{ "hour", 0, 23, NULL },
	{ "day of month", 1, 31, NULL },
	{ "month", 1, 12, cron_months },
	{ "day of week", 0, 7, cron_days },
};

// cron_value reads a number or a name at *p into *v.
static bool
cron_value(const cron_field *f, int k, const char **p, int *v, char *err,
    size_t errlen)
{
	const char *s = *p;

	if (isdigit((unsigned char) *s)) {
		long n = 0;
		while (isdigit((unsigned char) *s) && n < 1000) {
			n = n * 10 + (*s++ - '0');
		}
		if (n < f->lo || n > f->hi) {
			snprintf(err, errlen,
			    "cron: field %d (%s): %ld is out of range %d-%d", k + 1,
			    f->name, n, f->lo, f->hi);
			return (false);
		}
		*v = (int) n;
		*p = s;
		return (true);
	}
	if (f->names != NULL && isalpha((unsigned char) *s)) {
		char word[4] = "";
		int  n       = 0;
		while (isalpha((unsigned char) s[n]) && n < 3) {
			word[n] = (char) toupper((unsigned char) s[n]);
			n++;
		}
		for (int i = 0; n == 3 && !isalpha((unsigned char) s[n]) &&
		     i <= f->hi - f->lo;
		     i++) {
			if (strcmp(word, f->names[i]) == 0) {
				*v = f->lo + i;
				*p = s + 3;
				return (true);
			}
		}
		int len = 0;
		while (s[len] != '\0' && s[len] != ',' && s[len] != '-' &&
		    s[len] != '/' && !isspace((unsigned char) s[len]) && len < 16) {
			len++;
		}
		snprintf(err, errlen, "cron: field %d (%s): unknown name \"%.*s\"",
		    k + 1, f->name, len, s);
		return (false);
	}
	snprintf(err, errlen, "cron: field %d (%s): expected a %s at \"%.16s\"",
	    k + 1, f->name, f->names != NULL ? "number or name" : "number",
	    *s == '\0' ? "(end)" : s);
	return (false);
}

// cron_item parses one list item of field k at *p, setting its bits.
static bool
cron_item(const cron_field *f, int k, const char **p, uint64_t *bits,
    bool *star, char *err, size_t errlen)
{
	int lo = f->lo, hi = f->hi, step = 1;

	if (**p == '*') {
		*star = true;
		(*p)++;
	} else {
		if (!cron_value(f, k, p, &lo, err, errlen)) {
			return (false);
		}
		hi = lo;
		if (**p == '-') {
			(*p)++;
			if (!cron_value(f, k, p, &hi, err, errlen)) {
				return (false);
			}
			if (hi == 0 && lo > 0 && f->hi == 7) {
				hi = 7; // "FRI-SUN": Sunday closes the week
			}
			if (hi < lo) {
				snprintf(err, errlen,
				    "cron: field %d (%s): range %d-%d is reversed",
				    k + 1, f->name, lo, hi);
				return (false);
			}
		} else if (**p == '/') {
			hi = f->hi; // "5/15": from 5 to the end, every 15
		}
	}
	if (**p == '/') {
		long n = 0;
		(*p)++;
		if (!isdigit((unsigned char) **p)) {
			snprintf(err, errlen,
			    "cron: field %d (%s): a step must be a number", k + 1,
			    f->name);
			return (false);
		}
		while (isdigit((unsigned char) **p) && n < 1000) {
			n = n * 10 + (*(*p)++ - '0');
		}
		if (n < 1 || n > f->hi - f->lo + 1) {
			snprintf(err, errlen,
			    "cron: field %d (%s): step %ld is out of range 1-%d",
			    k + 1, f->name, n, f->hi - f->lo + 1);
			return (false);
		}
		step = (int) n;
	}
	for (int v = lo; v <= hi; v += step) {
		*bits |= (uint64_t) 1 << v;
	}
	return (true);
}

static bool
cron_field_parse(int k, const char *text, size_t len, uint64_t *bits,
    bool *star, char *err, size_t errlen)
{
	const cron_field *f = &cron_fields[k];
	char              buf[128];
	const char       *p = buf;

	if (len >= sizeof(buf)) {
		snprintf(err, errlen, "cron: field %d (%s): too long", k + 1,
		    f->name);
		return (false);
	}
	memcpy(buf, text, len);
	buf[len] = '\0';
	*bits = 0;
	// Vixie cron: a field that begins with '*' (also "*/2") counts as
	// a star for the day-of-month / day-of-week rule.
	*star = buf[0] == '*';
	for (;;) {
		bool s = false;
		if (*p == ',' || *p == '\0') {
			snprintf(err, errlen, "cron: field %d (%s): empty list item",
			    k + 1, f->name);
			return (false);
		}
		if (!cron_item(f, k, &p, bits, &s, err, errlen)) {
			return (false);
		}
		if (*p == '\0') {
			return (true);
		}
		if (*p != ',') {
			snprintf(err, errlen,
			    "cron: field %d (%s): unexpected \"%c\"", k + 1, f->name,
			    *p);
			return (false);
		}
		p++;
	}
}

static const struct {
	const char *name, *expr;
} cron_macros[] = {
	{ "@yearly", "0 0 1 1 *" }, { "@annually", "0 0 1 1 *" },
	{ "@monthly", "0 0 1 * *" }, { "@weekly", "0 0 * * 0" },
	{ "@daily", "0 0 * * *" }, { "@midnight", "0 0 * * *" },
	{ "@hourly", "0 * * * *" },
};

weft_err
weft_cron_parse(weft_cron *out, const char *expr, char *err, size_t errlen)
{
	const char *p = expr;
	uint64_t    bits[5];
	bool        star[5];
	int         k = 0;

	memset(out, 0, sizeof(*out));
	while (isspace((unsigned char) *p)) {
		p++;
	}
	if (*p == '@') {
		size_t n = strcspn(p, " \t\r\n");
		for (size_t i = 0; i < sizeof(cron_macros) / sizeof(cron_macros[0]);
		     i++) {
			if (strlen(cron_macros[i].name) == n &&
			    strncmp(p, cron_macros[i].name, n) == 0 &&
			    p[n + strspn(p + n, " \t\r\n")] == '\0') {
				return (weft_cron_parse(out, cron_macros[i].expr, err,
				    errlen));
			}
		}
		snprintf(err, errlen,
		    "cron: unknown macro \"%.*s\" (use @yearly, @monthly, "
		    "@weekly, @daily or @hourly)",
		    (int) (n > 32 ? 32 : n), p);
		return (WEFT_EINVAL);
	}
	while (*p != '\0') {
		size_t n = strcspn(p, " \t\r\n");
		if (k == 5) {
			snprintf(err, errlen,
			    "cron: more than 5 fields (want minute hour "
			    "day-of-month month day-of-week; seconds and years "
			    "are not supported)");
			return (WEFT_EINVAL);
		}
		if (!cron_field_parse(k, p, n, &bits[k], &star[k], err, errlen)) {
			return (WEFT_EINVAL);
		}
		k++;
		p += n;
		while (isspace((unsigned char) *p)) {
			p++;
		}
	}
	if (k != 5) {
		snprintf(err, errlen,
		    "cron: %d field%s, want 5 (minute hour day-of-month month "
		    "day-of-week)",
		    k, k == 1 ? "" : "s");
		return (WEFT_EINVAL);
	}
	out->minute   = bits[0];
	out->hour     = (uint32_t) bits[1];
	out->dom      = (uint32_t) bits[2];
	out->month    = (uint16_t) bits[3];
	out->dow      = (uint8_t) ((bits[4] | (bits[4] >> 7)) & 0x7f);
	out->dom_star = star[2];
	out->dow_star = star[4];
	return (WEFT_OK);
}

// ---- zones ----

void
weft_tz_utc(weft_tz *tz)
{
	memset(tz, 0, sizeof(*tz));
}

void
weft_tz_fini(weft_tz *tz)
{
	if (tz != NULL) {
		free(tz->at);
		free(tz->idx);
		free(tz->off);
		memset(tz, 0, sizeof(*tz));
	}
}

bool
weft_tz_name_ok(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > 64 || name[0] == '/' || name[n - 1] == '/' ||
	    strstr(name, "..") != NULL || strstr(name, "//") != NULL) {
		return (false);
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char) name[i];
		if (!isalnum(c) && strchr("_+-/", c) == NULL) {
			return (false);
		}
	}
	return (true);
}

static int64_t
cron_be(const uint8_t *p, int n)
{
	uint64_t v = 0;
	for (int i = 0; i < n; i++) {
		v = (v << 8) | p[i];
	}
	if (n == 4) {
		return ((int64_t) (int32_t) (uint32_t) v);
	}
	return ((int64_t) v);
}

// cron_rule_num reads a number of at most 3 digits at *p.
static int
cron_rule_num(const char **p)
{
	int n = 0, k = 0;
	while (isdigit((unsigned char) **p) && k++ < 3) {
		n = n * 10 + (*(*p)++ - '0');
	}
	return (k > 0 ? n : -1);
}

// cron_rule_time reads [+-]hh[:mm[:ss]] into seconds.
static bool
cron_rule_time(const char **p, int32_t *secs)
{
	int sign = 1, h, m = 0, s = 0;
	if (**p == '+' || **p == '-') {
		sign = **p == '-' ? -1 : 1;
		(*p)++;
	}
	if ((h = cron_rule_num(p)) < 0 || h > 167) {
		return (false);
	}
	if (**p == ':') {
		(*p)++;
		if ((m = cron_rule_num(p)) < 0 || m > 59) {
			return (false);
		}
		if (**p == ':') {
			(*p)++;
			if ((s = cron_rule_num(p)) < 0 || s > 59) {
				return (false);
			}
		}
	}
	*secs = sign * (h * 3600 + m * 60 + s);
	return (true);
}

static bool
cron_rule_name(const char **p)
{
	const char *s = *p;
	if (*s == '<') {
		const char *e = strchr(s, '>');
		if (e == NULL) {
			return (false);
		}
		*p = e + 1;
		return (true);
	}
	while (isalpha((unsigned char) **p)) {
		(*p)++;
	}
	return (*p - s >= 3);
}

// cron_rule_date reads ",Mm.w.d[/time]" (the only form the tz database
// uses in footers); Julian forms are refused, and the zone then keeps the
// offset of its last transition.
static bool
cron_rule_date(const char **p, int *m, int *w, int *d, int32_t *t)
{
	if (**p != ',' || (*p)[1] != 'M') {
		return (false);
	}
	*p += 2;
	if ((*m = cron_rule_num(p)) < 1 || *m > 12 || *(*p)++ != '.' ||
	    (*w = cron_rule_num(p)) < 1 || *w > 5 || *(*p)++ != '.' ||
	    (*d = cron_rule_num(p)) < 0 || *d > 6) {
		return (false);
	}
	*t = 7200;
	if (**p == '/') {
		(*p)++;
		return (cron_rule_time(p, t));
	}
	return (true);
}

// cron_rule_parse reads the footer's POSIX TZ string (s, NUL-ended).
static void
cron_rule_parse(weft_tz *tz, const char *s)
{
	const char *p = s;
	int32_t     std, dst;

	if (!cron_rule_name(&p) || !cron_rule_time(&p, &std)) {
		return;
	}
	tz->std_off  = -std; // POSIX counts west of UTC
	tz->has_rule = true;
	if (*p == '\0') {
		return;
	}
	if (!cron_rule_name(&p)) {
		tz->has_rule = false;
		return;
	}
	tz->dst_off = tz->std_off + 3600;
	if (*p != ',' && *p != '\0') {
		if (!cron_rule_time(&p, &dst)) {
			tz->has_rule = false;
			return;
		}
		tz->dst_off = -dst;
	}
	if (!cron_rule_date(&p, &tz->start_m, &tz->start_w, &tz->start_d,
	        &tz->start_t) ||
	    !cron_rule_date(&p, &tz->end_m, &tz->end_w, &tz->end_d,
	        &tz->end_t) ||
	    *p != '\0') {
		tz->has_rule = false;
		return;
	}
	tz->rule_dst = true;
}

weft_err
weft_tz_parse(
    weft_tz *tz, const uint8_t *buf, size_t len, char *err, size_t errlen)
{
	const uint8_t *p = buf, *end = buf + len;
	int            tsize = 4;
	int64_t        cnt[6];

	weft_tz_utc(tz);
	if (len < 44 || memcmp(buf, "TZif", 4) != 0) {
		snprintf(err, errlen, "not a TZif file");
		return (WEFT_EINVAL);
	}
	for (int pass = 0; pass < 2; pass++) {
		size_t data;
		if (end - p < 44 || memcmp(p, "TZif", 4) != 0) {
			snprintf(err, errlen, "TZif: bad header");
			return (WEFT_EINVAL);
		}
		for (int i = 0; i < 6; i++) {
			cnt[i] = cron_be(p + 20 + 4 * i, 4);
			if (cnt[i] < 0 || cnt[i] > 100000) {
				snprintf(err, errlen, "TZif: bad counts");
				return (WEFT_EINVAL);
			}
		}
		// isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt
		data = (size_t) (cnt[3] * tsize + cnt[3] + cnt[4] * 6 + cnt[5] +
		    cnt[2] * (tsize + 4) + cnt[1] + cnt[0]);
		if (cnt[4] < 1 || (size_t) (end - p - 44) < data) {
			snprintf(err, errlen, "TZif: truncated");
			return (WEFT_EINVAL);
		}
		if (pass == 0 && p[4] >= '2') {
			p += 44 + data; // the 64-bit copy follows
			tsize = 8;
			continue;
		}
		p += 44;
		break;
	}
	tz->nat    = (size_t) cnt[3];
	tz->ntypes = (size_t) cnt[4];
	tz->at     = weft_xalloc((tz->nat ? tz->nat : 1) * sizeof(*tz->at));
	tz->idx    = weft_xalloc((tz->nat ? tz->nat : 1) * sizeof(*tz->idx));
	tz->off    = weft_xalloc(tz->ntypes * sizeof(*tz->off));
	for (size_t i = 0; i < tz->nat; i++, p += tsize) {
		tz->at[i] = cron_be(p, tsize);
	}
	for (size_t i = 0; i < tz->nat; i++) {
		tz->idx[i] = *p++;
		if (tz->idx[i] >= tz->ntypes) {
			weft_tz_fini(tz);
			snprintf(err, errlen, "TZif: bad type index");
			return (WEFT_EINVAL);
		}
	}
	for (size_t i = 0; i < tz->ntypes; i++, p += 6) {
		tz->off[i] = (int32_t) cron_be(p, 4);
	}
	tz->first = tz->off[0];
	p += cnt[5] + cnt[2] * (tsize + 4) + cnt[1] + cnt[0];
	if (tsize == 8 && p < end && *p == '\n') {
		const uint8_t *nl = memchr(p + 1, '\n', (size_t) (end - p - 1));
		if (nl != NULL && nl - p - 1 < 128) {
			char footer[128];
			memcpy(footer, p + 1, (size_t) (nl - p - 1));
			footer[nl - p - 1] = '\0';
			cron_rule_parse(tz, footer);
		}
	}
	return (WEFT_OK);
}

// cron_rule_day: the day (since the epoch) of rule "Mm.w.d" in year y.
static int64_t
cron_rule_day(int64_t y, int m, int w, int d)
{
	int64_t first = cron_days_from_civil(y, m, 1);
	int     day   = 1 + (d - cron_weekday(first) + 7) % 7 + (w - 1) * 7;
	while (day > cron_month_days(y, m)) {
		day -= 7;
	}
	return (first + day - 1);
}

static int32_t
cron_rule_offset(const weft_tz *tz, int64_t t)
{
	int64_t y;
	int     m, d;
	int64_t start, stop;

	if (!tz->rule_dst) {
		return (tz->std_off);
	}
	cron_civil_from_days(cron_floor_div(t + tz->std_off, 86400), &y, &m, &d);
	start = cron_rule_day(y, tz->start_m, tz->start_w, tz->start_d) * 86400 +
	    tz->start_t - tz->std_off;
	stop = cron_rule_day(y, tz->end_m, tz->end_w, tz->end_d) * 86400 +
	    tz->end_t - tz->dst_off;
	if (start < stop) {
		return (t >= start && t < stop ? tz->dst_off : tz->std_off);
	}
	// Southern hemisphere: DST spans the new year.
	return (t >= stop && t < start ? tz->std_off : tz->dst_off);
}

int32_t
weft_tz_offset(const weft_tz *tz, int64_t t)
{
	size_t lo = 0, hi;

	if (tz->nat == 0) {
		return (tz->has_rule ? cron_rule_offset(tz, t) : tz->first);
	}
	if (t < tz->at[0]) {
		return (tz->first);
	}
	if (t >= tz->at[tz->nat - 1] && tz->has_rule) {
		return (cron_rule_offset(tz, t));
	}
	hi = tz->nat; // the last transition at or before t is in [lo, hi)
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		if (tz->at[mid] <= t) {
			lo = mid;
		} else {
			hi = mid;
		}
	}
	return (tz->off[tz->idx[lo]]);
}

// cron_local_to_utc turns local wall time L (seconds, as if UTC) into the
// instant it names: the earlier one when L happens twice (an overlap), the
// end of the gap when it never happens (a gap).
static int64_t
cron_local_to_utc(const weft_tz *tz, int64_t L)
{
	int32_t oa = weft_tz_offset(tz, L - 86400);
	int32_t ob = weft_tz_offset(tz, L + 86400);
	int64_t ta = L - oa, tb = L - ob;
	bool    va = weft_tz_offset(tz, ta) == oa;
	bool    vb = weft_tz_offset(tz, tb) == ob;

	if (va && vb) {
		return (ta < tb ? ta : tb);
	}
	if (va || vb) {
		return (va ? ta : tb);
	}
	// A gap: find the transition in (lo, hi], the first instant whose
	// offset differs from the one before the gap.
	int64_t lo = ta < tb ? ta : tb, hi = ta < tb ? tb : ta;
	int32_t before = weft_tz_offset(tz, lo);
	while (hi - lo > 1) {
		int64_t mid = lo + (hi - lo) / 2;
		if (weft_tz_offset(tz, mid) == before) {
			lo = mid;
		} else {
			hi = mid;
		}
	}
	return (hi);
}

static bool
cron_day_ok(const weft_cron *c, int d, int wd)
{
	bool dom = (c->dom >> d) & 1, dow = (c->dow >> wd) & 1;
	if (c->dom_star || c->dow_star) {
		return (dom && dow);
	}
	return (dom || dow); // both restricted: either will do (Vixie)
}

bool
weft_cron_next(
    const weft_cron *c, const weft_tz *tz, int64_t after, int64_t *next)
{
	int64_t as = cron_floor_div(after, 1000);
	int64_t L  = as + weft_tz_offset(tz, as);
	int64_t limit;

	L     = cron_floor_div(L, 60) * 60 + 60;
	limit = L + (int64_t) 8 * 366 * 86400;
	while (L < limit) {
		int64_t days = cron_floor_div(L, 86400), y;
		int     secs = (int) (L - days * 86400), m, d;
		int     h = secs / 3600, mi = (secs / 60) % 60;
		cron_civil_from_days(days, &y, &m, &d);
		if (!((c->month >> m) & 1)) {
			int ny = m == 12 ? 1 : 0;
			L = cron_days_from_civil(y + ny, ny ? 1 : m + 1, 1) * 86400;
			continue;
		}
		if (!cron_day_ok(c, d, cron_weekday(days))) {
			L = (days + 1) * 86400;
			continue;
		}
		if (!((c->hour >> h) & 1)) {
			L = days * 86400 + (int64_t) (h + 1) * 3600;
			continue;
		}
		if (!((c->minute >> mi) & 1)) {
			L += 60;
			continue;
		}
		int64_t t = cron_local_to_utc(tz, L);
		if (t > as) {
			*next = t * 1000;
			return (true);
		}
		L += 60;
	}
	return (false);
}
