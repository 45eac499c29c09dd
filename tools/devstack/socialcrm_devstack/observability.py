"""Prometheus and Alertmanager for the local stack, paging a receiver in this process.

Prometheus (Debian's ``prometheus``) scrapes every service of a ``LocalStack``, evaluates
the project's alert rules (``deploy/prometheus/rules``) and serves the KPI console views
(``deploy/prometheus/consoles``); Alertmanager (Debian's ``prometheus-alertmanager``) runs
the production routing of ``deploy/alertmanager/alertmanager.yml`` with every receiver
replaced by a webhook to the local ``PageReceiver``. Both are installed by ``bin/setup``;
their data and logs live under the work directory.

Time from a spike to a page, locally: kpi sets its gauge at once, Prometheus scrapes and
evaluates every ``INTERVAL_SECONDS`` (5 s: at most 10 s from gauge to firing alert), and
Alertmanager waits ``LOCAL_GROUP_WAIT`` (5 s) before the first notification of a group.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

import httpx
import yaml  # type: ignore[import-untyped]

from socialcrm_devstack.infra import REPO
from socialcrm_devstack.pages import PageReceiver
from socialcrm_devstack.processes import ManagedProcess, StartError, free_ports
from socialcrm_devstack.stack import SERVICES, LocalStack

RULES_DIR = REPO / "deploy" / "prometheus" / "rules"
CONSOLES_DIR = REPO / "deploy" / "prometheus" / "consoles"
ALERTMANAGER_CONFIG = REPO / "deploy" / "alertmanager" / "alertmanager.yml"
# Debian ships prom.lib and menu.lib (what console templates include) as examples only.
CONSOLE_LIBRARIES = (
    Path("/usr/share/doc/prometheus/examples/console_libraries"),
    Path("/etc/prometheus/console_libraries"),
)
# Debian names the Alertmanager binary after its package, and ships it without its web UI;
# bin/setup builds one with the UI from the Go module into .cache/bin, used when present.
ALERTMANAGER_BINARIES = ("prometheus-alertmanager", "alertmanager")
ALERTMANAGER_WITH_UI = REPO / ".cache" / "bin" / "alertmanager"
# Scrape and rule evaluation: 5 s locally (15 s in production) keeps a page within seconds
# of a spike and costs the 2-core machine nothing noticeable (five small /metrics pages).
INTERVAL_SECONDS = 5
# Alertmanager's wait for more alerts of a new group before it notifies: 5 s locally
# (production pages after 10 s), so the demo's burst pages while one watches.
LOCAL_GROUP_WAIT = "5s"
LOCAL_GROUP_INTERVAL = "30s"
RECEIVER_NAME = "local-pager"
START_SECONDS = 60


def alertmanager_binary() -> str:
    """Alertmanager with its web UI (bin/setup's build), else Debian's."""
    if ALERTMANAGER_WITH_UI.is_file():
        return str(ALERTMANAGER_WITH_UI)
    return _binary(ALERTMANAGER_BINARIES, "prometheus-alertmanager")


def _binary(names: tuple[str, ...], package: str) -> str:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    raise StartError(f"{names[0]} not found: bin/setup installs the Debian package {package}")


def missing_packages() -> list[str]:
    """The Debian packages whose servers are not installed (bin/setup installs them)."""
    wanted = {"prometheus": ("prometheus",), "prometheus-alertmanager": ALERTMANAGER_BINARIES}
    return [
        package
        for package, names in wanted.items()
        if not any(shutil.which(name) for name in names)
    ]


def console_libraries() -> Path | None:
    return next((path for path in CONSOLE_LIBRARIES if (path / "prom.lib").is_file()), None)


def prometheus_config(stack: LocalStack, alertmanager_port: int) -> dict[str, Any]:
    """Scrape every service (job = service name, as in production) and alert locally."""
    return {
        "global": {
            "scrape_interval": f"{INTERVAL_SECONDS}s",
            "evaluation_interval": f"{INTERVAL_SECONDS}s",
            "external_labels": {"platform": "socialcrm-local"},
        },
        "rule_files": [str(path) for path in sorted(RULES_DIR.glob("*.yml"))],
        "alerting": {
            "alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{alertmanager_port}"]}]}]
        },
        "scrape_configs": [
            {
                "job_name": spec.name,
                "static_configs": [{"targets": [f"127.0.0.1:{stack.ports[spec.name]}"]}],
            }
            for spec in SERVICES
        ],
    }


def alertmanager_config(production: dict[str, Any], webhook_url: str) -> dict[str, Any]:
    """The production routing and inhibitions, every route to the local webhook receiver,
    with short group timings."""
    config = dict(production)
    config["receivers"] = [
        {"name": RECEIVER_NAME, "webhook_configs": [{"url": webhook_url, "send_resolved": True}]}
    ]

    def local(route: dict[str, Any]) -> dict[str, Any]:
        route = {**route, "receiver": RECEIVER_NAME}
        route.pop("group_interval", None)
        # A route's own wait keeps its meaning at half the time (the critical's 10 s: 5 s,
        # the viral warnings' minute: 30 s, so the critical still inhibits them first).
        if "group_wait" in route:
            route["group_wait"] = f"{duration_seconds(route['group_wait']) / 2:g}s"
        if "routes" in route:
            route["routes"] = [local(child) for child in route["routes"]]
        return route

    config["route"] = {
        **local(config["route"]),
        "group_wait": LOCAL_GROUP_WAIT,
        "group_interval": LOCAL_GROUP_INTERVAL,
    }
    return config


def duration_seconds(duration: str) -> float:
    """Seconds of an Alertmanager duration with one unit (``10s``, ``1m``, ``4h``)."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
    number = duration.rstrip("smhd")
    return float(number) * units[duration[len(number) :]]


class Prometheus:
    """A Prometheus server; ``query`` reads its HTTP API."""

    def __init__(
        self, stack: LocalStack, work_dir: Path, port: int, alertmanager_port: int
    ) -> None:
        self.stack = stack
        self.work_dir = work_dir
        self.port = port
        self.alertmanager_port = alertmanager_port
        self.process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def argv(self, config_path: Path) -> list[str]:
        argv = [
            _binary(("prometheus",), "prometheus"),
            f"--config.file={config_path}",
            f"--storage.tsdb.path={self.work_dir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            f"--web.console.templates={CONSOLES_DIR}",
        ]
        libraries = console_libraries()
        if libraries is not None:
            argv.append(f"--web.console.libraries={libraries}")
        return argv

    def start(self) -> None:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        config_path = self.work_dir / "prometheus.yml"
        config = prometheus_config(self.stack, self.alertmanager_port)
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        self.process = ManagedProcess(
            "prometheus", self.argv(config_path), self.work_dir / "prometheus.log"
        )
        self.process.start()
        # Ready once every service has been scraped: panels and alerts have data from then on.
        self.process.wait_until(
            lambda: len(self.query("up == 1")) == len(SERVICES),
            START_SECONDS,
            "scraping every service",
        )

    def query(self, expr: str) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=5)
        response.raise_for_status()
        result: list[dict[str, Any]] = response.json()["data"]["result"]
        return result

    def has_data(self, expr: str) -> bool:
        """Whether ``expr`` returns at least one sample that is a number."""
        return any(not math.isnan(float(series["value"][1])) for series in self.query(expr))

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()


class Alertmanager:
    """An Alertmanager without clustering, notifying ``webhook_url``."""

    def __init__(self, work_dir: Path, port: int, webhook_url: str) -> None:
        self.work_dir = work_dir
        self.port = port
        self.webhook_url = webhook_url
        self.process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        production = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())
        config_path = self.work_dir / "alertmanager.yml"
        config = alertmanager_config(production, self.webhook_url)
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        self.process = ManagedProcess(
            "alertmanager",
            [
                alertmanager_binary(),
                f"--config.file={config_path}",
                f"--storage.path={self.work_dir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                f"--web.external-url={self.url}",
                # An empty address turns the high-availability cluster off.
                "--cluster.listen-address=",
            ],
            self.work_dir / "alertmanager.log",
        )
        self.process.start()
        self.process.wait_until(
            lambda: httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200,
            START_SECONDS,
            "ready (GET /-/ready)",
        )

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()


class Observability:
    """Prometheus, Alertmanager and the page receiver over a running ``LocalStack``."""

    def __init__(self, stack: LocalStack, work_dir: Path) -> None:
        prometheus_port, alertmanager_port, receiver_port = free_ports(3)
        self.receiver = PageReceiver(receiver_port)
        self.alertmanager = Alertmanager(
            work_dir / "alertmanager", alertmanager_port, self.receiver.url
        )
        self.prometheus = Prometheus(
            stack, work_dir / "prometheus", prometheus_port, alertmanager_port
        )

    @property
    def prometheus_url(self) -> str:
        return self.prometheus.url

    @property
    def alertmanager_url(self) -> str:
        return self.alertmanager.url

    def start(self) -> Observability:
        """Receiver, then Alertmanager, then Prometheus; stops what started on a failure."""
        try:
            self.receiver.start()
            self.alertmanager.start()
            self.prometheus.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        self.prometheus.stop()
        self.alertmanager.stop()
        self.receiver.stop()


__all__ = ["Alertmanager", "Observability", "PageReceiver", "Prometheus", "missing_packages"]
