#!/usr/bin/python
# Copyright (c) 2026, Connect platform operations
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# SPDX-License-Identifier: Apache-2.0

from __future__ import annotations

DOCUMENTATION = r"""
---
module: config_files
short_description: Keep a role's configuration files in one call, each checked before it is installed
version_added: 0.3.0
author: Connect platform operations (@connect-platform)
description:
  - Keeps several files in one remote call, where M(ansible.builtin.template) costs two per file
    (a stat, then M(ansible.builtin.file) for owner and mode) even when nothing changes.
  - The caller renders each file's content on the controller (C(lookup('ansible.builtin.template', ...))).
  - Per file, only what differs is changed - the content, or the owner, group and mode alone.
  - In the order given, a file whose content changes is staged next to its destination with its final owner
    and mode, checked with its O(files[].validate) command and renamed into place before the next is checked,
    so a later file's check may rely on an earlier file (C(docker compose config) needs the C(env_file)).
  - A file that fails its check is not installed, nor any file after it; the message names the files installed
    before it.
  - Check mode reports what would change and writes and checks nothing.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    platforms: posix
options:
  files:
    description: The files to keep.
    type: list
    elements: dict
    required: true
    suboptions:
      path:
        description: Absolute path of the file. Its directory must exist (outside check mode).
        type: path
        required: true
      content:
        description: The whole content of the file (UTF-8 text).
        type: str
        required: true
      owner:
        description: Owner, a uid (V(999)) or a user name.
        type: str
        default: root
      group:
        description: Group, a gid (V(101)) or a group name.
        type: str
        default: root
      mode:
        description: Permission bits as an octal string (V('0644')).
        type: str
        required: true
      validate:
        description:
          - A command that checks the staged file, C(%s) standing for its path; a non-zero exit stops the call
            before this file is installed. Run without a shell.
        type: str
notes:
  - Use C(no_log) on a task whose files hold secrets - the contents are options, and with O(files[].content)
    not C(no_log) the module can show a diff of the other files.
seealso:
  - module: ansible.builtin.template
  - module: connect.platform.secret_files
"""

EXAMPLES = r"""
- name: Write PostgreSQL's files, each checked first
  connect.platform.config_files:
    files:
      - path: /opt/connect/config/postgres/postgresql.conf
        content: "{{ lookup('ansible.builtin.template', 'postgresql.conf.j2') }}"
        mode: "0644"
        validate: docker run --rm -v %s:/tmp/postgresql.conf:ro postgres:15 postgres -C shared_buffers -c config_file=/tmp/postgresql.conf
      - path: /opt/connect/compose.d/postgres.yml
        content: "{{ lookup('ansible.builtin.template', 'postgres.compose.yml.j2') }}"
        mode: "0644"
        validate: docker compose -f %s config --quiet
  register: postgres_files

- name: Restart when postgresql.conf changed
  ansible.builtin.debug:
    msg: postgresql.conf changed
  when: "'/opt/connect/config/postgres/postgresql.conf' in postgres_files.changed_paths"
"""

RETURN = r"""
actions:
  description:
    - What was done (or would be, in check mode) to each file, by path.
    - V(unchanged), V(created), V(written) (new content) or V(attributes) (owner, group or mode fixed).
  returned: success
  type: dict
  sample: {/opt/connect/config/postgres/pg_hba.conf: unchanged, /opt/connect/compose.d/postgres.yml: written}
changed_paths:
  description: The paths that changed (or would), in the order given.
  returned: success
  type: list
  elements: str
  sample: [/opt/connect/compose.d/postgres.yml]
"""

import traceback

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.connect.platform.plugins.module_utils._config_files import ConfigFileError, ConfigFiles


def main():
    module = AnsibleModule(
        argument_spec=dict(
            files=dict(
                type="list",
                elements="dict",
                required=True,
                options=dict(
                    path=dict(type="path", required=True),
                    content=dict(type="str", required=True, no_log=False),
                    owner=dict(type="str", default="root"),
                    group=dict(type="str", default="root"),
                    mode=dict(type="str", required=True),
                    validate=dict(type="str"),
                ),
            ),
        ),
        supports_check_mode=True,
    )
    keeper = ConfigFiles(validate=module.run_command)
    try:
        result = keeper.run(module.params["files"], check_mode=module.check_mode, diff=module._diff)
    except ConfigFileError as exc:
        module.fail_json(msg=str(exc))
    except OSError as exc:
        module.fail_json(msg=f"cannot write the files: {exc}", exception=traceback.format_exc())
    module.exit_json(**result)


if __name__ == "__main__":
    main()
