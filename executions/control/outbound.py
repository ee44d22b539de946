"""Outbound HTTP for webhooks: the only code that opens a connection to a URL a
workspace member typed in. It owns which URLs may be taken (http and https only),
which addresses may be reached (public ones, plus the WEBHOOK_ALLOWED_TARGETS
allow-list) and how much of an answer is kept (a short text excerpt).

Why not urllib.urlopen: it opens file://, ftp:// and any address, follows redirects
wherever they point and hands back whatever bytes the target sent. A webhook URL
is user input, so it is treated like GitHub, Stripe and Svix treat theirs:

- the name is resolved once, every address it resolves to is checked, and the
  connection goes to the checked address (a DNS answer that changes between check
  and connect, "DNS rebinding", cannot swap it); the Host header and the TLS SNI and
  certificate check still use the name;
- a redirect is an answer like any other (recorded, never followed);
- a refused target gets no connection at all, and its delivery row says only
  "refused: <reason>".

Imports the standard library, Django settings and the URL check in agents.validation
(the agent version model uses it, and agents never import executions).
"""

import http.client
import ipaddress
import socket
import ssl
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

from django.conf import settings

from agents.validation import WEBHOOK_SCHEMES as SCHEMES
from agents.validation import url_problem, validate_webhook_url

__all__ = ["SCHEMES", "Outcome", "Refused", "post", "url_problem", "validate_webhook_url"]

EXCERPT_CHARS = 500
# Bytes read from an answer: enough for EXCERPT_CHARS of UTF-8 text, never the whole body.
_READ_BYTES = EXCERPT_CHARS * 4
TEXT_TYPES = ("text/", "application/json", "application/problem+json", "application/xml")


# --- which addresses may be reached --------------------------------------------------


@lru_cache(maxsize=8)
def _allow_list(entries: tuple[str, ...]) -> tuple[frozenset[str], tuple]:
    hosts, networks = set(), []
    for entry in entries:
        entry = entry.strip().lower()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            hosts.add(entry.rstrip("."))
    return frozenset(hosts), tuple(networks)


def allowed_targets() -> tuple[frozenset[str], tuple]:
    """(host names, networks) from settings.WEBHOOK_ALLOWED_TARGETS."""
    entries = getattr(settings, "WEBHOOK_ALLOWED_TARGETS", ()) or ()
    if isinstance(entries, str):
        entries = entries.split(",")
    return _allow_list(tuple(entries))


def _unwrapped(ip):
    # ::ffff:127.0.0.1 reaches 127.0.0.1: judge the IPv4 address it carries.
    if ip.version == 6 and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def address_problem(ip) -> str | None:
    """What kind of non-public address `ip` is ("a loopback address"), or None."""
    ip = _unwrapped(ip)
    for flag, what in (
        ("is_unspecified", "an unspecified"),
        ("is_loopback", "a loopback"),
        ("is_link_local", "a link-local"),
        ("is_multicast", "a multicast"),
        ("is_private", "a private"),
        ("is_reserved", "a reserved"),
    ):
        if getattr(ip, flag):
            return f"{what} address"
    if not ip.is_global:
        return "not a public address"
    return None


def _resolve(host: str, port: int) -> list:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    seen = []
    for _family, _type, _proto, _name, sockaddr in infos:
        ip = ipaddress.ip_address(sockaddr[0].split("%", 1)[0])
        if ip not in seen:
            seen.append(ip)
    return seen


class Refused(Exception):
    """The target may not be reached; the message is the whole stored reason."""


def checked_address(host: str, port: int) -> str:
    """The address to connect to for `host`, after resolving and checking every
    address it resolves to; raises Refused for a non-public one not on the allow-list."""
    hosts, networks = allowed_targets()
    try:
        addresses = _resolve(host, port)
    except (socket.gaierror, UnicodeError, ValueError) as exc:
        raise Refused(f"the host {host} could not be resolved ({exc})") from None
    if not addresses:
        raise Refused(f"the host {host} resolves to no address")
    host_allowed = host.lower().rstrip(".") in hosts
    for ip in addresses:
        if host_allowed or any(_unwrapped(ip) in net or ip in net for net in networks):
            continue
        if problem := address_problem(ip):
            # Every address is checked, not only the first: a name resolving to one
            # public and one internal address would otherwise reach the internal one
            # whenever the resolver's order changes.
            where = f"{ip} is" if str(ip) == host.strip("[]") else f"{host} resolves to {ip},"
            raise Refused(f"{where} {problem} (see WEBHOOK_ALLOWED_TARGETS)")
    return str(addresses[0])


# --- sending -------------------------------------------------------------------------


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to the checked address; Host header stays the name."""

    def __init__(self, host, port, *, address, timeout):
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self):
        self.sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """Connects to the checked address; SNI and the certificate check use the name."""

    def __init__(self, host, port, *, address, timeout, context):
        super().__init__(host, port, timeout=timeout, context=context)
        self._address = address

    def connect(self):
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


@dataclass
class Outcome:
    status: int | None = None
    excerpt: str = ""
    error: str = ""


def excerpt(content_type: str, raw: bytes) -> str:
    """What may be stored of an answer: up to EXCERPT_CHARS of text, nothing of
    anything else (an image or a binary file is no one's business in the log)."""
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    if not kind.startswith(TEXT_TYPES) and not kind.endswith("+json"):
        return ""
    text = raw.decode("utf-8", errors="replace").replace("\x00", "")
    return text[:EXCERPT_CHARS]


def post(url: str, body: bytes, headers: dict, *, timeout: float) -> Outcome:
    """POST `body` to `url` once: no redirects followed, only an excerpt kept."""
    if problem := url_problem(url):
        return Outcome(error=f"refused: the URL {problem}")
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = parts.hostname
    port = parts.port or (443 if scheme == "https" else 80)
    try:
        address = checked_address(host, port)
    except Refused as exc:
        return Outcome(error=f"refused: {exc}")
    if scheme == "https":
        connection = _PinnedHTTPSConnection(
            host, port, address=address, timeout=timeout, context=ssl.create_default_context()
        )
    else:
        connection = _PinnedHTTPConnection(host, port, address=address, timeout=timeout)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        raw = response.read(_READ_BYTES)
        status = response.status
        kept = excerpt(response.getheader("Content-Type", ""), raw)
        error = ""
        if 300 <= status < 400:
            location = (response.getheader("Location") or "")[:200]
            error = f"HTTP {status} redirect to {location or '(no Location)'}: not followed"
        elif status >= 400:
            error = f"HTTP {status} {response.reason}"[:300]
        return Outcome(status=status, excerpt=kept, error=error)
    except TimeoutError:
        return Outcome(error=f"No answer from {url} within {timeout} s")
    except ssl.SSLError as exc:
        return Outcome(error=f"TLS with {host} failed: {exc.reason or exc}")
    except ConnectionError as exc:
        return Outcome(error=f"Could not connect to {url}: {exc.strerror or exc}")
    except (OSError, http.client.HTTPException) as exc:
        return Outcome(error=f"Connection to {url} failed: {exc}")
    finally:
        connection.close()
