from django.apps import AppConfig


class DemoConfig(AppConfig):
    """The demo (top floor): the synthetic shop, its simulated shoppers and `manage.py demo`, which runs the
    whole product in one terminal. Nothing imports it."""

    name = "demo"
