"""``bin/demo``: the whole platform on this machine with a live stream and a terminal summary."""

from __future__ import annotations

import shutil
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families
from pymongo import MongoClient

from socialcrm_devstack.demo_stream import DemoStream
from socialcrm_devstack.infra import CACHE
from socialcrm_devstack.stack import LOCAL_CRM_API_KEY, SERVICES, LocalStack

OPEN_CASE_STATUSES = ["new", "open", "pending_customer"]


@dataclass
class DemoOptions:
    rate: float = 5.0
    duration: float = 0.0
    keep_data: bool = False
    ephemeral_ports: bool = False
    seed: int | None = None
    work_dir: Path = CACHE / "demo"


def say(message: str) -> None:
    print(message, flush=True)


def scrape(url: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """Metric samples of one service, by sample name and labels."""
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = defaultdict(dict)
    try:
        text = httpx.get(f"{url}/metrics", timeout=2).text
    except httpx.HTTPError:
        return samples
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[sample.name][tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def total(
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]], name: str, **match: str
) -> int:
    return int(
        sum(
            value
            for labels, value in samples.get(name, {}).items()
            if all((k, v) in labels for k, v in match.items())
        )
    )


def summary(
    stack: LocalStack, mongo: MongoClient[dict[str, object]], sent: int, started: float
) -> str:
    metrics = {spec.name: scrape(stack.url(spec.name)) for spec in SERVICES}
    stages = [
        ("sent", sent),
        ("ingest", total(metrics["ingest"], "socialcrm_ingest_accepted_total")),
        (
            "sentiment",
            total(
                metrics["sentiment"], "socialcrm_events_produced_total", topic="social.enriched.v1"
            ),
        ),
        (
            "router",
            total(metrics["router"], "socialcrm_events_produced_total", topic="social.routed.v1"),
        ),
        (
            "crm-sink",
            total(metrics["crm-sink"], "socialcrm_events_consumed_total", topic="social.routed.v1"),
        ),
        ("kpi", total(metrics["kpi"], "socialcrm_interactions_total")),
    ]
    polarity = {
        p: total(metrics["kpi"], "socialcrm_interactions_total", polarity=p)
        for p in ("negative", "neutral", "positive")
    }
    counted = sum(polarity.values()) or 1
    channels = {
        channel: total(metrics["kpi"], "socialcrm_interactions_total", channel=channel)
        for channel in ("x", "facebook", "instagram", "email", "chat", "community")
    }
    db = mongo["socialcrm"]
    open_cases = db.cases.count_documents({"status": {"$in": OPEN_CASE_STATUSES}})
    contacts = db.contacts.count_documents({"merged_into": {"$exists": False}})
    dead = sum(total(m, "socialcrm_events_dead_lettered_total") for m in metrics.values())
    alerts = total(metrics["kpi"], "socialcrm_alerts_total")
    kpi = metrics["kpi"]
    backlog = total(kpi, "socialcrm_backlog_items")
    oldest = max(kpi.get("socialcrm_backlog_oldest_age_seconds", {}).values(), default=0.0)
    spikes = total(kpi, "socialcrm_viral_spike_active")
    windows = total(kpi, "socialcrm_kpi_windows_closed_total")
    escalations = total(metrics["kpi"], "socialcrm_escalations_total")
    elapsed = time.monotonic() - started
    return "\n".join(
        [
            f"── {time.strftime('%H:%M:%S')}  running {elapsed:5.0f}s  (Ctrl-C to stop) ──",
            "events per stage  " + "  ".join(f"{name}={count}" for name, count in stages),
            "sentiment mix     "
            + "  ".join(f"{p}={n} ({100 * n / counted:.0f}%)" for p, n in polarity.items()),
            "channels          " + "  ".join(f"{c}={n}" for c, n in channels.items()),
            f"CRM               contacts={contacts}  open cases={open_cases}  "
            f"escalations={escalations}",
            f"KPIs              backlog={backlog}  oldest unanswered={oldest:.0f}s  "
            f"viral spikes now={spikes}  KPI windows closed={windows}",
            f"alerts            alerts={alerts}  dead letters={dead}",
        ]
    )


def run(options: DemoOptions) -> int:
    if not options.keep_data:
        shutil.rmtree(options.work_dir, ignore_errors=True)
    stack = LocalStack(options.work_dir, ephemeral_ports=options.ephemeral_ports)
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
        say(f"[demo] platform up in {time.monotonic() - started:.0f}s\n")
        say("Where to look:")
        for spec in SERVICES:
            url = stack.url(spec.name)
            links = f"API docs {url}/docs   metrics {url}/metrics   ready {url}/readyz"
            say(f"  {spec.name:<10} {links}")
        say(f"  webhooks   POST {stack.url('ingest')}/v1/webhooks/{{x,meta,email,chat,forum}}")
        say(
            f"  CRM API    curl -H 'Authorization: Bearer {LOCAL_CRM_API_KEY}' "
            f"'{stack.url('crm-sink')}/v1/cases?status=new&limit=5'"
        )
        say(f"  Kafka      {stack.kafka.bootstrap}   (e.g. kcat -b {stack.kafka.bootstrap} -L)")
        say(f"  MongoDB    {stack.mongo.uri}   (database socialcrm)")
        say(f"  logs       {options.work_dir / 'logs'}\n")
        stream_demo(stack, options)
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        say("\n[demo] stopping services, then the database and the broker ...")
        stack.stop()
        say("[demo] stopped")


def stream_demo(stack: LocalStack, options: DemoOptions) -> None:
    stream = DemoStream(seed=options.seed)
    interval = 1.0 / options.rate if options.rate > 0 else float("inf")
    interactive = sys.stdout.isatty()
    sent, started, last_report, previous_lines = 0, time.monotonic(), 0.0, 0
    ingest = stack.url("ingest")
    mongo: MongoClient[dict[str, object]]
    with httpx.Client(timeout=10) as http, MongoClient(stack.mongo.uri) as mongo:
        next_send = time.monotonic()
        while not options.duration or time.monotonic() - started < options.duration:
            now = time.monotonic()
            if now >= next_send:
                delivery = stream.delivery()
                response = http.post(
                    f"{ingest}{delivery.path}",
                    content=delivery.body,
                    headers={"content-type": delivery.content_type},
                )
                if response.status_code != 200:
                    say(f"[demo] ingest answered {response.status_code}: {response.text}")
                sent += delivery.events
                next_send += interval
            if now - last_report >= 2:
                report = summary(stack, mongo, sent, started)
                if interactive and previous_lines:
                    sys.stdout.write(f"\x1b[{previous_lines}F\x1b[J")
                say(report)
                previous_lines, last_report = report.count("\n") + 1, now
            time.sleep(max(0.0, min(next_send, last_report + 2) - time.monotonic()))
        say(f"[demo] stream stopped after {sent} posts; waiting for the pipeline to drain ...")
        deadline = time.monotonic() + 20
        report = summary(stack, mongo, sent, started)
        while f"kpi={sent}\n" not in report and time.monotonic() < deadline:
            time.sleep(0.5)
            report = summary(stack, mongo, sent, started)
        say(report)
