"""Real servers for the local stack: Apache Kafka (KRaft) and a MongoDB-protocol server.

Both are installed by ``bin/setup`` under ``.cache/``; this module only runs them.
"""

from __future__ import annotations

import base64
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from socialcrm.settings import ServiceSettings
from socialcrm_devstack.processes import ManagedProcess, StartError, free_port, port_open

REPO = Path(__file__).resolve().parents[3]
CACHE = Path(os.environ.get("SOCIALCRM_CACHE", REPO / ".cache"))
KAFKA_POM = REPO / "infra" / "kafka" / "pom.xml"


def kafka_version() -> str:
    text = KAFKA_POM.read_text()
    return text.split("<kafka.version>", 1)[1].split("</kafka.version>", 1)[0]


def _installed(path: Path, what: str) -> Path:
    if not path.exists():
        raise StartError(f"{what} is not installed ({path} missing): run bin/setup first")
    return path


SCRAM_MECHANISM = "SCRAM-SHA-512"


@dataclass
class KafkaBroker:
    """A single-node Apache Kafka broker in combined KRaft mode, on loopback.

    With ``scram_users`` (name: password), its client listener is SASL_PLAINTEXT with
    SCRAM-SHA-512 and ACLs are enforced (StandardAuthorizer): the first user is the super
    user the broker itself uses, the others may do only what ACLs grant them; the users are
    written into the storage when it is formatted. Without, PLAINTEXT and no ACLs: the
    local stack, reachable from this machine only."""

    data_dir: Path
    port: int = 9092
    controller_port: int = field(default_factory=free_port)
    heap: str = "512m"
    scram_users: dict[str, str] = field(default_factory=dict)
    process: ManagedProcess | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def listener(self) -> str:
        return "SASL_PLAINTEXT" if self.scram_users else "PLAINTEXT"

    def client_settings(
        self, user: str | None = None, password: str | None = None
    ) -> ServiceSettings:
        """Settings of a client of this broker as ``user`` (default: the super user), with
        ``password`` (default: the user's own) and the user's name as client id."""
        if not self.scram_users:
            return ServiceSettings(
                kafka_bootstrap_servers=self.bootstrap, kafka_security_protocol="PLAINTEXT"
            )
        name = user or next(iter(self.scram_users))
        return ServiceSettings(
            service_name=name,
            kafka_bootstrap_servers=self.bootstrap,
            kafka_security_protocol="SASL_PLAINTEXT",
            kafka_sasl_mechanism=SCRAM_MECHANISM,
            kafka_sasl_username=name,
            kafka_sasl_password=password if password is not None else self.scram_users[name],
        )

    def _security(self) -> list[str]:
        if not self.scram_users:
            return []
        admin, password = next(iter(self.scram_users.items()))
        return [
            f"sasl.enabled.mechanisms={SCRAM_MECHANISM}",
            f"sasl.mechanism.inter.broker.protocol={SCRAM_MECHANISM}",
            f"listener.name.sasl_plaintext.{SCRAM_MECHANISM.lower()}.sasl.jaas.config="
            "org.apache.kafka.common.security.scram.ScramLoginModule required"
            f' username="{admin}" password="{password}";',
            "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            # The controller listener is PLAINTEXT on loopback (SCRAM cannot authenticate
            # controllers): its principal, ANONYMOUS, is the broker talking to itself.
            f"super.users=User:{admin};User:ANONYMOUS",
        ]

    def _config(self) -> Path:
        logs = self.data_dir / "kraft-logs"
        config = self.data_dir / "server.properties"
        listener = self.listener
        config.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.voters=1@127.0.0.1:{self.controller_port}",
                    f"listeners={listener}://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
                    f"advertised.listeners={listener}://127.0.0.1:{self.port}",
                    "controller.listener.names=CONTROLLER",
                    f"inter.broker.listener.name={listener}",
                    f"listener.security.protocol.map=CONTROLLER:PLAINTEXT,{listener}:{listener}",
                    *self._security(),
                    f"log.dirs={logs}",
                    "num.partitions=6",
                    "offsets.topic.replication.factor=1",
                    "offsets.topic.num.partitions=6",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "share.coordinator.state.topic.replication.factor=1",
                    "share.coordinator.state.topic.min.isr=1",
                    # One node: no reason to wait for more members before the first rebalance.
                    "group.initial.rebalance.delay.ms=0",
                    "auto.create.topics.enable=false",
                    "",
                ]
            )
        )
        return config

    def start(self) -> None:
        home = _installed(CACHE / "kafka" / kafka_version() / "libs", f"Kafka {kafka_version()}")
        if port_open(self.port):
            raise StartError(
                f"port {self.port} is taken: is another Kafka running? (set KAFKA_PORT)"
            )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = self._config()
        java = [
            "java",
            f"-Xmx{self.heap}",
            "-Xms128m",
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",
            f"-Dlog4j2.configurationFile={REPO / 'infra' / 'kafka' / 'log4j2.properties'}",
            "-cp",
            f"{home}/*",
        ]
        log_path = self.data_dir / "kafka.log"
        if not (self.data_dir / "kraft-logs" / "meta.properties").exists():
            cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
            # "--cluster-id=<id>", not "-t <id>": an id starting with "-" (1 in 64) would be
            # read as an option and the format would fail.
            formatter = ManagedProcess(
                "kafka-storage-format",
                [
                    *java,
                    "kafka.tools.StorageTool",
                    "format",
                    f"--cluster-id={cluster_id}",
                    "-c",
                    str(config),
                    *(
                        arg
                        for name, password in self.scram_users.items()
                        for arg in (
                            "--add-scram",
                            f"{SCRAM_MECHANISM}=[name={name},password={password}]",
                        )
                    ),
                ],
                log_path,
            )
            formatter.start()
            assert formatter.process is not None
            if formatter.process.wait(120) != 0:
                raise StartError(
                    f"formatting Kafka storage failed; see {log_path}:\n{formatter.tail()}"
                )
        self.process = ManagedProcess("kafka", [*java, "kafka.Kafka", str(config)], log_path)
        self.process.start()
        self.process.wait_until(self._ready, 90, "accepting connections")

    def _ready(self) -> bool:
        # The port opens before the broker has a leader for its metadata; a metadata
        # request through the Kafka protocol is what proves it can serve clients.
        if not port_open(self.port):
            return False
        from socialcrm_devstack.kafka_probe import broker_answers

        return broker_answers(self.client_settings())

    def stop(self) -> None:
        if self.process:
            self.process.stop(timeout=30)

    def kill(self) -> None:
        if self.process:
            self.process.kill()


@dataclass
class MongoServer:
    """SecantusDB, a MongoDB wire-protocol server on WiredTiger, as a separate process."""

    data_dir: Path
    port: int = 27017
    process: ManagedProcess | None = None

    @property
    def uri(self) -> str:
        # retryWrites=false: SecantusDB's retryable-write bookkeeping slows writes down.
        return f"mongodb://127.0.0.1:{self.port}/?retryWrites=false"

    def start(self) -> None:
        server = _installed(CACHE / "secantusdb" / "bin" / "secantusd-py", "SecantusDB")
        if port_open(self.port):
            raise StartError(
                f"port {self.port} is taken: is another MongoDB running? (set MONGODB_PORT)"
            )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.process = ManagedProcess(
            "secantusdb",
            [
                str(server),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--storage-path",
                str(self.data_dir / "db"),
                "--log-level",
                "WARNING",
            ],
            self.data_dir / "secantusdb.log",
        )
        self.process.start()
        self.process.wait_until(self._ready, 60, "answering ping")

    def _ready(self) -> bool:
        from pymongo import MongoClient

        client: MongoClient[dict[str, object]]
        with MongoClient(self.uri, serverSelectionTimeoutMS=500) as client:
            client.admin.command("ping")
        return True

    def stop(self) -> None:
        if self.process:
            self.process.stop(timeout=30)

    def kill(self) -> None:
        if self.process:
            self.process.kill()
