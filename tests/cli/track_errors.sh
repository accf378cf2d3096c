#!/usr/bin/env bash
# `epitem track` on bad input: frames of different sizes, all-zero frames, a
# covariate file shorter than the movie, no calibration, usage mistakes. Each must fail with a
# one-line message naming the problem (exit 1 for input, 2 for usage) and leave no output.
# Args: $1 = epitem binary, $2 = source dir.
set -eu
source "$(dirname "$0")/lib/common.bash"
cli_setup "$1"
fail() { echo "FAIL: $*"; exit 1; }
cd "$TMP"
# expect CODE PATTERN -- command...: exit code and a stderr line matching PATTERN, no tracks.csv.
expect() {
  local code=$1 pattern=$2
  shift 3
  set +e
  "$@" > out.txt 2> err.txt
  local rc=$?
  set -e
  [ "$rc" = "$code" ] || fail "exit $rc (want $code) for: $* : $(cat err.txt)"
  grep -q -- "$pattern" err.txt || fail "message '$(cat err.txt)' lacks '$pattern' for: $*"
  [ "$(wc -l < err.txt)" -le 2 ] || fail "message is not short: $(cat err.txt)"
  [ ! -e tracks.csv ] || fail "tracks.csv written although the run failed: $*"
}
# A 64x64 8-bit single-page TIFF without calibration (baseline, uncompressed, one strip at
# offset 122) whose pixels come from $2 (/dev/zero or /dev/urandom).
raw_tiff() {
  {
    printf 'II*\x00\x08\x00\x00\x00\x09\x00'
    printf '\x00\x01\x03\x00\x01\x00\x00\x00\x40\x00\x00\x00'   # ImageWidth 64
    printf '\x01\x01\x03\x00\x01\x00\x00\x00\x40\x00\x00\x00'   # ImageLength 64
    printf '\x02\x01\x03\x00\x01\x00\x00\x00\x08\x00\x00\x00'   # BitsPerSample 8
    printf '\x03\x01\x03\x00\x01\x00\x00\x00\x01\x00\x00\x00'   # Compression none
    printf '\x06\x01\x03\x00\x01\x00\x00\x00\x01\x00\x00\x00'   # BlackIsZero
    printf '\x11\x01\x04\x00\x01\x00\x00\x00\x7a\x00\x00\x00'   # StripOffsets 122
    printf '\x15\x01\x03\x00\x01\x00\x00\x00\x01\x00\x00\x00'   # SamplesPerPixel 1
    printf '\x16\x01\x03\x00\x01\x00\x00\x00\x40\x00\x00\x00'   # RowsPerStrip 64
    printf '\x17\x01\x04\x00\x01\x00\x00\x00\x00\x10\x00\x00'   # StripByteCounts 4096
    printf '\x00\x00\x00\x00'                                   # no next IFD
    head -c 4096 "$2"
  } > "$1"
}
saed() { "$EPITEM" saed Fe3O4 --zone 1,1,0 --out s.csv --image "$1" --size "$2" --pixel 0.004 --gmax 0.9 -q; }

mkdir sizes zeros good
saed sizes/frame_1.tif 256
saed sizes/frame_2.tif 128
mkdir uncalibrated
for i in 1 2 3; do raw_tiff zeros/frame_$i.tif /dev/zero; raw_tiff uncalibrated/frame_$i.tif /dev/urandom; done
for i in 1 2 3 4; do saed good/frame_$i.tif 256; done
printf 'frame,temperature_C\n0,400\n1,401\n2,402\n' > short_cov.csv
printf 'time_s\n0\n0.1\n' > short_times.csv
P="--pixel-size 0.004/A --beam-stop none --out tracks.csv"

expect 1 "same size" -- "$EPITEM" track sizes --fps 10 $P
# A single frame is a valid input (tests/cli/track.sh).
expect 1 "every frame is constant" -- "$EPITEM" track zeros --fps 10 $P
expect 1 "3 covariate rows for a movie of 4 frames" -- "$EPITEM" track good --fps 10 --covariate short_cov.csv $P
expect 1 "short_times.csv" -- "$EPITEM" track good --frame-times short_times.csv $P
expect 1 "no reciprocal calibration" -- "$EPITEM" track uncalibrated --fps 10 --beam-stop none --out tracks.csv
expect 1 "not found\|No such\|cannot" -- "$EPITEM" track missing_folder --fps 10 $P
expect 2 "missing --out" -- "$EPITEM" track good --fps 10 --pixel-size 0.004/A
expect 2 "exactly one of --fps or --frame-times" -- "$EPITEM" track good $P
expect 2 "--centre" -- "$EPITEM" track good --fps 10 --centre middle $P
expect 2 "--covariate or --ramp" -- "$EPITEM" track good --fps 10 --covariate short_cov.csv --ramp 400:1/s $P
# A covariate file longer than the movie is documented behaviour: extra rows ignored, warned.
printf 'frame,temperature_C\n0,400\n1,401\n2,402\n3,403\n4,404\n' > long_cov.csv
"$EPITEM" track good --fps 10 --covariate long_cov.csv $P -q 2> warn.txt || fail "long covariate file: $(cat warn.txt)"
grep -q "extra rows are ignored" warn.txt || fail "no warning for the long covariate file"
echo "ok"
