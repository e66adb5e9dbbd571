"""The Celery app plus the wire layer bridge and edges share: Redis names (`keys`), the call
protocol and Celery message (`protocol`), the Celery app (`celery_app`), who is alive
(`topology`), pub/sub and pipelined Redis connections. It imports no other package of
radical.edge but the dependency-free top-level modules (settings, constants, errors)."""
