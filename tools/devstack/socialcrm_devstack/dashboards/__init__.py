"""The KPI dashboards as code: one set of panel definitions drives both the Grafana
dashboards (deploy/grafana/dashboards/*.json) and the console templates that the local
Prometheus serves (deploy/prometheus/consoles/*.html).

Run ``python -m socialcrm_devstack.dashboards`` after editing ``panels.py``;
tests/deploy/test_dashboards_as_code.py fails when the committed files are stale.
"""
