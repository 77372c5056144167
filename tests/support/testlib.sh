# testlib.sh: what the shell tests share. Source it after setting
# `name` (the test's name, for messages) and `tmp` (its scratch dir,
# removed on exit). Processes it starts go in `pids` (killed on exit);
# `on_exit` (a function, optional) runs first.
pids=()
# fail MSG: says what failed, shows the tail of every log in $tmp, exits 1.
fail() {
  echo "$name: FAIL: $*" >&2
  for f in "$tmp"/*.log; do
    [ -f "$f" ] || continue
    echo "---- $f (tail)" >&2
    tail -n 30 "$f" >&2
  done
  exit 1
}
# first KEY JSON: the first string value of KEY in JSON (for weft's
# answers, the outermost object's); nothing when there is none.
first() {
  if [[ $2 =~ \"$1\":\"([^\"]*)\" ]]; then printf '%s' "${BASH_REMATCH[1]}"; fi
}
testlib_cleanup() {
  if declare -F on_exit >/dev/null; then on_exit || true; fi
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap testlib_cleanup EXIT
