"""The Teams SDK (``microsoft-teams-apps``), loaded and configured so that only our settings count.

The SDK loads a ``.env`` file from the working directory when it is imported, and reads its own variables
(``CLIENT_ID``, ``CLIENT_SECRET``, ``TENANT_ID``, ``CLOUD``, ``SERVICE_URL``, ``PORT``,
``DANGEROUSLY_ALLOW_UNAUTHENTICATED_REQUESTS``, ...) when an ``App`` is built. A stray ``.env`` (or a leftover
variable) could switch off its authentication, send the bot's credentials elsewhere or route its traffic through a
proxy. So the SDK is imported with ``.env`` loading disabled and the environment restored afterwards, and the
``App`` is built with every option given explicitly and the SDK's own variables hidden while it is built. The
bot's settings were read before any of this (:class:`bot.teams.settings.TeamsSettings`).

:func:`build_app` gives the ``App`` our token (``App(token=...)``: the SDK's MSAL path only accepts Microsoft's
own hosts), our cloud endpoints (``with_overrides(PUBLIC, ...)``), the pacing middleware on its HTTP client
(:mod:`bot.teams.pacing`), the trusted CAs, and our aiohttp server adapter.
"""

from __future__ import annotations

import contextlib
import os
import ssl
from collections.abc import Iterator
from typing import Any

from bot.teams.pacing import ThrottleMiddleware
from bot.teams.settings import TeamsSettings

# Variables the SDK reads by itself; none of them is a setting of this bot.
SDK_OWN_VARIABLES = (
    "CLIENT_ID",
    "CLIENT_SECRET",
    "TENANT_ID",
    "CLOUD",
    "SERVICE_URL",
    "PORT",
    "MANAGED_IDENTITY_CLIENT_ID",
    "DANGEROUSLY_ALLOW_UNAUTHENTICATED_REQUESTS",
    "OAUTH_URL",
)


@contextlib.contextmanager
def sealed_environment() -> Iterator[None]:
    """Within: no ``.env`` loading and none of the SDK's own variables; after: the environment exactly as before."""
    before = dict(os.environ)
    try:
        for name in SDK_OWN_VARIABLES:
            os.environ.pop(name, None)
        os.environ["PYTHON_DOTENV_DISABLED"] = "1"
        yield
    finally:
        os.environ.clear()
        os.environ.update(before)


def import_sdk() -> Any:
    """``microsoft_teams.apps``, imported without letting it read a ``.env`` file."""
    with sealed_environment():
        import microsoft_teams.apps as apps

    return apps


def build_app(
    settings: TeamsSettings, *, token: Any, throttle: ThrottleMiddleware, adapter: Any, ssl_context: ssl.SSLContext
) -> Any:
    """The SDK ``App``, configured only from ``settings``."""
    import_sdk()
    import httpx
    from microsoft_teams.api.auth.cloud_environment import PUBLIC, with_overrides
    from microsoft_teams.apps import App
    from microsoft_teams.common import Client, ClientOptions

    client = Client(ClientOptions(timeout=30.0))
    client.use(throttle)
    cloud = with_overrides(
        PUBLIC,
        openid_metadata_url=settings.openid_metadata_url,
        login_endpoint=settings.login_endpoint,
    )
    with sealed_environment():
        app = App(
            client_id=settings.app_id,
            tenant_id=settings.tenant_id,
            token=token,
            client=client,
            cloud=cloud,
            http_server_adapter=adapter,
            dangerously_allow_unauthenticated_requests=False,
            fetch_user_token=False,
            state=False,
            telemetry={"agent365": False},
        )
    # The SDK's HTTP client for the connector: the trusted CAs of SSL_CERT_FILE / REQUESTS_CA_BUNDLE too.
    app.http_client.http = httpx.AsyncClient(verify=ssl_context, timeout=30.0)
    return app
