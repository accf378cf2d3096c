#!/usr/bin/env bash
# Bad input to `epitem saed` / `epitem reflections`: non-zero exit (1 input, 2 usage), exactly
# one line on stderr, no output file (CSV, TIFF, PNG, sidecar) created. Plus one good run that
# must write all four outputs, and the no-argument (preset) run.
# Args: $1 = epitem binary, $2 = source dir.
set -u
EPITEM=$(realpath "$1")
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
failures=0

# Unterminated quote in the space-group name: a syntax error gemmi reports.
printf "data_x\n_cell_length_a 4\n_cell_length_b 4\n_cell_length_c 4\n_cell_angle_alpha 90\n_cell_angle_beta 90\n_cell_angle_gamma 90\n_space_group_name_H-M_alt 'P 1\nloop_\n_atom_site_label\n_atom_site_type_symbol\n_atom_site_fract_x\n_atom_site_fract_y\n_atom_site_fract_z\nFe1 Fe 0 0 0\n" > "$TMP/malformed.cif"

# expect CODE DESCRIPTION -- command...: runs in an empty $TMP/run, checks the exit code, one
# stderr line, and that the run folder is still empty afterwards.
expect() {
  local code=$1 what=$2
  shift 3
  rm -rf "$TMP/run" && mkdir "$TMP/run"
  (cd "$TMP/run" && "$EPITEM" "$@" >"$TMP/stdout" 2>"$TMP/stderr")
  local rc=$?
  local lines
  lines=$(wc -l <"$TMP/stderr")
  if [ "$rc" -ne "$code" ]; then
    echo "FAIL [$what]: exit $rc, expected $code: $(cat "$TMP/stderr")"
    failures=$((failures + 1))
  elif [ "$lines" -ne 1 ]; then
    echo "FAIL [$what]: expected one stderr line, got $lines:"
    cat "$TMP/stderr"
    failures=$((failures + 1))
  elif [ -n "$(ls -A "$TMP/run")" ]; then
    echo "FAIL [$what]: output created: $(ls -A "$TMP/run")"
    failures=$((failures + 1))
  else
    echo "ok   [$what]: $(cat "$TMP/stderr")"
  fi
}

OUTS=(--out spots.csv --image p.tif --png p.png)
expect 1 "saed zone 0,0,0" -- saed Fe3O4 --zone 0,0,0 "${OUTS[@]}"
expect 1 "saed negative thickness" -- saed Fe3O4 --zone 1,1,0 --thickness -5nm "${OUTS[@]}"
expect 1 "saed nonexistent structure" -- saed "$TMP/none/nothere.cif" --zone 1,1,0 "${OUTS[@]}"
expect 1 "saed malformed CIF" -- saed "$TMP/malformed.cif" --zone 0,0,1 "${OUTS[@]}"
expect 1 "saed second phase missing" -- saed --phase NiFe --zone 1,1,0 --phase "$TMP/nothere.cif" --zone 1,1,0 "${OUTS[@]}"
expect 1 "saed thickness in wrong unit" -- saed Fe3O4 --zone 1,1,0 --thickness 20mrad "${OUTS[@]}"
expect 1 "saed x parallel to zone" -- saed Fe3O4 --zone 1,1,0 --x 2,2,0 "${OUTS[@]}"
expect 2 "saed no --out" -- saed Fe3O4 --zone 1,1,0
expect 2 "saed zones do not match phases" -- saed --phase NiFe --phase Fe3O4 --zone 1,1,0 "${OUTS[@]}"
expect 2 "saed unknown preset" -- saed --preset nosuch
expect 2 "saed bad tilt list" -- saed Fe3O4 --zone 1,1,0 --tilt 1,2,3 "${OUTS[@]}"
expect 1 "reflections zone 0,0,0" -- reflections Fe3O4 --zone 0,0,0 --out r.csv
expect 1 "reflections nonexistent structure" -- reflections "$TMP/nothere.cif" --out r.csv
expect 1 "reflections malformed CIF" -- reflections "$TMP/malformed.cif" --out r.csv
expect 1 "reflections negative dmin" -- reflections Fe3O4 --dmin -1A --out r.csv

# A good run writes the CSV, TIFF, PNG and JSON sidecar, and the CSV has the promised header.
rm -rf "$TMP/run" && mkdir "$TMP/run"
if (cd "$TMP/run" && "$EPITEM" saed Si --zone 1,1,0 --quiet "${OUTS[@]}" 2>"$TMP/stderr"); then
  for f in spots.csv p.tif p.png spots.json; do
    [ -s "$TMP/run/$f" ] || { echo "FAIL [good run]: $f missing"; failures=$((failures + 1)); }
  done
  head -1 "$TMP/run/spots.csv" | grep -q '^phase,h,k,l,gx,gy,g,d_A,excitation_error,intensity' ||
    { echo "FAIL [good run]: CSV header: $(head -1 "$TMP/run/spots.csv")"; failures=$((failures + 1)); }
else
  echo "FAIL [good run]: $(cat "$TMP/stderr")"
  failures=$((failures + 1))
fi
# No arguments: the nife-fe3o4 preset, writing nife_fe3o4_saed.{csv,tif,png,json} here.
rm -rf "$TMP/run" && mkdir "$TMP/run"
if (cd "$TMP/run" && "$EPITEM" saed >/dev/null 2>"$TMP/stderr"); then
  for f in nife_fe3o4_saed.csv nife_fe3o4_saed.tif nife_fe3o4_saed.png nife_fe3o4_saed.json; do
    [ -s "$TMP/run/$f" ] || { echo "FAIL [no arguments]: $f missing"; failures=$((failures + 1)); }
  done
else
  echo "FAIL [no arguments]: $(cat "$TMP/stderr")"
  failures=$((failures + 1))
fi
# --dry-run computes and writes nothing.
rm -rf "$TMP/run" && mkdir "$TMP/run"
(cd "$TMP/run" && "$EPITEM" saed --preset nife-fe3o4 --dry-run >/dev/null) || { echo "FAIL [dry run]"; failures=$((failures + 1)); }
[ -z "$(ls -A "$TMP/run")" ] || { echo "FAIL [dry run]: wrote $(ls -A "$TMP/run")"; failures=$((failures + 1)); }

exit $((failures > 0))
