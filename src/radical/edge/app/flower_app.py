"""Module-level Celery app for `celery -A radical.edge.app.flower_app flower`."""
from ..settings import get_settings
from .celery_app import make_celery

app = make_celery(get_settings())
