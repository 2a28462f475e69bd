"""Three KRaft nodes on this host, for fault tests (replication factor 3, min.insync.replicas 2).

Each node is a LocalKafka in its own folder with the same cluster id and the same static
voter list. All three are launched before any is waited on: none can finish starting
until a majority of controllers is up.
"""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path

from mmstream.broker.local import (
    BrokerInfo,
    LocalKafka,
    free_port,
    new_cluster_id,
)
from mmstream.errors import BrokerError

# Fault tests want leadership to move off a killed node within seconds, not ~9 s.
FAST_FAILOVER = {
    "broker.session.timeout.ms": "4000",
    "broker.heartbeat.interval.ms": "500",
    "min.insync.replicas": "2",
    "default.replication.factor": "3",
}


class LocalCluster:
    """``size`` combined broker+controller nodes under ``directory``/node-<id>."""

    def __init__(self, directory: Path, size: int = 3) -> None:
        self.directory = directory.resolve()
        self.directory.mkdir(parents=True, exist_ok=True)
        ports = [(free_port(), free_port()) for _ in range(size)]
        voters = ",".join(f"{i + 1}@127.0.0.1:{c}" for i, (_, c) in enumerate(ports))
        cluster_id = new_cluster_id()
        self.nodes = [
            LocalKafka(
                self.directory / f"node-{i + 1}",
                extra_properties=FAST_FAILOVER,
                node_id=i + 1,
                ports=ports[i],
                voters=voters,
                cluster_id=cluster_id,
            )
            for i in range(size)
        ]
        self._procs: list[subprocess.Popen[bytes]] = []

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{node.ports[0]}" for node in self.nodes if node.ports)

    def start(self, timeout: float = 120.0) -> list[BrokerInfo]:
        launched = [(node, *node.launch(node.ports)) for node in self.nodes]
        self._procs = [proc for _, proc, *_ in launched]
        infos = []
        for node, proc, broker_port, controller_port, t0 in launched:
            info = node.await_ready(proc, broker_port, controller_port, t0, timeout)
            if info is None:
                self.stop()
                raise BrokerError(
                    f"cluster node {node.node_id} did not start within {timeout:.0f} s; "
                    f"last lines of {node.log_path}:\n{node.log_tail()}"
                )
            infos.append(info)
        return infos

    def stop(self) -> None:
        """Stop every node, each by its PID; a node that never got as far as recording its
        PID is killed through the process handle we launched it with."""
        for node in self.nodes:
            with contextlib.suppress(Exception):
                node.stop()
        for proc in self._procs:
            if proc.poll() is None:
                proc.kill()
                with contextlib.suppress(Exception):
                    proc.wait(10)
