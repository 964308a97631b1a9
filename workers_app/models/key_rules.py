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


def _origin(url: str) -> str:
    """Where a URL sends its requests: scheme, host and port, as a server tells apart."""
    parts = urlsplit(url.strip())
    try:
        port = parts.port
    except ValueError:
        port = None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    return f"{scheme}://{host}" + (f":{port}" if port and port != DEFAULT_PORTS.get(scheme) else "")


def url_key_problem(url: str) -> str | None:
    """Why ``url`` may not be an annotator's base URL because of what it carries: a URL is shown, logged and
    exported, so a key written into its path or query would be too."""
    parts = urlsplit(url.strip())
    pieces = re.split(r"[/?&=;#]", f"{parts.path}?{parts.query}")
    if any(looks_like_a_key(piece) for piece in pieces if piece):
        return ("this URL holds what looks like an API key: a URL is shown and exported, so paste the key into the "
                "write-only API key field and leave it out of the URL")
    return None


def same_destination(first: str, second: str) -> bool:
    """Whether two base URLs reach the same server: scheme, host and port (the path is that server's business). A
    stored key was given for one server; another one must not receive it."""
    return _origin(first) == _origin(second)


def moved_key_problem(old_url: str, new_url: str) -> str | None:
    """Why a stored key may not simply follow a new base URL: it was given for the old server, and anyone who may
    edit an annotator could otherwise point the key at a server of their own and read it there. None when the
    origin stays the same."""
    if same_destination(old_url, new_url):
        return None
    was = _origin(old_url) if old_url.strip() else "no base URL"
    return (f"the stored API key was given for {was}; it is not sent to {_origin(new_url)} unless you type the key "
            "again in the API key field (or tick 'Remove the stored API key')")
