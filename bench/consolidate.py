"""bench/consolidate: consolidate 30 workbooks x 1,871 samples (a completed built-in run on the real posts),
agreement statistics included (1,000 bootstrap resamples per alpha). Median of 3. Baseline in the same run, also
median of 3: only reading the 30 workbooks with openpyxl (read-only), which a workbook-based consolidation would pay
first.
Run: .venv/bin/python bench/consolidate.py [--quick]   (--quick: 20 posts, one run of each)
"""

from __future__ import annotations

import statistics
import time

import openpyxl
from _setup import QUICK_POSTS, Results, arguments, import_posts, isolated_django

isolated_django()

from django.utils import timezone

from admin_ops.services.consolidate import consolidate
from workers_app.engine.builtin import builtin_answer
from workers_app.engine.flush import flush_workbook
from workers_app.engine.keys import WorkerKey
from workers_app.engine.parsing import parse_answer
from workers_app.models import Annotator, Domain, Outcome, Sample
from workers_app.runs.current import current_run
from workers_app.runs.files import workbook_path

RUNS = 3
FIGURES = {
    "consolidate": {"about": "consolidate 30 workbooks × 1,871 real posts: workbook, CSV and JSONL, agreement with "
                             "1,000 bootstrap resamples", "unit": "s", "goal": "<= 3",
                    "baseline": "only reading the 30 workbooks with openpyxl (read-only)"},
}


def completed_run() -> list[WorkerKey]:
    """What the fleet would have stored, written straight to the store through the real parser."""
    samples = list(Sample.objects.values_list("pk", "text"))
    keys = []
    now, run = timezone.now(), current_run()
    for annotator in Annotator.objects.all():
        rate = 0.02 * annotator.number  # annotators differ a little, as real ones do
        for domain in Domain.objects.all():
            rows = []
            for sample_id, text in samples:
                answer = builtin_answer(text, domain=domain.slug, codes=domain.code_list, malformed_rate=rate,
                                        salt=str(annotator.number))
                parsed = parse_answer(answer, kind=domain.kind, codes=domain.code_list, rules=domain.parse_rules)
                rows.append(Outcome(run=run, sample_id=sample_id, annotator=annotator, domain=domain,
                                    status="ok" if parsed.ok else "malformed", labels=list(parsed.labels),
                                    reason=parsed.reason, raw_answer=answer, model="builtin-lexicon-v1",
                                    prompt_version=1, started_at=now))
            Outcome.objects.bulk_create(rows, batch_size=2000)
            keys.append(WorkerKey(annotator.number, domain.slug))
    return keys


def read_workbooks(keys: list[WorkerKey]) -> float:
    started = time.perf_counter()
    for key in keys:
        book = openpyxl.load_workbook(workbook_path(key), read_only=True)
        for _ in book.active.iter_rows(values_only=True):
            pass
        book.close()
    return time.perf_counter() - started


def main() -> None:
    args = arguments()
    results = Results(__file__, FIGURES, quick=args.quick)
    runs = 1 if args.quick else RUNS
    total = import_posts(QUICK_POSTS if args.quick else None)
    keys = completed_run()
    for key in keys:
        flush_workbook(key)
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        report = consolidate(actor="bench")
        timings.append(time.perf_counter() - started)
    baseline = [read_workbooks(keys) for _ in range(runs)]
    print(f"{len(keys)} workbooks x {total} samples ({Outcome.objects.count()} outcomes)")
    print(f"consolidate (workbook + CSV + JSONL, agreement with 1,000 bootstrap resamples): median "
          f"{statistics.median(timings):.2f} s (runs {', '.join(f'{t:.2f}' for t in timings)})")
    print(f"baseline, only reading the 30 workbooks with openpyxl read-only: median "
          f"{statistics.median(baseline):.2f} s "
          f"(runs {', '.join(f'{t:.2f}' for t in baseline)})")
    print(f"review list: {report.review} samples; alpha: " + "; ".join(
        f"{slug} {next(iter(a.values())):.3f}" for slug, a in report.agreement.items() if a and next(iter(a.values()))
        is not None))
    results.add("consolidate", timings, baseline=baseline)
    results.write()


if __name__ == "__main__":
    main()
