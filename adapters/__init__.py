"""Adapters to the outside world: metric sources and traffic routers behind core's protocols."""
