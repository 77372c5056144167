#!/bin/sh
# A rules-based goal decomposer: an exec step of an "expand": true step.
# It gets the goal as its first argument (and the step's input document on
# stdin, unused here) and prints {"steps": [...]} in the definition format:
# design -> backend and frontend in parallel -> test (a map over the test
# suites that fit) -> deploy. The contract, for a replacement (an LLM, a
# planner), is in README.md beside it. POSIX sh and sed only.
set -eu

goal=${1:-}
# What ${input.goal} renders when the run has no goal: nothing, or null.
if [ -z "$goal" ] || [ "$goal" = null ]; then
  echo "decompose: no goal given (run with --input '{\"goal\": \"...\"}')" >&2
  exit 2
fi
if [ "${#goal}" -gt 500 ]; then
  echo "decompose: the goal is ${#goal} characters, over 500" >&2
  exit 2
fi

# The goal as a JSON string body: backslashes and quotes escaped, control
# characters and '$' dropped (a goal must not write ${...} references into
# the steps it becomes).
json_str() {
  printf '%s' "$1" | tr -d '\000-\037$' | sed 's/\\/\\\\/g; s/"/\\"/g'
}

lower=$(printf '%s' "$goal" | tr 'A-Z' 'a-z')
has() { case "$lower" in *"$1"*) return 0 ;; esac; return 1; }

# The subject: the goal less a leading verb ("Build user authentication
# system" -> "user authentication system").
subject=$(printf '%s' "$goal" |
  sed -E 's/^[[:space:]]*([Bb]uild|[Cc]reate|[Ii]mplement|[Aa]dd|[Mm]ake|[Dd]evelop|[Ww]rite)[[:space:]]+(an?[[:space:]]+|the[[:space:]]+)?//')
s=$(json_str "$subject")
g=$(json_str "$goal")

# Which parts the goal has: no frontend for an API, CLI or library; no
# backend for a page or UI alone.
backend=true
frontend=true
if has " api" || has "cli" || has "library" || has "backend" || has "service"; then
  frontend=false
fi
if has "page" || has " ui" || has "frontend" || has "website"; then
  if ! has "system" && ! has "backend"; then backend=false; fi
fi
if has "ui " || has "dashboard"; then frontend=true; fi

# The test suites: unit always; integration when there is a backend; e2e
# with a frontend; security for anything near accounts, money or secrets.
suites='"unit"'
$backend && suites="$suites, \"integration\""
$frontend && suites="$suites, \"e2e\""
if has "auth" || has "login" || has "password" || has "payment" || has "secur"; then
  suites="$suites, \"security\""
fi

impl=""
deps=""
if $backend; then
  impl="$impl
    {\"id\": \"backend\", \"type\": \"pass\", \"depends_on\": [\"design\"],
     \"with\": {\"task\": \"implement the backend of $s\",
              \"design\": \"\${steps.design.output.task}\"}},"
  deps="\"backend\""
fi
if $frontend; then
  impl="$impl
    {\"id\": \"frontend\", \"type\": \"pass\", \"depends_on\": [\"design\"],
     \"with\": {\"task\": \"implement the frontend of $s\",
              \"design\": \"\${steps.design.output.task}\"}},"
  deps="${deps:+$deps, }\"frontend\""
fi

cat <<JSON
{
  "goal": "$g",
  "subject": "$s",
  "steps": [
    {"id": "design", "type": "pass",
     "with": {"task": "design $s", "goal": "\${steps.plan.output.goal}"}},$impl
    {"id": "test", "type": "pass", "depends_on": [$deps],
     "map": [$suites],
     "with": {"task": "run the \${item} tests of $s", "suite": "\${item}"}},
    {"id": "deploy", "type": "pass", "depends_on": ["test"],
     "with": {"task": "deploy $s", "suites": "\${steps.test.output[*].suite}"}}
  ]
}
JSON
