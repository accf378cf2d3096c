#!/usr/bin/env python3
"""Debye-model U_iso by an independent route (midpoint rule, CODATA 2018 constants) for
tests/test_debye.cpp: U = 3 hbar^2/(m kB Theta) [Phi(x)/x + 1/4], x = Theta/T."""
import math
HBAR, KB, U_KG = 1.054571817e-34, 1.380649e-23, 1.66053906660e-27
def phi(x, n=200000):
    h = x / n
    return sum((i + 0.5) * h / math.expm1((i + 0.5) * h) * h for i in range(n)) / x
def u_iso(mass_u, theta, t):
    x = theta / t
    return 3 * HBAR**2 / (mass_u * U_KG * KB * theta) * (phi(x) / x + 0.25) * 1e20
for name, m, th, t in [("Fe", 55.845, 470, 300), ("Ni", 58.6934, 397, 293), ("Fe", 55.845, 435, 293),
                       ("O", 15.999, 657, 293), ("Fe", 55.845, 435, 1000), ("Fe", 55.845, 435, 300)]:
    print(f"{name} Theta={th} K T={t} K: U = {u_iso(m, th, t):.7f} A^2")
print("Phi(0.5) =", phi(0.5), " Phi(3) =", phi(3.0))
