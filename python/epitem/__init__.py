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
from . import _epitem  # noqa: E402

__all__ = ["Crystal", "Error", "Model", "fft_peaks", "image", "index", "interface", "multislice",
           "read_image", "saed", "track"]


# --- track: the CLI's CSV tables as dicts of arrays ---

def _csv_columns(text):
    """CSV text (header line first) → {column: array}: int64 when every cell is an integer,
    float64 when every cell is a number (an empty cell is NaN), else a list of str."""
    import numpy as np
    lines = [l for l in text.splitlines() if l and not l.startswith("#")]
    header = lines[0].split(",")
    rows = [l.split(",") for l in lines[1:]]
    out = {}
    for i, name in enumerate(header):
        cells = [r[i] if i < len(r) else "" for r in rows]
        try:
            out[name] = np.array([int(c) for c in cells], dtype=np.int64)
            continue
        except ValueError:
            pass
        try:
            out[name] = np.array([float(c) if c != "" else np.nan for c in cells], dtype=np.float64)
        except ValueError:
            out[name] = cells
    return out


def track(movie, *, threads=0, progress=None, **options):
    """Spot lifespans in an in-situ SAED movie, as ``epitem track`` (docs/python.md).

    movie: a path (any movie format the CLI reads, or a folder of numbered frames) or a numpy
    stack (frames, ny, nx) — or one frame (ny, nx) — with row 0 = top, as read_image returns it.
    Every other keyword is an ``epitem track`` option with '-' written '_' and the CLI's units:
    fps [frames/s], frame_times (CSV path), covariate, covariate_column, covariate_name, ramp
    ("400:1/s"), bin_width, pixel_size ("0.01/A" or a number in 1/Å), camera_length ("20cm"),
    detector_pixel ("14um"), energy ("200kV"), calibrant, phase (a name or a list of names),
    tolerance, scale_range, sigma_min, sigma_max [px], scales, snr, max_step [px], max_dg,
    max_gap, min_frames, centre ("auto", "friedel", "ring", "beam" or "X,Y" [px]), ring_radius
    [px], distortion_threshold, distortion ("RATIO,ANGLE_DEG" or a calibrate JSON),
    no_distortion_correction, beam_stop ("auto" | "none"), mask (TIFF path), centre_mask [px],
    no_background. A stack carries no calibration: give pixel_size (or camera_length, or
    calibrant) and fps (or frame_times) as for a file that stores none.
    threads: 0 = $EPITEM_THREADS or all cores; progress: callable(done, total, stage).

    Returns a dict: "tracks" (the tracks CSV: track_id, first_frame, last_frame, ..., g_inv_A,
    d_A, azimuth_deg, phase, hkl, index_status, ...), "spots" (the --detections CSV: frame,
    time_s, x_px, y_px, gx_inv_A, gy_inv_A, g_inv_A, sigma_px, snr, intensity, track_id),
    "summary" (the OUT_summary.csv: phase, hkl, covariate_lo, covariate_hi, n_tracks, ...),
    each {column: numpy array (or list of str)} with the CSV's column names and values, and
    "sidecar" (the JSON sidecar as a dict: parameters, results such as centre_px,
    pixel_size_fitted_invA, scale_fitted).
    """
    import json
    tracks, spots, summary, sidecar = _epitem._track(movie, threads=threads, progress=progress, **options)
    return {"tracks": _csv_columns(tracks), "spots": _csv_columns(spots), "summary": _csv_columns(summary),
            "sidecar": json.loads(sidecar)}


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
