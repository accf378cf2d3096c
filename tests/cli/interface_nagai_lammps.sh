#!/usr/bin/env bash
# Issue 14 on the command line: --tilt nagai and --ledges auto report the Nagai tilt next to the
# applied one (stdout and sidecar); the bulk contact-cutoff table and the void-vs-cutoff table
# are reported; --lammps writes a data file that convert reads back; a dump needs its types.
# Args: $1 = epitem binary, $2 = source dir.
set -u
source "$(dirname "$0")/lib/common.bash"
cli_setup "$1"
failures=0
check() { if eval "$2"; then echo "ok   [$1]"; else echo "FAIL [$1]"; failures=$((failures + 1)); fi; }
json() { python3 -c "import json,sys; d=json.load(open('$1')); print(eval(sys.argv[1]))" "$2"; }

cd "$TMP"
"$EPITEM" interface --preset nife-fe3o4 --tilt nagai --no-void-scan --out n.xyz >n.out 2>n.err
check "--tilt nagai runs" '[ -s n.xyz ]'
check "nagai line on stdout" 'grep -q "^# nagai tilt     1.636 deg" n.out'
check "sidecar: applied = nagai" \
  '[ "$(json n.json "abs(d[\"results\"][\"interface\"][\"nagai\"][\"applied_minus_nagai_deg\"]) < 1e-9")" = "True" ]'

"$EPITEM" interface --preset nife-fe3o4 --tilt 4.2deg --ledges auto --out a.xyz --lammps a.lmp >a.out 2>a.err
check "--ledges auto: nagai 4.20 deg" \
  '[ "$(json a.json "round(d[\"results\"][\"interface\"][\"nagai\"][\"nagai_tilt_deg\"], 2)")" = "4.2" ]'
check "cutoff table with sources" 'grep -q "O-Ni  1.869 .*shortest metal-O" a.out'
check "void vs cutoff in sidecar" '[ "$(json a.json "len(d[\"results\"][\"void_volume_vs_cutoff\"])")" = "4" ]'
check "LAMMPS data written" 'grep -q "type map: 1=Fe3O4:O 2=Fe3O4:Fe 3=NiFe:Fe 4=NiFe:Ni" a.lmp'

"$EPITEM" convert a.lmp back.xyz --quiet 2>c.err
check "convert data → xyz keeps the atom count" '[ "$(head -1 back.xyz)" = "$(head -1 a.xyz)" ]'

cat >d.lammpstrj <<'DUMP'
ITEM: TIMESTEP
0
ITEM: NUMBER OF ATOMS
2
ITEM: BOX BOUNDS pp pp ff
0 10
0 10
0 10
ITEM: ATOMS id type xs ys zs
2 4 0.5 0.5 0.5
1 1 0.1 0.2 0.3
DUMP
expect_error 2 "dump without types" "--lammps-types" -- convert "$TMP/d.lammpstrj" out.xyz
"$EPITEM" convert d.lammpstrj --lammps-types a.lmp dump.xyz --quiet 2>e.err
check "dump → xyz: O of Fe3O4 first (id order), Ni of NiFe second" \
  'sed -n 3p dump.xyz | grep -q "^O .* Fe3O4" && sed -n 4p dump.xyz | grep -q "^Ni .* NiFe"'
exit $((failures > 0))
