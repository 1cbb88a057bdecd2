"""`canary-tui watch KIND/NAME`: find the router, a metrics preset and the variants' label
values from the object.

`discover("rollout/checkout", namespace="shop")` reads the object (and what it points at)
and returns a `Discovered`: the router kind and settings to put in the config's `router`
section, the suggested metrics preset (istio / linkerd / generic), the plan a Rollout's own
steps make, and `variants`: the pod label whose value tells stable from canary, with both
values, where the cluster says them:

- Rollout: the stable ReplicaSet's pod template against the Rollout's (a label that differs,
  e.g. `version`, else the `rollouts-pod-template-hash` values `stableRS` / `currentPodHash`)
- VirtualService: the DestinationRule subsets' labels (subset routing) or the destination
  Services' selectors (host routing)
- HTTPRoute: the backend Services' selectors, else the labels of the workloads they select
- Deployments: the two Deployments' pod template labels

What discovery cannot decide, `Choices` (the command line's --rule/--stable/--canary/
--api-version) settles; without them the error lists what was seen. Kind aliases are
kubectl's: rollout|ro, virtualservice|vs, httproute, deployment|deploy (plurals accepted).
Only GETs and LISTs: discovery never writes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from adapters.kubernetes.argo import HASH_LABEL, RolloutView, rollout_plan
from adapters.kubernetes.base import JSON, dig
from adapters.kubernetes.connection import (
    DEPLOYMENT,
    REPLICASET,
    ROLLOUT,
    SERVICE,
    ConnectionSettings,
    KubeApi,
    ObjectRef,
    connect,
    gateway_httproute,
    istio_destinationrule,
    istio_virtualservice,
    pick_version,
)
from adapters.kubernetes.errors import KubeError, NotFound
from adapters.kubernetes.gateway import find_rule
from adapters.kubernetes.istio import Selector, find_route, short_host
from canary_tui.core.ports import RouterError

ALIASES: dict[str, str] = {
    **dict.fromkeys(("rollout", "rollouts", "ro", "rollouts.argoproj.io"), "argo-rollouts"),
    **dict.fromkeys(
        ("virtualservice", "virtualservices", "vs", "virtualservices.networking.istio.io"),
        "istio",
    ),
    **dict.fromkeys(
        ("httproute", "httproutes", "httproutes.gateway.networking.k8s.io"), "gateway-api"
    ),
    **dict.fromkeys(("deployment", "deployments", "deploy", "deployments.apps"), "deployments"),
}

GATEWAY_GROUP = "gateway.networking.k8s.io"
ISTIO_GROUP = "networking.istio.io"
#: versions tried in order when the command line does not name one
HTTPROUTE_VERSIONS = ("v1", "v1beta1")
ISTIO_VERSIONS = ("v1beta1", "v1", "v1alpha3")
#: labels that tell versions apart, best first; anything else that differs comes next, and
#: the controllers' own hashes last (metrics rarely carry them)
VERSION_LABELS = ("version", "app.kubernetes.io/version", "service.istio.io/canonical-revision")
HASH_LABELS = (HASH_LABEL, "pod-template-hash", "controller-revision-hash")
#: which of the command line's choices each router kind takes
FLAGS_BY_KIND = {
    "argo-rollouts": (),
    "istio": ("rule", "stable", "canary", "api_version"),
    "gateway-api": ("rule", "stable", "canary", "api_version"),
    "deployments": ("stable", "canary"),
}


class DiscoveryError(RouterError):
    """The target cannot be watched; the message says why and what to pass instead."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False)


@dataclass(frozen=True, slots=True)
class Choices:
    """What the command line settles where discovery cannot (all optional)."""

    rule: str = ""  # HTTPRoute: rule index or name; VirtualService: route name
    stable: str = ""  # HTTPRoute backend / Deployment / VirtualService subset or host
    canary: str = ""
    api_version: str = ""  # the object's API version (default: what the server serves)


@dataclass(frozen=True, slots=True)
class Variants:
    """The pod label whose value tells stable from canary, and both values."""

    label: str  # a Kubernetes label name, e.g. version or rollouts-pod-template-hash
    stable: str
    canary: str
    source: str  # where the cluster says so, for the start-up lines

    @property
    def metric_label(self) -> str:
        """The label as Prometheus' Kubernetes relabelling names it (`/`, `.`, `-` -> `_`)."""
        return re.sub(r"[^A-Za-z0-9_]", "_", self.label)


@dataclass(frozen=True, slots=True)
class Discovered:
    router_kind: str
    settings: dict[str, Any]
    preset: str
    summary: str
    plan_weights: tuple[int, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)
    variants: Variants | None = None
    service: str = ""  # the Service the metrics are about, where one is known
    workloads: tuple[str, str] = ("", "")  # (stable, canary) workload names, where known
    #: (stable, canary) Services when traffic is split between two Services (host routing,
    #: HTTPRoute backends, a Rollout's stableService/canaryService): a mesh tags each request
    #: with the one it went to, which tells the variants apart whatever the pods' labels
    services: tuple[str, str] = ("", "")

    def router_section(self) -> dict[str, Any]:
        """The config's `router:` mapping (kind plus settings)."""
        return {"kind": self.router_kind, **self.settings}


def parse_target(target: str) -> tuple[str, str]:
    """`rollout/checkout` -> ("argo-rollouts", "checkout")."""
    kind, sep, name = target.strip().partition("/")
    if not sep or not name or "/" in name:
        raise DiscoveryError(
            f"expected KIND/NAME (e.g. rollout/checkout, vs/checkout), got {target!r}"
        )
    router = ALIASES.get(kind.lower())
    if router is None:
        known = "rollout|ro, virtualservice|vs, httproute, deployment|deploy"
        raise DiscoveryError(f"unknown kind {kind!r} (known: {known})")
    return router, name


def discover(
    target: str,
    *,
    namespace: str | None = None,
    context: str | None = None,
    kubeconfig: str | None = None,
    api: KubeApi | None = None,
    choices: Choices | None = None,
) -> Discovered:
    """Read KIND/NAME and say how to watch it. Raises DiscoveryError or a KubeError."""
    router, name = parse_target(target)
    c = choices or Choices()
    allowed = FLAGS_BY_KIND[router]
    given = [f for f in ("rule", "stable", "canary", "api_version") if getattr(c, f)]
    wrong = [f"--{f.replace('_', '-')}" for f in given if f not in allowed]
    if wrong:
        raise DiscoveryError(
            f"{' and '.join(wrong)} {'does' if len(wrong) == 1 else 'do'} not apply to "
            f"{target.partition('/')[0]} (they are for: httproute, virtualservice"
            + (", deployment" if "--stable" in wrong or "--canary" in wrong else "")
            + ")"
        )
    api = api or connect(ConnectionSettings(kubeconfig, context, namespace))
    ns = namespace or api.namespace
    base: dict[str, Any] = {"name": name, "namespace": ns}
    if context:
        base["context"] = context
    if kubeconfig:
        base["kubeconfig"] = kubeconfig
    finder = {
        "argo-rollouts": _rollout,
        "istio": _virtualservice,
        "gateway-api": _httproute,
        "deployments": _deployments,
    }[router]
    return finder(api, ns, name, base, c)


# --- labels -----------------------------------------------------------------------------------


def variants_between(
    stable: Mapping[str, Any], canary: Mapping[str, Any], source: str
) -> Variants | None:
    """The best label whose value differs between two label sets (None: none differs)."""
    differ = sorted(
        k for k in set(stable) & set(canary) if str(stable[k]) != str(canary[k]) and stable[k]
    )
    if not differ:
        return None

    def rank(key: str) -> tuple[int, str]:
        if key in VERSION_LABELS:
            return (0, f"{VERSION_LABELS.index(key):02d}")
        return (2 if key in HASH_LABELS else 1, key)

    best = min(differ, key=rank)
    return Variants(best, str(stable[best]), str(canary[best]), source)


def _labels(obj: JSON | None, *path: str) -> dict[str, str]:
    raw = dig(obj, *path, default={})
    return {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}


def _selects(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def _served(api: KubeApi, group: str, told: str, preferred: tuple[str, ...], what: str) -> str:
    """`told`, else the first of `preferred` the server serves."""
    if told:
        return told.rpartition("/")[2]
    try:
        served = api.served_versions(group)
    except NotFound as exc:
        raise DiscoveryError(f"the {what} API ({group}) is not installed on this cluster") from exc
    except KubeError:
        return preferred[0]  # discovery refused or down: the GET that follows says why
    version = pick_version(served, preferred)
    if version is None:
        raise DiscoveryError(f"the {what} API ({group}) serves no version")
    return version


# --- Argo Rollouts ----------------------------------------------------------------------------


def _rollout(api: KubeApi, ns: str, name: str, base: dict[str, Any], c: Choices) -> Discovered:
    obj = api.get(ObjectRef(ROLLOUT, ns, name))
    view = RolloutView.of(obj)
    canary = dig(obj, "spec", "strategy", "canary", default={})
    routing = canary.get("trafficRouting") or {}
    preset = "istio" if "istio" in routing else "linkerd" if "smi" in routing else "generic"
    if dig(obj, "spec", "strategy", "blueGreen"):
        raise DiscoveryError(f"Rollout {ns}/{name} uses blueGreen: only canary is supported")
    weights = rollout_plan(view.steps)
    summary = (
        f"Rollout {ns}/{name}: {view.phase}, {view.step_text}, weight {view.weight}%,"
        f" steps {[int(s['setWeight']) for s in view.steps if s.get('setWeight') is not None]}"
    )
    notes: list[str] = []
    if not any(s.get("setWeight") is not None for s in view.steps):
        notes.append(
            "the Rollout has no setWeight step: the canary gets no traffic until it is fully "
            "promoted, so the plan is one 0% step"
        )
    variants = None
    if not view.in_progress:
        notes.append(
            f"no canary in progress (stable = current = {view.stable_hash or '?'}): the variant "
            "values cannot be read yet; pass --stable-version/--canary-version"
        )
    else:
        canary_labels = {**_labels(obj, "spec", "template", "metadata", "labels"),
                         HASH_LABEL: view.canary_hash}  # fmt: skip
        try:
            sets = api.list(REPLICASET, ns, label_selector=f"{HASH_LABEL}={view.stable_hash}")
        except KubeError as exc:
            sets = []
            notes.append(f"cannot list ReplicaSets for the stable pods' labels ({exc})")
        stable_labels = {**_labels(sets[0] if sets else None, "spec", "template", "metadata",
                                   "labels"), HASH_LABEL: view.stable_hash}  # fmt: skip
        variants = variants_between(
            stable_labels,
            canary_labels,
            f"Rollout {name}: stable ReplicaSet {view.stable_hash} vs canary {view.canary_hash}",
        )
    service = str(canary.get("stableService") or name)
    services = (str(canary.get("stableService") or ""), str(canary.get("canaryService") or ""))
    return Discovered(
        "argo-rollouts", base, preset, summary, weights, tuple(notes), variants, service,
        (name, name), services,
    )  # fmt: skip


# --- Istio VirtualService ---------------------------------------------------------------------


def _virtualservice(
    api: KubeApi, ns: str, name: str, base: dict[str, Any], c: Choices
) -> Discovered:
    version = _served(api, ISTIO_GROUP, c.api_version, ISTIO_VERSIONS, "Istio")
    obj = api.get(ObjectRef(istio_virtualservice(version), ns, name))
    http = dig(obj, "spec", "http", default=[])
    if c.rule:
        http = [r for r in http if r.get("name") == c.rule]
        if not http:
            raise DiscoveryError(f"VirtualService {ns}/{name} has no HTTP route {c.rule!r}")
    selector = Selector()
    if c.stable or c.canary:
        selector = Selector(stable_subset=c.stable, canary_subset=c.canary)
    last: RouterError | None = None
    for index, route in enumerate(http):
        try:
            view = find_route({"spec": {"http": [route]}}, "", selector, f"VirtualService {name}")
        except RouterError as exc:
            if selector.configured:  # maybe hosts, not subsets
                try:
                    by_host = Selector(stable_host=c.stable, canary_host=c.canary)
                    view = find_route({"spec": {"http": [route]}}, "", by_host, "")
                except RouterError:
                    last = exc
                    continue
            else:
                last = exc
                continue
        settings = dict(base)
        if version != "v1beta1":
            settings["api_version"] = version
        if route.get("name"):
            settings["route"] = route["name"]
        elif len(http) > 1:
            raise DiscoveryError(f"VirtualService {ns}/{name}: route #{index} has no name")
        dests = {}
        for role, i in (("stable", view.stable), ("canary", view.canary)):
            dest = dig(route, "route", i, "destination", default={})
            dests[role] = dest
            if dest.get("subset"):
                settings[f"{role}_subset"] = dest["subset"]
            else:
                settings[f"{role}_host"] = dest.get("host", "")
        summary = (
            f"VirtualService {ns}/{name} route {route.get('name', index)}: canary "
            f"{view.weight('canary')}%"
        )
        notes: list[str] = []
        variants = _istio_variants(api, ns, version, dests, notes)
        hosts = (
            short_host(str(dests["stable"].get("host", ""))),
            short_host(str(dests["canary"].get("host", ""))),
        )
        return Discovered(
            "istio", settings, "istio", summary, (), tuple(notes), variants, hosts[0],
            services=hosts if hosts[0] != hosts[1] else ("", ""),
        )  # fmt: skip
    raise DiscoveryError(
        f"VirtualService {ns}/{name}: no HTTP route with a recognisable stable and canary "
        f"destination ({last}); pass --rule ROUTE --stable SUBSET --canary SUBSET"
    )


def _istio_variants(
    api: KubeApi, ns: str, version: str, dests: Mapping[str, JSON], notes: list[str]
) -> Variants | None:
    """Subset routing: the DestinationRule subsets' labels; host routing: the Services'."""
    stable, canary = dests["stable"], dests["canary"]
    if stable.get("subset") and canary.get("subset"):
        host = short_host(str(stable.get("host", "")))
        try:
            rules = api.list(istio_destinationrule(version), ns)
        except KubeError as exc:
            notes.append(f"cannot list DestinationRules for the subsets' labels ({exc})")
            return None
        for rule in rules:
            if short_host(str(dig(rule, "spec", "host", default=""))) != host:
                continue
            subsets = {s.get("name"): s.get("labels") or {} for s in dig(rule, "spec", "subsets",
                                                                          default=[])}  # fmt: skip
            if stable["subset"] in subsets and canary["subset"] in subsets:
                rule_name = dig(rule, "metadata", "name", default="?")
                return variants_between(
                    subsets[stable["subset"]],
                    subsets[canary["subset"]],
                    f"DestinationRule {rule_name} subsets {stable['subset']}/{canary['subset']}",
                )
        notes.append(f"no DestinationRule for host {host} with both subsets")
        return None
    return _service_variants(
        api, ns, short_host(str(stable.get("host", ""))),
        short_host(str(canary.get("host", ""))), notes,
    )  # fmt: skip


# --- Services and workloads -------------------------------------------------------------------


def _service_variants(
    api: KubeApi, ns: str, stable: str, canary: str, notes: list[str]
) -> Variants | None:
    """The backend Services' selectors, else the labels of the workloads they select."""
    selectors: dict[str, dict[str, str]] = {}
    for svc in (stable, canary):
        try:
            selectors[svc] = _labels(api.get(ObjectRef(SERVICE, ns, svc)), "spec", "selector")
        except NotFound:
            notes.append(f"no Service {ns}/{svc}: its pods' labels are unknown")
            return None
        except KubeError as exc:
            notes.append(f"cannot read Service {ns}/{svc} for its selector ({exc})")
            return None
    found = variants_between(
        selectors[stable], selectors[canary], f"Services {stable}/{canary} selectors"
    )
    if found is not None and found.label in VERSION_LABELS:
        return found
    # the selectors say nothing, or only something like `app`: the pods may say more
    from_workloads = _workload_variants(api, ns, stable, canary, selectors, notes)
    if from_workloads is None:
        return found
    if found is None or from_workloads.label in VERSION_LABELS:
        return from_workloads
    return found


def _workload_variants(
    api: KubeApi,
    ns: str,
    stable: str,
    canary: str,
    selectors: Mapping[str, dict[str, str]],
    notes: list[str],
) -> Variants | None:
    """The labels of the one Deployment each Service selects."""
    workloads: dict[str, tuple[str, dict[str, str]]] = {}
    try:
        deployments = api.list(DEPLOYMENT, ns)
    except KubeError as exc:
        notes.append(f"cannot list Deployments for the workloads' labels ({exc})")
        return None
    for svc in (stable, canary):
        matches = [
            d
            for d in deployments
            if _selects(selectors[svc], _labels(d, "spec", "template", "metadata", "labels"))
        ]
        if len(matches) != 1:
            notes.append(
                f"Service {svc} selects {len(matches)} Deployments: cannot read one workload's "
                "labels"
            )
            return None
        d = matches[0]
        workloads[svc] = (
            str(dig(d, "metadata", "name", default="?")),
            _labels(d, "spec", "template", "metadata", "labels"),
        )
    (s_name, s_labels), (c_name, c_labels) = workloads[stable], workloads[canary]
    return variants_between(s_labels, c_labels, f"Deployments {s_name}/{c_name} pod labels")


# --- Gateway API HTTPRoute --------------------------------------------------------------------


def _mirrors(rule: JSON) -> list[str]:
    """The backends a rule's RequestMirror filters copy requests to."""
    return [
        str(dig(f, "requestMirror", "backendRef", "name", default="?"))
        for f in rule.get("filters") or []
        if f.get("type") == "RequestMirror"
    ]


def _rule_line(index: int, rule: JSON) -> str:
    refs = ", ".join(
        f"{b.get('name', '?')} weight {b.get('weight', 1)}" for b in rule.get("backendRefs") or []
    )
    label = f"#{index}" + (f" ({rule['name']})" if rule.get("name") else "")
    mirrors = _mirrors(rule)
    tail = f"; mirrors to {', '.join(mirrors)}" if mirrors else ""
    return f"rule {label}: {refs or 'no backendRefs'}{tail}"


def _version_key(name: str) -> tuple[int, ...] | None:
    """`foo-v2` -> (2,): the numbers that end a name, to tell an older from a newer version."""
    m = re.search(r"(\d+(?:[.-]\d+)*)$", name)
    return tuple(int(x) for x in re.split(r"[.-]", m.group(1))) if m else None


def _guess_roles(rule: JSON, c: Choices) -> tuple[int, int, str] | None:
    """(stable, canary, why) for a rule of exactly two backends, when one is named on the
    command line, or plainly the canary: it gets less traffic, or (at equal weights) its name
    ends in a higher version."""
    refs = rule.get("backendRefs") or []
    if len(refs) != 2:
        return None
    w = [int(r.get("weight", 1)) for r in refs]
    names = [str(r.get("name", "")) for r in refs]
    for given, role in ((c.stable, "stable"), (c.canary, "canary")):
        if given:
            if given not in names:
                return None
            i = names.index(given)
            return (i, 1 - i, "--stable") if role == "stable" else (1 - i, i, "--canary")
    if w[0] != w[1]:
        canary = 0 if w[0] < w[1] else 1
        return 1 - canary, canary, f"{names[canary]} gets less traffic: {w[canary]} of {sum(w)}"
    keys = [_version_key(n) for n in names]
    if keys[0] is not None and keys[1] is not None and keys[0] != keys[1]:
        canary = 0 if keys[0] > keys[1] else 1
        return 1 - canary, canary, f"{names[canary]} has the higher version number"
    return None


def _httproute(api: KubeApi, ns: str, name: str, base: dict[str, Any], c: Choices) -> Discovered:
    version = _served(api, GATEWAY_GROUP, c.api_version, HTTPROUTE_VERSIONS, "Gateway API")
    obj = api.get(ObjectRef(gateway_httproute(version), ns, name))
    what = f"HTTPRoute {ns}/{name}"
    rules = dig(obj, "spec", "rules", default=[])
    notes: list[str] = []
    try:
        view = find_rule(obj, c.rule, c.stable, c.canary, what)
    except RouterError as exc:
        if c.stable and c.canary:
            raise DiscoveryError(f"{exc}\n  " + "\n  ".join(_rule_lines(rules))) from exc
        candidates = [
            i
            for i, r in enumerate(rules)
            if c.rule in ("", str(i), r.get("name")) and _guess_roles(r, c) is not None
        ]
        if len(candidates) != 1:
            shadow_only = [
                i for i, r in enumerate(rules)
                if len(r.get("backendRefs") or []) == 1 and _mirrors(r)
            ]  # fmt: skip
            hint = ""
            if shadow_only:
                r = rules[shadow_only[0]]
                hint = (
                    f"rule #{shadow_only[0]} only mirrors to {_mirrors(r)[0]}: the console "
                    f"needs the canary among the rule's backendRefs (add {_mirrors(r)[0]} "
                    "with weight 0), then "
                )
            raise DiscoveryError(
                f"{what}: cannot tell which rule and backends are stable and canary "
                f"({len(candidates) or 'no'} rules with two backends of unequal weight or "
                "version); rules seen:\n  " + "\n  ".join(_rule_lines(rules)) + "\n"
                f"{hint}pass --rule N --stable BACKEND --canary BACKEND"
            ) from exc
        index = candidates[0]
        guess = _guess_roles(rules[index], c)
        if guess is None:  # cannot happen: candidates were filtered on it
            raise DiscoveryError(f"{what}: rule #{index} changed while reading it") from exc
        s, k, why = guess
        refs = rules[index]["backendRefs"]
        notes.append(
            f"rule #{index}: took {refs[s].get('name')} as stable and {refs[k].get('name')} as "
            f"canary ({why}); pass --stable/--canary to say otherwise"
        )
        from adapters.kubernetes.gateway import RuleView

        view = RuleView(index, rules[index], s, k)
    stable = str(dig(view.rule, "backendRefs", view.stable, "name", default=""))
    canary = str(dig(view.rule, "backendRefs", view.canary, "name", default=""))
    settings = {
        **base,
        "rule": view.rule.get("name") or view.index,
        "stable_backend": stable,
        "canary_backend": canary,
    }
    if version != "v1":
        settings["api_version"] = version
    summary = (
        f"HTTPRoute {ns}/{name} ({GATEWAY_GROUP}/{version}) rule {view.index}: "
        f"stable {stable}, canary {canary} at {view.canary_percent}%"
    )
    variants = _service_variants(api, ns, stable, canary, notes)
    return Discovered("gateway-api", settings, "generic", summary, (), tuple(notes), variants,
                      name, (stable, canary), (stable, canary))  # fmt: skip


def _rule_lines(rules: list[JSON]) -> list[str]:
    return [_rule_line(i, r) for i, r in enumerate(rules)] or ["(no rules)"]


# --- plain Deployments ------------------------------------------------------------------------


def _pair_names(name: str) -> list[tuple[str, str]]:
    """Candidate (stable, canary) names for a Deployment named `name`."""
    for suffix in ("-canary", "-stable"):
        if name.endswith(suffix):
            stem = name.removesuffix(suffix)
            other = [f"{stem}-stable", stem] if suffix == "-canary" else [f"{stem}-canary"]
            if suffix == "-canary":
                return [(o, name) for o in other]
            return [(name, o) for o in other]
    return [(name, f"{name}-canary"), (f"{name}-stable", name)]


def _deployments(api: KubeApi, ns: str, name: str, base: dict[str, Any], c: Choices) -> Discovered:
    named = api.get(ObjectRef(DEPLOYMENT, ns, name))  # the named one must exist
    pairs = _pair_names(name)
    if c.stable or c.canary:
        pairs = [(c.stable or name, c.canary or name)]
    tried = []
    for stable, canary in pairs:
        other = canary if stable == name else stable
        tried.append(other)
        try:
            partner = api.get(ObjectRef(DEPLOYMENT, ns, other))
        except NotFound:
            continue
        objs = {name: named, other: partner}
        settings = {k: v for k, v in base.items() if k != "name"}
        settings.update({"stable": stable, "canary": canary})
        notes: list[str] = []
        variants = variants_between(
            _labels(objs[stable], "spec", "template", "metadata", "labels"),
            _labels(objs[canary], "spec", "template", "metadata", "labels"),
            f"Deployments {stable}/{canary} pod labels",
        )
        if variants is None:
            notes.append(f"Deployments {stable} and {canary} have the same pod labels")
        return Discovered(
            "deployments", settings, "generic", f"Deployments {ns}/{stable} + {ns}/{canary}",
            (), tuple(notes), variants, _service_of(api, ns, objs), (stable, canary),
        )  # fmt: skip
    raise DiscoveryError(
        f"Deployment {ns}/{name} has no partner (tried {', '.join(tried)}): pass "
        "--stable NAME --canary NAME"
    )


def _service_of(api: KubeApi, ns: str, objs: Mapping[str, JSON]) -> str:
    """The one Service that selects the pods of both Deployments, or ''."""
    try:
        services = api.list(SERVICE, ns)
    except KubeError:
        return ""
    pods = [_labels(d, "spec", "template", "metadata", "labels") for d in objs.values()]
    found = [
        str(dig(s, "metadata", "name", default=""))
        for s in services
        if all(_selects(_labels(s, "spec", "selector"), labels) for labels in pods)
    ]
    return found[0] if len(found) == 1 else ""
