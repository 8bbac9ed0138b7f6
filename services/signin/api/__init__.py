"""The sign-in service's HTTP API (decision 0022)."""

from services.signin.api.app import create_app

__all__ = ["create_app"]
