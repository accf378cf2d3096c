#!/usr/bin/env bash
# Raster orientation of simulated files: row 0 = top = largest y (+y up, as ImageJ and the SAED
# pattern). One Au atom at (x, y) = (2, 15) Å in a 10×20 Å box must appear at column x/dx and
# row ny−1−y/dy in the exit wave and in `epitem image`; a NiFe [110] image (x = [-1,1,1], pixels
# not square) must give (002) at +54.7° with d as in `epitem saed`; `epitem image` takes the
# multislice beam tilt from the sidecar and warns about phonon exit waves.
# Args: $1 = epitem binary, $2 = source dir.
set -u
EPITEM=$(realpath "$1")
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cd "$TMP" || exit 1
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# Column and row of the smallest pixel of page 1 of a float32 TIFF written by epitem: libtiff
# writes the uncompressed pixel data of page 1 right after the 8-byte header.
min_pixel() {  # FILE NX NY
  od -A n -v -t f4 -j 8 -N $(($2 * $3 * 4)) "$1" | tr -s ' ' '\n' | awk 'NF' |
    awk -v nx="$2" '{ if (NR == 1 || $1 < m) { m = $1; i = NR - 1 } } END { print i % nx, int(i / nx) }'
}

printf '1\nLattice="10 0 0 0 20 0 0 0 2" Properties=species:S:1:pos:R:3 pbc="T T F"\nAu 2 15 1\n' > au.xyz
"$EPITEM" multislice au.xyz --gpts 50x100 --out exit.tif --quiet || fail "multislice au.xyz"
"$EPITEM" image exit.tif --out image.tif --quiet || fail "image exit.tif"
# dx = dy = 0.2 Å: column 2/0.2 = 10, row 99 − 15/0.2 = 24. Real part min = strongest phase;
# Scherzer image min = the dark atom.
[ "$(min_pixel exit.tif 50 100)" = "10 24" ] || fail "exit wave atom at $(min_pixel exit.tif 50 100), expected 10 24"
[ "$(min_pixel image.tif 50 100)" = "10 24" ] || fail "image atom at $(min_pixel image.tif 50 100), expected 10 24"

"$EPITEM" saed NiFe --zone 1,1,0 --x -1,1,1 --out spots.csv --quiet || fail "saed NiFe"
"$EPITEM" multislice NiFe --zone 1,1,0 --x -1,1,1 --repeat 4,3,2 --sampling 0.1A --out nife.tif --quiet ||
  fail "multislice NiFe"
grep -q '"sampling_x_A": 0.0984' nife.json && grep -q '"sampling_y_A": 0.0966' nife.json ||
  fail "NiFe grid is not the non-square 0.0984 x 0.0967 Å one this test needs"
"$EPITEM" image nife.tif --out nife_image.tif --quiet || fail "image nife.tif"
"$EPITEM" fft nife_image.tif --out peaks.csv --quiet || fail "fft nife_image.tif"
# SAED (002): angle atan2(gy, gx) and d; fft: the peak nearest d(002), angle modulo 180.
saed=$(awk -F, '$2 == 0 && $3 == 0 && $4 == 2 { printf "%.4f %.3f", $8, atan2($6, $5) * 45 / atan2(1, 1) }' spots.csv)
fft=$(awk -F, -v d="${saed%% *}" 'NR > 1 { e = ($4 - d) / d; e = e < 0 ? -e : e; if (e < best || NR == 2) { best = e; line = $4 " " $5 } } END { print line }' peaks.csv)
echo "saed (002): d angle = $saed; fft: $fft"
awk -v s="$saed" -v f="$fft" 'BEGIN { split(s, a, " "); split(f, b, " ");
  # pixels 0.1 Å, 26 Å field: d within 0.1 %, angle within 0.2° (three-bin interpolation).
  ok = (b[1] - a[1]) / a[1] < 1e-3 && (a[1] - b[1]) / a[1] < 1e-3 && b[2] - a[2] < 0.2 && a[2] - b[2] < 0.2;
  exit ok ? 0 : 1 }' || fail "(002) from the simulated image ($fft) differs from SAED ($saed)"

"$EPITEM" multislice au.xyz --gpts 50x100 --tilt 1,0.5 --phonons 1 --out tilt.tif --quiet || fail "multislice --tilt"
"$EPITEM" image tilt.tif --out tilt_image.tif > echo.txt 2> err.txt || fail "image tilt.tif"
grep -q "tilt_source = sidecar" echo.txt && grep -q "illumination_tilt_mrad = 1.118" echo.txt ||
  fail "image did not take the multislice tilt from the sidecar: $(grep tilt echo.txt)"
grep -q "phonon-averaged" err.txt || fail "no warning about the phonon exit wave: $(cat err.txt)"
"$EPITEM" image tilt.tif --out tilt_image2.tif --tilt 2mrad --quiet 2> err2.txt || fail "image --tilt"
grep -q "imaging tilt differs" err2.txt || fail "no warning for --tilt differing from the multislice tilt"

[ "$failures" -eq 0 ] && echo "pixel_frame: all checks passed"
exit "$failures"
