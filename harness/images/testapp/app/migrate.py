"""Connect test app: database migration command of the app contract.

python3 /app/migrate.py  -- applies the schema through DIRECT_URL if set, else
DATABASE_URL (PgBouncer in transaction mode is fine: everything runs in one
transaction, serialised by a transaction-level advisory lock). Idempotent: a second run changes
nothing. Exit 0 on success, 1 on failure. An image built with BROKEN=migration
fails with exit 1 before touching the database.
Test stand-in only; never used in production."""

import os
import sys

import common
import psycopg2
from common import BROKEN, VERSION, log

MIGRATIONS = [
    (
        "001_items",
        """
        CREATE TABLE IF NOT EXISTS items (
            id         bigserial PRIMARY KEY,
            name       text        NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now()
        )""",
    ),
    (
        "002_scrape_results",
        """
        CREATE TABLE IF NOT EXISTS scrape_results (
            id         bigserial PRIMARY KEY,
            job_id     text        NOT NULL,
            url        text        NOT NULL,
            worker     text        NOT NULL,
            attempts   integer     NOT NULL DEFAULT 1,
            scraped_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX IF NOT EXISTS scrape_results_job_id_idx ON scrape_results (job_id)""",
    ),
    # The tables the backup role exports by class (docs/app-contract.md):
    # audit logs (365 days) and financial records (7 years, encrypted).
    (
        "003_audit_logs",
        """
        CREATE TABLE IF NOT EXISTS audit_logs (
            id         bigserial PRIMARY KEY,
            actor      text        NOT NULL,
            action     text        NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now()
        )""",
    ),
    (
        "004_billing",
        """
        CREATE TABLE IF NOT EXISTS subscriptions (
            id         bigserial PRIMARY KEY,
            org_name   text        NOT NULL,
            plan       text        NOT NULL,
            started_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE TABLE IF NOT EXISTS payments (
            id              bigserial PRIMARY KEY,
            subscription_id bigint      NOT NULL REFERENCES subscriptions (id),
            amount_krw      bigint      NOT NULL,
            paid_at         timestamptz NOT NULL DEFAULT now()
        )""",
    ),
    # The business metrics of GET /metrics (docs/app-contract.md, "Metrics"). Only additions: the
    # previous release keeps working on this schema (its inserts get the new columns' defaults).
    (
        "005_users",
        """
        CREATE TABLE IF NOT EXISTS users (
            id         bigserial PRIMARY KEY,
            email      text        NOT NULL UNIQUE,
            name       text,
            created_at timestamptz NOT NULL DEFAULT now()
        )""",
    ),
    (
        "006_matches",
        """
        CREATE TABLE IF NOT EXISTS matches (
            id         bigserial PRIMARY KEY,
            user_id    bigint      REFERENCES users (id),
            program    text        NOT NULL,
            score      real,
            created_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX IF NOT EXISTS matches_user_id_idx ON matches (user_id)""",
    ),
    # A job's final failure (after its retries) is a row too; the rows before are successes.
    (
        "007_scrape_results_result",
        """
        ALTER TABLE scrape_results
            ADD COLUMN IF NOT EXISTS result text NOT NULL DEFAULT 'success' CHECK (result IN ('success', 'failure'))""",
    ),
    # When a free subscription became Pro (its first time; NULL: never converted).
    (
        "008_subscription_conversions",
        """
        ALTER TABLE subscriptions ADD COLUMN IF NOT EXISTS converted_at timestamptz""",
    ),
]


def main():
    if BROKEN == "migration":
        log("migrate", "error: broken release (BROKEN=migration): migration aborted, nothing was changed")
        return 1
    try:
        # DIRECT_URL (straight to PostgreSQL, as Prisma's directUrl) wins if set.
        dsn = os.environ.get("DIRECT_URL") or common.require_env("DATABASE_URL")
        conn = psycopg2.connect(dsn, connect_timeout=10, application_name="connect-testapp-migrate")
    except (RuntimeError, psycopg2.Error) as exc:
        log("migrate", f"error: cannot connect: {common.safe_error(exc)}")
        return 1
    applied = []
    try:
        with conn, conn.cursor() as cur:  # one transaction: all or nothing
            cur.execute("SELECT pg_advisory_xact_lock(hashtext('connect:migrate'))")
            cur.execute("""CREATE TABLE IF NOT EXISTS schema_migrations (
                               version     text PRIMARY KEY,
                               app_version text NOT NULL,
                               applied_at  timestamptz NOT NULL DEFAULT now())""")
            cur.execute("SELECT version FROM schema_migrations")
            done = {r[0] for r in cur.fetchall()}
            for version, sql in MIGRATIONS:
                if version in done:
                    continue
                cur.execute(sql)
                cur.execute("INSERT INTO schema_migrations (version, app_version) VALUES (%s, %s)", (version, VERSION))
                applied.append(version)
    except psycopg2.Error as exc:
        log("migrate", f"error: {common.safe_error(exc)}; rolled back")
        return 1
    finally:
        conn.close()
    if applied:
        log("migrate", "applied: " + ", ".join(applied), version=VERSION)
    else:
        log("migrate", "schema up to date; nothing to do", version=VERSION)
    return 0


if __name__ == "__main__":
    sys.exit(main())
