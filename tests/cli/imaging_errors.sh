#!/usr/bin/env bash
# epitem image: bad exit waves and bad lens/detector values give one-line errors (exit 1),
# usage errors exit 2, and nothing is written. $1 = epitem binary, $2 = source dir.
set -u
EPITEM="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
fails=0
source "$(dirname "$0")/lib/common.bash"  # byte, le16, le32

# Minimal little-endian float32 TIFF: 4x4 pixels per page, page values given as hex words
# (3f800000 = 1.0, 00000000 = 0.0, 7fc00000 = NaN). Bytes go straight to the file: bash
# variables cannot hold NUL bytes.
entry() { le16 "$1"; le16 "$2"; le32 1; if [ "$2" = 3 ]; then le16 "$3"; le16 0; else le32 "$3"; fi; }
write_tiff() {  # write_tiff FILE WORD_PAGE1 [WORD_PAGE2 ...]
  local file=$1; shift
  local n=$# offset=8 page=0
  { printf 'II'; le16 42; le32 8
    for word in "$@"; do
      page=$((page + 1))
      local data=$((offset + 126)) next=$((offset + 126 + 64))
      [ $page -eq $n ] && next=0
      le16 10; entry 256 3 4; entry 257 3 4; entry 258 3 32; entry 259 3 1; entry 262 3 1
      entry 273 4 $data; entry 277 3 1; entry 278 3 4; entry 279 4 64; entry 339 3 3; le32 $next
      for _ in $(seq 16); do le32 $((16#$word)); done
      offset=$((offset + 126 + 64))
    done; } > "$file"
}

expect() {  # expect CODE PATTERN -- args...
  local code=$1 pattern=$2; shift 3
  "$EPITEM" "$@" >"$DIR/out.txt" 2>"$DIR/err.txt"
  local rc=$?
  if [ $rc -ne "$code" ] || ! grep -q -- "$pattern" "$DIR/err.txt"; then
    echo "FAIL: epitem $* -> exit $rc (want $code), stderr: $(cat "$DIR/err.txt")"
    fails=$((fails + 1))
  fi
  if [ "$code" -ne 0 ] && [ $(wc -l <"$DIR/err.txt") -ne 1 ]; then
    echo "FAIL: epitem $* printed more than one error line: $(cat "$DIR/err.txt")"
    fails=$((fails + 1))
  fi
}

write_tiff "$DIR/good.tif" 3f800000 00000000
write_tiff "$DIR/one.tif" 3f800000
write_tiff "$DIR/three.tif" 3f800000 00000000 00000000
write_tiff "$DIR/nan.tif" 3f800000 7fc00000

# A vacuum exit wave images to exactly 1 (sanity check of the hand-made TIFF).
"$EPITEM" image "$DIR/good.tif" --sampling 0.5A --aperture 10mrad --out "$DIR/good_img.tif" --quiet \
  || { echo "FAIL: imaging a vacuum exit wave"; fails=$((fails + 1)); }
[ -f "$DIR/good_img.tif" ] && [ -f "$DIR/good_img.json" ] \
  || { echo "FAIL: no image or sidecar written"; fails=$((fails + 1)); }
# Default --coherence auto: a 4x4 wave needs few FFTs, so integrate (docs/coherence.md).
grep -q '"coherence_model": "integrate"' "$DIR/good_img.json" \
  || { echo "FAIL: sidecar does not say which coherence model made the image"; fails=$((fails + 1)); }
grep -q '"coherence_rule": "auto: integrate' "$DIR/good_img.json" \
  || { echo "FAIL: sidecar does not say why auto chose integrate"; fails=$((fails + 1)); }

S=(--sampling 0.5A --aperture 10mrad)  # aperture inside the 4x4 grid's band limit
expect 1 "this one has 1" -- image "$DIR/one.tif" "${S[@]}" --out "$DIR/x.tif"
expect 1 "this one has 3" -- image "$DIR/three.tif" "${S[@]}" --out "$DIR/x.tif"
expect 1 "page 1 (imaginary) has a non-finite value" -- image "$DIR/nan.tif" "${S[@]}" --out "$DIR/x.tif"
expect 1 "focal spread must be" -- image "$DIR/good.tif" "${S[@]}" --focal-spread -20A \
  --focal-spread-kind sigma --out "$DIR/x.tif"
expect 2 "focal-spread-kind" -- image "$DIR/good.tif" "${S[@]}" --focal-spread 20A --out "$DIR/x.tif"
expect 1 "dose must be > 0" -- image "$DIR/good.tif" "${S[@]}" --dose 0 --out "$DIR/x.tif"
expect 1 "dose must be > 0" -- image "$DIR/good.tif" "${S[@]}" --dose -5e/A2 --out "$DIR/x.tif"
expect 1 "not found" -- image "$DIR/missing.tif" --out "$DIR/x.tif"
expect 2 "missing --out" -- image "$DIR/good.tif" "${S[@]}"
expect 1 "unknown coherence model" -- image "$DIR/good.tif" "${S[@]}" --coherence partial --out "$DIR/x.tif"
expect 1 "unknown MTF" -- image "$DIR/good.tif" "${S[@]}" --mtf sinc:2 --out "$DIR/x.tif"
expect 1 "is the input" -- image "$DIR/good.tif" "${S[@]}" --out "$DIR/good.tif"
[ -e "$DIR/x.tif" ] && { echo "FAIL: a failed run left $DIR/x.tif"; fails=$((fails + 1)); }

# Aperture beyond the band limit: a warning, and the image is still written.
"$EPITEM" image "$DIR/good.tif" --sampling 0.5A --aperture 40mrad --out "$DIR/ap.tif" --quiet 2>"$DIR/err.txt" \
  || { echo "FAIL: aperture beyond band limit should only warn"; fails=$((fails + 1)); }
grep -q "warning: objective aperture 40 mrad" "$DIR/err.txt" \
  || { echo "FAIL: no band-limit warning: $(cat "$DIR/err.txt")"; fails=$((fails + 1)); }

# --help states the sign convention and the coherence models.
"$EPITEM" image --help | grep -q "POSITIVE defocus = UNDERFOCUS" \
  || { echo "FAIL: --help lacks the sign convention"; fails=$((fails + 1)); }

# Seeded noise is reproducible bit for bit; a defocus series makes one page per value.
mkdir -p "$DIR/a" "$DIR/b"
for run in a b; do  # run inside each folder: the TIFF carries the sidecar, which names paths
  (cd "$DIR/$run" && "$EPITEM" image ../good.tif "${S[@]}" --dose 1000e/A2 --seed 7 \
    --defocus-series 0,50,100nm --out noisy.tif --quiet) \
    || { echo "FAIL: noisy series run $run"; fails=$((fails + 1)); }
done
cmp -s "$DIR/a/noisy.tif" "$DIR/b/noisy.tif" || { echo "FAIL: seeded runs differ"; fails=$((fails + 1)); }
grep -q '"page": 2' "$DIR/a/noisy.json" || { echo "FAIL: series sidecar lacks page 2"; fails=$((fails + 1)); }

# epitem ctf: Scherzer focus at 200 kV, Cs 1 mm has its first CTF zero at sqrt(2*df/(Cs*lambda^2)).
"$EPITEM" ctf --cs 1mm --quiet | grep -q "first CTF zero 0.4416" \
  || { echo "FAIL: epitem ctf first zero"; fails=$((fails + 1)); }

# epitem hrtem on a tiny model (two atoms in an 8 Å box): a 2-thickness x 2-defocus stack.
cat > "$DIR/tiny.xyz" <<'XYZ'
2
Lattice="8 0 0 0 8 0 0 0 4" Properties=species:S:1:pos:R:3 pbc="T T F"
Fe 2.0 2.0 1.0
O 5.0 5.5 3.0
XYZ
"$EPITEM" hrtem "$DIR/tiny.xyz" --sampling 0.25A --thickness-series 2A --defocus-series 0,60nm \
  --out "$DIR/tiny.tif" --png "$DIR/tiny.png" --quiet 2>/dev/null \
  || { echo "FAIL: hrtem on a tiny model"; fails=$((fails + 1)); }
[ -f "$DIR/tiny.png" ] && grep -q '"page": 3' "$DIR/tiny.json" && grep -q '"thickness_A": 2' "$DIR/tiny.json" \
  || { echo "FAIL: hrtem stack should have 4 pages (2 thicknesses x 2 defocus)"; fails=$((fails + 1)); }
"$EPITEM" hrtem --help | grep -q "coherence" \
  || { echo "FAIL: hrtem --help lacks the coherence models"; fails=$((fails + 1)); }
expect 2 "not both" -- hrtem "$DIR/tiny.xyz" --preset nife-fe3o4 --out "$DIR/y.tif"
expect 1 "not found" -- hrtem "$DIR/missing.xyz" --out "$DIR/y.tif"
expect 1 "dose must be > 0" -- hrtem "$DIR/tiny.xyz" --sampling 0.25A --dose 0 --out "$DIR/y.tif"
[ -e "$DIR/y.tif" ] && { echo "FAIL: a failed hrtem run left $DIR/y.tif"; fails=$((fails + 1)); }

[ $fails -eq 0 ] && echo "imaging_errors: all passed"
exit $fails
