"""The guards in front of ingest: the rate limit (per user or IP, shared through Redis) and
the origin check (scheme, host and port)."""

from __future__ import annotations

import logging
import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, session
from redis import Redis

from flask_tracking import Tracking
from flask_tracking.errors import ConfigError
from flask_tracking.guards import normalise_origin
from flask_tracking.ratelimit import KEY_PREFIX, LocalLimiter, RedisLimiter, rate_key
from flask_tracking.redact import redact_url

import services
from support import service_url

HostFactory = Callable[..., Flask]
PASSWORD = "s3cret-Pa55word"


def batch() -> dict[str, Any]:
    now_ms = time.time() * 1000
    event = {
        "id": str(uuid.uuid4()),
        "event_type": "play_video",
        "event": {"id": "i4x-Org-Num-video-intro", "code": "html5", "currentTime": 1.0},
        "page": "https://lms.example/courses/course-v1:Org+Num+Run/courseware/u1",
        "time": now_ms,
        "seq": 1,
    }
    return {"sent_at": now_ms, "events": [event]}


def body(answer: Any) -> Any:
    """The JSON of an answer (typed Any: tests index into it)."""
    return answer.json


def post(client: Any, **kwargs: Any) -> int:
    status: int = client.post("/activity/events", json=batch(), **kwargs).status_code
    return status


@pytest.fixture
def make_host(tmp_path: Path) -> Iterator[HostFactory]:
    """Build one "host": a Flask app with its own instance folder and SQLite database.

    Hosts of one test share a SECRET_KEY (as the hosts of one site do) and a Redis key
    prefix of their own; the test's keys are deleted afterwards.
    """
    made: list[Flask] = []
    secret = f"guards-{uuid.uuid4().hex}"
    prefix = f"{KEY_PREFIX}test-{uuid.uuid4().hex}:"

    def factory(host: str = "a", tracking: Tracking | None = None, **config: Any) -> Flask:
        app = Flask("guards_test", instance_path=str(tmp_path / host))
        app.config.update(SECRET_KEY=secret, TESTING=True, TRACKING_RATE_LIMIT="3/minute")
        app.config.update(config)
        (tracking or Tracking()).init_app(app)
        state = app.extensions["tracking"]
        state.store.create_all()
        if isinstance(state.limiter, RedisLimiter):
            state.limiter.prefix = prefix
        made.append(app)
        return app

    yield factory
    for app in made:
        state = app.extensions["tracking"]
        state.engine.dispose()
        if isinstance(state.limiter, RedisLimiter):
            state.limiter.close()
    if made and made[0].config.get("TRACKING_REDIS_URL"):
        client = Redis.from_url(made[0].config["TRACKING_REDIS_URL"], socket_timeout=2)
        try:
            for key in client.scan_iter(match=prefix + "*"):
                client.delete(key)
        except Exception:  # a test's own server may be closed already
            pass
        finally:
            client.close()


@pytest.fixture(params=["local", "redis"])
def limit_config(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The in-process limit, then the one shared through a real Redis."""
    if request.param == "local":
        return {}
    return {"TRACKING_REDIS_URL": service_url("redis")}


def signed_in_tracking() -> Tracking:
    """A Tracking whose identity loader reads the learner from the Flask session."""
    tracking = Tracking()

    @tracking.identity_loader
    def load() -> dict[str, Any] | None:
        name = session.get("user")
        return {"user_id": {"ada": 1, "bob": 2}[name], "username": name} if name else None

    return tracking


def add_login(app: Flask) -> None:
    @app.post("/login/<name>")
    def login(name: str) -> str:
        session["user"] = name
        return "ok"


# -- the key: what a client cannot mint -----------------------------------------------------


def test_cookieless_requests_from_one_ip_share_one_budget(
    make_host: HostFactory, limit_config: dict[str, Any]
) -> None:
    app = make_host(**limit_config)
    client = app.test_client(use_cookies=False)  # a fresh session id with every request
    here = {"environ_base": {"REMOTE_ADDR": "203.0.113.5"}}
    assert [post(client, **here) for _ in range(4)] == [200, 200, 200, 429]
    answer = client.post("/activity/events", json=batch(), **here)
    assert body(answer)["code"] == "rate_limited"
    assert 1 <= int(answer.headers["Retry-After"]) <= 20
    assert post(client, environ_base={"REMOTE_ADDR": "203.0.113.6"}) == 200


def test_each_signed_in_user_has_a_budget_of_their_own(
    make_host: HostFactory, limit_config: dict[str, Any]
) -> None:
    app = make_host(tracking=signed_in_tracking(), **limit_config)
    add_login(app)
    ada, bob, anonymous = app.test_client(), app.test_client(), app.test_client()
    ada.post("/login/ada")
    bob.post("/login/bob")
    assert [post(ada) for _ in range(4)] == [200, 200, 200, 429]
    assert [post(bob) for _ in range(4)] == [200, 200, 200, 429]
    assert post(anonymous) == 200  # the IP's own budget is untouched by the users'


def test_trusted_proxy_gives_the_forwarded_client_as_the_key(make_host: HostFactory) -> None:
    app = make_host(TRACKING_TRUSTED_PROXIES=1)
    client = app.test_client(use_cookies=False)

    def via_proxy(forwarded: str) -> int:
        return post(
            client,
            environ_base={"REMOTE_ADDR": "10.0.0.1"},
            headers={"X-Forwarded-For": forwarded},
        )

    assert [via_proxy("198.51.100.7") for _ in range(4)] == [200, 200, 200, 429]
    assert via_proxy("198.51.100.8") == 200
    # The proxy appends: what the client wrote itself sits further left and is not read.
    assert via_proxy("1.2.3.4, 198.51.100.7") == 429


def test_forged_forwarded_for_is_ignored_without_trusted_proxies(make_host: HostFactory) -> None:
    app = make_host(TRACKING_TRUSTED_PROXIES=0)
    client = app.test_client(use_cookies=False)
    statuses = [
        post(
            client,
            environ_base={"REMOTE_ADDR": "203.0.113.9"},
            headers={"X-Forwarded-For": f"198.51.100.{n}"},
        )
        for n in range(4)
    ]
    assert statuses == [200, 200, 200, 429]


def test_rate_key_prefers_the_user_and_groups_ipv6_by_64() -> None:
    assert rate_key({"username": "ada", "ip": "1.2.3.4"}, {"user_id": 7}) == "user:7"
    assert rate_key({"username": "ada", "ip": "1.2.3.4"}, {"user_id": None}) == "username:ada"
    assert rate_key({"username": "", "ip": "1.2.3.4"}, {}) == "ip:1.2.3.4"
    one = rate_key({"ip": "2001:db8:1:2:aaaa::1"}, {})
    assert one == rate_key({"ip": "2001:db8:1:2:ffff:ffff:ffff:fffe"}, {})
    assert one == "ip:2001:db8:1:2::/64"
    assert rate_key({"ip": "2001:db8:1:3::1"}, {}) != one
    assert rate_key({"ip": "::ffff:192.0.2.1"}, {}) == "ip:192.0.2.1"
    assert rate_key({"ip": None}, {}) == "ip:"


# -- Redis: one budget across processes and hosts ---------------------------------------------


def test_two_hosts_share_one_budget_through_redis(make_host: HostFactory) -> None:
    url = service_url("redis")
    first = make_host("host-a", TRACKING_REDIS_URL=url).test_client(use_cookies=False)
    second = make_host("host-b", TRACKING_REDIS_URL=url).test_client(use_cookies=False)
    assert [post(first), post(second), post(first)] == [200, 200, 200]
    assert post(second) == 429
    assert post(first) == 429


def test_redis_bucket_answers_like_the_local_one_and_expires_when_idle() -> None:
    url = service_url("redis")
    prefix = f"{KEY_PREFIX}test-{uuid.uuid4().hex}:"
    limiter = RedisLimiter(url, 2, 60, hash_key=b"k", prefix=prefix)
    local = LocalLimiter(2, 60)
    try:
        shared = [limiter.retry_after("ip:192.0.2.1") for _ in range(3)]
        alone = [local.retry_after("ip:192.0.2.1") for _ in range(3)]
        assert shared[:2] == alone[:2] == [0, 0]
        assert 29 <= shared[2] <= 30 and 29 <= alone[2] <= 30
        key = limiter.redis_key("ip:192.0.2.1")
        assert key.startswith(prefix) and "192.0.2.1" not in key
        assert 0 < limiter.redis.pttl(key) <= 61_000
    finally:
        for key in limiter.redis.scan_iter(match=prefix + "*"):
            limiter.redis.delete(key)
        limiter.close()


def test_a_stopped_redis_falls_back_to_the_local_limit_and_hides_the_password(
    make_host: HostFactory, caplog: pytest.LogCaptureFixture
) -> None:
    server = services.start_redis_server()
    try:
        admin = Redis(host=services.HOST, port=server.port, socket_timeout=2)
        admin.config_set("requirepass", PASSWORD)
        url = f"redis://:{PASSWORD}@{services.HOST}:{server.port}/0"
        app = make_host(TRACKING_REDIS_URL=url, TRACKING_RATE_LIMIT="5/minute")
        limiter = app.extensions["tracking"].limiter
        limiter.breaker_seconds = 0.2  # so the test need not wait the full period
        client = app.test_client(use_cookies=False)
        assert [post(client), post(client)] == [200, 200]  # 3 tokens left in Redis

        server.stop()
        with caplog.at_level(logging.INFO, "flask_tracking.ratelimit"):
            started = time.monotonic()
            statuses = [post(client) for _ in range(7)]
            elapsed = time.monotonic() - started
        assert statuses == [200] * 5 + [429] * 2  # the local bucket, full at first
        assert elapsed < 2.0
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1 and "cannot be used" in warnings[0].getMessage()
        assert PASSWORD not in caplog.text and "***@" in caplog.text

        server.start()
        Redis(host=services.HOST, port=server.port, socket_timeout=2).config_set(
            "requirepass", PASSWORD
        )
        deadline = time.monotonic() + 10
        with caplog.at_level(logging.INFO, "flask_tracking.ratelimit"):
            while not caplog.records[-1].getMessage().endswith("the rate limit is shared."):
                assert time.monotonic() < deadline, "the limiter never used Redis again"
                assert post(client) in (200, 429)
        assert limiter.redis.exists(limiter.redis_key("ip:127.0.0.1"))  # a fresh bucket
        assert PASSWORD not in caplog.text
    finally:
        server.close()


def test_a_frozen_redis_costs_one_short_timeout_then_the_local_limit(
    make_host: HostFactory,
) -> None:
    server = services.start_redis_server()
    pid = int(Redis(host=services.HOST, port=server.port, socket_timeout=2).info()["process_id"])
    try:
        app = make_host(TRACKING_REDIS_URL=server.url, TRACKING_RATE_LIMIT="5/minute")
        app.extensions["tracking"].limiter.breaker_seconds = 60.0  # one probe in this test
        client = app.test_client(use_cookies=False)
        assert post(client) == 200
        os.kill(pid, signal.SIGSTOP)  # accepts connections, answers nothing
        try:
            timings = []
            for _ in range(5):
                started = time.monotonic()
                assert post(client) == 200
                timings.append(time.monotonic() - started)
        finally:
            os.kill(pid, signal.SIGCONT)
        assert timings[0] < 1.0  # the command timeout, not a hang
        assert max(timings[1:]) < 0.2  # the breaker: no second wait
        assert post(client) == 429  # the local bucket had 5 tokens
    finally:
        server.close()


def test_redact_url_hides_credentials() -> None:
    assert redact_url("redis://user:pw@host:6379/0") == "redis://***@host:6379/0"
    assert redact_url("rediss://:pw@host/1") == "rediss://***@host/1"
    assert redact_url("redis://host:6379/0") == "redis://host:6379/0"
    hidden = redact_url("unix:///tmp/redis.sock?db=0&password=secret-pw")
    assert "secret-pw" not in hidden and hidden.startswith("unix:///tmp/redis.sock?")


# -- the origin: scheme, host and port --------------------------------------------------------


@pytest.mark.parametrize(
    ("base_url", "origin", "status"),
    [
        ("http://example.org", "http://example.org", 200),
        ("http://example.org", "https://example.org", 403),
        ("https://example.org", "http://example.org", 403),
        ("https://example.org", "https://example.org", 200),
        ("http://example.org", "http://example.org:80", 200),
        ("https://example.org", "https://example.org:443", 200),
        ("https://example.org:443", "https://example.org", 200),
        ("http://example.org", "http://example.org:443", 403),
        ("http://example.org:8080", "http://example.org", 403),
        ("http://example.org:8080", "http://example.org:8080", 200),
        ("http://example.org:8080", "http://example.org:8081", 403),
        ("http://Example.ORG", "HTTP://example.org", 200),
        ("http://[::1]:5000", "http://[::1]:5000", 200),
        ("http://example.org", "http://example.org.evil.example", 403),
        ("http://example.org", "http://example.org:99999", 403),
    ],
)
def test_origin_must_match_scheme_host_and_port(
    make_host: HostFactory, base_url: str, origin: str, status: int
) -> None:
    client = make_host(TRACKING_RATE_LIMIT=None).test_client()
    answer = client.post(
        "/activity/events", json=batch(), base_url=base_url, headers={"Origin": origin}
    )
    assert answer.status_code == status
    if status == 403:
        assert body(answer)["code"] == "cross_origin"
        assert "TRACKING_ALLOWED_ORIGINS" in body(answer)["message"]


@pytest.mark.parametrize(
    ("origin", "status"),
    [
        ("https://app.example.com", 200),
        ("https://APP.example.com:443", 200),
        ("http://app.example.com", 403),
        ("https://app.example.com:8443", 403),
        ("http://other.example:8080", 200),
        ("http://other.example", 403),
    ],
)
def test_allowed_origins_compare_the_same_way(
    make_host: HostFactory, origin: str, status: int
) -> None:
    allowed = ["https://app.example.com:443/", "http://other.example:8080"]
    app = make_host(TRACKING_RATE_LIMIT=None, TRACKING_ALLOWED_ORIGINS=allowed)
    client = app.test_client()
    headers = {"Origin": origin}
    assert post(client, base_url="http://lms.example", headers=headers) == status


def test_a_bad_allowed_origin_fails_at_startup(make_host: HostFactory) -> None:
    with pytest.raises(ConfigError, match=r"TRACKING_ALLOWED_ORIGINS: 'app\.example'"):
        make_host(TRACKING_ALLOWED_ORIGINS=["app.example"])


def test_sec_fetch_site_decides_without_origin(make_host: HostFactory) -> None:
    client = make_host(TRACKING_RATE_LIMIT=None).test_client()
    assert post(client, headers={"Sec-Fetch-Site": "cross-site"}) == 403
    assert post(client, headers={"Sec-Fetch-Site": "same-origin"}) == 200
    assert post(client, headers={"Sec-Fetch-Site": "same-site"}) == 200
    assert post(client) == 200  # no browser metadata at all: not a browser's cross-site post
    assert post(client, headers={"Origin": "null"}) == 403
    assert post(client, headers={"Origin": "null", "Sec-Fetch-Site": "same-origin"}) == 200


@pytest.mark.parametrize(("proxies", "status"), [(1, 200), (0, 403)])
def test_forwarded_proto_counts_only_behind_trusted_proxies(
    make_host: HostFactory, proxies: int, status: int
) -> None:
    client = make_host(TRACKING_RATE_LIMIT=None, TRACKING_TRUSTED_PROXIES=proxies).test_client()
    headers = {"Origin": "https://example.org", "X-Forwarded-Proto": "https"}
    assert post(client, base_url="http://example.org", headers=headers) == status


def test_normalise_origin() -> None:
    assert normalise_origin("HTTPS://App.Example:443/") == "https://app.example"
    assert normalise_origin("http://[::1]:80") == "http://[::1]"
    assert normalise_origin("http://app.example:8080/path") == "http://app.example:8080"
    for bad in ("app.example", "https://", "http://h:notaport"):
        with pytest.raises(ValueError):
            normalise_origin(bad)
