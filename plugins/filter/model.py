"""The filters of the stack model's ``model`` module.

The code, its docstring and its tests are in the collection shipped with the
repository (collections/ansible_collections/promha/stack/plugins/plugin_utils/model.py),
where the other modules import it as an ordinary module; Ansible finds the filters here.
"""

from ansible_collections.promha.stack.plugins.plugin_utils import model as _module
from ansible_collections.promha.stack.plugins.plugin_utils.model import FilterModule  # noqa: F401 - what Ansible loads

__doc__ = _module.__doc__  # the filters' documentation (scripts/filter-docs.py reads it)
