"""Binary frame messages: a JSON header plus typed arrays, so the page reads geometry without parsing.

Layout of one websocket binary message (little-endian)::

    b"NAF1"  uint32 header_bytes  header (UTF-8 JSON)  zero padding to a multiple of 8  arrays

In the header every array is a reference ``{"$b": byte offset into the arrays, "dtype": "f32" |
"i32" | "u16" | "u8", "n": count}``; each array starts on an 8-byte boundary, so the page wraps it
in a typed array view (``new Float32Array(buffer, offset, n)``) without copying. Missing float
values are NaN.
"""

from __future__ import annotations

import json
import struct

import numpy as np

__all__ = ["MAGIC", "Packed", "decode_frame", "encode_frame", "pack"]

MAGIC = b"NAF1"
DTYPES = {"f32": np.float32, "i32": np.int32, "u16": np.uint16, "u8": np.uint8}


class Packed:
    """An array to be sent as raw bytes (see :func:`pack`)."""

    __slots__ = ("array", "dtype")

    def __init__(self, array: np.ndarray, dtype: str):
        self.array, self.dtype = array, dtype

    def __len__(self) -> int:
        return int(self.array.size)


def pack(values, dtype: str = "f32") -> Packed:
    """``values`` flattened to a contiguous array of ``dtype`` (f32, i32, u16, u8) for a binary frame.

    >>> len(pack([[1, 2], [3, 4]]))
    4
    """
    return Packed(np.ascontiguousarray(np.asarray(values).ravel(), dtype=DTYPES[dtype]), dtype)


def _json_default(obj):
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return str(obj)


def encode_frame(message: dict) -> bytes:
    """One binary message: the JSON header (arrays replaced by references) and the arrays.

    >>> data = encode_frame({"type": "frame", "xy": pack([1.5, 2.5])})
    >>> decode_frame(data)["xy"].tolist()
    [1.5, 2.5]
    """
    arrays, size = [], 0

    def walk(value):
        nonlocal size
        if isinstance(value, Packed):
            ref = {"$b": size, "dtype": value.dtype, "n": int(value.array.size)}
            arrays.append((size, value.array))
            size += -(-value.array.nbytes // 8) * 8
            return ref
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [walk(v) for v in value]
        return value

    header = walk(message)
    try:
        text = json.dumps(header, allow_nan=False, default=_json_default)
    except ValueError:  # a NaN/inf left in the header (a diverged loss): JSON has none, send null
        from netatlas.report import to_jsonable

        text = json.dumps(to_jsonable(header), allow_nan=False, default=_json_default)
    head = text.encode("utf-8")
    start = -(-(8 + len(head)) // 8) * 8
    out = bytearray(start + size)
    out[:8] = MAGIC + struct.pack("<I", len(head))
    out[8:8 + len(head)] = head
    for offset, array in arrays:
        raw = array.tobytes()
        out[start + offset:start + offset + len(raw)] = raw
    return bytes(out)


def decode_frame(data: bytes) -> dict:
    """The message of :func:`encode_frame` with each array reference replaced by a NumPy array."""
    if data[:4] != MAGIC:
        raise ValueError("not a netatlas frame (bad magic)")
    (length,) = struct.unpack("<I", data[4:8])
    header = json.loads(data[8:8 + length].decode("utf-8"))
    start = -(-(8 + length) // 8) * 8

    def walk(value):
        if isinstance(value, dict):
            if "$b" in value and "dtype" in value:
                dtype = np.dtype(DTYPES[value["dtype"]])
                return np.frombuffer(data, dtype, value["n"], start + value["$b"])
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    return walk(header)
