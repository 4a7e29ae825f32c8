"""URLs: / and /api/v1/info/ say which instance answered; /api/v1/test/ is the health check
(answered by HealthCheckMiddleware for any Host; routed here too for completeness)."""

from django.urls import path

from api import views

urlpatterns = [
    path("", views.info),
    path("api/v1/info/", views.info),
    path("api/v1/test/", views.health),
]
