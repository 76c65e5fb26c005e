"""Hostile inputs built on the spot: PNGs written row by row so a 64 M pixel file costs only
its compressed size (a few hundred kilobytes) to make."""

from __future__ import annotations

import struct
import zlib

import pytest


def flat_png(width: int, height: int, *, bit_depth: int = 8, color_type: int = 6) -> bytes:
    """A PNG of zeros. color_type 6 is RGBA, 2 RGB, 0 greyscale."""
    bands = {6: 4, 2: 3, 0: 1}[color_type]

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    row = b"\x00" + bytes(width * bands * bit_depth // 8)
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


@pytest.fixture(scope="session")
def bit_depth_bomb(tmp_path_factory) -> bytes:
    """The file from the report: 8000x7999 16-bit RGBA zeros, 64 M pixels (under the pixel
    limit), about 490 KB on disk and 512 MB decoded."""
    return flat_png(8000, 7999, bit_depth=16, color_type=6)


# One of everything the app serves, in one project, plus another project with its own annotator
# (the API tests' world): the HTML tests walk the same objects.
from tests.api.conftest import other_annotator, world  # noqa: E402, F401
