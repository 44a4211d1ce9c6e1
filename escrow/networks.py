from django.db import models


class Network(models.TextChoices):
    """The EVM networks Kibo accepts deposits on."""

    MANTLE = "mantle", "Mantle"
    BASE = "base", "Base"
    MANTLE_SEPOLIA = "mantle-sepolia", "Mantle Sepolia"
    BASE_SEPOLIA = "base-sepolia", "Base Sepolia"
    LOCAL = "local", "Local (anvil)"
