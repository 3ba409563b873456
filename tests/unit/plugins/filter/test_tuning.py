"""Tests for plugins/filter/tuning.py (pg_tune, pg_settings) and their sidecar docs."""

from __future__ import annotations

import inspect
import json

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.connect.platform.plugins.filter.tuning import (
    FilterModule,
    pg_settings_filter,
    pg_tune_filter,
)
from ansible_collections.connect.platform.plugins.module_utils._pgtune import (
    PGTUNE_COMMIT,
    PgTuneError,
    pgtune,
)

SEED_OVERRIDES = {
    "work_mem": "64MB",
    "maintenance_work_mem": "2GB",
    "effective_io_concurrency": 256,
    "max_wal_size": "8GB",
    "random_page_cost": 1.1,
    "checkpoint_completion_target": 0.9,
    "log_min_duration_statement": 1000,
    "log_checkpoints": True,
    "log_connections": True,
    "log_disconnections": True,
}


def seed_settings():
    return pg_settings_filter(
        "32g",
        cpus="2.0",
        storage="nvme",
        max_connections=100,
        pg_version=15,
        pgbouncer_pool_size=50,
        pgbouncer_reserve_pool_size=10,
        overrides=SEED_OVERRIDES,
    )


def test_filter_module_exports():
    filters = FilterModule().filters()
    assert filters == {"pg_tune": pg_tune_filter, "pg_settings": pg_settings_filter}


def test_pg_tune_is_the_module_utils_result():
    assert pg_tune_filter("32GB", cpus=16, max_connections=100) == pgtune("32GB", cpus=16, max_connections=100)


def test_pg_tune_issue_example():
    result = pg_tune_filter("32GB", cpus=16, max_connections=100, storage="ssd", db_type="web", pg_version=15)
    assert result["shared_buffers"] == "8GB"
    assert result["effective_cache_size"] == "24GB"
    assert result["work_mem"] == "72315kB"


def test_pg_settings_seed():
    result = seed_settings()
    assert result["shared_buffers"] == "8GB"
    assert result["effective_cache_size"] == "24GB"
    assert result["work_mem"] == "64MB"
    assert result["effective_io_concurrency"] == "256"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: pg_tune_filter(0), "pg_tune: memory 0 is not positive"),
        (lambda: pg_tune_filter("-1g"), "pg_tune: memory '-1g' is negative"),
        (lambda: pg_tune_filter("32XB"), "pg_tune: memory '32XB' has an unknown unit 'XB'"),
        (lambda: pg_tune_filter("32GB", db_type="analytics"), "pg_tune: db_type 'analytics' is not one PGTune knows"),
        (lambda: pg_tune_filter("32GB", storage="ramdisk"), "pg_tune: storage 'ramdisk' is not one PGTune knows"),
        (lambda: pg_tune_filter("32GB", max_connections=10), "pg_tune: max_connections 10 is below 20"),
        (
            lambda: pg_settings_filter("32g", max_connections=50, pgbouncer_pool_size=50, pgbouncer_reserve_pool_size=10),
            "pg_settings: max_connections 50 leaves no room for PgBouncer",
        ),
        (lambda: pg_settings_filter("32g", overrides={"work_mem": 64}), "pg_settings: override work_mem=64 needs a unit"),
    ],
)
def test_errors_become_filter_errors(call, message):
    with pytest.raises(AnsibleFilterError) as info:
        call()
    assert message in str(info.value)
    assert isinstance(info.value.orig_exc, PgTuneError)


def test_options_are_keyword_only():
    with pytest.raises(TypeError):
        pg_tune_filter("32GB", "web")  # pylint: disable=too-many-function-args


# ---------------------------------------------------------------------------
# sidecar documentation
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "function"), [("pg_tune", pg_tune_filter), ("pg_settings", pg_settings_filter)])
def test_sidecar_options_match_the_signature(sidecar, name, function):
    doc = sidecar(name)
    assert set(doc) == {"DOCUMENTATION", "EXAMPLES", "RETURN"}
    assert doc["DOCUMENTATION"]["name"] == name
    documented = set(doc["DOCUMENTATION"]["options"]) - {"_input"}
    parameters = inspect.signature(function).parameters
    keywords = {key for key, parameter in parameters.items() if parameter.kind is parameter.KEYWORD_ONLY}
    assert documented == keywords
    for key in keywords:
        default = parameters[key].default
        documented_default = doc["DOCUMENTATION"]["options"][key].get("default")
        if default is not None and not isinstance(default, dict):
            assert documented_default == default, key


def test_pg_tune_doc_names_the_commit(sidecar):
    doc = sidecar("pg_tune")
    assert any(PGTUNE_COMMIT in line for line in doc["DOCUMENTATION"]["description"])


def test_pg_tune_example_results_are_true(sidecar, example_results):
    results = example_results(sidecar("pg_tune")["EXAMPLES"])
    assert results[0] == pg_tune_filter("32GB", cpus=16, max_connections=100, storage="ssd", db_type="web", pg_version=15)
    assert results[1] == pg_tune_filter("512m")
    assert results[2] == '"32GB" on a host with 131072 MB'
    assert pg_tune_filter(131072 * 1048576, db_type="oltp")["shared_buffers"] == "32GB"
    with pytest.raises(AnsibleFilterError) as info:
        pg_tune_filter("32GB", storage="ramdisk")
    assert results[3] == str(info.value)


def test_pg_settings_example_results_are_true(sidecar, example_results):
    results = example_results(sidecar("pg_settings")["EXAMPLES"])
    assert results[0] == seed_settings()
    assert list(results[0]) == list(seed_settings())
    with pytest.raises(AnsibleFilterError) as info:
        pg_settings_filter("32g", max_connections=50, pgbouncer_pool_size=50, pgbouncer_reserve_pool_size=10)
    assert results[1] == str(info.value)
    with pytest.raises(AnsibleFilterError) as info:
        pg_settings_filter("32g", cpus=2, overrides={"work_mem": "256MB"})
    assert results[2] == str(info.value)


@pytest.mark.parametrize("name", ["pg_tune", "pg_settings"])
def test_ansible_doc_renders(run_ansible, name):
    result = run_ansible("ansible-doc", "-t", "filter", "--json", f"connect.platform.{name}")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)[f"connect.platform.{name}"]
    assert doc["doc"]["name"] == name
    assert "# =>" in doc["examples"]


def test_ansible_doc_lists_the_filters(run_ansible):
    result = run_ansible("ansible-doc", "-t", "filter", "-l", "connect.platform")
    assert result.returncode == 0, result.stderr
    for name in ("pg_tune", "pg_settings", "capacity_plan"):
        assert f"connect.platform.{name}" in result.stdout


PLAYBOOK = """
- name: Filters run inside Ansible
  hosts: localhost
  gather_facts: false
  vars:
    memory: 32GB
    overrides:
      work_mem: 64MB
      log_checkpoints: on
      max_wal_size: 8GB
  tasks:
    - name: PGTune for the issue's example
      ansible.builtin.set_fact:
        tuned: "{{ memory | connect.platform.pg_tune(cpus=16, max_connections=100) }}"
        settings: "{{ '32g' | connect.platform.pg_settings(cpus='2.0', storage='nvme', max_connections=100,
                      overrides=overrides, pgbouncer_pool_size=50, pgbouncer_reserve_pool_size=10) }}"

    - name: Check what the filters returned
      ansible.builtin.assert:
        that:
          - tuned.shared_buffers == '8GB'
          - tuned.work_mem == '72315kB'
          - tuned.max_parallel_workers_per_gather == '4'
          - settings.shared_buffers == '8GB'
          - settings.effective_cache_size == '24GB'
          - settings.work_mem == '64MB'
          - settings.log_checkpoints == 'on'
          - settings.max_wal_size == '8GB'

    - name: A bad storage fails with the filter's sentence
      block:
        - name: Ask for a storage PGTune does not know
          ansible.builtin.debug:
            msg: "{{ memory | connect.platform.pg_tune(storage='ramdisk') }}"
      rescue:
        - name: The error names the option and the choices
          ansible.builtin.assert:
            that:
              - "'storage' in ansible_failed_result.msg"
              - "'ssd, hdd, san, nvme' in ansible_failed_result.msg"
"""


def test_filters_inside_ansible_playbook(run_ansible, tmp_path):
    playbook = tmp_path / "playbook.yml"
    playbook.write_text(PLAYBOOK, encoding="utf-8")
    result = run_ansible("ansible-playbook", "-i", "localhost,", "-c", "local", str(playbook))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "failed=0" in result.stdout
    assert "rescued=1" in result.stdout
