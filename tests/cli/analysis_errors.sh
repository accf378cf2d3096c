#!/usr/bin/env bash
# epitem fft / index / compare / calibrate: a synthetic two-fringe TIFF gives its spacings and
# angles; bad input (1-pixel, constant, NaN, RGB, no pixel size, bad options) gives one error line,
# exit 1 (input) or 2 (usage), and no output file. $1 = epitem binary, $2 = source dir.
set -u
source "$(dirname "$0")/lib/common.bash"
cli_setup "$1"
export LC_ALL=C

# Minimal little-endian uncompressed TIFF, one strip. Header bytes go straight to the file
# (bash variables cannot hold NUL bytes); pixel bytes come from a generator command.
entry() { le16 "$1"; le16 "$2"; le32 "$3"; if [ "$2" = 3 ] && [ "$3" = 1 ]; then le16 "$4"; le16 0; else le32 "$4"; fi; }
# tiff FILE W H BITS SAMPLES FORMAT(1 uint, 3 float) -- generator...
tiff() {
  local file=$1 w=$2 h=$3 bits=$4 spp=$5 fmt=$6; shift 7
  local bytes=$((w * h * spp * bits / 8)) ntags=10
  local ifd_end=$((8 + 2 + ntags * 12 + 4))
  local bps_at=$ifd_end data=$((ifd_end + 8))
  { printf 'II'; le16 42; le32 8; le16 $ntags
    entry 256 3 1 "$w"; entry 257 3 1 "$h"
    if [ "$spp" = 1 ]; then entry 258 3 1 "$bits"; else entry 258 3 3 $bps_at; fi
    entry 259 3 1 1; entry 262 3 1 $([ "$spp" = 1 ] && echo 1 || echo 2)
    entry 273 4 1 $data; entry 277 3 1 "$spp"; entry 278 3 1 "$h"; entry 279 4 1 $bytes
    entry 339 3 1 "$fmt"; le32 0
    le16 "$bits"; le16 "$bits"; le16 "$bits"; le16 0
    "$@"; } > "$file"
}
# 8-bit pixels from awk (values kept in 1..255: awk cannot print NUL portably).
awk_pixels() { awk -v w="$1" -v h="$2" -v spp="${3:-1}" "BEGIN { for (y = 0; y < h; y++) for (x = 0; x < w; x++) for (c = 0; c < spp; c++) { $4; printf \"%c\", v } }"; }
float_word() { local n=$1 word=$2; for _ in $(seq "$n"); do le32 $((16#$word)); done; }

# Two fringes: 8 px period along x (angle 0) and 5 px period along 60° (y up), 128×128, with
# ±8 grey levels of noise (dither: plain 8-bit rounding would add intermodulation peaks).
tiff "$TMP/lattice.tif" 128 128 8 1 1 -- awk_pixels 128 128 1 \
  'if (!s) { srand(7); s = 1 }; v = int(128 + 50*cos(2*3.14159265358979*x/8) + 50*cos(2*3.14159265358979*(0.5*x - 0.8660254037844386*y)/5) + 16*(rand() - 0.5))'
tiff "$TMP/one.tif" 1 1 32 1 3 -- float_word 1 3f800000
tiff "$TMP/flat.tif" 32 32 32 1 3 -- float_word 1024 40400000
tiff "$TMP/nan.tif" 32 32 32 1 3 -- bash -c "$(declare -f byte le16 le32 float_word); float_word 500 3f800000; float_word 1 7fc00000; float_word 523 40000000"
tiff "$TMP/rgb.tif" 16 16 8 3 1 -- awk_pixels 16 16 3 'v = 1 + (x * 16 + y + 40 * c) % 250'

# expect CODE PATTERN -- args...: expect_error (lib/common.bash), described by its arguments.
expect() { local code=$1 pattern=$2; shift 3; expect_error "$code" "$*" "$pattern" -- "$@"; }

# --- the good path: spacings 8 × 0.1 Å = 0.8 Å at 0°, 0.5 Å at 60° ---
"$EPITEM" fft "$TMP/lattice.tif" --pixel-size 0.1A --out "$TMP/peaks.csv" --png "$TMP/fft.png" \
  --spectrum "$TMP/fft.tif" -q || { echo "FAIL: fft of the synthetic lattice"; failures=$((failures + 1)); }
for f in peaks.csv peaks.json fft.png fft.tif; do
  [ -f "$TMP/$f" ] || { echo "FAIL: fft did not write $f"; failures=$((failures + 1)); }
done
head -1 "$TMP/peaks.csv" | grep -q '^kx,ky,g_inv_A,d_A,angle_deg,intensity,snr,sigma_d_A,sigma_angle_deg$' || { echo "FAIL: CSV header"; failures=$((failures + 1)); }
# 8-bit quantisation is the only noise: d within 0.3 %, angles within 0.2° (issue 6).
awk -F, 'NR > 1 { n++
  if (($4 > 0.8*0.997 && $4 < 0.8*1.003 && ($5 < 0.2 || $5 > 179.8)) ||
      ($4 > 0.5*0.997 && $4 < 0.5*1.003 && $5 > 59.8 && $5 < 60.2)) ok++
} END { exit !(n == 2 && ok == 2) }' "$TMP/peaks.csv" || { echo "FAIL: peaks:"; cat "$TMP/peaks.csv"; failures=$((failures + 1)); }

# Spacing indexing: Fe3O4 220 and NiFe 111; 2.07 Å at 3 % is ambiguous.
"$EPITEM" index --spacings 2.97A,0.205nm --phase Fe3O4 --phase NiFe -q >"$TMP/sp.txt" \
  || { echo "FAIL: index --spacings"; failures=$((failures + 1)); }
grep -q "Fe3O4 {220}" "$TMP/sp.txt" && grep -q "NiFe {111}" "$TMP/sp.txt" \
  || { echo "FAIL: spacing labels:"; cat "$TMP/sp.txt"; failures=$((failures + 1)); }
"$EPITEM" index --spacings 2.07A --phase Fe3O4 --phase NiFe --tolerance 3% -q | grep -q AMBIGUOUS \
  || { echo "FAIL: 2.07 Å at 3 % should be ambiguous"; failures=$((failures + 1)); }
# Zone indexing of Si [110] spots (111, -111, 004, 220, 113 computed from a = 5.431 Å): Si <110>.
printf 'kx,ky,intensity\n0.18413,0.26040,1\n-0.18413,0.26040,1\n0.73651,0,0.5\n0,0.52079,0.8\n0.55238,0.26040,0.3\n' > "$TMP/si.csv"
"$EPITEM" index "$TMP/si.csv" --phase Si -q >"$TMP/si.txt" || { echo "FAIL: index spots"; failures=$((failures + 1)); }
grep -q "Si: zone \[110\]" "$TMP/si.txt" || { echo "FAIL: Si zone:"; cat "$TMP/si.txt"; failures=$((failures + 1)); }

# --- bad input ---
expect 1 "at least 8×8" -- fft "$TMP/one.tif" --pixel-size 0.1A --out p.csv
expect 1 "constant" -- fft "$TMP/flat.tif" --pixel-size 0.1A --out p.csv
expect 1 "nan\|NaN\|finite" -- fft "$TMP/nan.tif" --pixel-size 0.1A --out p.csv
# Colour TIFFs are read as luminance (image-file layer), with the conversion said on stderr.
(cd "$TMP" && "$EPITEM" fft rgb.tif --pixel-size 0.1A --out rgb_peaks.csv -q 2>"$TMP/rgb.err") \
  && grep -q "RGB converted to luminance" "$TMP/rgb.err" \
  || { echo "FAIL: fft of an RGB TIFF (luminance with a warning)"; cat "$TMP/rgb.err"; failures=$((failures + 1)); }
expect 1 "\-\-pixel-size" -- fft "$TMP/lattice.tif" --out p.csv
expect 1 "not found" -- fft "$TMP/missing.tif" --pixel-size 0.1A --out p.csv
expect 1 "does not fit" -- fft "$TMP/lattice.tif" --pixel-size 0.1A --roi 100,100,64,64 --out p.csv
expect 2 "roi" -- fft "$TMP/lattice.tif" --pixel-size 0.1A --roi 1,2,3 --out p.csv
expect 2 "out" -- fft "$TMP/lattice.tif" --pixel-size 0.1A
expect 2 "either" -- index --phase Si
expect 2 "tolerance" -- index --spacings 2.0A --phase Si --tolerance 80%
expect 1 "spacing\|length" -- index --spacings 2.0kV --phase Si
expect 1 "kx,ky" -- index "$TMP/lattice.tif" --phase Si
expect 1 "constant" -- compare "$TMP/flat.tif" "$TMP/lattice.tif"
expect 1 "at least 16×16" -- compare "$TMP/one.tif" "$TMP/lattice.tif"
expect 1 "constant" -- calibrate "$TMP/flat.tif" --reference Au --rings

[ $failures -eq 0 ] && echo "ok" || { echo "$failures failure(s)"; exit 1; }
