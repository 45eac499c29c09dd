"""KPI: windowed KPIs, spike detection, Prometheus metrics, KPI and alert events."""
