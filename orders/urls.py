from django.urls import path

from orders import views

app_name = "orders"

urlpatterns = [
    path("", views.orders, name="list"),
    path("new/", views.new_order, name="new"),
    path("qr/", views.read_qr, name="qr"),
    path("<uuid:order_id>/", views.detail, name="detail"),
    path("<uuid:order_id>/status/", views.status, name="status"),
    path("<uuid:order_id>/deposit/", views.deposit, name="deposit"),
    path("<uuid:order_id>/cancel/", views.cancel, name="cancel"),
    path("<uuid:order_id>/confirm/", views.confirm, name="confirm"),
    path("<uuid:order_id>/dispute/", views.dispute, name="dispute"),
    path("<uuid:order_id>/evidence/<uuid:evidence_id>/", views.evidence, name="evidence"),
    path("<uuid:order_id>/proof/", views.proof, name="proof"),
    path("<uuid:order_id>/qr.png", views.qr_png, name="qr_png"),
]
