from django.apps import AppConfig


class AutomationConfig(AppConfig):
    name = "executions.automation"
    label = "automation"
    verbose_name = "Automation rules"

    def ready(self):
        from . import receivers  # noqa: F401 -- connects the signal receivers
