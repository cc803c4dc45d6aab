"""A throw-away RabbitMQ cluster for the cluster drill, from the machine's RabbitMQ packages.

Each node is a ``rabbitmq-server`` process of this test (its own session, so a SIGKILL of the
process group takes the whole Erlang VM down at once) named ``dunning-drill-<run>-<N>@localhost``
(the run token keeps a node left over by an aborted run from blocking the name), listening
on loopback ports of its own, with its data, logs, pid file and config in the drill's temporary
folder. Nothing of the machine's own node (``rabbit@...`` on 5672) is read or touched:

- ``RABBITMQ_CONF_ENV_FILE`` and ``RABBITMQ_CONFIG_FILE`` point at files of the drill, so
  ``/etc/rabbitmq`` (the machine node's listener on 5672, its node name) is not read;
- no plugins (an empty enabled-plugins file: no management listener to collide on 15672);
- ``HOME`` is the drill's folder, whose ``.erlang.cookie`` the nodes and the CLI calls share, so
  the user's own cookie is neither needed nor created;
- one scheduler per node (``+S 1:1``): three nodes share the machine's two cores with the
  workers, the webhook and the test.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["ClusterUnavailableError", "RabbitCluster", "RabbitNode"]

_LIB_BIN = Path("/usr/lib/rabbitmq/bin")  # Debian: the scripts without the su-to-rabbitmq wrapper
_ERL_ARGS = "+S 1:1 +A 4 -kernel inet_dist_use_interface {127,0,0,1}"
_NODE_CONF = """\
# A node of the dunning cluster drill (tests/integration/cluster_support.py).
cluster_partition_handling = pause_minority
"""
_START_TIMEOUT_S = 120


class ClusterUnavailableError(Exception):
    """The machine cannot run the drill's cluster; the message says why."""


def _tool(name: str) -> str:
    candidate = _LIB_BIN / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise ClusterUnavailableError(f"{name} is not installed (Debian package rabbitmq-server)")
    return found


@dataclass
class RabbitNode:
    number: int
    name: str
    amqp_port: int
    dist_port: int
    base: Path
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.amqp_port}/%2F"

    @property
    def log_path(self) -> Path:
        return self.base / "console.log"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no console log)"
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class RabbitCluster:
    """Start with :meth:`start`; always :meth:`destroy` (kills every node, removes the folder)."""

    workdir: Path
    size: int = 3
    ports: list[int] = field(default_factory=list)
    nodes: list[RabbitNode] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.server = _tool("rabbitmq-server")
        self.ctl_tool = _tool("rabbitmqctl")
        run = secrets.token_hex(3)
        self.workdir.mkdir(parents=True, exist_ok=True)
        cookie = self.workdir / ".erlang.cookie"
        cookie.write_text(secrets.token_hex(16))
        cookie.chmod(0o400)
        (self.workdir / "rabbitmq-env.conf").write_text("")
        for number in range(1, self.size + 1):
            base = self.workdir / f"node{number}"
            base.mkdir()
            (base / "enabled_plugins").write_text("")
            (base / "rabbitmq.conf").write_text(_NODE_CONF)
            self.nodes.append(
                RabbitNode(
                    number,
                    f"dunning-drill-{run}-{number}@localhost",
                    self._port(),
                    self._port(),
                    base,
                )
            )

    def _port(self) -> int:
        from tests.integration.drill_support import free_port

        while (port := free_port()) in self.ports:
            continue
        self.ports.append(port)
        return port

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    def _base_env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("RABBITMQ_", "ERL_", "DUNNING_"))
        }
        env.update(
            HOME=str(self.workdir),
            RABBITMQ_CONF_ENV_FILE=str(self.workdir / "rabbitmq-env.conf"),
            ERL_EPMD_ADDRESS="127.0.0.1",
        )
        return env

    def _node_env(self, node: RabbitNode) -> dict[str, str]:
        env = self._base_env()
        env.update(
            RABBITMQ_NODENAME=node.name,
            RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
            RABBITMQ_NODE_PORT=str(node.amqp_port),
            RABBITMQ_DIST_PORT=str(node.dist_port),
            RABBITMQ_MNESIA_BASE=str(node.base / "mnesia"),
            RABBITMQ_LOG_BASE=str(node.base / "log"),
            RABBITMQ_PID_FILE=str(node.base / "rabbit.pid"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(node.base / "enabled_plugins"),
            RABBITMQ_CONFIG_FILE=str(node.base / "rabbitmq.conf"),
            RABBITMQ_ADVANCED_CONFIG_FILE=str(node.base / "advanced.config"),
            RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=_ERL_ARGS,
            ERL_CRASH_DUMP=str(node.base / "erl_crash.dump"),
        )
        return env

    # --- commands -------------------------------------------------------------------------
    def ctl(self, node: RabbitNode, *args: str, timeout_s: float = 90) -> str:
        """``rabbitmqctl -n node ARGS``; its stdout, or RuntimeError with its stderr."""
        done = subprocess.run(
            [self.ctl_tool, "-n", node.name, *args],
            env=self._base_env(),
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"rabbitmqctl -n {node.name} {' '.join(args)} exited {done.returncode}: "
                f"{(done.stderr or done.stdout).strip()[-800:]}"
            )
        return done.stdout

    def launch(self, node: RabbitNode) -> None:
        """Start ``node``'s server process (returns at once; :meth:`wait_ready` waits)."""
        with node.log_path.open("ab") as log:
            node.process = subprocess.Popen(
                [self.server],
                env=self._node_env(node),
                cwd=node.base,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        node.starts += 1

    def wait_ready(self, node: RabbitNode) -> None:
        """Until RabbitMQ runs on ``node``; ClusterUnavailableError with its log when not."""
        try:
            self.ctl(
                node,
                "wait",
                str(node.base / "rabbit.pid"),
                "--timeout",
                str(_START_TIMEOUT_S),
                timeout_s=_START_TIMEOUT_S + 30,
            )
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            raise ClusterUnavailableError(
                f"RabbitMQ node {node.name} did not start: {exc}\n{node.log_tail()}"
            ) from exc

    def start(self) -> None:
        """Boot every node, join the others to the first, and check that all three run."""
        for node in self.nodes:
            self.launch(node)
        for node in self.nodes:
            self.wait_ready(node)
        first = self.nodes[0]
        for node in self.nodes[1:]:
            try:
                self.ctl(node, "stop_app")
                self.ctl(node, "join_cluster", first.name)
                self.ctl(node, "start_app")
            except RuntimeError as exc:
                raise ClusterUnavailableError(f"{node.name} could not join: {exc}") from exc
        running = self.running_nodes(first)
        if running != {n.name for n in self.nodes}:
            raise ClusterUnavailableError(f"cluster formed with {sorted(running)} only")

    def running_nodes(self, via: RabbitNode) -> set[str]:
        status: dict[str, Any] = json.loads(self.ctl(via, "cluster_status", "--formatter", "json"))
        return set(status.get("running_nodes", []))

    def kill(self, node: RabbitNode) -> None:
        """SIGKILL the node's whole process group: no goodbye to clients or peers."""
        if node.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(node.process.pid, signal.SIGKILL)
        node.process.wait(timeout=30)

    def restart(self, node: RabbitNode) -> None:
        """Start a killed node again on its data: it rejoins the cluster by itself."""
        self.launch(node)
        self.wait_ready(node)

    def queues(self, via: RabbitNode) -> dict[str, dict[str, Any]]:
        """Every queue of ``/`` seen from ``via``: leader, members, online, message counts."""
        out = self.ctl(
            via,
            "list_queues",
            "-p",
            "/",
            "name",
            "leader",
            "members",
            "online",
            "messages",
            "messages_ready",
            "messages_unacknowledged",
            "--formatter",
            "json",
            "--quiet",
        )
        return {str(row["name"]): row for row in json.loads(out)}

    def node_named(self, name: str) -> RabbitNode:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    def live_node(self) -> RabbitNode:
        for node in self.nodes:
            if node.running:
                return node
        raise RuntimeError("no node of the cluster is running")

    def destroy(self) -> None:
        """Kill every node that is still up (this test's processes only) and drop the folder."""
        for node in self.nodes:
            if node.running:
                self.kill(node)
        shutil.rmtree(self.workdir, ignore_errors=True)
