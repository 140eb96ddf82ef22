"""greenbench: measure the accuracy, latency and energy of inference over a ladder of models,
and turn the carbon-QoE tradeoff into a green subscription tier."""

from importlib import metadata as _metadata

try:
    __version__ = _metadata.version("greenbench")
except _metadata.PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0+unknown"
