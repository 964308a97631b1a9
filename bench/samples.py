"""bench/samples: server time of the annotation browser on the real corpus with every outcome stored.

A throwaway DATA_DIR and SQLite database: migrate, seed, then the
1,871 real posts imported with the `import_corpus` command, and 30 outcomes per post written directly (56,130):
each annotator gives the post's "true" label of a domain with probability 0.8, otherwise a random code; about 1 %
malformed answers (a fifth of them refusals) with their malformed attempts, and a review item for every post with a
LEVEL_4 (a third of them reviewed). Each page is fetched through Django's test client, 2 warm-ups then the median
(and max) of 20 requests, with how many samples match; the goal is a median of at most 100 ms on SQLite.

Run: .venv/bin/python bench/samples.py [--repeats 20] [--quick]   (--quick: 20 posts, 2 requests per page)
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import time

from _setup import QUICK_POSTS, Results, arguments, corpus_file, isolated_django

COUNT = re.compile(r'id="count">([0-9]+) sample')
PHRASES = ["sleep problems", "exam stress", "loneliness", "family conflict", "grief", "work pressure"]
# The pages the table shows; every page of cases() is printed.
FIGURES = {
    "list": {"about": "`/samples/` unfiltered, the 1,871 real posts with 56,130 outcomes, Django test client",
             "unit": "ms", "goal": "<= 100"},
    "slowest_filter": {"about": "`/samples/` with the slowest of its single filters", "unit": "ms", "goal": "<= 100"},
    "all_filters": {"about": "`/samples/` with all filters together", "unit": "ms", "goal": "<= 100"},
    "search_text": {"about": "`/samples/` searching the text", "unit": "ms", "goal": "<= 100"},
    "page_20": {"about": "`/samples/?page=20`", "unit": "ms", "goal": "<= 100"},
    "sample_page": {"about": "one post's page, `/samples/<id>/`", "unit": "ms", "goal": "<= 100"},
}
SHOWN = {"list, no filter": "list", "all filters": "all_filters", "search text": "search_text",
         "page 20": "page_20", "sample page": "sample_page"}


def seed_outcomes(rng: random.Random) -> dict[str, int]:
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from workers_app.models import Annotator, Domain, MalformedAttempt, Outcome, ReviewItem, Sample
    from workers_app.runs.current import current_run

    annotators, domains = list(Annotator.objects.all()), list(Domain.objects.all())
    now, run = timezone.now(), current_run()
    outcomes, attempts, urgent = [], [], set()
    for sample_id in Sample.objects.values_list("pk", flat=True):
        truth = {d.pk: _labels(d, rng) for d in domains}
        for annotator in annotators:
            for domain in domains:
                labels = truth[domain.pk] if rng.random() < 0.8 else _labels(domain, rng)
                broken = rng.random() < 0.01
                reason = ("refusal" if rng.random() < 0.2 else "no_marker") if broken else ""
                outcomes.append(Outcome(
                    run=run, sample_id=sample_id, annotator=annotator, domain=domain,
                    status="malformed" if broken else "ok", labels=[] if broken else labels, reason=reason,
                    raw_answer="I can't help with that." if reason == "refusal" else f"<<{', '.join(labels)}>>",
                    model=annotator.model, prompt_version=1, latency_ms=rng.randint(50, 900), prompt_tokens=300,
                    completion_tokens=8, attempts=3 if broken else 1, started_at=now))
                if broken:
                    attempts += [MalformedAttempt(run=run, sample_id=sample_id, annotator=annotator, domain=domain,
                                                  attempt=n, reason=reason, raw_answer="no marker here",
                                                  prompt_version=1)
                                 for n in (1, 2, 3)]
                urgent |= {sample_id} if domain.slug == "urgency" and labels == ["LEVEL_4"] and not broken else set()
    Outcome.objects.bulk_create(outcomes, batch_size=2000)
    MalformedAttempt.objects.bulk_create(attempts, batch_size=2000)
    reviewer = get_user_model().objects.create_superuser("bench-viewer", password="unused-bench-password")
    ReviewItem.objects.bulk_create(
        ReviewItem(sample_id=pk, reasons=["level_4"], risk=3,
                   **({"status": "reviewed", "reviewed_by": reviewer, "reviewed_at": now} if i % 3 == 0 else {}))
        for i, pk in enumerate(sorted(urgent)))
    return {"outcomes": len(outcomes), "malformed attempts": len(attempts), "review items": len(urgent)}


def _labels(domain, rng: random.Random) -> list[str]:
    if domain.kind == "string_list":
        return rng.sample(PHRASES, rng.randint(1, 2))
    codes = domain.code_list
    if domain.kind == "code_set":
        return sorted(rng.sample(codes, rng.randint(1, 2)), key=codes.index)
    return [rng.choice(codes)]


def cases() -> list[tuple[str, str]]:
    from workers_app.models import Corpus, Sample

    sample = Sample.objects.order_by("pk")[Sample.objects.count() // 2]
    words = sample.text.split()[:2]
    return [
        ("list, no filter", "/samples/"),
        ("corpus", f"/samples/?corpus={Corpus.objects.get().pk}"),
        ("domain", "/samples/?domain=therapeutic"),
        ("annotator", "/samples/?annotator=3"),
        ("status ok", "/samples/?status=ok"),
        ("status malformed", "/samples/?status=malformed"),
        ("malformed, annotator 2, intensity", "/samples/?status=malformed&annotator=2&domain=intensity"),
        ("disagreement", "/samples/?disagreement=on"),
        ("disagreement in urgency", "/samples/?disagreement=on&domain=urgency"),
        ("any LEVEL_4", "/samples/?level_4=on"),
        ("refusal", "/samples/?refusal=on"),
        ("review: flagged", "/samples/?review=flagged"),
        ("review: reviewed", "/samples/?review=reviewed"),
        ("review: not flagged", "/samples/?review=not_flagged"),
        ("search id", f"/samples/?q={sample.external_id}"),
        ("search text", f"/samples/?q={'+'.join(words)}"),
        ("all filters", "/samples/?disagreement=on&level_4=on&status=ok&review=flagged&domain=urgency"),
        ("page 20", "/samples/?page=20"),
        ("page 20, disagreement", "/samples/?disagreement=on&page=20"),
        ("sample page", f"/samples/{sample.pk}/"),
    ]


def timed(client, path: str, repeats: int) -> tuple[list[float], str]:
    for _ in range(2):
        response = client.get(path)
        assert response.status_code == 200, (path, response.status_code)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - start) * 1000)
    found = COUNT.search(response.content.decode())
    return times, found.group(1) if found else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=20)
    args = arguments(parser)
    results = Results(__file__, FIGURES, quick=args.quick)
    repeats = 2 if args.quick else args.repeats
    data_dir = isolated_django(ALLOWED_HOSTS="localhost")
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client

    start = time.perf_counter()
    call_command("import_corpus", str(corpus_file(QUICK_POSTS if args.quick else None, data_dir)), verbosity=0)
    made = seed_outcomes(random.Random(14))
    print(f"imported and stored {made} in {time.perf_counter() - start:.1f} s; load {os.getloadavg()[0]:.2f}")
    client = Client(HTTP_HOST="localhost")
    client.force_login(get_user_model().objects.get(username="bench-viewer"))
    print(f"{'page':<36} {'median ms':>10} {'max ms':>8} {'samples':>8}")
    filters = {}
    for name, path in cases():
        times, rows = timed(client, path, repeats)
        print(f"{name:<36} {statistics.median(times):>10.1f} {max(times):>8.1f} {rows:>8}")
        if name in SHOWN:
            results.add(SHOWN[name], times)
        elif "?" in path and "page=" not in path and "q=" not in path:
            filters[name] = times
    slowest = max(filters, key=lambda name: statistics.median(filters[name]))
    results.add("slowest_filter", filters[slowest], note=f"slowest: {slowest}")
    results.write()


if __name__ == "__main__":
    main()
