"""Request rate limits per API token (per user for browser sessions, per address anonymous)."""

from __future__ import annotations

from django.conf import settings
from django.db import connection
from rest_framework.throttling import SimpleRateThrottle

from integrations.models import ApiToken


class TokenRateThrottle(SimpleRateThrottle):
    scope = "token"

    def get_rate(self):
        # Read at request time so a changed setting applies without a restart of the class.
        rates = settings.REST_FRAMEWORK.get("DEFAULT_THROTTLE_RATES", {})
        return rates.get(self.scope)

    def allow_request(self, request, view):
        self.scope = "token" if request.user and request.user.is_authenticated else "anon"
        self.rate = self.get_rate()
        if self.rate is None:
            return True
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)

    def get_cache_key(self, request, view):
        if isinstance(request.auth, ApiToken):
            ident = f"t{request.auth.pk}"
        elif request.user and request.user.is_authenticated:
            ident = f"u{request.user.pk}"
        else:
            ident = f"a{self.get_ident(request)}"
        # Token ids are per database: two installations (or test databases) sharing one Redis
        # must not share counters.
        return f"throttle:{connection.settings_dict['NAME']}:{ident}"
