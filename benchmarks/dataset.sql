-- A realistic Connect dataset for restore timings (issue 11): funding
-- programs, organizations and matches in the seed's proportions, in schema
-- `dataset` of the app's database. Sizes are psql variables:
--   psql -v programs=150000 -v organizations=20000 -v matches=500000 -f benchmarks/dataset.sql
-- Deterministic (setseed): two loads with the same sizes hold the same rows.
\set ON_ERROR_STOP on
SELECT setseed(0.42);
DROP SCHEMA IF EXISTS dataset CASCADE;
CREATE SCHEMA dataset;
CREATE TABLE dataset.funding_programs (
    id          bigint PRIMARY KEY,
    title       text NOT NULL,
    agency      text NOT NULL,
    budget_krw  bigint NOT NULL,
    deadline    date NOT NULL,
    keywords    text[] NOT NULL,
    description text NOT NULL
);
CREATE TABLE dataset.organizations (
    id          bigint PRIMARY KEY,
    name        text NOT NULL,
    business_no text NOT NULL UNIQUE,
    kind        text NOT NULL CHECK (kind IN ('company', 'institute', 'university')),
    region      text NOT NULL,
    employees   integer NOT NULL
);
CREATE TABLE dataset.matches (
    id          bigint PRIMARY KEY,
    org_id      bigint NOT NULL REFERENCES dataset.organizations (id),
    program_id  bigint NOT NULL REFERENCES dataset.funding_programs (id),
    score       numeric(5, 2) NOT NULL,
    created_at  timestamptz NOT NULL
);
INSERT INTO dataset.funding_programs
SELECT g,
       'R&D program ' || g || ' ' || md5(g::text),
       (ARRAY['MSIT', 'MOTIE', 'SMBA', 'KEIT', 'NRF', 'IITP'])[1 + g % 6],
       (10 + g % 490)::bigint * 10000000,
       date '2026-01-01' + (g % 730)::integer,
       ARRAY[md5((g * 7)::text), md5((g * 13)::text)],
       repeat(md5((g * 31)::text), 8)
  FROM generate_series(1::bigint, :programs) g;
INSERT INTO dataset.organizations
SELECT g,
       'Organization ' || g,
       lpad(g::text, 10, '0'),
       (ARRAY['company', 'institute', 'university'])[1 + g % 3],
       (ARRAY['Seoul', 'Gyeonggi', 'Busan', 'Daejeon', 'Daegu', 'Gwangju'])[1 + g % 6],
       5 + g % 995
  FROM generate_series(1::bigint, :organizations) g;
INSERT INTO dataset.matches
SELECT g,
       1 + (g * 7919) % :organizations,
       1 + (g * 104729) % :programs,
       (g % 10000) / 100.0,
       timestamptz '2026-01-01 00:00:00+09' + make_interval(secs => g * 37)
  FROM generate_series(1::bigint, :matches) g;
CREATE INDEX ON dataset.matches (org_id);
CREATE INDEX ON dataset.matches (program_id);
ANALYZE dataset.funding_programs, dataset.organizations, dataset.matches;
SELECT 'dataset: ' || (SELECT count(*) FROM dataset.funding_programs) || ' programs, '
       || (SELECT count(*) FROM dataset.organizations) || ' organizations, '
       || (SELECT count(*) FROM dataset.matches) || ' matches, '
       || pg_size_pretty(pg_database_size(current_database())) || ' database';
