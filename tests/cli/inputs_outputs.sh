#!/usr/bin/env bash
# No input is ever overwritten, derived outputs included (sidecar OUT.json, --png, --image,
# --diffraction), compared as files (hard and symbolic links too), and refused before any work;
# SIGINT during a write leaves no partial or temporary file; two processes writing one output
# leave one complete file (issue 16). Args: $1 = epitem binary, $2 = source dir.
set -u
source "$(dirname "$0")/lib/common.bash"
cli_setup "$1"
SRC=$2
cd "$TMP"

# keeps DESCRIPTION INPUT -- args...: exit 1, one stderr line about the input, INPUT unchanged.
keeps() {
  local what=$1 input=$2
  shift 3
  local before
  before=$(md5sum <"$input")
  timeout 60 "$EPITEM" "$@" >"$TMP/stdout" 2>"$TMP/stderr"
  local rc=$?
  if [ "$rc" -ne 1 ]; then
    echo "FAIL [$what]: exit $rc: $(head -c 300 "$TMP/stderr")"
    failures=$((failures + 1))
  elif [ "$(md5sum <"$input")" != "$before" ]; then
    echo "FAIL [$what]: $input was changed"
    failures=$((failures + 1))
  elif [ "$(wc -l <"$TMP/stderr")" -ne 1 ] || ! grep -q "input" "$TMP/stderr"; then
    echo "FAIL [$what]: expected one line naming the input, got: $(cat "$TMP/stderr")"
    failures=$((failures + 1))
  else
    echo "ok   [$what]: $(cat "$TMP/stderr")"
  fi
}

cp "$SRC/structures/Ni.cif" ni.json          # a CIF named like the sidecar of ni.csv
cp "$SRC/structures/Ni.cif" ni.cif
ln ni.cif hard.csv                             # a hard link: another name, the same file
ln -s ni.cif soft.csv
keeps "info: sidecar OUT.json is the input" ni.json -- info ni.json -o ni.csv
keeps "info: output is a hard link to the input" ni.cif -- info ni.cif -o hard.csv
keeps "info: output is a symbolic link to the input" ni.cif -- info ni.cif -o soft.csv
keeps "info: output is ./input" ni.cif -- info ni.cif -o ./ni.cif
keeps "convert: sidecar is the input" ni.json -- convert ni.json ni.xyz
keeps "reflections: sidecar is the input" ni.json -- reflections ni.json -o ni.csv
keeps "saed: sidecar is the input" ni.json -- saed ni.json --zone 0,0,1 -o ni.csv
keeps "saed: --png is the input" ni.cif -- saed ni.cif --zone 0,0,1 -o s.csv --png ni.cif
keeps "saed: --image is the input" ni.cif -- saed ni.cif --zone 0,0,1 -o s.csv --image ni.cif
rm -f s.csv s.json s.tif s.png
"$EPITEM" convert Ni m.xyz --zone 0,0,1 --repeat 2,2,2 -q >/dev/null || { echo "FAIL: convert"; exit 1; }
cp m.xyz mm.xyz
keeps "multislice: --diffraction is the model" m.xyz -- multislice --model m.xyz --gpts 32 -o w.tif --diffraction m.xyz -q
ln -s m.xyz w2.tif
keeps "multislice: output is a link to the model" m.xyz -- multislice --model m.xyz --gpts 32 -o w2.tif -q
cp m.xyz m.json
keeps "multislice: sidecar of OUT is the model" m.json -- multislice --model m.json --gpts 32 -o m.tif -q
"$EPITEM" multislice --model mm.xyz --gpts 32 -o wave.tif -q >/dev/null 2>&1 || { echo "FAIL: multislice"; exit 1; }
keeps "image: --png is the exit wave" wave.tif -- image wave.tif -o img.tif --png wave.tif -q
keeps "image: sidecar of OUT is the exit wave's sidecar" wave.json -- image wave.tif -o wave.tif -q
[ -z "$(ls -A | grep -E '^\..*\.tmp')" ] || { echo "FAIL: temporary files left: $(ls -A)"; failures=$((failures + 1)); }

# SIGINT at any moment of a write: afterwards either no model.xyz or a complete one, and never a
# temporary file. The model is ~30 MB so the signal often lands while it is being written.
# Job control on: a non-interactive shell starts background jobs with SIGINT ignored.
set -m
for delay in 0.05 0.2 0.4 0.7 1.0; do
  rm -f big.xyz big.json
  "$EPITEM" convert Ni big.xyz --repeat 60,60,60 -q >/dev/null 2>&1 &
  pid=$!
  sleep "$delay"
  kill -INT "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  leftover=$(ls -A | grep -E '^\.big\.(xyz|json)\.tmp' || true)
  if [ -n "$leftover" ]; then
    echo "FAIL [SIGINT after $delay s]: temporary file left: $leftover"
    failures=$((failures + 1))
  elif [ -f big.xyz ] && [ "$(head -1 big.xyz)" -ne $(( $(wc -l <big.xyz) - 2 )) ]; then
    echo "FAIL [SIGINT after $delay s]: big.xyz is incomplete"
    failures=$((failures + 1))
  else
    echo "ok   [SIGINT after $delay s]: $( [ -f big.xyz ] && echo 'complete file' || echo 'no file' ), no temporary file"
  fi
done
set +m

# Two writers of one output: one complete file, no temporary file.
rm -f two.xyz
"$EPITEM" convert Ni two.xyz --repeat 30,30,30 -q >/dev/null 2>&1 &
p1=$!
"$EPITEM" convert Ni two.xyz --repeat 31,31,31 -q >/dev/null 2>&1 &
p2=$!
wait "$p1"; r1=$?
wait "$p2"; r2=$?
n=$(head -1 two.xyz)
if [ "$r1" -ne 0 ] || [ "$r2" -ne 0 ]; then
  echo "FAIL [two writers]: exits $r1, $r2"
  failures=$((failures + 1))
elif [ "$n" -ne $(( $(wc -l <two.xyz) - 2 )) ] || { [ "$n" -ne 108000 ] && [ "$n" -ne 119164 ]; }; then
  echo "FAIL [two writers]: two.xyz is not one complete model ($n atoms declared, $(wc -l <two.xyz) lines)"
  failures=$((failures + 1))
elif [ -n "$(ls -A | grep -E '^\.two\..*\.tmp' || true)" ]; then
  echo "FAIL [two writers]: temporary file left"
  failures=$((failures + 1))
else
  echo "ok   [two writers]: one complete file ($n atoms)"
fi

[ "$failures" -eq 0 ] || { echo "$failures failure(s)"; exit 1; }
echo "no input overwritten, no partial file"
