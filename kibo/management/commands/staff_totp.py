"""Enroll a staff member's authenticator app for the admin's second factor."""

import segno
from django.core.management.base import BaseCommand, CommandError
from django_otp.plugins.otp_totp.models import TOTPDevice

from kibo.models import User


class Command(BaseCommand):
    help = (
        "Give a staff member a new TOTP device for the admin's second factor "
        "(KIBO_STAFF_TWO_FACTOR) and print what their authenticator app scans. Any device "
        "they had is replaced."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")

    def handle(self, *args, username: str, **options):
        staff = User.objects.filter(username=username, is_staff=True).first()
        if staff is None:
            raise CommandError(f"No staff member is called {username!r}.")
        TOTPDevice.objects.filter(user=staff).delete()
        device = TOTPDevice.objects.create(user=staff, name="authenticator", confirmed=True)
        url = device.config_url
        self.stdout.write(f"Scan this with {username}'s authenticator app, or enter the URL:\n")
        qr = segno.make(url, error="m")
        qr.terminal(out=self.stdout._out, compact=True)
        self.stdout.write(url)
