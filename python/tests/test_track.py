"""epitem.track against `epitem track` on the same movie: the tracks, detections and summary
tables and the sidecar's geometry equal the CLI's CSVs and JSON, for a movie file, a folder of
frames and a numpy stack of the same frames."""
import json
from pathlib import Path

import numpy as np
import pytest

import epitem

REALDATA = Path(__file__).resolve().parents[3] / "shared/data/realdata"
TI_MOVIE = REALDATA / "ti_insitu_heating_movie_nomelabs/ti_heating_frames1691-1698.tif"


def csv_columns(path):
    return epitem._csv_columns(open(path).read())


def assert_tables_equal(py, cli, what):
    assert list(py) == list(cli), f"{what}: columns {list(py)} vs {list(cli)}"
    for name in cli:
        a, b = py[name], cli[name]
        if isinstance(b, list):
            assert a == b, f"{what}.{name}"
        else:
            assert a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True), f"{what}.{name}: {a[:4]} vs {b[:4]}"


def run_cli(cli, tmp_path, movie, *options):
    cli("track", movie, *options, "--out", "tracks.csv", "--detections", "det.csv", "--quiet")
    return ({"tracks": csv_columns(tmp_path / "tracks.csv"), "spots": csv_columns(tmp_path / "det.csv"),
             "summary": csv_columns(tmp_path / "tracks_summary.csv")},
            json.load(open(tmp_path / "tracks.json")))


def assert_same_run(result, cli_tables, cli_sidecar):
    for table in ("tracks", "spots", "summary"):
        assert_tables_equal(result[table], cli_tables[table], table)
    py_results, cli_results = result["sidecar"]["results"], cli_sidecar["results"]
    for key in ("centre_px", "centre_source", "distortion_ratio", "pixel_size_fitted_invA", "scale_fitted",
                "detections", "tracks", "tracks_indexed"):
        if key in cli_results:
            assert py_results[key] == cli_results[key], key


@pytest.fixture
def synthetic_movie(cli, tmp_path):
    """Fe3O4 [110] in frames 0-1, NiFe [110] in frames 2-3, spots only (as tests/cli/track_cli.sh)."""
    (tmp_path / "movie").mkdir()
    for i, phase in enumerate(("Fe3O4", "Fe3O4", "NiFe", "NiFe")):
        cli("saed", phase, "--zone", "1,1,0", "--out", "s.csv", "--image", f"movie/frame_{i + 1}.tif",
            "--size", "384", "--pixel", "0.004", "--gmax", "0.7", "-q")
    return tmp_path / "movie"


OPTIONS = dict(fps=10, ramp="400:1/s", pixel_size="0.004/A", phase=["Fe3O4", "NiFe"], beam_stop="none")
CLI_OPTIONS = ("--fps", "10", "--ramp", "400:1/s", "--pixel-size", "0.004/A", "--phase", "Fe3O4", "--phase", "NiFe",
               "--beam-stop", "none")


def test_track_equals_cli_on_synthetic_movie(cli, tmp_path, synthetic_movie):
    tables, sidecar = run_cli(cli, tmp_path, synthetic_movie, *CLI_OPTIONS)
    assert len(tables["tracks"]["track_id"]) >= 20 and set(tables["tracks"]["index_status"]) == {"indexed"}
    calls = []
    from_folder = epitem.track(str(synthetic_movie), progress=lambda d, t, s: calls.append((d, t)), **OPTIONS)
    assert_same_run(from_folder, tables, sidecar)
    assert calls and calls[-1] == (4, 4)
    # The same frames as a numpy stack (read_image's row convention), calibration as keywords.
    stack = np.stack([epitem.read_image(str(f))[0] for f in sorted(synthetic_movie.glob("*.tif"))])
    assert_same_run(epitem.track(stack, **OPTIONS), tables, sidecar)
    assert epitem.track(stack, **OPTIONS)["sidecar"]["parameters"]["movie"] == "array (4 frames)"


@pytest.mark.filterwarnings("ignore::UserWarning")  # the CLI's warnings: few spots, no ring
def test_track_equals_cli_on_realdata_movie(cli, tmp_path):
    if not TI_MOVIE.exists():
        pytest.skip(f"{TI_MOVIE} absent")
    opts = ("--fps", "5", "--pixel-size", "0.01/A")
    tables, sidecar = run_cli(cli, tmp_path, TI_MOVIE, *opts)
    assert_same_run(epitem.track(TI_MOVIE, fps=5, pixel_size=0.01), tables, sidecar)
    stack, _ = epitem.read_image(str(TI_MOVIE))
    assert_same_run(epitem.track(stack, fps=5, pixel_size=0.01), tables, sidecar)


def test_track_errors_are_the_clis(epitem_bin, tmp_path, synthetic_movie):
    import subprocess
    stack = np.stack([epitem.read_image(str(f))[0] for f in sorted(synthetic_movie.glob("*.tif"))])
    r = subprocess.run([epitem_bin, "track", str(synthetic_movie), "--out", "t.csv", "--beam-stop", "none"],
                       capture_output=True, text=True, cwd=tmp_path)
    message = f"give exactly one of --fps or --frame-times: {synthetic_movie} stores no frame time"
    assert r.returncode == 2 and message in r.stderr
    with pytest.raises(ValueError, match=message):
        epitem.track(str(synthetic_movie), beam_stop="none")
    # The files carry their reciprocal pixel size (epitem saed writes it); a stack does not.
    from_file = epitem.track(str(synthetic_movie), fps=10, beam_stop="none")
    assert from_file["sidecar"]["parameters"]["pixel_size_source"] == "movie file calibration"
    with pytest.raises(epitem.Error, match="^array: no reciprocal calibration"):
        epitem.track(stack, fps=10, beam_stop="none")
    with pytest.raises(ValueError, match="--centre must be auto"):
        epitem.track(stack, fps=10, pixel_size=0.004, centre="middle")
    with pytest.raises(ValueError, match="exactly one of --fps or --frame-times"):
        epitem.track(stack, pixel_size=0.004)
    with pytest.raises(TypeError, match="unexpected keyword argument.*out"):
        epitem.track(stack, fps=10, pixel_size=0.004, out="t.csv")
    with pytest.raises(ValueError, match="frames, ny, nx"):
        epitem.track(np.zeros(5, np.float32), fps=10, pixel_size=0.004)
