#!/usr/bin/env bash
# Every multi-page TIFF epitem writes reads back identically in Python tifffile (which reads
# ImageJ stacks by offset arithmetic from page 1's data) and page by page through libtiff
# (ctypes): same shape, same float32 values bit for bit, ImageJ metadata as written (images,
# slices/frames, unit). Skipped when /usr/bin/python3 lacks tifffile or numpy.
# Args: $1 = epitem binary, $2 = source dir.
set -u
source "$(dirname "$0")/lib/common.bash"
cli_setup "$1"
cd "$TMP" || exit 1
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

PY=/usr/bin/python3
if ! "$PY" -c "import tifffile, numpy" 2>/dev/null; then
  echo "skipped: $PY has no tifffile/numpy (apt-get install python3-tifffile)"
  exit 77  # ctest SKIP_RETURN_CODE: shown as skipped, not passed
fi

printf '2\nLattice="6 0 0 0 8 0 0 0 12" Properties=species:S:1:pos:R:3 pbc="T T T"\nAu 1.5 2 1\nSi 4 5 3\n' > m.xyz
# Two-page stacks are the telling case: with page directories between the pages' data,
# tifffile's offset arithmetic reads directory bytes as pixels.
# multislice: pages (real, imag) per thickness (4, 8, 12 Å); diffraction: one page per thickness.
"$EPITEM" multislice m.xyz --gpts 24x32 --slice 2A --thickness-series 4,8 --out exit.tif --diffraction dp.tif \
  --quiet 2>/dev/null || fail "multislice"
"$EPITEM" multislice m.xyz --gpts 24x32 --slice 2A --out exit2.tif --quiet 2>/dev/null || fail "multislice (2 pages)"
# hrtem focal series: one page per defocus.
"$EPITEM" hrtem m.xyz --sampling 0.25A --slice 2A --defocus-series 0,20,40nm --out focal.tif --quiet 2>/dev/null ||
  fail "hrtem"
# image of an exit wave with a defocus series.
"$EPITEM" image exit2.tif --defocus-series 0,10nm --out image2.tif --quiet 2>/dev/null || fail "image"

# FILE PAGES UNIT: tifffile series vs libtiff pages vs tifffile pages.
cat > check.py <<'EOF'
import ctypes, ctypes.util, sys
import numpy as np
import tifffile

path, pages, unit = sys.argv[1], int(sys.argv[2]), sys.argv[3]
lib = ctypes.CDLL(ctypes.util.find_library("tiff") or "libtiff.so.6")
lib.TIFFOpen.restype = ctypes.c_void_p
lib.TIFFOpen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
for name in ("TIFFReadDirectory", "TIFFNumberOfStrips", "TIFFClose"):
    getattr(lib, name).argtypes = [ctypes.c_void_p]
lib.TIFFStripSize.restype = ctypes.c_int64
lib.TIFFStripSize.argtypes = [ctypes.c_void_p]
lib.TIFFReadEncodedStrip.restype = ctypes.c_int64
lib.TIFFReadEncodedStrip.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_void_p, ctypes.c_int64]

def libtiff_pages(p):
    t = lib.TIFFOpen(p.encode(), b"r")
    assert t, "libtiff cannot open " + p
    out = []
    while True:
        w, h = ctypes.c_uint32(), ctypes.c_uint32()
        lib.TIFFGetField(ctypes.c_void_p(t), 256, ctypes.byref(w))
        lib.TIFFGetField(ctypes.c_void_p(t), 257, ctypes.byref(h))
        data = b""
        for s in range(lib.TIFFNumberOfStrips(t)):
            buf = ctypes.create_string_buffer(lib.TIFFStripSize(t))
            n = lib.TIFFReadEncodedStrip(t, s, buf, len(buf))
            assert n > 0, "libtiff read error"
            data += buf.raw[:n]
        out.append(np.frombuffer(data, "<f4")[: w.value * h.value].reshape(h.value, w.value))
        if not lib.TIFFReadDirectory(t):
            break
    lib.TIFFClose(t)
    return np.stack(out)

ref = libtiff_pages(path)
with tifffile.TiffFile(path) as tf:
    series = tf.series[0].asarray()
    per_page = np.stack([pg.asarray() for pg in tf.pages])
    meta = tf.imagej_metadata or {}
errors = []
if ref.shape[0] != pages:
    errors.append(f"libtiff sees {ref.shape[0]} pages, expected {pages}")
if series.reshape(ref.shape).tobytes() != ref.tobytes():
    errors.append(f"tifffile series {series.shape} differs from libtiff pages {ref.shape}")
if per_page.tobytes() != ref.tobytes():
    errors.append("tifffile pages differ from libtiff pages")
if pages > 1 and meta.get("images") != pages:
    errors.append(f"ImageJ images={meta.get('images')}, expected {pages}")
if pages > 1 and (meta.get("slices", 1) * meta.get("frames", 1)) != pages:
    errors.append(f"ImageJ slices x frames != {pages}: {meta}")
if meta.get("unit") != unit:
    errors.append(f"ImageJ unit {meta.get('unit')!r}, expected {unit!r}")
if not np.isfinite(ref).all():
    errors.append("non-finite pixels")
print(("FAIL " if errors else "ok   ") + f"{path}: {ref.shape} {meta}" + "".join("\n  " + e for e in errors))
sys.exit(1 if errors else 0)
EOF

for spec in "exit.tif 6 A" "dp.tif 3 1/A" "exit2.tif 2 A" "focal.tif 3 A" "image2.tif 2 A"; do
  set -- $spec
  if [ ! -f "$1" ]; then
    fail "$1 was not written"
    continue
  fi
  "$PY" check.py "$1" "$2" "$3" || failures=$((failures + 1))
done

[ "$failures" -eq 0 ] || { echo "$failures failure(s)"; exit 1; }
echo "all TIFF readers agree"
