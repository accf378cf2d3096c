"""Shared fixtures: the CLI binary (EPITEM_BIN, set by ctest) and a runner for it."""
import os
import subprocess

import pytest


@pytest.fixture(scope="session")
def epitem_bin():
    path = os.environ.get("EPITEM_BIN")
    if not path or not os.path.exists(path):
        pytest.skip("EPITEM_BIN not set (run through ctest)")
    return path


@pytest.fixture
def cli(epitem_bin, tmp_path):
    """cli("reflections", "Fe3O4", ...) runs `epitem` in tmp_path; fails on a non-zero exit."""
    def run(*args):
        r = subprocess.run([epitem_bin, *map(str, args)], cwd=tmp_path, capture_output=True, text=True)
        assert r.returncode == 0, f"epitem {' '.join(map(str, args))}: exit {r.returncode}\n{r.stderr}"
        return r
    return run


def read_csv(path):
    """CSV file → (header list, list of row lists of strings)."""
    lines = [l for l in open(path).read().splitlines() if l and not l.startswith("#")]
    return lines[0].split(","), [l.split(",") for l in lines[1:]]
