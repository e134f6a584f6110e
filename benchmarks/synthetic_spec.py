"""A third synthetic agent log for consolidation, written from a written spec alone.

Independence: this generator was written from a short specification only, without reading
the consolidation judge (memory_service/consolidate/), the other two generators
(benchmarks/synthetic_log.py beyond its SyntheticLog/EventWriter interface, and
benchmarks/synthetic_paraphrase.py) or any consolidation test. The phrasings are the
author's own guesses at how people and agents talk.

The spec it follows:

1. A personal- and project-assistant log over about 90 days with several speakers.
   People have personal facts with one current value (here: home city, employer and role,
   partner, e-mail address, car, gym, doctor, diet). Each fact is stated once and restated
   later in clearly different words (a duplicate group); about half are later changed, in
   yet other words and not always with a "moved"/"changed" cue (a supersession recorded as
   (first statement, change)). Some changed values are restated once more (their own group).
2. Project and operations facts with one current value, stated by the assistant, by a
   person or by tool results: ports, database hosts, versions, rate limits, timeouts,
   feature flags, component owners, deadlines, chosen libraries. Some are restated, some
   changed; tool calls whose identical results repeat are duplicates too.
3. Hard negatives with no ground truth: the same attribute of another subject (a friend's
   city, staging's port, a read replica), one-off events ("spent the weekend in Rome", a
   hotel, a canary deploy), past values ("I used to drive a Golf"), questions ("should I
   move to Lisbon?") and plans ("thinking about switching to Rust").
4. Filler chat ("ok thanks", greetings).
5. Varied structure: subject first, value first, the fact in a subordinate clause, first
   and third person. A fact stated about someone else ("my sister Ana lives in ...") is a
   fact about that person: it joins that person's groups, never the speaker's. Each tracked
   person has one narrator (another tracked person, with a fixed relation such as "sister"
   or "friend"); friends in hard negatives are untracked and mentioned once in the log.

`generate(persons, seed, user_id)` returns a `SpecLog` (a `SyntheticLog` that also lists
its hard-negative and filler event ids, for tests and reports); `persons` scales people,
their facts and the number of project components.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from benchmarks.synthetic_log import EventWriter, SyntheticLog

DAYS = 90
START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
ASSISTANT = "assistant"


@dataclass
class SpecLog(SyntheticLog):
    hard_negatives: set[str] = field(default_factory=set)
    filler: set[str] = field(default_factory=set)


# ---------------------------------------------------------------------------------------
# Name and value pools

PEOPLE = [
    ("Ana", "f"), ("Ben", "m"), ("Chloe", "f"), ("Dmitri", "m"), ("Elena", "f"), ("Farid", "m"),
    ("Greta", "f"), ("Hugo", "m"), ("Ines", "f"), ("Jonas", "m"), ("Keiko", "f"), ("Luis", "m"),
    ("Maya", "f"), ("Nikhil", "m"), ("Olga", "f"), ("Pavel", "m"), ("Rosa", "f"), ("Samir", "m"),
    ("Tara", "f"), ("Umar", "m"), ("Vera", "f"), ("Wes", "m"), ("Yara", "f"), ("Zoltan", "m"),
]
SURNAMES = [
    "Almeida", "Brandt", "Carvalho", "Dobrev", "Eriksen", "Fontaine", "Gallo", "Horvat", "Ivanova",
    "Jensen", "Kaur", "Laine", "Moreno", "Nowak", "Ortega", "Price", "Quinn", "Reyes", "Schulz",
    "Tanaka", "Urbano", "Vidal", "Weber", "Yilmaz",
]
FRIENDS = [
    "Tom", "Priya", "Marco", "Hannah", "Kofi", "Lena", "Ravi", "Sofia", "Ivan", "Nadia", "Owen",
    "Lucia", "Tariq", "Emma", "Felix", "Aisha", "Joao", "Mia", "Stefan", "Noor", "Diego", "Freya",
    "Callum", "Leila", "Bruno", "Ingrid", "Mateo", "Zara", "Oscar", "Amara",
]
PARTNERS = [
    "Leo", "Camille", "Sam", "Alex", "Nina", "Rafael", "Julia", "Theo", "Eva", "Karim", "Clara",
    "Milan", "Lucy", "Andre", "Iris", "Jamie", "Paula", "Viktor", "Helena", "Robin", "Marta", "Kai",
]
CITIES = [
    "Lisbon", "Porto", "Madrid", "Valencia", "Seville", "Bilbao", "Berlin", "Hamburg", "Munich",
    "Vienna", "Prague", "Amsterdam", "Utrecht", "Rotterdam", "Copenhagen", "Oslo", "Stockholm",
    "Helsinki", "Dublin", "Cork", "Edinburgh", "Glasgow", "Manchester", "Bristol", "Leeds", "Lyon",
    "Marseille", "Toulouse", "Milan", "Turin", "Bologna", "Zurich", "Geneva", "Brussels", "Ghent",
    "Krakow", "Warsaw", "Budapest", "Ljubljana", "Athens", "Rome", "Naples",
]
EMPLOYERS = [
    "Northwind Logistics", "Brightpath Health", "Kestrel Analytics", "Harbor & Finch", "Quillon Games",
    "Vantage Bank", "the city council", "Meridian Labs", "Tallow Robotics", "Oakline Insurance",
    "Copperleaf Studio", "Blue Fern Energy", "Pinecrest University", "Larkspur Media", "Redwater Pharma",
    "Saltmarsh Foods", "Ironbridge Consulting", "Aurora Telecom",
]
ROLES = [
    "data analyst", "product manager", "nurse", "software engineer", "accountant", "UX designer",
    "teacher", "sales lead", "architect", "HR manager", "electrician", "research scientist",
    "operations manager", "marketing coordinator", "engineering manager", "office manager",
]
CARS = [
    "Volkswagen Golf", "Toyota Corolla", "Skoda Octavia", "Tesla Model 3", "Renault Clio", "Ford Focus",
    "Mazda CX-5", "Kia Niro", "Volvo XC40", "Peugeot 208", "Fiat 500", "BMW 3 Series", "Hyundai Ioniq 5",
    "Honda Civic", "Dacia Duster", "Nissan Leaf", "Audi A4", "Mini Cooper", "Opel Corsa", "Seat Ibiza",
]
GYMS = [
    "PureGym", "the YMCA on Castle Road", "Iron Temple", "FitLab", "CrossFit Meridian", "Basic-Fit",
    "the university sports centre", "Sweat Box", "Urban Climb", "the leisure centre by the river",
    "Anytime Fitness", "Gold's Gym", "the boxing club on Mill Lane", "Studio Flow",
]
DOCTORS = [
    "Okafor", "Lindqvist", "Moreau", "Petrov", "Nakamura", "Haddad", "Brennan", "Kowalski", "Silva",
    "Fischer", "Rossi", "Mensah", "Varga", "Ibrahim", "Novak", "O'Neill", "Castillo", "Becker",
]
DIETS = ["vegetarian", "vegan", "pescatarian", "gluten-free", "dairy-free", "low-carb"]
DOMAINS = ["gmail.com", "proton.me", "fastmail.com", "outlook.com", "posteo.de", "icloud.com", "mailbox.org"]
RELATIONS = {"sibling": ("sister", "brother"), "cousin": ("cousin", "cousin"), "flatmate": ("flatmate", "flatmate"),
             "colleague": ("colleague", "colleague"), "friend": ("friend", "friend"),
             "neighbour": ("neighbour", "neighbour")}

COMPONENTS = [
    "billing-api", "auth-service", "search-indexer", "notifications-worker", "web-frontend", "reporting-job",
    "gateway", "payments-sync", "media-resizer", "profile-service", "ledger", "scheduler", "export-worker",
    "inventory-api", "chat-relay", "geo-service",
]
UNTRACKED = ["old CMS", "FTP bridge", "legacy reports", "Jenkins", "Grafana", "wiki", "VPN gateway", "mail relay"]
PORTS = [3000, 5000, 6060, 7070, 8000, 8080, 8181, 8443, 8888, 9000, 9090, 9443]
DB_HOSTS = ["db-1.internal", "db-2.internal", "pg-main.prod.lan", "10.0.4.12", "10.0.7.31", "pg-eu-2.internal",
            "db-primary.svc.cluster.local", "10.2.0.15"]
RATE_LIMITS = [60, 100, 120, 200, 300, 500, 600, 1000]
TIMEOUTS = [3, 5, 10, 15, 20, 30, 45, 60]
FLAGS = ["new_checkout", "async_exports", "strict_auth", "edge_cache", "batch_writes", "dark_mode", "v2_search"]
MILESTONES = ["v2 release", "database migration", "security review", "Kubernetes move", "API freeze"]
DATES = ["April 3", "April 10", "April 17", "April 24", "May 1", "May 8", "May 15", "May 22", "May 29",
         "June 5", "June 12", "June 19", "June 26", "July 3"]
LIBRARIES = {
    "HTTP client": ["httpx", "aiohttp", "requests", "urllib3"],
    "task queue": ["Celery", "RQ", "Dramatiq", "Huey"],
    "ORM": ["SQLAlchemy", "Peewee", "Tortoise ORM", "Django ORM"],
    "logging library": ["structlog", "loguru", "the stdlib logging module"],
    "test runner": ["pytest", "unittest", "ward"],
}


def cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def article(word: str) -> str:
    head = word.split()[0]
    if head.isupper() and len(head) > 1:  # an acronym is read letter by letter: "an HR manager", "a UX designer"
        return ("an " if head[0] in "AEFHILMNORSX" else "a ") + word
    return ("an " if word[:1].lower() in "aeiou" else "a ") + word


# ---------------------------------------------------------------------------------------
# Personal templates. Keys: {n} name, {M}/{m} mention ("my sister Ana" / "Ana"),
# {sub}/{pos}/{obj} pronouns, value keys ({v}, {emp}, {a_role}, ...), {old...} the value
# being replaced, {x...} a hard negative's value, {f} a friend. Capitalised keys ({V}, {Emp})
# are the same value with its first letter upper-cased.

PERSONAL: dict[str, dict[str, dict[str, list[str]]]] = {
    "city": {
        "state": {
            "first": ["I live in {v}.", "{V} is where I live, so use it for anything local.",
                      "Can you set the weather app to {v}? That's where I live.",
                      "For the delivery forms, my home city is {v}."],
            "third": ["{M} lives in {v}.", "{M} lives over in {v}, so {sub} won't make the early meeting in person.",
                      "When you send the invitation, note that {n}'s home is in {v}.", "{V} is where {n} lives."],
        },
        "restate": {
            "first": ["Just so you have it: I'm based in {v}.", "My flat is in {v}, in case you need the city.",
                      "Home for me is {v} - has been for a while.", "Look for dentists around {v}, that's home."],
            "third": ["{M} is based in {v}.", "{M} has a place in {v}.", "{n} calls {v} home.",
                      "{M}, who's in {v}, is hosting the board-game night."],
        },
        "change_cue": {
            "first": ["I moved to {v} last weekend.", "Update my home city: I've relocated from {old} to {v}.",
                      "The move is done - we're living in {v} now."],
            "third": ["{M} moved to {v}.", "{M} left {old} and lives in {v} now.", "{M} has relocated to {v} for good."],
        },
        "change_plain": {
            "first": ["Find me a plumber in {v}, near my place.", "Our apartment in {v} gets really cold in winter.",
                      "{V} - that's my city, if the form asks."],
            "third": ["{n}'s flat is in {v}.", "{M} is living in {v}."],
        },
    },
    "job": {
        "state": {
            "first": ["I work at {emp} as {a_role}.", "I'm {a_role} at {emp}.",
                      "Since I'm {a_role} at {emp}, Mondays are packed - keep my mornings free.",
                      "{Emp} is my employer; I'm on the team as {a_role}."],
            "third": ["{M} works at {emp} as {a_role}.", "{M} is {a_role} at {emp}.",
                      "{M}, {a_role} at {emp}, is the one to ask about that."],
        },
        "restate": {
            "first": ["My job? {A_role} for {emp}.", "Work-wise I'm at {emp}; the title is {role}.",
                      "Put {emp} down as my employer - {role} is the position."],
            "third": ["{M} is employed by {emp} as {a_role}.", "{n}'s job is {role} at {emp}.",
                      "{M} has {a_role} position with {emp}."],
        },
        "change_cue": {
            "first": ["I started a new job: {a_role} at {emp}.", "I left {old_emp} - I'm now {a_role} at {emp}.",
                      "Big news, I accepted the offer from {emp} and started this week as {a_role}."],
            "third": ["{M} switched jobs and is now {a_role} at {emp}.", "{M} quit {old_emp} and joined {emp} as {a_role}."],
        },
        "change_plain": {
            "first": ["As {a_role} at {emp}, I get Fridays off, so schedule personal stuff then.",
                      "I work for {emp}; my title is {role}.", "{Emp} pays my salary - {role}, if anyone asks."],
            "third": ["{Emp} has {n} on staff as {a_role}.", "{n} does {role} work at {emp}."],
        },
    },
    "partner": {
        "state": {
            "first": ["My partner is {v}.", "{V} and I have been together for four years.",
                      "I'll bring my partner, {v}, to the dinner on Saturday."],
            "third": ["{M}'s partner is {v}.", "{V} is {n}'s partner.", "{M} is with {v}."],
        },
        "restate": {
            "first": ["{V} is my other half.", "Put {v} down as my emergency contact - we're a couple.",
                      "Me and {v} are a couple, so book the double room."],
            "third": ["{M} and {v} are a couple.", "{n}'s other half is {v}.", "{M} is in a relationship with {v}."],
        },
        "change_cue": {
            "first": ["{Old} and I broke up; I'm seeing {v} now.",
                      "Relationship update: I'm with {v} these days, things with {old} ended."],
            "third": ["{M} split up with {old} and is now with {v}.", "{M} has a new partner, {v}."],
        },
        "change_plain": {
            "first": ["My partner {v} is coming to the work party.", "{V} - my partner - wants to plan a trip together.",
                      "{V} is the person I'm with."],
            "third": ["{M} is dating {v}.", "{n}'s partner, {v}, is joining us for lunch."],
        },
    },
    "email": {
        "state": {
            "first": ["My email is {v}.", "{V} is my e-mail address.", "When you forward the tickets, use my address {v}."],
            "third": ["{n}'s email is {v}.", "{M} uses {v} for email.", "{V} is how you reach {n} by email."],
        },
        "restate": {
            "first": ["Reach me at {v} if anything comes up.", "Mail goes to {v} for me.", "Please CC {v} - that's me."],
            "third": ["You can contact {n} at {v}.", "{M}'s address for mail is {v}.", "Write to {n} at {v}."],
        },
        "change_cue": {
            "first": ["I changed my email to {v}; {old} is closed.", "New email address: {v}. Please stop using the old one."],
            "third": ["{M} switched email addresses - it's {v} now.", "{M} no longer uses {old}; the new one is {v}."],
        },
        "change_plain": {
            "first": ["My inbox is {v}.", "Send it to {v}, please - that's my email.", "I read mail at {v}."],
            "third": ["The address to use for {n} is {v}.", "Email {n} at {v}."],
        },
    },
    "car": {
        "state": {
            "first": ["I drive {a_v}.", "My car is {a_v}.", "Can you find a garage that services {a_v}? It's my car."],
            "third": ["{M} drives {a_v}.", "{n}'s car is {a_v}.", "{M} gets around in {a_v}."],
        },
        "restate": {
            "first": ["I've got {a_v}, in case the parking form asks.", "My daily driver is {a_v}.",
                      "The parking permit should be for my {v}."],
            "third": ["{M} owns {a_v}.", "The {v} in the driveway is {n}'s.", "{n} has {a_v}."],
        },
        "change_cue": {
            "first": ["I sold the {old} and bought {a_v}.", "Traded in my car - I've got {a_v} now.",
                      "Picked up my new car today, {a_v}."],
            "third": ["{M} replaced the {old} with {a_v}.", "{M} bought {a_v} and got rid of the old car."],
        },
        "change_plain": {
            "first": ["My {v} needs new tyres before winter.", "The insurance renewal is for my {v}."],
            "third": ["{M} is driving {a_v} these days.", "{n} parks {pos} {v} on the street."],
        },
    },
    "gym": {
        "state": {
            "first": ["I go to {v}.", "My gym is {v}.", "I train at {v} three times a week."],
            "third": ["{M} goes to {v}.", "{n}'s gym is {v}.", "{M} works out at {v}."],
        },
        "restate": {
            "first": ["I have a membership at {v}.", "{V} is where I work out.",
                      "Block my Tuesday lunch hours for {v}, that's my gym."],
            "third": ["{M} is a member at {v}.", "{M} trains at {v}.",
                      "If you're looking for {n} after work, try {v} - that's where {sub} exercises."],
        },
        "change_cue": {
            "first": ["I cancelled {old} and joined {v}.", "Switched gyms - I'm at {v} now."],
            "third": ["{M} left {old} for {v}.", "{M} changed gyms to {v}."],
        },
        "change_plain": {
            "first": ["My membership is at {v}.", "I work out at {v}, so pack my bag for it on Mondays."],
            "third": ["{M} spends {pos} evenings at {v}.", "{M} exercises at {v}."],
        },
    },
    "doctor": {
        "state": {
            "first": ["My GP is {v}.", "{V} is my family doctor.", "Book my check-up with {v}, my GP."],
            "third": ["{n}'s doctor is {v}.", "{M} sees {v} as {pos} GP.", "{V} is {n}'s GP."],
        },
        "restate": {
            "first": ["I'm registered with {v}.", "My doctor? {V}, at the health centre.",
                      "Any prescriptions go through {v}, who looks after me."],
            "third": ["{M} is registered with {v}.", "{V} looks after {n}.", "{M} is a patient of {v}."],
        },
        "change_cue": {
            "first": ["I switched GPs - it's {v} now, since {old} retired.", "I've changed doctors; my new GP is {v}."],
            "third": ["{M} moved to a new GP, {v}.", "{M} is no longer with {old}; {sub} sees {v} now."],
        },
        "change_plain": {
            "first": ["Call {v} if I'm ill - that's my doctor.", "Ask {v}'s office for my test results - that's my GP."],
            "third": ["{M} goes to {v} when {sub}'s ill.", "{M} sees {v} for check-ups."],
        },
    },
    "diet": {
        "state": {
            "first": ["I'm {v}.", "I eat {v}.", "Whenever you book restaurants, keep in mind that I'm {v}."],
            "third": ["{M} is {v}.", "{M} eats {v}.", "Remember {n} is {v} when you order lunch."],
        },
        "restate": {
            "first": ["{V} food only for me, please.", "My diet is {v}.",
                      "Please pick a place with {v} options - that's how I eat."],
            "third": ["{n}'s diet is {v}.", "{M} keeps a {v} diet.", "Order {v} for {n}."],
        },
        "change_cue": {
            "first": ["I've gone {v}, no longer {old}.", "I changed my diet - {v} from now on."],
            "third": ["{M} switched to a {v} diet.", "{M} isn't {old} anymore; {sub} is {v} now."],
        },
        "change_plain": {
            "first": ["I follow a {v} diet.", "For the catering order: {v} for me."],
            "third": ["{M} follows a {v} diet.", "Only {v} dishes for {n}, please."],
        },
    },
}

# Hard negatives per kind: (type, voice, template). "other" is about a friend {f}; the
# rest are about the person but are not a current value (one-off, past, question, plan).
PERSONAL_NEGATIVES: dict[str, list[tuple[str, str, str]]] = {
    "city": [
        ("other", "first", "My friend {f} lives in {x}."), ("other", "first", "{f}, a colleague of mine, is based in {x}."),
        ("oneoff", "first", "I spent the weekend in {x}; the food was great."),
        ("oneoff", "first", "I'm in {x} for a conference until Thursday."),
        ("oneoff", "first", "I'm staying at a hotel in {x} this week while they fix the heating at home."),
        ("oneoff", "third", "{M} is visiting {x} this weekend."),
        ("past", "first", "I used to live in {x}, years ago."), ("past", "third", "{M} grew up in {x}."),
        ("question", "first", "Should I move to {x}? The rents look lower."),
        ("question", "first", "What's the cost of living like in {x} compared to here?"),
        ("plan", "first", "I'm thinking about moving to {x} next year, nothing decided."),
        ("plan", "third", "{M} is considering a move to {x}."),
    ],
    "job": [
        ("other", "first", "My friend {f} works at {x_emp}."), ("other", "first", "{f}, my old classmate, is {x_a_role} at {x_emp}."),
        ("oneoff", "first", "I did a two-week freelance gig for {x_emp}, all wrapped up now."),
        ("oneoff", "third", "{M} is doing a short consulting job for {x_emp} this month."),
        ("past", "first", "I used to work at {x_emp} as {x_a_role}."), ("past", "third", "{M} used to work at {x_emp}."),
        ("question", "first", "Should I apply for the {x_role} opening at {x_emp}?"),
        ("question", "first", "Is {x_emp} a good place to work, do you think?"),
        ("plan", "first", "I have an interview at {x_emp} next week."),
        ("plan", "first", "I'm thinking about leaving to join {x_emp}, still undecided."),
        ("plan", "third", "{M} has an interview with {x_emp} on Thursday."),
    ],
    "partner": [
        ("other", "first", "My friend {f} is dating {x}."), ("other", "first", "{f}'s partner is {x}."),
        ("oneoff", "first", "I went on one date with {x} back in January, it wasn't a match."),
        ("past", "first", "My ex, {x}, messaged me out of the blue."), ("past", "third", "{M} used to date {x}."),
        ("question", "first", "Should I ask {x} out?"),
    ],
    "email": [
        ("other", "first", "My friend {f}'s email is {x}."), ("other", "first", "{f} at the agency uses {x}."),
        ("oneoff", "first", "I made a throwaway address, {x}, just for the raffle signup."),
        ("past", "first", "My old address was {x}, I don't check it anymore."),
        ("question", "first", "Should I set up a separate address for newsletters?"),
        ("plan", "first", "I'm thinking of moving my mail over to {x_domain} at some point."),
    ],
    "car": [
        ("other", "first", "My friend {f} drives {x_a_v}."), ("other", "first", "{f} just bought {x_a_v}."),
        ("oneoff", "first", "I rented {x_a_v} for the trip to the coast."),
        ("oneoff", "first", "The garage lent me {x_a_v} while mine is being repaired."),
        ("past", "first", "I used to drive {x_a_v}."), ("past", "first", "My first car was {x_a_v}."),
        ("past", "third", "{M} used to drive {x_a_v}."),
        ("question", "first", "Is {x_a_v} worth it as a family car?"),
        ("plan", "first", "I'm thinking of buying {x_a_v} next year."),
        ("plan", "third", "{M} is test-driving {x_a_v} on Saturday."),
    ],
    "gym": [
        ("other", "first", "My friend {f} goes to {x}."), ("other", "first", "{f} swears by {x}."),
        ("oneoff", "first", "I tried a drop-in class at {x} yesterday."),
        ("oneoff", "first", "Went to {x} once on a guest pass."),
        ("past", "first", "I used to be a member at {x}."),
        ("question", "first", "Should I switch to {x}? It's cheaper."),
        ("plan", "first", "I'm considering signing up at {x}."),
    ],
    "doctor": [
        ("other", "first", "My friend {f}'s GP is {x}."), ("other", "first", "{f} recommended {x} as a doctor."),
        ("oneoff", "first", "I saw a locum, {x}, because mine was away."),
        ("oneoff", "first", "The dermatologist, {x}, wants a follow-up next month."),
        ("past", "first", "{X} was my doctor when I was a kid."),
        ("question", "first", "Should I switch to {x}? I hear good things."),
        ("plan", "first", "I might register with {x} since the practice is closer."),
    ],
    "diet": [
        ("other", "first", "My friend {f} is {x}, so the picnic needs options."), ("other", "first", "{f} eats {x}."),
        ("oneoff", "first", "I'm trying {x} for a week, just as an experiment."),
        ("oneoff", "first", "Had {x_a_v} lunch at the new place - surprisingly good."),
        ("past", "first", "I was {x} for a couple of years in college."),
        ("question", "first", "Is a {x} diet healthy long-term?"),
        ("plan", "first", "I'm thinking about going {x} after the holidays."),
    ],
}

# ---------------------------------------------------------------------------------------
# Project templates: {c} component, {v}/{old}/{x} values, plus per-attribute extras.

PROJECT: dict[str, dict[str, list[str]]] = {
    "port": {
        "state": ["{c} listens on port {v}.", "Port {v} is what {c} binds to in production.",
                  "I checked the manifest: the {c} container exposes {v}."],
        "restate": ["{c} is reachable on :{v}.", "Traffic for {c} should go to port {v}.",
                    "The load balancer forwards to {c} on {v}, as configured."],
        "change_cue": ["I moved {c} from port {old} to {v} because of a clash with the metrics exporter.",
                       "{c}'s port changed to {v} in today's deploy."],
        "change_plain": ["{c} runs on port {v}.", "Point the health check at {c}:{v}."],
    },
    "db_host": {
        "state": ["{c} connects to the database at {v}.", "The Postgres host for {c} is {v}."],
        "restate": ["{c}'s DATABASE_HOST points to {v}.", "{V} is the database server behind {c}."],
        "change_cue": ["After the failover, {c} uses {v} instead of {old}.", "I repointed {c} to the database on {v}."],
        "change_plain": ["{c} reads and writes to {v}.", "The DB for {c} lives on {v}."],
    },
    "version": {
        "state": ["{c} is deployed at version {v}.", "Production is running {c} {v}."],
        "restate": ["The live build of {c} is {v}.", "{V} is the {c} release in prod."],
        "change_cue": ["Rolled {c} forward to {v} this afternoon.", "{c} was upgraded from {old} to {v}."],
        "change_plain": ["{c} in production reports version {v}.", "Prod has {c} at {v}."],
    },
    "rate_limit": {
        "state": ["{c} allows {v} requests per minute per client.", "The rate limit on {c} is {v}/min."],
        "restate": ["Clients get throttled on {c} after {v} requests a minute.", "{V} req/min is the per-key cap for {c}."],
        "change_cue": ["Adjusted {c}'s rate limit: it's {v}/min now.", "The {c} limit went from {old} to {v} requests/min."],
        "change_plain": ["{c} caps each client at {v} requests per minute.", "Per-client limit on {c}: {v}/min."],
    },
    "timeout": {
        "state": ["The request timeout for {c} is {v} seconds.", "{c} gives up on upstream calls after {v}s."],
        "restate": ["{c} times out requests at {v} s.", "{V} seconds is the timeout configured for {c}."],
        "change_cue": ["I bumped {c}'s timeout to {v}s.", "{c}'s timeout was changed from {old}s to {v}s."],
        "change_plain": ["{c} uses a {v}-second timeout.", "Timeout on {c}: {v} seconds."],
    },
    "flag": {
        "state": ["The {flag} flag is {state} for {c} in production.", "{c} has {flag} switched {on} in prod."],
        "restate": ["In production, {flag} is {on} for {c}.", "{flag} on {c}: {state} (prod)."],
        "change_cue": ["I flipped {flag} {on} for {c} in production.", "{flag} was {state} on {c} after the review."],
        "change_plain": ["{c} runs with {flag} {state} in production.", "Prod {c}: {flag} is {on}."],
    },
    "owner": {
        "state": ["{v} owns {c}.", "{V} is the owner of {c}."],
        "restate": ["Questions about {c} go to {v}.", "{c} is maintained by {v}."],
        "change_cue": ["Ownership of {c} moved from {old} to {v}.", "{V} took over {c} this week."],
        "change_plain": ["{V} is responsible for {c}.", "Ping {v} about anything {c}-related; it's {v}'s component."],
    },
    "deadline": {
        "state": ["The {c} {ms} is due on {v}.", "We need the {c} {ms} done by {v}."],
        "restate": ["{V} is the deadline for the {c} {ms}.", "The {c} {ms} has to land by {v}."],
        "change_cue": ["The {c} {ms} deadline slipped from {old} to {v}.", "New date for the {c} {ms}: {v}."],
        "change_plain": ["We're aiming to finish the {c} {ms} on {v}.", "Target for the {c} {ms}: {v}."],
    },
    "library": {
        "state": ["We chose {v} as the {purpose} for {c}.", "{c} uses {v} for its {purpose}."],
        "restate": ["The {purpose} in {c} is {v}.", "For {c}'s {purpose} we went with {v}."],
        "change_cue": ["We replaced {old} with {v} in {c}.", "{c} switched its {purpose} to {v}."],
        "change_plain": ["{c} is built on {v} for the {purpose} layer.", "{c} depends on {v} for the {purpose}."],
    },
}

PROJECT_NEGATIVES: dict[str, list[tuple[str, str]]] = {
    "port": [("other", "In staging, {c} listens on {x}."), ("untracked", "The {u} box uses port {x}."),
             ("oneoff", "For the load test only, {c} ran on port {x}; it's reverted."),
             ("question", "Should we move {c} to port {x}?"), ("plan", "We might move {c} to {x} when the new ingress lands."),
             ("past", "{c} used to listen on {x} before the migration.")],
    "db_host": [("other", "The read replica for {c} is {x}."),
                ("oneoff", "During maintenance {c} was pointed at {x} for twenty minutes."),
                ("question", "Could we put {c} on {x} to save money?"),
                ("plan", "We plan to move {c}'s database to {x} next month.")],
    "version": [("other", "Staging already has {c} {x}."),
                ("oneoff", "We briefly deployed {c} {x} as a canary to 5% of traffic, then rolled it back."),
                ("question", "Is {c} {x} safe to ship?"), ("plan", "{c} {x} is planned for next sprint.")],
    "rate_limit": [("other", "The internal admin endpoints of {c} have their own limit of {x}/min."),
                   ("oneoff", "During last night's incident we bumped {c} to {x}/min for an hour; it's back to normal now."),
                   ("question", "Would {x}/min be enough for the partner integration on {c}?"),
                   ("plan", "We may lift {c}'s limit to {x} after the capacity review.")],
    "timeout": [("other", "The database driver in {c} has a separate {x}s connect timeout."),
                ("oneoff", "For the big backfill we ran {c} with a {x}s timeout, just that once."),
                ("question", "Should {c}'s timeout be {x}s instead?"),
                ("plan", "If the reports keep failing we might raise {c}'s timeout to {x}s.")],
    "flag": [("other", "In staging {flag} is {x_on} for {c}."),
             ("oneoff", "We toggled {flag} {x_on} on {c} for ten minutes to test, then put it back."),
             ("question", "Should we turn {flag} {x_on} for {c}?"),
             ("plan", "We'll probably switch {flag} {x_on} on {c} after the launch.")],
    "owner": [("other", "{X} owns the dashboards that read from {c}."),
              ("oneoff", "{X} is covering {c} on-call this week."),
              ("question", "Should {x} take over {c}?"), ("plan", "We're thinking of handing {c} to {x} next quarter.")],
    "deadline": [("question", "Could we pull the {c} {ms} forward to {x}?"),
                 ("plan", "We might ask for an extension on the {c} {ms} to {x}.")],
    "library": [("past", "The prototype of {c} used {x}, but it never shipped."),
                ("question", "Would {x} be a better {purpose} for {c}?"),
                ("plan", "Thinking about switching {c} to {x}."), ("plan", "Thinking about rewriting {c} in Rust.")],
}

QUESTIONS = {
    "port": "Which port is {c} on again?", "db_host": "Where does {c}'s database live?",
    "version": "What version of {c} is live?", "rate_limit": "What's the rate limit on {c}?",
    "timeout": "What timeout does {c} use?", "flag": "Is {flag} on for {c}?", "owner": "Who owns {c}?",
}

USER_FILLER = ["ok thanks", "Good morning!", "thanks, that's all for now", "perfect", "great, cheers", "hi",
               "sounds good", "never mind", "lol yes", "Can you remind me about that in an hour?", "ok",
               "Morning! Busy day ahead.", "thank you!", "right, makes sense", "brb"]
ASSISTANT_FILLER = ["You're welcome!", "Good morning! How can I help?", "Done.", "Sure - anything else?", "Noted.",
                    "Happy to help.", "Reminder set.", "No problem."]


# ---------------------------------------------------------------------------------------
# Planning: items are collected first, then written in time order, so ids and timestamps
# follow the days.


@dataclass(eq=False)
class Item:
    day: int
    order: float
    speaker: str | None = None
    content: str | None = None
    tool: dict[str, Any] | None = None
    event_id: str = ""


@dataclass
class Person:
    name: str
    gender: str
    surname: str
    narrator: Person | None = None
    relation: str = ""

    @property
    def pronouns(self) -> dict[str, str]:
        sub, pos, obj = ("she", "her", "her") if self.gender == "f" else ("he", "his", "him")
        return {"sub": sub, "Sub": cap(sub), "pos": pos, "obj": obj}


class Planner:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.items: list[Item] = []
        self.groups: list[list[Item]] = []
        self.supersessions: list[tuple[Item, Item]] = []
        self.hard: list[Item] = []
        self.filler: list[Item] = []
        self.friends = list(FRIENDS)
        rng.shuffle(self.friends)
        self.extra_friends = 0
        self.untracked = list(UNTRACKED)
        rng.shuffle(self.untracked)

    def say(self, day: int, speaker: str, content: str, order: float | None = None) -> Item:
        item = Item(day, self.rng.random() if order is None else order, speaker=speaker, content=content)
        self.items.append(item)
        return item

    def call(self, day: int, tool: dict[str, Any], order: float | None = None) -> Item:
        item = Item(day, self.rng.random() if order is None else order, tool=tool)
        self.items.append(item)
        return item

    def friend(self) -> str:
        """A friend mentioned once in the whole log, so no two statements share an untracked subject."""
        if self.friends:
            return self.friends.pop()
        self.extra_friends += 1
        return f"{FRIENDS[self.extra_friends % len(FRIENDS)]} {SURNAMES[self.extra_friends // len(FRIENDS) % len(SURNAMES)]}"

    def days(self, count: int, low: int = 0, high: int = DAYS) -> list[int]:
        return sorted(self.rng.sample(range(low, high), count))


def with_caps(values: dict[str, str], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in values.items():
        name = prefix + key
        out[name] = value
        out[cap(name)] = value if "@" in value else cap(value)  # an address keeps its case
    if "v" in values and prefix:
        short = prefix.rstrip("_")
        out[short], out[cap(short)] = values["v"], out[cap(prefix + "v")]
    return out


def personal_value(kind: str, person: Person, rng: random.Random, avoid: list[dict[str, str]], partners: list[str]) -> dict[str, str]:
    taken = {a.get("v") for a in avoid} | {a.get("emp") for a in avoid}
    while True:
        if kind == "city":
            value = {"v": rng.choice(CITIES)}
        elif kind == "job":
            role = rng.choice(ROLES)
            value = {"emp": rng.choice(EMPLOYERS), "role": role, "a_role": article(role)}
            value["v"] = value["emp"]
        elif kind == "partner":
            value = {"v": partners.pop() if partners else rng.choice(PARTNERS)}
        elif kind == "email":
            domain = rng.choice(DOMAINS)
            first, last = person.name.split()[0].lower(), person.surname.lower()
            local = rng.choice([f"{first}.{last}", f"{first[0]}{last}", f"{first}{rng.randint(10, 99)}", f"{last}.{first}"])
            value = {"v": f"{local}@{domain}", "domain": domain}
        elif kind == "car":
            car = rng.choice(CARS)
            value = {"v": car, "a_v": article(car)}
        elif kind == "gym":
            value = {"v": rng.choice(GYMS)}
        elif kind == "doctor":
            value = {"v": f"Dr {rng.choice(DOCTORS)}"}
        else:
            diet = rng.choice(DIETS)
            value = {"v": diet, "a_v": article(diet)}
        if value["v"] not in taken:
            return value


def render(template: str, ctx: dict[str, str]) -> str:
    text = template.format(**ctx)
    return text if "@" in text.split()[0] else cap(text)  # an address keeps its case


def person_ctx(person: Person, voice: str, rng: random.Random) -> tuple[str, dict[str, str]]:
    """The speaker and the subject keys for a statement about `person` in `voice`."""
    ctx = {"n": person.name, **person.pronouns}
    if voice == "third" and person.narrator is not None:
        mention = f"my {person.relation} {person.name}" if rng.random() < 0.5 else person.name
        ctx.update(M=cap(mention), m=mention)
        return person.narrator.name, ctx
    ctx.update(M=person.name, m=person.name)
    return person.name, ctx


def personal_statement(plan: Planner, person: Person, kind: str, slot: str, day: int, ctx_values: dict[str, str],
                       avoid_voice: str | None = None) -> tuple[Item, str]:
    rng = plan.rng
    voices = ["first", "third"] if person.narrator is not None else ["first"]
    if avoid_voice in voices and len(voices) > 1 and rng.random() < 0.6:
        voices.remove(avoid_voice)
    voice = rng.choice(voices) if len(voices) == 1 or rng.random() < 0.65 else "first"
    speaker, ctx = person_ctx(person, voice, rng)
    template = rng.choice(PERSONAL[kind][slot][voice])
    text = render(template, {**ctx, **ctx_values})
    if voice == "first" and ":" not in text and rng.random() < 0.15:
        text = rng.choice(["Quick note: ", "FYI - "]) + text
    return plan.say(day, speaker, text), voice


def personal_facts(plan: Planner, person: Person, kinds: list[str], changed: set[str], partners: list[str]) -> dict[str, Any]:
    """One fact per kind: state, restate, maybe change (and restate the new value)."""
    rng = plan.rng
    facts: dict[str, Any] = {}
    for kind in kinds:
        change = kind in changed
        again = change and rng.random() < 0.3
        days = plan.days(2 + change + again)
        v0 = personal_value(kind, person, rng, [], partners)
        first, voice = personal_statement(plan, person, kind, "state", days[0], with_caps(v0))
        second, _ = personal_statement(plan, person, kind, "restate", days[1], with_caps(v0), avoid_voice=voice)
        plan.groups.append([first, second])
        fact = {"values": [v0], "days": days, "restated_day": days[1]}
        if change:
            v1 = personal_value(kind, person, rng, [v0], partners)
            slot = "change_cue" if rng.random() < 0.5 else "change_plain"
            ctx = {**with_caps(v1), **with_caps(v0, "old_")}
            new, voice = personal_statement(plan, person, kind, slot, days[2], ctx)
            plan.supersessions.append((first, new))
            fact["values"].append(v1)
            fact["change_day"] = days[2]
            if again:
                later, _ = personal_statement(plan, person, kind, "restate", days[3], with_caps(v1), avoid_voice=voice)
                plan.groups.append([new, later])
        facts[kind] = fact
    return facts


def negative_value(kind: str, person: Person, rng: random.Random, values: list[dict[str, str]], friend: str,
                   kind_of: str, partners: list[str]) -> dict[str, str]:
    """A value for a hard negative: another subject's may equal the person's, the rest never do."""
    current = values[0]
    if kind == "email":
        domain = rng.choice(DOMAINS)
        if kind_of == "other":
            return {"v": f"{friend.split()[0].lower()}.{rng.choice(SURNAMES).lower()}@{domain}", "domain": domain}
        if kind_of == "oneoff":
            return {"v": f"{person.name.lower()}.raffle{rng.randint(1, 99)}@{domain}", "domain": domain}
        return {"v": f"{person.name.lower()}{person.surname.lower()}{rng.randint(80, 99)}@hotmail.com", "domain": domain}
    if kind_of == "other" and kind not in ("partner",) and rng.random() < 0.35:
        return dict(current)  # same value, different subject
    spare: list[str] = []
    return personal_value(kind, person, rng, values, partners if kind == "partner" else spare)


def personal_negatives(plan: Planner, person: Person, facts: dict[str, Any], partners: list[str]) -> None:
    rng = plan.rng
    count = rng.randint(2, 4)
    used: set[str] = set()
    for _ in range(count):
        kind = rng.choice(list(facts)) if facts and rng.random() < 0.85 else rng.choice(list(PERSONAL))
        options = [o for o in PERSONAL_NEGATIVES[kind] if (o[1] == "first" or person.narrator is not None) and o[2] not in used]
        kind_of, voice, template = rng.choice(options)
        used.add(template)
        fact = facts.get(kind)
        values = fact["values"] if fact else [personal_value(kind, person, rng, [], [])]
        friend = plan.friend() if "{f}" in template else ""
        x = negative_value(kind, person, rng, values, friend, kind_of, partners)
        if kind == "diet":
            x.setdefault("a_v", article(x["v"]))
        if fact and kind_of in ("plan", "question") and "change_day" in fact and rng.random() < 0.5:
            # asked about or planned before it happened; the change itself is the fact
            x = fact["values"][1]
            day = rng.randrange(0, fact["change_day"])
        elif fact and rng.random() < 0.5:
            day = fact["restated_day"]  # alongside the restatement of the current value
        else:
            day = rng.randrange(DAYS)
        speaker, ctx = person_ctx(person, voice, rng)
        ctx.update(f=friend, **with_caps(x, "x_"))
        plan.hard.append(plan.say(day, speaker, render(template, ctx)))


# ---------------------------------------------------------------------------------------
# Project facts


def bump(version: str, rng: random.Random) -> str:
    major, minor, patch = (int(p) for p in version.split("."))
    if rng.random() < 0.6:
        return f"{major}.{minor}.{patch + rng.randint(1, 3)}"
    return f"{major}.{minor + 1}.0"


def project_value(attr: str, rng: random.Random, owners: list[str], purpose: str, avoid: str | None = None,
                  after: str | None = None) -> str:
    while True:
        if attr == "port":
            value = str(rng.choice(PORTS))
        elif attr == "db_host":
            value = rng.choice(DB_HOSTS)
        elif attr == "version":
            value = bump(after, rng) if after else f"{rng.randint(1, 4)}.{rng.randint(0, 12)}.{rng.randint(0, 9)}"
        elif attr == "rate_limit":
            value = str(rng.choice(RATE_LIMITS))
        elif attr == "timeout":
            value = str(rng.choice(TIMEOUTS))
        elif attr == "flag":
            value = "on" if avoid is None and rng.random() < 0.5 or avoid == "off" else "off"
        elif attr == "owner":
            value = rng.choice(owners)
        elif attr == "deadline":  # a first deadline leaves room for later ones
            value = rng.choice(DATES[DATES.index(after) + 1 :] if after else DATES[:-3])
        else:
            value = rng.choice(LIBRARIES[purpose])
        if value != avoid:
            return value


def tool_for(attr: str, c: str, extras: dict[str, str], value: str, env: str = "production") -> dict[str, Any] | None:
    if attr == "port":
        return {"name": "config_get", "arguments": {"service": c, "key": "port", "env": env}, "result": value}
    if attr == "rate_limit":
        return {"name": "config_get", "arguments": {"service": c, "key": "rate_limit_per_minute", "env": env},
                "result": int(value)}
    if attr == "timeout":
        return {"name": "config_get", "arguments": {"service": c, "key": "request_timeout_s", "env": env},
                "result": int(value)}
    if attr == "db_host":
        return {"name": "env_get", "arguments": {"service": c, "var": "DATABASE_HOST", "env": env}, "result": value}
    if attr == "version":
        host = f"{c}.internal" if env == "production" else f"{c}.{env}.internal"
        return {"name": "http_get", "arguments": {"url": f"https://{host}/version"},
                "result": {"service": c, "version": value}}
    if attr == "flag":
        return {"name": "flags_get", "arguments": {"flag": extras["flag"], "service": c, "env": env},
                "result": {"enabled": value == "on"}}
    if attr == "owner":
        return {"name": "codeowners_lookup", "arguments": {"path": f"services/{c}/"},
                "result": f"@{value.split()[0].lower()}"}
    return None


def project_ctx(attr: str, c: str, extras: dict[str, str], value: str, prefix: str = "") -> dict[str, str]:
    ctx: dict[str, str] = {"c": c, **extras}
    if attr == "flag":
        ctx[prefix + "state"] = "enabled" if value == "on" else "disabled"
        ctx[prefix + "on"] = value
    name = prefix.rstrip("_") or "v"
    ctx[name] = ctx[cap(name)] = value  # identifiers, numbers and names keep their case
    return ctx


def project_speaker(plan: Planner, people: list[Person]) -> str:
    return ASSISTANT if not people or plan.rng.random() < 0.75 else plan.rng.choice(people).name


def project_statement(plan: Planner, people: list[Person], attr: str, c: str, extras: dict[str, str], slot: str,
                      day: int, value: str, old: str | None = None, tool: bool = False) -> Item:
    rng = plan.rng
    if tool:
        call = tool_for(attr, c, extras, value) or {}
        if rng.random() < 0.3 and people:  # someone asks first, the tool answers
            order = rng.random()
            question = QUESTIONS[attr].format(**project_ctx(attr, c, extras, value))
            plan.hard.append(plan.say(day, rng.choice(people).name, question, order))
            return plan.call(day, call, order + 1e-6)
        return plan.call(day, call)
    ctx = project_ctx(attr, c, extras, value)
    if old is not None:
        ctx.update(project_ctx(attr, c, extras, old, "old_"))
    return plan.say(day, project_speaker(plan, people), rng.choice(PROJECT[attr][slot]).format(**ctx))


def project_fact(plan: Planner, c: str, attr: str, owners: list[str], people: list[Person]) -> None:
    """One fact about component `c`: stated, maybe restated, maybe changed (and restated)."""
    rng = plan.rng
    extras = {"flag": rng.choice(FLAGS), "ms": rng.choice(MILESTONES), "purpose": rng.choice(list(LIBRARIES))}
    restated = rng.random() < 0.75
    change = rng.random() < 0.5
    again = change and rng.random() < 0.4
    days = plan.days(1 + restated + change + again)
    v0 = project_value(attr, rng, owners, extras["purpose"])
    by_tool = tool_for(attr, c, extras, v0) is not None and rng.random() < 0.6
    pos = iter(days)

    def statement(slot: str, value: str, old: str | None = None, tool: bool = False) -> Item:
        return project_statement(plan, people, attr, c, extras, slot, next(pos), value, old, tool)

    first = statement("state", v0, tool=by_tool)
    if restated:
        # a tool fact repeats as the identical tool result, or the assistant paraphrases it
        second = statement("restate", v0, tool=by_tool and rng.random() < 0.7)
        plan.groups.append([first, second])
    value = v0
    if change:
        v1 = project_value(attr, rng, owners, extras["purpose"], avoid=v0, after=v0 if attr in ("version", "deadline") else None)
        slot = "change_cue" if rng.random() < 0.5 else "change_plain"
        new = statement(slot, v1, old=v0, tool=by_tool and rng.random() < 0.6)
        plan.supersessions.append((first, new))
        value = v1
        if again:
            later = statement("restate", v1, tool=new.tool is not None)
            plan.groups.append([new, later])
    if rng.random() < 0.7:
        project_negative(plan, attr, c, extras, value, owners, people)


def project_negative(plan: Planner, attr: str, c: str, extras: dict[str, str], current: str, owners: list[str],
                     people: list[Person]) -> None:
    rng = plan.rng
    kind_of, template = rng.choice(PROJECT_NEGATIVES[attr])
    if kind_of == "untracked" and not plan.untracked:
        kind_of, template = PROJECT_NEGATIVES[attr][0]
    if attr == "version":
        x = bump(current, rng)
    elif kind_of == "other" and attr != "flag" and rng.random() < 0.3:
        x = current
    else:
        x = project_value(attr, rng, owners, extras["purpose"], avoid=current)
    day = rng.randrange(DAYS)
    if kind_of == "other" and tool_for(attr, c, extras, x, "staging") is not None and attr != "owner" and rng.random() < 0.4:
        plan.hard.append(plan.call(day, tool_for(attr, c, extras, x, "staging") or {}))  # the staging value
        return
    ctx = project_ctx(attr, c, extras, x, "x_")
    if kind_of == "untracked":
        ctx["u"] = plan.untracked.pop()
    plan.hard.append(plan.say(day, project_speaker(plan, people), template.format(**ctx)))


# ---------------------------------------------------------------------------------------


def make_people(rng: random.Random, persons: int) -> list[Person]:
    combos = [(first, gender, surname) for first, gender in PEOPLE for surname in SURNAMES]
    rng.shuffle(combos)
    if persons <= len(PEOPLE):  # first names alone are unique
        chosen, seen = [], set()
        for combo in combos:
            if combo[0] not in seen:
                seen.add(combo[0])
                chosen.append(combo)
        combos = chosen
    people: list[Person] = []
    for first, gender, surname in combos[:persons]:
        people.append(Person(first if persons <= len(PEOPLE) else f"{first} {surname}", gender, surname))
    relations: dict[frozenset[int], str] = {}
    for i, person in enumerate(people):
        if persons < 2:
            break
        j = (i + 1) % persons
        key = frozenset((i, j))
        relation = relations.setdefault(key, rng.choice(list(RELATIONS)))
        person.narrator = people[j]
        person.relation = RELATIONS[relation][0 if person.gender == "f" else 1]
    return people


def generate(persons: int = 12, seed: int = 29, user_id: str = "synthetic") -> SpecLog:
    rng = random.Random(seed)
    plan = Planner(rng)
    people = make_people(rng, persons)
    partners = list(PARTNERS)
    rng.shuffle(partners)
    owners = [p.name for p in people] + ["Rita", "Kenji", "Olu"][: max(0, 3 - len(people))]

    for person in people:
        kinds = rng.sample(list(PERSONAL), rng.randint(3, 5))
        changed = set(rng.sample(kinds, (len(kinds) + rng.randint(0, 1)) // 2))
        facts = personal_facts(plan, person, kinds, changed, partners)
        personal_negatives(plan, person, facts, partners)

    components = rng.sample(COMPONENTS, min(len(COMPONENTS), max(2, persons // 3)))
    for c in components:
        for attr in rng.sample(list(PROJECT), rng.randint(3, 5)):
            project_fact(plan, c, attr, owners, people)

    for _ in range(2 * persons + 6):
        day = rng.randrange(DAYS)
        order = rng.random()
        speaker = rng.choice(people).name if people else "user"
        plan.filler.append(plan.say(day, speaker, rng.choice(USER_FILLER), order))
        if rng.random() < 0.5:
            plan.filler.append(plan.say(day, ASSISTANT, rng.choice(ASSISTANT_FILLER), order + 1e-6))

    log = SpecLog(events=[])
    writer = EventWriter(log, user_id, START, prefix="spec")
    for _, item in sorted(enumerate(plan.items), key=lambda p: (p[1].day, p[1].order, p[0])):
        item.event_id = writer.add(item.day, content=item.content, speaker=item.speaker, tool=item.tool)
        if item.speaker == ASSISTANT:
            log.events[-1]["role"] = "assistant"
    log.events.sort(key=lambda e: e["timestamp"])
    log.duplicate_groups = [{i.event_id for i in group} for group in plan.groups]
    log.supersessions = {(old.event_id, new.event_id) for old, new in plan.supersessions}
    log.hard_negatives = {i.event_id for i in plan.hard}
    log.filler = {i.event_id for i in plan.filler}
    return log


if __name__ == "__main__":
    import sys

    sample = generate(int(sys.argv[1]) if len(sys.argv) > 1 else 12)
    for event in sample.events:
        text = event["content"] or f"[tool] {event['tool']['name']}({event['tool']['arguments']}) -> {event['tool']['result']}"
        print(event["event_id"], event["session_id"], event.get("speaker") or "-", "|", text)
    print(f"{len(sample.events)} events, {len(sample.duplicate_pairs())} duplicate pairs, "
          f"{len(sample.supersessions)} supersessions, {len(sample.hard_negatives)} hard negatives, "
          f"{len(sample.filler)} filler")
