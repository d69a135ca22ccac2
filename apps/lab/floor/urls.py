from django.urls import path

from .views import ping, purchase

urlpatterns = [path("health", ping), path("orders", purchase)]
