"""python manage.py first_run: admin account, sample images and usable routes (used by make run)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from labeling.services import first_run


class Command(BaseCommand):
    help = "Prepare a fresh installation: first admin, sample images, usable model routes."

    def handle(self, *args, **options):
        account = first_run.admin_ensure()
        owner = get_user_model().objects.get(username=account.username)
        batch = first_run.samples_import(owner=owner)
        if batch is not None:
            self.stdout.write(
                f"Imported {batch.imported} sample images into the project 'samples'."
            )
        routes = first_run.routes_ensure()
        if routes:
            self.stdout.write(f"Model routes ready: {', '.join(routes)}.")
        if account.created:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Admin account created. Username: {account.username}  "
                    f"Password: {account.password}\n"
                    "This password is shown once; "
                    "set CAPTIONDESK_ADMIN_PASSWORD to choose your own."
                )
            )
        else:
            self.stdout.write(f"Log in as {account.username} (existing account).")
