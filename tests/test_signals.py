"""Ctrl-C and SIGTERM: one line, the right exit code, no temporary file left behind.

What is checked, and why it proves the point:

- ``python -m pitrdiff export`` / ``apply``, stopped by SIGTERM or SIGINT while a
  request is in flight (a fault proxy holds every ``Scan`` / write for 5 s in
  front of a real dynalite), exit 143 / 130, print exactly one line that
  starts ``error: terminated`` / ``error: interrupted``, and leave no
  temporary file; the same export run again completes;
- ``diff`` and ``plan``, stopped at a spread of moments from start-up
  (imports) through DuckDB's queries to the end, either finish normally or
  end as above — never a traceback, never exit 1 — and leave no temporary
  file beside their output nor a ``pitrdiff-*`` directory in ``TMPDIR``;
- the mapping itself, in-process: DuckDB's own interrupt error, a library
  error caused by an interrupt, :class:`~pitrdiff.errors.Terminated` and a
  library :class:`~pitrdiff.errors.Interrupted` with its hint;
- :mod:`pitrdiff.files`: an interrupted atomic write leaves the target
  untouched and no temporary file; a temporary file or working directory a
  ``kill -9`` left is removed by the next run, one of a live process is not.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import duckdb
import pytest
import typer

from pitrdiff import files
from pitrdiff.cli import app as cli_app
from pitrdiff.diff.core import diff_exports
from pitrdiff.errors import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TERMINATED,
    DiffError,
    Interrupted,
    Terminated,
)
from pitrdiff.export.dataset import write_export
from pitrdiff.recovery.plan import write_plan
from tests.faultproxy import FaultProxy
from tests.helpers import Server

ROOT = Path(__file__).resolve().parent.parent
KEYS = [{"AttributeName": "pk", "KeyType": "HASH"}]
CODE = {signal.SIGINT: EXIT_INTERRUPTED, signal.SIGTERM: EXIT_TERMINATED}
WORD = {signal.SIGINT: "interrupted", signal.SIGTERM: "terminated"}
TEMP_NAME = re.compile(r"pitrdiff-tmp-|\.tmp$|^pitrdiff-")


def item(n: int, version: int = 0) -> dict[str, Any]:
    return {"pk": {"S": f"k{n:06d}"}, "v": {"N": str(n + version)}, "s": {"S": "x" * 60}}


def temp_files(*roots: Path) -> list[str]:
    """Every leftover temporary file or directory under ``roots``."""
    found = []
    for root in roots:
        if root.exists():
            found += [str(p) for p in root.rglob("*") if TEMP_NAME.search(p.name)]
    return sorted(found)


def spawn(args: list[str], tmpdir: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmpdir)}
    return subprocess.Popen(
        [sys.executable, "-m", "pitrdiff", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_until(condition: Any, process: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            raise AssertionError(f"ended before the point of work: {process.communicate()}")
        assert time.monotonic() < deadline, "never reached the point of work"
        time.sleep(0.01)


def handlers_installed(process: subprocess.Popen[str]) -> bool:
    """Whether pitrdiff's main() has installed its SIGTERM handler (Linux: /proc/PID/status).

    Before that moment the process is still Python starting up, where a signal
    is Python's own business, not pitrdiff's.
    """
    try:
        status = Path(f"/proc/{process.pid}/status").read_text()
    except OSError:
        return False
    caught = re.search(r"^SigCgt:\s*([0-9a-f]+)$", status, re.MULTILINE)
    return caught is not None and bool(int(caught.group(1), 16) & (1 << (signal.SIGTERM - 1)))


def stop(process: subprocess.Popen[str], signum: int) -> tuple[int, str]:
    """Send ``signum``; return the exit code and stderr."""
    process.send_signal(signum)
    _, err = process.communicate(timeout=60)
    return process.returncode, err


def assert_one_line(err: str, signum: int) -> None:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0] == f"error: {WORD[signum]}" or lines[0].startswith(f"error: {WORD[signum]}: ")
    assert "Traceback" not in err


# --------------------------------------------------------------------------- export, apply


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_export_stopped_mid_scan(
    dynalite_server: Server, table_name: str, tmp_path: Path, signum: int
) -> None:
    dynalite_server.create_table(table_name, KEYS)
    dynalite_server.put_items(table_name, [item(n) for n in range(300)])
    out = tmp_path / "export"
    args = ["export", table_name, "--out", str(out), "--segments", "4", "--region", "us-east-1"]
    with FaultProxy(
        dynalite_server.endpoint, operations={"Scan"}, slow_rate=1.0, slow_seconds=5
    ) as proxy:
        process = spawn([*args, "--endpoint-url", proxy.url], tmp_path)
        wait_until(lambda: proxy.counts["slow"] >= 1, process)
        code, err = stop(process, signum)
    assert code == CODE[signum]
    assert_one_line(err, signum)
    assert temp_files(out, tmp_path) == []
    resumed = spawn([*args, "--endpoint-url", dynalite_server.endpoint, "--json"], tmp_path)
    stdout, stderr = resumed.communicate(timeout=120)
    assert resumed.returncode == EXIT_OK, stderr
    assert '"items": 300' in stdout


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Live and restored exports of 30,000 items: 1 in 10 deleted, 1 in 7 changed."""
    work = tmp_path_factory.mktemp("signals")
    n = 30_000
    write_export((item(i) for i in range(n)), work / "restored", table_name="T", key_schema=KEYS)
    live = (item(i, 1 if i % 7 == 0 else 0) for i in range(n) if i % 10)
    write_export(live, work / "live", table_name="T", key_schema=KEYS)
    diff_exports(work / "live", work / "restored", work / "diff")
    return work


def test_apply_stopped_mid_write(
    dynalite_server: Server, table_name: str, tmp_path: Path, exports: Path
) -> None:
    dynalite_server.create_table(table_name, KEYS)
    plan = tmp_path / "plan.jsonl"
    write_plan(exports / "diff", plan, table=table_name)
    args = ["apply", str(plan), "--yes", "--workers", "2", "--region", "us-east-1"]
    writes = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
    with FaultProxy(
        dynalite_server.endpoint, operations=writes, slow_rate=1.0, slow_seconds=5
    ) as proxy:
        process = spawn([*args, "--endpoint-url", proxy.url], tmp_path)
        wait_until(lambda: proxy.counts["slow"] >= 1, process)
        code, err = stop(process, signal.SIGTERM)
    assert code == EXIT_TERMINATED
    assert_one_line(err, signal.SIGTERM)
    assert temp_files(tmp_path) == []


# --------------------------------------------------------------------------- diff, plan

# From main()'s first moment (the command's imports) through the queries to the end.
DELAYS = (0.0, 0.1, 0.25, 0.4, 0.6, 0.8, 1.1, 1.5, 2.5)


def stopped_at_moments(args: list[str], out: Path, tmp_path: Path, signum: int) -> list[int]:
    codes = []
    for delay in DELAYS:
        tmpdir = tmp_path / f"tmp-{delay}"
        tmpdir.mkdir()
        process = spawn(args, tmpdir)
        wait_until(lambda: handlers_installed(process), process)  # noqa: B023
        time.sleep(delay)
        code, err = stop(process, signum)
        codes.append(code)
        if code == CODE[signum]:
            assert_one_line(err, signum)
        else:  # finished before the signal: a normal result, never a traceback
            assert code in (0, 1), (delay, code, err)
            assert "Traceback" not in err and "error" not in err, err
        assert temp_files(out.parent, tmpdir) == [], (delay, code)
    return codes


pytestmark = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_diff_stopped_at_any_moment(exports: Path, tmp_path: Path, signum: int) -> None:
    out = tmp_path / "out" / "diff"
    args = ["diff", str(exports / "live"), str(exports / "restored"), "--out", str(out)]
    codes = stopped_at_moments([*args, "--overwrite", "--quiet"], out, tmp_path, signum)
    assert codes.count(CODE[signum]) >= 3, codes


def test_plan_stopped_at_any_moment(exports: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "plan.jsonl"
    args = ["plan", str(exports / "diff"), "--out", str(out), "--include", "deleted,changed"]
    codes = stopped_at_moments([*args, "--overwrite", "--quiet"], out, tmp_path, signal.SIGTERM)
    assert codes.count(EXIT_TERMINATED) >= 3, codes


# --------------------------------------------------------------------------- the mapping


def common() -> cli_app.Common:
    return cli_app.Common(None, None, None, json=False, quiet=False, debug=False)


def run_body(body: Any, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(typer.Exit) as stopped:
        cli_app.run(common(), body)
    return stopped.value.exit_code, capsys.readouterr().err


def duckdb_interrupt() -> BaseException:
    """The error DuckDB itself raises when a running query is interrupted."""
    connection = duckdb.connect()
    timer = threading.Timer(0.2, connection.interrupt)
    timer.start()
    try:
        connection.execute("SELECT count(*) FROM range(100000000000) a").fetchall()
    except duckdb.Error as exc:
        return exc
    finally:
        timer.cancel()
    raise AssertionError("the query was not interrupted")


def test_duckdb_interrupt_maps_to_exit_130(capsys: pytest.CaptureFixture[str]) -> None:
    exc = duckdb_interrupt()

    def body() -> None:
        raise exc

    assert run_body(body, capsys) == (EXIT_INTERRUPTED, "error: interrupted\n")


def test_library_error_caused_by_an_interrupt_maps_to_exit_130(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def body() -> None:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as exc:
            raise DiffError("cannot read diff d: query failed") from exc

    assert run_body(body, capsys) == (EXIT_INTERRUPTED, "error: interrupted\n")


def test_terminated_maps_to_exit_143(capsys: pytest.CaptureFixture[str]) -> None:
    def body() -> None:
        raise Terminated

    assert run_body(body, capsys) == (EXIT_TERMINATED, "error: terminated\n")


def test_library_interrupted_keeps_its_hint(capsys: pytest.CaptureFixture[str]) -> None:
    def body() -> None:
        raise Interrupted("interrupted; the export goes on: read it with --from-s3 s3://b/p")

    assert run_body(body, capsys) == (
        EXIT_INTERRUPTED,
        "error: interrupted: the export goes on: read it with --from-s3 s3://b/p\n",
    )


# --------------------------------------------------------------------------- files


@pytest.mark.parametrize("raised", [KeyboardInterrupt, Terminated])
def test_interrupted_atomic_write_leaves_no_temp(tmp_path: Path, raised: type) -> None:
    target = tmp_path / "plan.jsonl"
    target.write_bytes(b"old\n")
    with pytest.raises(raised), files.atomic_writer(target) as handle:
        handle.write(b"new, half written")
        raise raised
    assert target.read_bytes() == b"old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plan.jsonl"]


def dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], check=True,
                          capture_output=True, text=True)  # fmt: skip
    return int(done.stdout)


def test_temps_a_killed_run_left_are_swept_by_the_next_write(tmp_path: Path) -> None:
    target = tmp_path / "manifest.json"
    host = files._host_tag()
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"]) as alive:
        stale = tmp_path / f".manifest.json{files.TEMP_MARK}{host}-{dead_pid()}-abc"
        live = tmp_path / f".manifest.json{files.TEMP_MARK}{host}-{alive.pid}-def"
        foreign_old = tmp_path / f".manifest.json{files.TEMP_MARK}00000000-1-ghi"
        foreign_new = tmp_path / f".manifest.json{files.TEMP_MARK}00000000-1-jkl"
        other_target = tmp_path / f".report.md{files.TEMP_MARK}{host}-{dead_pid()}-mno"
        for path in (stale, live, foreign_old, foreign_new, other_target):
            path.write_bytes(b"partial")
        old = time.time() - files.FOREIGN_TEMP_AGE_S - 60
        os.utime(foreign_old, (old, old))
        files.write_json(target, {"complete": True})
        alive.kill()
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted(["manifest.json", live.name, foreign_new.name, other_target.name])


def test_private_temp_dir_is_removed_and_sweeps_killed_runs(tmp_path: Path) -> None:
    stale = tmp_path / f"pitrdiff-duckdb-{files._host_tag()}-{dead_pid()}-x"
    stale.mkdir()
    (stale / "spill.tmp").write_bytes(b"spilled")
    other_kind = tmp_path / f"pitrdiff-plan-{files._host_tag()}-{dead_pid()}-y"
    other_kind.mkdir()
    with pytest.raises(KeyboardInterrupt), files.private_temp_dir("duckdb", tmp_path) as work:
        assert work.name.startswith(f"pitrdiff-duckdb-{files._host_tag()}-{os.getpid()}-")
        assert oct(work.stat().st_mode & 0o777) == oct(0o700)
        (work / "spill.tmp").write_bytes(b"spilled")
        raise KeyboardInterrupt
    assert sorted(p.name for p in tmp_path.iterdir()) == [other_kind.name]


def test_temps_a_signal_orphaned_are_removed_at_exit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A signal between creating a temp file and owning it (a constructor) must not leak it."""
    # Only this test's directories: other tests of this worker process hold temp dirs in use.
    monkeypatch.setattr(files, "_temp_parents", set())
    orphan = files.temp_path(tmp_path / "deleted.parquet")  # as if the owner never got it
    with files.private_temp_dir("engine", tmp_path) as work:
        (work / "spill.tmp").write_bytes(b"spilled")
        other = tmp_path / f".deleted.parquet{files.TEMP_MARK}{files._host_tag()}-1-zzz"
        other.write_bytes(b"another run's")
        (tmp_path / "deleted.parquet").write_bytes(b"complete")
        removed = files.remove_own_temps()
    assert sorted(removed) == sorted([orphan, work])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["deleted.parquet", other.name])


# --------------------------------------------------------------------------- the console script

EARLY_DELAYS = (0.0, 0.01, 0.02, 0.04, 0.08)
CONSOLE_SCRIPT = Path(sys.executable).parent / "pitrdiff"


@pytest.mark.skipif(not CONSOLE_SCRIPT.exists(), reason="pitrdiff console script not installed")
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_console_script_stopped_while_importing(exports: Path, tmp_path: Path, signum: int) -> None:
    """The installed ``pitrdiff`` script, stopped 0-80 ms after its first statement ran.

    The moment is taken from /proc (SIGTERM caught: ``pitrdiff.__main__.main``
    has installed its handlers, before importing the command line); what comes
    before it is Python's own start-up (see ``pitrdiff/__main__.py``). Every
    delay lands in the imports of the CLI or the first moments of the diff:
    each ends 130 / 143 with one line, never a traceback or a death by signal.
    """
    script = CONSOLE_SCRIPT.read_text(encoding="utf-8")
    assert "from pitrdiff.__main__ import main" in script
    codes = []
    for delay in EARLY_DELAYS:
        tmpdir = tmp_path / f"tmp-{delay}"
        tmpdir.mkdir()
        out = tmp_path / f"out-{delay}" / "diff"
        args = ["diff", str(exports / "live"), str(exports / "restored"), "--out", str(out)]
        process = subprocess.Popen(
            [str(CONSOLE_SCRIPT), *args, "--quiet"],
            env={**os.environ, "TMPDIR": str(tmpdir)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 30
        while not handlers_installed(process):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "handlers never installed"
            time.sleep(0.0005)
        time.sleep(delay)
        code, err = stop(process, signum)
        codes.append(code)
        assert_one_line(err, signum)
        assert temp_files(out.parent, tmpdir) == [], delay
    assert codes == [CODE[signum]] * len(EARLY_DELAYS)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_during_an_import_is_raised_once_the_import_is_done(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, signum: int
) -> None:
    """Raised inside a module's initialisation, it could abort a C extension's (DuckDB's)."""
    from pitrdiff import cli

    (tmp_path / "slow_module_for_signals.py").write_text(
        "import signal\n"
        f"signal.raise_signal({int(signum)})\n"
        "total = sum(range(100_000))\n"
        "DONE = True\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    caught: list[BaseException] = []
    try:
        cli.install_signal_handlers()
        try:
            import slow_module_for_signals  # noqa: F401

            sum(range(10))  # the deferred handler runs at the first call after the import
        except KeyboardInterrupt as exc:
            caught.append(exc)
    finally:
        for s, handler in saved.items():
            signal.signal(s, handler)
        cli._received.clear()
        sys.setprofile(None)
    module = sys.modules.pop("slow_module_for_signals")
    assert module.DONE is True  # the module body ran to its end
    assert [type(e) for e in caught] == [
        Terminated if signum == signal.SIGTERM else KeyboardInterrupt
    ]
