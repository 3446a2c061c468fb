"""``fleetsync relay add|remove|list``, ``refresh`` and ``apply``: the commands that talk
to relays.

``apply`` exits 0 when every planned engram was published and confirmed, 2
when some agents are still not in sync (failed, unknown, conflicts), 3 when
nothing is known to be wrong but some relay could not be read (those agents
are "unverified", never "unchanged"), 1 on error. ``refresh`` exits 3 the
same way. Each relay that could not be read is named, with why. The progress
bar goes to stderr, only on a terminal and not with ``--quiet``; the summary
(or ``--json``) goes to stdout. Both are
:mod:`adapters.cli.publish`'s, which ``persona save`` and ``agent create`` share.
``refresh`` and ``apply`` both show what each relay's wire cost (connections,
the most open at once, NIP-42 handshakes, HTTP requests; ``--json``:
``traffic``); only an apply records it in the log.
"""

from __future__ import annotations

from typing import Any

from adapters.cli.output import EXIT_UNVERIFIED, Context, filters_of
from adapters.cli.publish import confirmed_line, print_report, progress_for
from adapters.cli.reports import run_plan
from adapters.relay.urls import canonical_url
from adapters.usecases.apply import ApplyRequest, apply, refresh
from adapters.usecases.relays import add_relay, describe_relays, remove_relay


def run_relay_add(ctx: Context) -> int:
    url = canonical_url(ctx.args.url)
    with ctx.fleet() as fleet:
        result = add_relay(fleet, url)
    added, lacking = result.added, result.lacking
    if ctx.json:
        ctx.emit_json({"relay": url, "added": added})
    elif not added:
        ctx.out(f"relay {url} is already configured")
    else:
        ctx.out(f"added relay {url}")
        if lacking:
            ctx.out(
                f"{lacking} agent(s) lack their engram there; "
                "'fleetsync apply' sends each one its current engram"
            )
    return 0


def run_relay_remove(ctx: Context) -> int:
    url = canonical_url(ctx.args.url)
    with ctx.fleet() as fleet:
        remove_relay(fleet, url)
    if ctx.json:
        ctx.emit_json({"relay": url, "removed": True})
    else:
        ctx.out(f"removed relay {url}")
    return 0


def run_relay_list(ctx: Context) -> int:
    with ctx.fleet() as fleet:
        shown = describe_relays(fleet)
    if ctx.json:
        ctx.emit_json(
            {
                "relays": [r.url for r in shown],
                "wires": [{"url": r.url, "kind": r.kind, "auth": r.auth} for r in shown],
            }
        )
    elif shown:
        width = max(len(r.url) for r in shown)
        for r in shown:
            ctx.out(f"{r.url:<{width}}  {r.kind:<11}  {r.auth}")
    else:
        ctx.out("no relays configured; add one with 'fleetsync relay add URL'")
    return 0


def run_apply(ctx: Context) -> int:
    if ctx.args.dry_run:
        return run_plan(ctx)
    request = ApplyRequest(
        filters=filters_of(ctx),
        refresh=not ctx.args.no_refresh,
        overwrite_conflicts=ctx.args.overwrite_conflicts,
        ack_all=ctx.args.ack == "all",
    )
    with ctx.fleet() as fleet:
        report = apply(fleet, request, progress_for(ctx))
    return print_report(ctx, report)


def run_refresh(ctx: Context) -> int:
    with ctx.fleet() as fleet:
        result = refresh(fleet, filters_of(ctx))
    live, observed, confirmed = result.agents, result.observed, result.confirmed
    unreadable, unverified = result.unreadable, result.unverified
    doc: dict[str, Any] = {
        "agents": live,
        "observed_drift": observed,
        "confirmed": confirmed,
        "verified": result.verified,
        "read": list(result.read),
        "unreadable": unreadable,
        "unverified": unverified,
        "traffic": {url: traffic.as_dict() for url, traffic in result.traffic.items()},
    }
    if ctx.json:
        ctx.emit_json(doc)
    else:
        if not result.relays and live:
            ctx.out("no relays configured; add one with 'fleetsync relay add URL'")
        for url, why in unreadable.items():
            ctx.out(f"relay {url} could not be read: {why}")
        for url, traffic in result.traffic.items():
            ctx.out(f"relay {url} over {traffic.describe()}")
        read = f"{live - unverified} of {live}" if unverified else f"{live}"
        ctx.out(
            f"read {read} agent(s) on every relay; "
            f"{observed} hold something other than the log said"
        )
        if confirmed:
            ctx.out(confirmed_line(confirmed))
        if unverified:
            ctx.out(
                f"not verified: {unverified} agent(s) could not be read on every relay, "
                "so whether they are in sync is unknown"
            )
    return 0 if result.verified else EXIT_UNVERIFIED
