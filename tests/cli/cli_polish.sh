#!/usr/bin/env bash
# What a newcomer meets first (issue 16): `epitem -V`; sidecars with provenance (command line,
# version, git commit, library versions, start time, threads, seeds); one vocabulary (every
# option of every command in docs/vocabulary.md, deprecated names warn, |g| columns named
# g_inv_A, hrtem --gpts); `epitem convert` reads the POSCAR it writes; `cmake --install` gives a
# binary that finds its bundled structures. Args: $1 = epitem binary, $2 = source dir.
set -u
source "$(dirname "$0")/lib/common.bash"
cli_setup "$1"
SRC=$(realpath "${2:-$(dirname "$0")/../..}")
cd "$TMP" || exit 1
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
ok() { echo "ok   $*"; }

# --- epitem -V / --version: version, git commit, library versions ---
"$EPITEM" -V > v.txt || fail "-V exits non-zero"
grep -q '^epitem [0-9][0-9.]* (git [^)]*)$' v.txt || fail "-V first line: $(head -1 v.txt)"
for lib in fftw libtiff gemmi opencv hdf5; do
  grep -q "^  $lib [0-9]" v.txt || fail "-V lacks the $lib version: $(tr '\n' ' ' < v.txt)"
done
cmp -s v.txt <("$EPITEM" --version) || fail "--version differs from -V"
ok "-V: $(tr '\n' ' ' < v.txt)"

# --- sidecar provenance ---
"$EPITEM" saed Si --zone 1,1,0 --out 'si spots.csv' --gmax 1 -q || fail "saed run"
python3 - "si spots.json" "$EPITEM" <<'PY' || failures=$((failures + 1))
import json, re, sys
p = json.load(open(sys.argv[1]))["provenance"]
assert p["argv"] == [sys.argv[2], "saed", "Si", "--zone", "1,1,0", "--out", "si spots.csv", "--gmax", "1", "-q"], p["argv"]
assert p["command_line"].endswith("saed Si --zone 1,1,0 --out 'si spots.csv' --gmax 1 -q"), p["command_line"]
assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", p["start_time_utc"]), p["start_time_utc"]
assert p["git_commit"] and p["epitem_version"], p
assert set(["fftw", "libtiff", "gemmi", "opencv", "hdf5"]) <= set(p["libraries"]), p["libraries"]
assert p["host_threads"] >= 1 and p["threads_used"] >= 1, p
print("ok   sidecar provenance:", p["command_line"].split("epitem", 1)[1], "|", p["git_commit"])
PY
"$EPITEM" convert Si si001.xyz --zone 0,0,1 --repeat 1,1,2 -q || fail "convert Si"
"$EPITEM" multislice si001.xyz --gpts 32 --slice 1.3575A --phonons 2 --phonon-seed 7 --out ex.tif -q \
  || fail "multislice"
python3 -c "
import json; s = json.load(open('ex.json'))['provenance']['seeds']
assert 7 in s.values(), s
print('ok   multislice sidecar seeds:', s)" || failures=$((failures + 1))

# --- one vocabulary: every option of every command is in docs/vocabulary.md ---
missing=""
for cmd in $("$EPITEM" | awk '/^commands:/ {on = 1; next} on && /^  [a-z]/ {print $1} on && /^$/ {on = 0}'); do
  for opt in $("$EPITEM" "$cmd" --help | grep -oE '^  (-[a-zA-Z] \[ )?--[a-zA-Z0-9-]+' | grep -oE -- '--[a-zA-Z0-9-]+'); do
    grep -qF -- "\`$opt\`" "$SRC/docs/vocabulary.md" || missing="$missing $cmd:$opt"
  done
done
[ -z "$missing" ] && ok "every option is in docs/vocabulary.md" \
  || fail "options missing from docs/vocabulary.md (run python3 docs/make_vocabulary.py build/epitem):$missing"

# hrtem takes --gpts like multislice; --gpts with --sampling is a usage error.
"$EPITEM" hrtem si001.xyz --gpts 48x64 --out h.tif --dry-run > h.txt 2>&1 || fail "hrtem --gpts: $(cat h.txt)"
grep -q 'grid = 48x64' h.txt && ok "hrtem --gpts 48x64" || fail "hrtem --gpts grid: $(grep grid h.txt)"
expect_error 2 "hrtem --gpts with --sampling" "gpts" -- hrtem ../si001.xyz --gpts 64 --sampling 0.1A --out h.tif

# Deprecated names: saed --pixel (1/Å) → --pixel-size-inv-A; warns, same result; both = error.
"$EPITEM" saed Si --zone 1,1,0 --out a.csv --image a.tif --size 64 --pixel-size-inv-A 0.02 -q 2> a.err || fail "saed new name"
"$EPITEM" saed Si --zone 1,1,0 --out b.csv --image b.tif --size 64 --pixel 0.02 -q 2> b.err || fail "saed old name"
[ -s a.err ] && fail "new name warns: $(cat a.err)"
grep -q 'warning: --pixel is deprecated: use --pixel-size-inv-A' b.err || fail "no deprecation warning: $(cat b.err)"
cmp -s a.csv b.csv && ok "saed --pixel = --pixel-size-inv-A, with a warning" || fail "old and new names differ"
expect_error 2 "saed --pixel with --pixel-size-inv-A" "pixel-size-inv-A" -- saed Si --zone 1,1,0 --out c.csv --pixel 0.02 --pixel-size-inv-A 0.02

# |g| columns: g_inv_A beside the deprecated g_invA (reflections) and g (saed), equal values.
"$EPITEM" reflections Si --dmin 1A --out r.csv -q || fail "reflections"
check_same() {  # FILE OLD NEW
  awk -F, -v o="$2" -v n="$3" '/^#/ {next} !h {for (i = 1; i <= NF; i++) {if ($i == o) a = i; if ($i == n) b = i}; h = 1;
    if (!a || !b) {print "missing column"; exit 1}; next} $a != $b {print "row " NR ": " $a " vs " $b; exit 1}' "$1" \
    && ok "$1: $3 = $2" || fail "$1: $3 vs $2"
}
check_same r.csv g_invA g_inv_A
check_same a.csv g g_inv_A
check_same a.csv gx gx_inv_A

# --- convert reads the POSCAR it writes ---
atoms() { awk 'NR > 2 {printf "%s %.4f %.4f %.4f\n", $1, $2, $3, $4}' "$1" | sort; }
"$EPITEM" convert Fe3O4 fe.xyz -q && "$EPITEM" convert Fe3O4 fe.vasp -q && "$EPITEM" convert fe.vasp fe_back.xyz -q \
  || fail "CIF → POSCAR → xyz"
cell() { grep -o 'Lattice="[^"]*"' "$1" | sed 's/Lattice=//; s/"//g' | awk '{for (i = 1; i <= NF; i++) printf "%.6f ", $i + 0}'; }
cmp -s <(atoms fe.xyz) <(atoms fe_back.xyz) && [ "$(cell fe.xyz)" = "$(cell fe_back.xyz)" ] \
  && ok "Fe3O4 → POSCAR → xyz: same cell and 56 atoms" || fail "POSCAR round trip: $(diff <(atoms fe.xyz) <(atoms fe_back.xyz) | head -3)"
"$EPITEM" convert Fe3O4 m.xyz --zone 1,1,0 --repeat 1,1,2 -q && "$EPITEM" convert Fe3O4 m.vasp --zone 1,1,0 --repeat 1,1,2 -q \
  && "$EPITEM" convert m.vasp m2.xyz -q || fail "zone model → POSCAR → xyz"
cmp -s <(atoms m.xyz) <(atoms m2.xyz) && ok "oriented model → POSCAR → xyz: same $(atoms m2.xyz | wc -l) atoms" \
  || fail "POSCAR round trip changed atoms: $(diff <(atoms m.xyz) <(atoms m2.xyz) | head -3)"
printf 'bad\n1.0\n1 0 0\n0 1 0\n0 0 1\nFe\n1000000\nDirect\n0 0 0\n' > bad.vasp
expect_error 1 "POSCAR count larger than the file" "bad.vasp" -- info ../bad.vasp

# --- cmake --install: the installed binary finds its structures relative to itself ---
BUILD=$(dirname "$EPITEM")
if [ -f "$BUILD/cmake_install.cmake" ] && command -v cmake > /dev/null; then
  cmake --install "$BUILD" --prefix "$TMP/inst" --component epitem > inst.log 2>&1 || fail "cmake --install: $(tail -2 inst.log)"
  [ -f "$TMP/inst/share/epitem/structures/Fe3O4.cif" ] || fail "structures not installed"
  if env -u EPITEM_STRUCTURES "$TMP/inst/bin/epitem" info Unobtainium > inst.out 2>&1; then
    fail "installed binary found Unobtainium"
  fi
  grep -qF "$TMP/inst/share/epitem/structures" inst.out && ok "installed binary reads $TMP/inst/share/epitem/structures" \
    || fail "installed binary looks elsewhere: $(cat inst.out)"
fi

[ "$failures" -eq 0 ] || { echo "$failures failure(s)"; exit 1; }
echo "all cli_polish checks passed"
