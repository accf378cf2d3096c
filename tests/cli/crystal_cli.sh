#!/usr/bin/env bash
# `epitem info` and `epitem convert` on the bundled Fe3O4: the d-spacing table matches
# docs/formulas.md §7 with the Fd-3m absences, and --zone 1,1,0 writes a 112-atom a√2 × a × a√2 model
# with its JSON sidecar. Args: $1 = epitem binary, $2 = source dir.
set -eu
source "$(dirname "$0")/lib/common.bash"
cli_setup "$1"
fail() { echo "FAIL: $*"; exit 1; }

"$EPITEM" info Fe3O4 --dmin 1.2A --all --out "$TMP/planes.csv" -q
[ -f "$TMP/planes.json" ] || fail "no sidecar planes.json"
row() { grep "^$1," "$TMP/planes.csv" || fail "no row $1"; }
[ "$(row 1,1,1)" = "1,1,1,4.84743,8,1" ] || fail "111: $(row 1,1,1)"
[ "$(row 2,2,0)" = "2,2,0,2.96843,12,1" ] || fail "220: $(row 2,2,0)"
[ "$(row 3,1,1)" = "3,1,1,2.53149,24,1" ] || fail "311: $(row 3,1,1)"
[ "$(row 4,4,4)" = "4,4,4,1.21186,8,1" ] || fail "444: $(row 4,4,4)"
[ "$(row 2,0,0 | cut -d, -f6)" = 0 ] || fail "200 should be absent"
[ "$(row 4,2,0 | cut -d, -f6)" = 0 ] || fail "420 should be absent"
[ "$(row 2,2,2 | cut -d, -f6)" = 1 ] || fail "222 is allowed by Fd-3m"
[ "$(row 6,2,2 | cut -d, -f6)" = 1 ] || fail "622 is allowed by Fd-3m"
# Every family's "allowed" flag equals the ITC A reflection conditions of Fd-3m (No. 227),
# evaluated here independently: h,k,l all odd or all even (F); 0kl: k+l = 4n; h00: h = 4n.
# (442 and 622 are allowed by the space group: their weakness is a special-position effect.)
awk -F, 'NR > 1 {
  h = ($1 < 0 ? -$1 : $1); k = ($2 < 0 ? -$2 : $2); l = ($3 < 0 ? -$3 : $3)
  ok = (h % 2 == k % 2 && k % 2 == l % 2)
  if (h == 0) ok = ok && ((k + l) % 4 == 0)
  if (k == 0) ok = ok && ((h + l) % 4 == 0)
  if (l == 0) ok = ok && ((h + k) % 4 == 0)
  if (ok != $6) { print "hkl " $1 $2 $3 " allowed=" $6 " but ITC says " ok; bad = 1 }
} END { exit bad }' "$TMP/planes.csv" || fail "absences differ from ITC A"
n=$("$EPITEM" info Fe3O4 --dmin 1.2A -q | grep -c '^[0-9-]')
[ "$n" -eq 16 ] || fail "expected 16 allowed families down to 1.2 Å, got $n"

"$EPITEM" convert Fe3O4 "$TMP/m.xyz" --zone 1,1,0 -q
[ -f "$TMP/m.json" ] || fail "no sidecar m.json"
[ "$(head -1 "$TMP/m.xyz")" = 112 ] || fail "atoms: $(head -1 "$TMP/m.xyz")"
grep -q 'Lattice="11.87373' "$TMP/m.xyz" || fail "box x should be a√2 = 11.8737 Å"
"$EPITEM" convert "$TMP/m.xyz" "$TMP/m.cif" -q
"$EPITEM" info "$TMP/m.cif" -q | grep -q "Fe3O4, Z = 16" || fail "model CIF formula"
echo "ok"
