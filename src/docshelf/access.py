"""Where docshelf may be made to connect, and which folders a client may make it read: one policy for both.

Every HTTP request of a crawl (each page and each redirect hop, robots.txt, sitemaps and the sitemaps
they index, llms.txt) goes through a client from `guarded_client`, whose transport checks the address
it is about to connect to, after DNS resolution, right before the connection opens, and connects to
exactly that address. So a name that resolved to a public address when a start URL was checked and
resolves to 127.0.0.1 when the crawl connects (DNS rebinding) is refused: there is no second lookup
after the check.

Who is trusted:

- the CLI trusts the host its user typed (`docshelf add http://127.0.0.1:8000/docs/` works) and nothing
  else: a redirect, a sitemap entry or a robots.txt that leaves that host for a private, loopback,
  link-local, multicast or reserved address is refused;
- `serve` and `mcp` trust no host a client names (`AccessPolicy.for_clients`): private destinations are
  refused unless the operator allowed them (`--allow-hosts 10.0.0.0/8,docs.internal`, env
  `DOCSHELF_ALLOW_HOSTS`), and a client-started folder must lie under an `--allow-folder` (`FolderPolicy`).

Only http and https are fetched; proxies from the environment are not used (a proxy would connect on
our behalf, past the check).
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import anyio
import httpcore
import httpx

from docshelf.errors import ConfigError

ALLOW_HOSTS_ENV = "DOCSHELF_ALLOW_HOSTS"
ALLOW_HOSTS_FLAG = "--allow-hosts"
ALLOW_FOLDER_FLAG = "--allow-folder"
WEB_SCHEMES = ("http", "https")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str], Sequence[str]]
"""Returns the addresses a host name resolves to (blocking; run off the event loop)."""


class AccessDeniedError(ConfigError):
    """A destination or folder the policy refuses; the message names the flag that would allow it."""


def system_resolver(host: str) -> list[str]:
    """Return the distinct addresses `host` resolves to, in the order the system gives them.

    Raises:
        OSError: the name does not resolve.
    """
    infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def address_kind(ip: IPAddress) -> str | None:
    """Return what makes `ip` a non-public destination ("private", "loopback", …), or None for a public one.

    >>> address_kind(ipaddress.ip_address("169.254.169.254"))
    'link-local'
    """
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    for kind, flag in (
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("unspecified", ip.is_unspecified),
        ("reserved", ip.is_reserved),
        ("private", ip.is_private),
    ):
        if flag:
            return kind
    # Shared address space (100.64.0.0/10), documentation ranges and the like: not private, not global either.
    return None if ip.is_global else "reserved"


def split_credentials(url: str) -> tuple[str, tuple[str, str] | None]:
    """Return `url` without its user name and password, and those two (unquoted), or None when it has none.

    >>> split_credentials("https://me:s%40cret@docs.internal/a/")
    ('https://docs.internal/a/', ('me', 's@cret'))
    """
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, None
    return redact_url(url), (unquote(parts.username or ""), unquote(parts.password or ""))


class OriginAuth(httpx.Auth):
    """HTTP Basic credentials sent only to the one origin (scheme, host, port) they were given for."""

    def __init__(self, origin: str, username: str, password: str) -> None:
        self._origin = httpx.URL(origin)
        self._header = httpx.BasicAuth(username, password)._auth_header

    def auth_flow(self, request: httpx.Request) -> Any:
        url = request.url
        if (url.scheme, url.host, url.port) == (self._origin.scheme, self._origin.host, self._origin.port):
            request.headers["Authorization"] = self._header
        yield request


def redact_url(url: str) -> str:
    """Return `url` without the user name and password it may carry, for logs and error messages.

    >>> redact_url("https://me:secret@docs.example.com/a/")
    'https://docs.example.com/a/'
    """
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()


@dataclass(frozen=True)
class AccessPolicy:
    """Which addresses outbound requests may connect to.

    A public address is always allowed. A private, loopback, link-local, multicast or reserved
    one only when its host name is trusted or allowed, or the address lies in an allowed network.

    >>> AccessPolicy.parse("10.0.0.0/8,docs.internal").allows("docs.internal", "192.168.1.2")
    True
    """

    allowed_networks: tuple[IPNetwork, ...] = ()
    allowed_names: frozenset[str] = frozenset()
    trusted_names: frozenset[str] = frozenset()
    """Host names trusted whatever they resolve to: the start host a CLI user typed."""
    trust_start: bool = True
    """Trust the host of each crawl's start URL (the CLI); False for crawls a client starts."""
    resolver: Resolver = field(default=system_resolver, compare=False)

    @classmethod
    def parse(cls, spec: str | Iterable[str] | None, **settings: Any) -> AccessPolicy:
        """Return the policy allowing the networks and host names in `spec` ("10.0.0.0/8,docs.internal").

        Raises:
            ConfigError: an entry is neither a network, an address nor a host name.
        """
        entries = spec.split(",") if isinstance(spec, str) else list(spec or ())
        networks: list[IPNetwork] = []
        names: set[str] = set()
        for entry in (e.strip() for e in entries):
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
                continue
            except ValueError:
                pass
            if "/" in entry or ":" in entry or not all(part for part in entry.split(".")):
                raise ConfigError(
                    f"{ALLOW_HOSTS_FLAG}: {entry!r} is neither a network (10.0.0.0/8), "
                    "an address (10.1.2.3) nor a host name (docs.internal)"
                )
            names.add(entry.lower())
        return cls(allowed_networks=tuple(networks), allowed_names=frozenset(names), **settings)

    @classmethod
    def from_env(cls, spec: str | None = None, **settings: Any) -> AccessPolicy:
        """Return the policy of `spec`, or of env DOCSHELF_ALLOW_HOSTS when `spec` is None."""
        return cls.parse(os.environ.get(ALLOW_HOSTS_ENV, "") if spec is None else spec, **settings)

    @classmethod
    def for_clients(cls, spec: str | Iterable[str] | None = None, **settings: Any) -> AccessPolicy:
        """Return the policy for crawls a client of `serve` or `mcp` starts: no start host is trusted."""
        return cls.parse(spec, trust_start=False, **settings)

    def for_crawl(self, start: str) -> AccessPolicy:
        """Return the policy for one crawl from `start`: with its host trusted when the policy trusts starts."""
        name = (urlsplit(start).hostname or "").lower()
        if not self.trust_start or not name:
            return self
        return replace(self, trusted_names=self.trusted_names | {name})

    def refusal(self, host: str, address: str) -> str | None:
        """Return why connecting to `address` (which `host` resolved to) is refused, or None when it is allowed."""
        name = host.strip("[]").lower()
        if name in self.trusted_names or name in self.allowed_names:
            return None
        ip = ipaddress.ip_address(address.split("%")[0])  # an IPv6 zone id is not part of the address
        if any(ip in network for network in self.allowed_networks):
            return None
        mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
        if mapped is not None and any(mapped in network for network in self.allowed_networks):
            return None
        kind = address_kind(ip)
        if kind is None:
            return None
        return f"blocked: {address} is a {kind} address; allow it with {ALLOW_HOSTS_FLAG}"

    def allows(self, host: str, address: str) -> bool:
        """Return True when connecting to `address` of `host` is allowed."""
        return self.refusal(host, address) is None

    def addresses(self, host: str) -> list[str]:
        """Return the addresses to connect to for `host`: itself when it is a literal address, else resolved.

        Raises:
            OSError: the name does not resolve.
        """
        name = host.strip("[]")
        try:
            return [str(ipaddress.ip_address(name))]
        except ValueError:
            return list(self.resolver(name))

    def check_url(self, url: str) -> None:
        """Refuse a URL a client asked to crawl, before the crawl starts (the crawl checks again at connect).

        A name that does not resolve is let through: the crawl reports it as unreachable.

        Raises:
            AccessDeniedError: not http(s), or the host resolves to an address the policy refuses.
        """
        parts = urlsplit(url)
        if parts.scheme.lower() not in WEB_SCHEMES or not parts.hostname:
            raise AccessDeniedError(f"{redact_url(url)} is not an http(s) URL")
        policy = self.for_crawl(url)
        try:
            addresses = policy.addresses(parts.hostname)
        except OSError:
            return
        for address in addresses:
            reason = policy.refusal(parts.hostname, address)
            if reason:
                raise AccessDeniedError(f"{redact_url(url)}: {reason}")


def guarded_client(policy: AccessPolicy, **settings: Any) -> httpx.AsyncClient:
    """Return an `httpx.AsyncClient` whose every connection the policy vets at connect time.

    Args:
        policy: the policy for this client's requests (see `AccessPolicy.for_crawl`).
        settings: passed to `httpx.AsyncClient` (headers, timeout, follow_redirects).
    """
    return httpx.AsyncClient(transport=GuardedTransport(policy), **settings)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport, whose connection pool connects through `GuardedBackend`."""

    def __init__(self, policy: AccessPolicy, limits: httpx.Limits | None = None) -> None:
        limits = limits or httpx.Limits()
        super().__init__(limits=limits)
        # httpx builds its pool without a network backend parameter; this is that pool with ours.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=GuardedBackend(policy),
        )


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves a host once, refuses the addresses the policy refuses, and connects to an allowed one."""

    def __init__(self, policy: AccessPolicy, backend: httpcore.AsyncNetworkBackend | None = None) -> None:
        self.policy = policy
        self._backend = backend or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await anyio.to_thread.run_sync(self.policy.addresses, host)
        except OSError as exc:
            raise httpcore.ConnectError(f"{host} does not resolve: {exc}") from exc
        reasons = [self.policy.refusal(host, address) for address in addresses]
        allowed = [address for address, reason in zip(addresses, reasons) if reason is None]
        if not allowed:
            raise AccessDeniedError(next((r for r in reasons if r), f"blocked: {host} has no address"))
        error: Exception | None = None
        for address in allowed:
            try:
                return await self._backend.connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        assert error is not None
        raise error

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise AccessDeniedError("blocked: a Unix socket is not a web address")

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


@dataclass(frozen=True)
class FolderPolicy:
    """The folders a client of `serve` or `mcp` may have crawled: those under a folder the operator named.

    >>> FolderPolicy.of(["/srv/docs"]).allows("/srv/docs/guide")
    True
    """

    roots: tuple[Path, ...] = ()

    @classmethod
    def of(cls, folders: Iterable[str | Path]) -> FolderPolicy:
        """Return the policy allowing everything under `folders` (symlinks and `..` resolved)."""
        return cls(tuple(Path(folder).expanduser().resolve() for folder in folders))

    def allows(self, path: str | Path) -> bool:
        """Return True when `path`, with symlinks and `..` resolved, lies under an allowed folder."""
        real = Path(path).expanduser().resolve()
        return any(real == root or root in real.parents for root in self.roots)

    def check(self, path: str | Path) -> None:
        """Refuse a folder a client asked to crawl unless it lies under an allowed one.

        Raises:
            AccessDeniedError: naming the flag that would allow it.
        """
        if self.allows(path):
            return
        allowed = ", ".join(str(root) for root in self.roots)
        raise AccessDeniedError(
            f"folder {path} is not under a folder this server may read"
            + (f" ({allowed})" if allowed else "")
            + f"; start it with {ALLOW_FOLDER_FLAG} DIR"
        )
