#!/usr/bin/python
# Copyright (c) 2025, Connect platform operations
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# SPDX-License-Identifier: Apache-2.0

from __future__ import annotations

DOCUMENTATION = r"""
---
module: secret_files
short_description: Keep the stack's secret files, from the vault or generated once, in one call
version_added: 0.3.0
author: Connect platform operations (@connect-platform)
description:
  - Keeps one file per secret under O(path), all in one call, and returns their values.
  - Per secret, a value from the vault (O(secrets[].value) not empty) is written when the file differs;
    the vault wins.
  - Except for a secret that protects data (O(secrets[].protected), an encryption key) - when the
    server keeps a different one, the module fails naming C(<name>_replace) and writes nothing,
    unless O(secrets[].replace).
  - Without a value, a secret is generated the first time (Python's C(secrets), from
    O(secrets[].chars) and O(secrets[].length)) and never changed by a later run.
  - Every file is mode C(0400), group root, owned by O(secrets[].owner) (the uid of the container that
    mounts it); content is written atomically (a temporary file in the same directory, then a rename).
  - Every secret is checked before any file is written.
  - Check mode reports what would change and writes nothing; a secret that would be generated is
    returned as V(check-mode-placeholder).
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  path:
    description:
      - The secrets directory. It must exist (C(connect.platform.compose_stack) creates it, root C(0700)),
        except in check mode, where a missing directory means no secret exists yet.
    type: path
    required: true
  secrets:
    description: The secrets to keep, each a file named O(secrets[].name) under O(path).
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: File name under O(path).
        type: str
        required: true
      value:
        description: The vault's value. Empty generates one the first time and keeps it.
        type: str
        default: ""
      owner:
        description: Owner of the file, a uid (V(999)) or a user name (V(root)).
        type: str
        default: root
      chars:
        description:
          - Character classes of a generated secret, names from Python's C(string) module.
          - V(ascii_letters), V(ascii_lowercase), V(ascii_uppercase), V(digits), V(hexdigits), V(octdigits)
            or V(punctuation).
        type: list
        elements: str
        default: [ascii_letters, digits]
      length:
        description: Length of a generated secret.
        type: int
        default: 40
      protected:
        description:
          - The secret protects data. A different value from the vault never replaces the one the
            server keeps; the module fails naming C(<name>_replace) instead.
        type: bool
        default: false
      replace:
        description: Replace a protected secret that differs on the server (after re-encrypting the data).
        type: bool
        default: false
      rotate:
        description:
          - Replace the kept secret (rotate.yml) - with the vault's value when O(secrets[].value) is given (it must
            differ from the kept one), otherwise with a newly generated one (action C(rotated)).
          - The kept value is moved to C(<name>.previous) first (returned in RV(previous)) and stays there until
            O(secrets[].finish), so a service can accept both while its clients move over.
          - A rotation in progress (a C(.previous) that differs from the kept value) resumes - the kept value is
            not replaced again unless the vault gives another.
          - Refused for a protected secret.
        type: bool
        default: false
      finish:
        description:
          - The rotation is over - remove C(<name>.previous) (action C(finished)). The kept file is left as it is
            (its owner and mode are not checked, so O(secrets[].owner) is not needed).
          - Excludes O(secrets[].rotate).
        type: bool
        default: false
notes:
  - Run it with C(no_log) on the task - its result holds the secrets' values, and the values from the vault
    are among its options. The options are deliberately not C(no_log) - Ansible would mask the returned
    values, and any part of a generated one equal to a vault value, in the result the caller registers.
  - A failure's message never holds a value; with C(failed_when) false on the task, a following task can
    show it.
seealso:
  - module: ansible.builtin.copy
"""

EXAMPLES = r"""
- name: Keep PostgreSQL's passwords
  connect.platform.secret_files:
    path: /opt/connect/secrets
    secrets:
      - {name: postgres_superuser_password, value: "{{ postgres_superuser_password }}", owner: "999"}
      - {name: postgres_owner_password, value: "{{ postgres_db_owner_password }}"}
  register: postgres_secret_files
  no_log: true

- name: Keep the data's encryption key, never silently replaced
  connect.platform.secret_files:
    path: /opt/connect/secrets
    secrets:
      - name: app_encryption_key
        value: "{{ app_encryption_key }}"
        chars: [hexdigits]
        length: 64
        protected: true
        replace: "{{ app_encryption_key_replace }}"
  register: app_secret_files
  no_log: true
"""

RETURN = r"""
secrets:
  description: The value of every secret by name (in check mode, V(check-mode-placeholder) for one not generated yet).
  returned: success
  type: dict
  sample: {postgres_superuser_password: "...", postgres_owner_password: "..."}
previous:
  description: The old value of every secret whose rotation is not finished (its C(<name>.previous) file), by name.
  returned: success
  type: dict
  sample: {redis_cache_password: "..."}
actions:
  description:
    - What was done (or would be, in check mode) to each file, by name.
    - V(unchanged), V(written) (the vault's value), V(generated), V(rotated) (a new one generated in place of the kept
      one, the old one kept as the previous), V(finished) (the previous one removed), or V(attributes) (owner,
      group or mode fixed).
  returned: success
  type: dict
  sample: {postgres_superuser_password: unchanged, postgres_owner_password: written}
"""

import traceback

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.connect.platform.plugins.module_utils._secrets import SecretError, SecretFiles


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            # No option is no_log: the module returns the values, and Ansible's masking would
            # replace every no_log value, and any part of a returned value equal to one, in
            # the result. The caller's task is no_log (see notes).
            secrets=dict(
                no_log=False,
                type="list",
                elements="dict",
                required=True,
                options=dict(
                    name=dict(type="str", required=True),
                    value=dict(type="str", default="", no_log=False),
                    owner=dict(type="str", default="root"),
                    chars=dict(type="list", elements="str", default=["ascii_letters", "digits"]),
                    length=dict(type="int", default=40),
                    protected=dict(type="bool", default=False),
                    replace=dict(type="bool", default=False),
                    rotate=dict(type="bool", default=False),
                    finish=dict(type="bool", default=False),
                ),
            ),
        ),
        supports_check_mode=True,
    )
    try:
        result = SecretFiles(module.params["path"]).run(module.params["secrets"], check_mode=module.check_mode)
    except SecretError as exc:
        module.fail_json(msg=str(exc))
    except OSError as exc:
        module.fail_json(msg=f"cannot keep the secrets under {module.params['path']}: {exc}", exception=traceback.format_exc())
    module.exit_json(**result)


if __name__ == "__main__":
    main()
