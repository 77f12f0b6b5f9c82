"""URL normalisation: one spelling per page, so the crawler fetches and stores each page once."""

from __future__ import annotations

from posixpath import splitext
from urllib.parse import quote, urljoin, urlsplit, urlunsplit

WEB_SCHEMES = frozenset({"http", "https"})
DEFAULT_PORTS = {"http": 80, "https": 443}
INDEX_PAGES = frozenset({"index.html", "index.htm"})

# Links to these are never documentation pages; skipping them by name saves a request each.
ASSET_EXTENSIONS = frozenset(
    {
        ".png", ".jpg", ".jpeg", ".gif", ".webp", ".svg", ".ico", ".bmp", ".tif", ".tiff", ".avif",
        ".ps", ".eps", ".epub", ".mobi", ".doc", ".docx", ".xls", ".xlsx", ".ppt", ".pptx", ".odt",
        ".zip", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".rar", ".tar", ".whl", ".egg", ".jar", ".deb", ".rpm",
        ".dmg", ".exe", ".msi", ".bin", ".iso", ".apk",
        ".css", ".js", ".mjs", ".map", ".json", ".wasm",
        ".woff", ".woff2", ".ttf", ".otf", ".eot",
        ".mp3", ".mp4", ".webm", ".ogg", ".wav", ".avi", ".mov", ".mkv", ".flac",
    }
)  # fmt: skip

# Characters left as they are when re-quoting a path or query: RFC 3986 reserved and
# unreserved characters plus "%", so existing escapes survive and only raw spaces or
# non-ASCII characters get percent-encoded.
_PATH_SAFE = "/:@!$&'()*+,;=-._~%"
_QUERY_SAFE = _PATH_SAFE + "?"


def normalize_url(url: str, base: str | None = None) -> str:
    """Return `url`, resolved against `base`, in the one form the crawler compares and stores.

    For http(s) URLs: the fragment is dropped, scheme and host are lowercased, a default
    port is removed, `.`/`..` segments are resolved, an empty path becomes `/`, and a
    trailing `index.html` is cut so that `x/` and `x/index.html` are one page. Other
    schemes only lose their fragment. A hash route (`#/guide`, `#!/guide`) is kept: in a
    client-side app it names a page of its own (see `hash_route`).

    >>> normalize_url("../b/index.html#top", "HTTP://Docs.Example.com:80/a/c/")
    'http://docs.example.com/a/b/'

    Raises:
        ValueError: the URL cannot be parsed (e.g. a port that is not a number).
    """
    url = url.strip()
    if base is not None:
        url = urljoin(base, url)
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in WEB_SCHEMES:
        return urlunsplit((scheme, parts.netloc, parts.path, parts.query, ""))
    return urlunsplit((scheme, _netloc(url, scheme), _path(parts.path), quote(parts.query, _QUERY_SAFE),
                       hash_route(parts.fragment)))


def hash_route(fragment: str) -> str:
    """Return the fragment when it is a client-side route (`/guide`, `!/guide`), else "".

    Hash routers (Docsify, Angular's and Vue's hash modes) put the page in the fragment;
    an ordinary fragment names a place in a page and is dropped. The root route (`#/`) is
    the page itself.
    """
    route = fragment.removeprefix("!")
    if not route.startswith("/") or route == "/":
        return ""
    return quote(fragment, _QUERY_SAFE + "#")


def is_web_url(url: str) -> bool:
    """Return True for an http or https URL."""
    return urlsplit(url).scheme.lower() in WEB_SCHEMES


def is_pdf(url: str) -> bool:
    """Return True when the URL names a PDF file (fetched only when a crawl takes PDFs: `--include-pdf`)."""
    return splitext(urlsplit(url).path)[1].lower() == ".pdf"


def is_asset(url: str) -> bool:
    """Return True when the URL's file extension names an image, archive, stylesheet or other non-page."""
    return splitext(urlsplit(url).path)[1].lower() in ASSET_EXTENSIONS


def origin(url: str) -> str:
    """Return `scheme://host[:port]` of a normalised URL."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def host(url: str) -> str:
    """Return `host[:port]` of a normalised URL: the unit of politeness (robots.txt, delays, limits)."""
    return urlsplit(url).netloc


def _netloc(url: str, scheme: str) -> str:
    """Return the lowercased `[userinfo@]host[:port]` of `url`, without the scheme's default port."""
    parts = urlsplit(url)
    hostname = (parts.hostname or "").lower()
    if ":" in hostname:  # an IPv6 literal lost its brackets in .hostname
        hostname = f"[{hostname}]"
    port = parts.port  # raises ValueError on a malformed port
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@{hostname}" if userinfo else hostname
    if port is not None and port != DEFAULT_PORTS[scheme]:
        netloc = f"{netloc}:{port}"
    return netloc


def _path(path: str) -> str:
    """Return `path` with dot segments resolved, unsafe characters quoted and `index.html` cut."""
    path = quote(_remove_dot_segments(path or "/"), _PATH_SAFE)
    head, _, last = path.rpartition("/")
    if last.lower() in INDEX_PAGES:
        return f"{head}/"
    return path


def _remove_dot_segments(path: str) -> str:
    """Return `path` with `.` and `..` segments resolved as RFC 3986 section 5.2.4 does."""
    segments = path.split("/")
    if "." not in segments and ".." not in segments:
        return path
    out: list[str] = []
    for segment in segments:
        if segment == "..":
            if len(out) > 1:
                out.pop()
        elif segment != ".":
            out.append(segment)
    if segments[-1] in (".", ".."):
        out.append("")  # "/a/b/.." names the folder "/a/", not the page "/a"
    return "/".join(out) if len(out) > 1 else "/"
