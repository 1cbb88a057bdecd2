"""Pure domain of canary-tui: plan, state machine, actions, SLOs, metrics, verdicts.

Nothing here performs I/O or imports Textual, Kubernetes or HTTP clients; everything is
deterministic and unit-testable.
"""
