from django.apps import AppConfig


class TagsConfig(AppConfig):
    name = "executions.tags"
    label = "tags"
    verbose_name = "Execution tags"
