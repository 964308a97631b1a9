"""bench/local_llm: the local model (llama.cpp + Gemma 3 270M, completion mode) on real posts in the urgency and
adjunct domains, asked in free text (a <<…>> marker) and held to a GBNF grammar (structured output), in one
invocation against one server: the malformed share of each, how far their label distributions lie apart, how often
they agree on a post, latency and throughput. Real worker processes (one per domain, one request in flight each)
annotate; a recording proxy on loopback in front of the server measures how busy it was.

The posts are split into --repetitions blocks: each figure's values are one per block (the report shows their median),
the label distributions of the whole run are in the notes.

Run: .venv/bin/python bench/local_llm.py [--posts 200] [--repetitions 4]     (~2.7 s a request on 2 cores:
     200 posts x 2 domains x 2 ways take about 40 minutes)
     .venv/bin/python bench/local_llm.py --quick                               (1 post: about 20 s)
Installs and compiles llama.cpp on first use (~8 minutes).
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
from _setup import ROOT, Results, arguments, corpus_file, isolated_django, worker_env

isolated_django(OUTBOUND_ALLOW="127.0.0.1")  # the recording proxy in front of the local server is on loopback

from django.conf import settings

from annotation_site.celery import app
from annotation_site.local_llm import ensure_installed, start_server
from annotation_site.redis_service import free_port
from workers_app.engine.queues import populate_queues
from workers_app.importing.service import import_corpus
from workers_app.local_profile import use_local_gemma
from workers_app.models import Annotator, Outcome, Sample

DOMAINS = ("urgency", "adjunct")
# One annotator per way of asking, both on the local profile: they differ in the structured mode only.
WAYS = {"free text": (1, Annotator.Structured.NONE), "grammar": (2, Annotator.Structured.GRAMMAR)}
FREE_TEXT = "the same posts asked in free text (a <<...>> marker), same model, server and invocation"
FIGURES = {
    "malformed_urgency": {"about": "malformed share, urgency, Gemma 3 270M held to a grammar", "unit": "share",
                          "goal": "== 0", "baseline": FREE_TEXT},
    "malformed_adjunct": {"about": "malformed share, adjunct services, Gemma 3 270M held to a grammar",
                          "unit": "share", "goal": "== 0", "baseline": FREE_TEXT},
    "label_shift_urgency": {"about": "urgency labels: total variation distance between the grammar's and free "
                                     "text's distributions (0 the same, 1 disjoint)", "unit": "share"},
    "label_shift_adjunct": {"about": "adjunct codes: total variation distance between the grammar's and free "
                                     "text's distributions of codes", "unit": "share"},
    "agreement_urgency": {"about": "urgency: posts with the same label both ways, of those well-formed both ways",
                          "unit": "share"},
    "agreement_adjunct": {"about": "adjunct: posts with the same codes both ways, of those well-formed both ways",
                          "unit": "share"},
    "latency_p50": {"about": "median request latency held to a grammar (two requests in flight on a server that "
                             "answers one at a time: about twice its time per answer)", "unit": "ms",
                    "baseline": FREE_TEXT},
    "rate": {"about": "annotations per second held to a grammar (2 worker processes, one llama.cpp server)",
             "unit": "annotations/s", "baseline": FREE_TEXT},
    "server_busy": {"about": "share of the wall time the llama.cpp server had a request in flight, grammar",
                    "unit": "share", "goal": ">= 0.9", "baseline": FREE_TEXT},
}
QUICK_POSTS = 1


class Recorder:
    """When each request was in flight, to tell how busy the server was."""

    def __init__(self, upstream: str):
        self.upstream = upstream
        self.intervals: list[tuple[float, float]] = []
        self.lock = threading.Lock()

    def busy_share(self, start: float, end: float) -> float:
        with self.lock:
            spans = sorted((max(a, start), min(b, end)) for a, b in self.intervals if b > start and a < end)
        busy, current_start, current_end = 0.0, None, None
        for a, b in spans:
            if current_end is None or a > current_end:
                busy += (current_end - current_start) if current_end is not None else 0.0
                current_start, current_end = a, b
            else:
                current_end = max(current_end, b)
        busy += (current_end - current_start) if current_end is not None else 0.0
        return busy / (end - start)


def proxy(recorder: Recorder) -> int:
    client = httpx.Client(timeout=120)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            started = time.monotonic()
            try:
                answer = client.post(recorder.upstream + self.path, content=body,
                                     headers={"Content-Type": "application/json"})
                status, data = answer.status_code, answer.content
            except httpx.HTTPError:
                status, data = 502, b'{"error": {"message": "upstream down"}}'
            with recorder.lock:
                recorder.intervals.append((started, time.monotonic()))
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server.server_address[1]


def prepare(proxy_port: int) -> None:
    """Both annotators on the local profile, without retries (a malformed first answer counts), through the proxy."""
    for number, structured in WAYS.values():
        use_local_gemma(Annotator.objects.get(number=number), actor="bench")
        Annotator.objects.filter(number=number).update(base_url=f"http://127.0.0.1:{proxy_port}/v1",
                                                       structured=structured, max_retries=0)


def annotate(number: int, recorder: Recorder, total: int) -> dict:
    """Queue every post for this annotator's two domains and wait for all outcomes; wall time and busy share."""
    nodes = [f"annotator_{number}_{slug}@{socket.gethostname()}" for slug in DOMAINS]
    workers = [subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "annotation_site", "worker", "-Q", node.split("@")[0], "-n", node,
         "-P", "threads", "-c", "1", "--without-mingle", "--without-gossip", "-l", "ERROR"], cwd=ROOT,
        env=worker_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for node in nodes]
    try:
        deadline = time.monotonic() + 60
        while len(app.control.ping(destination=nodes, timeout=0.5)) < len(nodes):
            if time.monotonic() > deadline or any(worker.poll() is not None for worker in workers):
                raise RuntimeError("the worker processes did not start")
        started = time.monotonic()
        for slug in DOMAINS:
            populate_queues(number, slug)
        while Outcome.objects.filter(annotator__number=number).count() < total:
            if any(worker.poll() is not None for worker in workers):
                raise RuntimeError("a worker process exited")
            error = Annotator.objects.get(number=number).backend_error
            if error:
                raise RuntimeError(f"annotator {number} stopped: {error}")
            time.sleep(0.5)
        ended = time.monotonic()
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait()
    return {"rate": total / (ended - started), "busy": recorder.busy_share(started, ended)}


def labels_by_post(number: int, slug: str) -> dict[int, tuple[str, ...] | None]:
    """Each post's labels as one annotator gave them; None where its answer was malformed."""
    return {sample: tuple(labels) if status == "ok" else None for sample, status, labels in Outcome.objects.filter(
        annotator__number=number, domain__slug=slug).values_list("sample_id", "status", "labels")}


def distribution(answers: list[tuple[str, ...] | None]) -> Counter:
    """How often each code was given, over the well-formed answers (a set counts each of its codes)."""
    return Counter(code for labels in answers if labels is not None for code in labels)


def variation_distance(first: Counter, second: Counter) -> float:
    """Total variation distance between two label distributions (each normalised to shares)."""
    total_first, total_second = sum(first.values()) or 1, sum(second.values()) or 1
    return 0.5 * sum(abs(first[code] / total_first - second[code] / total_second) for code in first | second)


def shown(counts: Counter) -> str:
    total = sum(counts.values()) or 1
    return ", ".join(f"{code} {count / total:.0%}" for code, count in sorted(counts.items()))


def domain_figures(results: Results, blocks: list[list[int]], slug: str) -> None:
    free, held = (labels_by_post(WAYS[way][0], slug) for way in ("free text", "grammar"))
    malformed = {way: [sum(answers[post] is None for post in block) / len(block) for block in blocks]
                 for way, answers in (("free text", free), ("grammar", held))}
    everything = [post for block in blocks for post in block]
    notes = {way: shown(distribution([answers[post] for post in everything]))
             for way, answers in (("free text", free), ("grammar", held))}
    malformed_total = {way: sum(answers[post] is None for post in everything) for way, answers in
                       (("free text", free), ("grammar", held))}
    results.add(f"malformed_{slug}", malformed["grammar"], baseline=malformed["free text"],
                note=f"over all {len(everything)} posts: grammar {malformed_total['grammar']} malformed, free text "
                     f"{malformed_total['free text']}")
    results.add(f"label_shift_{slug}", [variation_distance(distribution([held[p] for p in block]),
                                                           distribution([free[p] for p in block]))
                                        for block in blocks],
                note=f"grammar: {notes['grammar']}; free text: {notes['free text']}")
    agreeing = []
    for block in blocks:
        both = [post for post in block if free[post] is not None and held[post] is not None]
        agreeing.append(sum(free[post] == held[post] for post in both) / len(both) if both else 0.0)
    results.add(f"agreement_{slug}", agreeing)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=200, help="real posts per domain (default 200)")
    parser.add_argument("--repetitions", type=int, default=4, help="blocks the posts are split into (default 4)")
    args = arguments(parser)
    posts, repetitions = (QUICK_POSTS, 1) if args.quick else (args.posts, args.repetitions)
    ensure_installed()
    import_corpus(corpus_file(posts, settings.DATA_DIR), actor="bench")
    ids = list(Sample.objects.order_by("pk").values_list("pk", flat=True))
    blocks = [ids[index::repetitions] for index in range(repetitions)]
    results = Results(__file__, FIGURES, quick=args.quick)
    port = free_port()
    server = start_server(port, settings.DATA_DIR / "llama.log")
    recorder = Recorder(f"http://127.0.0.1:{port}")
    try:
        prepare(proxy(recorder))
        measured = {way: annotate(number, recorder, len(ids) * len(DOMAINS)) for way, (number, _) in WAYS.items()}
    finally:
        server.kill()
    for slug in DOMAINS:
        domain_figures(results, blocks, slug)
    latency = {way: [statistics.median(Outcome.objects.filter(annotator__number=number, sample_id__in=block)
                                       .values_list("latency_ms", flat=True)) for block in blocks]
               for way, (number, _) in WAYS.items()}
    results.add("latency_p50", latency["grammar"], baseline=latency["free text"])
    for name, key in (("rate", "rate"), ("server_busy", "busy")):
        results.add(name, [measured["grammar"][key]], baseline=[measured["free text"][key]])
    print(f"Gemma 3 270M on llama.cpp (2 cores), {len(ids)} real posts x {', '.join(DOMAINS)}, completion mode, "
          f"no retries; grammar vs free text in {repetitions} block(s):")
    for figure in results.figures.values():
        baseline = figure.get("baseline")
        versus = f"   (free text {baseline['median']:.3g})" if baseline else ""
        print(f"  {figure['name']:20} {figure['median']:.3g} {figure['unit']}{versus}")
        if figure.get("note"):
            print(f"      {figure['note']}")
    results.write()


if __name__ == "__main__":
    main()
