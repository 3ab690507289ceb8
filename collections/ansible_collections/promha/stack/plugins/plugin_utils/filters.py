"""How a module of the stack model offers its functions to Ansible as filters."""

from __future__ import annotations


def filter_module(*functions):
    """The ``FilterModule`` class Ansible loads from a filter plugin: each function under its own name."""
    table = {function.__name__: function for function in functions}

    class FilterModule:
        def filters(self):
            return dict(table)

    FilterModule.__doc__ = f"Filters: {', '.join(table)}."
    return FilterModule
