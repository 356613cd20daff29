"""datapipe: synthesise paired image-to-poster training data.

The public entry points are `datapipe.loading.load_recipe`, `datapipe.runner.local.run_local`
and the `datapipe` CLI; the map of the system is README.md's architecture section.
"""

__version__ = "0.1.0"
