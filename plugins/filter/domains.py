"""The filters of the stack model's ``domains`` module.

The code, its docstring and its tests are in the collection shipped with the
repository (collections/ansible_collections/promha/stack/plugins/plugin_utils/domains.py),
where the other modules import it as an ordinary module; Ansible finds the filters here.
"""

from ansible_collections.promha.stack.plugins.plugin_utils import domains as _module
from ansible_collections.promha.stack.plugins.plugin_utils.domains import FilterModule  # noqa: F401 - what Ansible loads

__doc__ = _module.__doc__  # the filters' documentation (scripts/filter-docs.py reads it)
