"""German scoring: the German Polarity Lexicon of Klenner et al. on the VADER-style engine.

The lexicon is read from the installed ``textblob-de`` package (``textblob_de/data/
de-sentiment.xml``, polarity values of Klenner, Clematide, Wiegand and Peters, University of
Zurich, in the XML form of textblob-de, declared Apache-2.0 in the file; the package is MIT).
It is not copied into this repository. docs/sentiment.md explains the choice, the scale and
every list below.

The lexicon holds base forms only (``verspäten``, ``schlecht``); ``expand_forms`` derives the
usual inflected forms (``verspätet``, ``schlechten``, ``ausgefallen``) once at start-up, so a
token costs one dictionary look-up. A capitalised token that is not in the lexicon is looked up
by its head (the last part of a German compound: ``Zugausfall`` -> ``Ausfall``), and a
negation that ends a clause negates the sentiment word before it (``gefällt mir nicht``).
"""

from __future__ import annotations

import importlib.metadata
import string
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterable, Iterator, Mapping
from functools import lru_cache
from pathlib import Path

from detector.english import vader_emoji, vader_lexicon
from detector.register import GERMAN
from detector.valence import (
    BOOST,
    DAMPEN,
    NEGATION_SCALAR,
    ValenceRules,
    ValenceScorer,
    words,
)

LEXICON_DISTRIBUTION = "textblob-de"
LEXICON_PATH = "textblob_de/data/de-sentiment.xml"

# The lexicon's polarities are -1.0, -0.7, 0.7 and 1.0 (mean absolute value 0.88); VADER's
# word valences have a median absolute value of 1.6. Scaling by 1.8 puts the two on the same
# footing, so that boosters, capitals and punctuation weigh as much as they do in English.
SCALE = 1.8

# Entries set to neutral. We reviewed every lexicon form among the 6,000 most frequent word
# forms of textblob-de's own frequency list (de-frequency.txt; no labelled data involved) and
# took out those whose listed polarity belongs to a rarer sense or to a topic rather than to
# an opinion: "sucht" (searches / addiction), "arm" (arm / poor), "tat" (did), "wagen" (car /
# dare), "verschieden" (various / deceased), "natürlich" (of course), "erfolgen" (take place),
# "Anzeige" (advert / police report), "Witz" (joke, praise or scorn), "fremd" (foreign).
NEUTRAL_WORDS = words(
    """
    absolut abschliessend achtung allein anders angeben angebot angemeldet anzeige anzeigen
    arm auskommen ausmachen bedarf bedeckt bedingt belange bestimmt betreuung bewegen bewegt
    bewegung bezahlen bleiben blau blauen bunte bunten dauern dauert dick dicht direkt
    dramatisch dramatische dramatischen echt echte echten echter einfach einfall einkommen
    einnahmen einnehmen eintreten eintritt energie eng entfernen entfernt entfernung
    entlassung entlassungen erfindung erfolgen erhalten erlauben erlaubnis erlaubt erlaubte
    ernst ertragen festgelegt festlegung fest fett fette fertig feuer forscher fremd fremde
    fremden frei freie freien freier front gefasst gefragt geladen geboren genug geraten
    gesetzt gesucht glaube glauben grau gross hart heiss heiraten heirat hell helle hellen
    heller hoch hochzeit indirekt informiert jochen kaufen klar klassen komisch komplex
    kraft kriegen kurs lauter lehre liberalen mauer mitbestimmung mild moralisch moralische
    moralischen musikalische nahe neigung nichts nieder normal normale normalen note noten
    objektiv offen offensive pfeife pflege praktisch propaganda raum rat recht reform regen
    reich rein reine reinen revolution richtig ruf ruhen sachlich sachliche sachlichen satt
    schauspiel schauspieler schwarz sicher sicherheit sonne sorgen soziale sozialen sozialer
    sozial spannung sportlichen steuern studiert studium sucht systematisch systematische
    takt tat tauben teilnahme tief trauung trotz trugen unterhalten unterhaltung
    verbindlichkeiten verhalten verlassen verpflichten verpflichtet verpflichtung
    verpflichtungen verschieden verschiedene verschiedenen verschiedener versichern
    versicherung versicherungen wach wagen weisen wichtig witz wohl wunder zahlreiche
    zahlreichen zahlreicher ziehen natürlich
    """
)

# German words missing from the lexicon, each scored with VADER's valence of its English
# translation (so no value here is chosen by hand): everyday complaint and praise words.
# Adjectives get their inflected forms ("kaputte"), nouns their plural ("Idioten").
TRANSLATED_ADJECTIVES = {
    "kaputt": "broken",
    "defekt": "defective",
    "katastrophal": "disastrous",
    "dreckig": "dirty",
    "unzumutbar": "unacceptable",
    "peinlich": "embarrassing",
    "nervig": "annoying",
    "genervt": "annoyed",
    "wütend": "angry",
    "perfekt": "perfect",
    "genial": "brilliant",
    "hervorragend": "excellent",
    "großartig": "great",
    "grossartig": "great",
    "wunderbar": "wonderful",
    "fantastisch": "fantastic",
    "lächerlich": "ridiculous",
    "frustrierend": "frustrating",
    "frustriert": "frustrated",
    "enttäuschend": "disappointing",
    "nutzlos": "useless",
    "inkompetent": "incompetent",
    "bequem": "comfortable",
    "freundlich": "friendly",
    "hilfsbereit": "helpful",
    "sauber": "clean",
    "verrottet": "rotten",
}
TRANSLATED_NOUNS = {
    "katastrophe": "disaster",
    "mist": "crap",
    "scheiße": "shit",
    "scheisse": "shit",
    "chaos": "chaos",
    "hölle": "hell",
    "idiot": "idiot",
    "inkompetenz": "incompetence",
    "enttäuschung": "disappointment",
}
TRANSLATED = {
    "leider": "unfortunately",
    "scheiß": "shitty",
    "scheiss": "shitty",
    "danke": "thanks",
    "dankeschön": "thanks",
    "bravo": "congratulations",
    "klasse": "great",
    "super": "super",
    "spitze": "excellent",
    "schade": "shame",
    "gefällt": "likes",
}

# Verbs missing from the lexicon, with the English verb whose valence they take; their
# inflected forms and participles are derived like the lexicon's own verbs.
TRANSLATED_VERBS = {
    "ausfallen": "cancelled",
    "verspäten": "delay",
    "verpassen": "missed",
    "nerven": "annoying",
    "enttäuschen": "disappointed",
}

# Words used in German social media as they are in English.
SHARED_SLANG = ("lol", "lmao", "lmfao", "rofl", "haha", "hahaha", "wtf", "fail", "yay", "wow")

NEGATIONS = words(
    """
    nicht nich net kein keine keinen keinem keiner keines nie niemals nimmer nichts niemand
    nirgends nirgendwo weder ohne nö nee
    """
)
# Negations that in German usually follow the word they negate ("gefällt mir nicht").
TRAILING_NEGATIONS = frozenset({"nicht", "nich", "net", "nie", "niemals", "nimmer"})

BOOSTERS = {
    **dict.fromkeys(
        words(
            """
            sehr total extrem absolut völlig voellig vollkommen wirklich echt richtig besonders
            äußerst äusserst ausgesprochen höchst hoechst unglaublich enorm mega voll ganz
            ziemlich so zu überaus ungemein furchtbar schrecklich unheimlich krass tierisch
            """
        ),
        BOOST,
    ),
    **dict.fromkeys(
        words(
            """
            etwas bisschen bissl kaum wenig eher fast teilweise halbwegs einigermaßen
            einigermassen mäßig ansatzweise
            """
        ),
        DAMPEN,
    ),
}

CONTRAST = frozenset({"aber", "jedoch", "allerdings"})

# Typographic punctuation common in German text, stripped from tokens like ASCII punctuation.
STRIP_CHARS = string.punctuation + "„“”‚‘’«»‹›…–—·•"

_INSEPARABLE = ("be", "emp", "ent", "er", "ge", "miss", "ver", "zer")
_SEPARABLE = (
    "zurück",
    "zusammen",
    "weiter",
    "heraus",
    "herein",
    "hinaus",
    "vorbei",
    "fest",
    "fort",
    "her",
    "hin",
    "los",
    "mit",
    "nach",
    "vor",
    "weg",
    "auf",
    "aus",
    "bei",
    "ein",
    "ab",
    "an",
    "zu",
)
_ADJECTIVE_ENDINGS = ("e", "en", "er", "es", "em")
_NOUN_ENDINGS = ("e", "en", "n", "s", "es", "er", "ern", "nen")
# The shortest compound head looked up in a capitalised unknown word.
MIN_HEAD = 5


def lexicon_file() -> Path:
    """Where the installed textblob-de package keeps the German polarity lexicon."""
    dist = importlib.metadata.distribution(LEXICON_DISTRIBUTION)
    return Path(str(dist.locate_file(LEXICON_PATH)))


def read_polarity_lexicon(path: Path) -> list[tuple[str, str, float]]:
    """(form, part of speech, polarity) for every entry with a non-zero polarity."""
    entries: list[tuple[str, str, float]] = []
    for element in ElementTree.parse(path).getroot().iter("word"):
        form = element.get("form")
        pos = element.get("pos") or ""
        polarity = float(element.get("polarity") or 0.0)
        if form and polarity != 0.0:
            entries.append((form, pos, polarity))
    return entries


def _adjective_forms(base: str) -> Iterator[str]:
    yield base
    stems = [base]
    if base.endswith(("el", "er")) and len(base) > 4:
        stems.append(base[:-2] + base[-1])  # teuer -> teur-e, dunkel -> dunkl-e
    for stem in stems:
        if stem.endswith("e"):
            for ending in ("n", "r", "s", "m"):
                yield stem + ending
        else:
            for ending in _ADJECTIVE_ENDINGS:
                yield stem + ending
    # Comparative and superlative without umlaut (schneller, schnellste).
    for ending in ("er", "st", "est"):
        comparative = base + ending
        yield comparative
        for inflection in _ADJECTIVE_ENDINGS:
            yield comparative + inflection


def _noun_forms(base: str) -> Iterator[str]:
    yield base
    for ending in _NOUN_ENDINGS:
        yield base + ending


def _participle_forms(participle: str) -> Iterator[str]:
    yield participle
    for ending in _ADJECTIVE_ENDINGS:
        yield participle + ending


def _verb_forms(infinitive: str, nouns: bool = False) -> Iterator[tuple[str, bool]]:
    """(form, is_noun) for the third-person and past forms, the participles and, with
    ``nouns``, the -ung noun of a verb. Forms that are mostly other words are left out (the
    first person "preise" of "preisen" is the plural of "Preis")."""
    if infinitive.endswith("en"):
        stem = infinitive[:-2]
    elif infinitive.endswith(("ln", "rn")):
        stem = infinitive[:-1]
    else:
        return
    yield infinitive, False
    t_joint = "et" if stem.endswith(("t", "d")) else "t"
    for ending in (t_joint, "te", "ten", "tet", "ete", "eten", "end"):
        yield stem + ending, False
    for ending in ("e", "en", "er", "es", "em"):
        yield stem + "end" + ending, False
    participles: list[str] = []
    prefix = next((p for p in _SEPARABLE if stem.startswith(p) and len(stem) > len(p) + 2), "")
    if infinitive.endswith("ieren") or stem.startswith(_INSEPARABLE):
        participles += [stem + t_joint, infinitive]
    elif prefix:
        rest_stem = stem[len(prefix) :]
        rest = infinitive[len(prefix) :]
        rest_joint = "et" if rest_stem.endswith(("t", "d")) else "t"
        participles += [prefix + "ge" + rest_stem + rest_joint, prefix + "ge" + rest]
    else:
        participles += ["ge" + stem + t_joint, "ge" + infinitive]
    for participle in participles:
        for form in _participle_forms(participle):
            yield form, False
    if nouns and not stem.endswith("ier"):
        yield stem + "ung", True
        yield stem + "ungen", True


def expand_forms(
    entries: Iterable[tuple[str, str, float]],
) -> tuple[dict[str, float], dict[str, float]]:
    """Word forms with valences, and the subset of noun forms used as compound heads.

    A form the lexicon lists itself keeps the lexicon's value; a derived form that two base
    words share keeps the first one's.
    """
    base: dict[str, float] = {}
    pos_of: dict[str, str] = {}
    for form, pos, polarity in entries:
        key = form.lower()
        if key in NEUTRAL_WORDS or key in base:
            continue
        base[key] = polarity * SCALE
        pos_of[key] = pos
    forms: dict[str, float] = dict(base)
    heads: dict[str, float] = {}
    for key, valence in base.items():
        pos = pos_of[key]
        if pos == "NN":
            for form in _noun_forms(key):
                forms.setdefault(form, valence)
                heads.setdefault(form, valence)
        elif pos == "VB":
            derived = list(_verb_forms(key))
            if not derived:
                for form in _adjective_forms(key):
                    forms.setdefault(form, valence)
            for form, is_noun in derived:
                forms.setdefault(form, valence)
                if is_noun:
                    heads.setdefault(form, valence)
        else:
            for form in _adjective_forms(key):
                forms.setdefault(form, valence)
    return forms, heads


def _emoji_valences() -> dict[str, float]:
    # An emoji counts as the sum of VADER's valences of the words describing it, which is
    # what it contributes to an English text.
    lexicon = vader_lexicon()
    valences: dict[str, float] = {}
    for ch, description in vader_emoji().items():
        total = sum(lexicon.get(word, 0.0) for word in description.lower().split())
        if total:
            valences[ch] = total
    return valences


@lru_cache(maxsize=1)
def german_tables() -> tuple[dict[str, float], dict[str, float], dict[str, float]]:
    """(lexicon, compound heads, emoji valences), built once per process."""
    forms, heads = expand_forms(read_polarity_lexicon(lexicon_file()))
    english = vader_lexicon()
    for word, translation in TRANSLATED.items():
        forms[word] = english[translation]
    for word, translation in TRANSLATED_ADJECTIVES.items():
        for form in _adjective_forms(word):
            forms[form] = english[translation]
    for word, translation in TRANSLATED_NOUNS.items():
        for form in _noun_forms(word):
            forms[form] = english[translation]
            heads[form] = english[translation]
    for verb, translation in TRANSLATED_VERBS.items():
        valence = english[translation]
        for form, is_noun in _verb_forms(verb, nouns=True):
            forms[form] = valence
            if is_noun:
                heads[form] = valence
    for word in SHARED_SLANG:
        forms[word] = english[word]
    # Emoticons (":)", "<3", ":-(") from VADER's lexicon.
    for key, valence in english.items():
        if not any(ch.isalpha() for ch in key):
            forms[key] = valence
    for word in NEUTRAL_WORDS:
        forms.pop(word, None)
        heads.pop(word, None)
    emoji = _emoji_valences()
    forms.update(emoji)
    return forms, heads, emoji


def _clause_end(raw: str) -> bool:
    return raw[-1:] in ".,;:!?"


def trailing_negation(
    raw: list[str], words: list[str], lower: list[str], sentiments: list[float]
) -> None:
    """Negate a sentiment word followed, within three tokens of its clause, by a negation
    that ends the clause ("Das gefällt mir nicht.", "Der Zug war pünktlich? Nie!"), unless a
    negation also precedes it."""
    n = len(lower)
    for i in range(n):
        if sentiments[i] == 0.0 or _clause_end(raw[i]):
            continue
        for j in range(i + 1, min(n, i + 4)):
            if sentiments[j] != 0.0:
                break
            if lower[j] in TRAILING_NEGATIONS and (j == n - 1 or _clause_end(raw[j])):
                if not any(lower[k] in NEGATIONS for k in range(max(0, i - 3), i)):
                    sentiments[i] *= NEGATION_SCALAR
                break
            if _clause_end(raw[j]):
                break


def brand_register(
    raw: list[str], words: list[str], lower: list[str], sentiments: list[float]
) -> None:
    """The trailing negation, then the brand-register rules with German word lists."""
    trailing_negation(raw, words, lower, sentiments)
    GERMAN(raw, words, lower, sentiments)


class CompoundHeads:
    """Valence of a capitalised unknown word from its head, the longest final part of at
    least ``MIN_HEAD`` letters that is a noun form of the lexicon (``Zugausfall`` ->
    ``ausfall``). Results are cached; the cache is emptied when it reaches ``cache_size``."""

    __slots__ = ("_heads", "_cache", "_cache_size")

    def __init__(self, heads: Mapping[str, float], cache_size: int = 50_000) -> None:
        self._heads = dict(heads)
        self._cache: dict[str, float | None] = {}
        self._cache_size = cache_size

    def __call__(self, word: str, lower: str) -> float | None:
        if len(lower) < MIN_HEAD + 3 or not word[:1].isupper():
            return None
        cache = self._cache
        if lower in cache:
            return cache[lower]
        heads = self._heads
        found: float | None = None
        for start in range(1, len(lower) - MIN_HEAD + 1):
            found = heads.get(lower[start:])
            if found is not None:
                break
        if len(cache) >= self._cache_size:
            cache.clear()
        cache[lower] = found
        return found


def german_rules(name: str = "german", brand: bool = False) -> ValenceRules:
    """The German rules; with ``brand``, also the brand-register rules."""
    forms, heads, emoji = german_tables()

    return ValenceRules(
        name=name,
        lexicon=forms,
        boosters=BOOSTERS,
        negations=NEGATIONS,
        contrast=CONTRAST,
        emoji={ch: f" {ch} " for ch in emoji},
        strip_chars=STRIP_CHARS,
        keep_short_tokens=False,
        squeeze_repeats=True,
        fallback=CompoundHeads(heads),
        adjust=brand_register if brand else trailing_negation,
    )


class GermanScorer:
    """German compound polarity in [-1, 1]; ``brand_compound`` adds the brand-register
    rules, for a text that names the brand it is about."""

    __slots__ = ("name", "_general", "_brand")

    def __init__(self) -> None:
        self.name = "german"
        self._general = ValenceScorer(german_rules("german"))
        self._brand = ValenceScorer(german_rules("german-brand", brand=True))

    def compound(self, text: str) -> float:
        return self._general.compound(text)

    def brand_compound(self, text: str) -> float:
        return self._brand.compound(text)
