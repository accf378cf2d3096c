#!/usr/bin/env bash
# epitem match: bad input gives one-line errors naming the option and the fix (exit 1 for bad
# values, 2 for usage), and writes nothing. $1 = epitem binary, $2 = source dir.
set -u
source "$(dirname "$0")/lib/common.bash"
cli_setup "$1"
SRC=$(realpath "$2")

"$EPITEM" convert Fe3O4 "$TMP/f110.xyz" --zone 1,1,0 --repeat 1,1,2 >/dev/null \
  || { echo "FAIL: convert"; exit 1; }
"$EPITEM" hrtem "$TMP/f110.xyz" --sampling 0.15A --defocus 40nm --pixel 0.2A --out "$TMP/exp.tif" --quiet \
  || { echo "FAIL: hrtem experiment"; exit 1; }
M="$TMP/f110.xyz"
expect_error 1 "experiment without pixel size" "--pixel-size" -- match "$SRC/tests/data/nocal.tif" "$M" \
  --sampling 0.15A --defocus 30:50nm:5nm --out m.csv
expect_error 2 "defocus range with no points" "no points" -- match "$TMP/exp.tif" "$M" --sampling 0.15A \
  --defocus 50:30nm:5nm --out m.csv
expect_error 2 "defocus range with a zero step" "no points" -- match "$TMP/exp.tif" "$M" --sampling 0.15A \
  --defocus 30:50nm:0nm --out m.csv
expect_error 2 "defocus range without a step" "give a step" -- match "$TMP/exp.tif" "$M" --sampling 0.15A \
  --defocus 30:50nm --out m.csv
expect_error 1 "thickness range without a slice boundary" "has no slice boundary" -- match "$TMP/exp.tif" "$M" \
  --sampling 0.15A --defocus 30:50nm:5nm --thickness 500:600A --out m.csv
expect_error 2 "thickness range with no points" "no points" -- match "$TMP/exp.tif" "$M" --sampling 0.15A \
  --defocus 30:50nm:5nm --thickness 60:20A --out m.csv
expect_error 1 "ROI outside the image" "--roi" -- match "$TMP/exp.tif" "$M" --sampling 0.15A \
  --defocus 30:50nm:5nm --roi 10,10,5000,20 --out m.csv
expect_error 2 "two model sources" "exactly one" -- match "$TMP/exp.tif" "$M" --preset nife-fe3o4 --out m.csv
expect_error 2 "dose is not a match option" "not used by match" -- match "$TMP/exp.tif" "$M" --dose 100 --out m.csv
expect_error 1 "series without its sidecar" "sidecar" -- match "$TMP/exp.tif" --simulated "$SRC/tests/data/single.tif" \
  --out m.csv
exit $((failures > 0))
