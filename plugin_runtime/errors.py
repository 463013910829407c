"""Errors of the plugin runtime, each with a message a plugin author or operator can act on."""

from __future__ import annotations


class PluginError(Exception):
    """Base of every error the runtime raises about a plugin."""


class PluginLoadError(PluginError):
    """The plugin could not be loaded: bad archive, bad plugin.json, syntax error, bad import."""


class ForbiddenImportError(PluginLoadError):
    """The plugin imports a module outside the allowlist."""


class PluginConfigError(PluginError):
    """A team's config does not match the plugin's config schema."""


class PluginTimeoutError(PluginError):
    """A plugin call ran past its time limit."""


class PluginMemoryError(PluginError):
    """A plugin call went past its memory bound."""


class RetryError(Exception):
    """Raised by plugin code to ask for the batch or job to be tried again later.

    It is also the name plugins see in their globals.
    """


class IllegalOperationError(PluginError):
    """A plugin called a `meta` helper in a way it does not support (undeclared metric,
    oversized cache list, wrong argument type)."""


class GeoIPUnavailableError(PluginError):
    """`meta.geoip.locate` on a server without a GeoIP database."""


class StateLimitError(IllegalOperationError):
    """A `meta.cache` or `meta.storage` write over the bound of one value or of all the
    config holds."""


class UnknownJobError(PluginError):
    """A job name the plugin does not define in its module-level `jobs` dict."""


class UnknownPluginConfigError(PluginError):
    """A plugin config id that is not loaded in this runtime."""


class FetchFixtureMissingError(AssertionError):
    """The authoring kit got a `fetch` request with no matching `h.http` fixture."""
