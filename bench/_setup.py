"""What every benchmark shares: a throwaway DATA_DIR, SQLite database and private Redis; the real corpus (or its
first posts); the ``--quick`` flag; and the results as JSON, which bench/report.py turns into the README's table.

Each bench declares ``FIGURES`` at module level, a literal dict (bench/report.py reads it without importing the
bench): figure name -> {"about": what it is, "unit": ..., "goal": "<= 0.2" / ">= 300" / "== 0" (optional),
"baseline": what the same figure measured without the change is (optional)}. The names are the keys the report
uses: keep them stable.

A full run writes bench/results/<name>.json (committed); ``--quick`` (tiny data, one repetition: proves in seconds
that the bench still runs) writes bench/results/quick/<name>.json (not committed). BENCH_RESULTS moves both.
"""

from __future__ import annotations

import argparse
import atexit
import csv
import datetime as dt
import itertools
import json
import os
import platform
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ROOT.parent / "shared" / "datasets"
REAL_CORPUS = DATASETS / "mh_posts_1871.xlsx"
DEMO_CORPUS = ROOT / "data" / "demo" / "demo_posts.csv"
QUICK_POSTS = 20
STARTED = time.monotonic()  # the bench's start, near enough: it imports this module first
sys.path.insert(0, str(ROOT))


def isolated_django(**env: str) -> Path:
    """Point Django at a fresh DATA_DIR and a private Redis, migrate and seed; return the DATA_DIR."""
    from annotation_site.redis_service import start_private

    data_dir = Path(tempfile.mkdtemp(prefix="annotation-bench-"))
    redis_service = start_private(data_dir / "redis", persist=False)
    atexit.register(lambda: (redis_service.stop(), shutil.rmtree(data_dir, ignore_errors=True)))
    os.environ.update({"DATA_DIR": str(data_dir), "REDIS_URL": redis_service.url,
                       "DJANGO_SETTINGS_MODULE": "annotation_site.settings", **env})
    os.environ.pop("DATABASE_URL", None)
    os.environ.pop("INSTALL_ID", None)  # the fresh DATA_DIR makes its own
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("seed_defaults", verbosity=0)
    return data_dir


def corpus() -> Path:
    """The real corpus. A --quick run (which proves that the bench still runs; its figures mean nothing) takes the
    demo corpus on a clone without ../shared/datasets beside it, as a user's machine is; a full run refuses."""
    if REAL_CORPUS.exists():
        return REAL_CORPUS
    if "--quick" in sys.argv:
        print(f"[bench] {REAL_CORPUS} is absent: the demo corpus stands in for --quick", file=sys.stderr)
        return DEMO_CORPUS
    raise SystemExit(f"{REAL_CORPUS} is absent: the figures are measured on the real corpus (--quick runs without it)")


def import_posts(limit: int | None = None) -> int:
    """Import the corpus (only its first ``limit`` posts when given); return how many posts are stored."""
    from workers_app.importing.service import import_corpus
    from workers_app.models import Sample

    import_corpus(corpus(), actor="bench")
    if limit is not None:
        Sample.objects.filter(pk__in=Sample.objects.order_by("pk").values("pk")[limit:]).delete()
    return Sample.objects.count()


def corpus_file(limit: int | None, folder: Path) -> Path:
    """The corpus, or a copy of its first ``limit`` posts in ``folder`` (for benches that import it with
    ``manage.py import_corpus``)."""
    source_path = corpus()
    if limit is None:
        return source_path
    if source_path.suffix == ".csv":
        with source_path.open(newline="", encoding="utf-8") as source:
            rows = list(itertools.islice(csv.reader(source), limit + 1))
        path = folder / f"first_{limit}_{source_path.name}"
        with path.open("w", newline="", encoding="utf-8") as copy:
            csv.writer(copy).writerows(rows)
        return path
    import openpyxl

    source = openpyxl.load_workbook(source_path, read_only=True)
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = source.active.title
    for row in source.active.iter_rows(max_row=limit + 1, values_only=True):
        sheet.append(row)
    source.close()
    path = folder / f"first_{limit}_{source_path.name}"
    book.save(path)
    return path


def worker_env() -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": f"sqlite:///{os.environ['DATA_DIR']}/db.sqlite3"}


def log_tail(log: Path) -> str:
    """The end of a process's log, long enough to hold a traceback through Django and redis-py."""
    return log.read_text(errors="replace")[-8000:]


def start_agent(log: Path, *, env: dict[str, str] | None = None, command: Sequence[str] = ("manage.py", "fleet_agent"),
                timeout: float = 120) -> subprocess.Popen:
    """A fleet agent of this bench's install (``python COMMAND``), its output in ``log``; returns once it has
    recorded its first beat: it has imported Django and Celery and claimed the install, so a launch from here on
    measures the launch, and a fault cannot hit the agent's own start."""
    from workers_app.models import Host

    with log.open("w") as output:
        agent = subprocess.Popen([sys.executable, *command], cwd=ROOT, env=env or worker_env(), stdout=output,
                                 stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while not Host.objects.filter(agent_pid=agent.pid, last_seen__isnull=False).exists():
        if agent.poll() is not None:
            raise RuntimeError(f"the fleet agent exited with {agent.returncode}:\n{log_tail(log)}")
        if time.monotonic() > deadline:
            agent.kill()
            raise TimeoutError(f"the fleet agent did not beat within {timeout:.0f} s:\n{log_tail(log)}")
        time.sleep(0.05)
    return agent


def wait_for_pings(nodes: Sequence[str], timeout: float = 120,
                   processes: Sequence[tuple[subprocess.Popen, Path]] = ()) -> None:
    """Until every Celery node answers a ping; a process (with its log) that exits first fails with its log's end."""
    from annotation_site.celery import app

    deadline = time.monotonic() + timeout
    missing = set(nodes)
    while missing:
        for reply in app.control.ping(destination=list(missing), timeout=0.2) or []:
            missing -= set(reply)
        for process, log in processes:
            if process.poll() is not None:
                raise RuntimeError(f"a celery worker exited with {process.returncode}:\n{log_tail(log)}")
        if missing and time.monotonic() > deadline:
            raise TimeoutError(f"{len(missing)} of {len(nodes)} Celery nodes did not answer within {timeout:.0f} s")


def start_celery_workers(queues: Sequence[str], *, threads: int = 4, prefix: str = "",
                         env: dict[str, str] | None = None, timeout: float = 120) -> list[subprocess.Popen]:
    """Plain `celery worker` processes, not the fleet's: one per queue, named ``<prefix><queue>@<host>``, each
    with its log in DATA_DIR; returned once every one answers a ping (within ``timeout`` seconds)."""
    host = socket.gethostname()
    started = []
    for queue in queues:
        log = Path(os.environ["DATA_DIR"]) / f"{prefix}{queue}.log"
        with log.open("w") as output:
            started.append((subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "annotation_site", "worker", "-Q", queue, "-n",
                 f"{prefix}{queue}@{host}", "-P", "threads", "-c", str(threads), "--without-mingle",
                 "--without-gossip", "-l", "WARNING"], cwd=ROOT, env=env or worker_env(), stdout=output,
                stderr=subprocess.STDOUT), log))
    processes = [process for process, _ in started]
    try:
        wait_for_pings([f"{prefix}{queue}@{host}" for queue in queues], timeout, processes=started)
    except BaseException:
        stop_processes(processes)
        raise
    return processes


def stop_processes(processes: Sequence[subprocess.Popen]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        process.wait()


def arguments(parser: argparse.ArgumentParser | None = None, argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the bench's own options plus ``--quick``; from here on a SIGTERM (a timeout around the bench) unwinds
    through the bench's clean-up and atexit (private Redis, servers, temporary folders)."""
    signal.signal(signal.SIGTERM, _terminated)
    parser = parser or argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true",
                        help="tiny data and one repetition: proves in seconds that the bench still runs; the "
                             "figures go to bench/results/quick/ and mean nothing")
    return parser.parse_args(argv)


def in_fresh_process(script: str, *args: str, quick: bool) -> dict:
    """Run ``script`` with ``args`` (and --quick) in a process of its own, so that no run inherits another's Redis,
    database or API windows; return the JSON it prints last."""
    done = subprocess.run([sys.executable, script, *args, *(["--quick"] if quick else [])], cwd=ROOT,
                          capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"{Path(script).name} {' '.join(args)} failed:\n{done.stderr[-8000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def summary(values: Sequence[float]) -> dict:
    """Median, min, max and the number of repetitions of one figure's measurements."""
    if not values:
        raise ValueError("a figure needs at least one measurement")
    rounded = [float(f"{v:.6g}") for v in values]
    return {"median": statistics.median(rounded), "min": min(rounded), "max": max(rounded),
            "repetitions": len(rounded), "values": rounded}


def _terminated(signum: int, frame) -> None:
    sys.exit(f"terminated by signal {signum}")


def results_dir(quick: bool) -> Path:
    root = Path(os.environ.get("BENCH_RESULTS") or ROOT / "bench" / "results")
    return root / "quick" if quick else root


class Results:
    """The figures of one invocation of a bench, written as bench/results[/quick]/<name>.json."""

    def __init__(self, bench_file: str, figures: dict[str, dict], *, quick: bool):
        self.name = Path(bench_file).stem
        self.declared = figures
        self.quick = quick
        self.figures: dict[str, dict] = {}
        self.databases: list[str] = []
        self.load_before = os.getloadavg()[0]

    def add(self, name: str, values: Sequence[float], *, baseline: Sequence[float] | None = None,
            baseline_note: str = "", note: str = "") -> dict:
        """Record a figure (its measurements, one per repetition) and, where the bench has one, the same figure
        measured without the change in this invocation (``baseline_note`` adds to its declared description)."""
        if name not in self.declared:
            raise KeyError(f"{self.name}: figure {name!r} is not in FIGURES ({', '.join(self.declared)})")
        declared = self.declared[name]
        figure = {"name": name, "about": declared["about"], "unit": declared["unit"], **summary(values)}
        if "goal" in declared:
            figure["goal"] = declared["goal"]
        if baseline is not None:
            if "baseline" not in declared:
                raise KeyError(f"{self.name}: figure {name!r} declares no baseline")
            about = f"{declared['baseline']} ({baseline_note})" if baseline_note else declared["baseline"]
            figure["baseline"] = {"about": about, **summary(baseline)}
        if note:
            figure["note"] = note
        self.figures[name] = figure
        return figure

    def database(self, description: str) -> None:
        """Name a database the bench ran on (``SQLite 3.40.1``); by default, the one Django uses, if any."""
        self.databases.append(description)

    def write(self) -> Path:
        folder = results_dir(self.quick)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{self.name}.json"
        commit = git("rev-parse", "HEAD")
        document = {
            "bench": self.name,
            "quick": self.quick,
            "commit": commit,
            # Code changed since the commit; results and documents written meanwhile do not count.
            "uncommitted_changes": bool(git("status", "--porcelain", "--untracked-files=no", "--", ".",
                                            ":(exclude)bench/results", ":(exclude)*.md")),
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "seconds": round(time.monotonic() - STARTED, 1),
            "command": shlex.join(sys.orig_argv),
            "machine": {**machine(), "database": "; ".join(self.databases) or _django_database()},
            "load_average": {"before": self.load_before, "after": os.getloadavg()[0]},
            "figures": list(self.figures.values()),
        }
        temporary = path.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
        os.replace(temporary, path)
        print(f"results: {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
        return path


def machine() -> dict:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "cpu_model": model, "python": platform.python_version()}


def _django_database() -> str:
    if "django" not in sys.modules:
        return "none"
    from django.conf import settings

    if not settings.configured:
        return "none"
    from django.db import connection

    if connection.vendor == "sqlite":
        return f"SQLite {connection.Database.sqlite_version}"
    if connection.vendor == "postgresql":
        version = connection.pg_version
        return f"PostgreSQL {version // 10000}.{version % 10000}"
    return connection.vendor


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
