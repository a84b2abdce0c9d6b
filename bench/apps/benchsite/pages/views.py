from django.shortcuts import render

from benchsite.pages.models import Item


def page(request):
    items = list(Item.objects.order_by("id")[:20])
    visits = request.session.get("visits", 0)
    return render(request, "page.html", {"items": items, "visits": visits})
