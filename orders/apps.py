from django.apps import AppConfig

from allies.ports import payers_orders
from escrow.outcomes import outcomes


class OrdersConfig(AppConfig):
    name = "orders"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        """Connect the ports the apps below the workflow speak through (kibo.ports)."""
        # The implementations use the models, which exist once every app is registered.
        from orders.payments import OrderOutcomes
        from orders.selectors import OrdersOfPayers

        outcomes.connect(OrderOutcomes())
        payers_orders.connect(OrdersOfPayers())
