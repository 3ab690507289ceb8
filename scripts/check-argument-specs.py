#!/usr/bin/env python3
"""Check every role's meta/argument_specs.yml against its defaults/main.yml.

Each public variable in defaults must be documented in the spec with the same
default (a template as the same expression, whitespace aside; a spec may give a
template's default as a plain value of its type instead), and the spec must not
document variables that have no default unless they are marked required.
Exits 1 listing every difference.
"""

import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _same_default(value, documented):
    """Whether the spec documents the default ``value``: the same value, or for a template the
    same expression (whitespace aside), or a plain value standing for a template."""
    if isinstance(value, str) and "{{" in value:
        if isinstance(documented, str) and "{{" in documented:
            return value.split() == documented.split()
        return True
    return value == documented


def main():
    problems = []
    roles = sorted(p for p in (ROOT / "roles").iterdir() if p.is_dir())
    for role in roles:
        spec_file = role / "meta" / "argument_specs.yml"
        defaults_file = role / "defaults" / "main.yml"
        if not spec_file.exists():
            problems.append(f"{role.name}: meta/argument_specs.yml is missing")
            continue
        options = (yaml.safe_load(spec_file.read_text()) or {}).get("argument_specs", {}).get("main", {}).get(
            "options", {}) or {}
        defaults = (yaml.safe_load(defaults_file.read_text()) or {}) if defaults_file.exists() else {}
        for name, value in defaults.items():
            if name not in options:
                problems.append(f"{role.name}: default {name} is not in meta/argument_specs.yml")
            elif "default" in options[name] and not _same_default(value, options[name]["default"]):
                problems.append(f"{role.name}: {name} default differs: defaults {value!r} vs spec "
                                f"{options[name]['default']!r}")
        for name, option in options.items():
            if name not in defaults and not option.get("required", False):
                problems.append(f"{role.name}: spec option {name} has no default and is not required")
            # stack_* settings are the whole stack's, read by every role (roles/pki sets their defaults).
            if not name.startswith((f"{role.name}_", "stack_")):
                problems.append(f"{role.name}: option {name} does not carry the role prefix {role.name}_")
    for line in problems:
        print(line)
    print(f"argument specs: {len(roles)} roles checked, {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
