// cron_fuzz: libFuzzer target for schedule input from users: cron
// expressions (weft_cron_parse, then the next-fire search in UTC and in
// Europe/Berlin when the system has it) and TZif zone data (input that
// starts with "TZif": weft_tz_parse, then offsets). Invariants: a refusal
// explains itself; a fire is a whole minute after the time asked, and in
// UTC the first fire after the minute before it is itself.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cron.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static weft_tz berlin;
static bool    have_berlin, loaded;

static void
fuzz_load(void)
{
	static uint8_t buf[1 << 16];
	char           err[128];
	FILE          *f = fopen("/usr/share/zoneinfo/Europe/Berlin", "rb");
	size_t         n;

	loaded = true;
	if (f == NULL) {
		return;
	}
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	have_berlin = weft_tz_parse(&berlin, buf, n, err, sizeof(err)) == WEFT_OK;
}

static void
fuzz_zone(const uint8_t *data, size_t size)
{
	weft_tz tz;
	char    err[128] = "";

	if (weft_tz_parse(&tz, data, size, err, sizeof(err)) != WEFT_OK) {
		if (err[0] == '\0') {
			abort();
		}
		return;
	}
	for (int64_t t = -4000000000LL; t < 8000000000LL; t += 77777777) {
		int32_t o = weft_tz_offset(&tz, t);
		(void) o;
	}
	weft_tz_fini(&tz);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int64_t afters[] = { 0, 1774742400000, 1792720800000,
		4102444800000 };
	weft_cron c;
	weft_tz   utc;
	char     *src;
	char      err[256];

	if (!loaded) {
		fuzz_load();
	}
	if (size >= 4 && memcmp(data, "TZif", 4) == 0) {
		fuzz_zone(data, size);
		return (0);
	}
	src = malloc(size + 1);
	memcpy(src, data, size);
	src[size] = '\0';
	memset(err, 0, sizeof(err));
	if (weft_cron_parse(&c, src, err, sizeof(err)) != WEFT_OK) {
		if (err[0] == '\0' || strncmp(err, "cron: ", 6) != 0) {
			abort();
		}
		free(src);
		return (0);
	}
	weft_tz_utc(&utc);
	for (size_t i = 0; i < sizeof(afters) / sizeof(afters[0]); i++) {
		int64_t next, again;
		if (weft_cron_next(&c, &utc, afters[i], &next)) {
			if (next <= afters[i] || next % 60000 != 0 ||
			    !weft_cron_next(&c, &utc, next - 60000, &again) ||
			    again != next) {
				abort();
			}
		}
		if (have_berlin && weft_cron_next(&c, &berlin, afters[i], &next) &&
		    (next <= afters[i] || next % 60000 != 0)) {
			abort();
		}
	}
	free(src);
	return (0);
}
