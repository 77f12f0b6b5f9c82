"""Server-side request forgery: every fetch of a crawl is checked, at connect time, on the address it resolved to.

The "internal" service in these tests is a second real server on 127.0.0.1, reached by the name
`localhost` (so it is not the host the user typed), or by a name a resolver stub maps to it. Each
test asserts that the internal server received nothing: on a crawler without the policy it does.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Callable

import pytest

from docshelf.access import AccessDeniedError, AccessPolicy, FolderPolicy, address_kind, redact_url
from docshelf.crawl import CrawlOptions, CrawlOutcome, CrawlRun, crawl
from docshelf.errors import BlockedFetch, ConfigError
from servers import Reply, Server

FAST = CrawlOptions(timeout=2.0, retries=0, backoff=0.01)
PAGE = "<html><head><title>{0}</title></head><body><main><h1>{0}</h1><p>Text of {0}.</p>{1}</main></body></html>"


def page(title: str, links: str = "") -> Reply:
    return Reply.html(PAGE.format(title, links))


def via_localhost(server: Server, path: str = "/") -> str:
    """Return the URL of `path` on `server` under the name `localhost`: another host than the one typed."""
    return f"http://localhost:{server.url('/').rsplit(':', 1)[1].rstrip('/')}{path}"


def collect(root: str, access: AccessPolicy | None = None) -> tuple[list[CrawlOutcome], CrawlRun]:
    async def run() -> tuple[list[CrawlOutcome], CrawlRun]:
        crawl_run = crawl(root, FAST, access=access)
        async with crawl_run:
            return [outcome async for outcome in crawl_run], crawl_run

    return asyncio.run(run())


def failures(outcomes: list[CrawlOutcome]) -> dict[str, str]:
    return {o.url: o.error.reason for o in outcomes if o.error is not None}


class Resolver:
    """A DNS stub: each name answers its addresses in turn (the last repeats); counts lookups."""

    def __init__(self, **names: list[str]) -> None:
        self.answers = {name.replace("_", "."): list(addresses) for name, addresses in names.items()}
        self.lookups: list[str] = []

    def __call__(self, host: str) -> list[str]:
        self.lookups.append(host)
        answers = self.answers.get(host)
        if not answers:
            raise OSError(f"{host}: no such name")
        return [answers.pop(0) if len(answers) > 1 else answers[0]]


@pytest.fixture
def internal(serve: Callable[[str | None], Server]) -> Server:
    """A service on the private side that no crawl may reach unless allowed."""
    server = serve(None)
    server.route("/", Reply.html("<h1>secret</h1>"))
    server.route("/secret", Reply.html("<h1>secret</h1>"))
    server.route("/robots.txt", Reply(body="User-agent: *\nAllow: /\n"))
    server.route("/sitemap.xml", Reply(body="<urlset><url><loc>http://x/</loc></url></urlset>"))
    return server


def test_the_cli_trusts_the_host_it_was_given(server: Server) -> None:
    server.route("/docs/", page("Home", '<a href="/docs/a">A</a>'))
    server.route("/docs/a", page("A"))
    outcomes, _ = collect(server.url("/docs/"))
    assert sorted(o.url for o in outcomes if o.fetched) == [server.url("/docs/"), server.url("/docs/a")]


def test_a_start_url_a_client_gives_is_refused_when_private(server: Server) -> None:
    server.route("/docs/", page("Home"))
    with pytest.raises(AccessDeniedError, match=r"blocked: 127\.0\.0\.1 is a loopback address; allow it with --allow-hosts"):
        collect(server.url("/docs/"), AccessPolicy.for_clients())
    assert server.paths() == []  # refused at connect: not even robots.txt was asked for


def test_a_start_url_is_checked_before_a_job_starts(server: Server) -> None:
    with pytest.raises(AccessDeniedError, match="loopback address; allow it with --allow-hosts"):
        AccessPolicy.for_clients().check_url(server.url("/docs/"))
    AccessPolicy.for_clients("127.0.0.0/8").check_url(server.url("/docs/"))
    AccessPolicy().check_url(server.url("/docs/"))  # the CLI's policy trusts what it was given
    with pytest.raises(AccessDeniedError, match="not an http"):
        AccessPolicy().check_url("ftp://example.com/")


def test_the_operator_allows_private_networks_and_names(server: Server) -> None:
    server.route("/docs/", page("Home"))
    outcomes, _ = collect(server.url("/docs/"), AccessPolicy.for_clients("10.0.0.0/8,127.0.0.1/32"))
    assert [o.url for o in outcomes if o.fetched] == [server.url("/docs/")]
    port = server.url("/").rsplit(":", 1)[1].rstrip("/")
    named = AccessPolicy.for_clients("docs.internal", resolver=Resolver(docs_internal=["127.0.0.1"]))
    outcomes, _ = collect(f"http://docs.internal:{port}/docs/", named)
    assert [o.url for o in outcomes if o.fetched] == [f"http://docs.internal:{port}/docs/"]


def test_a_redirect_of_the_start_page_to_a_private_host_is_refused(server: Server, internal: Server) -> None:
    server.route("/docs/", Reply.redirect(via_localhost(internal, "/secret")))
    with pytest.raises(AccessDeniedError, match=r"127\.0\.0\.1 is a loopback address; allow it with --allow-hosts"):
        collect(server.url("/docs/"))
    assert internal.paths() == []


def test_a_redirect_to_a_private_address_names_the_address_and_the_flag(server: Server) -> None:
    server.route("/docs/", Reply.redirect("http://10.1.2.3/latest/meta-data/"))
    with pytest.raises(AccessDeniedError) as refused:
        collect(server.url("/docs/"))
    assert "blocked: 10.1.2.3 is a private address; allow it with --allow-hosts" in str(refused.value)


def test_robots_txt_that_redirects_to_a_private_host_is_not_followed(server: Server, internal: Server) -> None:
    server.route("/robots.txt", Reply.redirect(via_localhost(internal, "/robots.txt")))
    server.route("/docs/", page("Home"))
    outcomes, _ = collect(server.url("/docs/"))
    assert internal.paths() == []
    assert [o.url for o in outcomes if o.fetched] == [server.url("/docs/")]
    assert failures(outcomes) == {
        server.url("/robots.txt"): "blocked: 127.0.0.1 is a loopback address; allow it with --allow-hosts"
    }


def test_a_sitemap_line_naming_a_private_host_is_not_fetched(server: Server, internal: Server) -> None:
    server.route("/robots.txt", Reply(body=f"User-agent: *\nAllow: /\nSitemap: {via_localhost(internal, '/sitemap.xml')}\n"))
    server.route("/docs/", page("Home"))
    outcomes, _ = collect(server.url("/docs/"))
    assert internal.paths() == []
    blocked = failures(outcomes)
    assert blocked == {via_localhost(internal, "/sitemap.xml"): blocked[via_localhost(internal, "/sitemap.xml")]}
    assert blocked[via_localhost(internal, "/sitemap.xml")].startswith("blocked: 127.0.0.1 is a loopback address")


def test_dns_rebinding_is_caught_at_connect_time(server: Server) -> None:
    server.route("/docs/", page("Home"))
    port = server.url("/").rsplit(":", 1)[1].rstrip("/")
    # Public when the start URL is checked, loopback when the crawl connects.
    resolver = Resolver(rebind_test=["93.184.216.34", "127.0.0.1"])
    policy = AccessPolicy.for_clients(resolver=resolver)
    url = f"http://rebind.test:{port}/docs/"
    policy.check_url(url)  # passes: the name looks public now
    with pytest.raises(AccessDeniedError, match=r"blocked: 127\.0\.0\.1 is a loopback address"):
        collect(url, policy)
    assert server.paths() == []
    assert resolver.lookups[0] == "rebind.test" and len(resolver.lookups) >= 2


def test_the_typed_host_is_trusted_whatever_it_resolves_to(server: Server) -> None:
    server.route("/docs/", page("Home", '<a href="/docs/a">A</a>'))
    server.route("/docs/a", page("A"))
    port = server.url("/").rsplit(":", 1)[1].rstrip("/")
    resolver = Resolver(site_test=["127.0.0.1"])
    policy = AccessPolicy(resolver=resolver)  # the CLI's: the start host is trusted whatever it resolves to
    outcomes, _ = collect(f"http://site.test:{port}/docs/", policy)
    assert len([o for o in outcomes if o.fetched]) == 2
    assert not any(isinstance(o.error, BlockedFetch) for o in outcomes)


def test_credentials_in_a_url_stay_out_of_errors() -> None:
    with pytest.raises(ConfigError) as refused:
        collect("http://me:hunter2@127.0.0.1:9/docs/")
    assert "hunter2" not in str(refused.value)
    assert redact_url("https://me:pw@example.com:8443/a?b=c") == "https://example.com:8443/a?b=c"


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("10.1.2.3", "private"),
        ("192.168.0.1", "private"),
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("240.0.0.1", "reserved"),
        ("100.64.0.1", "reserved"),
        ("::ffff:127.0.0.1", "loopback"),
        ("fd00::1", "private"),
        ("93.184.216.34", None),
        ("2606:2800:220:1::", None),
    ],
)
def test_address_kinds(address: str, kind: str | None) -> None:
    assert address_kind(ipaddress.ip_address(address)) == kind


def test_allow_lists_parse_networks_addresses_and_names() -> None:
    policy = AccessPolicy.parse(" 10.0.0.0/8, 192.168.1.7 ,docs.internal,fd00::/8")
    assert policy.allows("x", "10.9.9.9") and policy.allows("x", "192.168.1.7") and policy.allows("x", "fd00::2")
    assert not policy.allows("x", "192.168.1.8")
    assert policy.allows("Docs.Internal", "192.168.1.8")
    for bad in ("10.0.0.0/33", "docs..internal", "http://x/"):
        with pytest.raises(ConfigError, match="--allow-hosts"):
            AccessPolicy.parse(bad)


def test_allow_hosts_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCSHELF_ALLOW_HOSTS", "10.0.0.0/8")
    assert AccessPolicy.from_env().allows("x", "10.1.2.3")
    assert not AccessPolicy.from_env("").allows("x", "10.1.2.3")


def test_folders_resolve_symlinks_and_dot_dot(tmp_path) -> None:  # type: ignore[no-untyped-def]
    allowed = tmp_path / "docs"
    (allowed / "guide").mkdir(parents=True)
    (tmp_path / "private").mkdir()
    (allowed / "escape").symlink_to(tmp_path / "private")
    policy = FolderPolicy.of([allowed])
    assert policy.allows(allowed / "guide") and policy.allows(allowed)
    assert not policy.allows(allowed / ".." / "private")
    assert not policy.allows(allowed / "escape")
    assert not policy.allows(str(tmp_path / "docs-other"))
    with pytest.raises(AccessDeniedError, match="--allow-folder DIR"):
        policy.check("/")
    with pytest.raises(AccessDeniedError, match="--allow-folder DIR"):
        FolderPolicy().check(allowed)


def test_credentials_go_to_their_origin_only_and_into_no_stored_url(server: Server, serve) -> None:  # type: ignore[no-untyped-def]
    other = serve(None)
    other.route("/sitemap.xml", Reply(body="<urlset></urlset>"))
    server.route("/robots.txt", Reply(body=f"User-agent: *\nAllow: /\nSitemap: {other.url('/sitemap.xml')}\n"))
    server.route("/docs/", page("Home", '<a href="/docs/a">A</a>'))
    server.route("/docs/a", page("A"))
    start = server.url("/docs/").replace("http://", "http://me:s%40cret@")
    outcomes, _ = collect(start)
    assert sorted(o.url for o in outcomes if o.fetched) == [server.url("/docs/"), server.url("/docs/a")]
    assert all("s%40cret" not in o.url and "me:" not in o.url for o in outcomes)
    sent = {r.path: r.headers.get("Authorization") for r in server.requests}
    assert sent["/docs/a"] == "Basic bWU6c0BjcmV0"  # me:s@cret
    assert other.paths() == ["/sitemap.xml"] and other.requests[0].headers.get("Authorization") is None
