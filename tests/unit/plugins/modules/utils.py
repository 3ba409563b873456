# Copyright (c) 2026, Connect platform operations
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# SPDX-License-Identifier: Apache-2.0
"""What the module tests share: setting a module's arguments for main(), and
running a module's main() for its JSON answer."""

from __future__ import annotations

import json

import pytest

try:
    from ansible.module_utils.testing import patch_module_args
except ImportError:  # ansible-core before 2.19
    import contextlib
    import json

    from ansible.module_utils import basic

    @contextlib.contextmanager
    def patch_module_args(args):
        old = basic._ANSIBLE_ARGS
        basic._ANSIBLE_ARGS = json.dumps({"ANSIBLE_MODULE_ARGS": args}).encode()
        try:
            yield
        finally:
            basic._ANSIBLE_ARGS = old


def run_main(main, args, capsys, check=False, diff=False):
    """A module's main() run with ``args`` (in check or diff mode): its JSON answer and exit code."""
    if check:
        args = dict(args, _ansible_check_mode=True)
    if diff:
        args = dict(args, _ansible_diff=True)
    with patch_module_args(args), pytest.raises(SystemExit) as info:
        main()
    out = capsys.readouterr().out
    return json.loads(out[out.index("{") :]), info.value.code


__all__ = ["patch_module_args", "run_main"]
