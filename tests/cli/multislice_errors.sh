#!/usr/bin/env bash
# `epitem multislice`: bad input (empty model, atoms outside the box along z, sampling coarser
# than 0.5 Å, a grid larger than the memory) → exit 1 with one stderr line and no output; usage
# errors → exit 2; a small good run writes exit.tif + sidecar and its memory estimate is within
# ±20 % of the measured peak. Args: $1 = epitem binary, $2 = source dir.
set -u
source "$(dirname "$0")/lib/common.bash"
cli_setup "$1"

xyz() {  # xyz FILE NATOMS "LINES" [cz]
  printf '%s\nLattice="10 0 0 0 10 0 0 0 %s" Properties=species:S:1:pos:R:3 pbc="T T F"\n%b' \
    "$2" "${4:-10}" "$3" > "$1"
}
xyz "$TMP/empty.xyz" 0 ""
xyz "$TMP/outside.xyz" 2 "Fe 1 1 1\nO 2 2 12.5\n"
xyz "$TMP/ok.xyz" 2 "Fe 1 1 1\nO 2 2 5\n"

# expect CODE DESCRIPTION -- multislice-arguments...: expect_error (lib/common.bash).
expect() { expect_error "$1" "$2" "" -- multislice "${@:4}"; }

expect 1 "empty model" -- "$TMP/empty.xyz" --gpts 64 --out exit.tif
expect 1 "atom outside the box along z" -- "$TMP/outside.xyz" --gpts 64 --out exit.tif
expect 1 "sampling coarser than 0.5 A (--gpts)" -- "$TMP/ok.xyz" --gpts 16 --out exit.tif
expect 1 "sampling coarser than 0.5 A (--sampling)" -- "$TMP/ok.xyz" --sampling 0.6A --out exit.tif
expect 1 "grid larger than the memory" -- "$TMP/ok.xyz" --gpts 32768 --out exit.tif
expect 1 "thickness series beyond the model" -- "$TMP/ok.xyz" --gpts 64 --thickness-series 50 --out exit.tif
expect 1 "nonexistent model" -- "$TMP/none.xyz" --gpts 64 --out exit.tif
expect 1 "bad energy" -- "$TMP/ok.xyz" --gpts 64 --energy 5kV --out exit.tif
expect 1 "output is the input" -- "$TMP/ok.xyz" --gpts 64 --out "$TMP/ok.xyz"
expect 2 "no model" -- --gpts 64 --out exit.tif
expect 2 "no output" -- "$TMP/ok.xyz" --gpts 64
expect 2 "no grid" -- "$TMP/ok.xyz" --out exit.tif
expect 2 "both --gpts and --sampling" -- "$TMP/ok.xyz" --gpts 64 --sampling 0.1A --out exit.tif
expect 2 "--repeat without --zone" -- "$TMP/ok.xyz" --gpts 64 --repeat 2,2,2 --out exit.tif

# Dry run: prints the estimate, writes nothing.
mkdir "$TMP/dry"
if (cd "$TMP/dry" && "$EPITEM" multislice "$TMP/ok.xyz" --gpts 64 --out exit.tif --dry-run | grep -q "dry run: would need") \
   && [ -z "$(ls -A "$TMP/dry")" ]; then
  echo "ok   [dry run]"
else
  echo "FAIL [dry run]"
  failures=$((failures + 1))
fi

# A real run: outputs exist; memory estimate within ±20 % of the peak RSS (1024² grid, where
# the arrays dominate the process).
if "$EPITEM" multislice Fe3O4 --zone 1,1,0 --x -1,1,0 --repeat 1,1,2 --gpts 1024 --slice 1.484217A \
     --thickness-series 5A --diffraction "$TMP/dp.tif" --out "$TMP/exit.tif" -q \
   && [ -s "$TMP/exit.tif" ] && [ -s "$TMP/exit.json" ] && [ -s "$TMP/dp.tif" ]; then
  ratio=$(python3 -c "import json,sys; r=json.load(open(sys.argv[1]))['results']; \
print(r['report']['peak_rss_bytes']/r['cli_memory_estimate_bytes'])" "$TMP/exit.json" 2>/dev/null)
  if [ -z "$ratio" ]; then
    echo "ok   [run] (python3 missing: memory ratio not checked)"
  elif [ "${EPITEM_SANITIZED:-0}" = 1 ]; then
    echo "ok   [run] (sanitizer build: memory ratio not checked)"
  elif python3 -c "import sys; sys.exit(0 if 0.8 <= float(sys.argv[1]) <= 1.2 else 1)" "$ratio"; then
    echo "ok   [run] peak/estimate = $ratio"
  else
    echo "FAIL [run] peak/estimate = $ratio outside 0.8-1.2"
    failures=$((failures + 1))
  fi
else
  echo "FAIL [run]: $("$EPITEM" multislice Fe3O4 --zone 1,1,0 --x -1,1,0 --gpts 1024 --out "$TMP/x.tif" 2>&1 | tail -1)"
  failures=$((failures + 1))
fi

echo "$failures failure(s)"
[ "$failures" -eq 0 ]
