#!/bin/sh
# One-shot (compose service grafana-db-reader, profile "reporting"): make the read-only
# role bal_grafana that Grafana's PostgreSQL data source uses (reader-role.sql), with
# the password Grafana is given (GRAFANA_DB_PASSWORD).
#
# It waits for the BAL's tables, which the nodes create at their first start (after the
# chain and the contracts: a minute or more). The reporting profile also runs beside the
# single node, which keeps SQLite and has no PostgreSQL: then there is nothing to do,
# and the producer data dashboard stays empty. Run again at any time: it changes
# nothing but the password.
set -eu

# compose's stack; PG* variables given from outside win (the integration test's server)
export PGHOST="${PGHOST:-postgres}" PGPORT="${PGPORT:-5432}" PGUSER="${PGUSER:-bal}"
export PGDATABASE="${PGDATABASE:-bal}" PGPASSWORD="${PGPASSWORD:-$POSTGRES_PASSWORD}"
HERE=$(dirname "$0")
TABLES="device_hours device_last readings rejections setpoints"

if ! getent hosts "$PGHOST" >/dev/null; then
    echo "no PostgreSQL service (the stack is not running): no role to make"
    exit 0
fi

missing=unknown
for attempt in $(seq 1 120); do
    missing=$(psql -XtAc "SELECT count(*) FROM unnest(string_to_array('$TABLES', ' ')) AS t
                          WHERE to_regclass('public.' || t) IS NULL" 2>/dev/null || echo unknown)
    [ "$missing" = 0 ] && break
    echo "waiting for the BAL's tables in PostgreSQL (attempt $attempt of 120)"
    sleep 5
done
if [ "$missing" != 0 ]; then
    echo "the BAL's tables did not appear in 10 minutes; start the stack, then run this again" >&2
    exit 1
fi

psql -X -v ON_ERROR_STOP=1 -q -f "$HERE/reader-role.sql"
# the password from the environment into a psql variable (psql 15's \getenv), so it is
# on no command line
psql -X -v ON_ERROR_STOP=1 -q <<'SQL'
\getenv password GRAFANA_DB_PASSWORD
ALTER ROLE bal_grafana PASSWORD :'password';
SQL
echo "role bal_grafana ready"
