from django.urls import path

from allies import views

app_name = "allies"

urlpatterns = [
    path("", views.board, name="board"),
    path("board/", views.board_part, name="board_part"),
    path("apply/", views.apply, name="apply"),
    path("stats/", views.stats, name="stats"),
    path("presence/", views.presence, name="presence"),
    path("hours/", views.hours, name="hours"),
    path("orders/<uuid:order_id>/", views.work, name="work"),
    path("orders/<uuid:order_id>/take/", views.take, name="take"),
    path("orders/<uuid:order_id>/proof/", views.proof, name="proof"),
    path("orders/<uuid:order_id>/answer/", views.answer, name="answer"),
]
