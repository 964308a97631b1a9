"""What may name or hold an annotator's API key: pure rules the models, forms and backends share."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from annotation_site.outbound import DEFAULT_PORTS

# Only variables with this prefix may be read as API keys: a staff user who may edit an annotator must not be
# able to send ADMIN_PASSWORD, SECRET_KEY or DATABASE_URL to a server of their choosing.
KEY_ENV_PREFIX = "LLM_KEY_"
_ENV_NAME = re.compile(rf"^{KEY_ENV_PREFIX}[A-Z0-9_]{{1,64}}$")
# Known key shapes (OpenAI, Anthropic, Groq, Google, xAI, Hugging Face, GitHub, AWS) and long random-looking tokens.
_KEY_SHAPES = re.compile(r"^(sk|pk|rk|gsk|xai|hf|ghp|gho|AKIA|AIza)[-_]?[A-Za-z0-9_\-]{12,}$")
_TOKEN = re.compile(r"^[A-Za-z0-9_\-+/=.]{32,}$")
_KEY_VALUE = re.compile(r"^[\x21-\x7e]{8,500}$")


def looks_like_a_key(value: str) -> bool:
    value = value.strip()
    if _KEY_SHAPES.match(value):
        return True
    mixed = any(c.isdigit() for c in value) and any(c.islower() for c in value) and any(c.isupper() for c in value)
    return bool(_TOKEN.match(value)) and mixed


def env_name_problem(name: str) -> str | None:
    """Why ``name`` may not name an API key's variable, or None."""
    if looks_like_a_key(name):
        return "this looks like an API key itself: paste keys into the write-only API key field, never here"
    if not _ENV_NAME.match(name):
        return (f"give the NAME of an environment variable that starts with {KEY_ENV_PREFIX} and holds only "
                f"A-Z, 0-9 and _ (e.g. {KEY_ENV_PREFIX}OPENAI); other variables are never sent as keys")
    return None


def key_value_problem(key: str) -> str | None:
    """Why ``key`` cannot be an API key, or None."""
    if not _KEY_VALUE.match(key):
        return "an API key is 8 to 500 printable characters without spaces"
    return None


def same_destination(first: str, second: str) -> bool:
    """Whether two base URLs reach the same server: scheme, host and port (the path is that server's business). A
    stored key was given for one server; another one must not receive it."""
    ends = []
    for url in (first, second):
        parts = urlsplit(url.strip())
        try:
            port = parts.port
        except ValueError:
            return False
        scheme = parts.scheme.lower()
        ends.append((scheme, parts.hostname or "", port or DEFAULT_PORTS.get(scheme)))
    return ends[0] == ends[1]
