"""The browser playground: live training with the exact geometry of netatlas's lenses.

Start it with ``netatlas serve`` (or :func:`serve`) and open the printed URL. The page is a thin
client: every geometry layer is computed server-side by the library's public functions
(``netatlas.regions``, ``netatlas.metric``, ``netatlas.dynamics``, ``netatlas.splines``), and a
layer that does not apply to the net shows a note instead.
"""

from netatlas._lazy import attach as _attach

# Names are imported from their module on first use (see netatlas._lazy).
__getattr__, __dir__ = _attach(__name__, {
    "_config": ["DEFAULT_CONFIG", "DEFAULT_VIEW", "LIMITS", "ConfigError", "UploadedData", "parse_csv",
        "validate_config", "validate_view"],
    "_lenses": ["compute_layers"],
    "_server": ["bind_socket", "create_app", "make_server", "serve"],
    "_session": ["FrameInput", "Session"],
})

__all__ = [
    "DEFAULT_CONFIG",
    "DEFAULT_VIEW",
    "LIMITS",
    "ConfigError",
    "FrameInput",
    "Session",
    "UploadedData",
    "bind_socket",
    "compute_layers",
    "create_app",
    "make_server",
    "parse_csv",
    "serve",
    "validate_config",
    "validate_view",
]
