#!/usr/bin/env bash
# The same analysis on a microscope's original file and on its TIFF conversion must agree:
# `epitem fft` peaks (d and direction) within 0.01 %, with the calibration read from the
# original (no --pixel-size). Uses ../shared/data/realdata; skips when it is absent.
source "$(dirname "$0")/lib/common.bash"
cli_setup "$1"
ROOT=$(realpath -m "$2/../shared/data/realdata")
if [ ! -d "$ROOT" ]; then
  echo "SKIP: $ROOT absent"
  exit 77  # ctest SKIP_RETURN_CODE: shown as skipped, not passed
fi
pairs=(
  "si110_haadf_ncempy/01_Si110_5images.emi si110_haadf_ncempy/si110_haadf.tif"
  "sto001_haadf_80kV_ncempy/16_STOimage_1.ser sto001_haadf_80kV_ncempy/sto001_haadf_80kV.tif"
  "sto001_haadf_team05_ncempy/Acquisition_18.emd sto001_haadf_team05_ncempy/sto001_haadf_team05.tif"
  "sto110_adf_abf_atomap/test_ADF_cropped.hdf5 sto110_adf_abf_atomap/sto110_adf.tif"
)
# column NAME CSV: prints that column of an epitem CSV (header = first line not starting with #).
column() {
  awk -F, -v name="$1" '/^#/ {next} !h {for (i = 1; i <= NF; i++) if ($i == name) c = i; h = 1; next} {print $c}' "$2"
}
for pair in "${pairs[@]}"; do
  set -- $pair
  original=$ROOT/$1 tiff=$ROOT/$2
  "$EPITEM" fft "$original" --max-peaks 6 --out "$TMP/a.csv" -q 2>"$TMP/a.err" \
    || { echo "FAIL: fft $1: $(cat "$TMP/a.err")"; failures=$((failures + 1)); continue; }
  "$EPITEM" fft "$tiff" --max-peaks 6 --out "$TMP/b.csv" -q 2>"$TMP/b.err" \
    || { echo "FAIL: fft $2: $(cat "$TMP/b.err")"; failures=$((failures + 1)); continue; }
  for col in d_A angle_deg; do
    if ! paste -d' ' <(column $col "$TMP/a.csv") <(column $col "$TMP/b.csv") |
      awk -v col=$col 'NF != 2 || $2 == 0 && $1 != 0 || ($2 != 0 && (($1 - $2) / $2 > 1e-4 || ($2 - $1) / $2 > 1e-4)) {bad = 1}
                        END {exit bad || NR < 3}'; then
      echo "FAIL: $1 vs $2: column $col differs by more than 0.01 %:"
      paste -d' ' <(column $col "$TMP/a.csv") <(column $col "$TMP/b.csv")
      failures=$((failures + 1))
    fi
  done
  echo "ok   [$1 = $2: $(column d_A "$TMP/a.csv" | head -3 | tr '\n' ' ')Å]"
done
exit $failures
