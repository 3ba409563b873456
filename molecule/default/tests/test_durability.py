"""Durability for real: committed rows survive kill -9 of PostgreSQL, and
queue jobs acknowledged more than 1 s before kill -9 of Redis survive it."""

import time

from conftest import CONTAINER, DATABASE, PORT, SERVICES, secret, wait_healthy

# This part changes the server; after a failed test a converge puts it back (conftest).
RESTORE = ("--tags", "stack")

ROWS = 10_000
TX = 100  # rows per committed transaction


def test_committed_rows_survive_kill_9_of_postgres(host):
    pg = CONTAINER["postgres"]
    psql = f"docker exec -i -u postgres {pg} psql -X -At -v ON_ERROR_STOP=1 -d {DATABASE}"
    host.check_output(f"{psql} -c 'DROP TABLE IF EXISTS durability_probe; CREATE TABLE durability_probe (id int PRIMARY KEY)'")
    # One committed transaction per TX rows (COMMIT inside a DO block).
    host.check_output(
        f"{psql} -c 'DO $$ BEGIN FOR t IN 0..{ROWS // TX - 1} LOOP "
        f"INSERT INTO durability_probe SELECT generate_series(t * {TX} + 1, (t + 1) * {TX}); COMMIT; "
        "END LOOP; END $$'"
    )
    host.check_output(f"docker kill --signal KILL {pg}")
    assert host.check_output(f"docker inspect -f '{{{{.State.Running}}}}' {pg}") == "false"
    host.check_output(f"docker start {pg}")
    wait_healthy(host, pg)
    count = int(host.check_output(f"{psql} -c 'SELECT count(*) FROM durability_probe'"))
    print(f"postgres: {ROWS} rows committed in {ROWS // TX} transactions, {count} counted after kill -9")
    assert count == ROWS
    host.check_output(f"{psql} -c 'DROP TABLE durability_probe'")


def test_acknowledged_jobs_survive_kill_9_of_redis_queue(host):
    queue, port, service = CONTAINER["redis-queue"], PORT["redis-queue"], SERVICES["redis-queue"]["service"]
    image = host.check_output(f"docker inspect -f '{{{{.Config.Image}}}}' {queue}")
    password = secret(host, "redis_queue_password")
    cli = f"docker exec -e REDISCLI_AUTH={password} {queue} redis-cli --no-auth-warning -p {port}"
    host.check_output(f"{cli} DEL durability-jobs")
    # The producer prints each job id with the time its RPUSH was acknowledged.
    host.run("docker rm -f queue-producer")
    host.check_output(
        f"docker run -d --name queue-producer --network backend -e REDISCLI_AUTH={password} --entrypoint bash {image} -c "
        "'for i in $(seq 1 5000); do "
        f"redis-cli --no-auth-warning -h {service} -p {port} RPUSH durability-jobs $i >/dev/null "
        '&& echo "$i $(date +%s%N)"; sleep 0.01; done\''
    )
    time.sleep(6)
    kill_ns = int(host.check_output("date +%s%N"))
    host.check_output(f"docker kill --signal KILL {queue}")
    time.sleep(1)
    host.run("docker kill queue-producer")
    acks = [tuple(map(int, line.split())) for line in host.check_output("docker logs queue-producer").splitlines() if line.strip()]
    host.run("docker rm -f queue-producer")
    host.check_output(f"docker start {queue}")
    wait_healthy(host, queue)
    kept = set(map(int, host.check_output(f"{cli} LRANGE durability-jobs 0 -1").split()))
    old_enough = [job for job, at in acks if at < kill_ns - 1_000_000_000]
    lost = [job for job in old_enough if job not in kept]
    print(
        f"redis-queue: {len(acks)} jobs acknowledged, {len(old_enough)} more than 1 s before kill -9, "
        f"{len(kept)} present after restart, {len(lost)} of those lost"
    )
    assert len(old_enough) > 100
    assert lost == []
    host.check_output(f"{cli} DEL durability-jobs")
