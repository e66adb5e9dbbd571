"""Pieces shared by bridge and edges: Redis names, wire protocol, Celery app, topology."""
