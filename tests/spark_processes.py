"""A Spark Connect server that the tests start from the pyspark package (its sbin/start-connect-server.sh and the
Connect jar it ships) on a free loopback port, and stop when the test process ends."""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from redis_processes import free_port

_server: "SparkConnectServer | None" = None


class SparkConnectServer:
    """`start-connect-server.sh --wait` in a process group of its own, bound to 127.0.0.1 (it listens on every
    interface by default)."""

    def __init__(self, directory: Path) -> None:
        import pyspark

        self.home = Path(pyspark.__file__).parent
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"sc://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90.0) -> None:
        script = self.home / "sbin" / "start-connect-server.sh"
        conf = {
            "spark.connect.grpc.binding.address": "127.0.0.1",
            "spark.connect.grpc.binding.port": str(self.port),
            "spark.ui.enabled": "false",
            "spark.sql.shuffle.partitions": "2",
            "spark.sql.warehouse.dir": str(self.directory / "warehouse"),
            "spark.driver.extraJavaOptions": f"-Dderby.system.home={self.directory}",
        }
        arguments = ["bash", str(script), "--wait", "--master", "local[1]"]
        for key, value in conf.items():
            arguments += ["--conf", f"{key}={value}"]
        environment = {**os.environ, "SPARK_HOME": str(self.home), "SPARK_LOG_DIR": str(self.directory),
                       "SPARK_PID_DIR": str(self.directory)}
        self.log = (self.directory / "connect.log").open("wb")
        self.process = subprocess.Popen(arguments, env=environment, stdout=self.log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the Spark Connect server exited: see {self.directory / 'connect.log'}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"the Spark Connect server did not listen within {timeout:.0f}s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None
        self.log.close()


def spark_connect_url() -> str:
    """The url of this test process's Connect server, started on first use (about 10 s) and stopped at exit."""
    global _server
    from conftest import require_spark

    require_spark()
    if _server is None:
        server = SparkConnectServer(Path(tempfile.mkdtemp(prefix="skewless-spark-connect-")))
        try:
            server.start()
        except RuntimeError as error:
            pytest.fail(str(error))
        atexit.register(server.stop)
        _server = server
    return _server.url
