#!/usr/bin/python
# Copyright: the promha authors. Apache License 2.0 (see LICENSE at the root of the
# repository).
"""Directories, links and small files of one daemon, settled in one task.

The roles write many small files that always travel together (a TLS pair and its
CA, a web config, client password files, the directories that hold them). As a
loop of file/copy/template tasks each costs a task result per host on every run;
this module settles the whole set in one call, with the same guarantees:
content compared before anything is written, a new file written beside its
destination with its final owner and mode and then renamed over it (a reader never
sees a half-written file or a key with wider permissions), an optional validate
command run on the new file first, check mode, and a diff for files that are not
secret.
"""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: stack_files
short_description: Directories, links and small files of one daemon, in one task
description:
  - Creates directories, symbolic links and files with the given owner, group and mode.
  - A file is replaced only when its content differs; the new content is written beside
    the destination with its final owner and mode, optionally validated, then renamed
    over it.
  - Files are settled in the order given, so a validate command can read files listed
    before its own (a web config and its certificate); a refused file stops the task,
    and the files listed after it are left as they were (list a unit, whose change
    needs a restart, last).
  - With I(new_files_only), only files that do not exist yet are written.
  - Last, files under each I(prune) directory that match its pattern and are not listed in
    I(files) are removed.
  - Returns C(changed_paths), the paths that were (or in check mode would be) changed or removed.
options:
  directories:
    description: Directories to create (with their parents) and set owner, group and mode on.
    <<: &list_of_dicts {type: list, elements: dict, default: []}
    suboptions:
      path: &path {description: Absolute path., type: path, required: true}
      owner: &owner {description: Owner name., type: str, default: root}
      group: &group {description: Group name., type: str, default: root}
      mode: {description: Octal mode as a string (C("0750")), type: str, required: true}
  links:
    description: Symbolic links; the target must exist on the host.
    <<: *list_of_dicts
    suboptions:
      path: {description: Absolute path of the link., type: path, required: true}
      src: {description: What the link points to., type: path, required: true}
  files:
    description:
      - Files with their full content. Exactly one of I(content) and I(secret_content) is given;
        I(secret_content) is masked in every output and never shown in a diff.
    <<: *list_of_dicts
    suboptions:
      path: *path
      content: {description: The content., type: str}
      secret_content: {description: "The content, when it is a secret.", type: str}
      owner: *owner
      group: *group
      mode: {description: Octal mode as a string (C("0640")), type: str, required: true}
      validate:
        description: Command run on the new file before it replaces the old one; C(%s) is its path.
        type: str
  new_files_only:
    description:
      - Write only the files of I(files) that do not exist on the host yet; leave the others as
        they are, whatever their content. (Prometheus must read the target file of a new job
        before the reload that starts the job, and those of running jobs after it.)
    type: bool
    default: false
  prune:
    description:
      - Directories whose regular files matching I(pattern) are removed unless I(files) lists
        them (the target files of jobs a server no longer runs). Nothing is removed when the
        task writes only new files.
    <<: *list_of_dicts
    suboptions:
      path: {description: Absolute path of the directory; a missing directory is left alone., type: path, required: true}
      pattern: {description: Shell pattern of the file names to consider (C(*.json))., type: str, default: "*"}
attributes:
  check_mode: {support: full}
  diff_mode: {support: partial, details: files given with I(content) only}
author: the promha authors
"""

EXAMPLES = r"""
- name: Install the TLS pair and web.yml
  stack_files:
    directories:
      - {path: /etc/prometheus/web, group: prometheus, mode: "0750"}
    files:
      - {path: /etc/prometheus/web/server.crt, content: "{{ lookup('file', cert, rstrip=false) }}",
         group: prometheus, mode: "0644"}
      - {path: /etc/prometheus/web/server.key, secret_content: "{{ lookup('file', key, rstrip=false) }}",
         group: prometheus, mode: "0640"}
"""

RETURN = r"""
changed_paths:
  description: Paths created, changed (content, link target, owner, group or mode) or removed.
  returned: always
  type: list
  elements: str
"""

import fnmatch
import grp
import os
import pwd
import shlex
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_bytes, to_native

_OWNED = dict(
    owner=dict(type="str", default="root"),
    group=dict(type="str", default="root"),
    mode=dict(type="str", required=True),
)
ARGUMENT_SPEC = dict(
    directories=dict(type="list", elements="dict", default=[], options=dict(
        path=dict(type="path", required=True), **_OWNED)),
    links=dict(type="list", elements="dict", default=[], options=dict(
        path=dict(type="path", required=True), src=dict(type="path", required=True))),
    files=dict(type="list", elements="dict", default=[], options=dict(
        path=dict(type="path", required=True),
        content=dict(type="str"),
        secret_content=dict(type="str", no_log=True),
        validate=dict(type="str"),
        **_OWNED),
        mutually_exclusive=[("content", "secret_content")],
        required_one_of=[("content", "secret_content")]),
    new_files_only=dict(type="bool", default=False),
    prune=dict(type="list", elements="dict", default=[], options=dict(
        path=dict(type="path", required=True), pattern=dict(type="str", default="*"))),
)


def _attrs(module, path, spec):
    """Owner, group and mode as AnsibleModule's attribute helpers take them."""
    return module.load_file_common_arguments(
        dict(path=path, owner=spec["owner"], group=spec["group"], mode=spec["mode"]))


def _resolve(module, owner, group):
    """uid and gid of names, failing with the name when the host has no such account."""
    ids = []
    for kind, name, entry in (("owner", owner, pwd.getpwnam), ("group", group, grp.getgrnam)):
        try:
            ids.append(entry(name)[2])  # pw_uid, gr_gid
        except KeyError:
            module.fail_json(msg=f"{kind} {name} does not exist on this host")
    return tuple(ids)


def settle_directory(module, spec):
    """Create a directory (and parents) and set its attributes; True when anything changed."""
    path = spec["path"]
    changed = False
    if not os.path.isdir(path):
        if os.path.lexists(path):
            module.fail_json(msg=f"{path} exists and is not a directory")
        changed = True
        if module.check_mode:
            return True
        os.makedirs(path, mode=0o700)
    return module.set_fs_attributes_if_different(_attrs(module, path, spec), changed)


def settle_link(module, spec):
    """Point a symbolic link at its source, replacing it atomically; True when it changed."""
    path, src = spec["path"], spec["src"]
    if not os.path.exists(src):
        module.fail_json(msg=f"{path}: the link target {src} does not exist on this host")
    if os.path.islink(path) and os.readlink(path) == src:
        return False
    if os.path.lexists(path) and os.path.isdir(path) and not os.path.islink(path):
        module.fail_json(msg=f"{path} is a directory, not a link")
    if not module.check_mode:
        tmp = f"{path}.stack_files.{os.getpid()}"
        os.symlink(src, tmp)
        os.rename(tmp, path)
    return True


def _read(path):
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def settle_file(module, spec, diffs):
    """Write a file when its content differs, then set its attributes; True when it changed."""
    path = spec["path"]
    secret = spec.get("secret_content") is not None
    new = to_bytes(spec["secret_content"] if secret else spec["content"], errors="surrogate_or_strict")
    old = _read(path)
    if old == new:
        return module.set_fs_attributes_if_different(_attrs(module, path, spec), False)
    if os.path.isdir(path):
        module.fail_json(msg=f"{path} is a directory, not a file")
    if module._diff and not secret:
        diffs.append(dict(before_header=path, after_header=path,
                          before="" if old is None else to_native(old, errors="surrogate_or_replace"),
                          after=to_native(new, errors="surrogate_or_replace")))
    if module.check_mode:
        return True
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        module.fail_json(msg=f"{path}: its directory {directory} does not exist")
    uid, gid = _resolve(module, spec["owner"], spec["group"])
    handle, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.")
    try:
        # mkstemp's file is 0600: owner and mode are final before the content is visible.
        os.fchown(handle, uid, gid)
        os.fchmod(handle, int(spec["mode"], 8))
        with os.fdopen(handle, "wb") as out:
            out.write(new)
        if spec.get("validate"):
            if "%s" not in spec["validate"]:
                module.fail_json(msg=f"{path}: validate must contain %s")
            argv = [arg.replace("%s", tmp) for arg in shlex.split(spec["validate"])]
            rc, out, err = module.run_command(argv)
            if rc != 0:
                reason = (err or out).strip()
                module.fail_json(msg=f"{path}: the new content failed validation ({spec['validate']}): {reason}", rc=rc)
        os.rename(tmp, path)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)
    return True


def prune_directory(module, spec, keep):
    """Remove the regular files of a directory that match its pattern and are not in ``keep``."""
    directory = spec["path"]
    if not os.path.isdir(directory):
        return []
    removed = []
    for name in sorted(os.listdir(directory)):
        path = os.path.normpath(os.path.join(directory, name))
        if path in keep or not fnmatch.fnmatchcase(name, spec["pattern"]):
            continue
        if os.path.islink(path) or not os.path.isfile(path):
            continue
        if not module.check_mode:
            os.unlink(path)
        removed.append(path)
    return removed


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    changed_paths, diffs = [], []
    for spec in module.params["directories"]:
        if settle_directory(module, spec):
            changed_paths.append(spec["path"])
    for spec in module.params["links"]:
        if settle_link(module, spec):
            changed_paths.append(spec["path"])
    new_only = module.params["new_files_only"]
    for spec in module.params["files"]:
        if new_only and os.path.lexists(spec["path"]):
            continue
        if settle_file(module, spec, diffs):
            changed_paths.append(spec["path"])
    if not new_only:
        keep = {os.path.normpath(spec["path"]) for spec in module.params["files"]}
        for spec in module.params["prune"]:
            changed_paths += prune_directory(module, spec, keep)
    result = dict(changed=bool(changed_paths), changed_paths=changed_paths)
    if diffs:
        result["diff"] = diffs
    module.exit_json(**result)


if __name__ == "__main__":
    main()
