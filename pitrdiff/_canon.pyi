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
