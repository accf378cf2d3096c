#!/usr/bin/env bash
# Bad input to `epitem interface`: exit 1 (input) or 2 (usage), exactly one line on stderr
# naming the problem, and no output file (nor sidecar) created. Then one good run: extxyz with
# a phase column, JSON sidecar with OR, rotations, voids and seed, and a PNG.
# Args: $1 = epitem binary, $2 = source dir.
set -u
source "$(dirname "$0")/lib/common.bash"
cli_setup "$1"

# expect CODE DESCRIPTION PATTERN -- command...: expect_error from lib/common.bash.
expect() { expect_error "$@"; }

P=(--preset nife-fe3o4 --out m.xyz)
expect 1 "plane/direction not perpendicular" "not perpendicular" -- interface "${P[@]}" --direction 1,0,0:1,1,0
expect 1 "zero plane" "zero vector" -- interface "${P[@]}" --plane=0,0,0:-1,1,1
expect 1 "inconsistent OR" "inconsistent OR" -- interface "${P[@]}" --zone 1,1,0:1,0,0
expect 1 "zone not in the plane (edge-on)" "lie in the substrate plane" -- interface "${P[@]}" --zone 1,0,0
expect 1 "box below one unit cell" "smaller than one unit cell" -- interface "${P[@]}" --box 60x64x5A
expect 1 "particle larger than box" "larger than the box" -- interface "${P[@]}" --radius 5nm
expect 1 "cutoff deletes bulk" "inside bulk NiFe" -- interface "${P[@]}" --cutoff Ni-Ni=3A
expect 1 "unknown preset" "nife-fe3o4" -- interface --preset nope --out m.xyz
expect 1 "unknown substrate" "NoSuchPhase" -- interface --substrate NoSuchPhase --overlayer NiFe --out m.xyz
expect 1 "Wulff without facets" "needs facets" -- interface "${P[@]}" --shape wulff
expect 1 "tilt with a length unit" "--tilt" -- interface "${P[@]}" --tilt 4nm
expect 2 "no output" "--out" -- interface --preset nife-fe3o4
expect 2 "bad shape" "--shape" -- interface "${P[@]}" --shape cube
expect 2 "no structures" "--substrate" -- interface --out m.xyz

# A good run: files exist and carry what the issue asks for.
mkdir -p "$TMP/good"
if (cd "$TMP/good" && "$EPITEM" interface --preset nife-fe3o4 --out model.xyz --png model.png --quiet); then
  for f in model.xyz model.json model.png; do
    [ -s "$TMP/good/$f" ] || { echo "FAIL [good run]: $f missing"; failures=$((failures + 1)); }
  done
  grep -q 'phase:S:1' "$TMP/good/model.xyz" || { echo "FAIL [good run]: no phase column"; failures=$((failures + 1)); }
  grep -q 'pbc="T T F"' "$TMP/good/model.xyz" || { echo "FAIL [good run]: pbc not T T F"; failures=$((failures + 1)); }
  for key in orientation_relationship substrate_rotation overlayer_rotation tilt_deg mismatch cutoffs \
             removed_interface_overlaps total_volume_A3 seed projected_area_nm2; do
    grep -q "\"$key\"" "$TMP/good/model.json" || { echo "FAIL [good run]: sidecar lacks $key"; failures=$((failures + 1)); }
  done
  echo "ok   [good run]: model.xyz, model.json, model.png"
else
  echo "FAIL [good run]: exit $?"
  failures=$((failures + 1))
fi
(cd "$TMP/good" && "$EPITEM" interface --preset nife-fe3o4 --out model.cif --quiet && "$EPITEM" interface --preset nife-fe3o4 --out POSCAR --quiet) \
  && [ -s "$TMP/good/model.cif" ] && [ -s "$TMP/good/POSCAR" ] && echo "ok   [cif/poscar by extension]" \
  || { echo "FAIL [cif/poscar by extension]"; failures=$((failures + 1)); }

[ "$failures" -eq 0 ] || { echo "$failures failure(s)"; exit 1; }
