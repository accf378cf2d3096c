#!/usr/bin/env bash
# Bad input to `epitem info` / `epitem convert`: non-zero exit (1 input, 2 usage), exactly one
# line on stderr, no output file (nor sidecar) created, and an input is never overwritten.
# Args: $1 = epitem binary, $2 = source dir.
set -u
source "$(dirname "$0")/lib/common.bash"
cli_setup "$1"
SRC=$2

CELL='_cell_length_a 4
_cell_length_b 4
_cell_length_c 4
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma 90'
ATOMS='loop_
_atom_site_label
_atom_site_type_symbol
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z'
printf "data_x\n%s\n_space_group_name_H-M_alt 'P 1\n%s\nFe1 Fe 0 0 0\n" "$CELL" "$ATOMS" > "$TMP/malformed.cif"
printf "data_x\n%s\nFe1 Fe 0 0 0\n" "$ATOMS" > "$TMP/nocell.cif"
printf "data_x\n%s\n%s\nQ1 Qz 0 0 0\n" "$CELL" "$ATOMS" > "$TMP/element.cif"

# expect CODE DESCRIPTION -- command...: expect_error (lib/common.bash) with any message.
expect() { expect_error "$1" "$2" "" "${@:3}"; }

expect 1 "info malformed CIF" -- info "$TMP/malformed.cif"
expect 1 "info missing cell" -- info "$TMP/nocell.cif"
expect 1 "info unknown element" -- info "$TMP/element.cif"
expect 1 "info nonexistent path" -- info "$TMP/none/nothere.cif"
expect 1 "info unknown built-in" -- info NoSuchPhase
expect 1 "info malformed CIF with --out" -- info "$TMP/malformed.cif" --out planes.csv
expect 1 "info bad dmin" -- info Fe3O4 --dmin 0.01A --out planes.csv
expect 2 "info no structure" -- info
expect 2 "info unknown option" -- info Fe3O4 --bogus
expect 1 "convert malformed CIF" -- convert "$TMP/malformed.cif" out.xyz
expect 1 "convert missing cell" -- convert "$TMP/nocell.cif" out.xyz --zone 0,0,1
expect 1 "convert unknown element" -- convert "$TMP/element.cif" out.cif
expect 1 "convert nonexistent path" -- convert "$TMP/nothere.cif" out.xyz
expect 1 "convert zone 000" -- convert Fe3O4 out.xyz --zone 0,0,0
expect 1 "convert x not perpendicular" -- convert Fe3O4 out.xyz --zone 1,1,0 --x 1,0,0
expect 1 "convert repeat 0" -- convert Fe3O4 out.xyz --zone 1,1,0 --repeat 0,1,1
expect 1 "convert partial occupancy to POSCAR" -- convert NiFe out.vasp --zone 0,0,1
expect 1 "convert unknown format" -- convert Fe3O4 out.pdb
expect 2 "convert missing output" -- convert Fe3O4
expect 2 "convert --x without --zone" -- convert Fe3O4 out.xyz --x 1,0,0

# The input is never overwritten, even under another spelling of its path.
"$EPITEM" convert Fe3O4 "$TMP/model.xyz" --zone 0,0,1 -q || { echo "FAIL: setup convert"; exit 1; }
before=$(md5sum <"$TMP/model.xyz")
mkdir "$TMP/run2"
(cd "$TMP/run2" && "$EPITEM" convert ../model.xyz "$TMP/./model.xyz" 2>"$TMP/stderr")
rc=$?
after=$(md5sum <"$TMP/model.xyz")
if [ "$rc" -ne 1 ] || [ "$before" != "$after" ]; then
  echo "FAIL [input overwrite]: exit $rc, changed: $([ "$before" != "$after" ] && echo yes || echo no)"
  failures=$((failures + 1))
else
  echo "ok   [input overwrite]: $(cat "$TMP/stderr")"
fi
"$EPITEM" info "$TMP/model.xyz" -q --out "$TMP/model.xyz" 2>"$TMP/stderr"
rc=$?
after=$(md5sum <"$TMP/model.xyz")
if [ "$rc" -ne 1 ] || [ "$before" != "$after" ]; then
  echo "FAIL [info input overwrite]: exit $rc"
  failures=$((failures + 1))
else
  echo "ok   [info input overwrite]: $(cat "$TMP/stderr")"
fi
[ -d "$SRC/structures" ] || { echo "FAIL: $SRC/structures missing"; failures=$((failures + 1)); }

echo "$failures failure(s)"
[ "$failures" -eq 0 ]
