"""bench/quality: how long `manage.py quality` takes, as a user runs it, for a completed run of 1,871 real posts x 5
annotators x 6 domains (56,130 outcomes) against a reference set over the five coded domains (three raters per
item, so the Alternative Annotator Test runs too); goal <= 2 s. Median of 3, Django's start-up included.

Then the accuracy table on real expert labels: the Reddit C-SSRS dataset's development half (250 users, a 5-level
suicide-risk label given by psychiatrists: Gaur et al., "Knowledge-aware Assessment of Severity of Suicide Risk
for Early Intervention", WWW 2019, CC BY 4.0), imported as a corpus and as the reference set `cssrs` on the
urgency domain (Supportive -> LEVEL_0 ... Attempt -> LEVEL_4), with one row per annotator configuration in
CONFIGURATIONS. Nothing is tuned to these labels: they are only read to score.

Run: .venv/bin/python bench/quality.py [--quick]   (--quick: 60 posts, 40 C-SSRS users, one timing; seconds)
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from _setup import DATASETS, ROOT, Results, arguments, import_posts, isolated_django, worker_env

OPTIONS = arguments(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
DATA_DIR = isolated_django()

from django.utils import timezone

from workers_app.engine.builtin import builtin_answer
from workers_app.engine.parsing import parse_answer
from workers_app.models import Annotator, Domain, Outcome, Run, Sample
from workers_app.runs.current import current_run
from workers_app.runs.services import RunPlan, create_run

RUNS = 1 if OPTIONS.quick else 3
POSTS = 60 if OPTIONS.quick else None
CSSRS = DATASETS / "cssrs_reddit_dev_250.csv"
CSSRS_USERS = 40 if OPTIONS.quick else None
CSSRS_MAP = {"Supportive": "LEVEL_0", "Indicator": "LEVEL_1", "Ideation": "LEVEL_2", "Behavior": "LEVEL_3",
             "Attempt": "LEVEL_4"}
CITATION = ("Gaur et al., Knowledge-aware Assessment of Severity of Suicide Risk for Early Intervention, WWW 2019; "
            "doi:10.5281/zenodo.2667859")
CODED = ("urgency", "therapeutic", "intensity", "adjunct", "modality")
FIGURES = {
    "quality_command": {"about": "`manage.py quality --json` for a completed run of the 1,871 real posts × 30 "
                                 "workers against a reference set of 3 raters over the 5 coded domains (1,000 "
                                 "bootstrap resamples, majority vote, Dawid-Skene, alt-test), Django's start-up "
                                 "included", "unit": "s", "goal": "<= 2"},
    "quality_cpu": {"about": "the same: its CPU time (user + system)", "unit": "s"},
}


def manage(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=worker_env(), capture_output=True,
                          text=True, check=True)


def builtin_outcomes(run: Run, samples: list[tuple[int, str]], annotators: list[Annotator], *,
                     malformed: Callable[[Annotator], float] = lambda a: 0.02 * a.number) -> int:
    """What the fleet's built-in annotators would have stored, written straight to the store through the real
    parser (annotators differ a little in their malformed share, as real ones do)."""
    now, made = timezone.now(), 0
    for annotator in annotators:
        for domain in Domain.objects.filter(slug__in=run.domains or [d.slug for d in Domain.objects.all()]):
            rows = []
            for sample_id, text in samples:
                answer = builtin_answer(text, domain=domain.slug, codes=domain.code_list,
                                        malformed_rate=malformed(annotator), salt=str(annotator.number))
                parsed = parse_answer(answer, kind=domain.kind, codes=domain.code_list, rules=domain.parse_rules)
                rows.append(Outcome(run=run, sample_id=sample_id, annotator=annotator, domain=domain,
                                    status="ok" if parsed.ok else "malformed", labels=list(parsed.labels),
                                    reason=parsed.reason, raw_answer=answer, model=annotator.model,
                                    prompt_version=domain.prompt_version, started_at=now))
            made += len(Outcome.objects.bulk_create(rows, batch_size=2000))
    return made


# ------------------------------------------------------------------------------------------------ the timing


def rater_labels(text: str, domain: Domain, rater: random.Random) -> str:
    """A made-up rater: the built-in lexicon's label, replaced by a random code a third of the time, so raters and
    annotators agree only in part."""
    answer = builtin_answer(text, domain=domain.slug, codes=domain.code_list)
    parsed = parse_answer(answer, kind=domain.kind, codes=domain.code_list, rules=domain.parse_rules)
    labels = list(parsed.labels) if parsed.ok else []
    if not labels or rater.random() < 1 / 3:
        labels = [rater.choice(domain.code_list)]
    return "; ".join(labels)


def write_reference(path: Path) -> None:
    """Long form, three raters per (post, domain)."""
    domains = list(Domain.objects.filter(slug__in=CODED))
    raters = [random.Random(seed) for seed in range(3)]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ID", "domain", "label", "rater"])
        for external_id, text in Sample.objects.order_by("pk").values_list("external_id", "text"):
            for domain in domains:
                for rater in range(3):
                    writer.writerow([external_id, domain.slug, rater_labels(text, domain, raters[rater]),
                                     f"rater-{rater}"])


def _children_cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def timed_quality() -> tuple[list[float], list[float], dict]:
    """Wall time of each command, and its CPU time (user + system): on a shared machine the second says what the
    command itself costs when the first is stretched by others' work."""
    timings, cpu, document = [], [], {}
    for _ in range(RUNS):
        started, used = time.perf_counter(), _children_cpu()
        done = manage("quality", "--run", "default", "--reference", "made-up-raters", "--json")
        timings.append(time.perf_counter() - started)
        cpu.append(_children_cpu() - used)
        document = json.loads(done.stdout)
    return timings, cpu, document


# ------------------------------------------------------------------------------------------------ C-SSRS


@dataclass(frozen=True)
class Configuration:
    """One way of annotating the C-SSRS posts: a name, and what stores its outcomes in a run."""

    name: str
    annotate: Callable[[Run, list[tuple[int, str]]], int]


def builtin_configuration(run: Run, samples: list[tuple[int, str]]) -> int:
    return builtin_outcomes(run, samples, [Annotator.objects.get(number=1)], malformed=lambda a: 0.0)


# Another helper adds the trained baseline annotator here: one more Configuration, one more row of the table.
CONFIGURATIONS = [Configuration("built-in lexicon (annotator 1, offline keyword baseline)", builtin_configuration)]


def cssrs_table() -> list[str]:
    if not CSSRS.exists():
        return [f"C-SSRS table skipped: {CSSRS} is absent"]
    source = CSSRS
    if CSSRS_USERS:
        source = DATA_DIR / "cssrs-quick.csv"
        with CSSRS.open(newline="", encoding="utf-8") as full, source.open("w", newline="", encoding="utf-8") as cut:
            rows = csv.reader(full)
            writer = csv.writer(cut)
            for index, row in enumerate(rows):
                if index > CSSRS_USERS:
                    break
                writer.writerow(row)
    manage("import_corpus", str(source), "--id-column", "User", "--text-column", "Post")
    manage("reference", "import", str(source), "--name", "cssrs", "--id-column", "User", "--label-column",
           "urgency=Label", *[f"--map=urgency:{value}={code}" for value, code in CSSRS_MAP.items()],
           "--citation", CITATION, "--licence", "CC BY 4.0", "--source", "Reddit C-SSRS Suicide Dataset, dev half")
    users = set(Sample.objects.filter(reference_labels__reference_set__name="cssrs").values_list("pk", flat=True))
    samples = list(Sample.objects.filter(pk__in=users).order_by("pk").values_list("pk", "text"))
    lines = [f"C-SSRS (dev half, {len(samples)} users; {CITATION}), urgency against the psychiatrists' labels:",
             f"  {'configuration':58} {'n':>4}  {'accuracy':22} {'macro-F1':22} {'quadratic kappa':22}"]
    for index, configuration in enumerate(CONFIGURATIONS):
        run = create_run(RunPlan(name=f"cssrs-{index}", annotators=[1], domains=["urgency"],
                                 corpora=list(Sample.objects.filter(pk__in=users).values_list("corpus_id", flat=True)
                                              .distinct())), actor="bench")
        configuration.annotate(run, samples)
        found = json.loads(manage("quality", "--run", run.name, "--reference", "cssrs", "--json").stdout)
        row = found["domains"][0]["rows"][0]
        shown = {name: f"{row[name]['value']:.3f} [{row[name]['ci95'][0]:.3f}, {row[name]['ci95'][1]:.3f}]"
                 for name in ("accuracy", "macro_f1", "kappa")}
        lines.append(f"  {configuration.name:58} {row['n']:4}  {shown['accuracy']:22} {shown['macro_f1']:22} "
                     f"{shown['kappa']:22}")
    return lines


def main() -> None:
    results = Results(__file__, FIGURES, quick=OPTIONS.quick)
    total = import_posts(POSTS)
    run = current_run()
    samples = list(Sample.objects.order_by("pk").values_list("pk", "text"))
    stored = builtin_outcomes(run, samples, list(Annotator.objects.all()))
    reference = DATA_DIR / "made-up-raters.csv"
    write_reference(reference)
    started = time.perf_counter()
    manage("reference", "import", str(reference), "--name", "made-up-raters", "--domain-column", "domain",
           "--value-column", "label", "--rater-column", "rater", "--kind", "crowd")
    imported = time.perf_counter() - started
    timings, cpu, document = timed_quality()
    domains = document["domains"]
    print(f"{total} posts x {Annotator.objects.count()} annotators x {Domain.objects.count()} domains: {stored} "
          f"outcomes; reference set: 3 raters x {len(domains)} coded domains "
          f"({sum(d['reference_items'] for d in domains)} items), imported with `manage.py reference import` in "
          f"{imported:.2f} s")
    print(f"`manage.py quality --json` (1,000 bootstrap resamples, majority vote, Dawid-Skene, alt-test): median "
          f"{statistics.median(timings):.2f} s (runs {', '.join(f'{t:.2f}' for t in timings)}; CPU "
          f"{', '.join(f'{c:.2f}' for c in cpu)} s; load average {os.getloadavg()[0]:.1f}); goal <= 2 s")
    urgency = next((d for d in domains if d["domain"] == "urgency"), None)
    if urgency:
        tests = [a for a in urgency["alt_test"]]
        print("urgency: " + "; ".join(f"{r['name']} accuracy {r['accuracy']['value']:.3f}" for r in urgency["rows"])
              + "; alt-test passed by " + (", ".join(f"annotator {a['annotator']}" for a in tests if a["passed"])
                                           or "none"))
    for line in cssrs_table():
        print(line)
    results.add("quality_command", timings)
    results.add("quality_cpu", cpu)
    results.write()


if __name__ == "__main__":
    main()
