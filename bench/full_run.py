"""bench/full_run: the 1,871 real posts x 30 workers with the built-in annotator, as a user runs it.

For each code version (this checkout, and a baseline commit checked out beside it with `git worktree`), on a fresh
DATA_DIR, private Redis and fresh database: `manage.py migrate`, `seed_defaults`, `import_corpus` of the real
corpus, one `manage.py fleet_agent`, then `manage.py workers launch --all` with the queues empty. Measured:
- launch: from the command's start until all 30 workers are observed running;
- full run: from the command's start until all 56,130 outcomes are stored and every workbook holds every row
  (read from the workbook files themselves, every byte CRC-checked at the end);
- on PostgreSQL, the peak of pg_stat_activity for the run's database, sampled every 0.2 s.
The run is checked: one outcome per (sample, annotator, domain), the expected total, workbook rows = stored rows.

Run: .venv/bin/python bench/full_run.py [--postgres postgres://postgres@127.0.0.1:5432/postgres]
                                         [--baseline COMMIT] [--repeats N]
"""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CORPUS = ROOT.parent / "shared" / "datasets" / "mh_posts_1871.xlsx"
PYTHON = str(ROOT / ".venv" / "bin" / "python")
WORKERS = 30

from annotation_site.redis_service import start_private  # imports no Django


class Database:
    """Raw SQL on the run's database: the baseline's models may differ from this checkout's."""

    def __init__(self, url: str):
        self.url = url
        self.postgres = url.startswith("postgres")
        self.lock = threading.Lock()
        self.connection = None  # PostgreSQL: one kept open, so a full server cannot lock the bench out

    def query(self, sql: str) -> list[tuple]:
        if self.postgres:
            import psycopg

            with self.lock:
                if self.connection is None:
                    self.connection = psycopg.connect(self.url, autocommit=True)
                return self.connection.execute(sql).fetchall()
        with sqlite3.connect(self.url.removeprefix("sqlite:///"), timeout=30) as conn:
            return conn.execute(sql).fetchall()

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()


@contextmanager
def fresh_database(postgres: str | None, data_dir: Path):
    if not postgres:
        yield f"sqlite:///{data_dir / 'db.sqlite3'}"
        return
    import psycopg

    name = f"bench_full_run_{os.getpid()}"
    with psycopg.connect(postgres, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield postgres.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(postgres, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def manage(code: Path, env: dict, *args: str, **popen) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, "manage.py", *args], cwd=code, env=env, check=True, capture_output=True,
                          text=True, **popen)


def workbook_rows(data_dir: Path) -> int:
    from workers_app.excel.journal import journaled_row_count

    books = list((data_dir / "annotations").glob("annotator_*.xlsx"))
    return sum(journaled_row_count(b) or 0 for b in books) if len(books) == WORKERS else 0


def peak_connections(db: Database, stop: threading.Event, peak: list[int]) -> None:
    name = db.url.rsplit("/", 1)[1]
    while not stop.is_set():
        count = db.query(f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{name}'")[0][0]
        peak[0] = max(peak[0], count)
        stop.wait(0.2)


def one_run(code: Path, postgres: str | None) -> dict:
    data_dir = Path(tempfile.mkdtemp(prefix="bench-full-run-"))
    redis = start_private(data_dir / "redis", persist=False)
    try:
        with fresh_database(postgres, data_dir) as url:
            env = {**os.environ, "DATA_DIR": str(data_dir), "REDIS_URL": redis.url, "DATABASE_URL": url,
                   "FLEET_HOST": "bench"}
            db = Database(url)
            try:
                return measure(code, env, db, data_dir)
            finally:
                db.close()
    finally:
        redis.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


def measure(code: Path, env: dict, db: Database, data_dir: Path) -> dict:
    manage(code, env, "migrate", "-v", "0")
    manage(code, env, "seed_defaults", "-v", "0")
    manage(code, env, "import_corpus", str(CORPUS))
    samples = db.query("SELECT count(*) FROM workers_app_sample")[0][0]
    expected = samples * WORKERS
    agent = subprocess.Popen([PYTHON, "manage.py", "fleet_agent"], cwd=code, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    stop, peak = threading.Event(), [0]
    try:
        time.sleep(4)  # the agent imports Django and Celery once, before any launch
        if db.postgres:
            threading.Thread(target=peak_connections, args=(db, stop, peak), daemon=True).start()
        started, wall_start = time.perf_counter(), time.time()
        command = subprocess.Popen([PYTHON, "manage.py", "workers", "launch", "--all"], cwd=code, env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        launch = full = None
        while full is None:
            now = time.perf_counter() - started
            if command.poll():
                failed = [line for line in command.stdout.read().splitlines() if " FAILED " in line]
                raise RuntimeError(f"workers launch --all exited {command.returncode}, {len(failed)} worker(s) "
                                   f"failed, e.g. {failed[0][:300] if failed else '-'}")
            if now > 900:
                raise TimeoutError(f"not done after 900 s: {db.query('SELECT count(*) FROM workers_app_outcome')}")
            if launch is None and db.query("SELECT count(*) FROM workers_app_worker WHERE observed_state = "
                                           "'running'")[0][0] == WORKERS:
                launch = now
            stored = db.query("SELECT count(*) FROM workers_app_outcome")[0][0]
            if stored == expected and workbook_rows(data_dir) == expected:
                full = now
            time.sleep(0.1)
        if command.wait(timeout=120) != 0:
            raise RuntimeError(f"workers launch --all failed: {command.stdout.read()[-1500:]}")
    finally:
        stop.set()
        agent.terminate()
        agent.wait(timeout=120)
    verify(db, data_dir, expected)
    return {"samples": samples, "launch": launch, "full": full, "rate": expected / full, "peak": peak[0],
            "phases": launch_phases(db, wall_start)}


def launch_phases(db: Database, wall_start: float) -> str:
    """Where the launch's seconds went, from the rows it left: the audit row (the desired state committed), the
    agent's first and last `starting` event, the last worker to report `running`."""
    def seconds(sql: str) -> float:
        value = db.query(sql)[0][0]
        if isinstance(value, str):  # SQLite stores datetimes as text
            from datetime import datetime

            value = datetime.fromisoformat(value)
        return value.timestamp() - wall_start

    committed = seconds("SELECT max(at) FROM audit_auditlog WHERE action = 'launch_worker'")
    first_fork = seconds("SELECT min(at) FROM workers_app_workerevent WHERE to_state = 'starting'")
    last_fork = seconds("SELECT max(at) FROM workers_app_workerevent WHERE to_state = 'starting'")
    last_running = seconds("SELECT max(first) FROM (SELECT min(at) AS first FROM workers_app_workerevent "
                           "WHERE to_state = 'running' GROUP BY worker_id) t")
    return (f"committed {committed:.2f} s, forks {first_fork:.2f}-{last_fork:.2f} s, "
            f"last running {last_running:.2f} s")


def verify(db: Database, data_dir: Path, expected: int) -> None:
    from workers_app.engine.integrity import workbook_rows as rows_in

    distinct = db.query("SELECT count(*) FROM (SELECT DISTINCT sample_id, annotator_id, domain_id "
                        "FROM workers_app_outcome) t")[0][0]
    total = db.query("SELECT count(*) FROM workers_app_outcome")[0][0]
    in_books = sum(rows_in(book) for book in (data_dir / "annotations").glob("annotator_*.xlsx"))
    if not (distinct == total == expected == in_books):
        raise AssertionError(f"expected {expected}: stored {total}, distinct {distinct}, in workbooks {in_books}")


@contextmanager
def checkout(commit: str):
    where = Path(tempfile.mkdtemp(prefix="bench-baseline-")) / "code"
    subprocess.run(["git", "worktree", "add", "--detach", str(where), commit], cwd=ROOT, check=True,
                   capture_output=True)
    try:
        yield where
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(where)], cwd=ROOT, check=True)
        shutil.rmtree(where.parent, ignore_errors=True)


def report(label: str, runs: list[dict]) -> None:
    def summary(field: str, digits: int) -> str:
        values = [r[field] for r in runs]
        return f"median {statistics.median(values):.{digits}f} s (runs {', '.join(f'{v:.{digits}f}' for v in values)})"

    rate = statistics.median(r["rate"] for r in runs)
    peak = f", peak PostgreSQL connections {max(r['peak'] for r in runs)}" if runs[0]["peak"] else ""
    print(f"{label}: full run {summary('full', 1)}, {rate:.0f} outcomes/s; launch --all until 30 running "
          f"{summary('launch', 2)}{peak}")
    for run in runs:
        print(f"  launch phases: {run['phases']}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--postgres", help="a PostgreSQL URL whose server may create a database for the run")
    parser.add_argument("--baseline", help="a commit to measure in the same run, e.g. c23ce6c")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotation_site.settings")
    reader_dir = tempfile.mkdtemp(prefix="bench-full-run-reader-")
    atexit.register(shutil.rmtree, reader_dir, ignore_errors=True)
    os.environ["DATA_DIR"] = reader_dir
    import django

    django.setup()  # only for reading workbook files with this checkout's code
    print(f"{'PostgreSQL' if args.postgres else 'SQLite'}, {os.cpu_count()} cores, corpus {CORPUS.name}")
    if args.baseline:
        with checkout(args.baseline) as code:
            try:
                report(f"baseline {args.baseline}", [one_run(code, args.postgres) for _ in range(args.repeats)])
            except Exception as exc:  # noqa: BLE001  the baseline's failure is a result to print
                print(f"baseline {args.baseline}: FAILED: {exc}".strip()[:2000])
    report("this checkout", [one_run(ROOT, args.postgres) for _ in range(args.repeats)])
    print("goals: full run <= 90 s on SQLite and PostgreSQL, launch <= 5 s, peak connections <= 60")


if __name__ == "__main__":
    main()
