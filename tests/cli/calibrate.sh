#!/usr/bin/env bash
# `epitem calibrate`: refusals are one line with exit 1 (input) or 2 (usage) and write nothing;
# on the shared real data (when present) the Au ring pattern and an SrTiO3 [110] ADF image
# calibrate, write distortion_ratio / distortion_angle_deg to stdout and the sidecar, and a
# wrong --reference is refused. Args: $1 = epitem binary, $2 = source dir.
set -u
source "$(dirname "$0")/lib/common.bash"
cli_setup "$1"
cd "$TMP"

# tiff8 FILE W H DATA: uncompressed 8-bit grey TIFF, one strip at offset 122 from DATA's bytes.
tiff8() {
  {
    printf 'II*\x00\x08\x00\x00\x00\x09\x00'
    printf '\x00\x01\x03\x00\x01\x00\x00\x00'; le16 "$2"; le16 0
    printf '\x01\x01\x03\x00\x01\x00\x00\x00'; le16 "$3"; le16 0
    printf '\x02\x01\x03\x00\x01\x00\x00\x00\x08\x00\x00\x00'
    printf '\x03\x01\x03\x00\x01\x00\x00\x00\x01\x00\x00\x00'
    printf '\x06\x01\x03\x00\x01\x00\x00\x00\x01\x00\x00\x00'
    printf '\x11\x01\x04\x00\x01\x00\x00\x00\x7a\x00\x00\x00'
    printf '\x15\x01\x03\x00\x01\x00\x00\x00\x01\x00\x00\x00'
    printf '\x16\x01\x03\x00\x01\x00\x00\x00'; le16 "$3"; le16 0
    printf '\x17\x01\x04\x00\x01\x00\x00\x00'; le32 $(($2 * $3))
    printf '\x00\x00\x00\x00'
    head -c $(($2 * $3)) "$4"
  } > "$1"
}
tiff8 zeros.tif 64 64 /dev/zero
tiff8 noise.tif 64 64 /dev/urandom
# A 256×256 mask excluding the top 10 rows (nonzero = excluded).
{ head -c 2560 /dev/zero | tr '\0' '\1'; head -c $((65536 - 2560)) /dev/zero; } > mask.bin
tiff8 "$TMP/mask.tif" 256 256 mask.bin
"$EPITEM" saed Au --zone 0,0,1 --out s.csv --image "$TMP/spots.tif" --size 256 --pixel 0.004 --gmax 1.2 -q \
  || { echo "FAIL: saed could not make the spot pattern"; exit 1; }

expect_error 2 "no reference" "reference" -- calibrate "$TMP/noise.tif"
expect_error 1 "no pixel size" "pixel-size" -- calibrate "$TMP/noise.tif" -r SrTiO3 -o out.csv
expect_error 1 "noise is no lattice" "lattice" -- calibrate "$TMP/noise.tif" -r SrTiO3 --pixel-size 0.1A -o out.csv
expect_error 1 "constant ring pattern" "constant" -- calibrate "$TMP/zeros.tif" -r Au --rings -o out.csv
expect_error 1 "unknown phase" "not a built-in" -- calibrate "$TMP/noise.tif" -r Unobtainium --pixel-size 0.1A
expect_error 1 "spots are not rings" "ring" -- calibrate "$TMP/spots.tif" -r Au --rings -o out.csv
expect_error 1 "bad --centre" "--centre" -- calibrate "$TMP/spots.tif" -r Au --rings --centre middle -o out.csv
expect_error 1 "mask of another size" "mask" -- calibrate "$TMP/spots.tif" -r Au --rings --mask "$TMP/zeros.tif" -o out.csv
expect_error 2 "prior range" "prior-range" -- calibrate "$TMP/noise.tif" -r SrTiO3 --pixel-size 0.1A --prior-range 80%

REAL="$2/../shared/data/realdata"
[ -d "$REAL" ] || REAL="$(dirname "$2")/shared/data/realdata"
if [ -f "$REAL/au_rings_pyxem_demos/au_xgrating_20cm.tif" ]; then
  AU="$REAL/au_rings_pyxem_demos/au_xgrating_20cm.tif"
  if "$EPITEM" calibrate "$AU" -r Au --rings -q -o au.csv > au.txt 2> au.err; then
    grep -q "distortion_ratio = 1.0[2-4]" au.txt || { echo "FAIL [Au rings]: no distortion: $(cat au.txt)"; failures=$((failures + 1)); }
    grep -q '"distortion_angle_deg"' au.json \
      || { echo "FAIL [Au rings]: sidecar lacks distortion_angle_deg"; failures=$((failures + 1)); }
    grep -q "reciprocal pixel: 0.0099\|reciprocal pixel: 0.0100\|reciprocal pixel: 0.0101" au.txt \
      || { echo "FAIL [Au rings]: calibration: $(grep reciprocal au.txt)"; failures=$((failures + 1)); }
    echo "ok   [Au rings]: $(grep -E 'centre|reciprocal' au.txt | tr '\n' ' ')"
  else
    echo "FAIL [Au rings]: $(cat au.err)"
    failures=$((failures + 1))
  fi
  "$EPITEM" calibrate "$AU" -r Au --rings --centre 127.4,128.2 --mask "$TMP/mask.tif" -q > au2.txt 2>&1 \
    && grep -q "given" au2.txt && grep -q "reciprocal pixel: 0.0" au2.txt \
    && echo "ok   [Au rings, --centre and --mask]" \
    || { echo "FAIL [Au rings, --centre and --mask]: $(cat au2.txt)"; failures=$((failures + 1)); }
  expect_error 1 "Au rings are not Si" "do not fit Si" -- calibrate "$AU" -r Si --rings -o out.csv
  expect_error 1 "a ring pattern without --rings: told to add it" "looks like a ring diffraction pattern.*--rings" \
    -- calibrate "$AU" -r Au -o out.csv
fi
if [ -f "$REAL/sto110_adf_abf_atomap/sto110_adf.tif" ]; then
  STO="$REAL/sto110_adf_abf_atomap/sto110_adf.tif"
  if "$EPITEM" calibrate "$STO" -r SrTiO3 -q > sto.txt 2> sto.err && grep -q "zone \[110\]" sto.txt; then
    echo "ok   [STO 110 ADF]: $(grep 'pixel size' sto.txt)"
  else
    echo "FAIL [STO 110 ADF]: $(cat sto.txt sto.err)"
    failures=$((failures + 1))
  fi
  expect_error 1 "STO is not Au" "Au" -- calibrate "$STO" -r Au -o out.csv
fi
[ "$failures" -eq 0 ] || { echo "$failures failure(s)"; exit 1; }
echo "all calibrate CLI checks passed"
