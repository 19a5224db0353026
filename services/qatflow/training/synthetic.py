"""The embedded question-answering data set, generated deterministically from a seed.

Contexts are fact sheets about fictional people: several facts about the subject mixed with
the same kinds of facts about other people (distractors), so a model must bind each fact to
its subject. A fifth of the contexts is padded with filler sentences past one window. The
evaluation split uses first names and surnames training never sees, and words half of its
facts and questions in phrasings training never sees, so it measures generalisation instead
of saturating at 100 EM.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from qatflow.training.data import QAExample

_FIRST = [
    "Alma",
    "Bruno",
    "Carla",
    "Dario",
    "Elena",
    "Felix",
    "Greta",
    "Hugo",
    "Ines",
    "Jonas",
    "Klara",
    "Lukas",
    "Mira",
    "Nils",
    "Olga",
    "Pavel",
    "Rosa",
    "Sven",
    "Tilda",
    "Urs",
    "Vera",
    "Wim",
    "Yara",
    "Zeno",
    "Anika",
    "Boris",
    "Cosima",
    "Dmitri",
    "Edda",
    "Fabian",
    "Gisela",
    "Henrik",
    "Ilse",
    "Jakob",
    "Kaja",
    "Lorenz",
    "Maren",
    "Niko",
    "Ottilie",
    "Piet",
]
_FIRST_EVAL = [
    "Quirin",
    "Rahel",
    "Silas",
    "Thea",
    "Ulla",
    "Viktor",
    "Wanda",
    "Xaver",
    "Ylva",
    "Zita",
    "Aurel",
    "Bettina",
]
_LAST = [
    "Abendroth",
    "Bergmann",
    "Castell",
    "Dornbusch",
    "Eichler",
    "Falkenrath",
    "Grunwald",
    "Hollander",
    "Ibsen",
    "Jaspers",
    "Kessler",
    "Lindqvist",
    "Morgenstern",
    "Nordahl",
    "Osterfeld",
    "Pfeiffer",
    "Quandt",
    "Rosenthal",
    "Sandberg",
    "Tessler",
    "Ulbrich",
    "Vossberg",
    "Winterfeld",
    "Zellner",
    "Achterberg",
    "Brandstetter",
    "Corvinus",
    "Dahlberg",
]
_LAST_EVAL = [
    "Eckhart",
    "Fromberg",
    "Gellert",
    "Hagedorn",
    "Ingwersen",
    "Jellinek",
    "Kornblum",
    "Lessing",
]

_CITIES = [
    "Tarnow",
    "Velmora",
    "Ostrava",
    "Kelburn",
    "Marisol",
    "Dunhaven",
    "Arlesford",
    "Brenzio",
    "Caldera",
    "Eskerby",
    "Fenwick",
    "Galdera",
    "Hollin",
    "Istrana",
    "Jorvik",
    "Kestrel",
    "Lunaria",
    "Montfort",
    "Norwick",
    "Orlanda",
    "Pellham",
    "Quarrin",
    "Rostow",
    "Selvaro",
    "Tamsin",
    "Umbria",
    "Valtorre",
    "Wexley",
    "Yarrow",
    "Zandvoort",
]
_JOBS = [
    "architect",
    "botanist",
    "cartographer",
    "dentist",
    "engineer",
    "florist",
    "geologist",
    "historian",
    "illustrator",
    "journalist",
    "luthier",
    "mathematician",
    "navigator",
    "oceanographer",
    "pharmacist",
    "radiologist",
    "sculptor",
    "translator",
    "veterinarian",
    "watchmaker",
    "glassblower",
    "beekeeper",
    "astronomer",
    "chemist",
]
_ORGS = [
    "Arcturus Labs",
    "Blue Heron Press",
    "Cobalt Freight",
    "Delta Orchard",
    "Ember Works",
    "Fjord Analytics",
    "Granite Mutual",
    "Harbor Lights",
    "Iris Optics",
    "Juniper Rail",
    "Kite Aerospace",
    "Lumen Textiles",
    "Meridian Bank",
    "Nimbus Foods",
    "Oakridge Clinic",
    "Pioneer Mills",
    "Quartz Studio",
    "Riverbend Hotel",
]
_INSTRUMENTS = [
    "cello",
    "oboe",
    "harp",
    "trumpet",
    "viola",
    "clarinet",
    "banjo",
    "accordion",
    "flute",
    "bassoon",
    "marimba",
    "zither",
]
_COLORS = [
    "amber",
    "crimson",
    "teal",
    "violet",
    "ochre",
    "indigo",
    "scarlet",
    "olive",
    "silver",
    "turquoise",
]
_FILLER = [
    "The region is known for its long winters and short, bright summers.",
    "Local markets open early on weekends and close by midday.",
    "A narrow railway connects the valley towns with the coast.",
    "Several old bridges cross the river near the historic centre.",
    "The annual harvest festival draws visitors from neighbouring provinces.",
    "Most houses in the old quarter were built from grey limestone.",
    "The public library keeps a large collection of maritime charts.",
    "Fog often covers the harbour during the autumn months.",
    "A botanical garden was opened beside the university in recent decades.",
    "The local dialect borrows many words from seafaring trades.",
]


@dataclass(frozen=True)
class _Relation:
    name: str
    values: list[str] | None
    facts_train: tuple[str, ...]
    facts_eval: tuple[str, ...]
    questions_train: tuple[str, ...]
    questions_eval: tuple[str, ...]


_RELATIONS = [
    _Relation(
        "birthplace",
        _CITIES,
        (
            "{s} was born in {o}.",
            "{s} grew up in the town of {o}.",
            "The birthplace of {s} is {o}.",
        ),
        ("{o} is the hometown of {s}.", "{s} spent a childhood in {o}."),
        ("Where was {s} born?", "What is the birthplace of {s}?", "In which town did {s} grow up?"),
        ("Which place is the hometown of {s}?", "Where did {s} spend a childhood?"),
    ),
    _Relation(
        "birth_year",
        None,
        ("{s} was born in the year {o}.", "{s} came into the world in {o}."),
        ("The year {o} saw the birth of {s}.",),
        ("In what year was {s} born?", "When was {s} born?"),
        ("What is the birth year of {s}?",),
    ),
    _Relation(
        "profession",
        _JOBS,
        ("{s} works as a {o}.", "By profession, {s} is a {o}."),
        ("{s} earns a living as a {o}.",),
        ("What does {s} do for a living?", "What is the profession of {s}?"),
        ("What is the occupation of {s}?",),
    ),
    _Relation(
        "employer",
        _ORGS,
        ("{s} is employed by {o}.", "{s} has a job at {o}."),
        ("{o} hired {s} some years ago.",),
        ("Which company employs {s}?", "Where does {s} work?"),
        ("Who is the employer of {s}?",),
    ),
    _Relation(
        "instrument",
        _INSTRUMENTS,
        ("{s} plays the {o}.", "In the evenings, {s} practises the {o}."),
        ("The favourite instrument of {s} is the {o}.",),
        ("Which instrument does {s} play?", "What instrument does {s} practise?"),
        ("What is the favourite instrument of {s}?",),
    ),
    _Relation(
        "color",
        _COLORS,
        ("The favourite colour of {s} is {o}.", "{s} likes the colour {o} best."),
        ("{s} always chooses {o} over any other colour.",),
        ("What is the favourite colour of {s}?", "Which colour does {s} like best?"),
        ("Which colour does {s} always choose?",),
    ),
]


# Share of evaluation facts and questions worded in phrasings training never saw.
_HELD_OUT_PHRASING = 0.5


def generate(split: str, count: int, seed: int) -> list[QAExample]:
    """``count`` examples of the ``train`` or ``validation`` split; same seed, same data."""
    held_out = split != "train"
    rng = random.Random(f"{seed}-{split}")
    firsts, lasts = (_FIRST_EVAL, _LAST_EVAL) if held_out else (_FIRST, _LAST)
    return [_example(rng, f"{split}-{index}", firsts, lasts, held_out) for index in range(count)]


def _phrasing(
    rng: random.Random, seen: tuple[str, ...], unseen: tuple[str, ...], held_out: bool
) -> str:
    return rng.choice(unseen if held_out and rng.random() < _HELD_OUT_PHRASING else seen)


def _example(
    rng: random.Random, uid: str, firsts: list[str], lasts: list[str], held_out: bool
) -> QAExample:
    people = [f"{f} {s}" for f, s in zip(rng.sample(firsts, 3), rng.sample(lasts, 3), strict=True)]
    subject = people[0]
    asked = rng.choice(_RELATIONS)
    sentences: list[tuple[str, str | None]] = []  # (sentence, answer if it is the asked fact)
    for person in people:
        for relation in rng.sample(_RELATIONS, rng.randint(2, 3)):
            if person == subject and relation is asked:
                continue
            sentences.append((_fact(rng, relation, person, held_out), None))
    answer = _value(rng, asked)
    phrasing = _phrasing(rng, asked.facts_train, asked.facts_eval, held_out)
    sentences.append((phrasing.format(s=subject, o=answer), answer))
    rng.shuffle(sentences)
    if rng.random() < 0.2:  # long context: filler pushes facts into a later window
        filler: list[tuple[str, str | None]] = [
            (rng.choice(_FILLER), None) for _ in range(rng.randint(16, 26))
        ]
        cut = rng.randint(0, len(filler))
        sentences = filler[:cut] + sentences + filler[cut:]
    context, answer_start = "", -1
    for sentence, expected in sentences:
        context += (" " if context else "") + sentence
        if expected is not None:
            answer_start = len(context) - len(sentence) + sentence.index(expected)
    question = _phrasing(rng, asked.questions_train, asked.questions_eval, held_out)
    return QAExample(
        id=uid,
        question=question.format(s=subject),
        context=context,
        answers=[answer],
        answer_starts=[answer_start],
    )


def _fact(rng: random.Random, relation: _Relation, person: str, held_out: bool) -> str:
    phrasing = _phrasing(rng, relation.facts_train, relation.facts_eval, held_out)
    return phrasing.format(s=person, o=_value(rng, relation))


def _value(rng: random.Random, relation: _Relation) -> str:
    return rng.choice(relation.values) if relation.values else str(rng.randint(1921, 2004))
