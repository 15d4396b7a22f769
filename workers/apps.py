from django.apps import AppConfig


class WorkersConfig(AppConfig):
    """Installed so that the configured Celery app is the current app in every process (the web
    enqueues tasks by name with it) and so that commands joining the platform and the model
    (`export_release`, `train_model`, ...) are `manage.py` commands. Importing this app loads Celery,
    never torch or `realqa_model`: the model side is imported inside the tasks and commands only."""

    name = "workers"
    label = "workers"
