from __future__ import annotations

import io
import zipfile

import pytest
from PIL import Image as PILImage


@pytest.fixture
def bad_files(make_image_bytes) -> dict[str, bytes]:
    """One of each kind of file ingestion must refuse, with a recognisable reason."""
    good_png = make_image_bytes("PNG", size=(300, 200), seed=99)
    jpeg = make_image_bytes("JPEG", size=(400, 300), seed=98)
    bomb = io.BytesIO()
    # 20000 x 20000 pixels of one colour compresses to a few kilobytes.
    PILImage.new("L", (20000, 20000)).save(bomb, "PNG")
    gif = io.BytesIO()
    PILImage.new("RGB", (10, 10), "red").save(gif, "ICO")
    return {
        "empty.jpg": b"",
        "notes.png": b"Just some text pretending to be a PNG file.\n" * 10,
        "truncated.jpg": jpeg[: len(jpeg) // 2],
        "truncated.png": good_png[: len(good_png) - 200],
        "bomb.png": bomb.getvalue(),
        "logo.svg.png": b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
        "page.jpg": b"<!DOCTYPE html><html><body><img src=x onerror=alert(1)></body></html>",
        "favicon.ico": gif.getvalue(),
        "doc.pdf": b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\n",
    }


EXPECTED_REASONS = {
    "empty.jpg": "empty file",
    "notes.png": "not an image",
    "truncated.jpg": "truncated",
    "truncated.png": "truncated",
    "bomb.png": "decompression bomb",
    "logo.svg.png": "SVG/HTML",
    "page.jpg": "SVG/HTML",
    "favicon.ico": "unsupported format: ICO",
    "doc.pdf": "unsupported format: PDF",
}


def make_zip(members: dict[str, bytes], *, compression=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()
