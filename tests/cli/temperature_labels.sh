#!/usr/bin/env bash
# --temperature on saed / multislice / hrtem: U_iso(T) in every sidecar, phonon seed recorded,
# bad temperatures refused; ctf prints both limits; fcc [110] FOLZ labelled ±1.
# Args: $1 = epitem binary, $2 = source dir.
set -u
source "$(dirname "$0")/lib/common.bash"
cli_setup "$1"
expect() { expect_error "$1" "$2" "" "${@:3}"; }
check() {  # check DESCRIPTION COMMAND...: the command must succeed
  if "${@:2}"; then echo "ok   [$1]"; else echo "FAIL [$1]"; failures=$((failures + 1)); fi
}

expect 1 "temperature without unit" -- saed Ni --zone 0,0,1 --out s.csv --temperature 700
expect 1 "temperature below 0 K" -- saed Ni --zone 0,0,1 --out s.csv --temperature -300C
expect 1 "unknown debye element" -- saed Ni --zone 0,0,1 --out s.csv --temperature 300K --debye-temperature Xx=300K
expect 2 "debye-temperature without temperature" -- saed Ni --zone 0,0,1 --out s.csv --debye-temperature Ni=300K

cd "$TMP"
"$EPITEM" saed Ni --zone 0,0,1 --out hot.csv --temperature 700C --quiet
"$EPITEM" saed Ni --zone 0,0,1 --out cold.csv --quiet
check "saed sidecar has temperature and Debye U" grep -q '"temperature_K": 973.15' hot.json
check "saed sidecar has U of Ni at 700C" python3 - <<'PY'
import json
d = json.load(open("hot.json"))
def find(o, k):
    if isinstance(o, dict):
        if k in o: return o[k]
        for v in o.values():
            r = find(v, k)
            if r is not None: return r
    return None
u = find(find(d, "thermal"), "Ni")["u_iso_A2"]
assert abs(u - 0.01544) < 2e-4, u   # Debye, Theta 397 K, 973.15 K
PY
# Hotter → weaker high-order spots (Debye–Waller): 400 of Ni relative to 200.
check "saed 700C damps 400 relative to 200" python3 - <<'PY'
import csv
def ratio(f):
    r = {}
    for row in csv.DictReader(open(f)):
        if row["double_diffraction"] == "0" and row["phase"] == "Ni":
            key = tuple(sorted(abs(int(row[c])) for c in "hkl"))
            r[key] = float(row["intensity"])
    return r[(0, 0, 4)] / r[(0, 0, 2)]
assert ratio("hot.csv") < 0.8 * ratio("cold.csv"), (ratio("hot.csv"), ratio("cold.csv"))
PY
"$EPITEM" multislice Ni --zone 0,0,1 --repeat 2,2,1 --gpts 64 --phonons 2 --phonon-seed 5 --temperature 973K --out ms.tif --quiet
check "multislice sidecar has phonon seed and thermal" grep -q '"phonon_seed": 5' ms.json
check "multislice sidecar U" grep -q '"debye_temperature_K": 397' ms.json
"$EPITEM" multislice Ni --zone 0,0,1 --repeat 2,2,1 --gpts 64 --phonons 2 --seed 9 --out ms2.tif --quiet 2>seed.err
check "multislice --seed still accepted (deprecated)" grep -q '"phonon_seed": 9' ms2.json
printf '4\nLattice="3.524 0 0 0 3.524 0 0 0 3.524" Properties=species:S:1:pos:R:3 pbc="T T F"\nNi 0 0 0\nNi 1.762 1.762 0\nNi 1.762 0 1.762\nNi 0 1.762 1.762\n' > ni.xyz
"$EPITEM" hrtem ni.xyz --sampling 0.1A --phonons 2 --phonon-seed 3 --temperature 300K --out h.tif --quiet
check "hrtem sidecar records the phonon seed" grep -q '"phonon_seed": 3' h.json
check "hrtem sidecar records the Debye U" grep -q '"debye_temperature_K": 397' h.json
"$EPITEM" ctf > ctf.txt
check "ctf prints the temporal information limit 0.9255 A" grep -q "information limit (temporal coherence, E_t = e^-2) 1.0804.* 1/A (0.9255" ctf.txt
check "ctf prints the combined-envelope limit 1.369 A" grep -q "combined-envelope limit .* (1.369" ctf.txt
"$EPITEM" saed Ni --zone 1,1,0 --holz 1 --holz-smax 10 --out holz.csv --quiet
check "fcc [110] FOLZ labelled ±1" python3 - <<'PY'
import csv
zones = {int(r["laue_zone"]) for r in csv.DictReader(open("holz.csv"))}
assert zones == {-1, 0, 1}, zones
PY
exit $((failures > 0))
