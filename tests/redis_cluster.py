"""A real 3-node Redis Cluster on loopback for the suite's `--redis-cluster`
run: Debian's redis-server 7 (`make redis-server` installs it), three
primaries on free ports, slots assigned by `redis-cli --cluster create`."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import redis
from redis.cluster import RedisCluster

from tests.harness import free_port

NODES = 3
START_TIMEOUT_S = 30.0


def binaries() -> tuple[str, str] | None:
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    return (server, cli) if server and cli else None


def _node_conf(directory: Path, port: int, bus_port: int) -> str:
    return (
        f"port {port}\ncluster-port {bus_port}\nbind 127.0.0.1\ndir {directory}\n"
        "cluster-enabled yes\ncluster-config-file nodes.conf\ncluster-node-timeout 5000\n"
        'save ""\nappendonly no\ndaemonize no\nmaxclients 10000\nloglevel warning\n'
        f"logfile {directory}/redis.log\n"
    )


class RedisClusterNodes:
    """Three cluster primaries (blocking start/stop); `url` names the first."""

    def __init__(self, directory: Path) -> None:
        found = binaries()
        if found is None:
            raise RuntimeError("redis-server 7 is missing: run `make redis-server`")
        server, cli = found
        self.ports = [free_port() for _ in range(NODES)]
        self.processes: list[subprocess.Popen[bytes]] = []
        for port in self.ports:
            node_dir = directory / str(port)
            node_dir.mkdir(parents=True)
            conf = node_dir / "redis.conf"
            conf.write_text(_node_conf(node_dir, port, free_port()))
            self.processes.append(subprocess.Popen([server, str(conf)], stdout=subprocess.DEVNULL))
        try:
            self._form(cli)
        except BaseException:
            self.stop()
            raise

    def _form(self, cli: str) -> None:
        self._wait(lambda c: bool(c.ping()))
        addresses = [f"127.0.0.1:{p}" for p in self.ports]
        subprocess.run(
            [cli, "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=START_TIMEOUT_S,
        )
        self._wait(lambda c: c.cluster("info")["cluster_state"] == "ok")

    def _wait(self, ready: Callable[[redis.Redis], bool]) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        for port in self.ports:
            client = redis.Redis(port=port, host="127.0.0.1")
            while True:
                try:
                    if ready(client):
                        break
                except redis.RedisError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"redis cluster node {port} did not get ready")
                time.sleep(0.05)
            client.close()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.ports[0]}"

    def flushall(self) -> None:
        client = RedisCluster.from_url(self.url)
        try:
            client.flushall(target_nodes=RedisCluster.PRIMARIES)
        finally:
            client.close()

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.kill(process.pid, signal.SIGTERM)
        for process in self.processes:
            process.wait(timeout=10)
