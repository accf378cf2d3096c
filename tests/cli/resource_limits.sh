#!/usr/bin/env bash
# Requests that would run for hours or exhaust memory (issue 16) are refused within seconds with
# one line naming the estimate and the fix; damaged headers never allocate what they declare.
# Args: $1 = epitem binary, $2 = source dir.
set -u
source "$(dirname "$0")/lib/common.bash"
cli_setup "$1"
SRC=$2

# refused DESCRIPTION PATTERN -- args...: exit 1 (or 2), one stderr line with PATTERN, no output
# file, and within LIMIT_S seconds (a hang is killed at 60 s and fails).
LIMIT_S=10
refused() {
  local what=$1 pattern=$2
  shift 3
  rm -rf "$TMP/run" && mkdir "$TMP/run"
  local t0 t1 rc
  t0=$(date +%s.%N)
  (cd "$TMP/run" && timeout 60 "$EPITEM" "$@" >"$TMP/stdout" 2>"$TMP/stderr")
  rc=$?
  t1=$(date +%s.%N)
  local secs
  secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
  if [ "$rc" -ne 1 ] && [ "$rc" -ne 2 ]; then
    echo "FAIL [$what]: exit $rc after $secs s: $(head -c 400 "$TMP/stderr")"
    failures=$((failures + 1))
  elif awk -v s="$secs" -v l="$LIMIT_S" 'BEGIN { exit !(s > l) }'; then
    echo "FAIL [$what]: took $secs s (limit $LIMIT_S s)"
    failures=$((failures + 1))
  elif [ "$(grep -vc '^warning:' "$TMP/stderr")" -ne 1 ] || ! grep -q -- "$pattern" "$TMP/stderr"; then
    echo "FAIL [$what]: expected one error line containing '$pattern', got:"
    cat "$TMP/stderr"
    failures=$((failures + 1))
  elif [ -n "$(ls -A "$TMP/run")" ]; then
    echo "FAIL [$what]: output created: $(ls -A "$TMP/run")"
    failures=$((failures + 1))
  else
    echo "ok   [$what] ($secs s): $(grep -v '^warning:' "$TMP/stderr")"
  fi
}

sed 's/3.5238/35238/' "$SRC/structures/Ni.cif" > "$TMP/hugecell.cif"
{
  sed -n '/^data_/,/^_space_group_IT_number/p' "$SRC/structures/Ni.cif" | sed 's/3.5238/30/'
  printf 'loop_\n_atom_site_label\n_atom_site_type_symbol\n_atom_site_fract_x\n_atom_site_fract_y\n_atom_site_fract_z\n'
  awk 'BEGIN { srand(3); for (i = 0; i < 3000; ++i) printf "Ni%d Ni %.5f %.5f %.5f\n", i, rand(), rand(), rand() }'
} > "$TMP/manysites.cif"
printf '1\nLattice="1e6 0 0 0 1e6 0 0 0 1e6" Properties=species:S:1:pos:R:3\nNi 0 0 0\n' > "$TMP/hugelat.xyz"
printf '2\nLattice="5 0 0 0 5 0 0 0 5" Properties=species:S:1:pos:R:3:foo:R:2147483640:bar:R:100\nFe 0 0 0 1\nFe 1 1 1 1\n' > "$TMP/props.xyz"
printf '1e300\nLattice="5 0 0 0 5 0 0 0 5"\nFe 0 0 0\n' > "$TMP/count.xyz"

refused "info: 35 238 Å cell" "raise --dmin" -- info "$TMP/hugecell.cif"
refused "reflections: 35 238 Å cell" "raise --dmin" -- reflections "$TMP/hugecell.cif"
refused "saed: 35 238 Å cell" "raise --dmin" -- saed "$TMP/hugecell.cif" --zone 0,0,1 -o s.csv
refused "info: 3000 sites in Fm-3m" "atoms per cell" -- info "$TMP/manysites.cif"
refused "reflections: 3000 sites in Fm-3m" "atoms per cell" -- reflections "$TMP/manysites.cif"
refused "saed: 3000 sites in Fm-3m" "atoms per cell" -- saed "$TMP/manysites.cif" --zone 0,0,1 -o s.csv
refused "interface: 3000-site substrate" "atoms per cell" -- interface --preset nife-fe3o4 --substrate "$TMP/manysites.cif" -o m.xyz
refused "info: extxyz Lattice 1e6 Å" "raise --dmin" -- info "$TMP/hugelat.xyz"
refused "info: extxyz Properties count past int" "Properties" -- info "$TMP/props.xyz"
refused "convert: extxyz atom count 1e300" "number of atoms" -- convert "$TMP/count.xyz" out.cif
refused "saed --gmax 1000" "gmax" -- saed Ni --zone 0,0,1 --gmax 1000 -o s.csv
refused "saed --holz 1000000" "holz" -- saed Ni --zone 0,0,1 --holz 1000000 -o s.csv
refused "interface --cutoff Ni-O=1e308A" "cutoff" -- interface --preset nife-fe3o4 --cutoff Ni-O=1e308A -o m.xyz
refused "interface --probe 1e9A" "probe" -- interface --preset nife-fe3o4 --probe 1e9A -o m.xyz
refused "convert --repeat 100000,100000,100000" "repeat" -- convert Ni m.xyz --repeat 100000,100000,100000
refused "convert --zone --repeat 100000,100000,100000" "repeat" -- convert Ni m.xyz --zone 0,0,1 --repeat 100000,100000,100000

# Damaged image headers: a 30 000 × 30 000 float TIFF with 16 bytes of pixels.
tiff_header() {  # width height: a float32 strip TIFF whose data are 16 bytes
  local w=$1 h=$2
  printf 'II*\0'; le32 8
  le16 10
  le16 256; le16 4; le32 1; le32 "$w"
  le16 257; le16 4; le32 1; le32 "$h"
  le16 258; le16 3; le32 1; le32 32
  le16 259; le16 3; le32 1; le32 1
  le16 262; le16 3; le32 1; le32 1
  le16 273; le16 4; le32 1; le32 134
  le16 277; le16 3; le32 1; le32 1
  le16 278; le16 4; le32 1; le32 "$h"
  le16 279; le16 4; le32 1; le32 $((w * h * 4 & 0xffffffff))
  le16 339; le16 3; le32 1; le32 3
  le32 0
  printf '\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0'
}
tiff_header 30000 30000 > "$TMP/big.tif"
tiff_header 2147483647 4 > "$TMP/huge.tif"
refused "info: TIFF 30000² with 16 data bytes" "big.tif" -- info "$TMP/big.tif"
refused "fft: TIFF 2³¹ × 4 with 16 data bytes" "huge.tif" -- fft "$TMP/huge.tif" -o peaks.csv

# --threads far beyond the cores is bounded (a warning), not a hang.
rm -rf "$TMP/run" && mkdir "$TMP/run"
t0=$(date +%s)
if (cd "$TMP/run" && timeout 60 "$EPITEM" phasemap "$SRC/tests/data/movie4.tif" --phase 'A=0.1,0' -o pm.csv --threads 1000 -q 2>"$TMP/stderr" >/dev/null) &&
   grep -q "more than 4 ×" "$TMP/stderr" && [ $(( $(date +%s) - t0 )) -le 30 ]; then
  echo "ok   [phasemap --threads 1000: bounded with a warning]"
else
  echo "FAIL [phasemap --threads 1000]: $(cat "$TMP/stderr")"
  failures=$((failures + 1))
fi

[ "$failures" -eq 0 ] || { echo "$failures failure(s)"; exit 1; }
echo "all resource-limit cases refused in time"
