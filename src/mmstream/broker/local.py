"""Resolve, format, start, probe and stop a one-node KRaft Kafka broker on 127.0.0.1.

Why not Docker: the machines this project runs on have no Docker engine, and the tests
must run against a real broker. Kafka's broker is published on Maven Central, so `mvn`
resolves it (jars.py, pom.xml beside this file) into a cache outside the repository, and the
broker runs as a plain JVM whose PID we own: we stop exactly that process, never
"every Kafka on the machine".
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

from mmstream.broker.jars import KAFKA_VERSION, require_tool, resolve_jars
from mmstream.errors import BrokerError

# The broker needs far less than the JVM default on a 24 GiB machine; 512 MiB keeps
# tests and the demo friendly to a 2-core laptop.
BROKER_HEAP = "-Xmx512m"
STATE_FILE = "broker.json"


def default_broker_dir() -> Path:
    """Where the user's local broker keeps its data, log and state file."""
    if env := os.environ.get("MMSTREAM_BROKER_DIR"):
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "mmstream" / "broker"


def free_port() -> int:
    """A port on 127.0.0.1 that was free a moment ago (it can be taken before we bind)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def new_cluster_id() -> str:
    return base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")


@dataclass(frozen=True)
class BrokerInfo:
    """What a running local broker's state file records."""

    pid: int
    bootstrap: str
    broker_port: int
    controller_port: int
    directory: str
    kafka_version: str
    started_at: float
    startup_seconds: float


class LocalKafka:
    """One combined broker+controller KRaft node living in ``directory``.

    The folder holds ``server.properties``, ``data/``, ``broker.log`` and ``broker.json``
    (the PID and ports). Restarting reuses the formatted data; ports stay the same.
    """

    def __init__(
        self,
        directory: Path | None = None,
        *,
        version: str = KAFKA_VERSION,
        extra_properties: dict[str, str] | None = None,
        node_id: int = 1,
        ports: tuple[int, int] | None = None,
        voters: str | None = None,
        cluster_id: str | None = None,
        scram_users: dict[str, str] | None = None,
    ) -> None:
        """``ports``, ``voters`` and ``cluster_id`` make this node one of a cluster (cluster.py).

        ``scram_users`` (name -> password) adds a SASL_PLAINTEXT listener with SCRAM-SHA-256
        and SCRAM-SHA-512 on ``sasl_port``, with these users' credentials (tests of secure
        client settings; the PLAINTEXT listener stays for everything else)."""
        self.directory = (directory or default_broker_dir()).resolve()
        self.version = version
        self.extra_properties = dict(extra_properties or {})
        self.node_id = node_id
        self.ports = ports
        self.voters = voters
        self.cluster_id = cluster_id
        self.scram_users = dict(scram_users or {})
        self.sasl_port: int | None = None

    @property
    def log_path(self) -> Path:
        return self.directory / "broker.log"

    @property
    def state_path(self) -> Path:
        return self.directory / STATE_FILE

    def info(self) -> BrokerInfo | None:
        """The recorded state if the recorded process is still our broker, else None."""
        try:
            data = json.loads(self.state_path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        info = BrokerInfo(**data)
        return info if self._is_our_process(info.pid) else None

    def _is_our_process(self, pid: int) -> bool:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return False
        config = str(self.directory / "server.properties").encode()
        return b"kafka.Kafka" in cmdline and config in cmdline

    def _write_properties(self, broker_port: int, controller_port: int) -> Path:
        props = {
            "process.roles": "broker,controller",
            "node.id": str(self.node_id),
            "controller.quorum.voters": self.voters
            or f"{self.node_id}@127.0.0.1:{controller_port}",
            "listeners": (
                f"PLAINTEXT://127.0.0.1:{broker_port},CONTROLLER://127.0.0.1:{controller_port}"
            ),
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{broker_port}",
            "inter.broker.listener.name": "PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(self.directory / "data"),
            "num.partitions": "1",
            "offsets.topic.num.partitions": "4",
            "transaction.state.log.num.partitions": "4",
            "group.initial.rebalance.delay.ms": "0",
            "log.cleaner.dedupe.buffer.size": "2097152",
            "auto.create.topics.enable": "false",
            # 8 MiB alerts (GCN's and GWCelery's limit) plus headers, on every topic
            "message.max.bytes": str(8 * 1024 * 1024 + 256 * 1024),
            "replica.fetch.max.bytes": str(8 * 1024 * 1024 + 512 * 1024),
        }
        if self.voters is None:  # one node: internal topics cannot have 3 replicas
            props |= {
                "offsets.topic.replication.factor": "1",
                "transaction.state.log.replication.factor": "1",
                "transaction.state.log.min.isr": "1",
                "share.coordinator.state.topic.replication.factor": "1",
                "share.coordinator.state.topic.min.isr": "1",
            }
        if self.scram_users:
            self.sasl_port = self.sasl_port or free_port()
            sasl = f"SASL_PLAINTEXT://127.0.0.1:{self.sasl_port}"
            login = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
            props["listeners"] += f",{sasl}"
            props["advertised.listeners"] += f",{sasl}"
            props["listener.security.protocol.map"] += ",SASL_PLAINTEXT:SASL_PLAINTEXT"
            props |= {
                "sasl.enabled.mechanisms": "SCRAM-SHA-256,SCRAM-SHA-512",
                "listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config": login,
                "listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config": login,
            }
        props.update(self.extra_properties)
        path = self.directory / "server.properties"
        path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        return path

    def _format(self, lib: Path, config: Path) -> None:
        java = require_tool("java", "install a JDK 17+ to run the local Kafka broker")
        cmd = [
            java,
            "-Xmx256m",
            "-cp",
            f"{lib}/*",
            "kafka.tools.StorageTool",
            "format",
            # "=" form: a base64 id may start with "-", which would read as an option.
            f"--cluster-id={self.cluster_id or new_cluster_id()}",
            "-c",
            str(config),
        ]
        for name, password in self.scram_users.items():
            for mechanism in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
                cmd += ["--add-scram", f"{mechanism}=[name={name},password={password}]"]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise BrokerError(f"formatting Kafka storage failed:\n{proc.stdout}{proc.stderr}")

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no broker log yet)"

    def start(self, timeout: float = 90.0) -> BrokerInfo:
        """Start the broker (or return the one already running here) and wait until it answers."""
        if (running := self.info()) is not None:
            return running
        previous = self.ports or self._previous_ports()
        for attempt in range(3):
            proc, broker_port, controller_port, t0 = self.launch(previous)
            if (
                info := self.await_ready(proc, broker_port, controller_port, t0, timeout)
            ) is not None:
                return info
            if proc.poll() is None:
                self._terminate(proc.pid)
            if "Address already in use" in self.log_tail() and attempt < 2 and not self.ports:
                previous = None  # a port was taken between probe and bind: pick new ones
                continue
            break
        raise BrokerError(
            f"the Kafka broker in {self.directory} did not start within {timeout:.0f} s; "
            f"last lines of {self.log_path}:\n{self.log_tail()}"
        )

    def launch(
        self, ports: tuple[int, int] | None = None
    ) -> tuple[subprocess.Popen[bytes], int, int, float]:
        """Format if new and start the JVM, without waiting (a cluster starts all nodes first)."""
        lib = resolve_jars(self.version)
        java = require_tool("java", "install a JDK 17+ to run the local Kafka broker")
        self.directory.mkdir(parents=True, exist_ok=True)
        broker_port, controller_port = ports or (free_port(), free_port())
        config = self._write_properties(broker_port, controller_port)
        if not (self.directory / "data" / "meta.properties").exists():
            self._format(lib, config)
        t0 = time.monotonic()
        log = self.log_path.open("ab")
        proc = subprocess.Popen(
            [
                java,
                "-Xms256m",
                BROKER_HEAP,
                "-XX:+UseG1GC",
                f"-Djava.io.tmpdir={self.directory}",
                f"-Dlog4j2.configurationFile={self._log4j_config()}",
                "-cp",
                f"{lib}/*",
                "kafka.Kafka",
                str(config),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        return proc, broker_port, controller_port, t0

    def await_ready(
        self,
        proc: subprocess.Popen[bytes],
        broker_port: int,
        controller_port: int,
        t0: float,
        timeout: float,
    ) -> BrokerInfo | None:
        """Wait until the launched broker answers; record and return its state (None: failed)."""
        if not self._wait_ready(proc, broker_port, timeout):
            return None
        info = BrokerInfo(
            pid=proc.pid,
            bootstrap=f"127.0.0.1:{broker_port}",
            broker_port=broker_port,
            controller_port=controller_port,
            directory=str(self.directory),
            kafka_version=self.version,
            started_at=time.time(),
            startup_seconds=round(time.monotonic() - t0, 3),
        )
        self.state_path.write_text(json.dumps(asdict(info), indent=2))
        return info

    def _previous_ports(self) -> tuple[int, int] | None:
        """Ports of an earlier run on this formatted directory, so clients' configs stay valid."""
        try:
            data = json.loads(self.state_path.read_text())
            return int(data["broker_port"]), int(data["controller_port"])
        except (FileNotFoundError, json.JSONDecodeError, KeyError):
            return None

    def _log4j_config(self) -> Path:
        target = self.directory / "log4j2.properties"
        source = resources.files("mmstream.broker").joinpath("log4j2.properties")
        target.write_text(source.read_text())
        return target

    def _wait_ready(self, proc: subprocess.Popen[bytes], port: int, timeout: float) -> bool:
        from confluent_kafka.admin import AdminClient

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return False
            if _port_open(port):
                break
            time.sleep(0.1)
        else:
            return False
        admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{port}", "log_level": 0})
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return False
            try:
                if admin.list_topics(timeout=2).brokers:
                    return True
            except Exception:  # KafkaException while the broker is still fencing itself
                time.sleep(0.2)
        return False

    def _terminate(self, pid: int, timeout: float = 30.0) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not Path(f"/proc/{pid}").exists() or _is_zombie(pid):
                _reap(pid)
                return
            time.sleep(0.1)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        _reap(pid)

    def stop(self) -> bool:
        """Stop our broker by its PID (controlled shutdown). False if none was running."""
        info = self.info()
        if info is None:
            return False
        self._terminate(info.pid)
        return True

    def kill(self) -> None:
        """SIGKILL our broker: for fault tests only."""
        info = self.info()
        if info is not None:
            os.kill(info.pid, signal.SIGKILL)
            _reap(info.pid)


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)
