from django.contrib import admin
from django.urls import include, path

from kibo import views

urlpatterns = [
    path("", views.landing, name="landing"),
    path("healthz/", views.healthz, name="healthz"),
    path("orders/", include("orders.urls")),
    path("admin/", admin.site.urls),
]
