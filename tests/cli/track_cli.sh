#!/usr/bin/env bash
# `epitem track` end to end on a 6-frame movie made with `epitem saed`: Fe3O4 [110] in frames
# 0-2, NiFe [110] in frames 3-5 (noise-free, direct beam at (256, 256), 0.004 1/Å per px).
# Every track must be indexed to the phase actually present, live exactly 3 frames (0.3 s at
# 10 fps), and the centre must come out at the pattern origin. Args: $1 = epitem, $2 = source dir.
set -eu
source "$(dirname "$0")/lib/common.bash"
cli_setup "$1"
fail() { echo "FAIL: $*"; exit 1; }
cd "$TMP"
mkdir movie
for i in 1 2 3; do
  "$EPITEM" saed Fe3O4 --zone 1,1,0 --out fe.csv --image movie/frame_$i.tif --size 512 --pixel 0.004 --gmax 0.9 -q
done
for i in 4 5 6; do
  "$EPITEM" saed NiFe --zone 1,1,0 --out ni.csv --image movie/frame_$i.tif --size 512 --pixel 0.004 --gmax 0.9 -q
done
"$EPITEM" track movie --fps 10 --ramp 400:1/s --pixel-size 0.004/A --phase Fe3O4 --phase NiFe \
  --beam-stop none --out tracks.csv --png lifespans.png --profile profile.csv --detections det.csv > log.txt \
  || fail "epitem track failed: $(cat log.txt)"
for f in tracks.csv tracks_summary.csv tracks.json lifespans.png profile.csv profile_peaks.csv profile.tif \
         profile.png det.csv; do
  [ -s "$f" ] || fail "missing output $f"
done
tr -d ' \n' < tracks.json | grep -o '"centre_px":\[[^]]*\]' | grep -o '[-0-9.e+]*,[-0-9.e+]*' | \
  awk -F, '{ if (($1 - 256)^2 + ($2 - 256)^2 > 0.01) exit 1 }' || fail "centre not (256, 256): $(grep -A2 centre_px tracks.json)"
# Columns: 1 id, 2 first, 3 last, 6 lifespan_s, 14 phase, 15 hkl, 16 status, 18 covariate_mean.
awk -F, 'NR > 2 {
  n++
  if ($16 == "unindexed") bad = bad " unindexed:" $1
  if ($6 != 0.3) bad = bad " lifespan:" $1 "=" $6
  if ($16 == "indexed" && $14 == "Fe3O4" && !($2 == 0 && $3 == 2)) bad = bad " fe3o4-frames:" $1
  if ($16 == "indexed" && $14 == "NiFe" && !($2 == 3 && $3 == 5)) bad = bad " nife-frames:" $1
  if ($16 == "indexed" && $14 == "Fe3O4") fe++
  if ($16 == "indexed" && $14 == "NiFe") ni++
  if ($14 == "NiFe" && $15 == "111") ni111++
  if ($14 == "Fe3O4" && $15 == "111" && ($18 < 400.09 || $18 > 400.11)) bad = bad " covariate:" $18
} END {
  if (bad != "") { print "bad tracks:" bad; exit 1 }
  # [110] zone: 4 Fe3O4 {111} and 4 NiFe {111} spots; dozens of Fe3O4 spots out to 0.9 1/Å.
  if (ni111 != 4 || fe < 30 || ni < 6) { print "counts: NiFe 111 " ni111 ", Fe3O4 " fe ", NiFe " ni; exit 1 }
}' tracks.csv || fail "track table wrong"
grep -q '^Fe3O4,111,400\.[0-9]*,400\.[0-9]*,4,' tracks_summary.csv || fail "summary lacks the Fe3O4 {111} row: $(cat tracks_summary.csv)"
# The profile peaks of frame 0 include Fe3O4 {111} (d = 4.847 Å).
grep -q '^0,.*,Fe3O4,111,indexed' profile_peaks.csv || fail "no Fe3O4 111 peak in the profile of frame 0"
echo "ok"
