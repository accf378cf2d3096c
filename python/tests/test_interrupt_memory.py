"""Ctrl-C stops a long multislice within a second; a 4096² exit wave reaches numpy uncopied."""
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

import epitem


def test_keyboard_interrupt_within_a_second():
    model = epitem.Crystal.builtin("Au").orient((0, 0, 1), repeat=(4, 4, 150))  # 300 slices
    progress = []
    sent = []

    def interrupt():
        sent.append(time.perf_counter())
        os.kill(os.getpid(), signal.SIGINT)

    timer = threading.Timer(0.6, interrupt)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            epitem.multislice(model, gpts=512, slice_thickness_A=2.04,
                              progress=lambda done, total, stage: progress.append((done, total)))
        latency = time.perf_counter() - sent[0]
    finally:
        timer.cancel()
    print(f"interrupt latency {latency * 1e3:.1f} ms after {progress[-1][0]} of {progress[-1][1]} slices")
    assert progress and progress[-1][0] < progress[-1][1], "finished before the interrupt: test proves nothing"
    assert latency < 1.0


MEMORY_SCRIPT = textwrap.dedent("""
    import resource, sys, numpy as np, epitem
    rss = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    model = epitem.Crystal.builtin("Au").orient((0, 0, 1))  # 4.08 Å cube, one slice
    estimate = epitem.multislice(model, gpts=4096, slices=1, dry_run=True)["memory_estimate_bytes"]
    before = rss()
    wave = epitem.multislice(model, gpts=4096, slices=1)
    after = rss()
    print(before, after, estimate, wave.nbytes, type(wave.base).__name__, wave.flags.owndata)
""")


def test_4096_wave_is_not_copied():
    out = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT], capture_output=True, text=True, check=True)
    before, after, estimate, nbytes, base, owndata = out.stdout.split()
    before, after, estimate, nbytes = map(float, (before, after, estimate, nbytes))
    wave_bytes = 4096 * 4096 * 8
    assert nbytes == wave_bytes
    # The array views the buffer the run filled (a capsule owns it), not a copy of it.
    assert base == "PyCapsule" and owndata == "False"
    # Peak growth: the library's working set (its own estimate, which includes the wave it
    # propagates) plus the one output buffer; a second copy would add another wave_bytes.
    delta = after - before
    print(f"peak RSS growth {delta / 2**20:.0f} MiB = library estimate {estimate / 2**20:.0f} MiB "
          f"+ {(delta - estimate) / 2**20:.0f} MiB; one wave {wave_bytes / 2**20:.0f} MiB")
    assert delta < estimate + 1.5 * wave_bytes
