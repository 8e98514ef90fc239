"""A one-file Django project (settings, views, URLs, WSGI app), to show
Django runs on every worker class, the asgi one through the bridge."""

from __future__ import annotations

import hashlib
import tempfile

import django
from django.conf import settings

settings.configure(
    DEBUG=False,
    SECRET_KEY="tests-only",
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    MIDDLEWARE=[],
    INSTALLED_APPS=[],
    DATABASES={},
    LOGGING_CONFIG=None,
)
django.setup()

from django.core.wsgi import get_wsgi_application  # noqa: E402  (after settings)
from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse  # noqa: E402
from django.http import StreamingHttpResponse  # noqa: E402
from django.urls import path  # noqa: E402
from django.views.decorators.csrf import csrf_exempt  # noqa: E402


def index(request: HttpRequest) -> HttpResponse:
    return HttpResponse("hello from django")


@csrf_exempt
def form(request: HttpRequest) -> JsonResponse:
    response = JsonResponse({"fields": request.POST.dict(),
                             "cookie": request.COOKIES.get("session")})
    response.set_cookie("seen", "yes")
    return response


@csrf_exempt
def upload(request: HttpRequest) -> JsonResponse:
    document = request.FILES["document"]
    data = document.read()
    return JsonResponse({"name": document.name, "size": len(data),
                         "sha256": hashlib.sha256(data).hexdigest()})


def stream(request: HttpRequest) -> StreamingHttpResponse:
    count = int(request.GET.get("n", "3"))
    return StreamingHttpResponse((f"line {i}\n" for i in range(count)),
                                 content_type="text/plain")


def download(request: HttpRequest) -> FileResponse:
    size = int(request.GET.get("size", "100000"))
    handle = tempfile.TemporaryFile()
    handle.write(bytes(range(256)) * (size // 256) + bytes(size % 256))
    handle.seek(0)
    return FileResponse(handle, filename="blob.bin")


def boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("the view failed on purpose")


urlpatterns = [
    path("", index),
    path("form", form),
    path("upload", upload),
    path("stream", stream),
    path("download", download),
    path("boom", boom),
]

application = get_wsgi_application()
