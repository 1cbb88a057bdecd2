"""canary-tui: a terminal operations console for live canary deployments."""

__version__ = "0.1.0"
