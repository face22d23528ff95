"""Deleting a test's (or a bench's) RQ queue from a shared Redis: one helper for the
tests (``forwarding_app``) and the bench (``bench_profile``, which loads this file by its
path, as it loads ``services.py``)."""

from __future__ import annotations


def clean_redis(url: str, queue: str) -> None:
    """Delete every key of ``queue`` (its jobs, registries, workers, locks)."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"*{queue}*", count=1000))
        for start in range(0, len(keys), 500):
            client.delete(*keys[start : start + 500])
        for registry in ("rq:workers", "rq:queues"):
            members = [m for m in client.smembers(registry) if queue.encode() in m]
            if members:
                client.srem(registry, *members)
    finally:
        client.close()
