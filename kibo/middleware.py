from django.utils import timezone

from kibo import logs
from kibo.models import COUNTRY_TIMEZONES


class CountryTimezoneMiddleware:
    """Times are shown in the signed-in person's country's time zone (else the default)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        zone = COUNTRY_TIMEZONES.get(getattr(user, "country", None))
        if zone is not None:
            timezone.activate(zone)
        else:
            timezone.deactivate()
        return self.get_response(request)


class LogContextMiddleware:
    """Every log line of a request carries its id (the proxy's `X-Request-ID`, or a new
    one, returned in the response), the signed-in wallet and the order in the URL."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.id = logs.request_id(request.headers.get("X-Request-ID"))
        token = logs.bind(request_id=request.id)
        try:
            response = self.get_response(request)
        finally:
            logs.unbind(token)
        response["X-Request-ID"] = request.id
        return response

    def process_view(self, request, view_func, view_args, view_kwargs):
        user = getattr(request, "user", None)
        wallet = getattr(user, "wallet_address", None) if user and user.is_authenticated else None
        logs.bind(
            wallet=logs.short_wallet(wallet) if wallet else None,
            order_id=view_kwargs.get("order_id"),
        )  # undone with the request's own binding, in __call__
