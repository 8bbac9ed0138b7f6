"""A relay as a process of its own for any schema and topic, for tests that kill it (SIGKILL) mid-stream:
``python -m testkit.relay_process SERVICE --schema S --topic T``. The services' relays run as
``python -m services.<service> relay``; this one relays a test's own schema to its own topic."""

from __future__ import annotations

import argparse
import asyncio
import signal

from shared.messaging.relay import OutboxRelay
from shared.ops.logs import configure_logging
from shared.ops.settings import Settings
from shared.store.db import create_pool
from shared.store.migrations import retry_setup
from shared.store.postgres import PostgresEventStore


async def serve_relay(settings: Settings, service: str, *, schema: str, topic: str) -> None:
    """Relay ``schema``'s events to ``topic`` until SIGTERM or SIGINT."""
    configure_logging(settings, service=service, process="relay")
    url = settings.database_url_for(service)
    pool = await retry_setup(lambda: create_pool(url, min_size=1, max_size=2), "relay pool")
    try:
        store = PostgresEventStore(pool, schema)
        await retry_setup(store.setup, "event store")
        relay = OutboxRelay(
            store,
            service=service,
            topic=topic,
            bootstrap_servers=settings.kafka_bootstrap_servers,
            database_url=url,
            kafka_options=settings.kafka_options(),
            max_event_bytes=settings.max_event_bytes,
            max_request_size=settings.kafka_max_request_size,
        )
        await retry_setup(relay.setup, "relay")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await relay.run(stop)
    finally:
        await pool.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m testkit.relay_process", description=__doc__.splitlines()[0])
    parser.add_argument("service", help="the service name the relay reports as")
    parser.add_argument("--schema", required=True, help="the PostgreSQL schema relayed")
    parser.add_argument("--topic", required=True, help="the topic written")
    args = parser.parse_args(argv)
    asyncio.run(serve_relay(Settings(), args.service, schema=args.schema, topic=args.topic))


if __name__ == "__main__":
    main()
