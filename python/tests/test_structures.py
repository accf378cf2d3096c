"""Crystal, Model, reflections and read_image against the CLI on the same input."""
import numpy as np
import pytest
import tifffile

import epitem
from conftest import read_csv

REFLECTION_FORMATS = {"h": "{:d}", "k": "{:d}", "l": "{:d}", "d_A": "{:.5f}", "multiplicity": "{:d}",
                      "F_abs": "{:.6f}", "intensity": "{:.4f}", "g_invA": "{:.6f}",
                      "powder_intensity": "{:.4f}", "two_theta_mrad": "{:.4f}", "g_inv_A": "{:.6f}"}


@pytest.mark.parametrize("name,args,kwargs", [
    ("Fe3O4", ["--dmin", "1.0A"], dict(dmin_A=1.0)),
    ("NiFe", ["--dmin", "0.8A", "--zone", "1,1,0", "--energy", "300kV", "--all"],
     dict(dmin_A=0.8, zone=(1, 1, 0), energy_eV=300e3, all=True)),
])
def test_reflections_identical_to_cli(cli, tmp_path, name, args, kwargs):
    cli("reflections", name, *args, "--out", "r.csv", "--quiet")
    header, rows = read_csv(tmp_path / "r.csv")
    table = epitem.Crystal.builtin(name).reflections(**kwargs)
    core = {"h", "k", "l", "d_A", "multiplicity", "F_abs", "intensity", "g_invA", "powder_intensity",
            "two_theta_mrad"}
    assert core <= set(table) and core <= set(header)
    assert len(rows) == len(table["h"]) > 5
    for j, col in enumerate(header):
        if col not in table:  # a column the CLI gained after this binding
            continue
        mine = [REFLECTION_FORMATS[col].format(v.item()) for v in table[col]]
        assert mine == [r[j] for r in rows], f"column {col} differs from `epitem reflections`"


def test_crystal_properties_and_orient():
    c = epitem.Crystal.builtin("Au")
    assert c.spacegroup_number == 225 and len(c.sites["Z"]) == 4
    assert c.cell_parameters["a_A"] == pytest.approx(4.078, abs=0.01)
    m = c.orient((0, 0, 1), repeat=(2, 2, 1))
    assert len(m) == 16 and m.box_A == pytest.approx((2 * 4.078, 2 * 4.078, 4.078), abs=0.02)
    assert m.positions_A.shape == (16, 3) and set(m.numbers) == {79}
    copy = epitem.Model(m.cell_A, m.numbers, m.positions_A, u_iso_A2=m.u_iso_A2)
    np.testing.assert_array_equal(copy.positions_A, m.positions_A)
    with pytest.raises(ValueError, match="builtin"):
        epitem.Crystal.builtin("some/file.cif")


def test_ase_roundtrip():
    ase = pytest.importorskip("ase")
    m = epitem.Crystal.builtin("Au").orient((1, 1, 0))
    atoms = m.to_ase()
    assert isinstance(atoms, ase.Atoms)
    back = epitem.Model.from_ase(atoms)
    np.testing.assert_allclose(back.positions_A, m.positions_A)


def test_read_image_matches_tifffile(tmp_path):
    rng = np.random.default_rng(3)
    data = rng.random((3, 40, 56), dtype=np.float32)
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, data, imagej=True, resolution=(1 / 0.25, 1 / 0.25), metadata={"unit": "nm"})
    array, cal = epitem.read_image(str(path))
    assert array.dtype == np.float32 and array.shape == (3, 40, 56)
    np.testing.assert_array_equal(array, data)
    assert cal["pixel_size_A"] == pytest.approx(2.5) and cal["frames"] == 3
    with pytest.raises(epitem.Error, match="nothere"):
        epitem.read_image(str(tmp_path / "nothere.tif"))
