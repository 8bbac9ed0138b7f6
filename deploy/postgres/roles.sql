-- One role per service: it owns its schema (events, outbox progress, read models) and nothing else.
-- The personal-data key schema is shared (one erasure reaches every service): its own owner, usage granted.
CREATE ROLE leads LOGIN PASSWORD :'leads_password';
CREATE ROLE deals LOGIN PASSWORD :'deals_password';
CREATE ROLE production LOGIN PASSWORD :'production_password';
CREATE ROLE pii_owner NOLOGIN;
CREATE SCHEMA leads AUTHORIZATION leads;
CREATE SCHEMA deals AUTHORIZATION deals;
CREATE SCHEMA production AUTHORIZATION production;
CREATE SCHEMA pii AUTHORIZATION pii_owner;
GRANT USAGE, CREATE ON SCHEMA pii TO leads, deals, production;
ALTER DEFAULT PRIVILEGES FOR ROLE pii_owner IN SCHEMA pii GRANT SELECT, INSERT, DELETE ON TABLES TO leads, deals, production;
-- its tables are made here, owned by pii_owner (as shared.keystore makes them; its CREATE ... IF NOT EXISTS is then
-- a no-op): made by the first service to start, they would be that service's and the others could not use them
SET ROLE pii_owner;
CREATE TABLE pii.subject_keys (
    subject_id text PRIMARY KEY,
    wrapped_key bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE pii.erasures (
    subject_id text PRIMARY KEY,
    erased_at timestamptz NOT NULL DEFAULT now(),
    reason text NOT NULL DEFAULT '');
RESET ROLE;
-- read models are schemas named <service>__<projection>__g<N>: each service creates its own
-- (run with: psql -v ON_ERROR_STOP=1 -v leads_password=… -v deals_password=… -v production_password=… -d <database> -f roles.sql)
GRANT CREATE ON DATABASE :"DBNAME" TO leads, deals, production;  -- the database psql is connected to
