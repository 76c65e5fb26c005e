"""Logging filters named in ``settings.LOGGING``."""

from __future__ import annotations

import logging


class DropKombuDefaultHostname(logging.Filter):
    """kombu warns "No hostname was supplied. Reverting to default 'localhost'" whenever it
    builds a connection to a broker URL without a host, which the embedded default's
    ``filesystem://`` transport never has. The warning describes nothing wrong, was printed by
    every command and buried the lines people need to read."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("No hostname was supplied")
