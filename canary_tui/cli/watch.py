"""`canary-tui watch KIND/NAME`: find the router, the plan and the metrics of a canary that
already runs in the cluster, write the config, and run it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from canary_tui.cli.common import (
    fail,
    look_options,
)
from canary_tui.cli.group import cli
from canary_tui.cli.live import run
from canary_tui.config.loader import ConfigError, adapter_error


@cli.command(
    epilog="Example: canary-tui watch httproute/foo-route -n shop --prometheus "
    "http://prometheus:9090"
)
@click.argument("target", metavar="KIND/NAME")
@click.option("-n", "--namespace", default=None, help="Namespace (default: the context's).")
@click.option("--context", default=None, help="kubeconfig context (default: the current one).")
@click.option("--kubeconfig", default=None, type=click.Path(), help="kubeconfig file.")
@click.option(
    "--prometheus",
    "prometheus_url",
    default=None,
    metavar="URL",
    help="Prometheus to read the canary's metrics from.",
)
@click.option(
    "--preset",
    default=None,
    help="Metrics preset: generic, istio, linkerd, nginx (default: guessed from the object).",
)
@click.option(
    "--stable-version",
    default=None,
    metavar="VALUE",
    help="The stable pods' value of the variant label (default: read from the cluster).",
)
@click.option(
    "--canary-version",
    default=None,
    metavar="VALUE",
    help="The canary pods' value of the variant label (default: read from the cluster).",
)
@click.option(
    "--variant-label",
    default=None,
    metavar="LABEL",
    help="The metrics label that tells stable from canary (default: the preset's, or the "
    "pod label that differs, e.g. version).",
)
@click.option(
    "--rule",
    default="",
    metavar="N|NAME",
    help="HTTPRoute: the rule (index or name); VirtualService: the HTTP route's name.",
)
@click.option(
    "--stable",
    default="",
    metavar="NAME",
    help="The stable backend (HTTPRoute), subset or host (VirtualService) or Deployment.",
)
@click.option(
    "--canary",
    default="",
    metavar="NAME",
    help="The canary backend (HTTPRoute), subset or host (VirtualService) or Deployment.",
)
@click.option(
    "--api-version",
    default="",
    metavar="VERSION",
    help="The object's API version (default: what the server serves: HTTPRoute v1, else "
    "v1beta1; VirtualService v1beta1, v1, v1alpha3).",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Take plan, metrics, SLOs, judge, loop and source settings from this file.",
)
@click.option(
    "--headless", is_flag=True, help="No dashboard: JSON lines and an exit code (for pipelines)."
)
@click.option("--in-process", is_flag=True, help="Run the loop in this terminal, no daemon.")
@click.option("--dry-run", is_flag=True, help="Print the config it would run, and exit.")
@look_options
def watch(
    target: str,
    namespace: str | None,
    context: str | None,
    kubeconfig: str | None,
    prometheus_url: str | None,
    preset: str | None,
    stable_version: str | None,
    canary_version: str | None,
    variant_label: str | None,
    rule: str,
    stable: str,
    canary: str,
    api_version: str,
    config_path: Path | None,
    headless: bool,
    in_process: bool,
    dry_run: bool,
    theme: str | None,
    ascii_only: bool,
) -> None:
    """Watch an existing canary: rollout/NAME, virtualservice/NAME, httproute/NAME or
    deployment/NAME, adopting its live weights (watching never writes to the cluster).

    The router, the plan (a Rollout's own steps) and the variants' label values (from the
    Rollout's ReplicaSets, the DestinationRule subsets, the backend Services' selectors or the
    Deployments' pod labels) come from the cluster; --stable-version, --canary-version and
    --variant-label say otherwise. Where discovery cannot decide (an HTTPRoute whose backends
    are not named *-stable/*-canary and do not differ in weight), it lists the rules it saw:
    pass --rule, --stable and --canary. It prints the queries it will run before starting.

    --config FILE merges with discovery field by field: the file wins over discovery (router
    options such as mirror_percent are kept), the flags win over the file, and canary.name
    defaults to NAME (two targets with one metrics file get two sessions and audit logs).

    The generated config is written under ~/.local/state/canary-tui/watch/ and printed, so
    the same session can be started again with `canary-tui run --config FILE`.
    """
    import yaml

    from adapters.kubernetes.discover import Choices, discover
    from adapters.registry import AdapterConfigError
    from canary_tui.cli.watch_config import WatchFlags, build_data, check, query_lines, read_file
    from canary_tui.core.ports import RouterError
    from canary_tui.paths import state_dir

    file_data: dict[str, Any] = {}
    lines: dict[Any, int] = {}
    where = f"watch {target}"
    if config_path is not None:
        try:
            file_data, lines = read_file(config_path)
        except ConfigError as exc:
            fail(str(exc))
        where = str(config_path)
    choices = Choices(rule=rule, stable=stable, canary=canary, api_version=api_version)
    try:
        found = discover(
            target, namespace=namespace, context=context, kubeconfig=kubeconfig, choices=choices
        )
    except RouterError as exc:
        fail(f"{target}: {exc}")
    flags = WatchFlags(
        prometheus_url=prometheus_url, preset=preset, stable_version=stable_version,
        canary_version=canary_version, variant_label=variant_label, rule=rule, stable=stable,
        canary=canary, api_version=api_version,
    )  # fmt: skip
    try:
        data, notes = build_data(target, found, flags, file_data)
        config = check(data, lines, where)
    except ConfigError as exc:
        fail(str(exc))
    if config.source.kind == "simulator":
        fail("watch needs real metrics: pass --prometheus URL, or --config FILE with a source")
    click.echo(f"canary-tui: {found.summary}", err=True)
    if found.variants is not None:
        v = found.variants
        click.echo(
            f"canary-tui: variants: pod label {v.label}: stable {v.stable!r}, canary "
            f"{v.canary!r} (from {v.source})",
            err=True,
        )
    for note in notes:
        click.echo(f"canary-tui: note: {note}", err=True)
    try:
        for line in query_lines(config):
            click.echo(f"canary-tui: {line}", err=True)
    except AdapterConfigError as exc:
        fail(str(adapter_error(config, exc)))
    if dry_run:
        click.echo(yaml.safe_dump(data, sort_keys=False), nl=False)
        return
    out = state_dir() / "watch" / f"{config.canary.name}.yaml"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(data, sort_keys=False))
    click.echo(f"canary-tui: config written to {out}", err=True)
    ctx = click.get_current_context()
    ctx.invoke(
        run,
        config_path=out,
        headless=headless,
        speed="1",
        audit_path=None,
        theme=theme,
        ascii_only=ascii_only,
        in_process=in_process,
    )
