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
-- read models are schemas named <service>__<projection>__g<N>: each service creates its own
GRANT CREATE ON DATABASE pipelines TO leads, deals, production;
