#!/usr/bin/env bash
# MPI (docs/mpi.md): `mpirun -n 3 epitem hrtem --phonons 6` and a defocus series write the same
# TIFF bytes as one process, sidecars equal except timing and provenance fields; a rank that
# cannot read its model stops all ranks with one message and no output. Skipped (77) without
# mpirun or without an MPI build. $1 = epitem binary, $2 = source dir.
set -u
EPITEM="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
command -v mpirun > /dev/null || { echo "SKIP: mpirun not found (apt-get install openmpi-bin)"; exit 77; }
"$EPITEM" -V | grep -q '^  mpi none' && { echo "SKIP: epitem built without MPI (EPITEM_MPI=OFF)"; exit 77; }
command -v python3 > /dev/null || { echo "SKIP: python3 not found"; exit 77; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
# Sanitizer build (EPITEM_SANITIZE): Open MPI keeps its own allocations until exit; not our leaks.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
# One FFTW wisdom for every run: all processes then use the same FFT plans (same rounding).
export XDG_CACHE_HOME="$DIR/cache"
cd "$DIR" || exit 1
fails=0
ok() { echo "ok   [$1]"; }
fail() { echo "FAIL [$1]"; fails=$((fails + 1)); }
MPIRUN=(mpirun --allow-run-as-root --oversubscribe -n 3)

# Sidecars equal except timing, provenance and the mpi record itself.
same_sidecar() {
  python3 - "$1" "$2" << 'PY'
import json, sys
skip = ("seconds", "provenance", "mpi", "peak_rss_bytes", "command_line", "start", "threads", "output")
def clean(x):
    if isinstance(x, dict):
        return {k: clean(v) for k, v in x.items() if not any(s in k for s in skip)}
    if isinstance(x, list):
        return [clean(v) for v in x]
    return x
a, b = (clean(json.load(open(f))) for f in sys.argv[1:3])
if a != b:
    for k in sorted(set(a) | set(b)):
        if a.get(k) != b.get(k):
            print("differs:", k, str(a.get(k))[:200], "|", str(b.get(k))[:200])
    sys.exit(1)
PY
}

"$EPITEM" convert Si si.xyz --zone 0,0,1 --repeat 1,1,3 -q || fail "convert Si"
# The float32 pixel bytes of every page (the TIFF's embedded sidecar holds timings, so the
# whole files differ there; the sidecars are compared separately).
tiff_pixels() {
  python3 - "$1" << 'PY'
import struct, sys
d = open(sys.argv[1], 'rb').read()
e = '<' if d[:2] == b'II' else '>'
off, out = struct.unpack(e + 'I', d[4:8])[0], []
while off:
    n = struct.unpack(e + 'H', d[off:off + 2])[0]
    tags = {}
    for i in range(n):
        tag, typ, cnt, val = struct.unpack(e + 'HHII', d[off + 2 + 12 * i:off + 14 + 12 * i])
        fmt = 'H' if typ == 3 else 'I'
        if cnt == 1:
            tags[tag] = [struct.unpack(e + fmt, d[off + 10 + 12 * i:off + 10 + 12 * i + struct.calcsize(fmt)])[0]]
        elif tag in (273, 279):
            tags[tag] = list(struct.unpack(e + fmt * cnt, d[val:val + struct.calcsize(fmt) * cnt]))
    out += [d[o:o + c] for o, c in zip(tags[273], tags[279])]
    off = struct.unpack(e + 'I', d[off + 2 + 12 * n:off + 6 + 12 * n])[0]
sys.stdout.write(b''.join(out).hex())
PY
}

mkdir one three
run_pair() {  # run_pair NAME ARGS...: one process, then 3 ranks, same file names in two folders
  local name=$1; shift
  (cd one && "$EPITEM" hrtem ../si.xyz "$@" --out "$name.tif" --png "$name.png" -q) > "$name.1.log" 2>&1 \
    || { fail "$name (1 process): $(cat "$name.1.log")"; return; }
  (cd three && "${MPIRUN[@]}" "$EPITEM" hrtem ../si.xyz "$@" --out "$name.tif" --png "$name.png" -q) > "$name.3.log" 2>&1 \
    || { fail "$name (3 ranks): $(tail -5 "$name.3.log")"; return; }
  local p1 p3
  p1=$(tiff_pixels "one/$name.tif"); p3=$(tiff_pixels "three/$name.tif")
  [ -n "$p1" ] && [ "$p1" = "$p3" ] && ok "$name: TIFF pixel bytes equal, 3 ranks vs 1 (${#p1} hex digits)" \
    || fail "$name: TIFF pixel bytes differ"
  cmp -s "one/$name.png" "three/$name.png" && ok "$name: PNG bytes equal" || fail "$name: PNG bytes differ"
  same_sidecar "one/$name.json" "three/$name.json" && ok "$name: sidecars equal but timing" || fail "$name: sidecars differ"
  python3 -c "import json,sys; m=json.load(open('three/$name.json'))['results']['mpi']; sys.exit(m['ranks'] != 3)" 2> /dev/null \
    && ok "$name: sidecar records 3 ranks" || fail "$name: sidecar has no mpi record with 3 ranks"
  [ "$(grep -c . "$name.3.log")" -eq 0 ] && ok "$name: 3 ranks print nothing with -q" || fail "$name: output $(cat "$name.3.log")"
}
run_pair phonons --gpts 48 --slice 1.3575A --phonons 6 --phonon-seed 3 --threads 1
run_pair defocus --gpts 48 --slice 1.3575A --phonons 4 --defocus-series -200,-100,0,100A --threads 1

# saed --method multislice: phonon configurations split over ranks; CSV bytes and TIFF pixels as
# one process (rank 0 sums the diffraction patterns in configuration order).
SAED=(saed Fe3O4 --zone 1,1,0 --method multislice --phonons 3 --phonon-seed 2 --repeat 1,1 --thickness 3nm
      --sampling 0.1A --slice 1A --threads 1 --out sms.csv --image sms.tif -q)
if (cd one && "$EPITEM" "${SAED[@]}") > sms.1.log 2>&1 && (cd three && "${MPIRUN[@]}" "$EPITEM" "${SAED[@]}") > sms.3.log 2>&1; then
  cmp -s one/sms.csv three/sms.csv && ok "saed multislice: CSV bytes equal, 3 ranks vs 1" || fail "saed multislice: CSV differs"
  [ "$(tiff_pixels one/sms.tif)" = "$(tiff_pixels three/sms.tif)" ] && ok "saed multislice: TIFF pixel bytes equal" \
    || fail "saed multislice: TIFF pixels differ"
  same_sidecar one/sms.json three/sms.json && ok "saed multislice: sidecars equal but timing" || fail "saed multislice: sidecars differ"
  python3 -c "import json,sys; m=json.load(open('three/sms.json'))['results']['mpi']; sys.exit(m['ranks'] != 3)" 2> /dev/null \
    && ok "saed multislice: sidecar records 3 ranks" || fail "saed multislice: sidecar has no mpi record with 3 ranks"
  [ "$(grep -c . sms.3.log)" -eq 0 ] && ok "saed multislice: 3 ranks print nothing with -q" || fail "saed multislice: output $(cat sms.3.log)"
else
  fail "saed multislice runs: $(tail -3 sms.1.log sms.3.log)"
fi

# Rank 2 cannot read its model (as on a node without the file): one message, non-zero, no output.
mpirun --allow-run-as-root --oversubscribe -n 2 "$EPITEM" hrtem si.xyz --gpts 48 --phonons 3 --out bad.tif -q \
  : -n 1 "$EPITEM" hrtem missing.xyz --gpts 48 --phonons 3 --out bad.tif -q > bad.log 2>&1
rc=$?
n_errors=$(grep -c '^error' bad.log)
if [ $rc -ne 0 ] && [ "$n_errors" -eq 1 ] && grep -q 'rank 2 of 3.*missing.xyz' bad.log && ! ls bad.* 2> /dev/null | grep -qv 'bad.log'; then
  ok "failing rank: exit $rc, one message, no output"
else
  fail "failing rank: exit $rc, $n_errors error lines, files: $(ls bad.* | tr '\n' ' '): $(cat bad.log)"
fi

[ $fails -eq 0 ] || { echo "$fails failure(s)"; exit 1; }
