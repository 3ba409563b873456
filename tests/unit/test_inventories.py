"""The shipped inventories are coherent: production reproduces the seed's
§4.4 postgresql.conf, PgBouncer's pools fit its max_connections, and its
§2.2 plan fits the host, base and peak."""

import json
from pathlib import Path

import pytest
import yaml
from ansible_collections.connect.platform.plugins.module_utils._capacity import CapacityError, capacity_plan
from ansible_collections.connect.platform.plugins.module_utils._pgtune import pg_settings

ROOT = Path(__file__).resolve().parents[2]
PROD = yaml.safe_load((ROOT / "inventories/production/group_vars/connect_servers/main.yml").read_text())
HARNESS = yaml.safe_load((ROOT / "inventories/demo/group_vars/connect_servers/harness.yml").read_text())
STACK = yaml.safe_load((ROOT / "roles/compose_stack/defaults/main.yml").read_text())
POSTGRES = yaml.safe_load((ROOT / "roles/postgres/defaults/main.yml").read_text())
POSTGRES_KNOWN = set(yaml.safe_load((ROOT / "roles/postgres/vars/main.yml").read_text())["__postgres_known_settings"])

# Seed §4.4, every line.
SEED_POSTGRESQL_CONF = {
    "shared_buffers": "8GB",
    "effective_cache_size": "24GB",
    "work_mem": "64MB",
    "maintenance_work_mem": "2GB",
    "random_page_cost": "1.1",
    "effective_io_concurrency": "256",
    "max_wal_size": "8GB",
    "checkpoint_completion_target": "0.9",
    "max_connections": "100",
    "log_min_duration_statement": "1000",
    "log_checkpoints": "on",
    "log_connections": "on",
    "log_disconnections": "on",
}


def production_settings():
    resources = STACK["compose_stack_resources"]["postgres"]
    return pg_settings(
        resources["mem_limit"],
        cpus=resources["cpus"],
        db_type=PROD["postgres_tune_db_type"],
        storage=PROD["postgres_tune_storage"],
        max_connections=PROD["postgres_tune_max_connections"],
        pg_version=15,
        overrides={**PROD["postgres_settings_overrides"], **POSTGRES["postgres_required_settings"]},
    )


@pytest.mark.parametrize(("name", "value"), SEED_POSTGRESQL_CONF.items())
def test_production_postgresql_conf_is_the_seeds(name, value):
    assert production_settings()[name] == value


def test_production_pools_fit_postgres_max_connections():
    """The pgbouncer role's rule: pools + superuser_reserved_connections <= max_connections."""
    settings = production_settings()
    needed = (
        PROD["pgbouncer_default_pool_size"] + PROD["pgbouncer_reserve_pool_size"] + int(settings.get("superuser_reserved_connections", "3"))
    )
    assert needed <= int(settings["max_connections"])


def test_production_overrides_are_postgresql_settings():
    names = {**PROD["postgres_settings_overrides"], **POSTGRES["postgres_required_settings"]}
    assert {n.lower() for n in names if "." not in n} <= POSTGRES_KNOWN


@pytest.mark.parametrize("instances", [2, 3])
def test_production_plan_fits_the_host_base_and_peak(instances):
    resources = dict(STACK["compose_stack_resources"])
    resources["app"] = {**resources["app"], "replicas": instances}
    plan = capacity_plan(
        resources,
        host_cpus=PROD["compose_stack_host_cpus"],
        host_memory="128g",
        max_cpu_percent=PROD["compose_stack_max_cpu_percent"],
        max_memory_percent=STACK["compose_stack_max_memory_percent"],
    )
    assert plan["totals"]["cpus"] == {2: 13.0, 3: 16.0}[instances]


def test_a_fourth_app_instance_overcommits_production():
    resources = dict(STACK["compose_stack_resources"])
    resources["app"] = {**resources["app"], "replicas": 4}
    with pytest.raises(CapacityError, match="app"):
        capacity_plan(resources, host_cpus=16, host_memory="128g", max_cpu_percent=100)


def test_harness_plan_fits_a_two_core_machine():
    resources = dict(HARNESS["compose_stack_resources"])
    resources["app"] = {**resources["app"], "replicas": 3}
    plan = capacity_plan(resources, host_cpus=2, host_memory="24g", max_cpu_percent=100, max_memory_percent=90)
    assert plan["totals"]["cpus"] <= 2


def _inventory(run_ansible, *args):
    proc = run_ansible("ansible-inventory", *args)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_harness_shortens_only_the_service_down_alert():
    # The test inventory copies monitoring_alert_for whole; every other duration must stay production's.
    role = yaml.safe_load((ROOT / "roles/monitoring/defaults/main.yml").read_text())["monitoring_alert_for"]
    harness = HARNESS["monitoring_alert_for"]
    assert set(harness) == set(role)
    assert {k: v for k, v in harness.items() if v != role[k]} == {"instance_down": "30s"}


def test_molecule_server_gets_exactly_the_harness_values_and_not_the_demo(run_ansible):
    # molecule.yml's two inventory sources: the scenario's server, then the
    # demo's group_vars through harness_vars.yml (a group without hosts).
    sources = ["-i", "molecule/default/inventory", "-i", "inventories/demo/harness_vars.yml"]
    listed = _inventory(run_ansible, *sources, "--list")
    assert listed["connect_servers"]["hosts"] == ["connect-molecule-default"]
    host = _inventory(run_ansible, *sources, "--host", "connect-molecule-default")
    assert host == {"ansible_connection": "community.docker.docker", **HARNESS}


def test_demo_inventory_alone_still_has_its_server_and_values(run_ansible):
    listed = _inventory(run_ansible, "-i", "inventories/demo", "--list")
    assert listed["connect_servers"]["hosts"] == ["connect-demo"]
    assert listed["_meta"]["hostvars"]["connect-demo"] == {"ansible_connection": "community.docker.docker", **HARNESS}
