"""bench/full_run: the 1,871 real posts x 30 workers with the built-in annotator, as a user runs it.

For each database (SQLite, then PostgreSQL) and code version (this checkout, and, with --baseline, a commit checked
out beside it with `git worktree`), 3 times, on a fresh DATA_DIR, private Redis and fresh database:
`manage.py migrate`, `seed_defaults`, `import_corpus` of the real corpus, one `manage.py fleet_agent`, then
`manage.py workers launch --all` with the queues empty. Measured:
- launch: from the command's start until all 30 workers are observed running;
- full run: from the command's start until all 56,130 outcomes are stored and every workbook holds every row
  (read from the workbook files themselves, every byte CRC-checked at the end);
- on PostgreSQL, the peak of pg_stat_activity for the run's database, sampled every 0.2 s.
The run is checked: one outcome per (sample, annotator, domain), the expected total, workbook rows = stored rows.

Run: .venv/bin/python bench/full_run.py [--databases sqlite,postgres] [--postgres URL] [--baseline COMMIT]
                                         [--repeats 3] [--quick]
     (--postgres: a server that may create a database for the run, by default BENCH_POSTGRES_URL or
      postgres://postgres@127.0.0.1:5432/postgres; --quick: 20 posts, one worker (`--worker 1:urgency`), SQLite,
      workbooks flushed every second, one run)
"""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import sqlite3
import statistics
import subprocess
import tempfile
import threading
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path

from _setup import QUICK_POSTS, ROOT, Results, arguments, corpus_file, git, log_tail

from annotation_site.redis_service import start_private  # imports no Django

PYTHON = str(ROOT / ".venv" / "bin" / "python")
WORKERS = 30
REPEATS = 3
POSTGRES = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
BASELINE = "the code of the commit given with --baseline, same invocation"
FIGURES = {
    "full_sqlite": {"about": "the 1,871 real posts × 30 workers, built-in annotator, SQLite: from `workers launch "
                             "--all` (queues empty) until all 56,130 outcomes are stored and every workbook holds "
                             "every row, checked", "unit": "s", "goal": "<= 90", "baseline": BASELINE},
    "launch_sqlite": {"about": "the same: `workers launch --all` until all 30 run", "unit": "s", "goal": "<= 5",
                      "baseline": BASELINE},
    "full_postgres": {"about": "the full run on PostgreSQL", "unit": "s", "goal": "<= 90", "baseline": BASELINE},
    "launch_postgres": {"about": "`workers launch --all` until all 30 run, PostgreSQL", "unit": "s", "goal": "<= 5",
                        "baseline": BASELINE},
    "peak_connections": {"about": "peak PostgreSQL connections (`pg_stat_activity`) during the full run",
                         "unit": "connections", "goal": "<= 60", "baseline": BASELINE},
}


class Shape:
    """What one run does: the whole corpus and fleet, or (--quick) a few posts and one worker."""

    def __init__(self, quick: bool):
        self.quick = quick
        self.workers = 1 if quick else WORKERS
        self.scope = ["--worker", "1:urgency"] if quick else ["--all"]
        self.env = {"FLUSH_EVERY_SECONDS": "1"} if quick else {}
        self.settle = 0 if quick else 4


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


def workbooks(data_dir: Path) -> list[Path]:
    """The run's workbooks: under runs/<run>/annotations since named runs, DATA_DIR/annotations before them (a
    --baseline commit may be that old)."""
    return [*data_dir.glob("runs/*/annotations/annotator_*.xlsx"), *data_dir.glob("annotations/annotator_*.xlsx")]


def workbook_rows(data_dir: Path, workers: int) -> int:
    from workers_app.excel.journal import journaled_row_count

    books = workbooks(data_dir)
    return sum(journaled_row_count(b) or 0 for b in books) if len(books) == workers else 0


def peak_connections(db: Database, stop: threading.Event, peak: list[int]) -> None:
    name = db.url.rsplit("/", 1)[1]
    while not stop.is_set():
        count = db.query(f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{name}'")[0][0]
        peak[0] = max(peak[0], count)
        stop.wait(0.2)


def one_run(code: Path, postgres: str | None, shape: Shape) -> dict:
    data_dir = Path(tempfile.mkdtemp(prefix="bench-full-run-"))
    redis = start_private(data_dir / "redis", persist=False)
    try:
        with fresh_database(postgres, data_dir) as url:
            env = {**clean_environment(), "DATA_DIR": str(data_dir), "REDIS_URL": redis.url, "DATABASE_URL": url,
                   "FLEET_HOST": "bench", **shape.env}
            db = Database(url)
            try:
                return measure(code, env, db, data_dir, shape)
            finally:
                db.close()
    finally:
        redis.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


def clean_environment() -> dict[str, str]:
    """This process's environment without what names an install: each run is an install of its own."""
    return {k: v for k, v in os.environ.items()
            if k not in ("DJANGO_SETTINGS_MODULE", "DATA_DIR", "REDIS_URL", "DATABASE_URL", "INSTALL_ID")}


def measure(code: Path, env: dict, db: Database, data_dir: Path, shape: Shape) -> dict:
    manage(code, env, "migrate", "-v", "0")
    manage(code, env, "seed_defaults", "-v", "0")
    manage(code, env, "import_corpus", str(corpus_file(QUICK_POSTS if shape.quick else None, data_dir)))
    samples = db.query("SELECT count(*) FROM workers_app_sample")[0][0]
    expected = samples * shape.workers
    agent_log = data_dir / "agent.log"
    with agent_log.open("w") as log:
        agent = subprocess.Popen([PYTHON, "manage.py", "fleet_agent"], cwd=code, env=env, stdout=log,
                                 stderr=subprocess.STDOUT)
    stop, peak = threading.Event(), [0]
    try:
        time.sleep(shape.settle)  # the agent imports Django and Celery once, before any launch
        if db.postgres:
            threading.Thread(target=peak_connections, args=(db, stop, peak), daemon=True).start()
        started, wall_start = time.perf_counter(), time.time()
        command = subprocess.Popen([PYTHON, "manage.py", "workers", "launch", *shape.scope], cwd=code, env=env,
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
            if agent.poll() is not None:
                raise RuntimeError(f"the fleet agent exited with {agent.returncode}:\n{log_tail(agent_log)}")
            if launch is None and db.query("SELECT count(*) FROM workers_app_worker WHERE observed_state = "
                                           "'running'")[0][0] == shape.workers:
                launch = now
            stored = db.query("SELECT count(*) FROM workers_app_outcome")[0][0]
            if stored == expected and workbook_rows(data_dir, shape.workers) == expected:
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
    in_books = sum(rows_in(book) for book in workbooks(data_dir))
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
    print(f"{label}: full run {summary('full', 1)}, {rate:.0f} outcomes/s; launch until all run "
          f"{summary('launch', 2)}{peak}", flush=True)
    for run in runs:
        print(f"  launch phases: {run['phases']}")


def database_name(postgres: str | None) -> str:
    """The database runs use, with its version: SQLite, or the PostgreSQL server at ``postgres``."""
    if not postgres:
        return f"SQLite {sqlite3.sqlite_version}"
    import psycopg

    with psycopg.connect(postgres, connect_timeout=5) as conn:
        version = conn.info.server_version
    return f"PostgreSQL {version // 10000}.{version % 10000}"


def measure_database(database: str, args, shape: Shape, results: Results) -> None:
    """This checkout (and the baseline commit, if given) on one database, ``repeats`` times each, alternating."""
    postgres = args.postgres if database == "postgres" else None
    results.database(database_name(postgres))
    repeats = 1 if shape.quick else args.repeats
    mine, theirs, failed = [], [], ""
    with checkout(args.baseline) if args.baseline else nullcontext() as code:
        for _ in range(repeats):
            if code is not None and not failed:
                try:
                    theirs.append(one_run(code, postgres, shape))
                except Exception as exc:  # noqa: BLE001  the baseline's failure is a result to print
                    failed = str(exc).strip()[:2000]
                    print(f"baseline {args.baseline} on {database}: FAILED: {failed}", flush=True)
            mine.append(one_run(ROOT, postgres, shape))
    if theirs:
        report(f"baseline {args.baseline} on {database}", theirs)
    report(f"this checkout on {database}", mine)
    note = f"commit {args.baseline}" + (f"; then failed: {failed[:200]}" if failed else "")

    def add(figure: str, field: str) -> None:
        results.add(figure, [r[field] for r in mine], baseline=[r[field] for r in theirs] if theirs else None,
                    baseline_note=note if theirs else "",
                    note=f"baseline {args.baseline} failed: {failed[:200]}" if failed and not theirs else "")

    add(f"full_{database}", "full")
    add(f"launch_{database}", "launch")
    if postgres:
        add("peak_connections", "peak")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--databases", help="which of sqlite,postgres (default: both; --quick: sqlite)")
    parser.add_argument("--postgres", default=POSTGRES, help="a PostgreSQL server that may create a database")
    parser.add_argument("--baseline", help="a commit to measure in the same run, e.g. c23ce6c")
    parser.add_argument("--repeats", type=int, default=REPEATS)
    args = arguments(parser)
    shape = Shape(args.quick)
    databases = (args.databases or ("sqlite" if args.quick else "sqlite,postgres")).split(",")
    if args.baseline:
        args.baseline = git("rev-parse", "--short", args.baseline)
    if set(databases) - {"sqlite", "postgres"}:
        parser.error("--databases: sqlite, postgres or both")
    results = Results(__file__, FIGURES, quick=args.quick)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotation_site.settings")
    reader_dir = tempfile.mkdtemp(prefix="bench-full-run-reader-")
    atexit.register(shutil.rmtree, reader_dir, ignore_errors=True)
    os.environ["DATA_DIR"] = reader_dir
    import django

    django.setup()  # only for reading workbook files with this checkout's code
    print(f"{', '.join(databases)}; {os.cpu_count()} cores; {shape.workers} worker(s)")
    for database in databases:
        measure_database(database, args, shape, results)
    results.write()


if __name__ == "__main__":
    main()
