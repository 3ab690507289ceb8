"""Unit tests for plugins/filter/hoststate.py (the filters over host_state's read)."""

import pytest
from ansible.errors import AnsibleFilterError
from hoststate import FilterModule, accounts_missing, dpkg_missing, install_needed, units_to_mask, units_to_start

READ = {
    "installed": ["curl", "nginx", "prometheus", "tzdata"],
    "services": {"active": ["nginx.service", "chrony.service", "alertmanager@19093.service"],
                 "enabled": ["nginx.service", "keepalived.service", "alertmanager@19093.service"]},
    "groups": ["root", "monitoring"],
    "accounts": ["root", "promha", "prometheus"],
    "firewall": {"written": "abc", "loaded": "abc"},
    "units": [],
    "changed": False,
}
# A registered task that did not run, and one without a read at all.
SKIPPED = {"changed": False, "skipped": True, "skip_reason": "Conditional result was False"}
NOT_READ = [None, "", {}, SKIPPED]


def test_missing_packages_in_the_order_wanted():
    assert dpkg_missing(READ, ["procps", "curl", "chrony", "nginx"]) == ["procps", "chrony"]
    assert dpkg_missing(READ, []) == []


@pytest.mark.parametrize("state", NOT_READ)
def test_every_package_is_missing_when_not_read(state):
    assert dpkg_missing(state, ["curl", "nginx"]) == ["curl", "nginx"]


@pytest.mark.parametrize("call,message", [
    (lambda: dpkg_missing(READ, "curl"), "dpkg_missing: the wanted packages must be a list"),
    (lambda: dpkg_missing("ii curl\n", ["curl"]), "dpkg_missing: expects the host_state module's result"),
    (lambda: units_to_start(READ, "nginx"), "units_to_start: the units must be a list"),
    (lambda: units_to_start(["x"], ["nginx"]), "units_to_start: expects the host_state module's result"),
    (lambda: accounts_missing(READ, "promha"), "accounts_missing: users must be a list"),
    (lambda: accounts_missing(READ, [], {"a": 1}), "accounts_missing: groups must be a list"),
    (lambda: install_needed(["ii a"], "package", ["a"], ""), "install_needed: expects"),
    (lambda: units_to_mask(READ | {"units": None}), "units_to_mask: the read has no units"),
    (lambda: units_to_mask(SKIPPED), "units_to_mask: the read has no units"),
])
def test_bad_input_is_named(call, message):
    with pytest.raises(AnsibleFilterError, match=message):
        call()


def test_units_masked_and_stopped_are_left_alone():
    units = [
        {"id": "a.service", "unit_file_state": "masked", "active_state": "inactive"},
        {"id": "b.service", "unit_file_state": "enabled", "active_state": "active"},
        {"id": "c.service", "unit_file_state": "masked", "active_state": "active"},
        {"id": "d.service", "unit_file_state": "", "active_state": "inactive"},
        {"id": "e.service", "unit_file_state": "masked", "active_state": "failed"},
    ]
    assert units_to_mask({"units": units}) == ["b.service", "c.service", "d.service"]
    assert units_to_mask({"units": []}) == []


def test_filters_are_registered():
    assert set(FilterModule().filters()) == {
        "dpkg_missing", "units_to_mask", "install_needed", "units_to_start", "accounts_missing"}


def test_nothing_to_install_on_a_converged_host():
    assert install_needed(READ, "package", ["prometheus"], "prometheus") is False
    assert install_needed(READ, "package", ["prometheus", "curl"], "") is False


@pytest.mark.parametrize("method,packages,user", [
    ("package", ["prometheus-alertmanager"], "prometheus"),   # not installed
    ("package", ["prometheus"], "node-exporter"),             # account missing
    ("archive", [], "prometheus"),                            # archives check their own install
])
def test_install_needed_when_something_is_missing(method, packages, user):
    assert install_needed(READ, method, packages, user) is True


@pytest.mark.parametrize("state", NOT_READ + [{"installed": ["prometheus"]}])
def test_install_needed_when_the_state_was_not_read(state):
    # No read (common did not run, the task was skipped), or a read without accounts.
    assert install_needed(state, "package", ["prometheus"], "prometheus") is True


def test_units_running_and_enabled_need_no_start():
    assert units_to_start(READ, ["nginx", "alertmanager@19093.service"]) == []


def test_units_stopped_or_disabled_or_unknown_need_a_start():
    # chrony runs but is not enabled; keepalived is enabled but stopped; grafana is not there.
    assert units_to_start(READ, ["chrony", "keepalived", "grafana-server", "nginx"]) == [
        "chrony.service", "keepalived.service", "grafana-server.service"]


def test_units_to_stop_are_those_running_or_enabled():
    assert units_to_start(READ, ["chrony", "keepalived", "grafana-server", "nginx"], stopped=True) == [
        "chrony.service", "keepalived.service", "nginx.service"]


@pytest.mark.parametrize("state", NOT_READ)
def test_every_unit_starts_when_services_were_not_read(state):
    assert units_to_start(state, ["nginx", "x.timer"]) == ["nginx.service", "x.timer"]


def test_accounts_missing():
    assert accounts_missing(READ, ["promha", "grafana"], ["monitoring", "promha"]) == ["grafana", "promha"]
    assert accounts_missing(READ, [], []) == []


@pytest.mark.parametrize("state", NOT_READ)
def test_every_account_is_missing_when_not_read(state):
    assert accounts_missing(state, ["promha"], ["monitoring"]) == ["promha", "monitoring"]
