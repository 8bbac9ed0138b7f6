-- One role per service: it owns its schema (events, outbox progress, read models) and nothing else.
-- The personal-data key schema is shared (one erasure reaches every service): its own owner, usage granted.
CREATE ROLE leads LOGIN PASSWORD :'leads_password';
CREATE ROLE deals LOGIN PASSWORD :'deals_password';
CREATE ROLE production LOGIN PASSWORD :'production_password';
CREATE ROLE directory LOGIN PASSWORD :'directory_password';
CREATE ROLE agenda LOGIN PASSWORD :'agenda_password';
-- the sign-in service (decision 0022): its own schema only (credentials, sessions, resets); no personal-data keys
CREATE ROLE signin LOGIN PASSWORD :'signin_password';
-- the webhooks (decision 0026): its own schema only (subscriptions, deliveries, attempts); no personal-data keys
CREATE ROLE webhooks LOGIN PASSWORD :'webhooks_password';
CREATE ROLE pii_owner NOLOGIN;
CREATE SCHEMA leads AUTHORIZATION leads;
CREATE SCHEMA deals AUTHORIZATION deals;
CREATE SCHEMA production AUTHORIZATION production;
CREATE SCHEMA directory AUTHORIZATION directory;
CREATE SCHEMA agenda AUTHORIZATION agenda;
CREATE SCHEMA signin AUTHORIZATION signin;
CREATE SCHEMA webhooks AUTHORIZATION webhooks;
CREATE SCHEMA pii AUTHORIZATION pii_owner;
GRANT USAGE, CREATE ON SCHEMA pii TO leads, deals, production, directory, agenda;
ALTER DEFAULT PRIVILEGES FOR ROLE pii_owner IN SCHEMA pii GRANT SELECT, INSERT, DELETE ON TABLES TO leads, deals, production, directory, agenda;
-- its tables are made here, owned by pii_owner (as shared.store.keystore makes them; its CREATE ... IF NOT EXISTS is then
-- a no-op): made by the first service to start, they would be that service's and the others could not use them.
-- So is its schema_migrations (as shared.store.migrations makes it), where the first service records the key store's
-- migration. (A database set up before migrations existed: run these CREATE TABLE pii.schema_migrations lines,
-- as pii_owner, before the upgraded services start.)
SET ROLE pii_owner;
CREATE TABLE pii.schema_migrations (
    version    text PRIMARY KEY,
    name       text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE pii.subject_keys (
    subject_id text PRIMARY KEY,
    wrapped_key bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    epoch integer NOT NULL DEFAULT 0);
CREATE TABLE pii.erasures (
    subject_id text PRIMARY KEY,
    erased_at timestamptz NOT NULL DEFAULT now(),
    reason text NOT NULL DEFAULT '');
-- the wrapping epochs (shared/store/keystore.py, migration keystore.0002; decision 0015). A database set up before them:
-- run from here to RESET ROLE (as pii_owner), with the ALTER TABLE below instead of the epoch column above.
--   ALTER TABLE pii.subject_keys ADD COLUMN epoch integer NOT NULL DEFAULT 0;
CREATE TABLE pii.keyring_state (
    one            boolean PRIMARY KEY DEFAULT true CHECK (one),
    store_id       uuid NOT NULL DEFAULT gen_random_uuid(),
    epoch          integer NOT NULL,
    fingerprint    text,
    rotated_at     timestamptz NOT NULL DEFAULT now(),
    rotating_since timestamptz);
-- its one row (the migration adds it when missing): the store's identity, which names its keyring file
INSERT INTO pii.keyring_state (epoch, rotated_at)
    SELECT 1, CASE WHEN EXISTS (SELECT FROM pii.subject_keys) THEN 'epoch'::timestamptz ELSE now() END;
CREATE FUNCTION pii.subject_key_epoch_guard() RETURNS trigger LANGUAGE plpgsql AS $f$
DECLARE
    store_epoch integer;
BEGIN
    PERFORM pg_advisory_xact_lock_shared(hashtext('pipelines.keyring'), hashtext(TG_TABLE_SCHEMA));
    SELECT epoch INTO store_epoch FROM pii.keyring_state;
    IF store_epoch IS NULL OR NEW.epoch <> store_epoch THEN
        RAISE EXCEPTION 'a subject key wrapped under epoch % while the key store is at epoch %',
            NEW.epoch, store_epoch USING ERRCODE = 'PK001';
    END IF;
    RETURN NEW;
END $f$;
CREATE TRIGGER subject_keys_epoch_guard BEFORE INSERT ON pii.subject_keys
    FOR EACH ROW EXECUTE FUNCTION pii.subject_key_epoch_guard();
-- the elected rotator (any service's relay process) re-wraps keys and moves the epoch
GRANT UPDATE ON pii.subject_keys, pii.keyring_state TO leads, deals, production, directory, agenda;
RESET ROLE;
-- read models are schemas named <service>__<projection>__g<N>: each service creates its own
-- (run with: psql -v ON_ERROR_STOP=1 -v leads_password=… -v deals_password=… -v production_password=… -v directory_password=… -v agenda_password=… -v signin_password=… -v webhooks_password=… -d <database> -f roles.sql)
GRANT CREATE ON DATABASE :"DBNAME" TO leads, deals, production, directory, agenda, signin, webhooks;  -- the database psql is connected to
