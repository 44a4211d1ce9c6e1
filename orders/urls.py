from django.urls import path

from orders import views

app_name = "orders"

urlpatterns = [
    path("<uuid:order_id>/deposit/", views.deposit, name="deposit"),
]
