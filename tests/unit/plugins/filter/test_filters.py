"""Unit tests for the helpers every filter module shares (plugin_utils/filters.py)."""

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.promha.stack.plugins.plugin_utils.filters import filter_module, is_list, listed, whole_number


def first(value):
    return value[0]


def last(value):
    return value[-1]


def test_filter_module_offers_each_function_under_its_own_name():
    module = filter_module(first, last)()
    assert module.filters() == {"first": first, "last": last}
    assert "first" in type(module).__doc__


@pytest.mark.parametrize("value,expected", [(3, 3), ("12", 12), (" 7 ", 7)])
def test_whole_number_reads_numbers_and_their_strings(value, expected):
    assert whole_number(value, "refused") == expected


@pytest.mark.parametrize("value", ["1.5", "x", None, [1]])
def test_whole_number_refuses_anything_else_with_the_callers_sentence(value):
    with pytest.raises(AnsibleFilterError, match=r"^shard_count must be a whole number$"):
        whole_number(value, "shard_count must be a whole number")


@pytest.mark.parametrize("value,expected", [([], True), (("a",), True), ({"a"}, True), ("ab", False),
                                            (b"ab", False), ({"a": 1}, False), (3, False), (None, False)])
def test_is_list_means_what_yaml_gives_as_a_list(value, expected):
    assert is_list(value) is expected


def test_listed_gives_a_list_and_refuses_a_string_a_mapping_or_an_empty_list_when_asked():
    assert listed(("a", "b"), "refused") == ["a", "b"]
    assert listed([], "refused") == []
    for value in ("a,b", {"a": 1}, None):
        with pytest.raises(AnsibleFilterError, match="^hosts must be a list$"):
            listed(value, "hosts must be a list")
    with pytest.raises(AnsibleFilterError, match="^hosts must be a non-empty list$"):
        listed([], "hosts must be a non-empty list", empty=False)


def test_listed_writes_a_sentence_given_as_a_function_only_when_it_refuses():
    written = []

    def refusal():
        written.append(True)
        return "configs must be a list"

    assert listed([1, 2], refusal) == [1, 2]
    assert written == []
    with pytest.raises(AnsibleFilterError, match="^configs must be a list$"):
        listed("x", refusal)
    assert written == [True]
