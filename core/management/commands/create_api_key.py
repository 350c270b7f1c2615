from django.core.management.base import BaseCommand, CommandError

from core.models import ApiKey


class Command(BaseCommand):
    help = "Create an API key for a storefront. The key is printed alone on the last line, once."

    def add_arguments(self, parser):
        parser.add_argument("name", help="a label for the key, e.g. the shop or environment")

    def handle(self, *args, name: str, **options):
        name = name.strip()
        if not name or len(name) > 100:
            raise CommandError("NAME must be 1 to 100 characters.")
        key, raw = ApiKey.generate(name=name)
        self.stdout.write(
            f"Created API key '{key.name}' (prefix {key.prefix}). Store it now; it is not shown again."
        )
        self.stdout.write(raw)
