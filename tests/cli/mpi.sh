#!/usr/bin/env bash
# MPI (docs/mpi.md): `mpirun -n 3 epitem hrtem --phonons 6`, defocus/thickness/tilt series with
# and without phonons, `multislice --phonons`, `saed --method multislice`, `flow`, `phasemap` and
# `track` of a movie write the same TIFF pixels, CSV and PNG bytes as one process, sidecars equal except
# timing and provenance fields; a rank that cannot read its model or a frame stops all ranks
# with one message and no output. Skipped (77) without mpirun or without an MPI build.
# $1 = epitem binary, $2 = source dir.
set -u
EPITEM="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
SRC="$(cd "${2:-$(dirname "$0")/../..}" && pwd)"
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
skip = ("seconds", "provenance", "mpi", "peak_rss_bytes", "command_line", "start", "threads", "output",
        "detection_tracking_s", "frames_per_s")
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
  python3 -c "import sys; sys.path.insert(0, '$SRC/tests/cli/lib'); import tiff_pages; sys.stdout.write(tiff_pages.pixel_bytes(sys.argv[1]).hex())" "$1"
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
SAED=(saed Fe3O4 --zone 1,1,0 --method multislice --phonons 3 --phonon-seed 2 --repeat 1,1 --thickness-range 1nm,3nm
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

# Static series (no phonons): pages (tilt, thickness, defocus) split over ranks in blocks.
run_pair static-defocus --gpts 48 --slice 1.3575A --defocus-series -200,-100,0,100A --threads 1
run_pair static-thickness --gpts 48 --slice 1.3575A --thickness-series 2.7A,5.4A --defocus-series -100,0A \
  --tilt-series 0,1mrad --threads 1

# same_outputs NAME FILES -- EPITEM-ARGS...: one process in one/, 3 ranks in three/; TIFF pixels,
# CSV/PNG bytes and sidecars (but timing) of FILES equal, nothing printed with -q.
same_outputs() {
  local name=$1 files=() f
  shift
  while [ "$1" != "--" ]; do files+=("$1"); shift; done
  shift
  (cd one && "$EPITEM" "$@") > "$name.1.log" 2>&1 || { fail "$name (1 process): $(cat "$name.1.log")"; return; }
  (cd three && "${MPIRUN[@]}" "$EPITEM" "$@") > "$name.3.log" 2>&1 || { fail "$name (3 ranks): $(tail -5 "$name.3.log")"; return; }
  for f in "${files[@]}"; do
    case $f in
      *.tif) [ -n "$(tiff_pixels "one/$f")" ] && [ "$(tiff_pixels "one/$f")" = "$(tiff_pixels "three/$f")" ] ;;
      *.json) same_sidecar "one/$f" "three/$f" ;;
      *) cmp -s "one/$f" "three/$f" ;;
    esac && ok "$name: $f equal, 3 ranks vs 1" || fail "$name: $f differs"
  done
  [ "$(grep -c . "$name.3.log")" -eq 0 ] && ok "$name: 3 ranks print nothing with -q" || fail "$name: output $(cat "$name.3.log")"
}
same_outputs multislice exit.tif dp.tif exit.json -- multislice ../si.xyz --gpts 48 --slice 1.3575A --phonons 4 \
  --phonon-seed 5 --thickness-series 2.7A --diffraction dp.tif --out exit.tif --threads 1 -q

# A movie folder of 8 float32 frames (0.5 Å/px): a lattice drifting +1 px/frame along x and a
# particle with its own lattice moving (1, 1) px/frame, Gaussian noise.
python3 - movie 96 8 << 'PY'
import math, os, random, struct, sys
out, n, frames = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
os.makedirs(out)
rng, tp = random.Random(7), math.pi
for t in range(frames):
    px = []
    for y in range(n):
        for x in range(n):
            if (x - n / 2 + 4 - t) ** 2 + (y - n / 2 + 4 - t) ** 2 < (n / 6) ** 2:
                a, b = x - 2 * t, y - t
                v = math.cos(tp * (0.2196 * a + 0.1814 * b)) + math.cos(tp * (-0.2005 * a + 0.2387 * b)) + 0.5
            else:
                v = math.cos(tp * 0.25 * (x - t)) + math.cos(tp * 0.25 * y)
            px.append(v + rng.gauss(0, 0.2))
    data = struct.pack('<%df' % (n * n), *px)
    tags = [(256, 4, n), (257, 4, n), (258, 3, 32), (259, 3, 1), (262, 3, 1), (273, 4, 8), (277, 3, 1),
            (278, 4, n), (279, 4, len(data)), (339, 3, 3)]
    b = b'II' + struct.pack('<HI', 42, 8 + len(data)) + data + struct.pack('<H', len(tags))
    for tag, typ, val in tags:
        b += struct.pack('<HHI', tag, typ, 1) + struct.pack('<HH' if typ == 3 else '<I', *((val, 0) if typ == 3 else (val,)))
    open(os.path.join(out, 'frame_%02d.tif' % t), 'wb').write(b + struct.pack('<I', 0))
PY
same_outputs flow flow.csv flow.png speed.tif flow.json -- flow ../movie --pixel-size 0.5A --fps 10 --out flow.csv \
  --png flow.png --field speed.tif --threads 1 -q
PARTICLE="particle=0.2196,-0.1814;-0.2005,-0.2387"
same_outputs phasemap areas.csv overlay.png maps.tif areas.json -- phasemap ../movie --pixel-size 0.5A \
  --phase "$PARTICLE" --fps 10 --out areas.csv --png overlay.png --maps maps.tif --threads 1 -q

# Frame 5 of 8 is unreadable (3 ranks: phasemap's rank 1 maps it; flow's ranks 1 and 2 read it,
# the lowest failing rank reports): one message naming rank 1 and the file, non-zero, no output.
cp -r movie badmovie && printf "not a tiff" > badmovie/frame_04.tif
for cmd in flow phasemap; do
  args=(--pixel-size 0.5A --fps 10 --out "bad_$cmd.csv" --png "bad_$cmd.png" --threads 1 -q)
  [ $cmd = phasemap ] && args+=(--phase "$PARTICLE")
  "${MPIRUN[@]}" "$EPITEM" $cmd badmovie "${args[@]}" > "bad_$cmd.log" 2>&1
  rc=$?
  n_errors=$(grep -c '^error' "bad_$cmd.log")
  if [ $rc -ne 0 ] && [ "$n_errors" -eq 1 ] && grep -q "^error: rank 1 of 3: badmovie/frame_04.tif" "bad_$cmd.log" \
      && ! ls "bad_$cmd".* | grep -qv log; then
    ok "$cmd: unreadable frame on rank 1: exit $rc, one message, no output"
  else
    fail "$cmd: unreadable frame: exit $rc, $n_errors error lines, files: $(ls "bad_$cmd".* | tr '\n' ' '): $(cat "bad_$cmd.log")"
  fi
done

# track of a 12-frame movie (a folder of `epitem saed` frames: Fe3O4 [110] in frames 0-5, NiFe
# [110] in 6-11): frames split over the ranks (each reads only its own), rank 0 gathers the spots
# in frame order, finds the geometry and links. Every output as one process.
mkdir trackmovie
for i in 01 02 03 04 05 06 07 08 09 10 11 12; do
  phase=Fe3O4; [ "${i#0}" -gt 6 ] && phase=NiFe
  "$EPITEM" saed $phase --zone 1,1,0 --out trk.csv --image trackmovie/frame_$i.tif --size 256 --pixel-size-inv-A 0.006 \
    --gmax 0.7 -q || fail "saed frame $i"
done
same_outputs track tracks.csv tracks_summary.csv det.csv lifespans.png profile.csv profile_peaks.csv profile.tif \
  profile.png tracks.json -- track ../trackmovie --fps 10 --ramp 400:1/s --phase Fe3O4 --phase NiFe \
  --beam-stop none --out tracks.csv --detections det.csv --png lifespans.png --profile profile.csv --threads 1 -q
# The tester's scenario (beam stop with a rod, halo, elliptical distortion, Poisson noise): the
# mask, Friedel centre and distortion come from frames spread over all ranks.
if /usr/bin/python3 -c 'import numpy, tifffile' 2> /dev/null; then
  /usr/bin/python3 "$SRC/tests/scenarios/saed_movie_gen.py" --seed 7 --out scenario --frames 12 > /dev/null
  same_outputs track-scenario st.csv st_summary.csv st_det.csv st.json -- track ../scenario.tif --fps 10 \
    --pixel-size 0.004/A --phase Fe3O4 --phase NiFe --out st.csv --detections st_det.csv --threads 1 -q
else
  echo "skip [track-scenario: /usr/bin/python3 lacks numpy or tifffile]"
fi
python3 -c "import json,sys; m=json.load(open('three/tracks.json'))['results']['mpi']; sys.exit(m['ranks'] != 3)" 2> /dev/null \
  && ok "track: sidecar records 3 ranks" || fail "track: sidecar has no mpi record with 3 ranks"
# Frame 5 of 12 (index 4, rank 1's) is not a TIFF: one message naming rank 1 and the file, exit 1,
# no output.
cp -r trackmovie badtrack && printf "not a tiff" > badtrack/frame_05.tif
"${MPIRUN[@]}" "$EPITEM" track badtrack --fps 10 --phase Fe3O4 --beam-stop none --out bad_track.csv \
  --detections bad_track_det.csv --threads 1 -q > bad_track.log 2>&1
rc=$?
n_errors=$(grep -c '^error' bad_track.log)
if [ $rc -ne 0 ] && [ "$n_errors" -eq 1 ] && grep -q "^error: rank 1 of 3: badtrack/frame_05.tif" bad_track.log \
    && ! ls bad_track* | grep -qv log; then
  ok "track: unreadable frame on rank 1: exit $rc, one message, no output"
else
  fail "track: unreadable frame: exit $rc, $n_errors error lines, files: $(ls bad_track* | tr '\n' ' '): $(cat bad_track.log)"
fi

# match: the map's (tilt, thickness) rows split over the ranks in blocks, rank 0 finds the geometry
# first and refines at the end; every output as one process.
"$EPITEM" convert Fe3O4 f110.xyz --zone 1,1,0 --repeat 2,2,4 -q || fail "convert Fe3O4"
"$EPITEM" hrtem f110.xyz --sampling 0.1A --slice 2.968A --thickness-series 35.6A --defocus 44nm --coherence envelope \
  --mtf gaussian:0.5 --pixel 0.15A --dose 2000 --seed 5 --out mexp.tif -q || fail "match experiment"
MATCH=(match ../mexp.tif ../f110.xyz --sampling 0.1A --slice 2.968A --defocus 40:48nm:2nm --thickness 30:42A
       --mtf gaussian:0.5 --rotate 1deg --out m.csv --png m.png --threads 1 -q)
if (cd one && "$EPITEM" "${MATCH[@]}") > match.1.log 2>&1 && (cd three && "${MPIRUN[@]}" "$EPITEM" "${MATCH[@]}") > match.3.log 2>&1; then
  for f in m.csv m.png; do cmp -s "one/$f" "three/$f" && ok "match: $f equal, 3 ranks vs 1" || fail "match: $f differs"; done
  [ "$(tiff_pixels one/m.tif)" = "$(tiff_pixels three/m.tif)" ] && ok "match: m.tif pixels equal" || fail "match: m.tif pixels differ"
  # imaging_ffts counts the transforms made, and a rank forms its first row's spectra anew.
  python3 - one/m.json three/m.json << 'PY' && ok "match: sidecars equal but timing and imaging_ffts" || fail "match: sidecars differ"
import json, sys
def clean(x):
    if isinstance(x, dict):
        return {k: clean(v) for k, v in x.items()
                if not any(s in k for s in ("seconds", "provenance", "mpi", "peak_rss_bytes", "imaging_ffts", "output"))}
    return [clean(v) for v in x] if isinstance(x, list) else x
a, b = (clean(json.load(open(f))) for f in sys.argv[1:3])
sys.exit(a != b)
PY
  cmp -s match.1.log match.3.log && ok "match: stdout as one process (the estimates)" || fail "match: stdout differs"
  python3 -c "import json,sys; m=json.load(open('three/m.json'))['results']['mpi']; sys.exit(m['ranks'] != 3)" 2> /dev/null \
    && ok "match: sidecar records 3 ranks" || fail "match: sidecar has no mpi record with 3 ranks"
else
  fail "match runs: $(tail -3 match.1.log match.3.log)"
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
