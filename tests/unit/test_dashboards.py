"""scripts/dashboards.py and scripts/dashboard-check.py: the dashboards as written, and how a panel is judged."""

import json
from pathlib import Path

import pytest
from loadfile import load_file

ROOT = Path(__file__).resolve().parents[2]


def load(name, filename):
    return load_file(f"scripts/{filename}", name)


dashboards = load("dashboards", "dashboards.py")
check = load("dashboard_check", "dashboard-check.py")


def test_the_files_are_what_the_generator_writes():
    files = dashboards.rendered()
    assert sorted(p.name for p in files) == sorted(p.name for p in dashboards.DIRECTORY.glob("*.json"))
    for path, text in files.items():
        assert path.read_text() == text, f"{path.name}: run scripts/dashboards.py"


def test_a_query_written_in_parts_is_joined_and_a_shared_part_read_where_it_is_aliased(tmp_path):
    data = tmp_path / "boards.yml"
    data.write_text("""
parts:
  down: &down 'sum(a - b)'
dashboards:
  one:
    title: One
    panels:
      - {title: Down, expr: *down, legend: '{{job}}', unit: short}
      - {title: Ratio, expr: ['1 - ', *down, ' / 2'], legend: x, unit: percentunit}
""")
    assert dashboards.load(data) == {"one": ("One", [("Down", "sum(a - b)", "{{job}}", "short"),
                                                     ("Ratio", "1 - sum(a - b) / 2", "x", "percentunit")])}


def test_one_dashboard_per_tier():
    assert set(dashboards.DASHBOARDS) >= {"promha-prometheus", "promha-alertmanager", "promha-storage",
                                          "promha-front", "promha-database"}


@pytest.mark.parametrize("uid", sorted(dashboards.DASHBOARDS))
def test_each_dashboard_reads_the_global_view_with_unique_panels_laid_out_without_overlap(uid):
    model = json.loads((dashboards.DIRECTORY / f"{uid}.json").read_text())
    assert model["uid"] == uid
    assert model["templating"]["list"][0]["current"]["value"] == "promha-remote-storage"
    ids = [panel["id"] for panel in model["panels"]]
    assert len(ids) == len(set(ids))
    cells = [(p["gridPos"]["x"], p["gridPos"]["y"]) for p in model["panels"]]
    assert len(cells) == len(set(cells))
    titles = [panel["title"] for panel in model["panels"]]
    assert len(titles) == len(set(titles))
    for panel in model["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}"
        assert [t["expr"] for t in panel["targets"]] and all(t["expr"].strip() for t in panel["targets"])


def test_per_shard_panels_read_recorded_series_only():
    # Remote write drops the shard label of scraped series: only job:* and the plan keep a shard.
    for uid, (_title, panels) in dashboards.DASHBOARDS.items():
        for title, expr, _legend, _unit in panels:
            if "by (shard" in expr:
                assert "job:" in expr, f"{uid}: {title}: {expr}"


def test_panel_queries_include_rows_nested_panels():
    model = {"panels": [{"title": "a", "targets": [{"expr": "up"}, {"expr": ""}]},
                        {"title": "row", "type": "row", "panels": [{"title": "b", "targets": [{"expr": "x"}]}]}]}
    assert check.panel_queries(model) == [("a", "up"), ("b", "x")]


def test_a_panel_with_series_passes_and_one_without_or_with_an_error_fails():
    assert check.verdict({"status": "success", "data": {"result": [{"metric": {}, "value": [0, "1"]}]}}) == (1, None)
    assert check.verdict({"status": "success", "data": {"result": []}}) == (0, "no data")
    series, problem = check.verdict({"status": "error", "errorType": "bad_data", "error": "parse error"})
    assert series == 0 and problem == "error: bad_data parse error"


def test_the_grafana_role_provisions_every_dashboard_file():
    # Every file scripts/dashboards.py writes, not a list kept by hand that a new tier's file could miss.
    import yaml
    role_vars = yaml.safe_load((ROOT / "roles" / "grafana" / "vars" / "main.yml").read_text())
    assert "fileglob', role_path ~ '/files/dashboards/*.json')" in role_vars["_grafana_dashboard_files"]
    assert all(path.parent == dashboards.DIRECTORY for path in dashboards.rendered())
