#!/usr/bin/env bash
# `epitem compare` on pages of tests/data/movie4.tif (crossed lattice fringes drifting +1 px per
# frame along x, a fringed particle moving over them; 0.5 Å/px): --page/--page-2 pick the frames,
# the shift is the small one (not a lattice vector away) and is reported ambiguous; bad pages
# exit 1 with one stderr line and no output. Args: $1 = epitem binary, $2 = source dir.
set -u
source "$(dirname "$0")/lib/common.bash"
cli_setup "$1"
SRC=$(realpath "$2")
DATA=$SRC/tests/data

expect_error 1 "compare page beyond the file" "does not exist" -- compare "$DATA/movie4.tif" "$DATA/movie4.tif" --page 0 --page-2 9 --out c.csv
expect_error 1 "compare negative page" "does not exist" -- compare "$DATA/movie4.tif" "$DATA/movie4.tif" --page -1 --out c.csv
expect_error 2 "compare page not a number" "" -- compare "$DATA/movie4.tif" "$DATA/movie4.tif" --page x --out c.csv

# Consecutive frames: lattice shift (1, 0) px; the particle pulls the whole-image shift by a few
# tenths (0.27, 0.26 px measured), a lattice period (8 px) would be far outside ±0.5 px.
for pages in "0 1" "1 2" "0 2"; do
  set -- $pages
  want=$(( $2 - $1 ))
  "$EPITEM" compare "$DATA/movie4.tif" "$DATA/movie4.tif" --page "$1" --page-2 "$2" --out "$TMP/c.csv" -q \
    >"$TMP/stdout" 2>"$TMP/stderr" || { echo "FAIL [compare pages $1, $2]: $(cat "$TMP/stderr")"; failures=$((failures + 1)); continue; }
  python3 - "$TMP/c.json" "$want" <<'PY' && echo "ok   [compare pages $pages: shift ($want, 0) px ± 0.5, ambiguous]" \
    || { echo "FAIL [compare pages $pages]"; failures=$((failures + 1)); }
import json, sys
r = json.load(open(sys.argv[1]))["results"]
want = float(sys.argv[2])
dx, dy = r["shift_px"]
ok = abs(dx - want) < 0.5 and abs(dy) < 0.5 and r["shift_ambiguous"] is True and r["peak_ratio"] >= 0.8 \
     and len(r["alternative_shifts_px_ncc"]) >= 1
if not ok:
    print(r)
sys.exit(0 if ok else 1)
PY
  grep -q "shift ambiguous" "$TMP/stderr" || { echo "FAIL [compare pages $pages]: no ambiguity warning"; failures=$((failures + 1)); }
done

echo "$failures failure(s)"
[ "$failures" -eq 0 ]
