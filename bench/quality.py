"""bench/quality: how long `manage.py quality` takes, as a user runs it, for a completed run of 1,871 real posts x 5
annotators x 6 domains (56,130 outcomes) against a reference set over the five coded domains (three raters per
item, so the Alternative Annotator Test runs too); goal <= 2 s. Median of 5, Django's start-up included.

Then the accuracy table on real expert labels: the Reddit C-SSRS dataset's development half (250 users, a 5-level
suicide-risk label given by psychiatrists: Gaur et al., "Knowledge-aware Assessment of Severity of Suicide Risk
for Early Intervention", WWW 2019, CC BY 4.0), imported as a corpus and as the reference set `cssrs` on the
urgency domain with a fixed map chosen from the scale's order, not from results (Supportive -> LEVEL_0,
Indicator -> LEVEL_1, Ideation -> LEVEL_2, Behavior -> LEVEL_3, Attempt -> LEVEL_4), all through the commands a user
runs: the five built-in annotators (each with its profile) answer through the worker's own path and
`manage.py quality` scores them (with their majority vote and Dawid-Skene consensus); a sixth annotator on the
trained backend learns the set with `manage.py baseline train --folds 5`, which reports its 5-fold cross-validated
quality (every user predicted by a model that never saw that user's label). Nothing is tuned to these labels: the
lexicon, the map and the baseline's settings were fixed before it was read, and it is only read to score.

Where the local model is installed (requirements-local-llm.txt), the product's local Gemma 3 270M (llama.cpp on
loopback, the local profile: completion mode held to a grammar) answers the same users through the worker's path
and is scored the same way; it is slow on a CPU (about 3 s an answer on 2 cores).

Run: .venv/bin/python bench/quality.py [--quick] [--baseline REV]   (--quick: 60 posts, 40 C-SSRS users of which
the local model answers 2, one timing; under a minute). --baseline REV: the same command from the code at git
revision REV (exported to a temporary folder, same store, same interpreter), run alternately with this code's, so
both see the same machine; their JSON documents must be equal.
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
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _setup import DATASETS, ROOT, Results, arguments, git, import_posts, isolated_django, worker_env

_PARSER = argparse.ArgumentParser(description=__doc__.splitlines()[0])
_PARSER.add_argument("--baseline", metavar="REV",
                     help="also time the command from the code at this git revision, alternating with this code's")
OPTIONS = arguments(_PARSER)
DATA_DIR = isolated_django(OUTBOUND_ALLOW="127.0.0.1")  # the local model's server listens on loopback

from django.utils import timezone

from annotation_site import local_llm
from annotation_site.redis_service import free_port
from workers_app.engine.annotate import annotate_samples
from workers_app.engine.builtin import builtin_answer
from workers_app.engine.keys import WorkerKey
from workers_app.engine.parsing import parse_answer
from workers_app.local_profile import use_local_gemma
from workers_app.models import Annotator, Domain, Outcome, Run, Sample
from workers_app.runs.current import current_run
from workers_app.runs.services import RunPlan, create_run

RUNS = 1 if OPTIONS.quick else 5
POSTS = 60 if OPTIONS.quick else None
CSSRS = DATASETS / "cssrs_reddit_dev_250.csv"
CSSRS_USERS = 40 if OPTIONS.quick else None
CSSRS_MAP = {"Supportive": "LEVEL_0", "Indicator": "LEVEL_1", "Ideation": "LEVEL_2", "Behavior": "LEVEL_3",
             "Attempt": "LEVEL_4"}
CITATION = ("Gaur et al., Knowledge-aware Assessment of Severity of Suicide Risk for Early Intervention, WWW 2019; "
            "doi:10.5281/zenodo.2667859")
CODED = ("urgency", "therapeutic", "intensity", "adjunct", "modality")
TRAINED = 6  # the trained baseline joins the five built-in annotators as a sixth
LOCAL = 7  # and the local model, where installed, as a seventh
LOCAL_USERS = 2 if OPTIONS.quick else None
LOAD: list[float] = []  # the load average before and after the timed commands
FIGURES = {
    "quality_command": {"about": "`manage.py quality --json` for a completed run of the 1,871 real posts × 30 "
                                 "workers against a reference set of 3 raters over the 5 coded domains (1,000 "
                                 "bootstrap resamples, majority vote, Dawid-Skene, alt-test), Django's start-up "
                                 "included", "unit": "s", "goal": "<= 2",
                        "baseline": "the same command from the code before the change (--baseline REV), run "
                                    "alternately with it"},
    "quality_cpu": {"about": "the same: its CPU time (user + system)", "unit": "s",
                    "baseline": "the same from the code before the change, run alternately with it"},
    "cssrs_builtin_accuracy": {"about": "C-SSRS dev half (250 Reddit users, psychiatrists' labels; Gaur et al., WWW "
                                        "2019, CC BY 4.0) on urgency: the 5 built-in lexicon annotators' accuracy, "
                                        "one value per annotator", "unit": ""},
    "cssrs_builtin_macro_f1": {"about": "C-SSRS dev half (Gaur et al. 2019): the built-in annotators' macro-F1",
                               "unit": ""},
    "cssrs_builtin_kappa": {"about": "C-SSRS dev half (Gaur et al. 2019): the built-in annotators' quadratic-weighted "
                                     "kappa", "unit": ""},
    "cssrs_trained_accuracy": {"about": "C-SSRS dev half (Gaur et al. 2019): the trained baseline (TF-IDF + logistic "
                                        "regression), 5-fold cross-validated, accuracy", "unit": ""},
    "cssrs_trained_macro_f1": {"about": "C-SSRS dev half (Gaur et al. 2019): the trained baseline's macro-F1, 5-fold "
                                        "cross-validated", "unit": ""},
    "cssrs_trained_kappa": {"about": "C-SSRS dev half (Gaur et al. 2019): the trained baseline's quadratic-weighted "
                                     "kappa, 5-fold cross-validated", "unit": ""},
    "cssrs_local_accuracy": {"about": "C-SSRS dev half (Gaur et al. 2019): the local Gemma 3 270M (llama.cpp, "
                                      "grammar-constrained, temperature 0), accuracy", "unit": ""},
    "cssrs_local_macro_f1": {"about": "C-SSRS dev half (Gaur et al. 2019): the local Gemma 3 270M's macro-F1",
                             "unit": ""},
    "cssrs_local_kappa": {"about": "C-SSRS dev half (Gaur et al. 2019): the local Gemma 3 270M's quadratic-weighted "
                                   "kappa", "unit": ""},
    "baseline_train": {"about": "`manage.py baseline train --folds 5` on those 250 users (5 folds and the final "
                                "model, 1,000 bootstrap resamples), Django's start-up included", "unit": "s"},
    "baseline_answer": {"about": "the trained baseline answering through the worker's path (`annotate_samples`, "
                                 "outcomes stored), per outcome", "unit": "ms"},
}


def manage(*args: str, code: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=code, env=worker_env(), capture_output=True,
                          text=True, check=True)


def exported(revision: str) -> Path:
    """The tracked files at ``revision`` in a temporary folder (removed at exit with the bench's DATA_DIR)."""
    folder = Path(tempfile.mkdtemp(prefix="quality-baseline-", dir=DATA_DIR))
    archive = folder / "code.tar"
    subprocess.run(["git", "archive", "--format=tar", "-o", str(archive), git("rev-parse", revision)], cwd=ROOT,
                   check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(folder / "code", filter="data")
    return folder / "code"


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


def _timed(code: Path) -> tuple[float, float, dict]:
    started, used = time.perf_counter(), _children_cpu()
    done = manage("quality", "--run", "default", "--reference", "made-up-raters", "--json", code=code)
    return time.perf_counter() - started, _children_cpu() - used, json.loads(done.stdout)


def timed_quality(baseline: Path | None) -> tuple[list[float], list[float], dict, list[float], list[float]]:
    """Wall time of each command, and its CPU time (user + system): on a shared machine the second says what the
    command itself costs when the first is stretched by others' work. With ``baseline`` (the code before a change),
    its command runs before each of this code's, and must give the same document."""
    timings, cpu, document, before, before_cpu = [], [], {}, [], []
    LOAD.append(os.getloadavg()[0])
    for _ in range(RUNS):
        if baseline is not None:
            wall, used, theirs = _timed(baseline)
            before.append(wall)
            before_cpu.append(used)
        wall, used, document = _timed(ROOT)
        timings.append(wall)
        cpu.append(used)
        if baseline is not None and theirs != document:
            raise RuntimeError(f"the code at {OPTIONS.baseline} gives another quality document than this code")
    LOAD.append(os.getloadavg()[0])
    return timings, cpu, document, before, before_cpu


def load_note() -> str:
    """The machine's load while the command was timed: on a shared machine it stretches the wall time."""
    return f"load average {min(LOAD):.1f}–{max(LOAD):.1f} on {os.cpu_count()} cores while timed"


# ------------------------------------------------------------------------------------------------ C-SSRS


BUILTIN = [1, 2, 3, 4, 5]
CSSRS_FIGURES = (("accuracy", "accuracy"), ("macro_f1", "macro_f1"), ("kappa", "kappa"))


def shown(estimate: dict) -> str:
    low, high = estimate["ci95"]
    if estimate["value"] is None:
        return "—"
    return f"{estimate['value']:.3f}" + ("" if low is None else f" [{low:.3f}, {high:.3f}]")


def interval(estimate: dict) -> str:
    low, high = estimate["ci95"]
    return "no interval" if low is None else f"95 % bootstrap interval {low:.3f}–{high:.3f}"


def import_cssrs() -> list[int]:
    """The C-SSRS users as a corpus and the reference set `cssrs`, imported with the commands; their sample ids."""
    source = CSSRS
    if CSSRS_USERS:
        source = DATA_DIR / "cssrs-quick.csv"
        with CSSRS.open(newline="", encoding="utf-8") as full, source.open("w", newline="", encoding="utf-8") as cut:
            writer = csv.writer(cut)
            for index, row in enumerate(csv.reader(full)):
                if index > CSSRS_USERS:
                    break
                writer.writerow(row)
    manage("import_corpus", str(source), "--id-column", "User", "--text-column", "Post")
    manage("reference", "import", str(source), "--name", "cssrs", "--id-column", "User", "--label-column",
           "urgency=Label", *[f"--map=urgency:{value}={code}" for value, code in CSSRS_MAP.items()],
           "--citation", CITATION, "--licence", "CC BY 4.0", "--source", "Reddit C-SSRS Suicide Dataset, dev half")
    return list(Sample.objects.filter(reference_labels__reference_set__name="cssrs").order_by("pk")
                .values_list("pk", flat=True))


def run_of(name: str, annotators: list[int], users: list[int]) -> Run:
    corpora = list(Sample.objects.filter(pk__in=users).values_list("corpus_id", flat=True).distinct())
    return create_run(RunPlan(name=name, annotators=annotators, domains=["urgency"], corpora=corpora), actor="bench")


def builtin_rows(users: list[int]) -> list[dict]:
    """The built-in annotators answer the users as their workers would (each with its profile, through
    ``annotate_samples``, outcomes stored), then ``manage.py quality`` scores the run."""
    run = run_of("cssrs-builtin", BUILTIN, users)
    for number in BUILTIN:
        annotate_samples(users, WorkerKey(number, "urgency"), worker="bench", run_id=run.pk)
    found = json.loads(manage("quality", "--run", run.name, "--reference", "cssrs", "--json").stdout)
    return found["domains"][0]["rows"]


def trained_baseline(users: list[int]) -> tuple[dict, float, float]:
    """A sixth annotator on the trained backend learns the set (``manage.py baseline train``: its figures are the
    5-fold cross-validated ones); then it answers the users through the worker's path, for the time per answer
    only (those are its own training labels: never scored)."""
    Annotator.objects.create(number=TRAINED, name="trained baseline", backend=Annotator.Backend.TRAINED,
                             model="trained-baseline")
    started = time.perf_counter()
    document = json.loads(manage("baseline", "train", "--annotator", str(TRAINED), "--reference", "cssrs",
                                 "--folds", "5", "--json").stdout)
    trained = time.perf_counter() - started
    run = run_of("cssrs-trained-timing", [TRAINED], users)
    started = time.perf_counter()
    annotate_samples(users, WorkerKey(TRAINED, "urgency"), worker="bench", run_id=run.pk)
    per_answer = (time.perf_counter() - started) * 1000 / max(1, len(users))
    stored = Outcome.objects.filter(run=run, status="ok").count()
    if stored != len(users):
        raise RuntimeError(f"the trained baseline stored {stored} of {len(users)} outcomes")
    return document["domains"]["urgency"], trained, per_answer


def local_model_row(users: list[int]) -> dict | None:
    """The local Gemma model answers the users through the worker's path (``annotate_samples``, outcomes stored), on
    the product's local profile unchanged; ``manage.py quality`` scores it. None where the model is not installed."""
    if not local_llm.installed():
        return None
    port = free_port()
    server = local_llm.start_server(port, DATA_DIR / "local-llm.log")
    try:
        annotator = Annotator.objects.create(number=LOCAL, name="local Gemma 3 270M")
        use_local_gemma(annotator, actor="bench")
        Annotator.objects.filter(number=LOCAL).update(base_url=f"http://127.0.0.1:{port}/v1")
        run = run_of("cssrs-local", [LOCAL], users)
        annotate_samples(users[:LOCAL_USERS], WorkerKey(LOCAL, "urgency"), worker="bench", run_id=run.pk)
    finally:
        server.kill()
        server.wait()
    found = json.loads(manage("quality", "--run", run.name, "--reference", "cssrs", "--json").stdout)
    return next(row for row in found["domains"][0]["rows"] if row["kind"] == "annotator")


def cssrs_table(results: Results) -> list[str]:
    if not CSSRS.exists():
        return [f"C-SSRS table skipped: {CSSRS} is absent"]
    users = import_cssrs()
    rows = builtin_rows(users)
    trained, train_seconds, per_answer = trained_baseline(users)
    local = local_model_row(users)
    lines = [(f"C-SSRS (dev half, {len(users)} users; {CITATION}), urgency against the psychiatrists' labels "
              "(95 % bootstrap intervals):"),
             f"  {'labeller':58} {'n':>4}  {'accuracy':22} {'macro-F1':22} {'quadratic kappa':22}"]
    for row in rows:
        lines.append(f"  {'built-in ' + row['name']:58} {row['n']:4}  {shown(row['accuracy']):22} "
                     f"{shown(row['macro_f1']):22} {shown(row['kappa']):22}")
    lines.append(f"  {'trained baseline, 5-fold cross-validated':58} {trained['n']:4}  "
                 f"{shown(trained['accuracy']):22} {shown(trained['macro_f1']):22} {shown(trained['kappa']):22}")
    if local is None:
        lines.append("  local Gemma 3 270M: not installed here (requirements-local-llm.txt)")
    else:
        lines.append(f"  {'local Gemma 3 270M (llama.cpp, grammar, temperature 0)':58} {local['n']:4}  "
                     f"{shown(local['accuracy']):22} {shown(local['macro_f1']):22} {shown(local['kappa']):22}")
    lines.append(f"`manage.py baseline train --folds 5`: {train_seconds:.2f} s; the trained baseline answers in "
                 f"{per_answer:.2f} ms per stored outcome")
    annotators = [row for row in rows if row["kind"] == "annotator"]
    for name, key in CSSRS_FIGURES:
        values = [row[key]["value"] for row in annotators if row[key]["value"] is not None]
        if values:
            each = "; ".join(f"annotator {r['annotator']} {r[key]['value']:.3f} ({interval(r[key])})"
                             for r in annotators if r[key]["value"] is not None)
            results.add(f"cssrs_builtin_{name}", values, note=f"{each}; {len(users)} users")
        if trained[key]["value"] is not None:
            results.add(f"cssrs_trained_{name}", [trained[key]["value"]],
                        note=f"{interval(trained[key])}; {trained['n']} users")
        if local is not None and local[key]["value"] is not None:
            results.add(f"cssrs_local_{name}", [local[key]["value"]], note=f"{interval(local[key])}; {local['n']} users")
    load = f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores after"
    results.add("baseline_train", [train_seconds], note=load)
    results.add("baseline_answer", [per_answer], note=load)
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
    baseline = exported(OPTIONS.baseline) if OPTIONS.baseline else None
    timings, cpu, document, before, before_cpu = timed_quality(baseline)
    domains = document["domains"]
    print(f"{total} posts x {Annotator.objects.count()} annotators x {Domain.objects.count()} domains: {stored} "
          f"outcomes; reference set: 3 raters x {len(domains)} coded domains "
          f"({sum(d['reference_items'] for d in domains)} items), imported with `manage.py reference import` in "
          f"{imported:.2f} s")
    print(f"`manage.py quality --json` (1,000 bootstrap resamples, majority vote, Dawid-Skene, alt-test): median "
          f"{statistics.median(timings):.2f} s (runs {', '.join(f'{t:.2f}' for t in timings)}; CPU "
          f"{', '.join(f'{c:.2f}' for c in cpu)} s; load average {os.getloadavg()[0]:.1f}); goal <= 2 s")
    if baseline is not None:
        print(f"the same from {OPTIONS.baseline}, run alternately: median {statistics.median(before):.2f} s (runs "
              f"{', '.join(f'{t:.2f}' for t in before)}; CPU {', '.join(f'{c:.2f}' for c in before_cpu)} s); the "
              "same document")
    urgency = next((d for d in domains if d["domain"] == "urgency"), None)
    if urgency:
        tests = [a for a in urgency["alt_test"]]
        print("urgency: " + "; ".join(f"{r['name']} accuracy {r['accuracy']['value']:.3f}" for r in urgency["rows"])
              + "; alt-test passed by " + (", ".join(f"annotator {a['annotator']}" for a in tests if a["passed"])
                                           or "none"))
    for line in cssrs_table(results):
        print(line)
    against = {"baseline_note": f"git {OPTIONS.baseline}"} if baseline is not None else {}
    results.add("quality_command", timings, baseline=before or None, note=load_note(), **against)
    results.add("quality_cpu", cpu, baseline=before_cpu or None, **against)
    results.write()


if __name__ == "__main__":
    main()
