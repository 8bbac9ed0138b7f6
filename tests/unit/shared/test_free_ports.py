"""``free_ports``: distinct ports, each free to bind (one ``free_port()`` after another once gave two e2e services
the same port, and the directory's requests reached the leads)."""

from __future__ import annotations

import socket

from shared.ops.stack import free_ports


def test_the_ports_are_distinct_and_each_can_be_bound() -> None:
    ports = free_ports(30)
    assert len(set(ports)) == 30
    for port in ports:
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))
