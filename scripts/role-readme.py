#!/usr/bin/env python3
"""Write (or with --check, verify) the variable table of every role's README.md.

The table is generated from meta/argument_specs.yml between two markers; the
rest of each README is written by hand. `make lint` runs --check, so a README
cannot drift from the role's argument specs.
"""

import argparse
import json
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
BEGIN = "<!-- BEGIN GENERATED: variables (scripts/role-readme.py) -->"
END = "<!-- END GENERATED -->"


def cell(value):
    text = json.dumps(value) if not isinstance(value, str) else (value if value else '""')
    return text.replace("|", "\\|").replace("\n", " ")


def table(spec):
    lines = [BEGIN, "", "| variable | type | default | description |", "| --- | --- | --- | --- |"]
    for name, option in (spec.get("options") or {}).items():
        default = "(required)" if option.get("required") else f"`{cell(option.get('default'))}`"
        kind = option.get("type", "str") + (f" of {option['elements']}" if option.get("elements") else "")
        if option.get("choices"):
            kind += " (" + ", ".join(option["choices"]) + ")"
        description = option.get("description", "")
        description = " ".join(description) if isinstance(description, list) else description
        lines.append(f"| `{name}` | {kind} | {default} | {cell(description)} |")
    lines += ["", END]
    return "\n".join(lines)


def render(role):
    spec = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())["argument_specs"]["main"]
    readme = role / "README.md"
    generated = table(spec)
    if readme.exists():
        text = readme.read_text()
        if BEGIN in text and END in text:
            head, rest = text.split(BEGIN, 1)
            tail = rest.split(END, 1)[1]
            return head + generated + tail
        return text.rstrip() + "\n\n## Variables\n\n" + generated + "\n"
    description = spec.get("description", [])
    intro = "\n\n".join(description if isinstance(description, list) else [description])
    return f"# Role `{role.name}`\n\n{spec['short_description']}\n\n{intro}\n\n## Variables\n\n{generated}\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    stale = []
    for role in sorted(p for p in (ROOT / "roles").iterdir() if (p / "meta" / "argument_specs.yml").exists()):
        text = render(role)
        readme = role / "README.md"
        if args.check:
            if not readme.exists() or readme.read_text() != text:
                stale.append(role.name)
        else:
            readme.write_text(text)
    if stale:
        print(f"role READMEs out of date with argument_specs: {', '.join(stale)} (run scripts/role-readme.py)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
