from django.contrib import admin
from django.urls import include, path

from kibo import views
from kibo.admin import staff_login
from kibo.metrics import business_metrics, metrics
from orders.console import console

urlpatterns = [
    path("", views.landing, name="landing"),
    path("auth/", views.auth_page, name="auth"),
    path("auth/nonce/", views.auth_nonce, name="auth_nonce"),
    path("auth/login/", views.auth_login, name="auth_login"),
    path("auth/logout/", views.auth_logout, name="auth_logout"),
    path("account/country/", views.account_country, name="account_country"),
    path("account/devices/", views.devices, name="devices"),
    path("account/devices/<uuid:device_id>/remove/", views.device_remove, name="device_remove"),
    path("account/telegram/", views.telegram_link, name="telegram_link"),
    path("account/telegram/unlink/", views.telegram_unlink, name="telegram_unlink"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("healthz/", views.healthz, name="healthz"),
    path("livez/", views.livez, name="livez"),
    path("manifest.webmanifest", views.manifest, name="manifest"),
    path("sw.js", views.service_worker, name="service_worker"),
    path("offline/", views.offline, name="offline"),
    path("metrics", metrics, name="metrics"),  # Prometheus' usual path; needs the token
    path("metrics/business", business_metrics, name="business_metrics"),
    path("orders/", include("orders.urls")),
    path("ally/", include("allies.urls")),
    path("admin/dashboard/", admin.site.admin_view(console), name="console"),
    path("admin/login/", staff_login),  # the admin's own, with failures limited
    path("admin/", admin.site.urls),
]
