"""How long report.html takes beside the diff that writes it.

Builds two exports of N items (restored; live with 10 % deleted, 20 % changed
in ``status``/``updated_at``, 5 % added), diffs them (which writes report.md
and report.html), then renders report.html again alone, and prints both times
side by side with the machine's load.

    python3 bench/bench_report_html.py 100000 300000
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from pitrdiff.diff.core import diff_exports, load_diff
from pitrdiff.diff.html import render_html
from pitrdiff.export.dataset import write_export

KEY = [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]


def item(i: int, status: str, day: int) -> dict[str, object]:
    return {
        "pk": {"S": f"TENANT#{i % 50}"},
        "sk": {"S": f"ORDER#{i:09d}"},
        "status": {"S": status},
        "total": {"N": f"{i % 997}.{i % 100:02d}"},
        "updated_at": {"S": f"2026-10-{day:02d}T12:00:00Z"},
    }


def run(n: int, root: Path) -> tuple[float, float]:
    restored = (item(i, "PAID", 1 + i % 20) for i in range(n))
    live = (
        item(i, "SHIPPED" if i % 5 == 1 else "PAID", 27 if i % 5 == 1 else 1 + i % 20)
        for i in range(int(n * 1.05))
        if i % 10 != 3 or i >= n
    )
    write_export(restored, root / "restored", table_name="Orders", key_schema=KEY)
    write_export(live, root / "live", table_name="Orders", key_schema=KEY)
    started = time.perf_counter()
    diff = diff_exports(root / "live", root / "restored", root / "diff")
    with_report = time.perf_counter() - started
    started = time.perf_counter()
    render_html(diff.summary, root / "diff", inputs={"live": diff.manifest.live})
    alone = time.perf_counter() - started
    summary = load_diff(root / "diff").summary
    print(f"{n:>9,} items  {summary.headline():<55}  diff+reports {with_report:6.2f}s  "
          f"report.html alone {alone:5.2f}s")  # fmt: skip
    return with_report, alone


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [100_000]
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
    for n in sizes:
        with tempfile.TemporaryDirectory(prefix="bench-html-") as tmp:
            run(n, Path(tmp))


if __name__ == "__main__":
    main()
