-- Service roles (cluster-wide, NOLOGIN until `ioc db password ROLE` or the DBA gives them a password).
-- Their privileges are not granted here: `ioc db migrate` re-applies ioc/db/roles.py after every run, so tables
-- added by later migrations are covered too. A role that already exists is left as it is (the DBA may have
-- created it with LOGIN and a password, and the migrating owner then needs no CREATEROLE right).
DO $$
DECLARE
    role_name text;
BEGIN
    FOREACH role_name IN ARRAY ARRAY['ioc_ingest', 'ioc_api', 'ioc_grafana'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = role_name) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN', role_name);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL;  -- created by a concurrent migrate of another database on the same cluster
            END;
        END IF;
    END LOOP;
END
$$;
