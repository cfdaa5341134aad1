-- The lake's tables in Trino, each over its Parquet folder: `land` writes them
-- (DuckDB or Spark), Trino reads them (and makes a table's folder if `land` has not
-- yet). Once Trino is up, run it once (the tables are kept in the lake volume):
--   docker compose exec trino trino --file /etc/trino/lake.sql
-- The columns are lake.py's TABLES (tests/test_compose.py checks that they match).
-- Hive tables take timestamp without a precision; lake.properties reads it as
-- timestamp(6), the microseconds of the events.
CREATE SCHEMA IF NOT EXISTS lake.game;

CREATE TABLE IF NOT EXISTS lake.game.visits (
    event_id varchar,
    event_type varchar,
    "timestamp" timestamp,
    success boolean,
    reason varchar,
    username varchar,
    host varchar,
    user_agent varchar,
    landed_at timestamp
)
WITH (external_location = 'local:///lake/visits', format = 'PARQUET');

CREATE TABLE IF NOT EXISTS lake.game.accounts (
    event_id varchar,
    event_type varchar,
    "timestamp" timestamp,
    success boolean,
    reason varchar,
    username varchar,
    host varchar,
    user_agent varchar,
    landed_at timestamp
)
WITH (external_location = 'local:///lake/accounts', format = 'PARQUET');

CREATE TABLE IF NOT EXISTS lake.game.purchases (
    event_id varchar,
    event_type varchar,
    "timestamp" timestamp,
    success boolean,
    reason varchar,
    username varchar,
    host varchar,
    user_agent varchar,
    item_type varchar,
    quality varchar,
    strength integer,
    price integer,
    landed_at timestamp
)
WITH (external_location = 'local:///lake/purchases', format = 'PARQUET');

CREATE TABLE IF NOT EXISTS lake.game.guild_events (
    event_id varchar,
    event_type varchar,
    "timestamp" timestamp,
    success boolean,
    reason varchar,
    username varchar,
    host varchar,
    user_agent varchar,
    guild_name varchar,
    target varchar,
    landed_at timestamp
)
WITH (external_location = 'local:///lake/guild_events', format = 'PARQUET');

CREATE TABLE IF NOT EXISTS lake.game.quarantine (
    raw varchar,
    reason varchar,
    source varchar,
    landed_at timestamp
)
WITH (external_location = 'local:///lake/quarantine', format = 'PARQUET');
