-- bal_grafana: the role Grafana's PostgreSQL data source logs in as
-- (deploy/grafana/provisioning/datasources/bal.yaml). Grafana runs whatever SQL its
-- editors type, and the BAL's own role may rewrite readings and the Merkle log, so
-- Grafana gets a role that can only read, and only what the producer data dashboard
-- shows: never users, keys, payloads or the log's nodes. Read-only sessions and a
-- statement timeout keep a careless query from holding the store.
--
-- Plain SQL, idempotent, run by the one-shot compose service grafana-db-reader
-- (reader-role.sh, which also sets the password) once the BAL has made its schema, and
-- by tests/integration/test_grafana_metrics.py before it runs the dashboard's queries
-- as this role. A new panel that reads another table needs it granted here.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'bal_grafana') THEN
        CREATE ROLE bal_grafana LOGIN;
    END IF;
END
$$;
ALTER ROLE bal_grafana SET default_transaction_read_only = on;
ALTER ROLE bal_grafana SET statement_timeout = '30s';
GRANT USAGE ON SCHEMA public TO bal_grafana;
-- readings through its parent table: the day partitions need no grant of their own
GRANT SELECT ON device_hours, device_last, readings, rejections, setpoints TO bal_grafana;
