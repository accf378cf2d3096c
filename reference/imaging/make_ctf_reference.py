#!/usr/bin/env python3
"""Independent reference for tests/test_optics.cpp: chi(k), E_t, E_s and sin(chi) of one lens,
written straight from docs/formulas.md §2 and §6 in plain Python (double precision, no epitem code).
Lens: 200 kV, Cs = 1.2 mm, C5 = 0, defocus = +500 A (underfocus), focal spread sigma = 30 A,
convergence alpha = 0.3 mrad (1/e). Run: python3 make_ctf_reference.py > ctf_200kV.csv"""
import math

E = 200e3
m0c2 = 510998.95
hc = 12398.4198
lam = hc / math.sqrt(E * (2 * m0c2 + E))
Cs, df, sigma, alpha = 1.2e7, 500.0, 30.0, 0.3e-3

print("k_invA,chi_rad,temporal_envelope,spatial_envelope")
for i in range(0, 41):
    k = 0.025 * i
    chi = math.pi * lam * k * k * (0.5 * Cs * lam * lam * k * k - df)
    et = math.exp(-0.5 * (math.pi * lam * sigma * k * k) ** 2)
    es = math.exp(-(math.pi * alpha / lam) ** 2 * (Cs * lam ** 3 * k ** 3 - df * lam * k) ** 2)
    print(f"{k:.3f},{chi:.12e},{et:.12e},{es:.12e}")
