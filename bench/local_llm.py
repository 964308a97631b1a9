"""bench/local_llm: one annotator x 6 domains (6 worker processes) on the first 20 real posts with the local model
(llama.cpp + Gemma 3 270M), in completion mode (the product's default for this base model) and, as the baseline in
the same run, in chat mode: annotations per second, latency p50/p95, malformed rate, and how busy the server was:
the share of wall time with at least one request in flight, measured by a recording proxy on loopback in front of
the server.
Run: .venv/bin/python bench/local_llm.py [--posts 20] [--quick]
     (installs and compiles llama.cpp on first use: ~8 minutes; at ~2.7 s a request on 2 cores, 20 posts x 6
      domains x 2 modes take ~11 minutes; --quick: 1 post, one domain's worker)
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
from _setup import Results, arguments, import_posts, isolated_django, start_celery_workers, stop_processes

isolated_django(OUTBOUND_ALLOW="127.0.0.1")  # the recording proxy is on loopback

from annotation_site.local_llm import ensure_installed, start_server
from annotation_site.redis_service import free_port
from workers_app.engine.queues import populate_queues
from workers_app.local_profile import use_local_gemma
from workers_app.models import Annotator, Domain, Outcome

POSTS = 20
CHAT = "chat mode, same run"
FIGURES = {
    "busy": {"about": "6 workers × the first 20 real posts, Gemma 3 270M on llama.cpp, completion mode: share of the "
                      "wall time the server is busy", "unit": "%", "goal": ">= 90", "baseline": CHAT},
    "rate": {"about": "the same: annotations per second", "unit": "annotations/s", "baseline": CHAT},
    "latency_p50": {"about": "the same: latency p50, queueing included", "unit": "ms", "baseline": CHAT},
    "latency_p95": {"about": "the same: latency p95, queueing included", "unit": "ms", "baseline": CHAT},
    "malformed": {"about": "the same: malformed answers", "unit": "%", "baseline": CHAT},
}


class Recorder:
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


def run(mode: str, proxy_port: int, recorder: Recorder, posts: int, domains: int) -> dict:
    Outcome.objects.all().delete()
    annotator = Annotator.objects.get(number=1)
    use_local_gemma(annotator, actor="bench")
    Annotator.objects.filter(number=1).update(base_url=f"http://127.0.0.1:{proxy_port}/v1", request_mode=mode,
                                              max_retries=0, max_tokens=24 if mode == "completion" else 48)
    from workers_app.redis_client import get_redis

    get_redis().flushdb()
    slugs = list(Domain.objects.values_list("slug", flat=True)[:domains])
    workers = start_celery_workers([f"annotator_1_{slug}" for slug in slugs], threads=2)
    try:
        total = posts * len(workers)
        started = time.monotonic()
        for slug in slugs:
            populate_queues(1, slug)
        while Outcome.objects.count() < total:
            if time.monotonic() - started > 3600:
                raise TimeoutError(f"{Outcome.objects.count()} of {total} outcomes after an hour")
            error = Annotator.objects.get(number=1).backend_error
            if error:
                raise RuntimeError(f"the annotator's backend failed: {error}")
            time.sleep(0.5)
        ended = time.monotonic()
    finally:
        stop_processes(workers)
    latencies = sorted(Outcome.objects.values_list("latency_ms", flat=True))
    malformed = Outcome.objects.filter(status="malformed").count()
    return {"rate": total / (ended - started), "latency_p50": statistics.median(latencies),
            "latency_p95": latencies[int(0.95 * (len(latencies) - 1))], "malformed": 100 * malformed / total,
            "busy": 100 * recorder.busy_share(started, ended), "seconds": ended - started}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--posts", type=int, default=POSTS)
    args = arguments(parser)
    results = Results(__file__, FIGURES, quick=args.quick)
    posts, domains = (1, 1) if args.quick else (args.posts, 6)
    ensure_installed()
    import_posts(posts)
    port = free_port()
    from django.conf import settings

    server = start_server(port, settings.DATA_DIR / "llama.log")
    recorder = Recorder(f"http://127.0.0.1:{port}")
    proxy_port = proxy(recorder)
    try:
        found = {mode: run(mode, proxy_port, recorder, posts, domains) for mode in ("completion", "chat")}
    finally:
        server.kill()
    print(f"one annotator x {domains} domain(s) ({domains} worker processes x 2 threads), {posts} real posts each, "
          "Gemma 3 270M on llama.cpp")
    for mode, r in found.items():
        print(f"{mode:10}: {r['rate']:.2f} annotations/s ({r['seconds']:.0f} s), latency p50 "
              f"{r['latency_p50']:.0f} ms, "
              f"p95 {r['latency_p95']:.0f} ms, malformed {r['malformed']:.1f} %, server busy {r['busy']:.0f} % of "
              "the wall time")
    for name in FIGURES:
        results.add(name, [found["completion"][name]], baseline=[found["chat"][name]])
    results.write()


if __name__ == "__main__":
    main()
