"""bench/flush: the cost of flushing 50 new rows into a workbook of 1,000 / 5,000 / 20,000 rows: WorkbookJournal
(append + publish), median of 7, against openpyxl reload + append + save of the same rows on a copy of the same
workbook, median of 3, measured in the same run.

Run from the project root:  .venv/bin/python bench/flush.py [--quick]   (--quick: 1,000 rows, one flush of each)
Goal: a journal flush of 50 rows into a 20,000-row workbook in <= 0.2 s.
"""

from __future__ import annotations

import datetime as dt
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import openpyxl
from _setup import Results, arguments

from workers_app.excel.journal import Column, WorkbookJournal

SIZES = (1_000, 5_000, 20_000)
BATCH = 50
JOURNAL_REPEATS = 7
OPENPYXL_REPEATS = 3
FIGURES = {
    "flush_1000": {"about": "flush of 50 new rows into a workbook of 1,000 rows (journal append + publish)",
                   "unit": "s", "baseline": "openpyxl reload + append + save"},
    "flush_5000": {"about": "the same into a workbook of 5,000 rows", "unit": "s",
                   "baseline": "openpyxl reload + append + save"},
    "flush_20000": {"about": "the same into a workbook of 20,000 rows", "unit": "s", "goal": "<= 0.2",
                    "baseline": "openpyxl reload + append + save"},
}

COLUMNS = [
    Column("sample id", 12),
    Column("text", 60),
    Column("label", 14),
    Column("status", 12),
    Column("reason", 40),
    Column("raw answer", 60),
    Column("model", 18),
    Column("prompt version", 10),
    Column("timestamp", 20),
    Column("attempts", 9),
]

_WORDS = (
    "the", "a", "of", "to", "and", "in", "is", "that", "for", "it", "with", "as", "was", "on", "be", "by",
    "this", "are", "from", "at", "or", "an", "which", "not", "have", "has", "had", "patient", "report",
    "model", "label", "annotation", "sample", "reason", "because", "evidence", "clearly", "states", "however",
    "likely", "positive", "negative", "neutral", "uncertain", "mention", "symptom", "treatment", "outcome",
    "study", "result", "therefore", "suggests", "context", "sentence", "paragraph", "document", "claim",
    "support", "contradict", "ambiguous", "explicit", "implicit", "category", "review", "confidence", "score",
    "answer", "question", "relevant", "irrelevant", "example", "instance", "dataset", "annotator",
)


_SYLLABLES = ("ka", "lo", "mi", "ter", "an", "sul", "pre", "or", "vin", "est", "du", "rho", "qua", "ble", "zen", "tic")
# Common words plus a few thousand rarer ones: compresses about like real prose (~3:1), not like a 75-word loop.
_RARE = tuple(
    "".join(random.Random(seed).choices(_SYLLABLES, k=random.Random(-seed).randint(2, 4))) for seed in range(3000)
)


def _prose(rng: random.Random, size: int) -> str:
    words: list[str] = []
    length = 0
    while length < size:
        word = rng.choice(_WORDS) if rng.random() < 0.55 else rng.choice(_RARE)
        words.append(word)
        length += len(word) + 1
    return " ".join(words)[:size].capitalize() + "."


def make_row(rng: random.Random, sample_id: int) -> tuple[list[object], bool]:
    label = rng.choice(["positive", "negative", "neutral", "uncertain"])
    reason = _prose(rng, 200)
    raw_answer = f'{{"label": "{label}", "reason": "{reason}", "notes": "{_prose(rng, 1200)}"}}'
    values: list[object] = [
        sample_id,
        _prose(rng, 1000),
        label,
        rng.choice(["done", "done", "done", "retry"]),
        reason,
        raw_answer,
        "model-large-2024-08",
        "v7",
        dt.datetime(2024, 1, 1) + dt.timedelta(seconds=sample_id * 7),
        rng.randint(1, 3),
    ]
    return values, rng.random() < 0.05


def build(folder: Path, rows: int, rng: random.Random) -> WorkbookJournal:
    journal = WorkbookJournal(folder / f"annotator_1_bench{rows}.xlsx", COLUMNS)
    for start in range(1, rows + 1, 1000):
        batch = [make_row(rng, i) for i in range(start, min(start + 1000, rows + 1))]
        journal.append(batch, last_key=start + len(batch) - 1)
    journal.publish()
    return journal


def time_journal_flush(journal: WorkbookJournal, rng: random.Random, repeats: int) -> list[float]:
    timings = []
    for _ in range(repeats):
        first = journal.last_key + 1
        batch = [make_row(rng, i) for i in range(first, first + BATCH)]  # generated outside the timing
        started = time.perf_counter()
        journal.append(batch, last_key=first + BATCH - 1)
        journal.publish()
        timings.append(time.perf_counter() - started)
    return timings


def time_reopen(journal: WorkbookJournal) -> float:
    started = time.perf_counter()
    WorkbookJournal(journal.path, COLUMNS)
    return time.perf_counter() - started


def time_openpyxl_flush(source: Path, rng: random.Random, repeats: int) -> list[float]:
    """Baseline on a separate copy: load_workbook + append + save of the same content."""
    copy = source.with_name("openpyxl_" + source.name)
    shutil.copyfile(source, copy)
    timings = []
    for repeat in range(repeats):
        batch = [make_row(rng, 10_000_000 + repeat * BATCH + i) for i in range(BATCH)]
        started = time.perf_counter()
        book = openpyxl.load_workbook(copy)
        sheet = book.active
        for values, _ in batch:
            sheet.append([v.isoformat() if isinstance(v, dt.datetime) else v for v in values])
        book.save(copy)
        timings.append(time.perf_counter() - started)
    return timings


def main() -> None:
    args = arguments()
    sizes = SIZES[:1] if args.quick else SIZES
    journal_repeats, openpyxl_repeats = (1, 1) if args.quick else (JOURNAL_REPEATS, OPENPYXL_REPEATS)
    results = Results(__file__, FIGURES, quick=args.quick)
    rng = random.Random(20240601)
    rows_seen = []
    with tempfile.TemporaryDirectory(prefix="flush-bench-") as temp:
        folder = Path(temp)
        for rows in sizes:
            started = time.perf_counter()
            journal = build(folder, rows, rng)
            built = time.perf_counter() - started
            size_mb = journal.path.stat().st_size / 1e6
            print(f"built {rows:,} rows in {built:.1f} s; workbook {size_mb:.1f} MB", flush=True)
            flushes = time_journal_flush(journal, rng, journal_repeats)
            reopen = time_reopen(journal)
            baseline = time_openpyxl_flush(journal.path, rng, openpyxl_repeats)
            results.add(f"flush_{rows}", flushes, baseline=baseline)
            rows_seen.append((rows, statistics.median(flushes), reopen, statistics.median(baseline), size_mb))

    print()
    print(f"flush of {BATCH} rows (~1.5 kB answers, 10 columns); journal median of {journal_repeats}, "
          f"openpyxl median of {openpyxl_repeats}")
    print(f"{'rows':>7} | {'journal flush median s':>22} | {'openpyxl reload+save median s':>29} | "
          f"{'journal reopen s':>16} | {'xlsx MB':>7}")
    for rows, flush, reopen, baseline, size_mb in rows_seen:
        print(f"{rows:>7,} | {flush:>22.4f} | {baseline:>29.3f} | {reopen:>16.4f} | {size_mb:>7.1f}")
    results.write()


if __name__ == "__main__":
    main()
