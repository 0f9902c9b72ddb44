#!/usr/bin/python3
"""safetensors_np.py: read and write safetensors files with numpy alone (no safetensors package).

    from safetensors_np import read_safetensors, write_safetensors
    tensors, metadata = read_safetensors("model.safetensors")    # {name: np.ndarray}, {str: str}
    write_safetensors("out.safetensors", {"w": np.zeros((2, 3), np.float32)}, {"k": "v"})

The format (see docs/checkpoints.md):

    N: uint64 little-endian | header: N bytes of UTF-8 JSON | byte buffer: the tensors' data

The header maps each tensor name to {"dtype", "shape", "data_offsets": [begin, end)}, the offsets
counted from the first byte of the buffer; "__metadata__" (optional) maps strings to strings.

Writing produces what latentlab's C++ writer produces, which its strict reader accepts: compact
JSON, "__metadata__" first with its keys sorted, tensors in name order with contiguous offsets (no holes), each entry's
keys as dtype, shape, data_offsets, and the header padded with spaces so that the buffer starts at a
multiple of 8 bytes of the file. Only F32 and I64 are written (float32 and int64 arrays; convert
anything else explicitly), little-endian whatever the host. The bytes are identical to what
ll::io::serialize_safetensors writes for the same content. The file is written to a temporary name
and renamed into place.

Reading validates like the C++ reader: the header length bound, the header as a JSON object
without repeated keys, every entry's dtype, shape and offsets, shape x dtype size = byte length,
no overlaps and no holes (the tensors cover the buffer exactly). It reads F64, F32, F16, BF16
(widened to float32), I64, I32, I16, I8, U8 and BOOL; arrays are copies, writable, native order.

Run it as a script to check a file: /usr/bin/python3 safetensors_np.py FILE [FILE...] lists each
tensor's name, dtype and shape and the metadata.
"""
import json
import os
import struct
import sys

import numpy as np

MAX_HEADER_BYTES = 100 << 20  # as the C++ reader: refuse headers above 100 MiB
ALIGNMENT = 8
METADATA_KEY = "__metadata__"

# dtype name -> (numpy little-endian dtype, element size). BF16 is read as uint16 and widened.
READ_DTYPES = {
    "F64": ("<f8", 8), "F32": ("<f4", 4), "F16": ("<f2", 2), "BF16": ("<u2", 2),
    "I64": ("<i8", 8), "I32": ("<i4", 4), "I16": ("<i2", 2), "I8": ("i1", 1),
    "U8": ("u1", 1), "BOOL": ("?", 1),
}
WRITE_DTYPES = {np.dtype(np.float32): ("F32", "<f4"), np.dtype(np.int64): ("I64", "<i8")}


class FormatError(ValueError):
    """A safetensors file that breaks the format; the message names the file and the tensor."""


def _no_duplicate_keys(pairs):
    result = {}
    for key, value in pairs:
        if key in result:
            raise FormatError(f"header has the key '{key}' twice")
        result[key] = value
    return result


def _is_uint(value):
    # bool is an int subclass in Python; JSON true/false is not a number here.
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def parse_safetensors(data, source="<bytes>"):
    """Parses a whole file held in `data` (bytes); returns ({name: np.ndarray}, {str: str})."""

    def fail(what):
        raise FormatError(f"safetensors file '{source}': {what}")

    if len(data) < 8:
        fail(f"{len(data)} bytes, fewer than the 8 of the header length")
    (n,) = struct.unpack("<Q", data[:8])
    if n > MAX_HEADER_BYTES:
        fail(f"header length {n} exceeds the limit of {MAX_HEADER_BYTES} bytes")
    if n > len(data) - 8:
        fail(f"truncated: header length {n} is larger than the file's remaining {len(data) - 8} bytes")
    raw_header = bytes(data[8:8 + n])
    if not raw_header.startswith(b"{"):
        fail("header does not start with '{'")
    try:
        header = json.loads(raw_header.decode("utf-8"), object_pairs_hook=_no_duplicate_keys)
    except FormatError as e:
        fail(str(e))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        fail(f"header is not valid JSON: {e}")
    if not isinstance(header, dict):
        fail("header is not a JSON object")

    metadata = header.pop(METADATA_KEY, {})
    if not isinstance(metadata, dict):
        fail(f'"{METADATA_KEY}" is {type(metadata).__name__}, expected an object of strings')
    for key, value in metadata.items():
        if not isinstance(value, str):
            fail(f"non-string metadata: '{key}' is {json.dumps(value)}")

    buffer = memoryview(data)[8 + n:]
    size = len(buffer)
    spans = []
    entries = {}
    for name, entry in header.items():
        where = f"tensor '{name}'"
        if not isinstance(entry, dict):
            fail(f"{where}: entry is {type(entry).__name__}, expected an object")
        for key in ("dtype", "shape", "data_offsets"):
            if key not in entry:
                fail(f'{where}: missing "{key}"')
        dtype = entry["dtype"]
        if dtype not in READ_DTYPES:
            fail(f"unknown dtype '{dtype}' for tensor '{name}'; readable: {', '.join(READ_DTYPES)}")
        shape = entry["shape"]
        if not isinstance(shape, list) or not all(_is_uint(d) for d in shape):
            fail(f"{where}: shape {json.dumps(shape)} is not a list of non-negative integers")
        offsets = entry["data_offsets"]
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_uint(o) for o in offsets)):
            fail(f"{where}: data_offsets {json.dumps(offsets)} is not [begin, end] of two "
                 "non-negative integers")
        begin, end = offsets
        if begin > end:
            fail(f"{where}: data_offsets [{begin}, {end}] have begin > end")
        if end > size:
            fail(f"{where}: data_offsets [{begin}, {end}] end beyond the byte buffer, which has "
                 f"{size} bytes (truncated file?)")
        count = int(np.prod(shape, dtype=object)) if shape else 1
        need = count * READ_DTYPES[dtype][1]
        if need != end - begin:
            fail(f"{where}: size mismatch: shape {shape} of {dtype} needs {need} bytes but "
                 f"data_offsets [{begin}, {end}] span {end - begin}")
        spans.append((begin, end, name))
        entries[name] = (dtype, shape, begin, end)

    # Sorted by (begin, end), empty tensors first at a given offset: every non-empty span must
    # start exactly where the covered part of the buffer ends.
    covered = 0
    previous = None
    for begin, end, name in sorted(spans):
        if begin == end:
            continue
        if begin < covered:
            fail(f"tensors '{previous[2]}' ({list(previous[:2])}) and '{name}' ([{begin}, {end}]) overlap")
        if begin > covered:
            fail(f"hole in the byte buffer: bytes [{covered}, {begin}) belong to no tensor")
        covered = end
        previous = (begin, end, name)
    if covered != size:
        fail(f"hole in the byte buffer: bytes [{covered}, {size}) belong to no tensor")

    tensors = {}
    for name, (dtype, shape, begin, end) in entries.items():
        array = np.frombuffer(buffer[begin:end], READ_DTYPES[dtype][0])
        if dtype == "BF16":
            array = (array.astype("<u4") << 16).view("<f4")
        tensors[name] = array.reshape(shape).astype(array.dtype.newbyteorder("="), copy=True)
    return tensors, dict(metadata)


def read_safetensors(path):
    """Reads and validates a safetensors file; returns ({name: np.ndarray}, {str: str})."""
    with open(path, "rb") as f:
        data = f.read()
    return parse_safetensors(data, str(path))


def serialize_safetensors(tensors, metadata=None):
    """The bytes of a safetensors file holding `tensors` ({name: float32 or int64 array})."""
    header = {}
    if metadata:
        for key, value in metadata.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise TypeError(f"metadata must map str to str, got {key!r}: {value!r}")
        header[METADATA_KEY] = {key: metadata[key] for key in sorted(metadata)}
    chunks = []
    offset = 0
    for name in sorted(tensors):
        if not isinstance(name, str) or name == METADATA_KEY or not name:
            raise ValueError(f"invalid tensor name {name!r}")
        array = np.asarray(tensors[name])
        if array.dtype not in WRITE_DTYPES:
            raise TypeError(f"tensor '{name}' is {array.dtype}; only float32 (F32) and int64 (I64) "
                            "are written: convert it first")
        dtype_name, le = WRITE_DTYPES[array.dtype]
        raw = np.ascontiguousarray(array, dtype=le).tobytes()
        header[name] = {"dtype": dtype_name, "shape": [int(d) for d in array.shape],
                        "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * ((-(8 + len(text))) % ALIGNMENT)
    return struct.pack("<Q", len(text)) + text + b"".join(chunks)


def write_safetensors(path, tensors, metadata=None):
    """Writes `tensors` ({name: float32 or int64 array}) and `metadata` ({str: str}) to `path`."""
    data = serialize_safetensors(tensors, metadata)
    tmp = f"{path}.tmp.{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return len(data)


def _self_test():
    rng = np.random.default_rng(0)
    tensors = {"b": rng.standard_normal((3, 5)).astype(np.float32),
               "a.scalar": np.array(2.5, np.float32),
               "a.count": np.array(7, np.int64),
               "empty": np.zeros((0, 4), np.float32)}
    data = serialize_safetensors(tensors, {"k": "v"})
    (n,) = struct.unpack("<Q", data[:8])
    assert (8 + n) % ALIGNMENT == 0
    back, meta = parse_safetensors(data)
    assert meta == {"k": "v"} and set(back) == set(tensors)
    for name, value in tensors.items():
        assert back[name].dtype == value.dtype and back[name].shape == value.shape
        assert np.array_equal(back[name], value)
    assert serialize_safetensors(back, meta) == data
    for cut in range(len(data)):  # every truncation is refused, never crashes
        try:
            parse_safetensors(data[:cut])
        except FormatError:
            continue
        raise AssertionError(f"a file cut at {cut} bytes was accepted")
    try:
        parse_safetensors(data + b"\0")
        raise AssertionError("a trailing byte was accepted")
    except FormatError:
        pass
    print("safetensors_np self-test passed")


def main(argv):
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    if argv[0] == "--self-test":
        _self_test()
        return 0
    for path in argv:
        tensors, metadata = read_safetensors(path)
        print(f"{path}: {len(tensors)} tensors, {os.path.getsize(path)} bytes")
        for key, value in metadata.items():
            print(f"  metadata {key}: {value}")
        for name in sorted(tensors):
            t = tensors[name]
            print(f"  {name:28s} {str(t.dtype):8s} {list(t.shape)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
