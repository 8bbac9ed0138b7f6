"""Settings of every process, from the environment (and a ``.env`` file when present).

``KAFKA_BOOTSTRAP_SERVERS`` and ``DATABASE_URL`` are read as they are (the local stack prints them);
everything else is ``PIPELINES_*``. A service may have its own database URL (``DEALS_DATABASE_URL``, …),
which wins over ``DATABASE_URL``. A secret may be given as a file instead, ``<VAR>_FILE`` (``shared.ops.secret_files``).
"""

from __future__ import annotations

import base64
import binascii
import json
import ssl
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from shared.ops.secret_files import SecretFilesSource

PIPELINES = ("leads", "deals", "production")  # the services a lead flows through, each with its board and alerts
SERVICES = (*PIPELINES, "directory", "agenda")  # every service: its schema, topic, role and api, relay and projector
# processes (the agenda has a fourth process kind, its notifier)


class SettingsError(ValueError):
    """A setting needed by this process is missing or malformed; the message names it."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PIPELINES_", env_file=".env", extra="ignore")

    kafka_bootstrap_servers: str = Field(
        "127.0.0.1:19092", validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "PIPELINES_KAFKA_BOOTSTRAP_SERVERS")
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: str | None = None
    kafka_partitions: int = Field(6, ge=1)
    # Names of a deployment's schemas and topics: "<schema_prefix><service>", "<topic_prefix>.<service>.events".
    # Tests and parallel demos use prefixes to keep apart on one PostgreSQL and one Kafka.
    schema_prefix: str = Field("", pattern=r"^[a-z0-9_]{0,20}$")
    topic_prefix: str = Field("pipelines", pattern=r"^[a-z0-9_.-]{1,40}$")
    kafka_replication_factor: int = Field(1, ge=1)
    # The largest Kafka record an event may become (its CloudEvent, key and headers): a larger one is refused when
    # it is appended (422). The relay refuses to start unless every topic it writes takes it (max.message.bytes)
    # and so does its producer (kafka_max_request_size). Raise all three together (docs/OPERATIONS.md).
    max_event_bytes: int = Field(1_000_000, ge=16_384, le=100 * 1024 * 1024)
    kafka_max_request_size: int = Field(1_048_576, ge=16_384, le=200 * 1024 * 1024)

    database_url: str | None = Field(None, validation_alias=AliasChoices("DATABASE_URL", "PIPELINES_DATABASE_URL"))
    leads_database_url: str | None = Field(None, validation_alias=AliasChoices("LEADS_DATABASE_URL"))
    deals_database_url: str | None = Field(None, validation_alias=AliasChoices("DEALS_DATABASE_URL"))
    production_database_url: str | None = Field(None, validation_alias=AliasChoices("PRODUCTION_DATABASE_URL"))
    directory_database_url: str | None = Field(None, validation_alias=AliasChoices("DIRECTORY_DATABASE_URL"))
    agenda_database_url: str | None = Field(None, validation_alias=AliasChoices("AGENDA_DATABASE_URL"))
    webhooks_database_url: str | None = Field(None, validation_alias=AliasChoices("WEBHOOKS_DATABASE_URL"))
    signin_database_url: str | None = Field(None, validation_alias=AliasChoices("SIGNIN_DATABASE_URL"))
    db_pool_size: int = Field(10, ge=1)

    # API tokens are EdDSA (Ed25519) JWTs naming their key id in the `kid` header (shared/edge/keys.py, decision 0022).
    # The private keys: JSON object of key id -> base64url of the 32-byte seed, held by the sign-in service and an
    # operator's `pipelines token` only; new tokens are signed with the active key id (optional with one key).
    jwt_signing_keys: dict[str, SecretStr] = Field(default_factory=dict)
    jwt_active_kid: str | None = Field(None, max_length=64)
    # what every other process verifies with: a JWKS document of public keys, and/or the URL it is (re)read from
    # (at start, on an unknown key id at most once per 10 s, and every jwks_refresh_s); the keys are their union
    jwt_public_keys: str | None = Field(None, max_length=65_536)
    jwks_url: str | None = Field(None, max_length=500, pattern=r"^https?://[^\s]+$")
    jwks_refresh_s: float = Field(300.0, ge=1, le=86_400)
    jwt_issuer: str = "pipelines"
    jwt_audience: str = "pipelines"
    # the longest a token may live (exp - iat, and exp from now): a longer one is refused; the revocations topic
    # keeps its messages this long (shared/edge/revocation.py)
    jwt_max_lifetime_s: int = Field(24 * 3600, ge=60, le=30 * 86400)

    pii_master_key: SecretStr | None = None  # base64 of 32 random bytes
    # the master key being replaced, during the one rotation that re-wraps every subject key under the new one
    pii_previous_master_key: SecretStr | None = None
    # the epoch keyring (shared/privacy/keyring.py): a directory on a volume of its own, the same for every process of a
    # deployment, never backed up; without it no personal data can be read (decision 0015)
    keyring_dir: str | None = None
    # an erased person's data is unreadable in every copy (WAL, backups, replicas) at most this long after the
    # erasure: the wrapping keys are rotated every half of it (decision 0015)
    erasure_window_hours: float = Field(24.0, gt=0, le=24 * 90)

    # lead sources' webhook credentials (a webhook without its credential answers 503)
    website_form_secret: SecretStr | None = None
    ladipage_token: SecretStr | None = None
    facebook_app_secret: SecretStr | None = None
    facebook_verify_token: SecretStr | None = None
    facebook_access_token: SecretStr | None = None
    # where the Graph API answers (a Facebook webhook carries only ids; the lead's fields are fetched there): the
    # local runner points it at its Graph stub (tools/graph_stub.py), a deployment leaves Facebook's
    facebook_graph_url: str = Field("https://graph.facebook.com", max_length=500, pattern=r"^https?://[^\s]+$")
    google_ads_webhook_key: SecretStr | None = None
    pii_schema: str = "pii"

    api_host: str = "127.0.0.1"
    # a request body larger than this answers 413 before it is read further (every API)
    max_body_bytes: int = Field(1024 * 1024, ge=1024)
    # requests an API process handles at once; past it 503 busy with Retry-After (shared.edge.overload, decision 0032);
    # none: 4 × PIPELINES_DB_POOL_SIZE, within 8–1000
    max_in_flight: int | None = Field(None, ge=1, le=10_000)
    # `python -m services.<svc> api` starts this many worker processes serving the same port (SO_REUSEPORT;
    # shared.edge.workers, decision 0032): a process needing more than one core on one host. Kubernetes: keep 1, scale
    # by replicas
    api_workers: int = Field(1, ge=1, le=16)
    # a request line and headers larger than this, or more header fields, answer 431 and close the connection
    # (every HTTP server: the APIs, the web board, the relay's and projector's ops port; shared.edge.httpserver)
    max_header_bytes: int = Field(32 * 1024, ge=4096, le=1024 * 1024)
    max_headers: int = Field(100, ge=10, le=1000)
    # records a projector process keeps decoded for its other projections reading the same topic (one decode per
    # record per process; shared.messaging.decoded, decision 0034); 0: each projection decodes every record itself.
    # Memory: about 6 KB a deals record kept, so up to ~190 MB at 30,000 in a catch-up (live: next to nothing)
    projection_decode_window: int = Field(30_000, ge=0, le=300_000)
    # relay and projector processes serve /healthz, /readyz and /metrics on this port (none when unset)
    ops_port: int | None = Field(None, ge=1, le=65535)
    leads_port: int = Field(8101, ge=1, le=65535)
    deals_port: int = Field(8102, ge=1, le=65535)
    production_port: int = Field(8103, ge=1, le=65535)
    directory_port: int = Field(8104, ge=1, le=65535)
    agenda_port: int = Field(8105, ge=1, le=65535)
    signin_port: int = Field(8107, ge=1, le=65535)  # the sign-in service (decision 0022)
    webhooks_port: int = Field(8108, ge=1, le=65535)  # the webhooks' API (decision 0026)
    web_port: int = Field(8100, ge=1, le=65535)
    # where the web board reaches each API (default: this host's API ports); it calls them with the user's token
    leads_api_url: str | None = None
    deals_api_url: str | None = None
    production_api_url: str | None = None
    directory_api_url: str | None = None
    agenda_api_url: str | None = None
    # where subscribers fetch the event schemas: each event's `dataschema` is <this>/events/<service>/<Type>.v<N>.json,
    # served by every API under /schemas (decision 0024); default: the publishing service's own API url + /schemas
    schema_base_url: str | None = Field(None, max_length=200, pattern=r"^https?://[^\s?#]+[^\s?#/]$")
    # where the board and the APIs reach the sign-in service (default: this host's signin port)
    signin_url: str | None = Field(None, max_length=500, pattern=r"^https?://[^\s]+$")
    # the sign-in service (decision 0022): this many failed passwords for one email within PIPELINES_SIGNIN_LOCK_S
    # lock it for that long (423); more than PIPELINES_SIGNIN_RATE attempts from one client address in a minute: 429
    signin_max_failures: int = Field(5, ge=1, le=100)
    signin_lock_s: int = Field(900, ge=10, le=7 * 86400)
    signin_rate: int = Field(20, ge=1, le=10_000)
    # the addresses or networks (CIDR, comma-separated: the board's) whose X-Forwarded-For (its first value) the
    # sign-in service takes as the client's address
    signin_trusted_proxies: str = Field("127.0.0.1,::1", max_length=2000)
    # a session's API tokens live PIPELINES_SESSION_TOKEN_S; the session ends after PIPELINES_SESSION_IDLE_S without
    # a token asked, and PIPELINES_SESSION_ABSOLUTE_S after it started whatever happens
    session_token_s: int = Field(300, ge=30, le=3600)
    session_idle_s: int = Field(1800, ge=60, le=7 * 86400)
    session_absolute_s: int = Field(43_200, ge=300, le=30 * 86400)
    # sign-in with OpenID Connect (services/signin/oidc.py): off while PIPELINES_OIDC_ISSUER is unset. The provider's
    # issuer (https; http only on loopback), this service's client there, the board's /login/oidc/callback as
    # registered with it, and how its person becomes a directory user: `email` (verified emails only) or `subject`
    # (the directory user id is the provider's `sub`)
    oidc_issuer: str | None = Field(None, max_length=500, pattern=r"^https?://[^\s]+$")
    oidc_client_id: str | None = Field(None, min_length=1, max_length=255)
    oidc_client_secret: SecretStr | None = Field(None, max_length=1024)
    oidc_redirect_url: str | None = Field(None, max_length=500, pattern=r"^https?://[^\s]+$")
    oidc_match: Literal["email", "subject"] = "email"
    # the board's address as people open it: the link in each reminder the agenda's notifier sends
    board_url: str = "http://127.0.0.1:8100"

    # the SMTP server the agenda's notifier sends reminders through (decision 0020): STARTTLS on a submission port
    # and AUTH when a username is set. Unset host: the notifier refuses to start, nothing else needs it
    smtp_host: str | None = None
    smtp_port: int = Field(587, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = True
    smtp_from: str = Field("Pipelines <no-reply@pipelines.invalid>", min_length=3, max_length=320)
    smtp_ca_file: str | None = None  # the CA to trust for STARTTLS (None: the system's); tests name their own
    smtp_connections: int = Field(4, ge=1, le=64)  # kept open and reused by the notifier
    reminder_lead_minutes: int = Field(15, ge=0, le=24 * 60)  # an activity's reminder goes this long before it is due
    notifier_poll_seconds: float = Field(15.0, gt=0)
    notifier_max_attempts: int = Field(5, ge=1, le=50)  # sends of one reminder before it is given up
    notifier_lease_seconds: float = Field(60.0, gt=0)  # a claim's hold: longer than one SMTP send may take

    # signed webhooks (decision 0026): addresses a subscription URL may resolve to besides public ones (CIDRs and host
    # names, comma-separated; empty: none); retries (exponential backoff with full jitter between 0 and
    # base·2^(n−1), capped) and how many tries dead-letter a delivery; how many failed attempts in a row disable a
    # subscription; one attempt's timeout; deliveries in flight per dispatcher; where a new consumer group starts
    webhooks_allow: str = Field("", max_length=4000)
    webhooks_max_attempts: int = Field(8, ge=1, le=100)
    webhooks_backoff_base_s: float = Field(1.0, gt=0, le=3600)
    webhooks_backoff_cap_s: float = Field(3600.0, gt=0, le=7 * 86400)
    webhooks_disable_after: int = Field(50, ge=1, le=100_000)
    webhooks_timeout_s: float = Field(10.0, gt=0, le=60)
    webhooks_concurrency: int = Field(64, ge=1, le=1000)
    webhooks_poll_s: float = Field(0.5, gt=0, le=60)
    webhooks_start: Literal["earliest", "latest"] = "latest"
    webhooks_keep_days: float = Field(7.0, gt=0, le=3650)  # delivered and skipped deliveries (with attempts) kept
    # after a secret's rotation, deliveries are signed with the new and the previous secret this long (0: none), then
    # the previous one is dropped
    webhooks_rotation_overlap_s: float = Field(86400.0, ge=0, le=7 * 86400)

    # the users and teams a command or filter names are checked against the service's replica of the directory
    # (decision 0017): 422 for an unknown one. Off only for suites that run no directory (testkit.services)
    check_references: bool = True
    timezone: str = "Asia/Ho_Chi_Minh"
    # a fact back-dated (X-Occurred-At) further than this into the past needs the admin or the importer role (403
    # otherwise): decision 0021
    backdate_limit_days: int = Field(7, ge=0, le=36500)
    # the directory's import job (POST /imports, decision 0021): an upload larger than this answers 413 and nothing
    # of it is kept; uploads, checkpoints and reports are kept in the spool directory (default: the system's
    # temporary directory's pipelines-imports) until the job ends (the report: until the directory restarts)
    import_max_bytes: int = Field(200 * 1024 * 1024, ge=1024, le=100 * 1024 * 1024 * 1024)
    import_spool_dir: str | None = None
    lead_response_minutes: int = Field(60, ge=1, description="a new lead not contacted by then raises an alert")
    alert_scan_seconds: float = Field(30.0, gt=0)
    log_level: str = "INFO"
    log_json: bool = True

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """``<VAR>_FILE`` beside the environment (shared.ops.secret_files); both set is refused there."""
        secret_files = SecretFilesSource(settings_cls)
        return init_settings, secret_files, env_settings, dotenv_settings, file_secret_settings

    @field_validator("jwt_signing_keys", mode="before")
    @classmethod
    def _parse_keys(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                value = json.loads(value) if value.strip() else {}
            except json.JSONDecodeError as exc:
                raise ValueError(
                    "PIPELINES_JWT_SIGNING_KEYS must be a JSON object of key id to base64url seed"
                ) from exc
        return value

    def database_url_for(self, service: str) -> str:
        url = getattr(self, f"{service}_database_url", None) or self.database_url
        if not url:
            raise SettingsError(f"no database: set {service.upper()}_DATABASE_URL or DATABASE_URL")
        return url

    def port(self, service: str) -> int:
        return int(getattr(self, f"{service}_port"))

    def api_url(self, service: str) -> str:
        url = getattr(self, f"{service}_api_url", None) or f"http://{self.api_host}:{self.port(service)}"
        return str(url).rstrip("/")

    def schema_base_for(self, service: str) -> str:
        """The base of the ``dataschema`` URIs the service's relay writes (``PIPELINES_SCHEMA_BASE_URL``, or the
        service's API's ``/schemas``)."""
        base = self.schema_base_url or f"{self.api_url(service)}/schemas"
        if len(base) > 200:  # the event size check counts a base this long at most (shared.store.wire)
            raise SettingsError(f"PIPELINES_SCHEMA_BASE_URL must be at most 200 characters (the default is {base!r})")
        return base

    def signin_base_url(self) -> str:
        """Where the sign-in service answers: ``PIPELINES_SIGNIN_URL``, or this host's ``PIPELINES_SIGNIN_PORT``."""
        return (self.signin_url or f"http://{self.api_host}:{self.signin_port}").rstrip("/")

    def schema_name(self, service: str) -> str:
        return f"{self.schema_prefix}{service}"

    def events_topic(self, service: str) -> str:
        return f"{self.topic_prefix}.{service}.events"

    def alerts_topic(self) -> str:
        return f"{self.topic_prefix}.alerts"

    def dead_letter_topic(self, service: str) -> str:
        return f"{self.topic_prefix}.{service}.dlq"

    def master_key(self) -> bytes:
        if self.pii_master_key is None:
            raise SettingsError("PIPELINES_PII_MASTER_KEY is not set (base64 of 32 random bytes)")
        try:
            key = base64.b64decode(self.pii_master_key.get_secret_value(), validate=True)
        except binascii.Error as exc:
            raise SettingsError("PIPELINES_PII_MASTER_KEY is not valid base64") from exc
        if len(key) != 32:
            raise SettingsError(f"PIPELINES_PII_MASTER_KEY must decode to 32 bytes, not {len(key)}")
        return key

    def previous_master_keys(self) -> list[bytes]:
        """The master key being replaced (PIPELINES_PII_PREVIOUS_MASTER_KEY), if any: it still opens until the next
        rotation has re-wrapped everything under the new one."""
        if self.pii_previous_master_key is None or not self.pii_previous_master_key.get_secret_value():
            return []
        return [_key32(self.pii_previous_master_key, "PIPELINES_PII_PREVIOUS_MASTER_KEY")]

    def keyring_directory(self) -> str:
        if not self.keyring_dir:
            raise SettingsError(
                "PIPELINES_KEYRING_DIR is not set: the directory of the epoch keyring, on a volume every process of "
                "the deployment shares and no backup holds (decision 0015)"
            )
        return self.keyring_dir

    def kafka_options(self) -> dict[str, Any]:
        """Security options for every aiokafka client of this process."""
        options: dict[str, Any] = {"security_protocol": self.kafka_security_protocol}
        if self.kafka_security_protocol.startswith("SASL"):
            if not (self.kafka_sasl_mechanism and self.kafka_sasl_username and self.kafka_sasl_password):
                raise SettingsError(
                    "SASL needs PIPELINES_KAFKA_SASL_MECHANISM, PIPELINES_KAFKA_SASL_USERNAME and "
                    "PIPELINES_KAFKA_SASL_PASSWORD"
                )
            options |= {
                "sasl_mechanism": self.kafka_sasl_mechanism,
                "sasl_plain_username": self.kafka_sasl_username,
                "sasl_plain_password": self.kafka_sasl_password.get_secret_value(),
            }
        if self.kafka_security_protocol in ("SSL", "SASL_SSL"):
            options["ssl_context"] = ssl.create_default_context(cafile=self.kafka_ssl_cafile)
        return options


def _key32(value: SecretStr, name: str) -> bytes:
    try:
        key = base64.b64decode(value.get_secret_value(), validate=True)
    except binascii.Error as exc:
        raise SettingsError(f"{name} is not valid base64") from exc
    if len(key) != 32:
        raise SettingsError(f"{name} must decode to 32 bytes, not {len(key)}")
    return key
