#!/usr/bin/python3
"""Scores `epitem track` output against the truth of saed_movie_gen.py (independent of epitem).
usage: saed_movie_score.py PREFIX TRACKS.csv DETECTIONS.csv [TOL_PX=2] [-v]
Prints one line of `name=value` metrics:
  centre_err_px  distance of the JSON sidecar's centre_px from the true centre
  recall         true spot-frames with a detection within TOL_PX (one-to-one per frame)
  lifespan_ok    true spots whose best track starts and ends within ±1 frame of the truth
  phase_right    tracks of a true spot labelled `indexed` with the true phase
  ambiguous      tracks of a true spot labelled `ambiguous` (counted neither right nor wrong)
  phase_wrong    tracks of a true spot labelled `indexed` with another phase
  spurious       tracks with no detection matching any true spot
"""
import sys, json, csv, math, collections

pre, trk_f, det_f = sys.argv[1:4]
TOL = float(sys.argv[4]) if len(sys.argv) > 4 and sys.argv[4] != '-v' else 2.0
meta = json.load(open(pre + '_meta.json'))


def rd(f):
    return list(csv.DictReader(l for l in open(f) if not l.startswith('#')))


truth = rd(pre + '_truth.csv')
spots = {int(s['spot_id']): s for s in rd(pre + '_spots.csv')}
dets = rd(det_f)
trks = {int(t['track_id']): t for t in rd(trk_f)}
js = json.load(open(trk_f.replace('.csv', '.json')))['results']
cx, cy = js['centre_px']
cerr = math.hypot(cx - meta['centre_x'], cy - meta['centre_y'])
byf = collections.defaultdict(list)
for t in truth:
    byf[int(t['frame'])].append(t)
dbyf = collections.defaultdict(list)
for d in dets:
    dbyf[int(d['frame'])].append(d)
match = {}  # id(detection row) -> true spot id
matched_sf = set()
for fr in set(byf) | set(dbyf):
    pairs = []
    for i, d in enumerate(dbyf[fr]):
        for t in byf[fr]:
            dd = math.hypot(float(d['x_px']) - float(t['x_px']), float(d['y_px']) - float(t['y_px']))
            if dd <= TOL:
                pairs.append((dd, i, int(t['spot_id'])))
    pairs.sort()
    ud, us = set(), set()
    for dd, i, s in pairs:
        if i in ud or s in us:
            continue
        ud.add(i)
        us.add(s)
        match[id(dbyf[fr][i])] = s
        matched_sf.add((fr, s))
recall = len(matched_sf) / max(len(truth), 1)
tr_spots = collections.defaultdict(collections.Counter)
for d in dets:
    tid = int(d['track_id']) if d['track_id'] not in ('', '-1') else None
    if tid is not None:
        tr_spots[tid][match.get(id(d))] += 1
tr_truth, spurious = {}, 0
for tid in trks:
    best = [(n, s) for s, n in tr_spots.get(tid, {}).items() if s is not None]
    if not best:
        spurious += 1
        continue
    tr_truth[tid] = max(best)[1]
best_tr = {}
for tid, s in tr_truth.items():
    n = tr_spots[tid][s]
    if s not in best_tr or n > best_tr[s][0]:
        best_tr[s] = (n, tid)
life_ok = 0
for s, sp in spots.items():
    if s in best_tr:
        t = trks[best_tr[s][1]]
        if abs(int(t['first_frame']) - int(sp['birth'])) <= 1 and abs(int(t['last_frame']) - int(sp['death'])) <= 1:
            life_ok += 1
right = amb = wrong = 0
for tid, s in tr_truth.items():
    t, sp = trks[tid], spots[s]
    if t['index_status'] == 'indexed':
        if t['phase'] == sp['phase']:
            right += 1
        else:
            wrong += 1
            if '-v' in sys.argv:
                print('WRONG track', tid, t['phase'], t['hkl'], 'truth', sp['phase'], sp['family'], file=sys.stderr)
    elif t['index_status'] == 'ambiguous':
        amb += 1
nt = max(len(tr_truth), 1)
print('centre_err_px=%.3f recall=%.3f lifespan_ok=%.3f phase_right=%.3f ambiguous=%.3f phase_wrong=%.3f spurious=%.3f' % (
    cerr, recall, life_ok / max(len(spots), 1), right / nt, amb / nt, wrong / nt, spurious / max(len(trks), 1)))
