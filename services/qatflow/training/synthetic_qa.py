"""The embedded question-answering data set, generated deterministically from a seed.

Each example is a short paragraph about two to four entities of one domain (people, towns,
companies, products, events, buildings), each with a few facts of the same kinds, and one
question about one fact of one entity. The other entities' facts are distractors of the same
type (another person's birth year, another town's population), so the model must bind the
fact to its subject and to the relation the question asks for, not spot the only year or the
only number. Answers run from one token (a year) to short phrases (a date, a measurement with
its unit, an organisation, a book title). Names are generated from syllables, tens of
thousands of them, so the model learns to copy spans instead of memorising entities.

The validation split holds out what a model could memorise: names whose hash falls in the
held-out fifth (training never sees them), half of its facts and questions worded in
phrasings training never sees, a third of its paragraphs in a layout training never sees
(pairs of facts joined in one sentence), and a fifth of its contexts padded past one window
of 192 tokens, so the answer must be found across stride windows. The training split has
long contexts too, less often. See docs/training.md for the design.
"""

from __future__ import annotations

import functools
import random
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from qatflow.training.examples import QAExample

# Share of validation facts and questions worded in held-out phrasings; share of validation
# paragraphs in the held-out layout; share of contexts padded to several windows.
_HELD_OUT_PHRASING = 0.5
_HELD_OUT_LAYOUT = 1 / 3
_LONG_CONTEXT = {"train": 0.06, "validation": 0.2}
# Markers around the asked value while a context is assembled; removed before it is returned.
_OPEN, _CLOSE = "\x02", "\x03"
# "in 4 May 1990" / "in May 4, 1990" -> "on ...": templates say "in" for years and months.
_ON_DAY = re.compile(r"\bin (\x02?(?:\d{1,2} [A-Z][a-z]+ \d{4}|[A-Z][a-z]+ \d{1,2}, \d{4}))")


def _words(text: str) -> list[str]:
    """Long word lists, written as text: a list literal would take one line per word."""
    return text.split()


def _phrases(text: str) -> list[str]:
    return text.split(",")


# Names: real given names and surnames beside generated ones, so that both single-token names
# and names the tokenizer splits into pieces occur. A name belongs to the held-out split when
# its hash falls in the held-out fifth; training never sees those.
_GIVEN = _words(
    "Adam Agnes Alan Alice Amir Ana Andrew Ava Ben Bianca Carl Carmen Chen Chloe Claire Cora "
    "David Diego Dora Edith Elena Eli Emil Emma Ethan Eva Farah Felix Fiona Frank Grace Hana "
    "Hans Hugo Ian Ida Irene Isaac Ivan Jack James Jana Jonas Julia June Karl Kate Kenji Laura "
    "Leah Leo Lina Lucas Lucy Luis Maya Mei Miguel Mila Nadia Nina Noah Nora Olga Omar Oscar "
    "Pablo Pedro Peter Priya Rafael Rita Robert Rosa Ruth Sam Sara Simon Sonia Stefan Tara "
    "Theo Tom Uma Victor Vera Walter Yara Yusuf Zoe"
)
_FAMILY = _words(
    "Abbott Adler Alvarez Baker Barros Becker Bishop Brennan Brooks Carter Castro Chung Clarke "
    "Costa Dalton Dixon Duarte Ellis Engel Evans Fischer Fleming Ford Foster Garcia Gordon "
    "Graham Grant Hale Hansen Harper Hayes Holm Hughes Ito Jensen Kapoor Keller Kim Klein "
    "Kowalski Larsen Lee Lopez Mason Meyer Moreno Murphy Nakamura Navarro Nielsen Novak Olsen "
    "Ortiz Osei Park Patel Perez Porter Quinn Ramos Reed Richter Rossi Russo Santos Schmidt "
    "Shaw Silva Suzuki Tanaka Torres Tran Turner Vargas Wagner Walsh Weber Wolff Young Zimmer"
)
_ONSETS = _words("b br c ch d dr f g gr h j k kr l m n p pr r s sh st t tr v w z")
_VOWELS = _words("a e i o u a e o ai ei ou ia")
_CODAS = ["", "", "", "n", "r", "l", "s", "m", "rk", "nd", "st", "th"]
_GIVEN_ENDINGS = ["", "a", "o", "en", "el", "is", "ia", "an", "ette"]
_FAMILY_ENDINGS = ["", "son", "berg", "ova", "ez", "mann", "ski", "ani", "ford", "ley", "ek"]
_PLACE_ENDINGS = _words("ton ford vik burg dale mouth stad heim ville ia ora by wick field haven")
_PLACE_ENDINGS += _words("port stein grad mar ley holm ena ano")
_PLACE_FORMS = ["{}", "{}", "{}", "{}", "Port {}", "San {}", "New {}", "Upper {}", "Lake {}"]
_ORG_WORDS = _words(
    "Arcturus Beacon Birch Cobalt Cedar Crescent Delta Ember Falcon Fjord Granite Harbor Iris "
    "Juniper Kite Lumen Maple Meridian Nimbus Oakridge Orbit Pioneer Quartz Riverbend Sable "
    "Summit Tidewater Vertex Willow Zenith Northstar Redwood Silverline Bluewater"
)
_ORG_TYPES = _phrases(
    "Labs,Works,Systems,Foods,Motors,Press,Bank,Airlines,Textiles,Mobility,Analytics,Energy,"
    "Pharma,Logistics,Studios,Robotics,Brewery,Shipping,Insurance,Group,Materials,Software,"
    "Instruments,Furniture,Records,Optics,Health,Farms"
)
_MODELS = _words("X2 X7 Pro One Air Mini Max S4 S400 Go 3 Lite 12 Plus Neo 500 Classic Ultra")
_BOOK_ADJECTIVES = _words(
    "Silent Last Hidden Burning Quiet Golden Broken Distant Northern Winter Paper Glass Long "
    "Empty Secret Lost Forgotten Narrow Bright Salt"
)
_BOOK_NOUNS = _words(
    "Harbour Garden River Letters Orchard Lighthouse Road Mirror Kingdom Season Shore Map "
    "Bridge Archive Island Clockmaker Valley Tide Station Window"
)
_JOBS = _phrases(
    "architect,botanist,cartographer,dentist,civil engineer,florist,geologist,historian,"
    "illustrator,journalist,violin maker,mathematician,ship's navigator,oceanographer,"
    "pharmacist,radiologist,sculptor,translator,veterinarian,watchmaker,glassblower,"
    "beekeeper,astronomer,chemist,carpenter,nurse,pilot,software developer,school teacher,"
    "lawyer,photographer,baker,economist,firefighter,librarian,marine biologist,surgeon,tailor"
)
_INSTRUMENTS = _words("cello oboe harp trumpet viola clarinet banjo accordion flute bassoon")
_INSTRUMENTS += _words("piano guitar drums saxophone trombone")
_PRODUCT_KINDS = _phrases(
    "electric scooter,cordless drill,laptop,coffee machine,e-reader,camera drone,robot vacuum,"
    "smartwatch,camping tent,digital camera,mobile phone,electric bicycle,hearing aid,"
    "air purifier,sewing machine,solar lantern,kitchen mixer,music keyboard,fitness tracker,"
    "water filter,snow blower,baby monitor,label printer,rice cooker"
)
_GOODS = _phrases(
    "electric bicycles,frozen pizza,hiking boots,wind turbines,office chairs,medical scanners,"
    "children's books,garden tools,solar panels,paint,ice cream,railway signals,"
    "accounting software,bicycle helmets,fishing nets,glass bottles,wooden toys,"
    "hearing aids,tea,kitchen knives,ferry tickets,insurance policies"
)
_KNOWN_FOR = _phrases(
    "its glass factories,a medieval castle,its wine,an annual horse fair,its thermal baths,"
    "a large fishing port,its university,a cathedral with two towers,its lace,"
    "a car factory,its botanical garden,a narrow-gauge railway,its cheese,a jazz festival,"
    "its salt mines,an old lighthouse"
)
_SUBJECTS = _phrases(
    "chemistry,law,history,medicine,economics,physics,music,architecture,biology,mathematics,"
    "philosophy,engineering,geography,linguistics"
)
_FIELDS = _phrases("Chemistry,Poetry,Architecture,Medicine,Physics,Music,Journalism,Design")
_EVENT_KINDS = _phrases(
    "Jazz Festival,Marathon,Book Fair,Film Festival,Chess Open,Food Fair,Regatta,"
    "Science Week,Folk Festival,Cycling Race,Art Biennale,Choir Contest"
)
_BUILDING_KINDS = _phrases(
    "Tower,Library,Museum,Town Hall,Concert Hall,Central Station,Stadium,Observatory,Hospital,"
    "Bridge"
)
_MONTHS = _words(
    "January February March April May June July August September October November December"
)
_SMALL_NUMBERS = _words("two three four five six seven eight nine ten eleven twelve")

# Sentences that mention no entity: the padding of long contexts and some noise elsewhere.
FILLER = [
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
    "Newspapers in the area reported on the story for several weeks.",
    "Critics have praised the work, although sales were modest at first.",
    "The figures were published in an annual report.",
    "Many of the early records were lost in a fire.",
    "Visitors often arrive by ferry during the summer season.",
    "The surrounding countryside is mostly farmland and forest.",
    "Little is known about the early years.",
    "The story is still told in local schools.",
]


def _held_out(name: str) -> bool:
    return zlib.crc32(name.encode()) % 5 == 0


@dataclass(frozen=True)
class _Names:
    """Name sources of one split: only names whose held-out hash matches the split."""

    held_out: bool

    def _accept(self, name: str) -> bool:
        return _held_out(name) == self.held_out

    def _draw(self, rng: random.Random, make: Callable[[random.Random], str]) -> str:
        while True:
            name = make(rng)
            if self._accept(name):
                return name

    def given(self, rng: random.Random) -> str:
        return self._draw(
            rng,
            lambda r: r.choice(_GIVEN) if r.random() < 0.5 else _word(r, _GIVEN_ENDINGS, 2),
        )

    def family(self, rng: random.Random) -> str:
        return self._draw(
            rng,
            lambda r: r.choice(_FAMILY) if r.random() < 0.4 else _word(r, _FAMILY_ENDINGS, 2),
        )

    def person(self, rng: random.Random) -> str:
        return f"{self.given(rng)} {self.family(rng)}"

    def place(self, rng: random.Random) -> str:
        return self._draw(rng, lambda r: r.choice(_PLACE_FORMS).format(_word(r, _PLACE_ENDINGS, 1)))

    def brand(self, rng: random.Random) -> str:
        return self._draw(rng, lambda r: _word(r, ["a", "o", "ex", "is", "on", "i"], 1))

    def organisation(self, rng: random.Random) -> str:
        def make(r: random.Random) -> str:
            first = r.choice([r.choice(_ORG_WORDS), self.family(r), self.brand(r)])
            return f"{first} {r.choice(_ORG_TYPES)}"

        return self._draw(rng, make)


def _word(rng: random.Random, endings: list[str], syllables: int) -> str:
    parts = [rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(syllables)]
    return ("".join(parts) + rng.choice(_CODAS) + rng.choice(endings)).capitalize()


# Answer values: each takes the random source and the split's names.
Value = Callable[[random.Random, _Names], str]


def _year(first: int, last: int) -> Value:
    return lambda rng, names: str(rng.randint(first, last))


def _date(first: int, last: int) -> Value:
    def make(rng: random.Random, names: _Names) -> str:
        year, month = rng.randint(first, last), rng.choice(_MONTHS)
        form = rng.random()
        if form < 0.4:
            return str(year)
        if form < 0.65:
            return f"{month} {year}"
        if form < 0.85:
            return f"{rng.randint(1, 28)} {month} {year}"
        return f"{month} {rng.randint(1, 28)}, {year}"

    return make


def _count(first: int, last: int, words: bool = False) -> Value:
    def make(rng: random.Random, names: _Names) -> str:
        if words and rng.random() < 0.5:
            return rng.choice(_SMALL_NUMBERS)
        value = rng.randint(first, last)
        if value >= 10_000 and rng.random() < 0.5:  # round figures, as people write them
            value = round(value, -3)
        return f"{value:,}"

    return make


def _amount(unit: str, first: float, last: float, decimals: int = 0) -> Value:
    def make(rng: random.Random, names: _Names) -> str:
        return f"{rng.uniform(first, last):,.{decimals}f} {unit}"

    return make


def _duration(*units: tuple[str, int, int]) -> Value:
    """ "three years", "18 months": small numbers in words half of the time."""

    def make(rng: random.Random, names: _Names) -> str:
        unit, first, last = rng.choice(units)
        value = rng.randint(first, last)
        if value <= 12 and rng.random() < 0.5:
            return f"{_SMALL_NUMBERS[value - 2] if value >= 2 else 'one'} {unit}"
        return f"{value} {unit}"

    return make


def _money(first: float, last: float, millions: bool) -> Value:
    def make(rng: random.Random, names: _Names) -> str:
        currency = rng.choice(["euros", "dollars", "pounds", "francs", "crowns"])
        if millions:
            return f"{rng.uniform(first, last):.1f} million {currency}"
        return f"{rng.randint(int(first), int(last)):,} {currency}"

    return make


def _one_of(values: list[str]) -> Value:
    return lambda rng, names: rng.choice(values)


def _person(rng: random.Random, names: _Names) -> str:
    return names.person(rng)


def _place(rng: random.Random, names: _Names) -> str:
    return names.place(rng)


def _organisation(rng: random.Random, names: _Names) -> str:
    return names.organisation(rng)


def _book(rng: random.Random, names: _Names) -> str:
    title = f"The {rng.choice(_BOOK_ADJECTIVES)} {rng.choice(_BOOK_NOUNS)}"
    return title if rng.random() < 0.7 else f"{title} of {names.place(rng)}"


def _university(rng: random.Random, names: _Names) -> str:
    forms = ["the University of {}", "{} Technical College", "the {} Academy of Arts"]
    return rng.choice(forms).format(names.place(rng))


def _prize(rng: random.Random, names: _Names) -> str:
    return f"the {names.place(rng)} Prize for {rng.choice(_FIELDS)}"


def _region(rng: random.Random, names: _Names) -> str:
    return rng.choice(["the province of {}", "{} County", "the {} valley"]).format(names.place(rng))


def _river(rng: random.Random, names: _Names) -> str:
    return rng.choice(["the {}", "the River {}"]).format(names.place(rng).split()[-1])


@dataclass(frozen=True)
class _Relation:
    """A kind of fact: its answer values, how a context states it, how a question asks it.

    ``{s}`` is the subject, ``{o}`` the answer. Phrasings after ``|`` in each string are held
    out: only the validation split uses them.
    """

    value: Value
    facts: str
    questions: str

    def phrasing(self, which: str, held_out: bool, rng: random.Random) -> str:
        seen, unseen = self._split[which]
        pool = unseen if held_out and unseen and rng.random() < _HELD_OUT_PHRASING else seen
        return rng.choice(pool)

    @functools.cached_property
    def _split(self) -> dict[str, tuple[list[str], list[str]]]:
        """Training and held-out phrasings of facts and questions."""
        split = {}
        for which, text in (("fact", self.facts), ("question", self.questions)):
            seen, _, unseen = text.partition("|")
            split[which] = tuple(
                [p.strip() for p in part.split(";") if p.strip()] for part in (seen, unseen)
            )
        return split  # type: ignore[return-value]


@dataclass(frozen=True)
class _Domain:
    name: Callable[[random.Random, _Names], str]
    references: tuple[str, ...]  # what later sentences call the subject ("She", "The town")
    introductions: tuple[str, ...]
    relations: tuple[_Relation, ...]


def _event_name(rng: random.Random, names: _Names) -> str:
    return f"the {names.place(rng)} {rng.choice(_EVENT_KINDS)}"


def _building_name(rng: random.Random, names: _Names) -> str:
    kind = rng.choice(_BUILDING_KINDS)
    if rng.random() < 0.5:
        return f"the {names.family(rng)} {kind}"
    return f"the {names.place(rng)} {kind}"


def _product_name(rng: random.Random, names: _Names) -> str:
    return f"the {names.brand(rng)} {rng.choice(_MODELS)}"


_PERSON = _Domain(
    _person,
    ("She", "He", "{last}"),
    (
        "{s} is well known in the region.",
        "Few people outside the field had heard of {s} before last year.",
    ),
    (
        _Relation(
            _place,
            "{s} was born in {o}.; {s} grew up in the town of {o}.; The birthplace of {s} is {o}."
            " | {o} is the hometown of {s}.; {s} spent a childhood in {o}.",
            "Where was {s} born?; What is the birthplace of {s}?; In which town did {s} grow up?"
            " | Which place is the hometown of {s}?; Where did {s} spend a childhood?",
        ),
        _Relation(
            _date(1921, 2004),
            "{s} was born in {o}.; {s} came into the world in {o}.; {s}, born in {o}, still"
            " lives nearby. | The birth of {s} took place in {o}.",
            "When was {s} born?; In what year was {s} born?; What is the birth date of {s}?"
            " | When is the birthday of {s}?",
        ),
        _Relation(
            _one_of(_JOBS),
            "{s} works as a {o}.; By profession, {s} is a {o}.; {s} trained as a {o}."
            " | {s} earns a living as a {o}.",
            "What does {s} do for a living?; What is the profession of {s}?; What is {s}'s job?"
            " | What is the occupation of {s}?; What job does {s} have?",
        ),
        _Relation(
            _organisation,
            "{s} is employed by {o}.; {s} has a job at {o}.; {s} joined {o} after leaving"
            " school. | {o} hired {s} some years ago.",
            "Which company employs {s}?; Where does {s} work?; Who does {s} work for?"
            " | Who is the employer of {s}?",
        ),
        _Relation(
            _university,
            "{s} studied at {o}.; {s} graduated from {o}. | {s} took a degree at {o}.",
            "Where did {s} study?; Which university did {s} attend? | Where did {s} take a degree?",
        ),
        _Relation(
            _one_of(_SUBJECTS),
            "{s} studied {o} at university.; {s} has a degree in {o}. | {s} read {o} at college.",
            "What did {s} study?; What subject did {s} study?; In what subject does {s} hold a"
            " degree? | What is the degree of {s} in?",
        ),
        _Relation(
            _person,
            "{s} is married to {o}.; {s} married {o}.; {s} lives with {o}, a former"
            " colleague. | The spouse of {s} is {o}.",
            "Who is {s} married to?; Who did {s} marry?; Who is the spouse of {s}?"
            " | Who is the husband or wife of {s}?",
        ),
        _Relation(
            _count(2, 6, words=True),
            "{s} has {o} children.; {s} is the parent of {o} children. | {s} raised {o} children.",
            "How many children does {s} have?; How many children has {s} got?"
            " | How many children did {s} raise?",
        ),
        _Relation(
            _amount("metres", 1.52, 1.98, 2),
            "{s} is {o} tall.; At {o}, {s} is taller than most colleagues."
            " | {s} measures {o} in height.",
            "How tall is {s}?; What is the height of {s}? | What height is {s}?",
        ),
        _Relation(
            _count(19, 92),
            "{s} is {o} years old.; {s}, aged {o}, still works every day. | {s} turned {o}"
            " this year.",
            "How old is {s}?; What age is {s}? | What is the age of {s}?",
        ),
        _Relation(
            _book,
            "{s} wrote {o}.; {s} is the author of {o}.; {s} published a novel called {o}."
            " | The novel {o} was written by {s}.",
            "What did {s} write?; Which book did {s} write?; What is the title of the novel"
            " by {s}? | Which novel is {s} the author of?",
        ),
        _Relation(
            _prize,
            "{s} won {o}.; {s} received {o}. | {s} was awarded {o}.",
            "Which prize did {s} win?; What award did {s} receive? | Which award was {s} given?",
        ),
        _Relation(
            _one_of(_INSTRUMENTS),
            "{s} plays the {o}.; In the evenings, {s} practises the {o}."
            " | The favourite instrument of {s} is the {o}.",
            "Which instrument does {s} play?; What instrument does {s} practise?"
            " | What is the favourite instrument of {s}?",
        ),
    ),
)

_TOWN = _Domain(
    _place,
    ("The town", "It", "The city"),
    ("{s} lies in a broad valley.", "{s} is a quiet place for most of the year."),
    (
        _Relation(
            _count(800, 2_400_000),
            "{s} has a population of {o}.; {s} is home to {o} people.; About {o} people live"
            " in {s}. | The number of inhabitants of {s} is {o}.",
            "What is the population of {s}?; How many people live in {s}?; How many"
            " inhabitants does {s} have? | How big is the population of {s}?",
        ),
        _Relation(
            _year(900, 1950),
            "{s} was founded in {o}.; The first settlers arrived in {s} in {o}."
            " | {s} dates back to {o}.",
            "When was {s} founded?; In what year was {s} founded?"
            " | In which year did {s} come into being?",
        ),
        _Relation(
            _river,
            "{s} lies on {o}.; {o} flows through {s}.; {o} runs through the middle of {s}."
            " | {s} was built on the banks of {o}.",
            "Which river flows through {s}?; On which river does {s} lie?"
            " | What river is {s} built on?",
        ),
        _Relation(
            _region,
            "{s} is a town in {o}.; {s} lies in {o}. | {s} belongs to {o}.",
            "Where is {s}?; In which region is {s}?; Where is {s} located?"
            " | In what area does {s} lie?",
        ),
        _Relation(
            _person,
            "The mayor of {s} is {o}.; {o} is the mayor of {s}.; {s} is governed by its"
            " mayor, {o}. | {o} was elected mayor of {s}.",
            "Who is the mayor of {s}?; Who governs {s}?; Who leads {s} as mayor?"
            " | Who was elected mayor of {s}?",
        ),
        _Relation(
            _amount("square kilometres", 4, 900),
            "{s} covers {o}.; The area of {s} is {o}. | {s} extends over {o}.",
            "How large is {s}?; What is the area of {s}?; How big is {s}?"
            " | How much land does {s} cover?",
        ),
        _Relation(
            _amount("metres", 2, 2400),
            "{s} lies {o} above sea level.; {s} sits at an altitude of {o}."
            " | The elevation of {s} is {o}.",
            "How high is {s}?; At what altitude does {s} lie? | What is the elevation of {s}?",
        ),
        _Relation(
            _amount("kilometres", 2, 300),
            "{s} lies {o} from the coast.; {s} is {o} away from the coast.; The coast is {o} from"
            " {s}. | It is {o} from {s} to the coast.",
            "How far is {s} from the coast?; How far from the coast is {s}?; What is the distance"
            " from {s} to the coast? | How far does {s} lie from the coast?",
        ),
        _Relation(
            _one_of(_KNOWN_FOR),
            "{s} is known for {o}.; {s} is famous for {o}. | Visitors come to {s} for {o}.",
            "What is {s} known for?; What is {s} famous for? | Why do visitors come to {s}?",
        ),
    ),
)

_COMPANY = _Domain(
    _organisation,
    ("The company", "It", "The firm"),
    ("{s} is a private company.", "{s} has grown quickly in recent years."),
    (
        _Relation(
            _person,
            "{s} was founded by {o}.; {o} founded {s}.; {o} set up {s} with a small loan."
            " | {s} was started by {o}.",
            "Who founded {s}?; Who set up {s}?; Who is the founder of {s}? | Who started {s}?",
        ),
        _Relation(
            _year(1850, 2022),
            "{s} was founded in {o}.; {s} was established in {o}.; {s} opened its doors"
            " in {o}. | {s} has been in business since {o}.",
            "When was {s} founded?; In what year was {s} established?; When did {s} open?"
            " | Since when has {s} been in business?",
        ),
        _Relation(
            _place,
            "{s} is based in {o}.; The headquarters of {s} are in {o}.; {s} has its head"
            " office in {o}. | {s} runs its business from {o}.",
            "Where is {s} based?; Where are the headquarters of {s}?; Where is the head office"
            " of {s}? | From which town does {s} run its business?",
        ),
        _Relation(
            _count(12, 90_000),
            "{s} employs {o} people.; {s} has {o} employees.; About {o} people work for {s}."
            " | The workforce of {s} numbers {o}.",
            "How many people does {s} employ?; How many employees does {s} have?; How many"
            " people work for {s}? | How large is the workforce of {s}?",
        ),
        _Relation(
            _person,
            "{s} is run by {o}.; The chief executive of {s} is {o}.; {o} leads {s}."
            " | {o} is in charge of {s}.",
            "Who runs {s}?; Who is the chief executive of {s}?; Who leads {s}?"
            " | Who is in charge of {s}?",
        ),
        _Relation(
            _one_of(_GOODS),
            "{s} makes {o}.; {s} produces {o}.; {s} sells {o}. | The main business of {s} is {o}.",
            "What does {s} make?; What does {s} produce?; What does {s} sell?"
            " | What is the main business of {s}?",
        ),
        _Relation(
            _money(1, 950, millions=True),
            "{s} reported revenue of {o} last year.; Last year {s} earned {o}."
            " | The turnover of {s} reached {o}.",
            "How much revenue did {s} report?; How much did {s} earn last year?"
            " | What was the turnover of {s}?",
        ),
    ),
)

_PRODUCT = _Domain(
    _product_name,
    ("It", "The device"),
    ("{s} comes in three colours.", "{s} received mixed reviews at first."),
    (
        _Relation(
            _organisation,
            "{s} is made by {o}.; {o} makes {s}.; {s} is produced by {o}."
            " | {o} builds {s} in its own factory.",
            "Who makes {s}?; Which company makes {s}?; Who produces {s}? | Which firm builds {s}?",
        ),
        _Relation(
            _money(9, 2400, millions=False),
            "{s} costs {o}.; {s} sells for {o}.; The price of {s} is {o}."
            " | {s} is on sale for {o}.",
            "How much does {s} cost?; What is the price of {s}?; What does {s} sell for?"
            " | How much is {s}?",
        ),
        _Relation(
            _amount("kilograms", 0.2, 40, 1),
            "{s} weighs {o}.; {s} has a weight of {o}. | {s} tips the scales at {o}.",
            "How much does {s} weigh?; How heavy is {s}?; What is the weight of {s}?"
            " | What does {s} weigh?",
        ),
        _Relation(
            _date(1990, 2024),
            "{s} was released in {o}.; {s} went on sale in {o}.; {s} came out in {o}."
            " | {s} reached the shops in {o}.",
            "When was {s} released?; When did {s} go on sale?; When did {s} come out?"
            " | When did {s} reach the shops?",
        ),
        _Relation(
            _amount("hours", 2, 60),
            "The battery of {s} lasts {o}.; {s} runs for {o} on one charge."
            " | {s} keeps going for {o} between charges.",
            "How long does the battery of {s} last?; How long does {s} run on one charge?"
            " | How long can {s} run between charges?",
        ),
        _Relation(
            _one_of(_PRODUCT_KINDS),
            "{s} is a {o}.; {s} is a small {o}. | {s}, a {o}, was designed for beginners.",
            "What is {s}?; What kind of device is {s}?; What type of product is {s}?"
            " | What sort of thing is {s}?",
        ),
        _Relation(
            _person,
            "{s} was designed by {o}.; {o} designed {s}. | The designer of {s} is {o}.",
            "Who designed {s}?; Who is the designer of {s}? | Whose design is {s}?",
        ),
    ),
)

_EVENT = _Domain(
    _event_name,
    ("It", "The event"),
    ("{s} is held every year.", "{s} began as a small local gathering."),
    (
        _Relation(
            _date(1950, 2024),
            "{s} took place in {o}.; {s} was held in {o}.; {s} opened in {o}."
            " | {s} happened in {o}.",
            "When did {s} take place?; When was {s} held?; When did {s} open?"
            " | When did {s} happen?",
        ),
        _Relation(
            _place,
            "{s} took place in {o}.; {s} was held in the town of {o}.; {o} hosted {s}."
            " | {s} was staged in {o}.",
            "Where did {s} take place?; Where was {s} held?; Which town hosted {s}?"
            " | Where was {s} staged?",
        ),
        _Relation(
            _count(150, 400_000),
            "{s} drew {o} visitors.; {o} people attended {s}.; {s} was attended by {o} people."
            " | {s} attracted a crowd of {o}.",
            "How many people attended {s}?; How many visitors came to {s}?; How many visitors"
            " did {s} draw? | How big was the crowd at {s}?",
        ),
        _Relation(
            _duration(("days", 2, 12), ("weeks", 2, 6)),
            "{s} lasted {o}.; {s} went on for {o}. | {s} ran for {o}.",
            "How long did {s} last?; How long did {s} go on? | For how long did {s} run?",
        ),
        _Relation(
            _person,
            "{s} was won by {o}.; {o} won {s}. | The winner of {s} was {o}.",
            "Who won {s}?; Who was the winner of {s}? | Who came first in {s}?",
        ),
        _Relation(
            _organisation,
            "{s} was organised by {o}.; {o} organised {s}. | {o} ran {s}.",
            "Who organised {s}?; Which organisation ran {s}? | Who was the organiser of {s}?",
        ),
    ),
)

_BUILDING = _Domain(
    _building_name,
    ("It", "The building"),
    ("{s} is open to the public.", "{s} was restored not long ago."),
    (
        _Relation(
            _amount("metres", 18, 640),
            "{s} is {o} tall.; {s} rises {o} above the street.; {s} has a height of {o}."
            " | {s} stands {o} high.",
            "How tall is {s}?; How high is {s}?; What is the height of {s}?"
            " | How high does {s} rise?",
        ),
        _Relation(
            _person,
            "{s} was designed by {o}.; The architect of {s} was {o}.; {o} designed {s}."
            " | {s} is the work of the architect {o}.",
            "Who designed {s}?; Who was the architect of {s}?; Which architect designed {s}?"
            " | Whose work is {s}?",
        ),
        _Relation(
            _date(1700, 2023),
            "{s} was completed in {o}.; {s} was built in {o}.; {s} opened in {o}."
            " | Work on {s} was finished in {o}.",
            "When was {s} completed?; When was {s} built?; When did {s} open?"
            " | When was work on {s} finished?",
        ),
        _Relation(
            _count(2, 120),
            "{s} has {o} floors.; {s} is {o} storeys high. | There are {o} floors in {s}.",
            "How many floors does {s} have?; How many storeys does {s} have?"
            " | How many levels are there in {s}?",
        ),
        _Relation(
            _place,
            "{s} stands in {o}.; {s} is in the centre of {o}.; {s} was built in {o}."
            " | {s} can be found in {o}.",
            "Where is {s}?; In which town is {s}?; Where does {s} stand? | Where can {s} be found?",
        ),
        _Relation(
            _duration(("months", 4, 30), ("years", 2, 12)),
            "Construction of {s} took {o}.; Building {s} took {o}.; It took {o} to build {s}."
            " | Workers needed {o} to finish {s}.",
            "How long did it take to build {s}?; How long did the construction of {s} take?; How"
            " long did building {s} take? | How much time did the construction of {s} take?",
        ),
        _Relation(
            _amount("metres", 20, 2000),
            "{s} is {o} long.; {s} has a length of {o}. | {s} stretches for {o}.",
            "How long is {s}?; What is the length of {s}? | How far does {s} stretch?",
        ),
        _Relation(
            _money(2, 900, millions=True),
            "{s} cost {o} to build.; Building {s} cost {o}. | The construction of {s} cost {o}.",
            "How much did {s} cost?; How much did it cost to build {s}?"
            " | What was the construction cost of {s}?",
        ),
    ),
)

_DOMAINS = (_PERSON, _TOWN, _COMPANY, _PRODUCT, _EVENT, _BUILDING)


def generate(split: str, count: int, seed: int) -> list[QAExample]:
    """``count`` examples of the ``train`` or ``validation`` split; same seed, same data."""
    held_out = split != "train"
    rng = random.Random(f"{seed}-{split}")
    names = _Names(held_out)
    long_share = _LONG_CONTEXT["validation" if held_out else "train"]
    return [
        _example(rng, f"{split}-{index}", names, held_out, long_share) for index in range(count)
    ]


@dataclass(frozen=True)
class _Fact:
    subject: str
    reference: str  # what a later sentence about the same subject may call it
    relation: _Relation
    value: str
    phrasing: str

    def text(self, subject: str | None = None, asked: bool = False) -> str:
        """The sentence; the value inside markers when it is the asked fact."""
        value = _OPEN + self.value + _CLOSE if asked else self.value
        text = self.phrasing.format(s=self.subject if subject is None else subject, o=value)
        return _ON_DAY.sub(r"on \1", text)


def _example(
    rng: random.Random, uid: str, names: _Names, held_out: bool, long_share: float
) -> QAExample:
    domain = rng.choice(_DOMAINS)
    subjects = _distinct(rng, lambda: domain.name(rng, names), rng.randint(2, 3))
    used = set(subjects)
    asked_subject, asked_relation = rng.randrange(len(subjects)), rng.choice(domain.relations)
    facts: list[list[_Fact]] = []
    for index, subject in enumerate(subjects):
        reference = rng.choice(domain.references).format(last=subject.split()[-1])
        chosen = rng.sample(domain.relations, rng.randint(2, 3))
        # The asked relation for the subject; mostly for the others too: a distractor of the
        # same type (another person's birth year), so the subject decides the answer.
        if asked_relation not in chosen and (index == asked_subject or rng.random() < 0.7):
            chosen[rng.randrange(len(chosen))] = asked_relation
        facts.append([_fact(rng, names, subject, reference, r, used, held_out) for r in chosen])
    asked = next(f for f in facts[asked_subject] if f.relation is asked_relation)
    layout = _paired if held_out and rng.random() < _HELD_OUT_LAYOUT else _profiles
    sentences = layout(rng, domain, facts, asked)
    if rng.random() < 0.3:
        filler = rng.choice(FILLER)
        if not _mentions(filler, used):
            sentences.insert(rng.randint(0, len(sentences)), filler)
    if rng.random() < long_share:
        sentences = _lengthened(rng, sentences, names, used, held_out)
    marked = " ".join(sentences)
    start = marked.index(_OPEN)
    answer = marked[start + 1 : marked.index(_CLOSE)]  # as written: "The Selvaro" at a start
    question = asked.relation.phrasing("question", held_out, rng)
    subject = asked.subject
    if domain is _PERSON and rng.random() < 0.15:  # people are often asked about by surname
        subject = subject.split()[-1]
    return QAExample(
        id=uid,
        question=_sentence_case(question.format(s=subject)),
        context=marked.replace(_OPEN, "").replace(_CLOSE, ""),
        answers=[answer],
        answer_starts=[start],
    )


def _distinct(rng: random.Random, make: Callable[[], str], count: int) -> list[str]:
    """``count`` names, none inside another (so each is found only where it is meant)."""
    found: list[str] = []
    while len(found) < count:
        candidate = make()
        if all(candidate not in f and f not in candidate for f in found):
            found.append(candidate)
    return found


def _fact(
    rng: random.Random,
    names: _Names,
    subject: str,
    reference: str,
    relation: _Relation,
    used: set[str],
    held_out: bool,
) -> _Fact:
    """One fact with a value that no other value or subject of the context contains, or is
    contained in: every answer occurs once."""
    while True:
        value = relation.value(rng, names)
        if all(value not in other and other not in value for other in used):
            break
    used.add(value)
    return _Fact(subject, reference, relation, value, relation.phrasing("fact", held_out, rng))


def _profiles(
    rng: random.Random, domain: _Domain, facts: list[list[_Fact]], asked: _Fact
) -> list[str]:
    """Each subject's facts together, later ones often starting "She" or "The company"; or,
    in three paragraphs of ten, every fact on its own, shuffled."""
    if rng.random() < 0.3:
        sentences = [_sentence_case(f.text(asked=f is asked)) for group in facts for f in group]
        rng.shuffle(sentences)
        return sentences
    sentences = []
    for group in facts:
        if rng.random() < 0.25:
            introduction = rng.choice(domain.introductions).format(s=group[0].subject)
            sentences.append(_sentence_case(introduction))
        for position, fact in enumerate(group):
            by_reference = position and fact.phrasing.startswith("{s}") and rng.random() < 0.5
            text = fact.text(fact.reference if by_reference else None, asked=fact is asked)
            sentences.append(_sentence_case(text))
    return sentences


def _paired(
    rng: random.Random, domain: _Domain, facts: list[list[_Fact]], asked: _Fact
) -> list[str]:
    """The held-out layout: facts of two subjects joined in one sentence ("..., while ...")."""
    flat = [fact for group in facts for fact in group]
    rng.shuffle(flat)
    sentences = []
    while flat:
        first = flat.pop()
        text = first.text(asked=first is asked)
        if flat and rng.random() < 0.7:
            second = flat.pop()
            joined = second.text(asked=second is asked)
            if not second.phrasing.startswith("{"):  # "The mayor of ..." -> "the mayor of ..."
                joined = joined[:1].lower() + joined[1:]
            text = (
                text.rstrip(".") + rng.choice([", while ", ", whereas ", "; ", ", and "]) + joined
            )
        sentences.append(_sentence_case(text))
    return sentences


def _lengthened(
    rng: random.Random, sentences: list[str], names: _Names, used: set[str], held_out: bool
) -> list[str]:
    """Pad with facts about other subjects and filler, to several windows of tokens. No padding
    sentence names a subject or value of the context: the answer stays unambiguous."""
    padding: list[str] = []
    for _ in range(rng.randint(14, 24)):
        if rng.random() < 0.5:
            sentence = rng.choice(FILLER)
        else:
            domain = rng.choice(_DOMAINS)
            relation = rng.choice(domain.relations)
            subject = domain.name(rng, names)
            fact = _Fact(
                subject,
                subject,
                relation,
                relation.value(rng, names),
                relation.phrasing("fact", held_out, rng),
            )
            sentence = _sentence_case(fact.text())
        if not _mentions(sentence, used):
            padding.append(sentence)
    cut = rng.randint(0, len(padding))
    return padding[:cut] + sentences + padding[cut:]


def _mentions(text: str, used: set[str]) -> bool:
    return any(re.search(rf"\b{re.escape(value)}\b", text) for value in used)


def _sentence_case(text: str) -> str:
    """The first letter upper-case (markers skipped): "the Orin X2 is ..." -> "The Orin X2 ..."."""
    for index, char in enumerate(text):
        if char.isalpha():
            return text[:index] + char.upper() + text[index + 1 :]
        if char not in (_OPEN, _CLOSE):
            return text
    return text
