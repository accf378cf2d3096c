#!/usr/bin/env bash
# Movies are streamed: `track` and `flow` on a 2000-frame 1024² movie (an MRC 2014 stack,
# 2 GB of int8 on disk, 8 GB as float frames) must stay far below the movie's size in memory.
# Usage: movie_memory.sh EPITEM SOURCE_DIR [FRAMES]. Peak resident memory is measured by
# /usr/bin/time (GNU time) or, without it, by Python's getrusage of the child.
set -u
EPITEM=$(realpath "$1")
FRAMES=${3:-2000}
N=1024
BOUND_MB=1024
TMP=$(mktemp -d)
PY=/usr/bin/python3; [ -x "$PY" ] || PY=python3  # Debian python3-numpy lives in the system Python
trap 'rm -rf "$TMP"' EXIT
need_mb=$((FRAMES * N * N / 1048576 + 200))
free_mb=$(df -Pm "$TMP" | awk 'NR==2 {print $4}')
if [ "$free_mb" -lt "$need_mb" ]; then
  echo "skip: $free_mb MB free in $TMP, the movie needs $need_mb MB"
  exit 0
fi
"$PY" - "$TMP/movie.mrc" "$FRAMES" "$N" <<'PY' || exit 1
# An in-situ SAED-like movie: direct beam, six spots switching on and off, shot noise.
import struct, sys
import numpy as np
path, frames, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(1)
y, x = np.mgrid[0:n, 0:n].astype(np.float32)
cx, cy = n / 2 + 13.3, n / 2 - 7.8
base = 5 + 60 * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * 6.0 ** 2))
spots = []
for k in range(6):
    a = np.pi / 3 * k + 0.2
    spots.append(50 * np.exp(-((x - cx - 150 * np.cos(a)) ** 2 + (y - cy - 150 * np.sin(a)) ** 2) / (2 * 2.5 ** 2)))
noise = [rng.poisson(4, size=(n, n)).astype(np.float32) - 4 for _ in range(8)]
header = bytearray(1024)
struct.pack_into("<10i", header, 0, n, n, frames, 0, 0, 0, 0, n, n, frames)
struct.pack_into("<3f", header, 40, n * 0.01, n * 0.01, frames * 1.0)  # cell [Å]
struct.pack_into("<3f3i", header, 52, 90, 90, 90, 1, 2, 3)
struct.pack_into("<4s", header, 208, b"MAP ")
header[212:214] = b"\x44\x44"
struct.pack_into("<i", header, 108, 20140)
with open(path, "wb") as f:
    f.write(header)
    for i in range(frames):
        frame = base + noise[i % 8]
        for k, s in enumerate(spots):
            if (i // (7 + k)) % 2 == 0:
                frame = frame + s
        f.write(np.clip(frame, 0, 127).astype(np.int8).tobytes())
PY
peak_kb() {  # runs "$@", prints the child's peak RSS in kB; fails if the command fails
  if [ -x /usr/bin/time ]; then
    /usr/bin/time -f "%M" -o "$TMP/rss" "$@" >"$TMP/out" 2>"$TMP/err" || { cat "$TMP/err"; return 1; }
    tail -1 "$TMP/rss"
  else
    "$PY" -c 'import resource,subprocess,sys; r=subprocess.run(sys.argv[2:],stdout=open(sys.argv[1]+"/out","w"),stderr=open(sys.argv[1]+"/err","w")); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(r.returncode)' "$TMP" "$@" || { cat "$TMP/err"; return 1; }
  fi
}
failures=0
movie_mb=$((FRAMES * N * N * 4 / 1048576))
for cmd in track flow; do
  if [ $cmd = track ]; then
    args=(track "$TMP/movie.mrc" --out "$TMP/tracks.csv" --fps 10 --pixel-size 0.005/A --quiet)
  else
    args=(flow "$TMP/movie.mrc" --out "$TMP/flow.csv" --fps 10 --pixel-size 0.1A --quiet)
  fi
  start=$(date +%s)
  if kb=$(peak_kb "$EPITEM" "${args[@]}"); then
    mb=$((kb / 1024))
    echo "$cmd: $FRAMES frames of ${N}², peak RSS $mb MB (frames as float: $movie_mb MB; bound $BOUND_MB MB), $(( $(date +%s) - start )) s"
    [ "$mb" -le "$BOUND_MB" ] || { echo "FAIL: $cmd peak RSS $mb MB > $BOUND_MB MB"; failures=$((failures + 1)); }
  else
    echo "FAIL: $cmd failed on the movie"
    failures=$((failures + 1))
  fi
done
exit $failures
