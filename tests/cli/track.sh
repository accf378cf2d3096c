#!/usr/bin/env bash
# `epitem track` regressions: a single pattern is a valid input (no --fps needed); a known
# distortion is taken from --distortion RATIO,ANGLE_DEG or from a calibrate JSON sidecar and
# reported; bad --distortion values fail with one line naming the option; no message names an
# option that does not exist. Args: $1 = epitem binary, $2 = source dir.
set -eu
source "$(dirname "$0")/lib/common.bash"
cli_setup "$1"
fail() { echo "FAIL: $*"; exit 1; }
cd "$TMP"
"$EPITEM" saed Fe3O4 --zone 1,1,0 --out fe.csv --image one.tif --size 384 --pixel 0.004 --gmax 0.7 -q
P="--pixel-size 0.004/A --phase Fe3O4 --beam-stop none"

# 1. One frame, no frame rate: spots found, centre at the pattern origin, every track indexed.
"$EPITEM" track one.tif $P --out one.csv --detections one_det.csv > log1.txt 2> err1.txt || fail "single frame: $(cat err1.txt)"
n=$(awk -F, 'NR > 2' one.csv | wc -l)
[ "$n" -ge 20 ] || fail "single frame: only $n tracks"
awk -F, 'NR > 2 && $16 != "indexed" { bad++ } END { exit bad > 0 }' one.csv || fail "single frame: unindexed tracks"
tr -d ' \n' < one.json | grep -o '"centre_px":\[[^]]*\]' | grep -o '[-0-9.e+]*,[-0-9.e+]*' | \
  awk -F, '{ if (($1 - 192)^2 + ($2 - 192)^2 > 0.01) exit 1 }' || fail "single-frame centre: $(grep -A2 centre_px one.json)"
head -1 one_det.csv | grep -q 'gx_inv_A,gy_inv_A' || fail "detections CSV lost the gx_inv_A,gy_inv_A columns"

# 2. --distortion RATIO,ANGLE and the calibrate sidecar give the same reported geometry.
"$EPITEM" track one.tif $P --out d1.csv --distortion 1.01,30 -q || fail "--distortion 1.01,30 failed"
printf '{\n  "results": {\n    "distortion_ratio": 1.01,\n    "distortion_angle_deg": 30\n  }\n}\n' > cal.json
"$EPITEM" track one.tif $P --out d2.csv --distortion cal.json -q || fail "--distortion cal.json failed"
for j in d1.json d2.json; do
  tr -d ' \n' < $j | grep -q '"distortion_source":"given' || fail "$j: distortion source not 'given'"
  tr -d ' \n' < $j | grep -q '"distortion_ratio":1.01[0-9]*,' || fail "$j: distortion ratio not 1.01: $(grep distortion $j)"
  tr -d ' \n' < $j | grep -q '"distortion_corrected":true' || fail "$j: given distortion not applied"
done
# Undistorted spots corrected by a 1 % ellipse: |g| moves by up to ±0.5 %, still within 1 %.
awk -F, 'NR > 2 && $16 != "indexed" { bad++ } END { exit bad > 0 }' d1.csv || fail "distorted geometry lost the labels"

# 3. Bad values: one line, naming the option.
set +e
"$EPITEM" track one.tif $P --out bad.csv --distortion 0.9,30 2> e1.txt; rc1=$?
"$EPITEM" track one.tif $P --out bad.csv --distortion 1.01 2> e2.txt; rc2=$?
"$EPITEM" track one.tif $P --out bad.csv --distortion missing.json 2> e3.txt; rc3=$?
"$EPITEM" track one.tif $P --out bad.csv --distortion 1.01,30 --no-distortion-correction 2> e4.txt; rc4=$?
set -e
[ "$rc1" = 1 ] && grep -q "RATIO,ANGLE_DEG" e1.txt || fail "ratio < 1: exit $rc1, $(cat e1.txt)"
[ "$rc2" = 2 ] && grep -q -- "--distortion" e2.txt || fail "one number: exit $rc2, $(cat e2.txt)"
[ "$rc3" = 1 ] && grep -q "missing.json" e3.txt || fail "missing file: exit $rc3, $(cat e3.txt)"
[ "$rc4" = 2 ] && grep -q -- "--no-distortion-correction" e4.txt || fail "both: exit $rc4, $(cat e4.txt)"
[ ! -e bad.csv ] || fail "bad.csv written by a failed run"

# 4. --scale-range 0 trusts --pixel-size; an exact calibration stays within 0.3 %; out of range fails.
"$EPITEM" track one.tif $P --out s0.csv --scale-range 0 -q || fail "--scale-range 0 failed"
tr -d ' \n' < s0.json | grep -q '"scale_fitted":1,' || fail "--scale-range 0: $(grep scale_ s0.json)"
s1=$(tr -d ' \n' < one.json | grep -o '"scale_fitted":[-0-9.e+]*' | cut -d: -f2)
awk -v s="$s1" 'BEGIN { exit !(s > 0.997 && s < 1.003) }' || fail "exact calibration refitted to '$s1'"
set +e
"$EPITEM" track one.tif $P --out bad.csv --scale-range 0.7 2> e5.txt; rc5=$?
set -e
[ "$rc5" = 2 ] && [ "$(wc -l < e5.txt)" = 1 ] && grep -q -- "--scale-range" e5.txt || fail "--scale-range 0.7: exit $rc5, $(cat e5.txt)"
# A spot of a one-frame movie lives one frame interval when --fps gives it, else 0 s; no
# covariate is said as such in the header.
"$EPITEM" track one.tif $P --out f.csv --fps 10 -q || fail "--fps 10 on one frame failed"
awk -F, 'NR > 2 && $6 != 0.1 { bad++ } END { exit bad > 0 }' f.csv || fail "one frame at 10 fps: lifespans $(awk -F, 'NR > 2 { print $6 }' f.csv | sort -u)"
awk -F, 'NR > 2 && $6 != 0 { bad++ } END { exit bad > 0 }' one.csv || fail "one frame, no fps: lifespans not 0"
head -1 one.csv | grep -q "no covariate given" || fail "header: $(head -1 one.csv)"

# 5. Every option a message names exists (issue: a warning named --centre-method).
"$EPITEM" track --help > help.txt 2>&1 || true
for opt in $(cat err1.txt e1.txt e2.txt e3.txt e4.txt e5.txt | grep -o -- '--[a-z][a-z-]*' | sort -u); do
  grep -q -- "$opt" help.txt || fail "a message names $opt, which track does not have"
done
! grep -aq -- "--centre-method" "$EPITEM" || fail "the binary still mentions --centre-method"
echo "ok"
