from django.urls import path

from benchsite.pages import views

urlpatterns = [path("page", views.page)]
