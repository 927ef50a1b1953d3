#!/bin/sh
# Run once by the PostgreSQL image on an empty data directory
# (/docker-entrypoint-initdb.d), as the superuser, after the database
# POSTGRES_DB (parkbazaar) was created. Passwords come from secret files.
#   parkbazaar          owns the schema: migrate, ingest, API
#   parkbazaar_monitor  postgres_exporter: pg_monitor and read-only on the tables
#   replicator          standbys (streaming replication)
set -eu
SECRETS_DIR=${SECRETS_DIR:-/run/secrets}
secret() { tr -d '\n' < "$SECRETS_DIR/$1"; }

psql -v ON_ERROR_STOP=1 --username postgres --dbname "${POSTGRES_DB:-parkbazaar}" \
     -v app_pw="$(secret parkbazaar_db_password)" \
     -v monitor_pw="$(secret monitor_db_password)" \
     -v replicator_pw="$(secret replicator_db_password)" <<'SQL'
SELECT 'CREATE EXTENSION IF NOT EXISTS timescaledb'
WHERE EXISTS (SELECT FROM pg_available_extensions WHERE name = 'timescaledb') \gexec
CREATE ROLE parkbazaar LOGIN PASSWORD :'app_pw';
CREATE ROLE parkbazaar_monitor LOGIN PASSWORD :'monitor_pw' IN ROLE pg_monitor;
CREATE ROLE replicator LOGIN REPLICATION PASSWORD :'replicator_pw';
SELECT format('ALTER DATABASE %I OWNER TO parkbazaar', current_database()) \gexec
ALTER SCHEMA public OWNER TO parkbazaar;
ALTER DEFAULT PRIVILEGES FOR ROLE parkbazaar IN SCHEMA public GRANT SELECT ON TABLES TO parkbazaar_monitor;
GRANT USAGE ON SCHEMA public TO parkbazaar_monitor;
SQL
