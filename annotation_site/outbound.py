"""The outbound policy: which places the server may reach at the URLs staff can set (LLM APIs, alert webhooks).

Loopback, private, link-local, multicast, reserved, unspecified and other non-public addresses are refused, unless
OUTBOUND_ALLOW names them (a host name, an IP or a CIDR network) or they are the local model server's host and port
(LOCAL_LLM_URL). ``check_url`` judges a URL when staff save it. ``policy_client`` judges every connection again,
after resolving the name itself, and connects to the address it checked: a name that resolves elsewhere later (DNS
rebinding) cannot reach a refused address.
"""

from __future__ import annotations

import contextvars
import ipaddress
import re
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx
from django.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_URL_CHARS = 2000
DEFAULT_PORTS = {"http": 80, "https": 443}
_SHOWN_CHARS = 120
_UNSAFE_CHARACTERS = re.compile(r"[\s\x00-\x1f\x7f-\x9f]")
_CREDENTIALS = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*:)?(?P<slashes>//)?[^/?#]*@")
# The decimal, octal and hex spellings of IPv4 that resolvers accept (2130706433, 0x7f.1, 0177.0.0.1).
_IPV4_SPELLING = re.compile(r"[0-9A-Fa-fXx.]+")
# "localhost" and its subdomains are loopback by definition (RFC 6761), whatever a resolver says.
_LOOPBACK_NAME_ADDRESS = ipaddress.IPv4Address("127.0.0.1")
# The first that applies names the refusal: 169.254.169.254 is private too, but "link-local" says more.
_REFUSED_KINDS = (("is_loopback", "a loopback address"), ("is_link_local", "a link-local address"),
                  ("is_unspecified", "an unspecified address"), ("is_multicast", "a multicast address"),
                  ("is_reserved", "a reserved address"), ("is_private", "a private address"))
# Past the deadline an operation still gets a moment, so that it ends as an ordinary timeout.
_LAST_MOMENT_S = 0.001
_call_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("outbound_call_deadline", default=None)


class OutboundRefused(ValueError):
    """A URL or a connection the outbound policy refuses. ``reason`` says why without repeating the URL."""

    def __init__(self, where: str, reason: str):
        super().__init__(f"{where}: {reason}")
        self.reason = reason


# -- judging hosts and addresses ------------------------------------------------------------------------------------

def _ip_literal(host: str) -> IPAddress | None:
    """``host`` as an address if it spells one, in any spelling a resolver accepts."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if not _IPV4_SPELLING.fullmatch(host):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def _host_key(host: str) -> str:
    """The name resolvers see: "ⓛⓞⓒⓐⓛⓗⓞⓢⓣ" and "LOCALHOST." are localhost, 2130706433 is 127.0.0.1."""
    literal = _ip_literal(host)
    if literal:
        return str(literal)
    name = host.strip().lower().rstrip(".")
    try:
        return name.encode("idna").decode("ascii")
    except UnicodeError:
        return name  # not a valid name at all: no resolver will find it either


def _unmapped(address: IPAddress) -> IPAddress:
    """The IPv4 address inside an IPv4-mapped IPv6 one (::ffff:127.0.0.1 is loopback, not a public IPv6)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def _refused_kind(address: IPAddress) -> str | None:
    for attribute, kind in _REFUSED_KINDS:
        if getattr(address, attribute):
            return kind
    return None if address.is_global else "not a public address"


@dataclass(frozen=True)
class _Allowed:
    names: frozenset[str]
    networks: tuple[IPNetwork, ...]
    local_llm: tuple[str, int | None] | None

    def covers_host(self, host: str, port: int) -> bool:
        key = _host_key(host)
        return key in self.names or (key, port) == self.local_llm

    def covers_address(self, address: IPAddress) -> bool:
        return any(address in network or _unmapped(address) in network for network in self.networks)


def _allowed() -> _Allowed:
    """The exceptions to the policy, read at each use so that a changed setting applies at once."""
    names, networks = set(), []
    for entry in settings.OUTBOUND_ALLOW:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            names.add(_host_key(entry))
    local = urlsplit(settings.LOCAL_LLM_URL)
    local_llm = (_host_key(local.hostname), local.port or DEFAULT_PORTS.get(local.scheme)) if local.hostname else None
    return _Allowed(frozenset(names), tuple(networks), local_llm)


def _refusal(host: str, port: int, addresses: list[IPAddress]) -> str | None:
    """Why ``host`` (at ``addresses``) may not be reached, or None. Every address must pass: a name with one
    private address among public ones would reach it on some connections."""
    allowed = _allowed()
    if allowed.covers_host(host, port):
        return None
    for address in addresses:
        plain = _unmapped(address)
        kind = None if allowed.covers_address(address) else _refused_kind(plain)
        if kind:
            return f"{_subject(host, plain)} {kind}; set OUTBOUND_ALLOW to allow it"
    return None


def _subject(host: str, address: IPAddress) -> str:
    if host == str(address):
        return f"{host} is"
    return f"{host} is {address}," if _ip_literal(host) else f"{host} resolves to {address},"


def _resolve(host: str, port: int) -> list[IPAddress]:
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in found))


def _addresses_at_save_time(host: str, port: int) -> list[IPAddress]:
    literal = _ip_literal(host)
    if literal:
        return [literal]
    name = _host_key(host)
    if name == "localhost" or name.endswith(".localhost"):
        return [_LOOPBACK_NAME_ADDRESS]
    try:
        return _resolve(host, port)
    except (OSError, UnicodeError):
        return []  # no DNS here, or a name not registered yet: every connection is checked when it is made


# -- URLs -----------------------------------------------------------------------------------------------------------

def _shown(url: str) -> str:
    """``url`` fit for an error message: credentials removed, control characters escaped, cut."""
    shown = _CREDENTIALS.sub(lambda m: f"{m['scheme'] or ''}{m['slashes'] or ''}…@", url)
    shown = repr(shown)[1:-1]
    return shown if len(shown) <= _SHOWN_CHARS else shown[:_SHOWN_CHARS] + "…"


def redacted_url(url: str) -> str:
    """``url`` as records and logs may show it: scheme, host and port; the path and query, where webhook tokens
    live, become "…"."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "(not a valid URL)"
    if not parts.hostname:
        return "(not a valid URL)"
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}{f':{port}' if port else ''}/…"


def check_url(url: str) -> None:
    """Raise OutboundRefused unless staff may set ``url``: http or https, a host, no credentials, at most
    MAX_URL_CHARS characters without whitespace or control characters, and a host the policy allows. A name that
    does not resolve now passes: every connection is checked again when it is made."""
    shown = _shown(url)
    if len(url) > MAX_URL_CHARS:
        raise OutboundRefused(shown, f"the URL is {len(url)} characters long; at most {MAX_URL_CHARS} are allowed")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise OutboundRefused(shown, "not a valid URL (a malformed [IPv6] address or port)") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        said = f"the scheme {scheme!r} is not allowed" if scheme else "the URL has no scheme"
        raise OutboundRefused(shown, f"{said}; only http and https URLs are allowed")
    # urlsplit drops tabs and newlines silently; the URL as given must not hold them either.
    if _UNSAFE_CHARACTERS.search(url):
        raise OutboundRefused(shown, "the URL contains whitespace or control characters")
    if "@" in parts.netloc:
        raise OutboundRefused(shown, "credentials (user:password@) in the URL are not allowed")
    if not parts.hostname:
        raise OutboundRefused(shown, "the URL names no host")
    port = port or DEFAULT_PORTS[scheme]
    reason = _refusal(parts.hostname, port, _addresses_at_save_time(parts.hostname, port))
    if reason:
        raise OutboundRefused(shown, reason)


# -- the client -----------------------------------------------------------------------------------------------------

@contextmanager
def time_limit(seconds: float) -> Iterator[float]:
    """Within this block, every connect, read and write of policy clients in this thread ends by one deadline
    (yielded, in time.monotonic() terms): httpx's own timeouts apply to each operation, which a server sending one
    byte at a time would stretch forever."""
    deadline = time.monotonic() + seconds
    token = _call_deadline.set(deadline)
    try:
        yield deadline
    finally:
        _call_deadline.reset(token)


def _bounded(timeout: float | None) -> float | None:
    deadline = _call_deadline.get()
    if deadline is None:
        return timeout
    left = max(deadline - time.monotonic(), _LAST_MOMENT_S)
    return left if timeout is None else min(timeout, left)


class _BoundedStream(httpcore.NetworkStream):
    """A connection whose every operation ends by the deadline of ``time_limit``."""

    def __init__(self, stream: httpcore.NetworkStream):
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _bounded(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _bounded(timeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(self, ssl_context: Any, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        return _BoundedStream(self._stream.start_tls(ssl_context, server_hostname, _bounded(timeout)))

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _PolicyNetwork(httpcore.SyncBackend):
    """Resolves each host itself, refuses it if any of its addresses is refused, and connects to a checked
    address; TLS (SNI) and the Host header still use the name, which httpcore takes from the request."""

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Any = None) -> httpcore.NetworkStream:
        try:
            addresses = _resolve(host, port)
        except (OSError, UnicodeError) as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        reason = _refusal(host, port, addresses)
        if reason:
            raise OutboundRefused(f"{host}:{port}", reason)
        failure: httpcore.ConnectError | None = None
        for address in addresses:
            try:
                stream = super().connect_tcp(str(address), port, timeout=_bounded(timeout),
                                             local_address=local_address, socket_options=socket_options)
            except httpcore.ConnectError as exc:
                failure = exc
                continue
            return _BoundedStream(stream)
        raise failure


class _PolicyTransport(httpx.HTTPTransport):
    """httpx's own transport (request conversion, error mapping) over a connection pool that uses the policy."""

    def __init__(self, *, verify: Any, limits: httpx.Limits):
        super().__init__(verify=verify, limits=limits, trust_env=False)
        # httpx takes no network backend argument, so its pool is replaced by the same pool with ours.
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify, trust_env=False),
            max_connections=limits.max_connections, max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry, network_backend=_PolicyNetwork())


_DECIDED_BY_THE_POLICY = frozenset({"transport", "mounts", "proxy", "trust_env", "follow_redirects"})


def policy_client(**client_kwargs: Any) -> httpx.Client:
    """An httpx.Client bound by the policy: every connection checked after its name is resolved (OutboundRefused
    when refused), redirects not followed, no proxy taken from the environment. ``verify`` and ``limits`` shape
    its connections; the other arguments go to httpx.Client."""
    decided = _DECIDED_BY_THE_POLICY & client_kwargs.keys()
    if decided:
        raise TypeError(f"policy_client() decides {', '.join(sorted(decided))} itself")
    transport = _PolicyTransport(verify=client_kwargs.pop("verify", True),
                                 limits=client_kwargs.pop("limits", httpx.Limits(max_connections=100,
                                                                                 max_keepalive_connections=20)))
    return httpx.Client(transport=transport, trust_env=False, follow_redirects=False, **client_kwargs)
