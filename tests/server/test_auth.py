"""The token (Bearer header and login cookie), and the guards of a server without one, on the real app."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from test_api import assert_error

from docshelf.server.auth import COOKIE, LoginThrottle, Sessions, is_authorized, safe_next
from docshelf.server.state import ServerConfig

TOKEN = "s3cret-token-for-tests"
Client = Callable[..., TestClient]


@pytest.fixture
def guarded(make_client: Client) -> TestClient:
    return make_client(token=TOKEN)


def test_without_the_token_the_api_is_401_and_pages_redirect_to_login(guarded: TestClient) -> None:
    for path in ("/api/sources", "/api/search?q=cache", "/api/jobs/abc", "/openapi.json"):
        response = guarded.get(path)
        assert_error(response, 401, "unauthorized", "Authorization: Bearer")
        assert response.headers["www-authenticate"] == 'Bearer realm="docshelf"'
    assert_error(guarded.post("/api/sources", json={"url": "http://127.0.0.1:1/"}), 401, "unauthorized")
    assert_error(guarded.post("/mcp", json={}), 401, "unauthorized")
    for path, target in (
        ("/", "/"),
        ("/docs", "/docs"),
        ("/sources/widgets?page=2", "/sources/widgets%3Fpage%3D2"),
    ):
        response = guarded.get(path, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"] == f"/login?next={target}"


@pytest.mark.parametrize("header", ["Bearer wrong", f"Basic {TOKEN}", TOKEN, "Bearer", f"Bearer {TOKEN}x"])
def test_a_wrong_token_is_401(guarded: TestClient, header: str) -> None:
    assert_error(guarded.get("/api/sources", headers={"Authorization": header}), 401, "unauthorized")


def test_the_bearer_token_opens_the_api_the_schema_and_the_docs(guarded: TestClient) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert guarded.get("/api/sources", headers=auth).json()["sources"][0]["name"] == "widgets"
    assert "/api/search" in guarded.get("/openapi.json", headers=auth).json()["paths"]
    assert "swagger" in guarded.get("/docs", headers=auth).text.lower()
    assert guarded.post("/api/ask", json={"question": "cache"}, headers=auth).status_code == 200


def test_the_login_form_sets_an_httponly_strict_cookie_and_logout_clears_it(guarded: TestClient) -> None:
    form = guarded.get("/login", params={"next": "/sources"})
    assert form.status_code == 200 and 'name="token"' in form.text and 'value="/sources"' in form.text

    wrong = guarded.post("/login", data={"token": "nope", "next": "/sources"}, follow_redirects=False)
    assert wrong.status_code == 401 and "not the token" in wrong.text and COOKIE not in wrong.cookies

    right = guarded.post("/login", data={"token": TOKEN, "next": "/sources"}, follow_redirects=False)
    assert right.status_code == 303 and right.headers["location"] == "/sources"
    cookie = right.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    assert "Max-Age=43200" in cookie  # twelve hours, and the signature carries the time it was issued
    assert TOKEN not in cookie
    assert guarded.get("/api/sources").status_code == 200  # the cookie alone opens the API

    out = guarded.post("/logout", follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert COOKIE not in guarded.cookies
    assert_error(guarded.get("/api/sources"), 401, "unauthorized")


def test_a_forged_cookie_is_401(guarded: TestClient) -> None:
    old_style = hmac.new(TOKEN.encode(), b"docshelf-session-v1", hashlib.sha256).hexdigest()
    for forged in (TOKEN, old_style, Sessions().issue(), "", "x.y.z"):  # another server's secret signs nothing here
        guarded.cookies.set(COOKIE, forged)
        assert_error(guarded.get("/api/sources"), 401, "unauthorized")


def test_logout_ends_every_session_by_rotating_the_secret(guarded: TestClient) -> None:
    guarded.post("/login", data={"token": TOKEN}, follow_redirects=False)
    first = guarded.cookies[COOKIE]
    guarded.post("/login", data={"token": TOKEN}, follow_redirects=False)
    second = guarded.cookies[COOKIE]  # another browser's session
    guarded.cookies.set(COOKIE, first)
    assert guarded.get("/api/sources").status_code == 200
    guarded.post("/logout", follow_redirects=False)
    guarded.cookies.set(COOKIE, second)
    assert_error(guarded.get("/api/sources"), 401, "unauthorized")


def test_a_logout_without_a_session_ends_nothing(guarded: TestClient) -> None:
    guarded.post("/login", data={"token": TOKEN}, follow_redirects=False)
    session = guarded.cookies[COOKIE]
    guarded.cookies.clear()
    guarded.get("/logout", follow_redirects=False)  # anyone may call it: it must not log others out
    guarded.cookies.set(COOKIE, session)
    assert guarded.get("/api/sources").status_code == 200


def test_a_session_expires() -> None:
    sessions = Sessions(max_age=1)
    cookie = sessions.issue()
    assert sessions.valid(cookie)
    time.sleep(2.1)
    assert not sessions.valid(cookie)


def test_failed_logins_are_rate_limited_per_client(guarded: TestClient) -> None:
    for _ in range(5):
        assert guarded.post("/login", data={"token": "guess"}, follow_redirects=False).status_code == 401
    refused = guarded.post("/login", data={"token": TOKEN}, follow_redirects=False)
    assert refused.status_code == 429 and "Too many failed attempts" in refused.text
    assert 1 <= int(refused.headers["retry-after"]) <= 60 and COOKIE not in guarded.cookies


def test_the_login_throttle_forgets_after_its_window() -> None:
    throttle = LoginThrottle(max_failures=2, window=60)
    throttle.failed("a", now=0)
    throttle.failed("a", now=10)
    assert throttle.retry_after("a", now=11) == 49 and throttle.retry_after("b", now=11) == 0
    assert throttle.retry_after("a", now=61) == 0  # the first failure left the window
    throttle.succeeded("a")
    assert throttle.retry_after("a", now=12) == 0


@pytest.mark.parametrize(
    "target", ["//evil.example/", "https://evil.example/", "/\\evil.example", "", "evil"]
)
def test_login_never_redirects_to_another_site(guarded: TestClient, target: str) -> None:
    response = guarded.post("/login", data={"token": TOKEN, "next": target}, follow_redirects=False)
    assert response.headers["location"] == "/" and safe_next(target) == "/"


def test_without_a_token_everything_is_open_and_login_goes_home(make_client: Client) -> None:
    client = make_client()
    assert client.get("/api/sources").status_code == 200
    assert client.get("/login", follow_redirects=False).headers["location"] == "/"
    assert (
        client.post("/login", data={"token": "x", "next": "/sources"}, follow_redirects=False).headers[
            "location"
        ]
        == "/sources"
    )


def test_without_a_token_writes_from_another_site_are_refused(make_client: Client) -> None:
    client = make_client()
    forged = {"Origin": "https://evil.example"}
    assert_error(client.delete("/api/sources/widgets", headers=forged), 403, "cross_origin")
    assert_error(client.post("/api/sources/widgets/refresh", headers=forged), 403, "cross_origin")
    assert (
        client.get("/api/sources", headers=forged).status_code == 200
    )  # a read cannot be seen cross-origin (no CORS)
    same_site = client.delete("/api/sources/widgets", headers={"Origin": "http://testserver"})
    assert same_site.json() == {"source": "widgets", "pages_removed": 4}


def test_allowed_hosts_refuse_other_host_names(make_client: Client) -> None:
    client = make_client(allowed_hosts=("127.0.0.1", "localhost", "::1"), port=8765)
    assert_error(client.get("/api/sources"), 403, "forbidden_host", "does not answer to host 'testserver'")
    assert_error(
        client.get("/api/sources", headers={"Host": "rebound.evil.example:8765"}),
        403,
        "forbidden_host",
        "http://127.0.0.1:8765/",
    )
    for host in ("127.0.0.1:8765", "localhost:8765", "[::1]:8765", "LOCALHOST"):
        assert client.get("/api/sources", headers={"Host": host}).status_code == 200, host


def test_is_authorized_compares_in_constant_time_without_tripping_on_odd_input() -> None:
    config = ServerConfig(db="unused", token=TOKEN)
    assert is_authorized(config, f"bearer {TOKEN}", None)
    sessions = Sessions()
    assert is_authorized(config, None, sessions.issue(), sessions)
    assert not is_authorized(config, None, sessions.issue())  # no session store: cookies count for nothing
    assert not is_authorized(
        config, "Bearer tökén", "çookie"
    )  # non-ASCII must not raise (compare_digest on str does)
    assert not is_authorized(config, None, None)
    assert is_authorized(ServerConfig(db="unused"), None, None)
