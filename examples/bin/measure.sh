#!/bin/sh
# An exec step: reads its input document (JSON) on stdin and prints its
# output (JSON) on stdout. A non-zero exit fails the step; stderr's tail is
# kept in the step_failed event.
input=$(cat)
bytes=$(printf '%s' "$input" | wc -c)
printf '{"bytes": %d, "host": "%s", "key": "%s"}\n' "$bytes" "$(hostname)" "$WEFT_IDEMPOTENCY_KEY"
