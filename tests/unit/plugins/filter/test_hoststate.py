"""Unit tests for plugins/filter/hoststate.py."""

import pytest
from ansible.errors import AnsibleFilterError
from hoststate import FilterModule, accounts_missing, dpkg_missing, install_needed, units_to_mask, units_to_start

DPKG = "ii curl\nii tzdata\nrc nginx\niU chrony\nii libc6:amd64\n"


def test_only_ii_counts_as_installed():
    assert dpkg_missing(DPKG, ["curl", "nginx", "chrony", "tzdata", "procps"]) == ["nginx", "chrony", "procps"]


def test_architecture_suffix_and_order():
    assert dpkg_missing(DPKG, ["procps", "libc6"]) == ["procps"]
    assert dpkg_missing(DPKG, []) == []


def test_unit_section_is_not_read_as_packages():
    out = DPKG + "--units--\nii sneaky\n"
    assert dpkg_missing(out, ["sneaky"]) == ["sneaky"]


@pytest.mark.parametrize("output,wanted,message", [
    (None, ["a"], "expects the command's stdout"),
    ("ii a\n", "a", "must be a list"),
])
def test_dpkg_missing_bad_input(output, wanted, message):
    with pytest.raises(AnsibleFilterError, match=message):
        dpkg_missing(output, wanted)


def test_units_masked_and_stopped_are_left_alone():
    out = (DPKG + "--units--\n"
           "Id=a.service\nUnitFileState=masked\nActiveState=inactive\n\n"
           "Id=b.service\nUnitFileState=enabled\nActiveState=active\n\n"
           "Id=c.service\nActiveState=active\nUnitFileState=masked\n\n"
           "Id=d.service\nUnitFileState=\nActiveState=inactive\n\n"
           "Id=e.service\nUnitFileState=masked\nActiveState=failed\n")
    assert units_to_mask(out) == ["b.service", "c.service", "d.service"]


def test_no_units_asked():
    assert units_to_mask(DPKG + "--units--\n") == []


def test_units_to_mask_needs_the_marker():
    with pytest.raises(AnsibleFilterError, match="no --units-- line"):
        units_to_mask(DPKG)


def test_filters_are_registered():
    assert set(FilterModule().filters()) == {
        "dpkg_missing", "units_to_mask", "install_needed", "units_to_start", "accounts_missing"}


STATE = "ii prometheus\nii curl\nrc prometheus-alertmanager\n--accounts--\nroot\nprometheus\n"


def test_nothing_to_install_on_a_converged_host():
    assert install_needed(STATE, "package", ["prometheus"], "prometheus") is False
    assert install_needed(STATE, "package", ["prometheus", "curl"], "") is False


@pytest.mark.parametrize("method,packages,user", [
    ("package", ["prometheus-alertmanager"], "prometheus"),   # removed, config left (rc)
    ("package", ["prometheus"], "node-exporter"),             # account missing
    ("archive", [], "prometheus"),                            # archives check their own install
])
def test_install_needed_when_something_is_missing(method, packages, user):
    assert install_needed(STATE, method, packages, user) is True


@pytest.mark.parametrize("state", [None, "", "ii prometheus\n"])
def test_install_needed_when_the_state_was_not_read(state):
    # No read (the common role did not run), or an older read without accounts.
    assert install_needed(state, "package", ["prometheus"], "prometheus") is True


def test_accounts_are_not_read_as_packages():
    assert install_needed("ii a\n--accounts--\nii b\n", "package", ["b"], "") is True


def test_install_needed_bad_input():
    with pytest.raises(AnsibleFilterError, match="install_needed: expects"):
        install_needed(["ii a"], "package", ["a"], "")


READ = ("ii nginx\n--firewall-- abc abc\n--services--\n"
        "active nginx.service\nenabled nginx.service\n"
        "active chrony.service\n"
        "enabled keepalived.service\n"
        "active alertmanager@19093.service\nenabled alertmanager@19093.service\n"
        "--groups--\nroot\nmonitoring\n--accounts--\nroot\npromha\n")


def test_units_running_and_enabled_need_no_start():
    assert units_to_start(READ, ["nginx", "alertmanager@19093.service"]) == []


def test_units_stopped_or_disabled_or_unknown_need_a_start():
    # chrony runs but is not enabled; keepalived is enabled but stopped; grafana is not there.
    assert units_to_start(READ, ["chrony", "keepalived", "grafana-server", "nginx"]) == [
        "chrony.service", "keepalived.service", "grafana-server.service"]


def test_units_to_stop_are_those_running_or_enabled():
    assert units_to_start(READ, ["chrony", "keepalived", "grafana-server", "nginx"], stopped=True) == [
        "chrony.service", "keepalived.service", "nginx.service"]


@pytest.mark.parametrize("state", [None, "", "ii nginx\n--accounts--\nroot\n"])
def test_every_unit_starts_when_services_were_not_read(state):
    assert units_to_start(state, ["nginx", "x.timer"]) == ["nginx.service", "x.timer"]


def test_services_are_not_read_as_packages_or_accounts():
    assert dpkg_missing(READ, ["nginx", "active"]) == ["active"]
    assert install_needed(READ, "package", ["nginx"], "promha") is False
    assert install_needed(READ, "package", ["nginx"], "monitoring") is True


def test_accounts_missing():
    assert accounts_missing(READ, ["promha", "prometheus"], ["monitoring", "promha"]) == ["prometheus", "promha"]
    assert accounts_missing(READ, [], []) == []


@pytest.mark.parametrize("state", [None, "", "ii nginx\n"])
def test_every_account_is_missing_when_not_read(state):
    assert accounts_missing(state, ["promha"], ["monitoring"]) == ["promha", "monitoring"]


@pytest.mark.parametrize("call,message", [
    (lambda: units_to_start(READ, "nginx"), "units_to_start: the units must be a list"),
    (lambda: units_to_start(["x"], ["nginx"]), "units_to_start: expects the read's stdout"),
    (lambda: accounts_missing(READ, "promha"), "accounts_missing: users must be a list"),
    (lambda: accounts_missing(READ, [], {"a": 1}), "accounts_missing: groups must be a list"),
])
def test_new_filters_bad_input(call, message):
    with pytest.raises(AnsibleFilterError, match=message):
        call()
