from zoneinfo import ZoneInfo

from django.utils import timezone

from kibo.models import Country

COUNTRY_TIMEZONES = {
    Country.BOLIVIA: ZoneInfo("America/La_Paz"),
    Country.MEXICO: ZoneInfo("America/Mexico_City"),
    Country.ARGENTINA: ZoneInfo("America/Argentina/Buenos_Aires"),
}


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
