"""The command table: every ``fleetsync`` command, its arguments and help, and its handler.

A command line is parsed against the whole tree of commands (``--help`` shows
any page of it), but only one command runs, so the table is light: declaring
a command imports nothing but :mod:`argparse` and the few constants its help
quotes. Each command names its handler (:class:`Handler`: a module of
:mod:`adapters.cli` and a ``run_*`` function in it), and the handler's module,
with the use cases, the store and the relay wires it needs, is imported only
when that command runs: ``status`` and ``plan`` never import the relay client
(aiohttp), the HTTP bridge or the OS keyring, and ``--help`` and ``--version``
import neither the store nor the key crypto (``tests/e2e/test_startup.py`` holds
this). The constants a help page quotes are kept where that costs nothing
(:mod:`adapters.home`, :mod:`adapters.buzz`, :mod:`adapters.nostr.nip49_cost`).

The flags several commands share (``--json``, ``--yes``, ``--team``, the
publish flags) are declared here, once.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

from adapters.buzz import APP_IDENTIFIER, KEYRING_SERVICE
from adapters.home import KEY_FILE
from adapters.nostr.nip49_cost import DEFAULT_LOG_N, MAX_LOG_N

if TYPE_CHECKING:
    from adapters.cli.output import Context

# What ``add_subparsers`` returns; each group of commands is declared on it.
Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

# Where each group's handlers are: imported when one of its commands runs.
_SETUP = "adapters.cli.setup"
_PERSONAS = "adapters.cli.personas"
_TEAMS = "adapters.cli.teams"
_AGENTS = "adapters.cli.agents"
_REPORTS = "adapters.cli.reports"
_SYNC = "adapters.cli.sync"
_KEYS = "adapters.cli.keys"
_BUZZ = "adapters.cli.buzz"

AGENT_HELP = "the agent: its name, short id (8+ hex characters of its key), hex key or npub"
# The setting that holds a NIP-49 ncryptsec's password ('key export' seals with it;
# 'init --owner-nsec', 'agent import' and 'key import' open with it), for messages and
# help (adapters.settings reads it).
BACKUP_PASSPHRASE_ENV = "FLEETSYNC_BACKUP_PASSPHRASE"  # noqa: S105
# Agents a report lists one by one unless asked (--list; --json lists them all).
CREATE_LISTS_UP_TO = 10  # agent create: more are summarised
BUZZ_IMPORT_LISTS_UP_TO = 20  # import buzz
PUBLISH_EPILOG = (
    "Publishes right away, as 'fleetsync apply' would (progress on a terminal's stderr), "
    "and reports what was published. A relay failure never undoes what was recorded. "
    "Exit codes: 0 recorded and published (or nothing to publish); 2 recorded, but some "
    "agents are not in sync yet ('fleetsync apply' retries); 3 recorded, but a relay could "
    "not be read; 1 error, nothing recorded."
)


@dataclass(frozen=True, slots=True)
class Handler:
    """A command's handler: ``name`` in ``module``, imported when the command runs."""

    module: str
    name: str

    def resolve(self) -> Callable[[Context], int]:
        handler: Callable[[Context], int] = getattr(importlib.import_module(self.module), self.name)
        return handler

    def __call__(self, ctx: Context) -> int:
        return self.resolve()(ctx)


def register(commands: Subcommands) -> None:
    """Declare every command on ``commands``, in the order ``--help`` lists them."""
    _setup(commands)
    _personas(commands)
    _teams(commands)
    _agents(commands)
    _reports(commands)
    _sync(commands)
    _keys(commands)
    _buzz(commands)


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    """``--json`` after the command too; SUPPRESS keeps a global ``--json`` from being reset."""
    parser.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output"
    )


def add_yes_flag(parser: argparse.ArgumentParser, what: str) -> None:
    """``--yes``: the one flag that confirms a destructive action without asking."""
    parser.add_argument(
        "--yes",
        action="store_true",
        help=f"{what} without asking (needed when stdin is not a terminal)",
    )


def add_team_flag(parser: argparse.ArgumentParser, what: str) -> None:
    """``--team TEAM``: narrow a command to the personas of one team (and their agents)."""
    parser.add_argument("--team", metavar="TEAM", help=f"only {what} of this team's personas")


def add_publish_flags(parser: argparse.ArgumentParser, what: str) -> None:
    """``--no-apply`` and ``--quiet`` for a command that publishes what it records."""
    parser.add_argument(
        "--no-apply",
        action="store_true",
        help=f"do not publish {what} now ('fleetsync apply' will)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress display")


def _setup(commands: Subcommands) -> None:
    parser = commands.add_parser(
        "init",
        help="create a fleetsync home (vault, key store, owner key, event store)",
        description="Create a fleetsync home in a new or empty directory. With "
        "FLEETSYNC_PASSPHRASE set (or typed when asked on a terminal), secrets are "
        "sealed with a key derived from it (argon2id); otherwise a key file "
        f"HOME/{KEY_FILE} (mode 0600) is created: back it up, secrets cannot be read "
        "without it. The store URL used is recorded in HOME/home.json (without its "
        "password), so later commands need no --store.",
    )
    parser.add_argument(
        "--owner-nsec",
        metavar="NSEC|-",
        help="use an existing owner key (nsec, hex, or a NIP-49 ncryptsec whose password "
        f"comes from ${BACKUP_PASSPHRASE_ENV} or a prompt) instead of generating one; "
        "'-' reads it from stdin, which keeps it out of shell history",
    )
    parser.add_argument(
        "--owner-from-buzz",
        nargs="?",
        const="",
        metavar="APP_DATA_DIR",
        help="use the buzz desktop's identity as the owner key: from buzz's OS keyring item "
        "(service buzz-desktop, user secrets), else the identity.key file of its app-data "
        "directory (default: buzz's own); then 'import buzz' keeps buzz's engrams",
    )
    add_json_flag(parser)
    parser.set_defaults(func=Handler(_SETUP, "run_init"))


def _personas(commands: Subcommands) -> None:
    persona = commands.add_parser("persona", help="save, list, show and delete personas")
    sub = persona.add_subparsers(dest="persona_command", metavar="ACTION", required=True)

    save = sub.add_parser(
        "save",
        help="create or update a persona from a JSON definition",
        description="Save a persona from JSON: display_name and system_prompt (required), "
        "avatar_url, runtime, model, provider, name_pool, and env_vars (secrets, sealed "
        "at rest, never published in the persona). Saving an identical definition "
        "records nothing.",
        epilog=PUBLISH_EPILOG,
    )
    save.add_argument("slug", metavar="SLUG", help="persona slug: ^[a-z0-9][a-z0-9_-]{0,63}$")
    save.add_argument("file", metavar="FILE|-", help="JSON definition file, or '-' for stdin")
    add_publish_flags(save, "its agents' engrams")
    add_json_flag(save)
    save.set_defaults(func=Handler(_PERSONAS, "run_save"))

    listing = sub.add_parser("list", help="list personas")
    listing.add_argument("--all", action="store_true", help="include deleted personas")
    add_json_flag(listing)
    listing.set_defaults(func=Handler(_PERSONAS, "run_list"))

    show = sub.add_parser(
        "show",
        help="show a persona (secrets hidden)",
        description="Show a persona's current version: its public members, the names of "
        "its env_vars (never their values) and its digests; --history lists every version.",
    )
    show.add_argument("slug", metavar="SLUG", help="the persona's slug")
    show.add_argument(
        "--history", action="store_true", help="list every saved version: when, who, digest"
    )
    add_json_flag(show)
    show.set_defaults(func=Handler(_PERSONAS, "run_show"))

    delete = sub.add_parser(
        "delete",
        help="delete a persona (its history is kept)",
        description="Delete a persona. Its agents stay, without a persona to follow, until "
        "moved or retired; the engrams they hold on the relays (the persona and its "
        "secrets) are tombstoned right away, or by the next apply. With live agents it "
        "asks first (or takes --yes).",
    )
    delete.add_argument("slug", metavar="SLUG", help="the persona's slug")
    delete.add_argument(
        "--no-apply",
        action="store_true",
        help="do not tombstone its agents' engrams now ('fleetsync apply' will)",
    )
    add_yes_flag(delete, "delete a persona that live agents follow")
    add_json_flag(delete)
    delete.set_defaults(func=Handler(_PERSONAS, "run_delete"))

    pull = sub.add_parser(
        "pull",
        help="take in the owner's kind:30175 persona events from the relays",
        description="Read the owner's kind:30175 persona events from every relay, keep the "
        "newest valid one per slug, and record each that is new here, or was edited "
        "elsewhere (in buzz) after the version saved here, as a persona save whose cause is "
        "that event ('audit --persona SLUG' shows it). A persona the owner asked to delete "
        "(a NIP-09 kind:5 request, by event id or by address, with nothing written since) "
        "is deleted here with the request as its cause, unless the version here was written "
        "after the request; its agents' engrams are tombstoned. Events with a bad envelope or "
        "signature, and a newest event with unusable content, are set aside with their "
        "reason. env_vars stay as saved here. Pulling again records nothing. Exit 3 when a "
        "relay could not be read.",
        epilog=PUBLISH_EPILOG,
    )
    add_publish_flags(pull, "its agents' engrams")
    add_json_flag(pull)
    pull.set_defaults(func=Handler(_PERSONAS, "run_pull"))


def _teams(commands: Subcommands) -> None:
    team = commands.add_parser("team", help="teams: groups of personas, brought in from buzz")
    sub = team.add_subparsers(dest="team_command", metavar="ACTION", required=True)

    imp = sub.add_parser(
        "import",
        help="bring a team in: a buzz-team-snapshot file or a legacy persona-pack directory",
        description="Bring a team and its personas in, as persona saves and a team, all or "
        "nothing. PATH is a buzz-team-snapshot v1 file (.team.json or .team.png) or a legacy "
        "persona-pack directory (.plugin/plugin.json and *.persona.md files; needs "
        "FLEETSYNC_LEGACY_TEAM_SYNC, on by default). Importing the same team again records "
        "nothing; a changed pack is brought in with 'team sync'.",
        epilog=PUBLISH_EPILOG,
    )
    imp.add_argument("path", metavar="PATH", help="a .team.json / .team.png file or a pack dir")
    imp.add_argument(
        "--id",
        metavar="ID",
        help="the team's id for a snapshot (default: made from its name); a pack's is its id",
    )
    add_publish_flags(imp, "changed personas' engrams")
    add_json_flag(imp)
    imp.set_defaults(func=Handler(_TEAMS, "run_import"))

    sync = sub.add_parser(
        "sync",
        help="bring an imported persona pack's changes in",
        description="Update an imported team from its persona-pack directory (or snapshot "
        "file, with --id as imported): personas' public content is updated (their env_vars "
        "are kept), new personas are added, personas that left the pack leave the team and "
        "are deleted unless an agent follows them. Needs FLEETSYNC_LEGACY_TEAM_SYNC for a "
        "directory. Run again, it records nothing.",
        epilog=PUBLISH_EPILOG,
    )
    sync.add_argument("path", metavar="PATH", help="the pack directory (or snapshot file)")
    sync.add_argument("--id", metavar="ID", help="the team's id, for a snapshot file")
    add_publish_flags(sync, "changed personas' engrams")
    add_json_flag(sync)
    sync.set_defaults(func=Handler(_TEAMS, "run_sync"))

    pull = sub.add_parser(
        "pull",
        help="follow the owner's buzz teams (kind:30176) on the relays",
        description="Read the owner's kind:30176 team events from every relay and record "
        "the newest valid one of each team as its version: name, description, "
        "instructions and member personas (buzz persona ids, taken as the slugs buzz makes "
        "of them; one naming no persona here is left out and reported: 'persona pull' "
        "first). A team the owner asked to delete (a NIP-09 kind:5 request, by event id or "
        "by address, with nothing written since) is removed, the request recorded as the "
        "cause; anyone else's request is ignored. Events with a bad envelope, signature or "
        "content are set aside with their reason. Pulling again records nothing. Exit 3 "
        "when a relay could not be read.",
    )
    add_json_flag(pull)
    pull.set_defaults(func=Handler(_TEAMS, "run_pull"))

    listing = sub.add_parser("list", help="list teams and their personas")
    add_json_flag(listing)
    listing.set_defaults(func=Handler(_TEAMS, "run_list"))

    show = sub.add_parser("show", help="show one team: name, instructions, personas, source")
    show.add_argument("team", metavar="TEAM", help="the team's id, as 'team list' shows it")
    add_json_flag(show)
    show.set_defaults(func=Handler(_TEAMS, "run_show"))

    remove = sub.add_parser(
        "remove",
        help="forget a team (its personas stay)",
        description="Remove a team: its personas and their agents stay as they are.",
    )
    remove.add_argument("team", metavar="TEAM", help="the team's id")
    add_json_flag(remove)
    remove.set_defaults(func=Handler(_TEAMS, "run_remove"))


def _agents(commands: Subcommands) -> None:
    agent = commands.add_parser(
        "agent", help="create, import, list, move, retire and attest agents"
    )
    sub = agent.add_subparsers(dest="agent_command", metavar="ACTION", required=True)

    create = sub.add_parser(
        "create",
        help="create agents (new key pairs) from a persona",
        description="Create N agents in one transaction. Names: --name (suffixed -1..-N "
        "when N > 1), else the persona's name_pool in turn (suffixed on reuse), else "
        "SLUG-1, SLUG-2, ...",
        epilog=PUBLISH_EPILOG,
    )
    create.add_argument(
        "--persona", required=True, metavar="SLUG", help="the persona the agents follow"
    )
    create.add_argument(
        "--count", type=int, default=1, metavar="N", help="how many agents (default: 1)"
    )
    create.add_argument(
        "--name",
        metavar="NAME",
        help="their name (suffixed -1..-N when N > 1): 1-128 characters, no control or "
        "bidi characters",
    )
    create.add_argument(
        "--force",
        action="store_true",
        help="allow a --name another live agent of the persona already has",
    )
    add_publish_flags(create, "their engrams")
    create.add_argument(
        "--list",
        action="store_true",
        help=f"list every agent created (default: up to {CREATE_LISTS_UP_TO}; --json lists "
        "them all)",
    )
    add_json_flag(create)
    create.set_defaults(func=Handler(_AGENTS, "run_create"))

    imp = sub.add_parser(
        "import", help="adopt an existing key pair as an agent", epilog=PUBLISH_EPILOG
    )
    imp.add_argument(
        "--nsec",
        required=True,
        metavar="NSEC|-",
        help="the agent's secret key (nsec, hex, or a NIP-49 ncryptsec opened with "
        f"${BACKUP_PASSPHRASE_ENV} or a prompt); '-' reads it from stdin, which keeps "
        "it out of shell history",
    )
    imp.add_argument("--persona", required=True, metavar="SLUG", help="the persona it follows")
    imp.add_argument(
        "--name", metavar="NAME", help="its name (default: the next from the name_pool)"
    )
    imp.add_argument(
        "--force",
        action="store_true",
        help="allow a --name another live agent of the persona already has",
    )
    add_publish_flags(imp, "its engram")
    add_json_flag(imp)
    imp.set_defaults(func=Handler(_AGENTS, "run_import"))

    listing = sub.add_parser("list", help="list agents and their reconcile status")
    listing.add_argument("--persona", metavar="SLUG", help="only agents of this persona")
    add_team_flag(listing, "agents")
    listing.add_argument("--all", action="store_true", help="include retired agents")
    add_json_flag(listing)
    listing.set_defaults(func=Handler(_AGENTS, "run_list"))

    move = sub.add_parser("move", help="make an agent follow another persona")
    move.add_argument("agent", metavar="AGENT", help=AGENT_HELP)
    move.add_argument(
        "--persona", required=True, metavar="SLUG", help="the persona it follows from now on"
    )
    move.add_argument(
        "--force",
        action="store_true",
        help="move it even if a live agent of that persona has the same name",
    )
    add_json_flag(move)
    move.set_defaults(func=Handler(_AGENTS, "run_move"))

    retire = sub.add_parser(
        "retire",
        help="retire an agent (no more engrams; its engram is tombstoned)",
        description="Retire an agent: it gets no more engrams, and the engram it holds on "
        "the relays (the persona and its secrets) is tombstoned right away (NIP-AE "
        "replacement with a null value, then a NIP-09 deletion request), or by the next "
        "apply. --destroy-key destroys its secret key only once that tombstone is "
        "confirmed: the key is what signs it. Exit 2 when the key was kept for that reason.",
    )
    retire.add_argument("agent", metavar="AGENT", help=AGENT_HELP)
    retire.add_argument(
        "--destroy-key",
        action="store_true",
        help="also destroy its secret key (irreversible; the agent can never sign again)",
    )
    retire.add_argument(
        "--no-apply",
        action="store_true",
        help="do not tombstone its engram now ('fleetsync apply' will)",
    )
    add_yes_flag(retire, "destroy the key")
    add_json_flag(retire)
    retire.set_defaults(func=Handler(_AGENTS, "run_retire"))

    attest = sub.add_parser(
        "attest",
        help="mint a fresh owner attestation (NIP-OA) for an agent",
        description="Sign a new NIP-OA attestation of the agent with the owner key and keep "
        "it in the log in place of the one it had: the 'auth' tag a buzz relay that admits "
        "members' agents asks for. Agents get one when they are created or imported; "
        "retiring an agent withdraws it. With --missing, every live agent that has none "
        "(made before attestations existed) gets one, in one transaction.",
    )
    attest.add_argument("agent", metavar="AGENT", nargs="?", help=AGENT_HELP)
    attest.add_argument(
        "--missing",
        action="store_true",
        help="attest every live agent that has no attestation (instead of AGENT)",
    )
    add_json_flag(attest)
    attest.set_defaults(func=Handler(_AGENTS, "run_attest"))


def _reports(commands: Subcommands) -> None:
    plan = commands.add_parser(
        "plan",
        help="show which agents need a new persona engram, and why (exit 2: changes pending)",
        description="Show the engrams that would be published. Exit code 0 when nothing is "
        "to do, 2 when changes are pending, 1 on error.",
    )
    plan.add_argument("--agent", metavar="AGENT", help=f"only this agent ({AGENT_HELP})")
    plan.add_argument("--persona", metavar="SLUG", help="only agents of this persona")
    add_team_flag(plan, "agents")
    add_json_flag(plan)
    plan.set_defaults(func=Handler(_REPORTS, "run_plan"))

    status = commands.add_parser(
        "status",
        help="reconcile status per persona",
        description="Count each persona's agents by reconcile status (in-sync, out-of-date, "
        "pending, conflict, ...), as the log records it: run 'fleetsync refresh' first to "
        "take in what the relays hold now.",
    )
    status.add_argument("--persona", metavar="SLUG", help="only this persona")
    add_team_flag(status, "the personas")
    add_json_flag(status)
    status.set_defaults(func=Handler(_REPORTS, "run_status"))

    audit = commands.add_parser(
        "audit",
        help="replay history: an agent's persona versions, or a persona's versions and agents",
        description="Replay the log: for --agent, every event about it and the personas it "
        "followed (saves, seals, relay answers, publishes, conflicts) and the status it "
        "had; for --persona, its versions and which version each agent carries. --as-of "
        "cuts the history at a time or log position.",
    )
    target = audit.add_mutually_exclusive_group(required=True)
    target.add_argument("--agent", metavar="AGENT", help=f"audit this agent ({AGENT_HELP})")
    target.add_argument("--persona", metavar="SLUG", help="audit this persona and its agents")
    audit.add_argument(
        "--as-of",
        metavar="TIME|POSITION",
        help="answer as of an ISO-8601 time or a log position",
    )
    add_json_flag(audit)
    audit.set_defaults(func=Handler(_REPORTS, "run_audit"))


def _sync(commands: Subcommands) -> None:
    relay = commands.add_parser("relay", help="the relays every engram is written to")
    relay_commands = relay.add_subparsers(dest="relay_command", metavar="COMMAND", required=True)
    add = relay_commands.add_parser(
        "add",
        help="add a relay (ws:// or wss:// URL; http:// or https:// for a buzz HTTP bridge)",
        description="Add a relay to the list every engram is written to and read from. "
        "The scheme says the wire: ws:// or wss:// is a websocket relay, http:// or "
        "https:// a buzz relay's HTTP bridge (POST /events and /query, NIP-98 on every "
        "request). Adding one already configured changes nothing.",
    )
    add.add_argument(
        "url",
        metavar="URL",
        help="the relay's ws:// or wss:// URL, or its bridge's http:// or https:// base URL",
    )
    add_json_flag(add)
    add.set_defaults(func=Handler(_SYNC, "run_relay_add"))
    remove = relay_commands.add_parser(
        "remove",
        help="stop writing to a relay",
        description="Remove a relay from the list: engrams are no longer written to it or "
        "read from it. What it holds stays there.",
    )
    remove.add_argument("url", metavar="URL", help="the relay's URL, as 'relay list' shows it")
    add_json_flag(remove)
    remove.set_defaults(func=Handler(_SYNC, "run_relay_remove"))
    listing = relay_commands.add_parser(
        "list", help="the configured relays, each with its wire and how it authenticates"
    )
    add_json_flag(listing)
    listing.set_defaults(func=Handler(_SYNC, "run_relay_list"))

    apply = commands.add_parser(
        "apply",
        help="publish every engram the plan asks for (exit 2: some agents still not in sync)",
        description="Refresh what the relays hold, plan, then publish and confirm. Sealed but "
        "unconfirmed engrams are resent first, byte for byte.",
    )
    apply.add_argument("--agent", metavar="AGENT", help=f"only this agent ({AGENT_HELP})")
    apply.add_argument("--persona", metavar="SLUG", help="only agents of this persona")
    add_team_flag(apply, "agents")
    apply.add_argument("--dry-run", action="store_true", help="only show the plan")
    apply.add_argument("--quiet", action="store_true", help="no progress bar")
    apply.add_argument(
        "--no-refresh", action="store_true", help="trust the log; do not read heads first"
    )
    apply.add_argument(
        "--ack",
        choices=("any", "all"),
        default="any",
        help="when an engram counts as published: one relay acknowledged it (default) or "
        "every relay did; either way the head read back must be ours",
    )
    apply.add_argument(
        "--overwrite-conflicts",
        action="store_true",
        help="also write over heads another writer put there (conflicts wait for this)",
    )
    add_json_flag(apply)
    apply.set_defaults(func=Handler(_SYNC, "run_apply"))

    refresh = commands.add_parser(
        "refresh",
        help="read every agent's engram head from the relays and record drift",
        description="Read every live agent's mem/persona head from the relays and record, "
        "in the log, each one that differs from what the log says (drift). Publishes "
        "nothing: 'fleetsync plan' then shows what the next apply would do about it.",
    )
    refresh.add_argument("--persona", metavar="SLUG", help="only agents of this persona")
    add_json_flag(refresh)
    refresh.set_defaults(func=Handler(_SYNC, "run_refresh"))


def _keys(commands: Subcommands) -> None:
    key = commands.add_parser(
        "key",
        help="back up and restore the owner's and agents' keys (NIP-49 ncryptsec)",
    )
    sub = key.add_subparsers(dest="key_command", metavar="COMMAND", required=True)
    export = sub.add_parser(
        "export",
        help="write every key as a password-encrypted ncryptsec line",
        description="Write the owner's key and every stored agent key as NIP-49 ncryptsec "
        "strings (scrypt + XChaCha20-Poly1305), one per line, to stdout or --output. The "
        f"password comes from ${BACKUP_PASSPHRASE_ENV} or a prompt on a terminal.",
    )
    export.add_argument(
        "--agent",
        action="append",
        metavar="AGENT",
        help="only this agent: name, short id, hex or npub (repeatable)",
    )
    export.add_argument("--persona", metavar="SLUG", help="only agents of this persona")
    export.add_argument("--no-owner", action="store_true", help="leave the owner's key out")
    export.add_argument(
        "--output",
        "-o",
        metavar="FILE",
        help="write to FILE (created with mode 0600; an existing file is never overwritten)",
    )
    export.add_argument(
        "--log-n",
        type=int,
        default=DEFAULT_LOG_N,
        metavar="N",
        help=f"scrypt work factor 2^N (default {DEFAULT_LOG_N}: 64 MiB per key; "
        f"at most {MAX_LOG_N})",
    )
    export.add_argument(
        "--print-plaintext-keys",
        action="store_true",
        help="write unencrypted nsec keys instead: whoever reads them controls the agents",
    )
    add_json_flag(export)
    export.set_defaults(func=Handler(_KEYS, "run_export"))

    restore = sub.add_parser(
        "import",
        help="put back the keys of a backup written by 'key export'",
        description="Decrypt every line of a backup and check it before storing anything; "
        "keys of agents this home knows go back into the key store, unknown agents are "
        "created only with --persona. Importing the same backup twice changes nothing.",
    )
    restore.add_argument("file", metavar="FILE", help="the backup file ('-' reads stdin)")
    restore.add_argument(
        "--persona",
        metavar="SLUG",
        help="create the agents this home does not know, following this persona",
    )
    add_json_flag(restore)
    restore.set_defaults(func=Handler(_KEYS, "run_import"))


def _buzz(commands: Subcommands) -> None:
    imp = commands.add_parser("import", help="take over another tool's fleet (buzz)")
    sub = imp.add_subparsers(dest="import_source", metavar="SOURCE", required=True)
    buzz = sub.add_parser(
        "buzz",
        help="import the buzz desktop's personas and agents (agents keep their keys)",
        description="Import every persona and agent of a buzz desktop app-data directory, "
        "of any era (personas.json beside managed-agents.json, or definitions folded into "
        "managed-agents.json). Agents keep their key pairs: a key comes from "
        "private_key_nsec, else from buzz's OS keyring item (service buzz-desktop, user "
        "secrets), and goes straight into the sealed key store. All or nothing: a record "
        "fleetsync cannot take stops the import, naming the file and the record, and "
        "nothing is written. Importing the same data again records nothing. Nothing is "
        "published: the imported agents' engrams are read from the relays right after "
        "(as 'fleetsync refresh' reads them), so 'fleetsync plan' shows what 'apply' "
        "would write. Exit codes: 0 imported (or nothing to import); 3 imported, but a "
        "relay could not be read ('fleetsync refresh' reads it again); 1 error, nothing "
        "recorded.",
    )
    buzz.add_argument(
        "app_data",
        nargs="?",
        metavar="APP_DATA_DIR",
        help=f"buzz's app-data directory (default: {APP_IDENTIFIER} in the user's data "
        "directory: $XDG_DATA_HOME or ~/.local/share on Linux, ~/Library/Application Support "
        "on macOS, %%APPDATA%% on Windows)",
    )
    buzz.add_argument(
        "--dry-run", action="store_true", help="show what the import would do; write nothing"
    )
    buzz.add_argument(
        "--keyring-service",
        default=KEYRING_SERVICE,
        metavar="NAME",
        help=f"the keyring service buzz keeps its keys under (default: {KEYRING_SERVICE};"
        " a debug build of buzz uses buzz-desktop-dev)",
    )
    buzz.add_argument(
        "--no-refresh",
        action="store_true",
        help="do not read the imported agents' engrams from the relays now "
        "('fleetsync refresh' or 'apply' will)",
    )
    buzz.add_argument(
        "--list",
        action="store_true",
        help=f"list every agent (default: up to {BUZZ_IMPORT_LISTS_UP_TO})",
    )
    add_json_flag(buzz)
    buzz.set_defaults(func=Handler(_BUZZ, "run_import_buzz"))
