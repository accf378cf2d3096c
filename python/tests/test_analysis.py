"""fft_peaks and index against `epitem fft` / `epitem index` on the same input."""
import numpy as np
import pytest
import tifffile

import epitem
from conftest import read_csv

PEAK_FORMATS = {"kx": "%.8g", "ky": "%.8g", "g_inv_A": "%.8g", "d_A": "%.7g", "angle_deg": "%.5f",
                "intensity": "%.6g", "snr": "%.4g", "sigma_d_A": "%.3g", "sigma_angle_deg": "%.3g"}


def lattice_image(seed, n=256, pixel_A=0.1):
    """Two fringe sets (d = 2.03 Å at 17°, 1.44 Å at 108°) with Poisson-like noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:n, 0:n] * pixel_A
    img = 1.0
    for d, deg in ((2.03, 17.0), (1.44, 108.0)):
        a = np.radians(deg)
        img = img + 0.2 * np.cos(2 * np.pi * (x * np.cos(a) - y * np.sin(a)) / d + rng.uniform(0, 6))
    return rng.poisson(img * 50).astype(np.float32)


def label_digits(label):
    """'-11-1' → (-1, 1, -1); '1 -11 10' → (1, -11, 10)."""
    if " " in label:
        return tuple(int(v) for v in label.split())
    out, sign = [], 1
    for ch in label:
        if ch == "-":
            sign = -1
        else:
            out.append(sign * int(ch))
            sign = 1
    return tuple(out)


@pytest.mark.parametrize("seed", [1, 2])
def test_fft_peaks_identical_to_cli(cli, tmp_path, seed):
    img = lattice_image(seed)
    tifffile.imwrite(tmp_path / "img.tif", img)
    cli("fft", "img.tif", "--pixel-size", "0.1A", "--roi", "10,20,200,180", "--out", "p.csv", "--quiet")
    header, rows = read_csv(tmp_path / "p.csv")
    peaks = epitem.fft_peaks(img, 0.1, roi=(10, 20, 200, 180))
    assert list(peaks) == header and len(rows) == len(peaks["kx"]) >= 2
    for j, col in enumerate(header):
        assert [PEAK_FORMATS[col] % v for v in peaks[col]] == [r[j] for r in rows], col
    assert sorted(np.round(peaks["d_A"][:2], 2)) == [1.44, 2.03]


def test_index_agrees_with_cli(cli, tmp_path):
    cli("saed", "Fe3O4", "--zone", "1,1,2", "--out", "s.csv", "--quiet")
    cli("index", "s.csv", "--phase", "Fe3O4", "--out", "idx.csv", "--quiet")
    header, rows = read_csv(tmp_path / "idx.csv")
    spots = epitem.saed("Fe3O4", (1, 1, 2))
    found = epitem.index(spots, ["Fe3O4"])
    assert len(found) == 1 and found[0]["caveat"] == ""
    zone = sorted(abs(v) for v in found[0]["zone_uvw"])
    assert zone == [1, 1, 2]
    # The CLI's table (one row per explained spot, hkl as a label) assigns the same families.
    mine = {tuple(abs(int(round(v))) for v in s["hkl"]) for s in found[0]["spots"]}
    col = header.index("hkl")
    theirs = {tuple(abs(int(c)) for c in label_digits(r[col])) for r in rows if r[col]}
    assert {tuple(sorted(h)) for h in mine} == {tuple(sorted(h)) for h in theirs}
    with pytest.raises(ValueError, match="tolerance"):
        epitem.index(spots, ["Fe3O4"], tolerance=2)
