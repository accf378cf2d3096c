#!/usr/bin/env bash
# --coherence auto (the default of image and hrtem): integrate unless its imaging FFTs exceed
# 50x the multislice's (docs/coherence.md). $1 = epitem binary, $2 = source dir.
set -u
EPITEM="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
cd "$DIR"
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
mean() { grep -o '"mean": [-0-9.e]*' "$1" | head -1 | cut -d' ' -f2; }

# A 4 nm Fe3O4 [110] slab: strong enough that the envelope visibly loses intensity.
"$EPITEM" multislice Fe3O4 --zone 1,1,0 --repeat 2,2,20 --gpts 128 --out exit.tif --quiet || fail "multislice"
"$EPITEM" image exit.tif --out auto.tif --quiet 2>err.txt || fail "image (default coherence)"
[ -s err.txt ] && fail "auto chose integrate but warned: $(cat err.txt)"
"$EPITEM" image exit.tif --out env.tif --coherence envelope --quiet || fail "image --coherence envelope"
"$EPITEM" image exit.tif --out int.tif --coherence integrate --quiet || fail "image --coherence integrate"
grep -q '"coherence_model": "integrate"' auto.json || fail "default (auto) did not choose integrate"
grep -q '"coherence_rule": "auto: integrate' auto.json || fail "sidecar lacks the auto rule"
grep -q '"coherence_rule": "given (--coherence envelope)"' env.json || fail "sidecar lacks the given rule"
a=$(mean auto.json) e=$(mean env.json) i=$(mean int.json)
# auto must reproduce integrate (same model, same nodes) and differ from the envelope, whose
# mean is lower for this strong object (scattered intensity lost outside E_t*E_s).
awk -v a="$a" -v i="$i" 'BEGIN { exit !(a - i < 1e-6 && i - a < 1e-6) }' || fail "auto mean $a != integrate mean $i"
awk -v e="$e" -v i="$i" 'BEGIN { exit !(i - e > 0.05) }' || fail "envelope mean $e not below integrate mean $i by > 0.05"

# A long defocus series costs more than 50x the multislice: envelope, with a warning saying why.
"$EPITEM" image exit.tif --out series.tif --defocus-series "$(seq -s, 0 5 120)nm" --dry-run \
  >series.txt 2>series_err.txt || fail "dry run of a defocus series"
grep -q "coherence_model = envelope" series.txt || fail "25-value series did not fall back to envelope"
grep -q "warning: --coherence auto chose envelope: integrate would need [0-9]* FFTs" series_err.txt \
  || fail "no warning for the envelope fallback: $(cat series_err.txt)"

# hrtem resolves auto against its own multislice; --help states the rule.
"$EPITEM" hrtem --help | grep -q "auto (default in image and hrtem)" || fail "hrtem --help lacks the auto rule"
"$EPITEM" image --help | grep -q "50x the multislice" || fail "image --help lacks the factor"

[ $fails -eq 0 ] && echo "coherence_auto: all checks passed (auto mean $a = integrate $i; envelope $e)"
exit $((fails > 0))
