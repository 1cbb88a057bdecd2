"""Wiring: turn a validated Config into a ready Engine (core objects, adapters, audit log)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from adapters.registry import AdapterConfigError, AdapterContext, build_router, build_source
from canary_tui.config.loader import ConfigError, adapter_error
from canary_tui.config.schema import Config
from canary_tui.core.clock import Clock
from canary_tui.core.frames import CanaryInfo
from canary_tui.core.judging.base import Judge
from canary_tui.core.judging.sequential import SequentialJudge
from canary_tui.core.judging.threshold import ThresholdJudge
from canary_tui.core.plan import RampPlan, RampStep
from canary_tui.core.policy import NoDataAction, Policy
from canary_tui.core.slo import SLO, SLOKind
from canary_tui.core.specs import MetricKind, MetricSpec
from canary_tui.engine.alerts import Webhook, WebhookAlerter
from canary_tui.engine.loop import Engine, EngineSettings
from canary_tui.paths import default_audit_path
from canary_tui.records.audit import AuditError, AuditLog


@dataclass
class Built:
    engine: Engine
    context: AdapterContext
    audit_path: Path
    alerter: WebhookAlerter | None = None


def plan_of(config: Config) -> RampPlan:
    return RampPlan(tuple(RampStep(s.weight, s.hold, s.analysis_window) for s in config.plan))


def specs_of(config: Config) -> tuple[MetricSpec, ...]:
    return tuple(
        MetricSpec(
            m.name,
            MetricKind(m.kind),
            threshold_ms=m.threshold_ms,
            baseline_quantile=m.baseline_quantile,
            tolerance_ratio=m.tolerance_ratio,
            tolerance_abs=m.tolerance_abs,
            custom_numerator=m.numerator,
            custom_denominator=m.denominator,
        )
        for m in config.metrics
    )


def slos_of(config: Config) -> tuple[SLO, ...]:
    return tuple(SLO(s.name, SLOKind(s.kind), s.objective, s.threshold_ms) for s in config.slos)


def judge_of(config: Config) -> Judge:
    specs = specs_of(config)
    j = config.judge
    if j.kind == "sequential":
        return SequentialJudge(specs, alpha=j.alpha, pass_alpha=j.pass_alpha, effect=j.effect,
                               min_requests=j.min_requests, slos=slos_of(config),
                               warmup_s=j.warmup, step_warmup_s=j.step_warmup,
                               ceiling=j.ceiling)  # fmt: skip
    return ThresholdJudge(specs, window_s=j.window, min_requests=j.min_requests)


def build_engine(config: Config, clock: Clock, *, audit_path: Path | None = None) -> Built:
    """Everything the loop needs. Raises ConfigError with a readable message."""
    ctx = AdapterContext(clock, shared={"canary": config.canary.model_dump()})
    try:
        source = build_source(config.source.kind, config.source, ctx)
        router_settings = config.router
        if config.router.kind == config.source.kind == "simulator" and not router_settings.given():
            router_settings = config.source  # one simulated service: the source's settings
        router = build_router(config.router.kind, router_settings, ctx)
    except AdapterConfigError as exc:
        raise adapter_error(config, exc) from exc
    path = audit_path or (
        Path(config.audit.path) if config.audit.path else default_audit_path(config.canary.name)
    )
    try:
        audit = AuditLog(path)
    except AuditError as exc:
        raise ConfigError(str(exc)) from exc
    c = config.canary
    info = CanaryInfo(
        name=c.name,
        service=c.service or c.name,
        namespace=c.namespace,
        stable_version=c.stable_version,
        canary_version=c.canary_version,
        router=config.router.kind,
        metrics=config.source.kind,
    )
    loop = config.loop
    settings = EngineSettings(
        tick_s=loop.tick,
        baseline_window_s=config.judge.baseline_window,
        policy=Policy(
            auto_advance=loop.auto_advance,
            no_data_grace_s=loop.no_data.grace,
            no_data_action=NoDataAction(loop.no_data.action),
        ),
    )
    engine = Engine(
        info=info,
        plan=plan_of(config),
        judge=judge_of(config),
        source=source,
        router=router,
        audit=audit,
        clock=clock,
        slos=slos_of(config),
        settings=settings,
        armed=loop.auto_rollback == "armed",
        unattended=loop.unattended,
    )
    alerter = None
    hooks = []
    for hook in config.alerts.webhooks:
        url = hook.url if hook.url is not None else os.environ.get(hook.url_env or "", "")
        if not url:
            raise ConfigError(f"alerts.webhooks: environment variable {hook.url_env} is not set")
        hooks.append(Webhook(url, timeout_s=hook.timeout, attempts=hook.attempts))
    if hooks:
        alerter = WebhookAlerter(hooks)
        engine.subscribe(alerter.on_frame)
    return Built(engine, ctx, path, alerter)
