#!/usr/bin/env bash
# epitem match end to end: an experiment made by `epitem hrtem` (Fe3O4 [110], 36 Å, 44 nm,
# MTF, Poisson noise) is matched from the model and from a precomputed `hrtem` series; a [111]
# model is called a poor fit. $1 = epitem binary, $2 = source dir.
set -u
source "$(dirname "$0")/lib/common.bash"
cli_setup "$1"
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
cd "$TMP" || exit 1
"$EPITEM" convert Fe3O4 f110.xyz --zone 1,1,0 --repeat 2,2,4 >/dev/null || fail "convert 110"
"$EPITEM" convert Fe3O4 f111.xyz --zone 1,1,1 --repeat 1,1,3 >/dev/null || fail "convert 111"
# 4 slices per [110] period (2.968 Å): the experiment is 12 slices = 35.6 Å thick. Imaged with
# the envelope, the model match fits by default (hrtem's default auto would pick integrate).
"$EPITEM" hrtem f110.xyz --sampling 0.1A --slice 2.968A --thickness-series 35.6A --defocus 44nm --coherence envelope \
  --mtf gaussian:0.5 --pixel 0.15A --dose 2000 --seed 5 --out exp.tif --quiet || fail "hrtem experiment"
"$EPITEM" match exp.tif f110.xyz --sampling 0.1A --slice 2.968A --defocus 36:52nm:2nm --thickness 24:48A \
  --mtf gaussian:0.5 --rotate 2deg --scale-range 2% --out m.csv --png m.png >out.txt 2>err.txt \
  || fail "match: $(cat err.txt)"
for f in m.csv m.tif m.png m.json; do [ -s "$f" ] || fail "match wrote no $f"; done
# The default envelope model is biased against a partially coherent micrograph: said on stderr.
grep -q "rerun with --coherence integrate" err.txt || fail "no warning about the envelope model: $(cat err.txt)"
head -1 m.csv | grep -q "^tilt_x_mrad,tilt_y_mrad,thickness_A,defocus_A,ncc,chi2,chi2_reduced" || fail "CSV header"
grep -q '"fit_poor": false' m.json || fail "a correct model should not be a poor fit: $(cat out.txt)"
awk '/^defocus/ { d = $2 - 44; if (d < 0) d = -d; exit !(d < 2) }' out.txt || fail "defocus not within 2 nm of 44: $(grep ^defocus out.txt)"
awk '/^thickness/ { d = $2 - 3.5616; if (d < 0) d = -d; exit !(d < 0.2968) }' out.txt \
  || fail "thickness not within one slice of 3.56 nm: $(grep ^thickness out.txt)"
# Two-fold astigmatism 3 nm at 30°: --refine astigmatism recovers it inside its interval (two
# rounds of line searches once stopped at 2.67 ± 0.07 nm).
"$EPITEM" hrtem f110.xyz --sampling 0.1A --slice 2.968A --thickness-series 35.6A --defocus 44nm --astigmatism 3nm \
  --astigmatism-angle 30deg --coherence envelope --mtf gaussian:0.5 --pixel 0.15A --dose 2000 --seed 7 --out aexp.tif \
  --quiet || fail "hrtem astigmatic experiment"
"$EPITEM" match aexp.tif f110.xyz --sampling 0.1A --slice 2.968A --defocus 36:52nm:2nm --thickness 24:48A \
  --mtf gaussian:0.5 --refine astigmatism --out a.csv > aout.txt 2> aerr.txt || fail "match --refine astigmatism: $(cat aerr.txt)"
awk '/^astigmatism/ { d = $2 - 3; if (d < 0) d = -d; exit !(d <= $4) }' aout.txt \
  || fail "astigmatism interval misses 3 nm: $(grep ^astig aout.txt)"
awk '/^astig. angle/ { d = $3 - 30; if (d < 0) d = -d; exit !(d <= $5) }' aout.txt \
  || fail "astigmatism angle interval misses 30 deg: $(grep ^astig aout.txt)"
# The [111] model is a poor fit, said on stdout, stderr and in the sidecar.
"$EPITEM" match exp.tif f111.xyz --sampling 0.1A --defocus 36:52nm:4nm --thickness 24:48A --mtf gaussian:0.5 \
  --rotate 2deg --out w.csv >wout.txt 2>werr.txt || fail "match [111]: $(cat werr.txt)"
grep -q "POOR FIT" wout.txt || fail "[111] not called a poor fit: $(tail -2 wout.txt)"
grep -q "POOR FIT" werr.txt || fail "[111] poor fit not warned on stderr"
grep -q '"fit_poor": true' w.json || fail "[111] sidecar lacks fit_poor true"
# Against a precomputed hrtem series (no multislice): the same defocus grid point.
"$EPITEM" hrtem f110.xyz --sampling 0.1A --slice 2.968A --thickness-series 29.68,32.65,35.62,38.58A \
  --defocus-series 40,42,44,46,48nm --coherence envelope --out series.tif --quiet || fail "hrtem series"
"$EPITEM" match exp.tif --simulated series.tif --mtf gaussian:0.5 --out s.csv >sout.txt 2>serr.txt \
  || fail "match --simulated: $(cat serr.txt)"
awk '/^defocus/ { d = $2 - 44; if (d < 0) d = -d; exit !(d < 2) }' sout.txt || fail "--simulated defocus: $(grep ^defocus sout.txt)"
[ "$failures" -eq 0 ] && echo "ok: match end to end ($(grep '^#.*cells' out.txt))"
exit $((failures > 0))
