from services.webhooks.api.app import create_app

__all__ = ["create_app"]
