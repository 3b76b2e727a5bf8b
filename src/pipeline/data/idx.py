"""The IDX file format of MNIST and Fashion-MNIST (uint8 arrays), read and written in one place.

Layout: two zero bytes, a dtype byte (0x08: unsigned byte), the number of
dimensions, one big-endian uint32 per dimension, then the raw bytes.
"""

from __future__ import annotations

import struct

import numpy as np

UBYTE = 0x08


class IDXError(ValueError):
    """Bytes that are not a well-formed uint8 IDX file; the message names the file."""


def encode(array: np.ndarray) -> bytes:
    array = np.ascontiguousarray(array, dtype=np.uint8)
    return (
        struct.pack(">BBBB", 0, 0, UBYTE, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()
    )


def decode(data: bytes, name: str = "data", ndims: tuple[int, ...] | None = None) -> np.ndarray:
    """The uint8 array in `data` (a read-only view); `ndims` limits the accepted number of dimensions."""
    if len(data) < 4:
        raise IDXError(f"{name} is not an IDX file: only {len(data)} bytes")
    magic = int.from_bytes(data[:4], "big")
    ndim = magic & 0xFF
    if magic >> 8 != UBYTE or ndim == 0 or (ndims is not None and ndim not in ndims):
        expected = " or ".join(f"{(UBYTE << 8) | n:#010x}" for n in ndims) if ndims else "0x000008<ndim>"
        raise IDXError(f"{name} is not a uint8 IDX file: magic number {magic:#010x}, expected {expected}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise IDXError(f"{name}: truncated IDX header")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    expected_size = header + int(np.prod(shape))
    if len(data) != expected_size:
        raise IDXError(
            f"{name}: IDX header says shape {shape} ({expected_size} bytes) but the file has "
            f"{len(data)} bytes; it is truncated or corrupted"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)
