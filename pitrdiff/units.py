"""How pitrdiff writes quantities for people: counts, bytes, durations.

Foundation: the library's reports (``report.md``, ``report.html``) and the
command line's tables use the same forms.
"""


def count(value: int) -> str:
    """``2325`` → ``2,325``: every count pitrdiff shows is written this way."""
    return f"{value:,}"


def human_bytes(count: float) -> str:
    """``1536`` → ``1.5 KB`` (decimal units, as AWS bills)."""
    value = float(count)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(value) < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"  # pragma: no cover


def human_duration(seconds: float) -> str:
    """``75.2`` → ``1m 15s``."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"
