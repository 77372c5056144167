// id: ULID-style ids, monotonic within one process.
#include "id.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/random.h>

#include "clock.h"

static const char id_alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

static pthread_mutex_t id_lock = PTHREAD_MUTEX_INITIALIZER;
static int64_t         id_last_ms;
static uint8_t         id_last_rand[10];

void
weft_id_new(char *buf)
{
	uint8_t bytes[16];
	int64_t ms = weft_clock_wall_ms();

	pthread_mutex_lock(&id_lock);
	if (ms <= id_last_ms) {
		// Same (or earlier) millisecond: keep the time, add one to the
		// random part so ids stay ordered.
		ms = id_last_ms;
		for (int i = 9; i >= 0; i--) {
			if (++id_last_rand[i] != 0) {
				break;
			}
		}
	} else {
		if (getrandom(id_last_rand, sizeof(id_last_rand), 0) !=
		    (ssize_t) sizeof(id_last_rand)) {
			// Fall back to time-derived bits; ids stay unique
			// within the process through the increment above.
			for (int i = 0; i < 10; i++) {
				id_last_rand[i] = (uint8_t) (ms >> (i % 6));
			}
		}
		id_last_rand[0] &= 0x7f; // room to increment
		id_last_ms = ms;
	}
	for (int i = 0; i < 6; i++) {
		bytes[i] = (uint8_t) ((uint64_t) ms >> (8 * (5 - i)));
	}
	memcpy(bytes + 6, id_last_rand, 10);
	pthread_mutex_unlock(&id_lock);

	// 128 bits into 26 base32 digits; the first digit carries 3 bits.
	for (int i = 0; i < WEFT_ID_LEN; i++) {
		int      bit = (i == 0) ? 0 : 3 + (i - 1) * 5;
		int      len = (i == 0) ? 3 : 5;
		unsigned v   = 0;
		for (int b = 0; b < len; b++) {
			int pos = bit + b;
			v       = (v << 1) | ((bytes[pos / 8] >> (7 - pos % 8)) & 1u);
		}
		buf[i] = id_alphabet[v];
	}
	buf[WEFT_ID_LEN] = '\0';
}

bool
weft_id_valid(const char *s)
{
	if (s == NULL || strlen(s) != WEFT_ID_LEN) {
		return (false);
	}
	for (int i = 0; i < WEFT_ID_LEN; i++) {
		if (strchr(id_alphabet, s[i]) == NULL || s[i] == '\0') {
			return (false);
		}
	}
	return (s[0] <= '7');
}
