"""``bin/demo``: the whole platform on this machine, a scenario streamed into it, agents
answering, Prometheus and Alertmanager paging, and a live summary."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import httpx
from pymongo import MongoClient

from socialcrm_devstack.agents import AgentDesk
from socialcrm_devstack.demo_rules import demo_rules_text
from socialcrm_devstack.demo_stream import BURST_SUBJECT, Delivery, DemoStream
from socialcrm_devstack.infra import CACHE
from socialcrm_devstack.observability import CONSOLES_DIR, Observability
from socialcrm_devstack.scenarios import SCENARIOS, Phase, Scenario
from socialcrm_devstack.stack import (
    LOCAL_AGENT_API_KEY,
    LOCAL_AGENT_ID,
    LOCAL_CRM_API_KEY,
    LOCAL_READ_API_KEY,
    SERVICES,
    LocalStack,
)
from socialcrm_devstack.summary import LiveSummary, Story, drained, stage_counts
from socialcrm_devstack.webhook_signing import signed_headers
from socialcrm_router.rules import DEFAULT_RULES_RESOURCE

# After the stream stops: time for the pipeline to count every post (crm-sink, bound by the
# local database, was 80 posts behind after a burst on a loaded machine), and, once a burst
# began, for its page (spike, scrape, rule evaluation, Alertmanager's grouping) to arrive.
DRAIN_SECONDS = 60.0
PAGE_WAIT_SECONDS = 90.0
# Burst posts per webhook call: the burst goes out in X batches, as X delivers them.
BURST_BATCH = 50


@dataclass
class DemoOptions:
    rate: float = 5.0
    duration: float = 0.0
    scenario: str = "story"
    keep_data: bool = False
    ephemeral_ports: bool = False
    seed: int | None = None
    work_dir: Path = CACHE / "demo"


@dataclass
class Progress:
    """What the stream has sent; written by the sending loop, read by the summary."""

    started: float
    sent: int = 0
    burst_posts: int = 0
    burst_began_at: float | None = None


def say(message: str) -> None:
    print(message, flush=True)


def write_router_rules(work_dir: Path) -> Path:
    """The router's default rules with an hour of SLA as a minute (``demo_rules``)."""
    packaged = resources.files("socialcrm_router").joinpath(DEFAULT_RULES_RESOURCE).read_text()
    path = work_dir / "router-rules.demo.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(demo_rules_text(packaged))
    return path


def kpi_views(prometheus_url: str) -> list[str]:
    return [
        f"{prometheus_url}/consoles/{page.name}" for page in sorted(CONSOLES_DIR.glob("*.html"))
    ]


def run(options: DemoOptions) -> int:
    scenario = SCENARIOS[options.scenario]
    if not options.keep_data:
        shutil.rmtree(options.work_dir, ignore_errors=True)
    rules = write_router_rules(options.work_dir)
    stack = LocalStack(
        options.work_dir,
        ephemeral_ports=options.ephemeral_ports,
        env={"router": {"ROUTER_RULES_FILE": str(rules)}, "kpi": scenario.kpi_env(options.rate)},
    )
    observability = Observability(stack, options.work_dir)
    say(f"[demo] data and logs in {options.work_dir}")
    try:
        started = time.monotonic()
        say(f"[demo] starting Apache Kafka (KRaft) on {stack.kafka.bootstrap} ...")
        stack.kafka.start()
        say(f"[demo] starting the MongoDB-protocol server on {stack.mongo.uri} ...")
        stack.mongo.start()
        for spec in SERVICES:
            say(f"[demo] starting {spec.name} on {stack.url(spec.name)} ...")
            stack.start_service(spec.name)
        say("[demo] starting Prometheus and Alertmanager ...")
        observability.start()
        say(f"[demo] platform up in {time.monotonic() - started:.0f}s\n")
        for line in where_to_look(stack, observability, options, rules):
            say(line)
        stream_demo(stack, observability, scenario, options)
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        say(
            "\n[demo] stopping Prometheus and Alertmanager, the services, then the database "
            "and the broker ..."
        )
        observability.stop()
        stack.stop()
        say("[demo] stopped")


def where_to_look(
    stack: LocalStack, observability: Observability, options: DemoOptions, rules: Path
) -> list[str]:
    lines = ["Where to look:"]
    for spec in SERVICES:
        url = stack.url(spec.name)
        lines.append(
            f"  {spec.name:<10} API docs {url}/docs   metrics {url}/metrics   ready {url}/readyz"
        )
    lines += [
        f"  webhooks   POST {stack.url('ingest')}/v1/webhooks/{{x,meta,email,chat,forum}}",
        f"  CRM API    curl -H 'Authorization: Bearer {LOCAL_CRM_API_KEY}' "
        f"'{stack.url('crm-sink')}/v1/cases?status=new&limit=5'",
        f"  reply API  curl -H 'Authorization: Bearer {LOCAL_AGENT_API_KEY}' "
        f"-d '{{\"text\": \"...\"}}' -H 'content-type: application/json' "
        f"'{stack.url('router')}/v1/interactions/<event id>/replies'   (as {LOCAL_AGENT_ID})",
        f"  workspace  {stack.url('workspace')}/   sign in with the key {LOCAL_AGENT_API_KEY}"
        f" (as {LOCAL_AGENT_ID}; {LOCAL_READ_API_KEY} only reads)",
        f"  SLA rules  {rules}   (the router's defaults, an hour of SLA a minute)",
        f"  Prometheus {observability.prometheus_url}   "
        f"(alerts {observability.prometheus_url}/alerts)",
        f"  Alertmanager {observability.alertmanager_url}   (pages go to the demo's receiver)",
        "  KPI views  " + "\n             ".join(kpi_views(observability.prometheus_url)),
        f"  Kafka      {stack.kafka.bootstrap}   (e.g. kcat -b {stack.kafka.bootstrap} -L)",
        f"  MongoDB    {stack.mongo.uri}   (database socialcrm)",
        f"  logs       {options.work_dir / 'logs'}",
        "",
    ]
    return lines


def stream_demo(
    stack: LocalStack, observability: Observability, scenario: Scenario, options: DemoOptions
) -> None:
    stream = DemoStream(seed=options.seed)
    interval = 1.0 / options.rate if options.rate > 0 else float("inf")
    progress = Progress(started=time.monotonic())
    desk = (
        AgentDesk(stack.url("router"), LOCAL_AGENT_API_KEY, scenario.agents, options.seed)
        if scenario.agents
        else None
    )
    burst = scenario.burst

    def story() -> Story:
        elapsed = time.monotonic() - progress.started
        return Story(
            scenario=scenario.name,
            phase=scenario.phase(elapsed),
            elapsed=elapsed,
            sent=progress.sent,
            burst_due_after=burst.starts_after if burst else None,
            burst_began_at=progress.burst_began_at,
            burst_posts=progress.burst_posts,
            agents=desk.stats if desk else None,
            pages=list(observability.receiver.pages),
        )

    prometheus = observability.prometheus_url
    header = [
        f"Prometheus {prometheus}   Alertmanager {observability.alertmanager_url}   "
        f"KPI views {prometheus}/consoles/index.html",
        f"webhooks {stack.url('ingest')}/v1/webhooks/...   reply API "
        f"{stack.url('router')}/v1/interactions/<event id>/replies   "
        f"logs {options.work_dir / 'logs'}",
        "",
    ]
    urls = {spec.name: stack.url(spec.name) for spec in SERVICES}
    mongo: MongoClient[dict[str, object]]
    with httpx.Client(timeout=10) as http, MongoClient(stack.mongo.uri) as mongo:
        summary = LiveSummary(urls, mongo, story, header)
        secrets = stack.webhook_secrets()

        def send(delivery: Delivery, phase: Phase) -> None:
            signature = signed_headers(delivery.path, delivery.body, secrets)
            response = http.post(
                f"{stack.url('ingest')}{delivery.path}",
                content=delivery.body,
                headers={"content-type": delivery.content_type, **signature},
            )
            if response.status_code != 200:
                summary.note(f"[demo] ingest answered {response.status_code}: {response.text}")
                return
            if desk is not None:
                desk.take(response.json()["event_ids"], time.time(), phase)

        summary.start()
        if desk is not None:
            desk.start()
        try:
            next_send = time.monotonic()
            while not options.duration or time.monotonic() - progress.started < options.duration:
                now = time.monotonic()
                phase = scenario.phase(now - progress.started)
                if now >= next_send:
                    delivery = stream.delivery()
                    send(delivery, phase)
                    progress.sent += delivery.events
                    next_send += interval
                due = burst.posts_due(options.rate, now - progress.started) if burst else 0
                if due > progress.burst_posts:
                    if progress.burst_began_at is None:
                        progress.burst_began_at = time.time()
                        summary.note(f"[demo] viral burst begins: {BURST_SUBJECT}")
                    delivery = stream.burst_delivery(min(due - progress.burst_posts, BURST_BATCH))
                    send(delivery, phase)
                    progress.burst_posts += delivery.events
                    progress.sent += delivery.events
                # During the burst, wake up every 0.2 s to send its due posts in one call.
                pause = min(next_send - time.monotonic(), 0.2 if phase is Phase.BURST else 0.5)
                time.sleep(max(0.0, pause))
            summary.stop()
            drain(summary, progress, observability)
        finally:
            summary.stop()
            if desk is not None:
                desk.stop()


def drain(summary: LiveSummary, progress: Progress, observability: Observability) -> None:
    """Waits until every stage handled every post sent and, once a burst began, its page
    came; then prints the final summary."""
    waiting_for_page = progress.burst_began_at is not None and not observability.receiver.pages
    say(
        f"[demo] stream stopped after {progress.sent} posts; waiting for the pipeline to drain"
        + (" and for the burst's page ..." if waiting_for_page else " ...")
    )
    started = time.monotonic()
    figures = summary.figures()
    while time.monotonic() - started < PAGE_WAIT_SECONDS:
        counted = drained(stage_counts(figures, progress.sent))
        paged = progress.burst_began_at is None or bool(observability.receiver.pages)
        if (counted or time.monotonic() - started > DRAIN_SECONDS) and paged:
            break
        time.sleep(1)
        figures = summary.figures()
    say("\n".join(summary.report(figures)))
