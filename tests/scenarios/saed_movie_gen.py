#!/usr/bin/python3
"""Synthetic in-situ SAED movie of NiFe nanoparticles on Fe3O4, with known truth.
Written blind by an independent tester (it shares no code or conventions with epitem beyond
the documented image axes); keep it independent: score epitem against it, never tune it to epitem.
usage: /usr/bin/python3 saed_movie_gen.py --seed 1 --out s1 [--frames 24] [--size 512] [--dose 1.0]
         [--bg 80] [--offset 30] [--ellip 1.01] [--ptrue 0.00408] [--neg 0] [--rings 0]
Writes OUT.tif (multi-page float32, ImageJ), OUT_truth.csv (one row per spot per alive frame),
OUT_spots.csv (one row per spot), OUT_meta.json (centre, distortion, true pixel size).
Geometry: x = column (px from left), y = row (px from top); reciprocal vectors with y UP.
"""
import argparse, json, itertools, math
import numpy as np, tifffile

ap = argparse.ArgumentParser()
ap.add_argument('--seed', type=int, default=1)
ap.add_argument('--out', default='s1')
ap.add_argument('--frames', type=int, default=24)
ap.add_argument('--size', type=int, default=512)
ap.add_argument('--dose', type=float, default=1.0, help='count scale (lower = noisier)')
ap.add_argument('--bg', type=float, default=80.0, help='diffuse background counts at r=60px')
ap.add_argument('--offset', type=float, default=30.0, help='centre offset from frame centre [px]')
ap.add_argument('--ellip', type=float, default=1.01)
ap.add_argument('--ptrue', type=float, default=0.00408, help='true reciprocal px [1/A]')
ap.add_argument('--neg', type=float, default=0.0, help='subtract this constant after noise')
ap.add_argument('--rings', type=float, default=0.0, help='amplitude of weak Fe3O4 powder rings')
ap.add_argument('--nrandom', type=int, default=40, help='random individual reflections')
a = ap.parse_args()
rng = np.random.default_rng(a.seed)
N, F = a.size, a.frames

A_FE3O4, A_NIFE = 8.396, 3.5523
FE_FAM = ['111','220','311','222','400','331','422','511','333','440','531','442','620','533']  # 622 left out (0.8% from NiFe 220)
NI_FAM = ['111','200','220']
GMAX = 0.80

def fam_of(h, k, l):
    return ''.join(str(x) for x in sorted((abs(h), abs(k), abs(l)), reverse=True))

def fe_allowed(h, k, l):
    return fam_of(h, k, l) in FE_FAM
def ni_allowed(h, k, l):
    return fam_of(h, k, l) in NI_FAM

ang = rng.uniform(20, 160)
off = a.offset * np.array([math.cos(math.radians(ang)), math.sin(math.radians(ang))])
cx, cy = N / 2 + off[0], N / 2 - off[1]
th = rng.uniform(0, 180)  # major axis of the distortion, CCW from +x, y up
t = math.radians(th)
R = np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
D = R @ np.diag([a.ellip, 1.0]) @ R.T

def to_px(gx, gy):
    v = D @ np.array([gx, gy]) / a.ptrue
    return cx + v[0], cy - v[1]

# beam stop: disc at the centre + rod to one side across the centre row
side = rng.choice([-1, 1])
yy, xx = np.mgrid[0:N, 0:N].astype(np.float64)
rod_hw = 7
stop = ((xx - cx) ** 2 + (yy - cy) ** 2 < 14 ** 2)
if side < 0:
    stop |= (np.abs(yy - cy) < rod_hw) & (xx <= cx)
else:
    stop |= (np.abs(yy - cy) < rod_hw) & (xx >= cx)

def near_stop(x, y, m=9):
    if (x - cx) ** 2 + (y - cy) ** 2 < (14 + m) ** 2: return True
    if abs(y - cy) < rod_hw + m and ((side < 0 and x <= cx + m) or (side > 0 and x >= cx - m)): return True
    return False

spots = []  # dicts
def add_spot(phase, hkl, gx, gy, src):
    x, y = to_px(gx, gy)
    if not (10 < x < N - 10 and 10 < y < N - 10): return
    if near_stop(x, y): return
    for s in spots:
        if (s['x'] - x) ** 2 + (s['y'] - y) ** 2 < 10 ** 2: return
    life = int(rng.integers(3, 11))
    birth = int(rng.integers(-3, F))
    death = birth + life - 1
    birth, death = max(birth, 0), min(death, F - 1)
    if F == 1: birth = death = 0
    elif death - birth + 1 < 2: return
    spots.append(dict(id=len(spots), phase=phase, hkl=''.join(str(v) for v in hkl), fam=fam_of(*hkl),
                      g=math.hypot(gx, gy), gx=gx, gy=gy, x=x, y=y, birth=birth, death=death,
                      sigma=rng.uniform(1.5, 3.0), snr=rng.uniform(10, 40), src=src))

def zone_basis(z):
    z = np.array(z, float); z /= np.linalg.norm(z)
    u = np.cross(z, [0, 0, 1]) if abs(z[2]) < 0.9 else np.cross(z, [1, 0, 0])
    u /= np.linalg.norm(u); v = np.cross(z, u)
    return u, v

def zone_grain(phase, acell, allowed, z, nmax=8):
    u, v = zone_basis(z)
    rot = rng.uniform(0, 2 * math.pi)
    cr, sr = math.cos(rot), math.sin(rot)
    for h, k, l in itertools.product(range(-nmax, nmax + 1), repeat=3):
        if (h, k, l) == (0, 0, 0) or h * z[0] + k * z[1] + l * z[2] != 0: continue
        if not allowed(h, k, l): continue
        g = np.array([h, k, l]) / acell
        if np.linalg.norm(g) > GMAX: continue
        px, py = g @ u, g @ v
        gx, gy = cr * px - sr * py, sr * px + cr * py
        if rng.random() < 0.5: add_spot(phase, (h, k, l), gx, gy, 'zone[%d%d%d]' % tuple(z))

zone_grain('Fe3O4', A_FE3O4, fe_allowed, (1, 1, 0))
zone_grain('Fe3O4', A_FE3O4, fe_allowed, (1, 1, 0))
zone_grain('NiFe', A_NIFE, ni_allowed, (0, 0, 1))
zone_grain('NiFe', A_NIFE, ni_allowed, (1, 1, 0))
fams = [('Fe3O4', A_FE3O4, f) for f in FE_FAM] + [('NiFe', A_NIFE, f) for f in NI_FAM]
for _ in range(a.nrandom * 3):
    if sum(s['src'] == 'random' for s in spots) >= a.nrandom: break
    ph, ac, f = fams[rng.integers(len(fams))]
    hkl = tuple(int(c) for c in f)
    g = math.sqrt(sum(c * c for c in hkl)) / ac
    if g > GMAX: continue
    az = rng.uniform(0, 2 * math.pi)
    add_spot(ph, hkl, g * math.cos(az), g * math.sin(az), 'random')

# background: smooth diffuse halo falling off with radius (drawn in distorted frame too)
r = np.hypot(xx - cx, yy - cy)
bg = a.bg * (1 + (60 / 30) ** 2) ** 1.5 / (1 + (r / 30) ** 2) ** 1.5 + 0.25 * a.bg * np.exp(-r / 250) + 5
if a.rings > 0:  # weak powder rings of Fe3O4 311 and 440 (elliptical like the spots)
    Dinv = np.linalg.inv(D)
    vx, vy = (xx - cx), -(yy - cy)
    ux = Dinv[0, 0] * vx + Dinv[0, 1] * vy; uy = Dinv[1, 0] * vx + Dinv[1, 1] * vy
    ru = np.hypot(ux, uy)
    for f, amp in (('311', 1.0), ('440', 0.7), ('220', 0.5)):
        g = math.sqrt(sum(int(c) ** 2 for c in f)) / A_FE3O4
        bg = bg + a.rings * amp * np.exp(-0.5 * ((ru - g / a.ptrue) / 2.0) ** 2)
movie = np.empty((F, N, N), np.float32)
rows = []
for fr in range(F):
    drift = 1.0 + 0.05 * math.sin(2 * math.pi * fr / F)
    img = bg * drift
    for s in spots:
        if not (s['birth'] <= fr <= s['death']): continue
        b = bg[int(round(s['y'])), int(round(s['x']))]
        amp = s['snr'] * math.sqrt(b * a.dose) / a.dose * rng.uniform(0.8, 1.2)
        sg = s['sigma']
        x0, x1 = int(max(s['x'] - 5 * sg, 0)), int(min(s['x'] + 5 * sg + 1, N))
        y0, y1 = int(max(s['y'] - 5 * sg, 0)), int(min(s['y'] + 5 * sg + 1, N))
        img[y0:y1, x0:x1] += amp * np.exp(-((xx[y0:y1, x0:x1] - s['x']) ** 2 + (yy[y0:y1, x0:x1] - s['y']) ** 2) / (2 * sg * sg))
        rows.append((fr, s['id'], s['x'], s['y'], s['phase'], s['fam'], s['hkl'], s['g'], s['birth'], s['death'], amp, sg))
    img = np.where(stop, 0.3, img)
    cnt = rng.poisson(img * a.dose).astype(np.float32) / a.dose
    movie[fr] = cnt - a.neg

tifffile.imwrite(a.out + '.tif', movie, imagej=True, metadata={'axes': 'TYX'})
with open(a.out + '_truth.csv', 'w') as f:
    f.write('frame,spot_id,x_px,y_px,phase,family,hkl,g_inv_A,birth,death,amp,sigma\n')
    for rw in rows: f.write('%d,%d,%.3f,%.3f,%s,%s,%s,%.5f,%d,%d,%.1f,%.2f\n' % rw)
with open(a.out + '_spots.csv', 'w') as f:
    f.write('spot_id,phase,family,hkl,g_inv_A,azimuth_deg,x_px,y_px,birth,death,sigma,snr,src\n')
    for s in spots:
        f.write('%d,%s,%s,%s,%.5f,%.2f,%.3f,%.3f,%d,%d,%.2f,%.1f,%s\n' % (s['id'], s['phase'], s['fam'], s['hkl'], s['g'],
                math.degrees(math.atan2(s['gy'], s['gx'])), s['x'], s['y'], s['birth'], s['death'], s['sigma'], s['snr'], s['src']))
json.dump(dict(centre_x=cx, centre_y=cy, ellip_ratio=a.ellip, ellip_angle_deg_ccw_yup=th, pixel_size_true=a.ptrue,
               beam_stop_side='left' if side < 0 else 'right', n_spots=len(spots), frames=F, size=N, args=vars(a)),
          open(a.out + '_meta.json', 'w'), indent=1)
print('%s: %d spots (%d Fe3O4, %d NiFe), %d spot-frames, centre (%.2f, %.2f), distortion %.3f @ %.1f deg'
      % (a.out, len(spots), sum(s['phase'] == 'Fe3O4' for s in spots), sum(s['phase'] == 'NiFe' for s in spots), len(rows), cx, cy, a.ellip, th))
