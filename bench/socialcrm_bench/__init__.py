"""Helpers shared by the benchmarks in bench/: process stats, the raw aiokafka ceiling, load
generation, consumer lag, metrics scraping, reports, and the run of a local stack."""
