"""A Django view rendering a template, configured in this module alone (so
that `benchmarks.apps` does not configure Django for every other server)."""

import django
from django.conf import settings

from benchmarks.apps import ROWS

settings.configure(
    DEBUG=False,
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    SECRET_KEY="benchmark only",
    MIDDLEWARE=["django.middleware.common.CommonMiddleware"],
    TEMPLATES=[{"BACKEND": "django.template.backends.django.DjangoTemplates",
                # Cached, as Django caches templates from files when DEBUG is off.
                "OPTIONS": {"loaders": [("django.template.loaders.cached.Loader", [
                    ("django.template.loaders.locmem.Loader", {
                        "page.html": "<table>{% for row in rows %}<tr><td>{{ row.id }}</td>"
                                     "<td>{{ row.name }}</td><td>{{ row.price|floatformat:2 }}"
                                     "</td></tr>{% endfor %}</table>"})])]}}],
)
django.setup()

from django.shortcuts import render  # noqa: E402  (needs the settings above)
from django.urls import path  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402


def index(request):
    return render(request, "page.html", {"rows": ROWS})


urlpatterns = [path("", index)]
application = get_wsgi_application()
