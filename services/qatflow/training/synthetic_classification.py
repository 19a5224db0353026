"""The embedded text-classification data sets, generated deterministically from a seed.

``synthetic-sentiment``: product and service reviews, negative (0) or positive (1). A third of
them negate an opinion ("not great") and a quarter contrast two ("slow, but excellent"), so
counting opinion words is not enough. ``synthetic-paraphrase``: pairs of business news
sentences, not_equivalent (0) or equivalent (1) as in MRPC; a pair that is not equivalent
mostly differs in a single fact (company, person, number, quarter, direction).

The validation split uses products, companies and people training never sees, so it measures
generalisation instead of saturating at 100 %: half of its examples take most of their opinion
words and phrasings from lists training never sees, the other half only entities are new.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from qatflow.training.examples import ClassificationExample

SENTIMENT_LABELS = ("negative", "positive")
PARAPHRASE_LABELS = ("not_equivalent", "equivalent")
# Share of validation examples worded with held-out words and phrasings, and, in those, the
# share of each word or phrasing drawn from the held-out lists.
_HELD_OUT_EXAMPLES = 0.5
_HELD_OUT_WORDING = 0.7

_PRODUCTS = [
    "coffee maker",
    "hotel room",
    "laptop",
    "headphones",
    "restaurant",
    "delivery",
    "vacuum cleaner",
    "phone case",
    "hair dryer",
    "tent",
    "backpack",
    "blender",
    "train ride",
    "car rental",
    "yoga class",
    "pizza",
    "mattress",
    "printer",
    "running shoes",
    "kettle",
    "keyboard",
    "sofa",
    "camera",
    "haircut",
]
_PRODUCTS_EVAL = [
    "espresso grinder",
    "bicycle",
    "museum tour",
    "tablet",
    "winter jacket",
    "sushi bar",
    "desk lamp",
    "plumber",
    "toaster",
    "guest house",
]
_POSITIVE = [
    "great",
    "excellent",
    "wonderful",
    "fantastic",
    "reliable",
    "comfortable",
    "friendly",
    "fast",
    "perfect",
    "lovely",
    "impressive",
    "solid",
    "good",
    "nice",
    "amazing",
    "enjoyable",
    "sturdy",
    "clean",
    "charming",
    "terrific",
]
_POSITIVE_EVAL = ["superb", "delightful", "outstanding", "brilliant", "flawless", "pleasant"]
_NEGATIVE = [
    "terrible",
    "awful",
    "broken",
    "slow",
    "disappointing",
    "noisy",
    "rude",
    "cheap",
    "useless",
    "horrible",
    "flimsy",
    "dirty",
    "bad",
    "poor",
    "ugly",
    "fragile",
    "overpriced",
    "unreliable",
    "uncomfortable",
    "boring",
]
_NEGATIVE_EVAL = ["dreadful", "shoddy", "abysmal", "faulty", "unpleasant", "mediocre"]
_VERDICTS = {
    1: ["I would buy it again", "I would recommend it to anyone", "it was worth every penny"],
    0: ["I returned it after a week", "I want my money back", "it was a waste of money"],
}
_VERDICTS_EVAL = {
    1: ["it exceeded my expectations", "I am very happy with it"],
    0: ["it fell apart within days", "I regret paying for it"],
}
_INTENSIFIERS = ["", "", "really ", "very ", "quite ", "truly "]
# {s}: product, {a}: opinion word, {v}: verdict.
_PLAIN = [
    "The {s} is {i}{a}.",
    "This {s} was {i}{a}.",
    "I found the {s} {i}{a} and {v}.",
    "Our {s} turned out {i}{a}.",
    "{A} {s}, {v}.",
]
_PLAIN_EVAL = [
    "Honestly, the {s} seemed {i}{a} to me.",
    "What a {a} {s}; {v}.",
    "My verdict on the {s}: {a}.",
]
# The opinion word is negated: the sentence means the opposite polarity.
_NEGATED = [
    "The {s} was not {a} at all.",
    "I would not call the {s} {a}.",
    "This {s} is not {i}{a}.",
    "The {s} was anything but {a}.",
    "The {s} is hardly {a}.",
    "The {s} was never {a}.",
    "No one would call the {s} {a}.",
    "I could not describe the {s} as {a}.",
    "The {s} is not exactly {a}.",
]
_NEGATED_EVAL = ["Nobody could say the {s} is {a}.", "The {s} was far from {a}."]
_CONTRASTS = ["{x}, but {y}", "{x}; however, {y}", "{x}. Even so, {y}", "{x}, but then again {y}"]
_CONTRASTS_EVAL = ["{x}, yet {y}", "{x}. Still, {y}"]
_FILLER = [
    "I bought it last month.",
    "We used it on a family trip.",
    "It arrived on a Tuesday.",
    "My sister suggested it.",
    "I paid the regular price.",
]


def generate_sentiment(split: str, count: int, seed: int) -> list[ClassificationExample]:
    """``count`` reviews of the ``train`` or ``validation`` split; same seed, same data."""
    evaluation = split != "train"
    rng = random.Random(f"sentiment-{seed}-{split}")
    products = _PRODUCTS_EVAL if evaluation else _PRODUCTS
    examples = []
    for _ in range(count):
        held_out = evaluation and rng.random() < _HELD_OUT_EXAMPLES
        label = rng.randint(0, 1)
        kind = rng.random()
        if kind < 0.3:
            text = _negated(rng, rng.choice(products), label, held_out)
        elif kind < 0.55:
            one, two = rng.sample(products, 2)
            first = _opinion(rng, one, 1 - label, held_out).rstrip(".")
            second = _opinion(rng, two, label, held_out).rstrip(".")
            contrast = _pick(rng, _CONTRASTS, _CONTRASTS_EVAL, held_out)
            if not second.startswith("I "):
                second = second[0].lower() + second[1:]
            text = contrast.format(x=first, y=second) + "."
        else:
            text = _opinion(rng, rng.choice(products), label, held_out)
        if rng.random() < 0.3:
            filler = rng.choice(_FILLER)
            text = f"{filler} {text}" if rng.random() < 0.5 else f"{text} {filler}"
        examples.append(ClassificationExample(text, None, label))
    return examples


def _opinion(rng: random.Random, product: str, label: int, held_out: bool) -> str:
    template = _pick(rng, _PLAIN, _PLAIN_EVAL, held_out)
    word = _word(rng, label, held_out)
    verdict = _pick(rng, _VERDICTS[label], _VERDICTS_EVAL[label], held_out)
    return template.format(
        s=product, a=word, A=word.capitalize(), v=verdict, i=rng.choice(_INTENSIFIERS)
    )


def _negated(rng: random.Random, product: str, label: int, held_out: bool) -> str:
    template = _pick(rng, _NEGATED, _NEGATED_EVAL, held_out)
    return template.format(
        s=product, a=_word(rng, 1 - label, held_out), i=rng.choice(_INTENSIFIERS)
    )


def _word(rng: random.Random, polarity: int, held_out: bool) -> str:
    if polarity:
        return _pick(rng, _POSITIVE, _POSITIVE_EVAL, held_out)
    return _pick(rng, _NEGATIVE, _NEGATIVE_EVAL, held_out)


def _pick(rng: random.Random, seen: list[str], unseen: list[str], held_out: bool) -> str:
    return rng.choice(unseen if held_out and rng.random() < _HELD_OUT_WORDING else seen)


_COMPANIES = [
    "Norvale Systems",
    "Brightwater Foods",
    "Kestrel Airlines",
    "Lumen Bank",
    "Oakridge Motors",
    "Pinecrest Pharma",
    "Redfield Energy",
    "Silverline Telecom",
    "Tarragon Retail",
    "Vantage Steel",
    "Westbrook Media",
    "Zephyr Logistics",
]
_COMPANIES_EVAL = [
    "Ashgrove Chemicals",
    "Cobalt Insurance",
    "Harbour Textiles",
    "Juniper Robotics",
    "Marlow Shipping",
    "Quayside Hotels",
]
_PEOPLE = [
    "Anna Keller",
    "Marc Dubois",
    "Sofia Marino",
    "Tomas Novak",
    "Lena Fischer",
    "Omar Haddad",
    "Julia Berg",
    "Peter Lund",
]
_PEOPLE_EVAL = ["Ingrid Sorensen", "Rafael Ortega", "Nadia Petrova", "Hiro Tanaka"]
_METRICS = ["revenue", "profit", "sales"]
_QUARTERS = ["first", "second", "third", "fourth"]
_ROLES = ["chief executive", "finance chief", "chairman", "head of research"]
_UP = ["rose", "increased", "climbed", "grew"]
_DOWN = ["fell", "dropped", "declined", "shrank"]
# {c} company, {m} metric, {d} direction verb, {n} percent, {q} quarter.
_RESULTS = [
    "{c} said its {m} {d} {n} percent in the {q} quarter.",
    "In the {q} quarter, {m} at {c} {d} by {n} percent.",
    "{M} at {c} {d} {n} percent in the {q} quarter, the company said.",
    "{c} reported that {m} {d} {n} percent during the {q} quarter.",
]
_RESULTS_EVAL = [
    "During the {q} quarter {c} saw its {m} {d} by {n} percent.",
    "The {q} quarter brought {c} {m} that {d} {n} percent.",
]
# {c} company, {p} person, {r} role.
_APPOINTMENTS = [
    "{c} named {p} as its new {r}.",
    "{p} will become {r} of {c}, the company announced.",
    "{c} has appointed {p} to the post of {r}.",
]
_APPOINTMENTS_EVAL = [
    "The board of {c} chose {p} as {r}.",
    "{p} takes over as {r} at {c}.",
]


def generate_paraphrase(split: str, count: int, seed: int) -> list[ClassificationExample]:
    """``count`` sentence pairs of the ``train`` or ``validation`` split; same seed, same data."""
    evaluation = split != "train"
    rng = random.Random(f"paraphrase-{seed}-{split}")
    companies = _COMPANIES_EVAL if evaluation else _COMPANIES
    people = _PEOPLE_EVAL if evaluation else _PEOPLE
    examples = []
    for _ in range(count):
        held_out = evaluation and rng.random() < _HELD_OUT_EXAMPLES
        label = rng.randint(0, 1)
        event = _results if rng.random() < 0.6 else _appointment
        facts = event(rng, companies, people, {})
        if label or rng.random() < 0.2:  # an easy negative: another event altogether
            other = facts if label else event(rng, companies, people, {})
        else:
            other = event(rng, companies, people, _changed_fact(rng, facts))
        first = _say(rng, facts, held_out)
        second = _say(rng, other, held_out, avoid=first)
        examples.append(ClassificationExample(first, second, label))
    return examples


Facts = dict[str, str]
Event = Callable[[random.Random, list[str], list[str], Facts], Facts]


def _results(rng: random.Random, companies: list[str], people: list[str], fixed: Facts) -> Facts:
    facts = {
        "kind": "results",
        "c": rng.choice(companies),
        "m": rng.choice(_METRICS),
        "up": rng.choice(["up", "down"]),
        "n": str(rng.randint(2, 40)),
        "q": rng.choice(_QUARTERS),
    }
    return {**facts, **fixed}


def _appointment(
    rng: random.Random, companies: list[str], people: list[str], fixed: Facts
) -> Facts:
    facts = {
        "kind": "appointment",
        "c": rng.choice(companies),
        "p": rng.choice(people),
        "r": rng.choice(_ROLES),
    }
    return {**facts, **fixed}


def _changed_fact(rng: random.Random, facts: Facts) -> Facts:
    """All facts but one kept; the one changed to a different value."""
    key = rng.choice([k for k in facts if k not in ("kind", "m")])
    choices = {
        "c": _COMPANIES + _COMPANIES_EVAL,
        "p": _PEOPLE + _PEOPLE_EVAL,
        "r": _ROLES,
        "q": _QUARTERS,
        "up": ["up", "down"],
        "n": [str(n) for n in range(2, 41)],
    }[key]
    pool = [value for value in choices if value != facts[key]]
    if key in ("c", "p"):  # stay inside the split's own names
        same_split = [
            v for v in pool if (v in _COMPANIES + _PEOPLE) == (facts[key] in _COMPANIES + _PEOPLE)
        ]
        pool = same_split or pool
    return {**facts, key: rng.choice(pool)}


def _say(rng: random.Random, facts: Facts, held_out: bool, avoid: str = "") -> str:
    for _ in range(8):  # a paraphrase is worded differently from its partner where possible
        if facts["kind"] == "results":
            template = _pick(rng, _RESULTS, _RESULTS_EVAL, held_out)
            direction = rng.choice(_UP if facts["up"] == "up" else _DOWN)
            sentence = template.format(
                c=facts["c"],
                m=facts["m"],
                M=facts["m"].capitalize(),
                d=direction,
                n=facts["n"],
                q=facts["q"],
            )
        else:
            template = _pick(rng, _APPOINTMENTS, _APPOINTMENTS_EVAL, held_out)
            sentence = template.format(c=facts["c"], p=facts["p"], r=facts["r"])
        if sentence != avoid:
            return sentence
    return sentence
