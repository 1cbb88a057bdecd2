"""Generate the documentation pages that must not drift from the code, as an mkdocs hook.

`mkdocs.yml` lists this file under `hooks:`; while the site is built, `on_files` adds pages
made from the code itself, so they are never committed and can never be stale:

    reference/configuration.md   the pydantic schema (canary_tui/config/schema.py)
    reference/cli.md             the click commands' own --help text
    reference/keys.md            the dashboard's key bindings (canary_tui/tui/keymap.py)
    sample-report.md             `canary-tui report recordings/auto-rollback.ctrec`

Run as a script it prints a page (`python scripts/gen_docs.py cli`) or remakes the README's
screenshot (`python scripts/gen_docs.py screenshot`, docs/assets/dashboard.svg).
"""

from __future__ import annotations

import sys
import types
import typing
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def _repo_first() -> None:
    """This checkout's code before any installed copy of it (mkdocs restores sys.path after
    loading a hook, so `on_files` calls this again)."""
    if sys.path[:1] != [str(REPO)]:
        sys.path.insert(0, str(REPO))


_repo_first()

from pydantic import BaseModel  # noqa: E402
from pydantic.fields import FieldInfo  # noqa: E402
from pydantic_core import PydanticUndefined  # noqa: E402

# What each configuration field means. A field of the schema missing here (and without a
# pydantic `description`) fails the build, and so does an entry here for a field that is gone.
DESCRIPTIONS: dict[str, str] = {
    "canary": "Which canary this is.",
    "canary.name": "Names the session, its socket, the audit log and the recordings "
    "(letters, digits, `._-`; at most 63 characters).",
    "canary.service": "The service (for metric queries; defaults to the name where a source "
    "needs one).",
    "canary.namespace": "The service's namespace.",
    "canary.stable_version": "The version the baseline runs.",
    "canary.canary_version": "The version the canary runs.",
    "plan": "The ramp: one entry per step. Weights never decrease; after the last step passes, "
    "the loop promotes to 100%.",
    "plan[].weight": "The canary's share of traffic at this step, in percent.",
    "plan[].hold": "How long the step must hold before it can pass.",
    "plan[].analysis_window": "How much recent data the threshold judge looks at in this step.",
    "metrics": "What the judge compares, canary against baseline, from counts.",
    "metrics[].name": "The metric's name, unique, as verdicts and the evidence quote it.",
    "metrics[].kind": "`errors` (errors out of requests), `latency` (slow requests out of "
    "requests) or `custom` (a custom count out of requests, or out of another custom count).",
    "metrics[].threshold_ms": "Latency: a request slower than this is slow.",
    "metrics[].baseline_quantile": "Latency, sequential judge: slow means slower than the "
    "baseline's own quantile (`p95`, `p99`) before the canary, instead of `threshold_ms`.",
    "metrics[].tolerance_ratio": "How much worse than the baseline the canary may be, as a "
    "ratio (at least 1).",
    "metrics[].tolerance_abs": "How much worse the canary may be, as a difference of rates "
    "(a fraction: 0.002 is 0.2 percentage points); the larger tolerance applies.",
    "metrics[].numerator": "Custom: the source's custom count of bad events.",
    "metrics[].denominator": "Custom: the count they are out of (default: requests).",
    "slos": "Gauges on the dashboard, and guards: the canary must meet them on its own.",
    "slos[].name": "The SLO's name.",
    "slos[].kind": "`availability` (errors) or `latency` (requests slower than `threshold_ms`).",
    "slos[].objective": "The share of good requests promised, e.g. 0.99.",
    "slos[].threshold_ms": "Latency SLOs: a request slower than this is bad.",
    "judge": "How verdicts are reached. The sequential judge needs no setting for bursty "
    "traffic: it measures how clustered each metric's bad events are in the baseline (the "
    "index of dispersion, over 1 s, 10 s and 60 s) and scales its evidence by it, so errors "
    "that come in bursts do not count as independent ones; the evidence says so "
    "(`errors arrive in bursts: dispersion 3.2x, evidence scaled`). The loop measures it "
    "on the baseline's windows over `judge.baseline_window` before the canary (the audit "
    "log says what it read); where the past cannot be read, comparisons carry next to no "
    "evidence until it is measured (a minute; ten of the source's own windows when its ticks "
    "overlap, as Prometheus' `increase()` over `min_range` do) "
    "([judge robustness](../concepts/judge-robustness.md)).",
    "judge.kind": "`sequential` (anytime-valid confidence sequences) or `threshold` (windowed "
    "rates with a tolerance and a noise check).",
    "judge.window": "Threshold judge: the sliding window.",
    "judge.min_requests": "Canary requests needed (in a step, for the sequential judge) before "
    "a verdict can PASS.",
    "judge.alpha": "Sequential: the false-rollback budget for the whole canary, split across "
    "metrics and SLO guards.",
    "judge.pass_alpha": "Sequential: the risk of passing a step while the canary is beyond its "
    "tolerance.",
    "judge.effect": "What the evidence quotes: `ratio` (canary / baseline) or `difference` "
    "(canary - baseline, in percentage points); the decision is the same.",
    "judge.warmup": "Sequential: for this long after the canary's first window, comparisons "
    "are shown as WARMING UP and never acted on (JIT, cold caches); the SLO guards and the "
    "`ceiling` still fail at once. 0 (the default) turns warm-up off; 60-180 s suits services "
    "that warm up ([judge robustness](../concepts/judge-robustness.md)).",
    "judge.step_warmup": "Sequential: the same warm-up again after each step.",
    "judge.ceiling": "Sequential: the canary's own bad-event rate that fails at once, warm-up or "
    "not (a catastrophic canary), counted from the canary's fifth second (one burst can be most "
    "of its first requests); empty to have none.",
    "judge.baseline_window": "How far back before the canary the loop reads the baseline: "
    "its latency quantiles (`baseline_quantile`), and its windows for the index of dispersion "
    "(sequential judge).",
    "loop": "The automated loop.",
    "loop.tick": "How often the loop reads metrics and decides.",
    "loop.auto_advance": "Follow the plan when a step has held and every metric passes.",
    "loop.auto_rollback": "`armed`: a FAIL kills the canary. Disarming at run time asks for a "
    "reason.",
    "loop.no_data": "What happens while metrics are missing (no data is never a pass).",
    "loop.no_data.grace": "How long metrics may be missing before `action` applies.",
    "loop.no_data.action": "`hold` (keep holding) or `rollback` after the grace.",
    "loop.unattended": "With nobody attached: `hold` the current step or `follow` the plan "
    "(auto-rollback stays armed either way).",
    "audit": "The audit log.",
    "audit.path": "Where the audit log is written (default: "
    "`~/.local/state/canary-tui/audit/<name>.jsonl`).",
    "session": "Who may use the session daemon.",
    "session.operators": "Users (or `@group`s) who may act; everyone else who can reach the "
    "socket only watches. Empty: everyone who can reach it may act.",
    "session.group": "Share the socket with this group (directory 0770, socket 0660), for pairing.",
    "alerts": "Where alerts go besides the terminal's bell and notifications.",
    "alerts.webhooks": "Slack-compatible webhooks, sent from a background thread, retried, "
    "never blocking the loop.",
    "alerts.webhooks[].url": "The webhook's URL.",
    "alerts.webhooks[].url_env": "Read the URL (which often holds a token) from this "
    "environment variable instead.",
    "alerts.webhooks[].timeout": "Per attempt.",
    "alerts.webhooks[].attempts": "How many times a message is tried.",
    "keys": "Rebind keys: binding id to key(s), e.g. `kill: K` (ids in the "
    "[key reference](keys.md)).",
    "source": "Where metrics come from: `kind` picks the metric source, the other keys are its "
    "settings (see [the simulator](../sources/simulator.md) and "
    "[Prometheus](../sources/prometheus.md)).",
    "source.kind": "Which metric source: `simulator` (the default) or `prometheus`.",
    "router": "Where traffic is shifted: `kind` picks the router, the other keys are its "
    "settings (see [traffic routers](../routers/index.md)).",
    "router.kind": "Which traffic router: `simulator` (the default), `argo-rollouts`, `istio`, "
    "`gateway-api` or `deployments`.",
}


def _type_name(annotation: Any) -> str:
    """A reader's name for a field's type: `duration`, `list of ...`, `"a" | "b"`."""
    if annotation is type(None):
        return "null"
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        validators = [getattr(m, "func", None) for m in args[1:]]
        names = {getattr(f, "__name__", "") for f in validators}
        if "_duration" in names:
            return "duration"
        if "_quantile" in names:
            return "quantile"
        return _type_name(args[0])
    if origin is typing.Literal:
        return " \\| ".join(f'`"{a}"`' if isinstance(a, str) else f"`{a}`" for a in args)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in args)
    if origin is list:
        return f"list of {_type_name(args[0])}"
    if origin is dict:
        return f"map of {_type_name(args[0])} to {_type_name(args[1])}"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "section"
    return getattr(annotation, "__name__", str(annotation))


def _field_type(field: FieldInfo) -> str:
    """The type, naming durations and quantiles (pydantic keeps their validators apart)."""
    names = {getattr(getattr(m, "func", None), "__name__", "") for m in field.metadata}
    if "_duration" in names:
        return "duration"
    if "_seconds" in names:
        return "seconds (a number)"
    if "_quantile" in names:
        return "quantile"
    return _type_name(field.annotation)


def _value(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _constraints(field: FieldInfo) -> str:
    words = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<", "min_length": "length >=",
             "max_length": "length <=", "pattern": "matches"}  # fmt: skip
    out = []
    for meta in field.metadata:
        bounds = getattr(getattr(meta, "func", None), "bounds", None)
        if bounds:
            out.append(bounds)
        for attr, word in words.items():
            value = getattr(meta, attr, None)
            if value is not None:
                out.append(f"{word} `{value}`")
    return ", ".join(out)


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return "**required**"
    factory = field.default_factory
    value = factory() if factory is not None else field.default  # type: ignore[call-arg]
    if value is PydanticUndefined:
        return ""
    if isinstance(value, BaseModel):
        return "see below"
    if isinstance(value, list) and value and isinstance(value[0], BaseModel):
        items = [item.model_dump(exclude_defaults=True) for item in value]
        return "; ".join(
            "{" + ", ".join(f"{k}: {_value(v)}" for k, v in item.items()) + "}" for item in items
        )
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    if isinstance(value, list | dict | str) and not value:
        return "empty"
    return f"`{_value(value)}`"


def _nested_model(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    """The section model behind a field, and whether it is a list of them."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    if typing.get_origin(annotation) is list:
        (inner,) = typing.get_args(annotation)
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            return inner, True
    return None, False


def _adapter_kinds(annotation: Any) -> dict[str, type[BaseModel]]:
    """The models of a `source:`/`router:` union on `kind`, by kind (empty: not such a union)."""
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    if typing.get_origin(annotation) not in (typing.Union, types.UnionType):
        return {}
    union = annotation
    out: dict[str, type[BaseModel]] = {}
    for member in typing.get_args(union):
        if typing.get_origin(member) is not typing.Annotated:
            return {}
        model, *meta = typing.get_args(member)
        tags = [m.tag for m in meta if hasattr(m, "tag")]
        if not (tags and isinstance(model, type) and issubclass(model, BaseModel)):
            return {}
        out[tags[0]] = model
    return out


def _adapter_sections(config: type[BaseModel]) -> Iterator[tuple[str, str, type[BaseModel]]]:
    """(section, kind, settings model) for every adapter the config's unions name."""
    for name, field in config.model_fields.items():
        for kind, model in _adapter_kinds(field.annotation).items():
            yield name, kind, model


def _walk(model: type[BaseModel], prefix: str) -> Iterator[tuple[str, type[BaseModel]]]:
    """Every section of the schema, depth first, with its path (`loop.no_data`, `plan[]`)."""
    yield prefix, model
    for name, field in model.model_fields.items():
        nested, is_list = _nested_model(field.annotation)
        if nested is not None:
            path = f"{prefix}.{name}" if prefix else name
            yield from _walk(nested, path + ("[]" if is_list else ""))


def _description(path: str, field: FieldInfo, missing: list[str]) -> str:
    text = field.description or DESCRIPTIONS.get(path)
    if not text:
        missing.append(path)
        return ""
    return text.replace("\n", " ").replace("|", "\\|")


def configuration_page() -> str:
    """The configuration reference, from `Config`; raises if a field is not described."""
    from canary_tui.config.schema import Config

    missing: list[str] = []
    seen: set[str] = set()
    out = [
        "# Configuration reference",
        "",
        "*Generated from the schema (`canary_tui/config/schema.py`) when this site is built.*",
        "",
        "A config is one YAML file. Durations are seconds or strings such as `30s`, `2m`, `1h`"
        " (and `ms`, `d`). Unknown keys are errors. No number may be infinite or NaN, and"
        " durations have bounds (a tick from 100 ms to 1 h, a hold up to 30 days, a no-data"
        " grace up to a day, a webhook timeout up to 5 min). A file over 256 KiB, nested deeper"
        " than 32 levels, or of more than 20,000 values once its aliases are expanded is"
        " refused, and so are recursive aliases and tags such as `!!python/...`. Every error"
        " names the file, the line and the field, all of them at once, e.g.",
        "",
        "```text",
        "canary-tui: checkout.yaml:6: plan[1].weight: Input should be less than or equal to 100",
        "checkout.yaml:11: loop.tik: unknown field (check its spelling)",
        "```",
        "",
    ]
    for path, model in _walk(Config, ""):
        title = path or "top level"
        out += [f"## `{title}`" if path else "## The top level", ""]
        if path:
            seen.add(path.removesuffix("[]"))
            intro = DESCRIPTIONS.get(path.removesuffix("[]"))
            if intro:
                out += [intro + (" A list; each entry has:" if path.endswith("[]") else ""), ""]
        out += ["| field | type | default | constraints | meaning |", "|---|---|---|---|---|"]
        for name, field in model.model_fields.items():
            full = f"{path}.{name}" if path else name
            seen.add(full)
            meaning = _description(full, field, missing)
            nested, _ = _nested_model(field.annotation)
            if nested is not None:
                anchor = full.replace(".", "").replace("[", "").replace("]", "")
                meaning += f" ([below](#{anchor}))"
            kinds = _adapter_kinds(field.annotation)
            if kinds:
                links = ", ".join(f"[`{k}`](#{full}-kind-{k})" for k in kinds)
                meaning += f" Settings by kind: {links}."
            kind, default = _field_type(field), _default(field)
            if kinds:
                kind = "section, by `kind`"
                default = f"`kind: {getattr(field.default, 'kind', '')}`"
            if kind == "duration" and default.startswith("`"):
                default = default[:-1] + " s`"
            out.append(f"| `{name}` | {kind} | {default} | {_constraints(field)} | {meaning} |")
        out.append("")
    documented: dict[type[BaseModel], str] = {}
    for section, kind, model in _adapter_sections(Config):
        seen.add(f"{section}.kind")
        anchor = f"{section}-kind-{kind}"
        if model in documented:
            out += [
                f"## `{section}` kind: `{kind}` {{#{anchor}}}",
                "",
                f"The same settings as [above](#{documented[model]}): one simulated service"
                " serves both; without settings of its own here, it takes the source's.",
                "",
            ]
            continue
        documented[model] = anchor
        out += [
            f"## `{section}` kind: `{kind}` {{#{anchor}}}",
            "",
            f"`{section}: {{kind: {kind}, ...}}`: the settings of the {model.noun()}"  # type: ignore[attr-defined]
            f" (`{model.__module__}`). Any other key is an error that lists these.",
            "",
            "| field | type | default | constraints | meaning |",
            "|---|---|---|---|---|",
        ]
        for name, field in model.model_fields.items():
            if name == "kind":
                continue
            full = f"{section}({kind}).{name}"
            seen.add(full)
            meaning = _description(full, field, missing)
            ftype, default = _field_type(field), _default(field)
            if ftype == "duration" and default.startswith("`"):
                default = default[:-1] + " s`"
            out.append(f"| `{name}` | {ftype} | {default} | {_constraints(field)} | {meaning} |")
        out.append("")
    stale = sorted(set(DESCRIPTIONS) - seen)
    if missing or stale:
        raise SystemExit(
            "scripts/gen_docs.py: configuration fields without a description: "
            f"{', '.join(missing) or 'none'}; descriptions of fields that no longer exist: "
            f"{', '.join(stale) or 'none'}"
        )
    example = (REPO / "examples" / "checkout.yaml").read_text(encoding="utf-8")
    out += [
        "## A complete example",
        "",
        "`examples/checkout.yaml` in the repository, every field with a comment:",
        "",
        "```yaml",
        example.rstrip("\n"),
        "```",
        "",
    ]
    return "\n".join(out)


def cli_page() -> str:
    """The command-line reference: every command's own `--help`, as the terminal shows it."""
    import click

    from canary_tui.cli import cli

    out = [
        "# Command-line reference",
        "",
        "*Generated from the commands themselves (`canary-tui COMMAND --help`) when this site is"
        " built.*",
        "",
    ]

    def visit(command: click.Command, names: list[str], parent: click.Context | None) -> None:
        settings = {**command.context_settings, "terminal_width": 100, "max_content_width": 100}
        ctx = click.Context(command, info_name=names[-1], parent=parent, **settings)
        title = " ".join(names)
        out.extend([f"## `{title}`", "", "```text", command.get_help(ctx).rstrip(), "```", ""])
        if isinstance(command, click.Group):
            for sub in command.list_commands(ctx):
                child = command.get_command(ctx, sub)
                if child is not None and not child.hidden:
                    visit(child, [*names, sub], ctx)

    visit(cli, ["canary-tui"], None)
    return "\n".join(out)


# What the app-wide bindings do, in more words than their footer labels.
APP_KEYS = {
    "help": "the current screen's keys, from the live bindings; greyed ones say why not now",
    "evidence": "every verdict in full: rates, interval, tolerance, counts, p-value, rule; live,"
    " or in a replay the frame shown",
    "theme": "pick a theme; the choice is remembered in settings.yaml",
    "detach": "leave the dashboard; the session daemon and its loop carry on",
    "quit": "leave; the last one attached chooses: keep the loop running, or stop it",
}


def _key_name(key: str) -> str:
    return {"question_mark": "?", "colon": ":", "escape": "esc"}.get(key, key)


def keys_page() -> str:
    """The dashboard's keys, from the bindings the dashboard itself uses."""
    from canary_tui.tui.app import CanaryApp
    from canary_tui.tui.keymap import ACTION_KEYS, app_bindings

    out = [
        "# Key reference",
        "",
        "*Generated from the dashboard's bindings (`canary_tui/tui/keymap.py`) when this site is"
        " built.* Rebind any of them by id in the config's `keys:` (or `settings.yaml`'s), e.g."
        " `keys: {kill: K}`; `?` in the dashboard lists the current screen's keys as bound.",
        "",
        "| key | id | what it does |",
        "|---|---|---|",
    ]
    for action in ACTION_KEYS:
        out.append(f"| `{action.key}` | `{action.id}` | {action.help} |")
    for binding in app_bindings():
        for key in binding.key.split(","):
            what = APP_KEYS.get(binding.id or "", binding.description)
            out.append(f"| `{_key_name(key)}` | `{binding.id}` | {what} |")
    palette = _key_name(CanaryApp.COMMAND_PALETTE_BINDING)
    out += [
        f"| `{palette}` | | the command palette: every action, and the evidence view, by name |",
        "",
        "Keys the current state forbids are greyed out; pressed anyway, the loop refuses them with"
        " the reason ([one action path](../concepts/actions-and-audit.md)). The replay's keys are"
        " on [the audit log and recordings](../audit-and-recordings.md#replay-keys).",
        "",
    ]
    return "\n".join(out)


def sample_report_page() -> str:
    """The real report of recordings/auto-rollback.ctrec, its headings one level down."""
    from canary_tui.records.reader import Recording
    from canary_tui.records.report import build_report, render_markdown

    path = REPO / "recordings" / "auto-rollback.ctrec"
    with Recording.open(path) as rec:
        text = render_markdown(build_report(rec))
    lines, fenced = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        lines.append("#" + line if line.startswith("#") and not fenced else line)
    return "\n".join(
        [
            "# Sample report",
            "",
            "*The output of `canary-tui report recordings/auto-rollback.ctrec`, made when this site"
            " is built: the error-regression sample recording, in which the loop rolls the canary"
            " back by itself.*",
            "",
            *lines,
            "",
        ]
    )


PAGES: dict[str, Callable[[], str]] = {
    "reference/configuration.md": configuration_page,
    "reference/cli.md": cli_page,
    "reference/keys.md": keys_page,
    "sample-report.md": sample_report_page,
}


def on_files(files: Any, config: Any) -> Any:
    """mkdocs hook: add the generated pages to the site."""
    from mkdocs.structure.files import File

    _repo_first()
    for uri, make in PAGES.items():
        files.append(File.generated(config, uri, content=make()))
    return files


def screenshot(target: Path = REPO / "docs" / "assets" / "dashboard.svg") -> None:
    """The README's picture: the latency-regression demo at 100x30 just after the rollback."""
    import asyncio
    import os
    import tempfile

    from canary_tui.session.inprocess import InProcessSession
    from canary_tui.tui.app import make_app
    from tests.conftest import make_rig
    from tests.tui_support import ALICE, settle

    os.environ.pop("NO_COLOR", None)
    os.environ["TERM"] = "xterm-256color"

    async def shoot() -> str:
        with tempfile.TemporaryDirectory() as tmp:
            os.environ["CANARY_TUI_RECORDINGS"] = "off"
            os.environ["XDG_CONFIG_HOME"] = tmp
            rig = make_rig(Path(tmp), "latency-regression", seed=3, judge="sequential")
            rig.ticks(400, until=lambda engine: engine.state.terminal)
            rig.ticks(4)
            app = make_app(InProcessSession(rig.engine, ALICE))
            async with app.run_test(size=(100, 30)) as pilot:
                await settle(pilot, 8)
                return app.export_screenshot(title="canary-tui")

    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(asyncio.run(shoot()), encoding="utf-8")
    print(f"wrote {target}")


def main(argv: list[str]) -> int:
    if argv == ["screenshot"]:
        screenshot()
        return 0
    names = {uri.split("/")[-1].removesuffix(".md"): make for uri, make in PAGES.items()}
    if len(argv) != 1 or argv[0] not in names:
        print(f"usage: gen_docs.py {{{'|'.join([*names, 'screenshot'])}}}", file=sys.stderr)
        return 2
    print(names[argv[0]]())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
