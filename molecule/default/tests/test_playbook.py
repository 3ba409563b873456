"""Playbook-level behaviour on the converged server: check mode predicts
nothing after converge; a rerun that skips Compose's `up` for services
already as declared still brings back one that stopped. (Bad input, refused
before anything changes, needs no server: tests/integration/test_bad_input.py,
`make inputs`.)"""

import re

from conftest import CONTAINER, SERVICES, wait_healthy

# The scraper is stopped on purpose below; a failed test starts it again.
RESTORE = ("--tags", "scraper")


def test_check_mode_after_converge_reports_no_change(playbook):
    run = playbook("--check")
    assert run.rc == 0, run
    assert run.recap["changed"] == 0, run
    assert run.recap["failed"] == 0, run


def test_a_rerun_brings_back_a_stopped_service_and_skips_the_rest(host, playbook):
    container, service = CONTAINER["scraper"], SERVICES["scraper"]["service"]
    assert host.run(f"docker stop --time 5 {container}").rc == 0
    run = playbook("--tags", "scraper")
    assert run.rc == 0, run
    assert up_result(run, service) == "changed", run
    wait_healthy(host, container)
    # Running and as declared again: the next run skips the `up` and changes nothing.
    again = playbook("--tags", "scraper")
    assert again.rc == 0 and again.recap["changed"] == 0, again
    assert up_result(again, service) == "skipping", again


def up_result(run, service):
    """ok, changed or skipping: how compose_stack's `up` of one service ended in a run."""
    header = f"TASK [connect.platform.compose_stack : Bring up {service}]"
    if header not in run.output:
        return None
    # The first result line after the task's header (profile_tasks may print a timing line first).
    found = re.search(r"^(ok|changed|skipping|fatal): \[", run.output.split(header, 1)[1], re.MULTILINE)
    return found.group(1) if found else None
