"""The Celery runtime: the app, dispatch by task name, pipeline steps, tasks, the broker transport, the stack."""
