#!/usr/bin/env bash
# `epitem saed --method multislice` (docs/diffraction.md): every spot's intensity_fraction equals
# the `multislice --diffraction` pattern of the same crystal (zone, thickness, grid, slices,
# phonons, seed, temperature) at the spot's pixel to 1e-6 (with --thickness-range: the mean of its
# --thickness-series pages); at 12 nm Fe3O4 [110] 4-40 is much
# stronger relative to 1-13 than kinematically (dynamical scattering); bad input is one line.
# Args: $1 = epitem binary, $2 = source dir.
set -u
export EPITEM_TEST_LIB="$(cd "$(dirname "$0")/lib" && pwd)"  # tiff_pages.py
source "$(dirname "$0")/lib/common.bash"
cli_setup "$1"
command -v python3 > /dev/null || { echo "SKIP: python3 not found"; exit 77; }
cd "$TMP" || exit 1
ok() { echo "ok   [$1]"; }
fail() { echo "FAIL [$1]"; failures=$((failures + 1)); }

# 1. Same crystal through both commands: 2 phonon configurations at 700 C, 2×2 lateral cells.
COMMON=(--sampling 0.1A --slice 1A --phonons 2 --phonon-seed 5 --temperature 700C -q)
"$EPITEM" saed Fe3O4 --zone 1,1,0 --method multislice --thickness 6nm --repeat 2,2 "${COMMON[@]}" \
  --out ms.csv --image ms.tif --png ms.png || fail "saed --method multislice run"
nz=$(python3 -c "import json; print(json.load(open('ms.json'))['results']['multislice_repeats'].split(',')[2])")
"$EPITEM" multislice Fe3O4 --zone 1,1,0 --repeat 2,2,"$nz" "${COMMON[@]}" --out exit.tif --diffraction dp.tif \
  || fail "multislice --diffraction run"
python3 - ms.csv ms.json dp.tif << 'PY' && ok "saed --method multislice = multislice --diffraction at every spot pixel (1e-6)" || fail "saed vs multislice --diffraction"
import csv, json, os, sys
sys.path.insert(0, os.environ['EPITEM_TEST_LIB'])
import tiff_pages
rows = list(csv.DictReader(open(sys.argv[1])))
res = json.load(open(sys.argv[2]))['results']
Lx, Ly = res['multislice_extent_x_A'], res['multislice_extent_y_A']
nx, ny, pix = tiff_pages.float_pages(sys.argv[3])[0]
assert res['multislice_grid'] == f'{nx}x{ny}', (res['multislice_grid'], nx, ny)
worst, read, strongest = 0.0, 0, 0.0
for r in rows:
    frac = float(r['intensity_fraction'])
    if r['multislice_pixel'] != 'read':
        assert frac == 0 and float(r['intensity']) == 0, r
        continue
    ref = pix[tiff_pages.spot_index(float(r['gx']), float(r['gy']), Lx, Ly, nx, ny)]
    worst = max(worst, abs(frac / ref - 1))
    read += 1
    if r['phase'] != 'direct':
        strongest = max(strongest, frac)
for r in rows:  # the intensity column: strongest = 100, the direct beam capped at 100
    if r['multislice_pixel'] == 'read':
        want = min(100.0, 100 * float(r['intensity_fraction']) / strongest)
        assert abs(float(r['intensity']) - want) <= 1e-4 * want + 1e-9, (r, want)
print(f"{read} spots read; worst relative difference {worst:.2e}")
assert read > 100 and worst < 1e-6
PY
[ -s ms.tif ] && [ -s ms.png ] && ok "TIFF and PNG written" || fail "pictures missing"

# 1b. --thickness-range: the mean over the saved thicknesses of `multislice --thickness-series`.
"$EPITEM" saed Fe3O4 --zone 1,1,0 --method multislice --thickness-range 2.4nm,6nm --sampling 0.1A --slice 1A \
  --out range.csv -q || fail "saed --thickness-range run"
series=$(python3 -c "import json; r=json.load(open('range.json'))['results']; print(','.join(repr(t) for t in r['multislice_thicknesses_A'][:-1]))")
nz=$(python3 -c "import json; print(json.load(open('range.json'))['results']['multislice_repeats'].split(',')[2])")
"$EPITEM" multislice Fe3O4 --zone 1,1,0 --repeat 1,1,"$nz" --sampling 0.1A --slice 1A --thickness-series "$series" \
  --out exit_r.tif --diffraction dp_r.tif -q || fail "multislice --thickness-series run"
python3 - range.csv range.json dp_r.tif << 'PY' && ok "--thickness-range = mean of the multislice thickness-series pages (1e-6)" || fail "--thickness-range vs multislice pages"
import csv, json, os, sys
sys.path.insert(0, os.environ['EPITEM_TEST_LIB'])
import tiff_pages
rows = list(csv.DictReader(open(sys.argv[1])))
res = json.load(open(sys.argv[2]))['results']
Lx, Ly = res['multislice_extent_x_A'], res['multislice_extent_y_A']
nx, ny, _ = tiff_pages.float_pages(sys.argv[3])[0]
pages = [p for _, _, p in tiff_pages.float_pages(sys.argv[3])]
assert len(pages) == len(res['multislice_thicknesses_A']) >= 3, (len(pages), res['multislice_thicknesses_A'])
worst = 0.0
for r in rows:
    if r['multislice_pixel'] != 'read':
        continue
    i = tiff_pages.spot_index(float(r['gx']), float(r['gy']), Lx, Ly, nx, ny)
    ref = sum(p[i] for p in pages) / len(pages)
    worst = max(worst, abs(float(r['intensity_fraction']) / ref - 1))
print(f"{len(pages)} thicknesses; worst relative difference {worst:.2e}")
assert worst < 1e-6
PY

# 2. Dynamical effect: 4-40 / 1-13 at 12 nm, multislice over kinematic (the issue: 6 % vs 180 %).
"$EPITEM" saed Fe3O4 --zone 1,1,0 --method multislice --thickness 12nm --out t12.csv -q || fail "12 nm run"
python3 - t12.csv << 'PY' && ok "12 nm: 4-40 / 1-13 grows > 2x over kinematic" || fail "12 nm dynamical ratio"
import csv, sys
I = {(r['h'], r['k'], r['l']): r for r in csv.DictReader(open(sys.argv[1])) if r['phase'] == 'Fe3O4'}
a, b = I[('4', '-4', '0')], I[('1', '-1', '3')]
ms = float(a['intensity']) / float(b['intensity'])
kin = float(a['intensity_kinematic']) / float(b['intensity_kinematic'])
print(f"I(4-40)/I(1-13): multislice {ms:.3f}, kinematic {kin:.3f}, factor {ms / kin:.2f}")
assert ms / kin > 2
PY

# 3. Bad input: one line, usage exit 2, nothing written.
expect_error 2 "--method foo" "--method" -- saed Fe3O4 --zone 1,1,0 --method foo --out x.csv
expect_error 2 "multislice with two phases" "one phase" -- saed --phase NiFe --zone 1,1,0 --phase Fe3O4 --zone 1,1,0 --method multislice --out x.csv
expect_error 2 "multislice with the preset" "one phase" -- saed --preset nife-fe3o4 --method multislice
expect_error 2 "--phonons without multislice" "--method multislice" -- saed Fe3O4 --zone 1,1,0 --phonons 3 --out x.csv
expect_error 2 "multislice with --tilt" "--tilt" -- saed Fe3O4 --zone 1,1,0 --method multislice --tilt 2mrad --out x.csv
expect_error 2 "--thickness-range reversed" "--thickness-range" -- saed Fe3O4 --zone 1,1,0 --method multislice --thickness-range 2nm,1nm --out x.csv
expect_error 2 "bad --repeat" "--repeat" -- saed Fe3O4 --zone 1,1,0 --method multislice --repeat 2 --out x.csv
expect_error 1 "--sampling too coarse" "" -- saed Fe3O4 --zone 1,1,0 --method multislice --sampling 5A --out x.csv

[ "$failures" -eq 0 ] || { echo "$failures failure(s)"; exit 1; }
