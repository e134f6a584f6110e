"""A synthetic agent log with known ground truth for consolidation.

Each person has attributes (city, job, favourite food, pet) stated once, restated later
in other words (a duplicate), and some updated later (a supersession). Tool calls with
identical results repeat (duplicates); a service's port changes once (a supersession).
Filler and unrelated one-off facts are mixed in.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

NAMES = ["Alice", "Bruno", "Chen", "Dara", "Emeka", "Farah", "Goran", "Hana", "Ivan", "Jun", "Kemal", "Lena"]
CITIES = ["Boston", "Denver", "Lisbon", "Osaka", "Nairobi", "Toronto", "Madrid", "Seoul", "Austin", "Prague"]
JOBS = [("nurse", "Mercy Hospital"), ("teacher", "Lincoln High"), ("chef", "Blue Fig"), ("pilot", "SkyJet"),
        ("architect", "Studio Nine"), ("data engineer", "Acme Corp"), ("baker", "Crumb & Co"), ("lawyer", "Hale LLP")]
FOODS = ["ramen", "tacos", "lasagna", "pho", "falafel", "paella", "dumplings", "curry"]
PETS = [("dog", "Max"), ("cat", "Miso"), ("parrot", "Kiwi"), ("rabbit", "Clover"), ("turtle", "Shelly")]
HOBBIES = ["rock climbing", "watercolor painting", "chess", "salsa dancing", "birdwatching", "pottery", "surfing"]

STATE = {
    "city": ["I live in {city}.", "My home is in {city} these days."],
    "job": ["I work as a {job} at {company}.", "My job is {job} at {company}, I enjoy it."],
    "food": ["My favorite food is {food}.", "Honestly {food} is my favorite food."],
    "pet": ["I have a {pet} named {pet_name}.", "My {pet} {pet_name} is always with me."],
}
UPDATE = {
    "city": "I moved to {city} last month, I live there now.",
    "job": "I now work as a {job} at {company}, I left my old job.",
    "food": "My favorite food is now {food}.",
}
FILLER = ["Thanks!", "Sounds good.", "Haha, nice.", "Okay, talk soon!"]


@dataclass
class SyntheticLog:
    events: list[dict[str, Any]]
    duplicate_groups: list[set[str]] = field(default_factory=list)
    supersessions: set[tuple[str, str]] = field(default_factory=set)

    def duplicate_pairs(self) -> set[frozenset[str]]:
        pairs: set[frozenset[str]] = set()
        for group in self.duplicate_groups:
            members = sorted(group)
            pairs.update(frozenset((a, b)) for i, a in enumerate(members) for b in members[i + 1 :])
        return pairs


class EventWriter:
    """Appends events to a log: ids `<prefix>-<n>`, one session a day, a minute apart at least."""

    def __init__(self, log: SyntheticLog, user_id: str, start: datetime, prefix: str) -> None:
        self.log, self.user_id, self.start, self.prefix = log, user_id, start, prefix
        self.counter = 0

    def add(self, day: float, content: str | None = None, speaker: str | None = None, tool: dict[str, Any] | None = None) -> str:
        self.counter += 1
        event_id = f"{self.prefix}-{self.counter}"
        event: dict[str, Any] = {
            "event_id": event_id,
            "user_id": self.user_id,
            "session_id": f"day-{int(day)}",
            "timestamp": (self.start + timedelta(days=day, minutes=self.counter)).isoformat(),
        }
        if tool is not None:
            event.update(role="tool", content="", tool=tool)
        else:
            event.update(role="user", speaker=speaker, content=content)
        self.log.events.append(event)
        return event_id


def generate(persons: int = 8, seed: int = 13, user_id: str = "synthetic") -> SyntheticLog:
    rng = random.Random(seed)
    start = datetime(2024, 1, 1, 9, 0, tzinfo=UTC)
    log = SyntheticLog(events=[])
    add = EventWriter(log, user_id, start, "syn").add

    for name in NAMES[:persons]:
        city = rng.choice(CITIES)
        job, company = rng.choice(JOBS)
        pet, pet_name = rng.choice(PETS)
        values = {"city": city, "job": job, "company": company, "food": rng.choice(FOODS), "pet": pet, "pet_name": pet_name}
        for attribute, (first, second) in STATE.items():
            day = rng.uniform(0, 20)
            a = add(day, first.format(**values), name)
            b = add(day + rng.uniform(5, 15), second.format(**values), name)
            log.duplicate_groups.append({a, b})
            if attribute in UPDATE and rng.random() < 0.6:
                new_values = dict(values)
                if attribute == "city":
                    new_values["city"] = rng.choice([c for c in CITIES if c != city])
                elif attribute == "job":
                    new_values["job"], new_values["company"] = rng.choice([j for j in JOBS if j[0] != job])
                else:
                    new_values["food"] = rng.choice([f for f in FOODS if f != values["food"]])
                c = add(rng.uniform(40, 60), UPDATE[attribute].format(**new_values), name)
                log.supersessions.add((a, c))
        add(rng.uniform(0, 60), f"I picked up {rng.choice(HOBBIES)} as a hobby.", name)
        add(rng.uniform(0, 60), rng.choice(FILLER), name)

    for service_name, port, new_port in [("billing", 5432, 5433), ("search", 9200, 9300)]:
        a = add(1, f"The {service_name} service listens on port {port}.", "Ops")
        c = add(50, f"The {service_name} service now listens on port {new_port} after the migration.", "Ops")
        log.supersessions.add((a, c))
    for i, (tool, args, result) in enumerate(
        [("get_weather", {"city": "Lisbon"}, {"temp_c": 21, "sky": "sunny"}), ("run_tests", {"suite": "unit"}, "412 passed")]
    ):
        ids = {add(10 + i + k * 7, tool={"name": tool, "arguments": args, "result": result}) for k in range(3)}
        log.duplicate_groups.append(ids)
    log.events.sort(key=lambda e: e["timestamp"])
    return log
