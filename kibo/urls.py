from django.contrib import admin
from django.urls import path

from kibo import views

urlpatterns = [
    path("", views.landing, name="landing"),
    path("healthz/", views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
]
