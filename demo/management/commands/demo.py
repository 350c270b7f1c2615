"""`python manage.py demo`: the whole product on its embedded defaults, in one terminal.

manage.py has already started (or attached to) the embedded PostgreSQL and Redis (core/embedded.py). This
command then migrates, loads the synthetic demo shop unless it is there, (re)sets the `admin` password,
makes sure there is a demo API key, starts web + worker + beat, prints the URLs and credentials, streams
their logs, and on Ctrl-C stops them all, and the embedded servers if this command started them."""

from __future__ import annotations

import os
import secrets
import socket
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from core import embedded
from core.models import ApiKey, api_key_hash
from demo.management.commands.seed_demo import (
    DEFAULT_ITEMS,
    DEFAULT_SEED,
    DEFAULT_USERS,
    seed_shop,
    shop_from_options,
)
from demo.shop import demo_shop_is_loaded
from demo.supervisor import Supervisor
from recsys_project.celery import QUEUES as CELERY_QUEUES

ADMIN_USERNAME = "admin"
DEMO_KEY_NAME = "demo"
DEMO_KEY_FILE = "demo_api_key"
WARMUP_MARKER = "demo_warmed_up"
READY_TIMEOUT_SECONDS = 120
QUEUES = ",".join(CELERY_QUEUES)


def admin_password_reset() -> str:
    """Create the `admin` superuser, or give the existing one a new random password: the printed password
    always works, and no fixed password ever exists."""
    user_model = get_user_model()
    user, _ = user_model.objects.get_or_create(
        username=ADMIN_USERNAME, defaults={"email": "admin@example.com"}
    )
    password = secrets.token_urlsafe(12)
    user.is_staff = user.is_superuser = user.is_active = True
    user.set_password(password)
    user.save()
    return password


def demo_api_key_ensure(*, data_dir: Path) -> str:
    """The demo's API key: reused across runs while it is still active (kept in the data dir, never in the
    repository, readable by the owner only), so curl commands from an earlier run keep working."""
    path = data_dir / DEMO_KEY_FILE
    if path.exists():
        raw = path.read_text().strip()
        if ApiKey.objects.filter(key_hash=api_key_hash(raw), is_active=True).exists():
            return raw
    _key, raw = ApiKey.generate(name=DEMO_KEY_NAME)
    path.write_text(raw + "\n")
    path.chmod(0o600)
    return raw


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


class Command(BaseCommand):
    help = "Run the demo: migrate, load the demo shop, start web + worker + beat; Ctrl-C stops everything."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1", help="web address (127.0.0.1)")
        parser.add_argument("--port", type=int, default=8000, help="web port (8000)")
        parser.add_argument(
            "--items", type=int, default=DEFAULT_ITEMS, help=f"demo catalog ({DEFAULT_ITEMS})"
        )
        parser.add_argument(
            "--users", type=int, default=DEFAULT_USERS, help=f"demo shoppers ({DEFAULT_USERS})"
        )
        parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"demo seed ({DEFAULT_SEED})")
        parser.add_argument("--concurrency", type=int, default=2, help="worker processes (2)")

    def handle(self, *args, host, port, items, users, seed, concurrency, **options):
        self.started = time.monotonic()
        if not 1 <= port <= 65535:
            raise CommandError("--port must be between 1 and 65535.")
        if concurrency < 1:
            raise CommandError("--concurrency must be at least 1.")
        if not port_is_free(host, port):
            raise CommandError(f"Port {port} on {host} is in use (another demo?). Stop it, or pass --port.")
        shop = shop_from_options(items=items, users=users, seed=seed)

        try:
            password, api_key = self.prepare(shop=shop, items=items, users=users)
        except KeyboardInterrupt:
            # Ctrl-C while migrating or loading: nothing half-written stays wrong (each batch commits, a
            # re-run resumes), but do not leave behind the servers this command started.
            self.stdout.write("\ninterrupted")
            self.stop_embedded(say=self.stdout.write)
            sys.exit(130)
        # The children open their own connections; ours would only sit idle (and block a clean stop).
        connections.close_all()

        supervisor = Supervisor(cwd=Path(settings.BASE_DIR), env=self.child_env())
        python = sys.executable
        supervisor.add("web", [python, "manage.py", "runserver", f"{host}:{port}", "--noreload"])
        supervisor.add(
            "worker",
            [python, "-m", "celery", "-A", "recsys_project", "worker", "-Q", QUEUES, "-c", str(concurrency)]
            + ["-l", "INFO", "-n", f"demo-{os.getpid()}@%h"],
        )
        schedule = settings.RECSYS_DATA_DIR / "celerybeat-schedule"
        supervisor.add(
            "beat",
            [python, "-m", "celery", "-A", "recsys_project", "beat", "-l", "INFO", "-s", str(schedule)],
        )
        supervisor.install_signal_handlers()
        supervisor.start()
        base = f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{port}"

        def ready():
            if self.wait_for_web(base, supervisor):
                self.print_banner(
                    supervisor, base=base, password=password, api_key=api_key, items=items, users=users
                )

        code = supervisor.run_until_stopped(ready=ready)
        self.stop_embedded(say=supervisor.say)
        if code:
            sys.exit(code)

    def prepare(self, *, shop, items: int, users: int) -> tuple[str, str]:
        """Migrate, load the demo shop unless it is there, and return (admin password, API key)."""
        self.stdout.write("== migrating the database")
        call_command("migrate", interactive=False, verbosity=1)
        if demo_shop_is_loaded(shop=shop):
            self.stdout.write(f"== the demo shop ({items} items, {users} shoppers) is already loaded")
        else:
            self.stdout.write(f"== loading the synthetic demo shop ({items} items, {users} shoppers)")
            started = time.monotonic()
            seed_shop(shop, stdout=self.stdout)
            self.stdout.write(f"   in {time.monotonic() - started:.0f} s")
        self.warm_up(items=items, users=users, seed=shop.seed)
        return admin_password_reset(), demo_api_key_ensure(data_dir=settings.RECSYS_DATA_DIR)

    def warm_up(self, *, items: int, users: int, seed: int) -> None:
        """Once per loaded shop (a marker in the data dir): embed, trending, simulated traffic through the
        serving path, rollups and an evaluation run (`demo_warmup`), so that the lists and reports are
        populated when the URLs are printed. Later runs only refresh trending (by name: no import of the
        layers above)."""
        marker = settings.RECSYS_DATA_DIR / WARMUP_MARKER
        key = f"{items}:{users}:{seed}"
        if marker.exists() and marker.read_text().strip() == key:
            return
        started = time.monotonic()
        call_command("demo_warmup", items=items, users=users, seed=seed, stdout=self.stdout)
        marker.write_text(key + "\n")
        self.stdout.write(f"== the demo shop is warmed up, in {time.monotonic() - started:.0f} s")
        self.first_training_queue()

    def first_training_queue(self) -> None:
        """Queue the first training run (the towers, then the ranker, each through its gate) for the worker,
        as beat would at its weekly slot: until then a new shop is served by single retrieval, which scores
        a third of the ranked path on the demo shop (docs/benchmarks.md, "Round 4, demo shop"). It runs in
        the background after the banner; a stop mid-run is safe (the version stays `training`, never
        served)."""
        from training.tasks import two_tower_train_maintenance_task

        try:
            two_tower_train_maintenance_task.delay()
        except Exception as exc:  # noqa: BLE001 - the demo runs without it; beat retrains on schedule
            self.stdout.write(f"== could not queue the first training run ({exc}); beat retrains weekly")
            return
        self.stdout.write(
            "== queued the first training run (towers, then the ranker): the worker trains in the background, "
            "and the ranked lists are served once it is promoted (a few minutes)"
        )

    def child_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "DEBUG": "1",  # the demo is a development instance: runserver serves the admin's static files
                "RECSYS_DATA_DIR": str(settings.RECSYS_DATA_DIR),
                # Exactly the Redis this process found (local or the embedded one it may have started).
                "REDIS_URL": settings.REDIS_URL,
                "PYTHONUNBUFFERED": "1",
                "HF_HUB_OFFLINE": "1",
                "TOKENIZERS_PARALLELISM": "false",
            }
        )
        env.pop("DJANGO_SETTINGS_MODULE", None)  # the children use the real settings
        return env

    def wait_for_web(self, base: str, supervisor: Supervisor) -> bool:
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=2) as answer:
                    if answer.status == 200:
                        return True
            except (urllib.error.URLError, OSError):
                pass
            if supervisor.wait(0.5):
                return False
        supervisor.say(f"web did not answer {base}/healthz within {READY_TIMEOUT_SECONDS} s")
        return False

    def print_banner(self, supervisor: Supervisor, *, base, password, api_key, items, users) -> None:
        lines = [
            "",
            "=" * 78,
            f"recsys demo is running, on a SYNTHETIC demo shop ({items} items, {users} shoppers), "
            f"{time.monotonic() - self.started:.0f} s after this command started.",
            f"  Storefront   {base}/",
            f"  Reports      {base}/reports/   (staff: the admin login)",
            f"  Admin        {base}/admin/     user: {ADMIN_USERNAME}   password: {password}",
            f"  API docs     {base}/api/docs/",
            f"  Health       {base}/healthz",
            f"  API key      {api_key}",
            f'  Try          curl -H "Authorization: Api-Key {api_key}" {base}/api/v1/items/demo-000001',
            "Ctrl-C stops web, worker and beat" + self.embedded_stopped_words() + ".",
            "=" * 78,
            "",
        ]
        for line in lines:
            supervisor.say(line)

    @staticmethod
    def embedded_stopped_words() -> str:
        """What Ctrl-C stops besides the children: the embedded servers this command started, not one it
        found running (another process's, or a REDIS_URL server)."""
        started = [
            name
            for key, name in (("postgres", "PostgreSQL"), ("redis", "Redis"))
            if key in embedded.started_here
        ]
        return f" and the embedded {' and '.join(started)} this demo started" if started else ""

    def stop_embedded(self, *, say) -> None:
        connections.close_all()
        if "postgres" in embedded.started_here and embedded.embedded_postgres_stop():
            say("stopped the embedded PostgreSQL")
        if "redis" in embedded.started_here and embedded.embedded_redis_stop():
            say("stopped the embedded Redis")
