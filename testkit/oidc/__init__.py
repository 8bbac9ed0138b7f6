"""A real OpenID Provider for the tests and the demo: npm ``oidc-provider`` run by Node, configured by provider.mjs.

``install()`` puts the package (package.json and package-lock.json beside this file, ``npm ci``) in the ignored cache
(``<cache>/oidc-provider-<lock hash>``, as ``scripts/stack setup`` does): the network once, offline after that.
``OidcProvider(directory, redirect_uris, accounts).start()`` runs it on a free port of 127.0.0.1 with one client
(``pipelines``, a secret, those redirect URLs) and returns once its discovery document answers; ``add_account``
adds a user while it runs; ``stop()`` ends it. ``sign_in(url, login)`` is a person at its pages: it
follows an authorize URL through the provider's login and consent forms (plain HTTP, no browser) and returns the
redirect back to the client, ``?code=…&state=…``. ``python -m testkit.oidc`` installs the package and says where;
``python -m testkit.oidc serve --account SUB:EMAIL`` runs one by hand for a board to try (``main``).
"""

from __future__ import annotations

import html
import json
import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin

import httpx

from shared.ops import npm
from shared.ops.stack import free_port

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CLIENT_ID, CLIENT_SECRET = "pipelines", "oidc-test-secret"


def cache_dir() -> Path:
    """Where the package is installed: named by the lock file's hash, so a new lock installs anew."""
    return npm.cache_dir(HERE, "oidc-provider")


def install() -> Path:
    """``npm ci`` into the cache unless already there (shared.ops.npm)."""
    return npm.install(HERE, "oidc-provider")


@dataclass
class Account:
    """One of the provider's users; its login on the provider's page is ``sub``."""

    sub: str
    email: str
    email_verified: bool = True
    name: str = ""


@dataclass
class OidcProvider:
    """The provider process, as a test or the demo drives it."""

    directory: Path
    redirect_uris: list[str]
    accounts: list[Account] = field(default_factory=list)
    port: int = 0
    client_id: str = CLIENT_ID
    client_secret: str = CLIENT_SECRET
    proc: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.directory / "provider.log"

    def settings(self) -> dict[str, str]:
        """The sign-in service's settings for this provider (PIPELINES_OIDC_*), as environment variables."""
        return {
            "PIPELINES_OIDC_ISSUER": self.issuer,
            "PIPELINES_OIDC_CLIENT_ID": self.client_id,
            "PIPELINES_OIDC_CLIENT_SECRET": self.client_secret,
            "PIPELINES_OIDC_REDIRECT_URL": self.redirect_uris[0],
        }

    def write_config(self) -> Path:
        config = {
            "clients": [
                {"client_id": self.client_id, "client_secret": self.client_secret, "redirect_uris": self.redirect_uris}
            ],
            "accounts": [vars(a) for a in self.accounts],
        }
        path = self.directory / "config.json"
        path.write_text(json.dumps(config))
        path.chmod(0o600)
        return path

    def add_account(self, account: Account) -> Account:
        """A new user of the provider, from its next sign-in on (the running provider reads the file each time)."""
        self.accounts.append(account)
        self.write_config()
        return account

    def restart(self, redirect_uris: list[str] | None = None) -> OidcProvider:
        """Stopped and started on the same port (its sessions and codes are gone), with new redirect URLs if given:
        its clients are read at the start only."""
        self.stop()
        if redirect_uris is not None:
            self.redirect_uris = redirect_uris
        return self.start()

    def start(self, timeout_s: float = 30.0) -> OidcProvider:
        env = os.environ | {
            "OIDC_ISSUER": self.issuer,
            "OIDC_CONFIG": str(self.write_config()),
            "OIDC_PROVIDER_HOME": str(install()),
        }
        log = self.log_file.open("ab")
        self.proc = subprocess.Popen(["node", str(HERE / "provider.mjs")], env=env, stdout=log, stderr=log)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the OpenID Provider exited: {self.log_file.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.issuer}/.well-known/openid-configuration", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise TimeoutError("the OpenID Provider did not answer its discovery document")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def __enter__(self) -> OidcProvider:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ------------------------------------------------------------------------------------- a person at its pages
_FORM = re.compile(r'<form[^>]*action="([^"]+)"[^>]*>(.*?)</form>', re.S)
_HIDDEN = re.compile(r'<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"')


def _form(page: httpx.Response) -> tuple[str, dict[str, str]]:
    found = _FORM.search(page.text)
    if found is None:
        raise AssertionError(f"no form on the provider's page ({page.status_code}): {page.text[:500]}")
    fields = {name: html.unescape(value) for name, value in _HIDDEN.findall(found.group(2))}
    return urljoin(str(page.url), html.unescape(found.group(1))), fields


def sign_in(authorize_url: str, login: str, password: str = "any", *, max_steps: int = 10) -> str:  # noqa: S107
    """Follow ``authorize_url`` through the provider's login and consent pages as ``login``; the redirect that leaves
    the provider (to the client's redirect URL) is returned. An error page of the provider raises AssertionError."""
    origin = authorize_url.split("/", 3)[:3]
    with httpx.Client(follow_redirects=False, timeout=10) as agent:
        response = agent.get(authorize_url)
        for _ in range(max_steps):
            if response.is_redirect:
                target = urljoin(str(response.url), response.headers["location"])
                if target.split("/", 3)[:3] != origin:
                    return target
                response = agent.get(target)
                continue
            if response.status_code != 200:
                raise AssertionError(f"the provider answered {response.status_code}: {response.text[:500]}")
            action, fields = _form(response)
            if fields.get("prompt") == "login":
                fields |= {"login": login, "password": password}
            response = agent.post(action, data=fields)
    raise AssertionError("the provider's pages did not lead back to the client")


def main(argv: list[str] | None = None) -> int:
    """``python -m testkit.oidc``: install the package and say where. ``python -m testkit.oidc serve --account
    SUB:EMAIL …``: run the provider until Ctrl-C for a board to try (its client's redirect URL the board's
    ``/login/oidc/callback`` at ``PIPELINES_BOARD_URL``), printing the sign-in service's settings for it."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m testkit.oidc")
    parser.add_argument("command", nargs="?", choices=["install", "serve"], default="install")
    parser.add_argument("--port", type=int, default=8130)
    parser.add_argument("--board-url", default=os.environ.get("PIPELINES_BOARD_URL", "http://127.0.0.1:8100"))
    parser.add_argument("--account", action="append", default=[], metavar="SUB:EMAIL", help="a person (repeat)")
    parser.add_argument("--dir", type=Path, default=ROOT / ".run" / "oidc-provider")
    args = parser.parse_args(argv)
    if args.command == "install":
        print(install())
        return 0
    accounts = [Account(*a.split(":", 1)) for a in args.account if ":" in a]
    redirect = f"{args.board_url.rstrip('/')}/login/oidc/callback"
    provider = OidcProvider(args.dir, [redirect], accounts, port=args.port).start()
    try:
        for name, value in provider.settings().items():
            print(f"export {name}={value}")
        print(f"# signing in at {provider.issuer}: a login is an account's SUB, any password; Ctrl-C stops it")
        assert provider.proc is not None
        provider.proc.wait()
    except KeyboardInterrupt:
        pass
    finally:
        provider.stop()
    return 0
