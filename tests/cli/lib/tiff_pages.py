"""Pages of a strip-organised float32 TIFF as the CLI tests need them, with the standard library
only (the tests run where numpy/tifffile may be missing): each page's raw strip bytes, and its
pixels as floats (row 0 at the top)."""
import struct


def _pages(path):
    d = open(path, 'rb').read()
    e = '<' if d[:2] == b'II' else '>'
    off = struct.unpack(e + 'I', d[4:8])[0]
    while off:
        n = struct.unpack(e + 'H', d[off:off + 2])[0]
        tags = {}
        for i in range(n):
            tag, typ, cnt, val = struct.unpack(e + 'HHII', d[off + 2 + 12 * i:off + 14 + 12 * i])
            fmt = 'H' if typ == 3 else 'I'
            if cnt == 1:
                tags[tag] = [struct.unpack(e + fmt, d[off + 10 + 12 * i:off + 10 + 12 * i + struct.calcsize(fmt)])[0]]
            elif tag in (273, 279):
                tags[tag] = list(struct.unpack(e + fmt * cnt, d[val:val + struct.calcsize(fmt) * cnt]))
        yield e, tags, b''.join(d[o:o + c] for o, c in zip(tags[273], tags[279]))
        off = struct.unpack(e + 'I', d[off + 2 + 12 * n:off + 6 + 12 * n])[0]


def pixel_bytes(path):
    """The strip bytes of every page, concatenated."""
    return b''.join(data for _, _, data in _pages(path))


def float_pages(path):
    """[(nx, ny, pixels)] with pixels a tuple of nx*ny floats, row-major."""
    out = []
    for e, tags, data in _pages(path):
        nx, ny = tags[256][0], tags[257][0]
        out.append((nx, ny, struct.unpack(e + 'f' * (nx * ny), data[:4 * nx * ny])))
    return out


def spot_index(gx, gy, extent_x, extent_y, nx, ny):
    """Index in a diffraction page (000 at (nx/2, ny/2), +ky up, row 0 at the top) of the spot
    g = (gx, gy) [1/Å] of a periodic cell extent_x × extent_y [Å]."""
    rx, ry = round(gx * extent_x), round(gy * extent_y)
    return ((ny - (ry % ny + ny // 2) % ny) % ny) * nx + (rx % nx + nx // 2) % nx
