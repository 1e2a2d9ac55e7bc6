"""Avro container blocks decompressed with every codec Avro allows, never past a size limit.

The Avro specification allows ``null``, ``deflate``, ``bzip2``, ``snappy``, ``xz`` and ``zstandard``
(containers written by Spark use snappy). Each is decompressed here with an output bound, so a block
of a few bytes that would inflate to gigabytes (a compression bomb) is refused as soon as it passes
the limit, before that memory is taken.
"""

from __future__ import annotations

import bz2
import lzma
import zlib
from collections.abc import Callable
from typing import Protocol

import cramjam
from backports import zstd

from starling.errors import PROCESS_EXITS, AlertDecodeError

_SNAPPY_CRC_BYTES = 4


def _too_big(codec: str, limit: int) -> AlertDecodeError:
    return AlertDecodeError(f"{codec} block decompresses to more than {limit} bytes (the decoder's limit)")


class _Decompressor(Protocol):
    @property
    def eof(self) -> bool: ...

    @property
    def unused_data(self) -> bytes: ...

    def decompress(self, data: bytes, max_length: int, /) -> bytes: ...


def _whole_stream(
    codec: str, decompressor: _Decompressor, block: bytes, limit: int, trailer_allowed: bool = False
) -> bytes:
    """One compressed stream, the whole block: bounded, complete, and nothing after it (a second
    stream would be decompressed by no one: silently lost data)."""
    out = decompressor.decompress(block, limit + 1)
    if len(out) > limit:
        raise _too_big(codec, limit)
    if not decompressor.eof:
        raise AlertDecodeError(f"truncated {codec} block (its compressed stream does not end)")
    if decompressor.unused_data and not trailer_allowed:
        raise AlertDecodeError(f"{codec} block holds {len(decompressor.unused_data)} bytes after its stream")
    return out


def _deflate(block: bytes, limit: int) -> bytes:
    # fastavro (and so Spark's Python writers) leaves zlib's checksum bytes after the raw stream.
    return _whole_stream("deflate", zlib.decompressobj(-15), block, limit, trailer_allowed=True)


def _bzip2(block: bytes, limit: int) -> bytes:
    return _whole_stream("bzip2", bz2.BZ2Decompressor(), block, limit)


def _xz(block: bytes, limit: int) -> bytes:
    return _whole_stream("xz", lzma.LZMADecompressor(), block, limit)


def _zstandard(block: bytes, limit: int) -> bytes:
    return _whole_stream("zstandard", zstd.ZstdDecompressor(), block, limit)


def _snappy_length(block: bytes) -> int:
    """The uncompressed length a raw snappy block declares in its leading varint."""
    length, shift = 0, 0
    for byte in block[:10]:
        length |= (byte & 0x7F) << shift
        if byte < 0x80:
            return length
        shift += 7
    raise AlertDecodeError("snappy block has no length header")


def _snappy(block: bytes, limit: int) -> bytes:
    """Avro's snappy block: raw snappy, then the big-endian CRC-32 of the uncompressed bytes."""
    data, crc = block[:-_SNAPPY_CRC_BYTES], block[-_SNAPPY_CRC_BYTES:]
    if _snappy_length(data) > limit:
        raise _too_big("snappy", limit)
    out = bytes(cramjam.snappy.decompress_raw(data))
    if zlib.crc32(out).to_bytes(4, "big") != crc:
        raise AlertDecodeError("snappy block fails its CRC-32 check")
    return out


DECOMPRESSORS: dict[str, Callable[[bytes, int], bytes]] = {
    "null": lambda block, limit: block,
    "deflate": _deflate,
    "bzip2": _bzip2,
    "xz": _xz,
    "snappy": _snappy,
    "zstandard": _zstandard,
}


def decompress_block(codec: str, block: bytes, limit: int) -> bytes:
    """A container block's bytes, decompressed; AlertDecodeError if unknown, corrupt or over ``limit``."""
    decompress = DECOMPRESSORS.get(codec)
    if decompress is None:
        known = ", ".join(DECOMPRESSORS)
        raise AlertDecodeError(f"unknown Avro codec {codec!r} (Avro allows {known})")
    try:
        return decompress(block, limit)
    except AlertDecodeError:
        raise
    except BaseException as exc:  # each library raises its own types on corrupt input (cramjam may panic)
        if isinstance(exc, PROCESS_EXITS):
            raise
        raise AlertDecodeError(f"corrupt {codec} block: {type(exc).__name__}: {exc}") from exc
