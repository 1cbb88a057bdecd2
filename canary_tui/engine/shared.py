"""What the parts of one canary's loop share: its adapters and settings, what it knows of the
canary and its router, the two locks, and the loop's time.

Locks. `lock` guards this state, the audit order and publishing, and is only ever held for
short, local work: no metric fetch and no router call runs under it, so a slow backend
never makes anyone wait for the state. `write_lock` lets one router write run at a time. A
kill does not queue for it to take effect: it is audited and latched under `lock` at once
(every later step, resume or promote is then refused), and its router call follows as soon
as the write in flight, if any, returns.

Time. Scheduling, holds, graces, retries and staleness run on the loop's time: the wall
clock at start, then the monotonic clock (`loop_now`). Wall time is only for the metric
source's query windows and for the records' timestamps.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from canary_tui.core.actions import Verb
from canary_tui.core.clock import Clock
from canary_tui.core.frames import CanaryInfo
from canary_tui.core.judging.base import Judge
from canary_tui.core.plan import RampPlan
from canary_tui.core.policy import Policy
from canary_tui.core.ports import MetricSource, RoutingState, TrafficRouter
from canary_tui.core.slo import SLO, Gauge
from canary_tui.core.state import CanaryState
from canary_tui.core.verdict import Verdict
from canary_tui.records.audit import AuditLog

#: Called at named points of the action path ("after_intent", "after_router",
#: "after_result") with the verb: the fault-injection harness crashes the process there.
CrashHook = Callable[[str, Verb], None]


@dataclass(frozen=True, slots=True)
class EngineSettings:
    tick_s: float = 5.0
    history_s: float = 600.0  # how much graph history a newly attached client receives
    smooth_s: float = 30.0  # graph points are rates over this trailing window, like rate[30s]
    activity_keep: int = 200
    burn_window_s: float = 300.0
    baseline_window_s: float = 600.0  # read the baseline's latency quantiles over this, first
    policy: Policy = field(default_factory=Policy)


class Shared:
    """One canary's loop state. Read and written under `lock`, except where a part says so."""

    def __init__(
        self,
        *,
        info: CanaryInfo,
        plan: RampPlan,
        judge: Judge,
        source: MetricSource,
        router: TrafficRouter,
        audit: AuditLog,
        clock: Clock,
        slos: tuple[SLO, ...],
        settings: EngineSettings,
        armed: bool,
        unattended: str,
    ) -> None:
        self.info, self.plan, self.judge = info, plan, judge
        self.source, self.router, self.audit, self.clock = source, router, audit, clock
        self.slos = slos
        self.settings = settings
        self.crash_hook: CrashHook | None = None
        self.lock = threading.RLock()
        self.write_lock = threading.Lock()
        self.t0_wall, self.t0_mono = clock.now(), clock.monotonic()
        self.state = CanaryState.initial(0, self.loop_now(), armed=armed)
        # What the loop knows of the router.
        self.routing: RoutingState | None = None
        self.routing_at: float | None = None
        self.router_error: str | None = None
        self.router_error_since: float | None = None
        self.unsupported_shadow: str | None = None  # why it cannot mirror (set at start-up)
        self.adopted = False
        self.suspect: tuple[int, bool] | None = None  # a difference seen once, to confirm
        #: (weight, mirror) the router reported after the canary ended, recorded as outside.
        self.terminal_drift: tuple[int, bool] | None = None
        # Router writes: a read that overlapped one says nothing about changes made outside.
        self.write_gen = 0
        self.writing = False
        # What the loop knows of the metrics and the judge's view.
        self.metrics_at: float | None = None
        self.verdicts: tuple[Verdict, ...] = ()
        self.gauges: tuple[Gauge, ...] = ()
        self.no_data: str | None = None
        self.no_data_since: float | None = None
        # The pending kill's router attempts, as shown.
        self.kill_attempts = 0
        self.kill_error: str | None = None
        # Who watches, and how the loop itself is doing.
        self.warning: str | None = None
        self.presence: tuple[str, ...] = ()
        self.loop_health: tuple[str, str] = ("running", "")
        self.attended = True
        self.unattended = unattended

    def loop_now(self) -> float:
        """The loop's time: the wall clock at start, then monotonic (never steps). Lock-free."""
        return self.t0_wall + (self.clock.monotonic() - self.t0_mono)

    def routing_fresh(self, now: float) -> bool:
        """Whether the loop knows the router's state well enough for a rule to add traffic:
        read within two ticks, the latest read succeeded (a read that failed may have hidden an
        outside change: the trust machine found a rule starting a canary over a mirror turned
        off while the router could not be read), and no unconfirmed difference outstanding."""
        return (
            self.adopted
            and self.router_error is None
            and self.suspect is None
            and self.routing is not None
            and self.routing_at is not None
            and now - self.routing_at <= max(2.0, 2 * self.settings.tick_s)
        )

    def crash(self, point: str, verb: Verb) -> None:
        """A named point of the action path, for the fault-injection harness."""
        if self.crash_hook is not None:
            self.crash_hook(point, verb)
