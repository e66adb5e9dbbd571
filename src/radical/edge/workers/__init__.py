"""The edge: Celery worker bootstrap, plugin host, announcer, notifier, batch detection."""
