#!/bin/sh
# The official postgres image runs this once, at the database's first start (/docker-entrypoint-initdb.d): each
# service's role and schema (roles.sql) with the passwords compose gives; the services connect as those roles.
set -eu
psql -X -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v leads_password="$LEADS_DB_PASSWORD" \
  -v deals_password="$DEALS_DB_PASSWORD" \
  -v production_password="$PRODUCTION_DB_PASSWORD" \
  -v directory_password="$DIRECTORY_DB_PASSWORD" \
  -v agenda_password="$AGENDA_DB_PASSWORD" \
  -v signin_password="$SIGNIN_DB_PASSWORD" \
  -v webhooks_password="$WEBHOOKS_DB_PASSWORD" \
  -f /pipelines/roles.sql
