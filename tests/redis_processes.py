"""Redis servers that a test starts and kills itself, on free loopback ports: a standalone server, and a Redis
Cluster of three masters (the shared server on 6379 is never touched)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import redis as redis_client

REDIS_SERVER_BINARY = shutil.which("redis-server")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _bus_port_free(port: int) -> bool:
    if port + 10000 > 65535:
        return False
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port + 10000))
        except OSError:
            return False
    return True


class RedisProcess:
    """One redis-server of this test: started, killed with SIGKILL and started again on the same port and files."""

    def __init__(self, directory: Path, *, appendonly: bool, cluster: bool = False) -> None:
        if REDIS_SERVER_BINARY is None:
            if os.environ.get("SKEWLESS_REQUIRE_SERVICES") == "1":
                pytest.fail("redis-server is not installed and SKEWLESS_REQUIRE_SERVICES=1")
            pytest.skip("redis-server is not installed (CI requires it)")
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        while cluster and not _bus_port_free(self.port):  # a cluster node also listens on its port + 10000
            self.port = free_port()
        self.appendonly = appendonly
        self.cluster = cluster
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        arguments = [REDIS_SERVER_BINARY, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory),
                     "--save", "", "--dbfilename", "dump.rdb", "--daemonize", "no", "--protected-mode", "no"]
        if self.appendonly:
            arguments += ["--appendonly", "yes", "--appendfsync", "always"]
        if self.cluster:
            arguments += ["--cluster-enabled", "yes", "--cluster-config-file", str(self.directory / "nodes.conf"),
                          "--cluster-node-timeout", "2000"]
        self.process = subprocess.Popen(arguments, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                if redis_client.Redis.from_url(self.url, socket_timeout=0.5).ping():
                    return
            except redis_client.ConnectionError:
                pass
            assert self.process.poll() is None, "redis-server exited at start"
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None

    def client(self) -> redis_client.Redis:
        return redis_client.Redis.from_url(self.url)




class RedisClusterProcesses:
    """Three masters with cluster mode on, joined by `redis-cli --cluster create` (no replicas)."""

    def __init__(self, directory: Path, masters: int = 3) -> None:
        self.nodes = [RedisProcess(directory / f"node{i}", appendonly=False, cluster=True) for i in range(masters)]

    @property
    def url(self) -> str:
        return self.nodes[0].url

    def start(self) -> None:
        for node in self.nodes:
            node.start()
        cli = shutil.which("redis-cli")
        assert cli is not None, "redis-cli is needed to create a cluster"
        addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
        created = subprocess.run([cli, "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"],
                                 capture_output=True, text=True, timeout=60)
        assert created.returncode == 0, created.stdout + created.stderr
        deadline = time.monotonic() + 20
        while True:
            states = [node.client().cluster("info").get("cluster_state") for node in self.nodes]
            if all(state == "ok" for state in states):
                return
            assert time.monotonic() < deadline, f"the cluster did not come up: {states}"
            time.sleep(0.1)

    def stop(self) -> None:
        for node in self.nodes:
            node.kill()

    def flush(self) -> None:
        for node in self.nodes:
            node.client().flushall()
