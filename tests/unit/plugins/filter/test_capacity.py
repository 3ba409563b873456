"""Tests for plugins/filter/capacity.py (capacity_plan) and its sidecar doc."""

from __future__ import annotations

import copy
import inspect
import json

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.connect.platform.plugins.filter.capacity import (
    FilterModule,
    capacity_plan_filter,
)
from ansible_collections.connect.platform.plugins.module_utils._capacity import (
    CapacityError,
    capacity_plan,
)

SEED = {
    "nginx": {"cpus": "1.0", "mem_limit": "2g", "mem_reservation": "1g"},
    "app": {"cpus": "3.0", "mem_limit": "10g", "mem_reservation": "8g", "replicas": 2},
    "pgbouncer": {"cpus": "0.5", "mem_limit": "1g"},
    "postgres": {"cpus": "2.0", "mem_limit": "32g", "mem_reservation": "24g"},
    "redis-cache": {"cpus": "1.0", "mem_limit": "12g", "mem_reservation": "10g"},
    "redis-queue": {"cpus": "1.0", "mem_limit": "3g"},
    "scraper": {"cpus": "1.0", "mem_limit": "4g"},
    "grafana": {"cpus": "0.5", "mem_limit": "2g"},
}


def seed(replicas):
    plan = copy.deepcopy(SEED)
    plan["app"]["replicas"] = replicas
    return plan


def test_filter_module_exports():
    assert FilterModule().filters() == {"capacity_plan": capacity_plan_filter}


def test_result_is_the_module_utils_result():
    assert capacity_plan_filter(SEED, host_cpus=16, host_memory="128g") == capacity_plan(SEED, host_cpus=16, host_memory="128g")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"services": seed(4), "host_cpus": 16, "host_memory": "128g"}, "capacity_plan: the plan needs 19.0 CPUs"),
        (
            {"services": seed(2), "host_cpus": 16, "host_memory": "128g", "max_cpu_percent": 75},
            "but the ceiling is 12.0 (75% of 16 host CPUs); lower app replicas or raise max_cpu_percent",
        ),
        (
            {"services": {"app": {"cpus": 1, "mem_limit": "2g", "mem_reservation": "3g"}}, "host_cpus": 16, "host_memory": "128g"},
            "capacity_plan: service 'app' mem_reservation 3GiB is above its mem_limit 2GiB",
        ),
        (
            {"services": {"app": {"cpus": 1, "mem_limit": "2g", "mem": 1}}, "host_cpus": 16, "host_memory": "128g"},
            "capacity_plan: service 'app' has unknown key(s) mem",
        ),
    ],
)
def test_errors_become_filter_errors(arguments, message):
    services = arguments.pop("services")
    with pytest.raises(AnsibleFilterError) as info:
        capacity_plan_filter(services, **arguments)
    assert message in str(info.value)
    assert isinstance(info.value.orig_exc, CapacityError)


def test_host_arguments_are_required_keywords():
    with pytest.raises(TypeError):
        capacity_plan_filter(SEED)  # pylint: disable=missing-kwoa


def test_sidecar_options_match_the_signature(sidecar):
    doc = sidecar("capacity_plan")
    assert set(doc) == {"DOCUMENTATION", "EXAMPLES", "RETURN"}
    assert doc["DOCUMENTATION"]["name"] == "capacity_plan"
    options = doc["DOCUMENTATION"]["options"]
    parameters = inspect.signature(capacity_plan_filter).parameters
    keywords = {key for key, parameter in parameters.items() if parameter.kind is parameter.KEYWORD_ONLY}
    assert set(options) - {"_input"} == keywords
    for key in keywords:
        if parameters[key].default is inspect.Parameter.empty:
            assert options[key].get("required") is True, key
        else:
            assert options[key]["default"] == parameters[key].default, key
    assert set(doc["RETURN"]["_value"]["contains"]) == set(capacity_plan(SEED, host_cpus=16, host_memory="128g"))


def test_example_results_are_true(sidecar, example_results):
    results = example_results(sidecar("capacity_plan")["EXAMPLES"])
    base = capacity_plan_filter(seed(2), host_cpus=16, host_memory="128g")
    # the first example elides the other services with {...}; check every figure it shows
    shown = results[0]
    assert '"app": {"replicas": 2, "cpus": 3.0, "mem_limit": 10737418240,' in shown
    for key in ("totals", "host", "ceiling", "utilisation", "buffer", "headroom"):
        assert f'"{key}": {json.dumps(base[key])}' in shown.replace("{ ", "{").replace(" }", "}"), key
    peak = capacity_plan_filter(seed(3), host_cpus=16, host_memory=131072 * 1048576)
    assert peak["totals"]["cpus"] == 16.0 and peak["totals"]["mem_limit_human"] == "86GiB"
    assert peak["utilisation"]["cpus_percent"] == 100.0 and peak["utilisation"]["mem_limit_percent"] == 67.2
    assert peak["buffer"]["cpus"] == 0.0 and peak["buffer"]["memory_human"] == "42GiB"
    assert "cpus_percent 100.0 and mem_limit_percent 67.2" in results[1]
    with pytest.raises(AnsibleFilterError) as info:
        capacity_plan_filter(seed(2), host_cpus=16, host_memory="128g", max_cpu_percent=75)
    assert results[2] == str(info.value)
    with pytest.raises(AnsibleFilterError) as info:
        capacity_plan_filter(seed(4), host_cpus=16, host_memory="128g")
    assert results[3] == str(info.value)


def test_ansible_doc_renders(run_ansible):
    result = run_ansible("ansible-doc", "-t", "filter", "--json", "connect.platform.capacity_plan")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)["connect.platform.capacity_plan"]
    assert doc["doc"]["name"] == "capacity_plan"
    assert "# =>" in doc["examples"]


PLAYBOOK = """
- name: capacity_plan inside Ansible
  hosts: localhost
  gather_facts: false
  vars:
    stack:
      nginx: {cpus: '1.0', mem_limit: 2g, mem_reservation: 1g}
      app: {cpus: '3.0', mem_limit: 10g, mem_reservation: 8g, replicas: 2}
      pgbouncer: {cpus: '0.5', mem_limit: 1g}
      postgres: {cpus: '2.0', mem_limit: 32g, mem_reservation: 24g}
      redis-cache: {cpus: '1.0', mem_limit: 12g, mem_reservation: 10g}
      redis-queue: {cpus: '1.0', mem_limit: 3g}
      scraper: {cpus: '1.0', mem_limit: 4g}
      grafana: {cpus: '0.5', mem_limit: 2g}
    memtotal_mb: 131072
  tasks:
    - name: Plan base and peak season
      ansible.builtin.set_fact:
        base: "{{ stack | connect.platform.capacity_plan(host_cpus=16, host_memory=memtotal_mb * 1048576) }}"
        peak: "{{ stack | combine({'app': {'replicas': 3}}, recursive=true)
                  | connect.platform.capacity_plan(host_cpus=16, host_memory='128g') }}"

    - name: Check the figures
      ansible.builtin.assert:
        that:
          - base.totals.cpus == 13.0
          - base.utilisation.cpus_percent == 81.3
          - base.utilisation.mem_limit_percent == 59.4
          - base.buffer.memory_human == '52GiB'
          - peak.totals.cpus == 16.0
          - peak.buffer.cpus == 0.0

    - name: The seed's 75 percent ceiling refuses the base plan
      block:
        - name: Plan with a 75 percent CPU ceiling
          ansible.builtin.debug:
            msg: "{{ stack | connect.platform.capacity_plan(host_cpus=16, host_memory='128g', max_cpu_percent=75) }}"
      rescue:
        - name: The error names app and the ceiling
          ansible.builtin.assert:
            that:
              - "'app: 6.0 for 2 replicas' in ansible_failed_result.msg"
              - "'ceiling is 12.0' in ansible_failed_result.msg"
"""


def test_filter_inside_ansible_playbook(run_ansible, tmp_path):
    playbook = tmp_path / "playbook.yml"
    playbook.write_text(PLAYBOOK, encoding="utf-8")
    result = run_ansible("ansible-playbook", "-i", "localhost,", "-c", "local", str(playbook))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "failed=0" in result.stdout
    assert "rescued=1" in result.stdout
