# Helpers shared by the tests/cli/*.sh scripts (sourced by them; not a test itself, hence not
# *.sh in tests/cli/). Source with: source "$(dirname "$0")/lib/common.bash"

# cli_setup EPITEM_PATH: sets EPITEM (absolute path), a scratch folder TMP removed on exit, and
# the failure counter failures=0.
cli_setup() {
  EPITEM=$(realpath "$1")
  TMP=$(mktemp -d)
  trap 'rm -rf "$TMP"' EXIT
  failures=0
}

# expect_error CODE DESCRIPTION PATTERN -- epitem-arguments...: runs epitem in an empty
# $TMP/run and checks the exit code, exactly one stderr line (containing PATTERN unless it is
# empty), and that the run folder is still empty afterwards (no output file nor sidecar).
# A failed check prints FAIL and counts in $failures; stderr stays in $TMP/stderr.
expect_error() {
  local code=$1 what=$2 pattern=$3
  shift 4
  rm -rf "$TMP/run" && mkdir "$TMP/run"
  (cd "$TMP/run" && "$EPITEM" "$@" >"$TMP/stdout" 2>"$TMP/stderr")
  local rc=$?
  local lines
  lines=$(wc -l <"$TMP/stderr")
  if [ "$rc" -ne "$code" ]; then
    echo "FAIL [$what]: exit $rc, expected $code: $(cat "$TMP/stderr")"
    failures=$((failures + 1))
  elif [ "$lines" -ne 1 ] || ! grep -q -- "$pattern" "$TMP/stderr"; then
    echo "FAIL [$what]: expected one stderr line${pattern:+ containing '$pattern'}, got $lines:"
    cat "$TMP/stderr"
    failures=$((failures + 1))
  elif [ -n "$(ls -A "$TMP/run")" ]; then
    echo "FAIL [$what]: output created: $(ls -A "$TMP/run")"
    failures=$((failures + 1))
  else
    echo "ok   [$what]: $(cat "$TMP/stderr")"
  fi
}

# Little-endian bytes for hand-made TIFF files, written straight to stdout (bash variables
# cannot hold NUL bytes): byte N, le16 N, le32 N.
byte() { printf "\\$(printf '%03o' $(($1 & 255)))"; }
le16() { byte "$1"; byte $(($1 >> 8)); }
le32() { le16 $(($1 & 65535)); le16 $(($1 >> 16)); }
