"""The samples of a service's Prometheus /metrics page, for the code that reads them (the
demo's summary, the benchmarks): one parser, the client library's own."""

from __future__ import annotations

from collections import defaultdict

from prometheus_client.parser import text_string_to_metric_families

Labels = tuple[tuple[str, str], ...]
Samples = dict[str, dict[Labels, float]]


def parse(text: str) -> Samples:
    """The samples of the exposition ``text`` by sample name (a counter's with its
    ``_total``, a histogram's ``_count``, ...), then by their sorted labels. A page cut
    short (a service stopping while it answers) gives the metrics read before the cut."""
    samples: Samples = defaultdict(dict)
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                samples[sample.name][tuple(sorted(sample.labels.items()))] = sample.value
    except ValueError:
        pass
    return samples


def values(samples: Samples, name: str, /, **labels: str) -> list[float]:
    """The values of the samples ``name`` whose labels include ``labels``."""
    return [
        value
        for found, value in samples.get(name, {}).items()
        if all(pair in found for pair in labels.items())
    ]
