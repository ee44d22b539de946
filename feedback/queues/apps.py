from django.apps import AppConfig


class QueuesConfig(AppConfig):
    name = "feedback.queues"
    label = "queues"
    verbose_name = "Review queues"
