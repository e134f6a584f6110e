"""A second synthetic log for consolidation, written apart from the judge's rules.

`synthetic_log.py` was written alongside the heuristic judge and states facts with the
phrases it knows ("I live in", "I work as", "my favorite"). This generator phrases the
same kinds of facts the way people do in conversation ("I'm based in", "Nothing beats",
"Today was my first day as"), adds a car, and mixes in hard negatives that must stay
apart: trips to other cities, a friend's job, dishes tried once, runs of different
lengths, and one-off events on the same subject. Tool results that change a setting are
updates too. Its numbers measure how far the judge generalises; expect them lower.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime

from benchmarks.synthetic_log import CITIES, FOODS, JOBS, NAMES, EventWriter, SyntheticLog

CARS = ["Honda Civic", "Toyota Corolla", "Ford Focus", "Mazda 3", "Subaru Outback", "VW Golf"]
COLORS = ["red", "blue", "silver", "black", "green"]

STATE = {
    "city": ["I'm based in {city} right now.", "{city} is where I call home."],
    "job": ["I'm employed at {company} as a {job}.", "Still at {company}, the {job} role keeps me busy."],
    "food": ["Nothing beats {food} for me.", "{food} remains my number one dish."],
    "car": ["I drive a {color} {car}.", "My {car} is {color}, easy to spot in a parking lot."],
}
UPDATE = {
    "city": ["Big news: I relocated to {city} for good.", "We finished moving into our new place in {city}."],
    "job": ["Today was my first day as a {job} at {company}.", "I switched jobs, {company} hired me as a {job}."],
    "food": ["These days I'd pick {food} over anything else.", "I've gone off my old favorite, {food} is the best now."],
    "car": ["I sold my {old_car} and bought a {car}.", "Traded in the {old_car}, I drive a {color} {car} now."],
}
DISTRACTOR = {
    "city": "I flew to {other_city} for a conference last week.",
    "job": "My friend just got a job at {other_company}.",
    "food": "I tried {other_food} at a street market, it was okay.",
    "car": "My neighbour bought a {other_car}.",
}


def generate(persons: int = 8, seed: int = 29, user_id: str = "synthetic") -> SyntheticLog:
    rng = random.Random(seed)
    start = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
    log = SyntheticLog(events=[])
    add = EventWriter(log, user_id, start, "par").add

    for name in NAMES[:persons]:
        job, company = rng.choice(JOBS)
        values = {
            "city": rng.choice(CITIES), "job": job, "company": company, "food": rng.choice(FOODS),
            "car": rng.choice(CARS), "color": rng.choice(COLORS),
        }
        others = {
            "other_city": rng.choice([c for c in CITIES if c != values["city"]]),
            "other_company": rng.choice([c for _, c in JOBS if c != company]),
            "other_food": rng.choice([f for f in FOODS if f != values["food"]]),
            "other_car": rng.choice([c for c in CARS if c != values["car"]]),
        }
        for attribute, (first, second) in STATE.items():
            day = rng.uniform(0, 20)
            a = add(day, first.format(**values), name)
            b = add(day + rng.uniform(5, 15), second.format(**values), name)
            log.duplicate_groups.append({a, b})
            add(rng.uniform(0, 60), DISTRACTOR[attribute].format(**others), name)
            if rng.random() < 0.6:
                new = dict(values, old_car=values["car"])
                if attribute == "city":
                    new["city"] = rng.choice([c for c in CITIES if c != values["city"]])
                elif attribute == "job":
                    new["job"], new["company"] = rng.choice([j for j in JOBS if j[0] != job])
                elif attribute == "food":
                    new["food"] = rng.choice([f for f in FOODS if f != values["food"]])
                else:
                    new["car"] = rng.choice([c for c in CARS if c != values["car"]])
                c = add(rng.uniform(40, 60), rng.choice(UPDATE[attribute]).format(**new), name)
                log.supersessions.add((a, c))
        for km in rng.sample([3, 5, 8, 10, 12], 2):
            add(rng.uniform(0, 60), f"I ran {km} km this morning.", name)

    for service_name, port, new_port in [("billing", 6379, 6380), ("search", 9200, 9201)]:
        args = {"service": service_name}
        a = add(2, tool={"name": "get_config", "arguments": args, "result": {"port": port, "replicas": 2}})
        b = add(9, tool={"name": "get_config", "arguments": args, "result": {"port": port, "replicas": 2}})
        c = add(45, tool={"name": "get_config", "arguments": args, "result": {"port": new_port, "replicas": 2}})
        log.duplicate_groups.append({a, b})
        log.supersessions.add((a, c))
    log.events.sort(key=lambda e: e["timestamp"])
    return log
