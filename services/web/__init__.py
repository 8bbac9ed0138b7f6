"""The web board for the three pipelines: pages over the APIs, live from the topics (``python -m services.web``)."""
