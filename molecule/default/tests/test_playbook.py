"""Playbook-level behaviour on the converged server: check mode predicts
nothing after converge. (Bad input, refused before anything changes, needs
no server: tests/integration/test_bad_input.py, `make inputs`.)"""


def test_check_mode_after_converge_reports_no_change(playbook):
    run = playbook("--check")
    assert run.rc == 0, run
    assert run.recap["changed"] == 0, run
    assert run.recap["failed"] == 0, run
