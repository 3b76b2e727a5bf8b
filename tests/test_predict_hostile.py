"""Hostile image files given to `python -m pipeline.stages.predict`: decompression bombs, huge
dimensions under Pillow's bomb limit, truncated and mangled files all end in the clean
error (exit 2, the file named), and nothing is decoded before the size is checked."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from conftest import run_module
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageFile

from pipeline.stages.predict import MAX_PIXELS, InputError, load_image


def blank_png(path: Path, width: int, height: int) -> Path:
    """A valid 8-bit grayscale PNG of any size, written row by row (never held in memory)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    packer = zlib.compressobj(9)
    row = b"\x00" * (width + 1)  # filter byte + black pixels
    data = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
        + chunk(b"IDAT", data)
        + chunk(b"IEND", b"")
    )
    return path


@pytest.fixture
def no_decoding(monkeypatch):
    """Fail the test if any pixel data is decoded."""

    def refuse(self):
        raise AssertionError(f"{self.filename} was decoded before its size was checked")

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)


def test_decompression_bomb_is_refused_cleanly(tmp_path):
    bomb = blank_png(tmp_path / "bomb.png", 20000, 20000)  # 400 Mpixel, above twice Pillow's limit
    assert bomb.stat().st_size < 1_000_000
    for fit in (False, True):
        with pytest.raises(InputError) as err:
            load_image(bomb, fit=fit)
        assert str(bomb) in str(err.value)
    out = run_module("pipeline.stages.predict", str(bomb), "--fit", cwd=tmp_path)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.startswith(f"error: {bomb}") and "decompression bomb" in out.stderr


def test_huge_dimensions_under_the_bomb_limit_are_refused_from_the_header(tmp_path, no_decoding):
    side = int((Image.MAX_IMAGE_PIXELS or 0) ** 0.5) - 1  # just under Pillow's limit: no warning from Pillow
    big = blank_png(tmp_path / "big.png", side, side)
    assert side * side > MAX_PIXELS
    with pytest.raises(InputError, match=f"{big}.*{side}x{side}.*more than --fit accepts"):
        load_image(big, fit=True)
    with pytest.raises(InputError, match=f"{big} is {side}x{side} pixels; expected 28x28"):
        load_image(big, fit=False)


def test_large_photo_within_the_limit_still_fits(tmp_path):
    img = np.zeros((3000, 2000), np.uint8)
    img[1000:2000, 900:1100] = 255  # a stroke: the digit one
    Image.fromarray(img).save(tmp_path / "photo.png")
    gray = load_image(tmp_path / "photo.png", fit=True)
    assert gray.shape == (28, 28) and gray.max() > 0.9


def test_truncated_file_is_refused_cleanly(tmp_path):
    digit = np.zeros((28, 28), np.uint8)
    digit[5:23, 12:16] = 255
    buf = io.BytesIO()
    Image.fromarray(digit).save(buf, "PNG", compress_level=0)
    cut = tmp_path / "cut.png"
    cut.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    out = run_module("pipeline.stages.predict", str(cut), cwd=tmp_path)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.startswith(f"error: {cut} could not be read as an image"), out.stderr


def _encoded(fmt: str) -> bytes:
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8)).save(buf, fmt)
    return buf.getvalue()


SAMPLES = {fmt: _encoded(fmt) for fmt in ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP")}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    fmt=st.sampled_from(sorted(SAMPLES)),
    cut=st.integers(0, 4000),
    flips=st.lists(st.tuples(st.integers(0, 4000), st.integers(0, 255)), max_size=6),
    fit=st.booleans(),
)
def test_mangled_images_load_or_give_the_clean_error(tmp_path, fmt, cut, flips, fit):
    data = bytearray(SAMPLES[fmt])
    for at, value in flips:
        data[at % len(data)] = value
    path = tmp_path / f"mangled.{fmt.lower()}"
    path.write_bytes(bytes(data[: max(1, len(data) - cut)]))
    try:
        gray = load_image(path, fit=fit)
    except InputError as err:
        assert str(path) in str(err)
    else:
        assert gray.shape == (28, 28) and gray.dtype == np.float32 and 0 <= gray.min() <= gray.max() <= 1
