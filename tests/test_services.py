"""Tests for tests/services.py: the running services are found, and the throwaway
PostgreSQL cluster / redis-server fallback really works on this machine."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import pytest
import redis
import sqlalchemy as sa

try:
    import services
except ImportError:  # tests/ is a package: only importable as tests.services
    from tests import services


def _scalar(url: str, sql: str) -> object:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(sql)).scalar_one()
    finally:
        engine.dispose()


def _ping(url: str) -> bool:
    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        return bool(client.ping())
    finally:
        client.close()


@pytest.fixture
def fresh_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """An empty per-process cache, no env overrides; closes what the test started."""
    started: list[services.PostgresCluster | services.RedisProcess] = []
    monkeypatch.setattr(services, "_cache", {})
    monkeypatch.setattr(services, "_started", started)
    for var in ("TRACKING_TEST_POSTGRES_URL", "TRACKING_TEST_REDIS_URL", "REDIS_URL"):
        monkeypatch.delenv(var, raising=False)
    yield
    for server in started:
        server.close()


@pytest.fixture
def no_services(fresh_state: None, monkeypatch: pytest.MonkeyPatch) -> int:
    """Look for the machine's PostgreSQL and Redis on a port where nothing listens."""
    dead = services.free_port()
    monkeypatch.setattr(services, "SERVICE_POSTGRES_PORT", dead)
    monkeypatch.setattr(services, "SERVICE_REDIS_PORT", dead)
    return dead


# --- the normal path: whatever postgres_url()/redis_url() find --------------------------


def test_postgres_url_connects() -> None:
    url = services.get_or_skip(services.postgres_url)
    assert url.startswith("postgresql+psycopg://")
    assert _scalar(url, "SELECT 1") == 1
    assert services.postgres_url() == url  # cached: same URL on every call


def test_redis_url_pings() -> None:
    url = services.get_or_skip(services.redis_url)
    assert url.startswith("redis://")
    assert _ping(url)
    assert services.redis_url() == url


def test_env_vars_override(fresh_state: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACKING_TEST_POSTGRES_URL", "postgresql+psycopg://u@db.invalid:1/x")
    monkeypatch.setenv("REDIS_URL", "redis://generic.invalid:2/0")
    assert services.postgres_url() == "postgresql+psycopg://u@db.invalid:1/x"
    assert services.redis_url() == "redis://generic.invalid:2/0"
    monkeypatch.setenv("TRACKING_TEST_REDIS_URL", "redis://specific.invalid:3/1")
    assert services.redis_url() == "redis://specific.invalid:3/1"


# --- start_redis_server(): a private server tests may stop and start -----------------


def test_start_redis_server_stop_and_start_on_same_port() -> None:
    with services.start_redis_server() as server:
        port = server.port
        assert server.url == f"redis://127.0.0.1:{port}/0"
        client = redis.Redis.from_url(server.url, socket_timeout=5)
        try:
            client.set("k", "v")
            assert client.get("k") == b"v"

            server.stop()
            assert not server.running
            with pytest.raises(redis.ConnectionError):
                client.ping()

            server.start()
            assert server.running
            assert server.port == port
            assert client.ping()  # the same client reconnects to the same URL
            assert client.get("k") is None  # nothing is kept on disk
        finally:
            client.close()
    assert not services._port_open(port)
    assert not os.path.exists(server.dir)


def test_start_redis_server_on_given_port() -> None:
    port = services.free_port()
    with services.start_redis_server(port) as server:
        assert server.port == port
        assert _ping(f"redis://127.0.0.1:{port}/0")


def test_start_redis_server_port_taken_raises_with_log() -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        with pytest.raises(services.ServiceUnavailable, match=f"redis-server.*{port}"):
            services.start_redis_server(port)


# --- the fallback: throwaway servers when no service runs ------------------------------


def test_fallback_to_throwaway_postgres(no_services: int) -> None:
    url = services.postgres_url()
    assert f":{services.SERVICE_POSTGRES_PORT}/" not in url
    assert _scalar(url, "SELECT 1") == 1
    assert str(_scalar(url, "SHOW data_directory")).startswith("/tmp/flask-tracking-pg-")
    assert _scalar(url, "SELECT current_database()") == "test"
    assert services.postgres_url() == url


def test_fallback_to_throwaway_redis(no_services: int) -> None:
    url = services.redis_url()
    assert url != f"redis://127.0.0.1:{no_services}/0"
    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        assert client.ping()
        assert client.config_get("dir")["dir"].split("/")[-1].startswith("flask-tracking-redis-")
    finally:
        client.close()
    assert services.redis_url() == url


def test_prefer_service_false_ignores_env_and_service(
    fresh_state: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRACKING_TEST_POSTGRES_URL", "postgresql+psycopg://u@db.invalid:1/x")
    monkeypatch.setenv("REDIS_URL", "redis://generic.invalid:2/0")
    pg = services.postgres_url(prefer_service=False)
    rd = services.redis_url(prefer_service=False)
    assert "invalid" not in pg
    assert "invalid" not in rd
    assert _scalar(pg, "SELECT 1") == 1
    assert _ping(rd)
    assert services.postgres_url(prefer_service=False) == pg
    assert services.redis_url(prefer_service=False) == rd


def test_throwaway_postgres_close_removes_everything() -> None:
    cluster = services.start_throwaway_postgres()
    try:
        assert _scalar(cluster.url, "SELECT 1") == 1
        if os.geteuid() == 0:  # PostgreSQL refuses root: the server runs as postgres
            assert os.stat(cluster.datadir).st_uid != 0
    finally:
        cluster.close()
    assert not os.path.exists(cluster.dir)
    assert not services._port_open(cluster.port)


def test_unavailable_names_what_was_tried(
    no_services: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []

    def no_binaries() -> str:
        calls.append(1)
        raise services.ServiceUnavailable("initdb not found (test)")

    monkeypatch.setattr(services, "_find_pg_bindir", no_binaries)
    with pytest.raises(services.ServiceUnavailable) as excinfo:
        services.postgres_url()
    message = str(excinfo.value)
    assert "TRACKING_TEST_POSTGRES_URL" in message
    assert f"127.0.0.1:{no_services}" in message
    assert "initdb not found (test)" in message
    # The failure is cached: the next call fails at once without trying again.
    with pytest.raises(services.ServiceUnavailable):
        services.postgres_url()
    assert len(calls) == 1


# --- get_or_skip ---------------------------------------------------------------------


def _unavailable() -> str:
    raise services.ServiceUnavailable("nothing here")


def test_get_or_skip(monkeypatch: pytest.MonkeyPatch) -> None:
    assert services.get_or_skip(lambda: "url") == "url"
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="nothing here"):
        services.get_or_skip(_unavailable)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="nothing here"):
        services.get_or_skip(_unavailable)
