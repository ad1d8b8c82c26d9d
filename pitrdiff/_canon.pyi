"""Type stub of the optional C extension ``pitrdiff._canon`` (``pitrdiff/_canon.c``)."""

from typing import Any

def canonicalize(item: object, /) -> tuple[dict[str, Any], int] | None:
    """``(canonical item, item size)`` as ``codec`` computes them, or None to fall back."""
