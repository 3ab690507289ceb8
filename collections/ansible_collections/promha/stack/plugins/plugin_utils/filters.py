"""What every filter module of the stack model shares: how it offers its functions to
Ansible, and how it reads a whole number or a list from the inventory."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError


def filter_module(*functions):
    """The ``FilterModule`` class Ansible loads from a filter plugin: each function under its own name."""
    table = {function.__name__: function for function in functions}

    class FilterModule:
        def filters(self):
            return dict(table)

    FilterModule.__doc__ = f"Filters: {', '.join(table)}."
    return FilterModule


def whole_number(value, refusal):
    """``int(value)``; an AnsibleFilterError saying ``refusal`` when ``value`` is not a whole number."""
    try:
        return int(value)
    except (TypeError, ValueError):
        raise AnsibleFilterError(refusal) from None


def is_list(value):
    """Whether ``value`` is a list as YAML gives one: iterable, and not a string or a mapping."""
    return not isinstance(value, (str, bytes, dict)) and hasattr(value, "__iter__")


def listed(value, refusal, empty=True):
    """``value`` as a list; an AnsibleFilterError saying ``refusal`` when it is not one (or is empty
    and ``empty`` is false). ``refusal`` may be a function that returns the sentence, so that
    a sentence showing a large value is only written when it is needed."""
    if is_list(value):
        value = list(value)
        if value or empty:
            return value
    raise AnsibleFilterError(refusal() if callable(refusal) else refusal)
