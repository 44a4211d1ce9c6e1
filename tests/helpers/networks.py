from dataclasses import replace


def change_local_network(settings, **changes) -> None:
    """Configure the local chain differently for one test (pytest-django's `settings`
    fixture puts it back): e.g. confirmations=3, or rpc_urls=("http://127.0.0.1:9",)."""
    networks = settings.KIBO_NETWORKS
    settings.KIBO_NETWORKS = {**networks, "local": replace(networks["local"], **changes)}
