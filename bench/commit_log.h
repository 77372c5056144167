// commit_log: the record the commit shim appends for every store commit
// under the coordinator, and weft-bench reads back per workload.
#ifndef WEFT_BENCH_COMMIT_LOG_H
#define WEFT_BENCH_COMMIT_LOG_H

#include <stdint.h>

// One committed transaction. Written with one write(2) on an O_APPEND file,
// in host byte order (the bench reads it on the same machine).
typedef struct bench_commit_rec {
	uint32_t txn_us;    // BEGIN issued -> COMMIT returned, microseconds
	uint32_t commit_us; // the COMMIT statement alone (the fsync), us
} bench_commit_rec;

// Environment variable naming the file the shim appends to.
#define BENCH_COMMIT_LOG_ENV "WEFT_BENCH_COMMIT_LOG"

#endif
