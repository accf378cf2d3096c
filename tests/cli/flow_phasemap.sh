#!/usr/bin/env bash
# `epitem flow` / `epitem phasemap` on tests/data/movie4.tif (8-bit ImageJ stack, 0.5 Å/px; see
# tests/data/README.md): a good run writes CSV + sidecar + PNG with the known drift and particle
# speed; bad input (one frame, mixed frame sizes, no pixel size, bad options) exits 1 or 2 with
# one stderr line and creates no output. Then the whole phase-map workflow on a simulated
# interface. Args: $1 = epitem binary, $2 = source dir.
set -u
source "$(dirname "$0")/lib/common.bash"
cli_setup "$1"
SRC=$(realpath "$2")
DATA=$SRC/tests/data

# expect CODE DESCRIPTION -- epitem-arguments...: see expect_error in lib/common.bash.
expect() { expect_error "$1" "$2" "" "${@:3}"; }

mkdir "$TMP/mixed" "$TMP/nocal" "$TMP/empty"
cp "$DATA/single.tif" "$TMP/mixed/frame_1.tif"
cp "$DATA/nocal.tif" "$TMP/mixed/frame_2.tif"
cp "$DATA/nocal.tif" "$TMP/nocal/f1.tif"
cp "$DATA/nocal.tif" "$TMP/nocal/f2.tif"
printf "not a tiff" > "$TMP/fake.tif"
PARTICLE="particle=0.2196,-0.1814;-0.2005,-0.2387"

expect 1 "flow one-frame movie" -- flow "$DATA/single.tif" --fps 10 --out flow.csv
expect 1 "flow frames of different sizes" -- flow "$TMP/mixed" --fps 10 --out flow.csv
expect 1 "flow no pixel size" -- flow "$TMP/nocal" --fps 10 --out flow.csv --png flow.png
expect 1 "flow missing movie" -- flow "$TMP/none.tif" --fps 10 --out flow.csv
expect 1 "flow empty folder" -- flow "$TMP/empty" --fps 10 --out flow.csv
expect 1 "flow not a TIFF" -- flow "$TMP/fake.tif" --fps 10 --out flow.csv
expect 1 "flow bad ramp" -- flow "$DATA/movie4.tif" --fps 10 --ramp 400C --out flow.csv
expect 1 "flow ROI outside" -- flow "$DATA/movie4.tif" --fps 10 --roi 100,100,64,64 --out flow.csv
expect 1 "flow zero fps" -- flow "$DATA/movie4.tif" --fps 0 --out flow.csv
expect 2 "flow no time base" -- flow "$DATA/movie4.tif" --out flow.csv
expect 2 "flow no output" -- flow "$DATA/movie4.tif" --fps 10
expect 2 "flow bin width without covariate" -- flow "$DATA/movie4.tif" --fps 10 --bin-width 5 --out flow.csv
expect 1 "phasemap no pixel size" -- phasemap "$DATA/nocal.tif" --phase "$PARTICLE" --out a.csv
expect 1 "phasemap beyond Nyquist" -- phasemap "$DATA/movie4.tif" --phase "p=2.2,0" --out a.csv
expect 1 "phasemap bad phase" -- phasemap "$DATA/movie4.tif" --phase "p=0.2" --out a.csv
expect 2 "phasemap no phase" -- phasemap "$DATA/movie4.tif" --out a.csv
printf "kx,ky,g\n0.2,0.1,0.22\n" > "$TMP/peaks_nophase.csv"
expect 1 "phasemap phase-peaks without a phase column" -- phasemap "$DATA/movie4.tif" --phase-peaks "$TMP/peaks_nophase.csv" --out a.csv
expect 1 "phasemap phase-peaks missing file" -- phasemap "$DATA/movie4.tif" --phase-peaks "$TMP/none.csv" --out a.csv
expect 2 "phasemap unknown track" -- phasemap "$DATA/movie4.tif" --phase "$PARTICLE" --track x --out a.csv

# Good runs: known drift (+1 px = 0.5 Å per frame along x) and particle speed (√2 px/frame·0.5 Å·10/s).
"$EPITEM" flow "$DATA/movie4.tif" --fps 10 --ramp 400:10/s --covariate temperature_C --bin-width 1 \
  --out "$TMP/flow.csv" --png "$TMP/flow.png" --field "$TMP/speed.tif" -q 2>"$TMP/stderr" \
  || { echo "FAIL [flow good run]: $(cat "$TMP/stderr")"; failures=$((failures + 1)); }
for f in flow.csv flow.json flow_bins.csv flow.png speed.tif; do
  [ -s "$TMP/$f" ] || { echo "FAIL [flow good run]: $f missing"; failures=$((failures + 1)); }
done
if [ -s "$TMP/flow.csv" ]; then
  # Last pair: cumulative drift 3 px = 1.5 Å (±0.1), 99th-percentile speed ≈ 7.07 Å/s (±10 %),
  # most of the frame static (static_fraction ≥ 0.5).
  awk -F, '/^2,/ { if ($5 < 1.4 || $5 > 1.6 || $11 < 6.4 || $11 > 7.8 || $7 < 0.5) { print "bad row: " $0; exit 1 } }' \
    "$TMP/flow.csv" && echo "ok   [flow good run: drift and speed]" \
    || { echo "FAIL [flow good run: drift and speed]"; failures=$((failures + 1)); }
fi
# Motion vs noise: the noise floor is measured per pair, pixels above it in regions of at least
# half a window² are moving; their core speed is the particle's √2 px/frame (1.33 measured: the
# flow window still blends some static lattice in), the floor a small fraction of it.
if [ -s "$TMP/flow.csv" ]; then
  awk -F, 'NR == 2 { for (i = 1; i <= NF; ++i) col[$i] = i
                     if (!("noise_floor_px_per_frame" in col) || !("moving_fraction" in col) || !("shift_ambiguous" in col) \
                         || !("mean_speed_moving_px_per_frame" in col) || !("peak_ratio" in col)) { print "header: " $0; bad = 1 } }
           NR > 2 { f = $col["noise_floor_px_per_frame"]; m = $col["mean_speed_moving_px_per_frame"]; q = $col["moving_fraction"]
                    if (f <= 0 || f > 0.3 || m < 1.27 || m > 1.56 || q < 0.1 || q > 0.5) { print "row: " $0; bad = 1 } }
           END { exit bad }' "$TMP/flow.csv" && echo "ok   [flow: noise floor, moving fraction, moving speed]" \
    || { echo "FAIL [flow: noise floor, moving fraction, moving speed]"; failures=$((failures + 1)); }
  grep -q '"smooth_from": "measured flow noise"' "$TMP/flow.json" && grep -q '"time_base": "--fps"' "$TMP/flow.json" \
    && echo "ok   [flow sidecar: automatic smoothing and time base recorded]" \
    || { echo "FAIL [flow sidecar: smooth_from / time_base]"; failures=$((failures + 1)); }
fi
"$EPITEM" flow "$DATA/movie4.tif" --fps 10 --smooth 2 --window 21 --out "$TMP/flow2.csv" -q 2>"$TMP/stderr" \
  && grep -q '"smooth_from": "--smooth"' "$TMP/flow2.json" && grep -q '"window_px": 21' "$TMP/flow2.json" \
  && echo "ok   [flow --smooth/--window given: used and recorded]" \
  || { echo "FAIL [flow --smooth/--window given]: $(cat "$TMP/stderr")"; failures=$((failures + 1)); }
"$EPITEM" phasemap "$DATA/movie4.tif" --phase "$PARTICLE" --fps 10 --out "$TMP/areas.csv" \
  --png "$TMP/overlay.png" -q 2>"$TMP/stderr" \
  || { echo "FAIL [phasemap good run]: $(cat "$TMP/stderr")"; failures=$((failures + 1)); }
for f in areas.csv areas.json overlay.png; do
  [ -s "$TMP/$f" ] || { echo "FAIL [phasemap good run]: $f missing"; failures=$((failures + 1)); }
done
[ "$(head -c 4 "$TMP/overlay.png" | od -An -c | tr -d ' ')" = "211PNG" ] \
  || { echo "FAIL [phasemap good run]: overlay is not a PNG"; failures=$((failures + 1)); }
# The particle (a disc of 24 px = 12 Å radius: 4.524 nm²) next to the lattice: every frame's area
# within 5 % (curvature-corrected), fringe contrast reported, both phases adding up to the
# frame's 40.96 nm² less what the lattice loses at the frame (padded, not periodic: its four
# corners, 4 (1 − π/4)(1.5 σ_e)² ≈ 0.4 nm² at σ_e = 4.6 Å, and about half a pixel along the
# edges; 0.69 nm² measured).
"$EPITEM" phasemap "$DATA/movie4.tif" --phase "$PARTICLE" --phase "lattice=0.2228,-0.0318;-0.0637,-0.2387" \
  --fps 10 --out "$TMP/both.csv" -q 2>"$TMP/stderr" \
  || { echo "FAIL [phasemap two phases]: $(cat "$TMP/stderr")"; failures=$((failures + 1)); }
awk -F, 'NR == 2 { if ($NF != "fringe_contrast_lattice") { print "header: " $0; bad = 1 } }
         NR > 2 { if ($3 < 4.30 || $3 > 4.75 || $3 + $4 < 40.0 || $3 + $4 > 40.96) { print "row: " $0; bad = 1 } }
         END { exit bad }' "$TMP/both.csv" && echo "ok   [phasemap two phases: particle area, total]" \
  || { echo "FAIL [phasemap two phases: particle area, total]"; failures=$((failures + 1)); }

# The issue's workflow on our own simulated interface: hrtem (C_s = 0, Δf = 30 Å) → fft → index →
# phasemap --phase-peaks; each phase's area within 5 % of what `epitem interface` reports.
# Envelope coherence: the integrated image (hrtem's auto default here) makes high-order
# reflections the 12 strongest peaks and Fe3O4 is then not indexed from them (docs/analysis.md).
mkdir "$TMP/sim"
if (cd "$TMP/sim" && "$EPITEM" hrtem --cs 0 --defocus 30A --coherence envelope -q && "$EPITEM" interface --preset nife-fe3o4 --out m.xyz -q \
    && "$EPITEM" fft nife_fe3o4_hrtem.tif --out peaks.csv --max-peaks 12 -q \
    && "$EPITEM" index peaks.csv --phase Fe3O4 --phase NiFe --out index.csv -q >/dev/null \
    && "$EPITEM" phasemap nife_fe3o4_hrtem.tif --phase-peaks index.csv --periodic --out areas.csv -q) 2>"$TMP/stderr"; then
  model() { grep -A3 '"projected_area_nm2"' "$TMP/sim/m.json" | grep "\"$1\"" | sed 's/.*: *//; s/,$//'; }
  awk -F, -v nife="$(model NiFe)" -v oxide="$(model Fe3O4)" '
    NR == 2 { for (i = 1; i <= NF; ++i) col[$i] = i }
    NR == 3 { a = $col["area_NiFe_nm2"]; b = $col["area_Fe3O4_nm2"]
              if (a < 0.95 * nife || a > 1.05 * nife || b < 0.95 * oxide || b > 1.05 * oxide) {
                print "NiFe " a " vs " nife ", Fe3O4 " b " vs " oxide; exit 1 } }' "$TMP/sim/areas.csv" \
    && echo "ok   [hrtem → fft → index → phasemap --phase-peaks: areas within 5 % of the model]" \
    || { echo "FAIL [simulated interface phase areas]"; failures=$((failures + 1)); }
else
  echo "FAIL [simulated interface workflow]: $(cat "$TMP/stderr")"; failures=$((failures + 1))
fi

echo "$failures failure(s)"
[ "$failures" -eq 0 ]
