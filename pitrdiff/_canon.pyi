"""Type stub of the optional C extension ``pitrdiff._canon`` (``pitrdiff/_canon.c``)."""

from collections.abc import Callable, Sequence
from typing import Any

from pitrdiff.codec import Record

def canonicalize(item: object, /) -> tuple[dict[str, Any], int] | None:
    """``(canonical item, item size)`` as ``codec`` computes them, or None to fall back."""

def encode_record(item: object, key_names: Sequence[str], /) -> Record | None:
    """``codec.encode_record(item, key_names)``, or None to fall back to the Python path."""

def configure(
    dumps: Callable[..., bytes], option: int, hash: Callable[[bytes], int], record: type[Record], /
) -> None:
    """Set the callables ``encode_record`` uses (``orjson.dumps``, xxh3, ``codec.Record``)."""

def encode_lines(
    lines: list[bytes],
    start: int,
    key_names: tuple[str, ...],
    declared: tuple[str | None, ...] | None,
    keys: list[str],
    items: list[str],
    hashes: list[int],
    sizes: list[int],
    key_values: tuple[list[str | bytes], ...],
    room: int,
    /,
) -> tuple[int, int, int, int]:
    """``codec.encode_lines``: ``(next, count, characters, size_sum)``."""

def items_span(body: bytes, /) -> tuple[int, int] | None:
    """``codec.items_span``."""

def encode_items(
    body: bytes,
    start: int,
    end: int,
    key_names: tuple[str, ...],
    declared: tuple[str | None, ...] | None,
    keys: list[str],
    items: list[str],
    hashes: list[int],
    sizes: list[int],
    key_values: tuple[list[str | bytes], ...],
    /,
) -> tuple[int, int, int, bool]:
    """``codec.encode_items``: ``(count, characters, size_sum, complete)``."""
