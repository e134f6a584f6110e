"""A fourth synthetic agent log for consolidation: a small team's coding agent over ~60 days.

Independence: written from a short spec alone. Its author did not open the consolidation
code (memory_service/consolidate/), the other generators' phrasings
(benchmarks/synthetic_paraphrase.py, benchmarks/synthetic_spec.py, the generate function of
benchmarks/synthetic_log.py), the tests about consolidation or statements, or the docs that
describe the consolidation rules. Only `SyntheticLog` and `EventWriter` were reused from
benchmarks/synthetic_log.py. Every phrasing below is the author's own.

The spec, in short:

- Three to six users (`persons`, clamped to 3..6) talk with a coding assistant ("Agent",
  role assistant) mostly about two to six projects (`persons` / 2, clamped to 2..6), now
  and then about themselves. All events belong to one memory owner, `user_id`; the users
  are speakers.
- Personal facts with one current value: timezone, team, manager, laptop, editor, on-call
  week, desk, phone. Project facts: production port, database engine and version, CI
  provider, deploy region, retry count, cache TTL, API base URL, owner of a module, release
  date, the library chosen for a concern.
- Every tracked fact is stated once and restated later in other words, by a different
  speaker, by the agent, or as a tool result: a duplicate group. About half are changed
  later (after every restatement of the old value), with a cue ("we switched", "from now
  on") or implicitly (a plain statement of another value, or a tool result showing it):
  the pair (first statement, change) is a supersession. Some changed values are restated
  once more, which makes the change and its restatement a duplicate group of their own.
- Tool events `{"name", "arguments", "result"}` (config reads, CODEOWNERS, deploys,
  directory look-ups, `git log`, test runs); identical repeated tool results are
  duplicates, one showing a new value supersedes.
- Hard negatives, with no ground truth: the same attribute of another subject (staging
  port, another system's cache TTL, an outsider's timezone), temporary states, past
  values, questions and proposals, negations, conditional plans. Filler: greetings,
  thanks, "running the tests now". Both are listed by id.
- Varied structure: subject first, value first, facts inside longer sentences, key=value
  tool output, first and third person; some turns carry two facts (two changes of one
  project, or a fact with a contrasting hard-negative clause about another subject).

Groups are disjoint; no event is both in the ground truth and a hard negative or filler.
Deterministic for a given seed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from benchmarks.synthetic_log import EventWriter, SyntheticLog


@dataclass
class WorkLog(SyntheticLog):
    hard_negatives: list[str] = field(default_factory=list)
    filler: list[str] = field(default_factory=list)


USERS = ["Priya", "Tomasz", "Aiko", "Mateo", "Grace", "Olu"]
OUTSIDERS = ["Hiro", "Ines", "Bjorn", "Farah", "Dmitri"]
PROJECTS = ["ledger", "harbor", "atlas", "pipit", "quokka", "marlin"]
MODULES = ["auth", "billing export", "rate limiter", "scheduler", "ingest pipeline", "webhooks"]
CONCERNS = {
    "HTTP calls": [("httpx",), ("requests",), ("aiohttp",)],
    "background jobs": [("Celery",), ("Dramatiq",), ("RQ",), ("arq",)],
    "feature flags": [("LaunchDarkly",), ("Unleash",), ("Flagsmith",)],
    "structured logging": [("structlog",), ("loguru",), ("python-json-logger",)],
    "database access": [("SQLAlchemy",), ("Tortoise ORM",), ("Peewee",)],
}
AGENT = "Agent"


def _dates(rng: random.Random) -> list[tuple[str, ...]]:
    months = [("February", 2), ("March", 3), ("April", 4)]
    out = []
    for month, number in months:
        for day in (6, 14, 21, 28):
            suffix = "th" if day not in (21,) else "st"
            out.append((f"2024-{number:02d}-{day:02d}", f"{month} {day}", f"the {day}{suffix} of {month}"))
    return out


def _desks(rng: random.Random, index: int) -> list[tuple[str, ...]]:
    """Three desks no one else has: the person's index is part of the desk number."""
    out = []
    for office in rng.sample(["Lisbon", "Amsterdam", "Toronto", "Austin", "Bangalore"], 3):
        desk = f"{rng.randrange(1, 7)}.{index}{rng.randrange(0, 10)}"
        out.append((f"{office} {desk}", f"desk {desk} in the {office} office"))
    return out


def _phones(rng: random.Random, count: int) -> list[tuple[str, ...]]:
    """Distinct fictional numbers (555-01xx)."""
    out = []
    for area, tail in zip(
        rng.choices(["415", "212", "617", "503", "312", "206", "512"], k=count),
        rng.sample(range(100, 200), count),
        strict=True,
    ):
        out.append((f"+1 {area} 555 0{tail}", f"({area}) 555-0{tail}"))
    return out


# Attribute -> values (tuples of surface forms; forms[0] is what tools print) and phrasings.
# {n}: the person, {p}: the project, {m}: the module, {c}: the concern, {v}: the value.
PERSONAL: dict[str, dict[str, Any]] = {
    "timezone": {
        "values": [
            ("America/Los_Angeles", "Pacific time", "US Pacific"),
            ("America/New_York", "Eastern time", "US Eastern"),
            ("Europe/Berlin", "Central European time", "CET"),
            ("Asia/Kolkata", "India Standard Time", "IST"),
            ("Asia/Tokyo", "Japan time", "JST"),
            ("Europe/London", "UK time", "London time"),
            ("America/Sao_Paulo", "Brasilia time", "BRT"),
        ],
        "state": [
            "I'm on {v}, so my mornings barely overlap with the rest of you.",
            "Quick scheduling note: {v} is my timezone.",
            "Just so you know, I work on {v}.",
        ],
        "restate": [
            "{n} is on {v}, so don't book anything with them before nine their time.",
            "For the standup invite: {n}'s timezone is {v}.",
            "Keep in mind {n} works {v} hours.",
        ],
        "tool": ("directory_lookup", "timezone"),
        "cue": ["I moved, so from now on I'm on {v}.", "Update: I relocated and my timezone is now {v}."],
        "implicit": ["Schedule me in {v} hours, please.", "My calendar runs on {v}; plan syncs around that."],
    },
    "team": {
        "values": [
            ("Payments",),
            ("Platform",),
            ("Developer Experience", "DevEx"),
            ("Search",),
            ("Data Infrastructure", "Data Infra"),
            ("Mobile",),
        ],
        "state": ["I'm on the {v} team.", "Org-chart wise I sit in {v}.", "{v} team here, by the way."],
        "restate": ["{n} works on the {v} team.", "Ask {n}, they're in {v}.", "{n} belongs to {v}."],
        "tool": ("directory_lookup", "team"),
        "cue": ["I switched teams, I'm in {v} now.", "As of this week I've moved over to the {v} team."],
        "implicit": ["Speaking for the {v} team, we'd like a heads-up before schema changes."],
    },
    "manager": {
        "values": [
            ("Sandra Okafor", "Sandra"),
            ("Lukas Brenner", "Lukas"),
            ("Mei Chen", "Mei"),
            ("Rafael Duarte", "Rafael"),
            ("Hannah Weiss", "Hannah"),
        ],
        "state": ["My manager is {v}.", "I report to {v}.", "{v} is my manager, so loop them in for approvals."],
        "restate": ["{n} reports to {v}.", "{v} manages {n}, so expense approvals go through them."],
        "tool": ("directory_lookup", "manager"),
        "cue": ["After the reorg I report to {v} now.", "New manager for me starting today: {v}."],
        "implicit": ["{v} is my manager; send the promo packet to them."],
    },
    "laptop": {
        "values": [
            ("MacBook Pro 14 M3 Pro", "M3 Pro MacBook Pro"),
            ("ThinkPad X1 Carbon Gen 11", "X1 Carbon"),
            ("Framework Laptop 13", "Framework 13"),
            ("Dell XPS 15", "XPS 15"),
            ("MacBook Air M2", "M2 MacBook Air"),
        ],
        "state": ["My work laptop is the {v}.", "I do all my local builds on the {v}.", "The {v} is my work machine."],
        "restate": ["{n}'s machine is the {v}.", "IT has {n} down with the {v}."],
        "tool": ("it_assets", "laptop"),
        "cue": ["Got a new laptop, it's the {v} now.", "IT swapped my machine; I'm on the {v} from today."],
        "implicit": ["The benchmark numbers below are from my {v}."],
    },
    "editor": {
        "values": [
            ("Neovim", "nvim"),
            ("VS Code", "Visual Studio Code"),
            ("IntelliJ IDEA", "IntelliJ"),
            ("Emacs",),
            ("Zed",),
            ("Helix",),
        ],
        "state": [
            "I use {v} for everything.",
            "{v} is my editor, so please keep the .editorconfig around.",
            "My editor of choice is {v}.",
        ],
        "restate": ["{n} lives in {v}, so send them the LSP settings.", "{n} prefers {v} as an editor."],
        "tool": None,
        "cue": ["I've switched to {v}, for good this time.", "From now on I'm using {v} as my editor."],
        "implicit": ["Pairing today? I'll share my {v} session."],
    },
    "oncall": {
        "values": [
            ("week 6", "the week of February 5"),
            ("week 7", "the week of February 12"),
            ("week 8", "the week of February 19"),
            ("week 9", "the week of February 26"),
            ("week 10", "the week of March 4"),
            ("week 11", "the week of March 11"),
        ],
        "state": ["My on-call shift this quarter is {v}.", "I'm on call {v}."],
        "restate": ["{n} holds the pager {v}.", "Per the rota, {n} is on call {v}."],
        "tool": ("pagerduty_schedule", "primary"),
        "cue": ["I traded shifts, so my on-call is {v} instead.", "Change of plan: I'm now on call {v}."],
        "implicit": ["The pager's mine {v}, ping me then for anything urgent."],
    },
    "desk": {
        "values": None,  # per person, see _desks
        "state": ["I sit at {v}.", "I'm at {v} if you want to come by.", "You can find me at {v}."],
        "restate": ["{n} sits at {v}.", "Drop the test hardware at {n}'s desk, {v}."],
        "tool": ("facilities_lookup", "seat"),
        "cue": ["We moved floors; I'm at {v} now.", "New seat for me from Monday: {v}."],
        "implicit": ["Packages for me can go to {v}."],
    },
    "phone": {
        "values": None,  # per run, see _phones
        "state": ["My phone number is {v}.", "If the pager fails, call me on {v}."],
        "restate": ["{n}'s number is {v}.", "Escalation contact for {n}: {v}."],
        "tool": ("directory_lookup", "phone"),
        "cue": [
            "New phone number, please update the escalation sheet: {v}.",
            "My number changed, it's {v} from now on.",
        ],
        "implicit": ["Call {v} if I'm not answering on chat."],
    },
}

PROJECT: dict[str, dict[str, Any]] = {
    "port": {
        "values": [(str(p),) for p in (8080, 8443, 9090, 3000, 5000, 7001, 8000)],
        "state": [
            "{p} listens on port {v} in production.",
            "Port {v} is what the {p} service binds to in prod.",
            "In prod, {p} serves on {v}.",
        ],
        "restate": [
            "The production {p} service is exposed on port {v}.",
            "{p}'s prod port is {v}, going by the helm values.",
        ],
        "tool": "http.port",
        "cue": ["We moved {p} in production to port {v}, update your tunnels.", "From now on prod {p} listens on {v}."],
        "implicit": ["Prod {p} answers on port {v}."],
    },
    "database": {
        "values": [
            ("PostgreSQL 15", "Postgres 15"),
            ("PostgreSQL 16", "Postgres 16"),
            ("MySQL 8.0", "MySQL 8"),
            ("MariaDB 10.11",),
            ("CockroachDB 23.2", "Cockroach 23.2"),
        ],
        "state": ["{p} runs on {v}.", "The {p} database is {v}.", "{v} is the database behind {p}."],
        "restate": ["{p} is backed by {v}.", "Storage for {p} is {v}, so mind the version-specific syntax."],
        "tool": "database.engine",
        "cue": ["The {p} migration is done, we're on {v} now.", "We switched {p} over to {v} last night."],
        "implicit": ["{p}'s database is {v}; check that version's docs before writing the migration."],
    },
    "ci": {
        "values": [("GitHub Actions", "GHA"), ("GitLab CI",), ("CircleCI",), ("Buildkite",), ("Jenkins",)],
        "state": ["CI for {p} runs on {v}.", "{p} builds in {v}.", "We use {v} as the CI for {p}."],
        "restate": ["{p}'s pipeline lives in {v}.", "{v} is where {p}'s checks run."],
        "tool": "ci.provider",
        "cue": [
            "We migrated {p}'s CI to {v}; the old pipelines are switched off.",
            "{p} has switched to {v} for CI, from now on.",
        ],
        "implicit": ["{p}'s checks are running on {v}, the link is in the PR."],
    },
    "region": {
        "values": [
            ("us-east-1", "N. Virginia (us-east-1)"),
            ("eu-west-1", "Ireland (eu-west-1)"),
            ("eu-central-1", "Frankfurt (eu-central-1)"),
            ("us-west-2", "Oregon (us-west-2)"),
            ("ap-southeast-1", "Singapore (ap-southeast-1)"),
        ],
        "state": ["{p} deploys to {v}.", "Production {p} lives in {v}.", "The {p} prod stack sits in {v}."],
        "restate": ["{p} is hosted in {v}.", "{v} is {p}'s deploy region."],
        "tool": "deploy",
        "cue": ["We moved {p} to {v}; the old region is being drained.", "{p} deploys to {v} from now on."],
        "implicit": ["Prod {p} runs out of {v}, so expect that latency."],
    },
    "retries": {
        "values": [("2", "two"), ("3", "three"), ("4", "four"), ("5", "five"), ("6", "six")],
        "state": [
            "{p} retries failed upstream calls {v} times.",
            "The retry count on {p}'s HTTP client is {v}.",
            "Max retries for {p}: {v}.",
        ],
        "restate": ["{p} gives up after {v} retries.", "{p} is configured with {v} retries."],
        "tool": "client.max_retries",
        "cue": ["We bumped {p}'s retry count to {v}.", "From now on {p} retries {v} times before failing."],
        "implicit": ["{p} will retry {v} times, so budget the timeout for that."],
    },
    "cache_ttl": {
        "values": [
            ("300s", "5 minutes", "300 seconds"),
            ("60s", "one minute", "60 seconds"),
            ("900s", "15 minutes", "900 seconds"),
            ("3600s", "one hour", "3600 seconds"),
            ("120s", "two minutes", "120 seconds"),
        ],
        "state": [
            "The cache TTL for {p} is {v}.",
            "{p} caches responses for {v}.",
            "Entries in {p}'s cache expire after {v}.",
        ],
        "restate": ["{p} keeps cached results for {v}.", "Cache expiry on {p} is {v}."],
        "tool": "cache.ttl",
        "cue": ["We changed {p}'s cache TTL to {v}.", "{p}'s cache TTL is {v} from now on."],
        "implicit": ["Heads up, {p} cache entries live {v}."],
    },
    "api_url": {
        "values": None,  # per project
        "state": [
            "The {p} API base URL is {v}.",
            "Clients should hit {v} for {p}.",
            "{v} is the base URL for the {p} API.",
        ],
        "restate": ["{p}'s API lives at {v}.", "Point the {p} SDK at {v}."],
        "tool": "api.base_url",
        "cue": ["We moved the {p} API; the base URL is now {v}.", "From now on use {v} as the {p} base URL."],
        "implicit": ["Base URL for {p} is {v}, fyi."],
    },
    "owner": {
        "values": None,  # the users
        "state": [
            "{v} owns the {m} module in {p}.",
            "The {m} code in {p} belongs to {v}.",
            "Ask {v} about {p}'s {m} module, it's theirs.",
        ],
        "restate": ["{p}'s {m} module is owned by {v}.", "Reviews for {p}/{m} go to {v}, the owner."],
        "tool": "codeowners",
        "cue": ["{v} took over the {m} module in {p}.", "Ownership of {p}'s {m} module moved to {v}."],
        "implicit": ["{v} owns {p}'s {m} module, so tag them on the PR."],
    },
    "release": {
        "values": None,  # see _dates
        "state": ["{p} ships on {v}.", "The {p} release date is {v}.", "We're targeting {v} for the {p} release."],
        "restate": ["{p}'s release is set for {v}.", "{v} is release day for {p}."],
        "tool": "milestone",
        "cue": ["The {p} release slipped to {v}.", "We moved the {p} release to {v}."],
        "implicit": ["{p} goes out on {v}, so freeze the branch the day before."],
    },
    "library": {
        "values": None,  # per concern
        "state": ["{p} uses {v} for {c}.", "For {c} in {p} we went with {v}.", "{v} is our {c} library in {p}."],
        "restate": ["{p} handles {c} with {v}.", "The {c} choice for {p} is {v}."],
        "tool": None,
        "cue": ["We replaced {p}'s {c} library, it's {v} now.", "From now on {p} uses {v} for {c}."],
        "implicit": ["{p} does {c} through {v}; see the wrapper in utils."],
    },
}

FILLER_USER = [
    "Morning all!",
    "thanks!",
    "Thanks, that fixed it.",
    "ok, looking now",
    "brb, lunch",
    "Nice, ship it.",
    "Hmm, let me check.",
    "Good night, see you tomorrow.",
    "Perfect, thank you.",
    "lol, fair enough",
    "Can you take a look when you get a sec?",
    "Back now.",
]
FILLER_AGENT = [
    "Running the tests now.",
    "On it.",
    "Done, I pushed the branch.",
    "Sure, give me a minute.",
    "Looking into it.",
    "I opened a draft PR.",
    "Happy to help!",
    "Rebasing on main first.",
]
TEMP_CITIES = ["Berlin", "Singapore", "Chicago", "Madrid", "Seoul"]
OTHER_SYSTEMS = ["the legacy reports cron", "the marketing site", "the old admin panel", "the docs search"]


@dataclass
class _Item:
    day: float
    speaker: str | None
    content: str | None = None
    tool: dict[str, Any] | None = None
    role: str = "user"
    kind: str = "fact"  # fact, negative, filler
    event_id: str = ""


def _fill(
    template: str, value: tuple[str, ...], rng: random.Random, avoid: str | None = None, **names: str
) -> tuple[str, str]:
    """The template with a surface form of the value, preferring one other than `avoid`."""
    forms = [f for f in value if f != avoid] or list(value)
    form = rng.choice(forms)
    return template.format(v=form, **names), form


def _other(rng: random.Random, values: list[tuple[str, ...]], taken: list[tuple[str, ...]]) -> tuple[str, ...]:
    return rng.choice([v for v in values if v not in taken])


def generate(persons: int = 4, seed: int = 29, user_id: str = "synthetic") -> WorkLog:
    rng = random.Random(seed)
    users = USERS[: max(3, min(6, persons))]
    projects = PROJECTS[: max(2, min(6, (persons + 1) // 2))]
    items: list[_Item] = []
    groups: list[list[_Item]] = []
    supersessions: list[tuple[_Item, _Item]] = []
    changes_alone: dict[str, list[_Item]] = {p: [] for p in projects}

    def item(day: float, speaker: str | None, **kw: Any) -> _Item:
        it = _Item(day, speaker, **kw)
        items.append(it)
        return it

    def speech(day: float, speaker: str, content: str) -> _Item:
        return item(day, speaker, content=content, role="assistant" if speaker == AGENT else "user")

    def track(
        names: dict[str, str],
        spec: dict[str, Any],
        values: list[tuple[str, ...]],
        owner: str | None,
        tool: Any,
        change_prob: float,
        project: str | None = None,
    ) -> None:
        """One tracked fact: statement, restatement, maybe a change and its restatement."""
        value = rng.choice(values)
        others = [u for u in users if u != owner]
        first_speaker = owner or rng.choice(users)
        day = rng.uniform(0, 22)
        text, form = _fill(rng.choice(spec["state"]), value, rng, **names)
        if project and spec is PROJECT["port"] and rng.random() < 0.4:
            staging = rng.choice(["8181", "8444", "9191", "8082"])
            text += f" Staging is a different box on {staging}, don't mix them up."
        first = speech(day, first_speaker, text)
        group = [first]
        restate_day = day + rng.uniform(3, 12)
        if tool is not None and rng.random() < 0.45:
            call = tool(value[0])
            group.append(item(restate_day, None, tool=call, role="tool"))
            if rng.random() < 0.5:  # an identical tool call and result, later
                group.append(item(restate_day + rng.uniform(0.5, 3), None, tool=dict(call), role="tool"))
        else:
            speaker = rng.choice([AGENT, *[u for u in others if u != first_speaker]])
            group.append(
                speech(restate_day, speaker, _fill(rng.choice(spec["restate"]), value, rng, avoid=form, **names)[0])
            )
        groups.append(group)
        if rng.random() >= change_prob:
            return
        new = _other(rng, values, [value])
        change_day = rng.uniform(38, 52)
        mode = rng.random()
        if tool is not None and mode < 0.25:
            change = item(change_day, None, tool=tool(new[0]), role="tool")
        else:
            templates = spec["cue"] if mode < 0.65 else spec["implicit"]
            speaker = owner or rng.choice(users)
            text, form = _fill(rng.choice(templates), new, rng, **names)
            change = speech(change_day, speaker, text)
        supersessions.append((first, change))
        if rng.random() < 0.4:
            later = change_day + rng.uniform(2, 7)
            if tool is not None and rng.random() < 0.4:
                again = item(later, None, tool=tool(new[0]), role="tool")
            else:
                speaker = rng.choice([AGENT, *[u for u in users if u not in (change.speaker, owner)]])
                again = speech(
                    later,
                    speaker,
                    _fill(rng.choice(spec["restate"]), new, rng, avoid=form if change.content else None, **names)[0],
                )
            groups.append([change, again])
        elif project and change.content is not None:
            changes_alone[project].append(change)

    # Personal facts.
    phones = _phones(rng, 3 * len(users))
    for index, name in enumerate(users):
        for attribute in rng.sample(sorted(PERSONAL), 5):
            spec = PERSONAL[attribute]
            values = spec["values"]
            if attribute == "phone":
                values = phones[3 * index : 3 * index + 3]
            elif attribute == "desk":
                values = _desks(rng, index)
            tool = None
            if spec["tool"]:
                tool_name, key = spec["tool"]

                def tool(v: str, tool_name: str = tool_name, key: str = key, name: str = name) -> dict[str, Any]:
                    return {
                        "name": tool_name,
                        "arguments": {"user": name.lower(), "field": key},
                        "result": f"user={name.lower()} {key}={v}",
                    }

            track({"n": name}, spec, values, name, tool, 0.5)

    # Project facts.
    dates = _dates(rng)
    for project in projects:
        module = rng.choice(MODULES)
        concern = rng.choice(sorted(CONCERNS))
        names = {"p": project, "m": module, "c": concern}
        for attribute in rng.sample(sorted(PROJECT), 7):
            spec = PROJECT[attribute]
            values = spec["values"]
            if attribute == "api_url":
                values = [
                    (f"https://api.{project}.example.com/v1",),
                    (f"https://{project}.internal.example.net/api/v2",),
                    (f"https://{project}-gw.example.io/v1",),
                    (f"https://api.example.com/{project}/v3",),
                ]
            elif attribute == "owner":
                values = [(u,) for u in users]
            elif attribute == "release":
                values = dates
            elif attribute == "library":
                values = CONCERNS[concern]
            key = spec["tool"]
            tool = None
            if key == "deploy":

                def tool(v: str, project: str = project) -> dict[str, Any]:
                    return {
                        "name": "deploy",
                        "arguments": {"service": project, "env": "production"},
                        "result": f"deploy {project} to production: ok\nregion={v}\nreplicas=3",
                    }

            elif key == "codeowners":

                def tool(v: str, project: str = project, module: str = module) -> dict[str, Any]:
                    path = module.replace(" ", "_")
                    return {
                        "name": "read_file",
                        "arguments": {"path": f"{project}/CODEOWNERS"},
                        "result": f"/src/{path}/  @{v.lower()}",
                    }

            elif key == "milestone":

                def tool(v: str, project: str = project) -> dict[str, Any]:
                    return {
                        "name": "get_milestone",
                        "arguments": {"repo": project, "title": "v2.0"},
                        "result": f"title=v2.0 state=open due_on={v}",
                    }

            elif key is not None:

                def tool(v: str, project: str = project, key: str = key) -> dict[str, Any]:
                    return {
                        "name": "get_config",
                        "arguments": {"service": project, "env": "production", "key": key},
                        "result": f"[{project}/production] {key}={v}",
                    }

            track(names, spec, values, None, tool, 0.5, project)

        # Identical repeated tool output: a test run and a git log, each two or three times.
        passed, skipped = rng.randrange(120, 480), rng.randrange(0, 6)
        tests = {
            "name": "run_tests",
            "arguments": {"project": project, "suite": "unit"},
            "result": f"{passed} passed, {skipped} skipped in {rng.uniform(20, 90):.2f}s",
        }
        day = rng.uniform(2, 55)
        groups.append(
            [
                item(day + k * rng.uniform(0.01, 0.05), None, tool=dict(tests), role="tool")
                for k in range(rng.choice([2, 3]))
            ]
        )
        sha = [f"{rng.getrandbits(28):07x}" for _ in range(3)]
        subjects = [
            "fix flaky retry test",
            f"bump {project} deps",
            "add metrics for queue depth",
            "tidy config loading",
            "handle empty payloads",
        ]
        log_out = "\n".join(f"{s} {m}" for s, m in zip(sha, rng.sample(subjects, 3), strict=True))
        git = {"name": "shell", "arguments": {"cmd": "git log --oneline -3", "cwd": project}, "result": log_out}
        day = rng.uniform(2, 55)
        groups.append(
            [
                item(day, None, tool=dict(git), role="tool"),
                item(day + rng.uniform(0.02, 0.3), None, tool=dict(git), role="tool"),
            ]
        )

    # Two-fact turns: two changes of one project in one message (when neither is restated).
    for project, alone in changes_alone.items():
        rng.shuffle(alone)
        while len(alone) >= 2 and rng.random() < 0.7:
            a, b = alone.pop(), alone.pop()
            a.content = f"Two updates on {project}. {a.content} Also: {b.content}"
            a.day = min(a.day, b.day)
            items.remove(b)
            supersessions[:] = [(old, a if new is b else new) for old, new in supersessions]

    # Hard negatives: nothing here is tracked, and each value differs from the subject's tracked ones.
    def negative(day: float, speaker: str, content: str) -> None:
        it = speech(day, speaker, content)
        it.kind = "negative"

    for project in projects:
        choices = [
            lambda p=project: f"Staging {p} is on port {rng.choice([8181, 8444, 9191])}, prod is separate.",
            lambda p=project: f"I've got {p} bound to port 9000 just for this debug session, I'll put it back after.",
            lambda p=project: f"We used to run {p}'s CI on Travis before anyone here joined.",
            lambda p=project: f"Back in 2021 {p} sat on MySQL 5.7, hence the odd column types.",
            lambda p=project: f"Should we move {p} to PostgreSQL 17 at some point?",
            lambda p=project: f"Maybe bump {p}'s retries to 9? Just an idea, not decided.",
            lambda p=project: f"We are not using Redis for sessions in {p}, whatever the old README says.",
            lambda p=project: f"{p} doesn't use Kafka; the events go over plain HTTP.",
            lambda p=project: (
                f"If the Frankfurt latency numbers come back bad, we'd consider moving {p} to ca-central-1."
            ),
            lambda p=project: f"If the load test fails we might raise {p}'s retry count to 8, let's see Friday.",
            lambda p=project: (
                f"For comparison, {rng.choice(OTHER_SYSTEMS)} caches for 24 hours; {p} is nothing like that."
            ),
            lambda p=project: f"What if we pushed the {p} release out a quarter? Thinking aloud.",
            lambda p=project: f"Locally I've set {p}'s cache TTL to 0 while I debug, don't commit that.",
        ]
        for make in rng.sample(choices, 4):
            negative(rng.uniform(0, 60), rng.choice(users + [AGENT]), make())
    # Personal ones: each wording at most once in the log, so no two are word for word the same.
    personal = [
        "Heads up, our contractor {o} is on New Zealand time, so async works best with them.",
        "I'm in {city} this week for a conference, replies may be slow.",
        "Working from the cafe today only, my desk is being rewired.",
        "I used to be on the Growth team, years ago.",
        "Is anyone trying Cursor? Thinking about it, haven't switched.",
        "I'm not on call this week, {o} from the SRE rotation is.",
        "If the reorg goes through I might end up reporting to the VP directly.",
        "Should I get the 16-inch model next refresh? Not sure yet.",
        "{o} from the vendor side works Hawaii hours, FYI.",
        "I'm not on the Security team, people keep assuming that.",
        "Back when I started I ran Sublime Text, long since gone.",
        "Temporarily reachable on the hotel phone while I'm in {city}, back Monday.",
    ]
    rng.shuffle(personal)
    for name in users:
        for _ in range(2):
            text = personal.pop().format(o=rng.choice(OUTSIDERS), city=rng.choice(TEMP_CITIES))
            negative(rng.uniform(0, 60), name, text)

    # Filler, without identical repeats.
    for content in rng.sample(FILLER_USER, min(len(FILLER_USER), 2 * len(users))):
        speech(rng.uniform(0, 60), rng.choice(users), content).kind = "filler"
    for content in rng.sample(FILLER_AGENT, min(len(FILLER_AGENT), len(users) + 2)):
        speech(rng.uniform(0, 60), AGENT, content).kind = "filler"

    # Write in time order.
    log = WorkLog(events=[])
    writer = EventWriter(log, user_id, datetime(2024, 1, 8, 9, 0, tzinfo=UTC), "wl")
    for it in sorted(items, key=lambda i: i.day):
        it.event_id = writer.add(it.day, content=it.content, speaker=it.speaker, tool=it.tool)
        log.events[-1]["role"] = it.role
        if it.role == "tool":
            log.events[-1].pop("speaker", None)
        if it.kind == "negative":
            log.hard_negatives.append(it.event_id)
        elif it.kind == "filler":
            log.filler.append(it.event_id)
    log.duplicate_groups = [{it.event_id for it in group} for group in groups]
    log.supersessions = {(old.event_id, new.event_id) for old, new in supersessions}
    return log
