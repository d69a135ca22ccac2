from django.urls import path

from apps.core.apis import health_api

from . import apis
from .admin_login import admin_login

urlpatterns = [
    path("auth/health", health_api("auth-service").as_view()),
    path("auth/register", apis.RegisterApi.as_view()),
    path("auth/login", apis.LoginApi.as_view()),
    path("auth/refresh", apis.RefreshApi.as_view()),
    path("auth/logout", apis.LogoutApi.as_view()),
    path("auth/verify", apis.VerifyApi.as_view()),
    path("auth/users/me", apis.MeApi.as_view()),
    # Ahead of the admin's own URLs (flashdeals/urls.py includes these first): rate-limited.
    path("admin/login/", admin_login),
]
