"""epitem: HRTEM / SAED simulation and analysis of epitaxial interfaces, from Python.

The same C++ library as the ``epitem`` command line, with numpy arrays in and out:

    import epitem
    model, report = epitem.interface(preset="nife-fe3o4", box="40x40x20A")
    wave = epitem.multislice(model, energy_eV=200e3, sampling_A=0.1)   # complex64 (ny, nx)
    img = epitem.image(wave, sampling_A=model.box_A[0] / wave.shape[1], energy_eV=200e3, defocus="scherzer")
    peaks = epitem.fft_peaks(img, pixel_size_A=model.box_A[0] / img.shape[1])

Units are in the names (``energy_eV``, ``sampling_A``, ``tilt_mrad``); functions that mirror a
CLI command with many options (``image``, ``interface``) take that command's option names as
keywords ('-' written '_'), with numbers in the unit its ``--help`` documents. Rasters use the
TIFF convention: row 0 = top = largest y. Errors in the input raise ``epitem.Error`` (a
ValueError) with the CLI's message; unknown keywords raise TypeError. Long computations release
the GIL, report to ``progress=callable(done, total, stage)`` and stop on Ctrl-C.
See docs/python.md.
"""
import os as _os
from pathlib import Path as _Path

# An installed package (PREFIX/lib/python3.X/site-packages/epitem) finds the bundled structures
# in PREFIX/share/epitem/structures, as the installed `epitem` program does.
if not _os.environ.get("EPITEM_STRUCTURES"):
    _here = _Path(__file__).resolve().parent
    for _up in (_here.parents[3], _here.parents[2]) if len(_here.parents) > 3 else ():
        _s = _up / "share" / "epitem" / "structures"
        if _s.is_dir():
            _os.environ["EPITEM_STRUCTURES"] = str(_s)
            break

from ._epitem import (  # noqa: E402
    Crystal,
    Error,
    Model,
    fft_peaks,
    image,
    index,
    interface,
    multislice,
    read_image,
    saed,
)

__all__ = ["Crystal", "Error", "Model", "fft_peaks", "image", "index", "interface", "multislice",
           "read_image", "saed"]


# --- ASE conversion (optional: only when ase is importable) ---

def _model_to_ase(self):
    """This model as ase.Atoms (cell, pbc, positions in Å; occupancy, u_iso_A2 and phase as
    per-atom arrays). Needs the ase package."""
    import ase
    atoms = ase.Atoms(numbers=self.numbers, positions=self.positions_A, cell=self.cell_A, pbc=self.pbc)
    atoms.set_array("occupancy", self.occupancy)
    atoms.set_array("u_iso", self.u_iso_A2)
    atoms.set_array("phase", self.phase)
    atoms.info["phase_names"] = list(self.phase_names)
    return atoms


def _model_from_ase(atoms):
    """An epitem.Model from ase.Atoms (beam along +z; x, y periodic). Per-atom arrays
    'occupancy' and 'u_iso' [Å²] and info['phase_names'] are used when present."""
    def optional(name):
        return atoms.get_array(name) if name in atoms.arrays else None
    phase = optional("phase")
    names = list(atoms.info.get("phase_names", ["crystal"] if phase is None else
                                [f"phase{i}" for i in range(int(max(phase)) + 1)]))
    return Model(atoms.cell[:], atoms.numbers, atoms.positions, occupancy=optional("occupancy"),
                 u_iso_A2=optional("u_iso"), phase=phase, phase_names=names,
                 pbc=tuple(bool(p) for p in atoms.pbc))


def _crystal_to_ase(self):
    """The unit cell as ase.Atoms (every site; mixed-occupancy sites appear once per species,
    with their occupancy in the per-atom array 'occupancy'). Needs the ase package."""
    import ase
    s = self.sites
    atoms = ase.Atoms(numbers=s["Z"], scaled_positions=s["frac"], cell=self.cell_A, pbc=True)
    atoms.set_array("occupancy", s["occupancy"])
    atoms.set_array("u_iso", s["u_iso_A2"])
    atoms.info["name"] = self.name
    atoms.info["spacegroup"] = self.spacegroup
    return atoms


Model.to_ase = _model_to_ase
Model.from_ase = staticmethod(_model_from_ase)
Crystal.to_ase = _crystal_to_ase
