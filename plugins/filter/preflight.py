"""The filters of the stack model's ``preflight`` module.

The code, its docstring and its tests are in the collection shipped with the
repository (collections/ansible_collections/promha/stack/plugins/plugin_utils/preflight.py),
where the other modules import it as an ordinary module; Ansible finds the filters here.
"""

from ansible_collections.promha.stack.plugins.plugin_utils import preflight as _module
from ansible_collections.promha.stack.plugins.plugin_utils.preflight import FilterModule  # noqa: F401 - what Ansible loads

__doc__ = _module.__doc__  # the filters' documentation (scripts/filter-docs.py reads it)
