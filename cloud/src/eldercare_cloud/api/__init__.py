"""The HTTP API under /api/v1: thin route modules over the services."""
