#!/usr/bin/env python3
"""Independent kinematic structure factors for epitem's reference/saed/ (no numpy needed).

F_hkl = sum_j occ_j f_e,j(|g|) exp(-B_j |g|^2 / 4) exp(+2 pi i (h x_j + k y_j + l z_j)),
B = 8 pi^2 U_iso, f_e from Kirkland's 12-parameter fit (q = |g| = 1/d, no 2 pi).

The atoms are generated here by closure of the space-group generators of Fd-3m (origin
choice 2 for Fe3O4, origin choice 1 for Si) as printed in International Tables Vol. A,
not by epitem's CIF reader or its test helpers.

Usage: python3 kinematic_reference.py /work/shared/data/kirkland_fparams.csv OUTDIR
"""
import cmath
import csv
import math
import sys
from fractions import Fraction as Fr


def kirkland_table(path):
    table = {}
    with open(path) as f:
        for row in csv.DictReader(f):
            keys = ["a1", "b1", "a2", "b2", "a3", "b3", "c1", "d1", "c2", "d2", "c3", "d3"]
            table[row["symbol"]] = [float(row[k]) for k in keys]
    return table


def f_e(p, q):
    q2 = q * q
    a = sum(p[2 * i] / (q2 + p[2 * i + 1]) for i in range(3))
    c = sum(p[6 + 2 * i] * math.exp(-p[6 + 2 * i + 1] * q2) for i in range(3))
    return a + c


def parse_op(text):
    """'-x+3/4,-y+1/4,z+1/2' -> (3x3 int matrix, translation as Fractions)."""
    rot, tra = [], []
    for part in text.replace(" ", "").split(","):
        row, t, sign, i = [0, 0, 0], Fr(0), 1, 0
        while i < len(part):
            ch = part[i]
            if ch in "+-":
                sign = 1 if ch == "+" else -1
                i += 1
            elif ch in "xyz":
                row["xyz".index(ch)] += sign
                sign, i = 1, i + 1
            else:
                j = i
                while j < len(part) and (part[j].isdigit() or part[j] == "/"):
                    j += 1
                t += sign * Fr(part[i:j])
                sign, i = 1, j
        rot.append(tuple(row))
        tra.append(t % 1)
    return (tuple(rot), tuple(tra))


def compose(a, b):
    """(a o b)(x) = Ra (Rb x + tb) + ta."""
    ra, ta = a
    rb, tb = b
    r = tuple(tuple(sum(ra[i][k] * rb[k][j] for k in range(3)) for j in range(3)) for i in range(3))
    t = tuple((sum(ra[i][k] * tb[k] for k in range(3)) + ta[i]) % 1 for i in range(3))
    return (r, t)


def close_group(generators):
    ident = (((1, 0, 0), (0, 1, 0), (0, 0, 1)), (Fr(0), Fr(0), Fr(0)))
    group = {ident}
    frontier = [ident]
    while frontier:
        new = []
        for g in frontier:
            for h in generators:
                c = compose(h, g)
                if c not in group:
                    group.add(c)
                    new.append(c)
        frontier = new
    return group


def orbit(group, xyz):
    pts = []
    for r, t in group:
        p = [(sum(r[i][k] * xyz[k] for k in range(3)) + float(t[i])) % 1.0 for i in range(3)]
        p = [0.0 if abs(v - 1.0) < 1e-9 else v for v in p]
        if not any(max(min(abs(a - b), 1 - abs(a - b)) for a, b in zip(p, o)) < 1e-6 for o in pts):
            pts.append(p)
    return pts


# ITA Vol. A, space group 227 Fd-3m, generators (1), t(0,1/2,1/2), t(1/2,0,1/2), (2), (3), (5),
# (13), (25) for each origin choice.
FD3M_ORIGIN2 = ["x,y,z+0", "x,y+1/2,z+1/2", "x+1/2,y,z+1/2", "-x+3/4,-y+1/4,z+1/2",
                "-x+1/4,y+1/2,-z+3/4", "z,x,y", "y+3/4,x+1/4,-z+1/2", "-x,-y,-z"]
FD3M_ORIGIN1 = ["x,y,z+0", "x,y+1/2,z+1/2", "x+1/2,y,z+1/2", "-x,-y+1/2,z+1/2",
                "-x+1/2,y+1/2,-z", "z,x,y", "y+3/4,x+1/4,-z+3/4", "-x+1/4,-y+1/4,-z+1/4"]


def structure_factor(atoms, table, a, hkl):
    g = math.sqrt(sum(i * i for i in hkl)) / a  # cubic: |g| = sqrt(h2+k2+l2)/a
    f = 0j
    for sym, xyz, occ, u in atoms:
        b = 8 * math.pi ** 2 * u
        amp = occ * f_e(table[sym], g) * math.exp(-b * g * g / 4)
        f += amp * cmath.exp(2j * math.pi * sum(h * x for h, x in zip(hkl, xyz)))
    return f, 1 / g if g > 0 else float("inf")


def main():
    table = kirkland_table(sys.argv[1])
    outdir = sys.argv[2]

    # Fe3O4: a = 8.396 A, O x = 0.2549 (origin 2), U(Fe) = 0.0055, U(O) = 0.0070 A^2
    # (the values of structures/Fe3O4.cif).
    g2 = close_group([parse_op(s) for s in FD3M_ORIGIN2])
    assert len(g2) == 192, len(g2)
    a_fe3o4, x_o, u_fe, u_o = 8.396, 0.2549, 0.0055, 0.0070
    fe_a = orbit(g2, [1 / 8, 1 / 8, 1 / 8])
    fe_b = orbit(g2, [1 / 2, 1 / 2, 1 / 2])
    oxy = orbit(g2, [x_o, x_o, x_o])
    assert (len(fe_a), len(fe_b), len(oxy)) == (8, 16, 32)
    atoms = [("Fe", p, 1.0, u_fe) for p in fe_a + fe_b] + [("O", p, 1.0, u_o) for p in oxy]
    hkls = [(1, 1, 1), (2, 0, 0), (0, 0, 2), (2, 2, 0), (3, 1, 1), (2, 2, 2), (4, 0, 0), (4, 2, 0),
            (3, 3, 1), (4, 2, 2), (5, 1, 1), (4, 4, 0), (5, 3, 1), (6, 2, 0), (5, 3, 3), (4, 4, 4)]
    rows = []
    for hkl in hkls:
        f, d = structure_factor(atoms, table, a_fe3o4, hkl)
        rows.append((hkl, d, abs(f)))
    f000 = structure_factor(atoms, table, a_fe3o4, (0, 0, 0))[0].real
    i311 = [r[2] for r in rows if r[0] == (3, 1, 1)][0] ** 2
    with open(outdir + "/fe3o4_structure_factors.csv", "w") as out:
        out.write("# Fe3O4 Fd-3m:2 a=8.396 A, O x=0.2549, U_Fe=0.0055 A2, U_O=0.0070 A2, Kirkland f_e;"
                  " F000_A=%.8f\n" % f000)
        out.write("h,k,l,d_A,F_abs_A,intensity_rel_311\n")
        for hkl, d, fa in rows:
            out.write("%d,%d,%d,%.6f,%.8e,%.8e\n" % (hkl + (d, fa, 100 * fa * fa / i311)))

    # Si: diamond, a = 5.43102 A, Si at 8a (0,0,0) origin 1, U = 0.0059 A^2 (structures/Si.cif).
    # Every reflection of the [110] zone (h + k = 0) with |g| <= 1.0 1/A.
    g1 = close_group([parse_op(s) for s in FD3M_ORIGIN1])
    assert len(g1) == 192, len(g1)
    a_si, u_si = 5.43102, 0.0059
    si = [("Si", p, 1.0, u_si) for p in orbit(g1, [0.0, 0.0, 0.0])]
    assert len(si) == 8
    n = 6
    with open(outdir + "/si_110_spots.csv", "w") as out:
        out.write("# Si diamond a=5.43102 A, U=0.0059 A2, Kirkland f_e; zone [110], |g| <= 1.0 1/A,"
                  " spots with |F|^2 > 1e-12 of F000^2\n")
        out.write("h,k,l,d_A,F2_A2\n")
        f000 = structure_factor(si, table, a_si, (0, 0, 0))[0].real
        for h in range(-n, n + 1):
            for l in range(-n, n + 1):
                hkl = (h, -h, l)
                if hkl == (0, 0, 0) or math.sqrt(2 * h * h + l * l) / a_si > 1.0:
                    continue
                f, d = structure_factor(si, table, a_si, hkl)
                if abs(f) ** 2 > 1e-12 * f000 ** 2:
                    out.write("%d,%d,%d,%.6f,%.8e\n" % (hkl + (d, abs(f) ** 2)))


if __name__ == "__main__":
    main()
