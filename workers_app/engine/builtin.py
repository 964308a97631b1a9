"""Offline, deterministic keyword baseline that answers like an LLM annotator.

The console must work with no API key and no network, so this module stands in for a model: it scans a
post for lexicon cues and replies with a short rationale followed by the ``<<...>>`` answer marker, the
same shape an LLM reply has, so the normal parsing path is exercised. It is a lexicon baseline for
research plumbing, NOT a clinical model: it does not understand negation, irony or context.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

BUILTIN_MODEL = "builtin-lexicon-v1"

# Theme kinds: risk and concern themes describe what the writer struggles with; preference themes only
# describe how the writer would like help (they steer modality and self-help, never urgency upwards).
_RISK, _CONCERN, _PREFERENCE = "risk", "concern", "preference"

_MAX_CUES_SHOWN = 5


@dataclass(frozen=True)
class _Theme:
    name: str
    kind: str
    urgency: int  # 0..4 on the LEVEL_n scale; the highest matched theme sets the post's urgency
    issue: str  # short phrase used for the redressal domain
    # Lower-case cues. A trailing * matches any ending of a single word ("panic*" -> "panicking"); phrases
    # match whole consecutive words, with hyphens and apostrophes ignored ("self-harm" = "self harm").
    keywords: tuple[str, ...]


def _each(prefix: str, endings: str) -> tuple[str, ...]:
    """Expand a phrase family, e.g. "lost my" + "mom dad" -> ("lost my mom", "lost my dad")."""
    return tuple(f"{prefix} {ending}" for ending in endings.split())


_THEMES: tuple[_Theme, ...] = (
    _Theme("suicide", _RISK, 4, "suicidal thoughts", (
        "suicide", "suicidal", "kill myself", "killing myself", "end my life", "ending my life", "end it all",
        "take my own life", "want to die", "wanna die", "wish i was dead", "wish i were dead", "better off dead",
        "better off without me", "no reason to live", "don't want to live", "don't want to be alive",
        "overdose*", "suicide note", "goodbye note", "goodbye letter", "never wake up", "hope i don't wake up",
        "suicidality",
    )),
    _Theme("harm_others", _RISK, 4, "risk of harming others", (
        # "hurt someone" is left out on purpose: it is mostly about feelings, not violence.
        "harm someone", "harm somebody", "harm others", "kill someone", "kill him", "kill her", "kill them",
    )),
    _Theme("self_harm", _RISK, 3, "self-harm", (
        "self-harm", "self-harming", "self-harmed", "selfharm", "self-injury", "cutting", "cut myself",
        "hurt myself", "hurting myself", "harm myself", "harming myself", "burn myself", "burning myself",
        "hit myself", "urge to cut",
    )),
    _Theme("hopeless", _CONCERN, 2, "hopelessness", (
        "hopeless*", "worthless*", "no way out", "can't go on", "trapped", "no future", "pointless",
    )),
    _Theme("panic", _CONCERN, 2, "panic attacks", (
        "panic*", "heart racing", "heart pounding", "can't breathe", "hyperventilat*",
    )),
    _Theme("depression", _CONCERN, 2, "low mood", (
        "depress*", "feel empty", "feeling empty", "empty inside", "numb", "no motivation", "no energy",
        "can't get out of bed", "crying every day", "crying every night",
    )),
    _Theme("trauma", _CONCERN, 2, "trauma memories", (
        "trauma*", "abuse*", "abusive", "assault*", "ptsd", "flashback*", "nightmares", "rape", "raped",
        "molest*",
    )),
    _Theme("substance", _CONCERN, 2, "substance use", (
        "alcohol*", "drinking", "drunk", "hungover", "hangover*", "drug", "drugs", "weed", "cannabis", "cocaine",
        "vape", "vaping", "addict*", "relapse*", "sober", "sobriety", "getting high",
    )),
    _Theme("disordered_eating", _CONCERN, 2, "disordered eating", (
        "purg*", "starv*", "anorexi*", "bulimi*", "binge eating", "bingeing", "binging", "laxative*",
        "throw up after", "make myself sick", "making myself sick",
    )),
    _Theme("emotion", _CONCERN, 1, "emotion regulation", (
        "anger", "angry", "rage", "furious", "outburst*", "mood swings", "lash out", "lashing out", "snap at",
    )),
    _Theme("anxiety", _CONCERN, 1, "anxiety", (
        "anxiety", "anxious", "worry", "worries", "worried", "worrying", "nervous", "overthink*", "on edge",
        "dread*",
    )),
    _Theme("grief", _CONCERN, 1, "grief", (
        "grief", "griev*", "passed away", "died", "death of", "funeral", "bereave*",
        *_each("lost my", "mom mum dad mother father brother sister friend grandma grandmother grandpa grandfather "
                          "partner husband wife son daughter baby dog cat"),
    )),
    _Theme("sleep", _CONCERN, 1, "sleep problems", (
        "sleep", "sleeping", "slept", "insomnia", "awake at night", "can't sleep", "tired all the time",
    )),
    _Theme("academic", _CONCERN, 1, "academic stress", (
        "exam", "exams", "examination*", "college", "university", "uni", "class", "classes", "grades", "gpa",
        "study", "studying", "semester", "finals", "midterm*", "thesis", "dissertation", "assignment*", "school",
        "professor*", "lecture*", "coursework", "homework",
    )),
    _Theme("work", _CONCERN, 1, "work stress", (
        "job", "jobs", "work", "working", "workplace", "career", "boss", "manager", "coworker*", "co-worker",
        "co-workers", "colleague*", "burnout", "burned out", "burnt out", "unemploy*", "fired", "laid off",
        "overtime", "deadline*",
    )),
    _Theme("relationship", _CONCERN, 1, "relationship conflict", (
        "relationship*", "partner", "partners", "boyfriend*", "girlfriend*", "husband*", "wife", "spouse",
        "breakup", "break up", "broke up", "divorce*", "marriage", "cheated", "cheating",
    )),
    _Theme("family", _CONCERN, 1, "family pressure", (
        "family", "families", "parent*", "mother", "father", "mom", "mum", "dad", "sibling*", "brother*",
        "sister*", "stepmom", "stepdad",
    )),
    _Theme("loneliness", _CONCERN, 1, "loneliness", (
        "lonely", "loneliness", "isolated", "isolation", "isolating", "alone", "no friends", "no one to talk to",
        "nobody to talk to", "left out",
    )),
    _Theme("eating", _CONCERN, 1, "eating concerns", (
        "eating", "food", "weight", "calorie*", "skipping meals", "skip meals", "appetite", "body image",
    )),
    _Theme("medication", _CONCERN, 1, "medication questions", (
        "medication*", "meds", "psychiatrist*", "antidepressant*", "prescri*", "ssri*", "dosage", "dose",
    )),
    _Theme("physical", _CONCERN, 1, "physical health", (
        "chronic pain", "chronic illness", "pain", "diagnosed", "diagnosis", "headaches", "migraine*",
        "my doctor", "blood test", "blood tests", "physical health", "pregnan*", "thyroid",
    )),
    _Theme("self_esteem", _CONCERN, 1, "self-esteem", (
        "self-esteem", "insecure", "not good enough", "failure", "confidence", "hate myself",
    )),
    _Theme("stuck", _CONCERN, 1, "feeling stuck", (
        "stuck", "meaningless", "no purpose", "sense of purpose", "my values", "can't let go", "acceptance", "avoid*",
    )),
    _Theme("ambivalence", _CONCERN, 1, "motivation to change", (
        "cut down", "cut back", "cutting back", "should i stop", "part of me wants", "ambivalent",
        "want to quit", "trying to quit",
    )),
    _Theme("self_help", _PREFERENCE, 0, "self-help information", (
        "tips", "advice", "resources", "suggestions", "recommend*", "books", "app", "apps", "techniques",
        "exercises", "strategies", "how do i", "how can i", "is it normal", "just curious", "any ideas",
    )),
    _Theme("online", _PREFERENCE, 0, "online support", (
        "online", "video call", "video calls", "virtual", "remote*", "telehealth", "zoom", "online chat",
    )),
    _Theme("group", _PREFERENCE, 0, "peer support", (
        "support group", "support groups", "group", "groups", "others who", "people like me", "people who understand",
        "peer*",
    )),
    _Theme("workshop", _PREFERENCE, 0, "skills workshop", (
        "workshop*", "seminar*", "skills class", "skills course", "short course",
    )),
)

_THEME_BY_NAME = {theme.name: theme for theme in _THEMES}
_THEME_ORDER = {theme.name: position for position, theme in enumerate(_THEMES)}


@dataclass(frozen=True)
class Profile:
    """How one built-in annotator reads the lexicon. Five real models disagree (different training, thresholds,
    sampling); five copies of one lexicon never would, so each built-in annotator has a profile. The variation is
    SYNTHETIC: invented to show disagreement, agreement statistics below 1 and changed labels in a demo, not a model
    of any real LLM. Every profile is deterministic: the same post, domain and prompt give the same answer."""

    name: str
    description: str
    concern_hits: int = 1  # cue hits a concern theme needs to count; risk and preference themes always count at one
    pile_up: int = 3  # this many distinct concern themes at once count as one step more serious
    # How many non-risk concern themes feed the code-set domains: a long post mentions nearly everything once, and
    # an LLM would name the dominant concerns, not the whole catalogue.
    top_concerns: int = 4
    max_issues: int = 5  # issues listed for redressal
    escalates: frozenset[str] = frozenset()  # concern themes this reader rates one urgency level higher
    jitter: float = 0.0  # share of (prompt, domain) pairs answered one step off, drawn from ``seed``
    seed: str = ""


REFERENCE = Profile("reference", "the lexicon as designed")
PROFILES: dict[str, Profile] = {profile.name: profile for profile in (
    REFERENCE,
    Profile("cautious", "reads low mood, hopelessness, trauma, eating and substance cues as one level more urgent",
            top_concerns=5,
            escalates=frozenset({"hopeless", "depression", "trauma", "disordered_eating", "substance"}),
            jitter=0.10, seed="cautious"),
    Profile("reserved", "counts a concern only when two cues name it; needs four concerns before calling it moderate",
            concern_hits=2, pile_up=4, top_concerns=3, max_issues=4, jitter=0.10, seed="reserved"),
    Profile("broad", "names more concerns and services", top_concerns=6, max_issues=7, jitter=0.15, seed="broad"),
    Profile("terse", "names only the two main concerns", top_concerns=2, max_issues=3, jitter=0.15, seed="terse"),
)}

# Per-domain contributions of each theme. Themes that are absent contribute nothing to that domain.
_THERAPEUTIC: dict[str, tuple[str, ...]] = {
    "suicide": ("TA-2",), "harm_others": ("TA-2",), "self_harm": ("TA-2",), "hopeless": ("TA-1",),
    "panic": ("TA-1",), "depression": ("TA-1",), "trauma": ("TA-3",), "substance": ("TA-8",),
    "disordered_eating": ("TA-1",), "emotion": ("TA-2",), "anxiety": ("TA-1",), "grief": ("TA-4", "TA-9"),
    "sleep": ("TA-1",), "academic": ("TA-7",), "work": ("TA-5",), "relationship": ("TA-4",),
    "family": ("TA-6",), "loneliness": ("TA-4",), "eating": ("TA-1",), "medication": ("TA-7",),
    "physical": ("TA-5",), "self_esteem": ("TA-1",), "stuck": ("TA-5",), "ambivalence": ("TA-8",),
    "self_help": ("TA-7",),
}
_ADJUNCT: dict[str, tuple[str, ...]] = {
    "suicide": ("ADJ-1", "ADJ-5"), "harm_others": ("ADJ-1", "ADJ-5"), "self_harm": ("ADJ-5",),
    "substance": ("ADJ-6",), "disordered_eating": ("ADJ-2", "ADJ-7"), "eating": ("ADJ-7",),
    "academic": ("ADJ-3",), "medication": ("ADJ-1",), "physical": ("ADJ-2",), "loneliness": ("ADJ-4",),
    "group": ("ADJ-4",), "grief": ("ADJ-4",), "work": ("ADJ-8",),
}
_MODALITY: dict[str, tuple[str, ...]] = {
    "relationship": ("MOD-4",), "family": ("MOD-3",), "loneliness": ("MOD-2",), "group": ("MOD-2",),
    "substance": ("MOD-2",), "grief": ("MOD-2",), "online": ("MOD-5",), "self_help": ("MOD-5",),
    "workshop": ("MOD-6",), "academic": ("MOD-6",),
}

_URGENCY_SCALE = ("LEVEL_0", "LEVEL_1", "LEVEL_2", "LEVEL_3", "LEVEL_4")
_INTENSITY_SCALE = ("INT-1", "INT-2", "INT-3", "INT-4", "INT-5")
_FALLBACK_URGENCY = 1  # nothing matched: "support would help within weeks", not "no help needed"
_INDIVIDUAL = "MOD-1"
_NONE = "NONE"
_CODE_SET_FALLBACK = {"therapeutic": "TA-9", "adjunct": _NONE, "modality": _INDIVIDUAL}
_CODE_SET_TABLES = {"therapeutic": _THERAPEUTIC, "adjunct": _ADJUNCT, "modality": _MODALITY}
_FALLBACK_ISSUES = ["general distress"]


# "cutting" is a self-harm cue, but "cutting back on coffee" or "cutting class" are not.
_NOT_FOLLOWED_BY = {"cutting": (
    "back", "down", "out", "off", "class", "classes", "corners", "ties", "costs", "edge", "it", "hair", "my hair",
    "people", "someone", "contact", "carbs", "sugar",
)}

_WORD = re.compile(r"[^\W_]+")  # letters and digits in any script; hyphens, apostrophes and "_" split words
_STEM_KEY = 4  # stems are bucketed by their first letters so a word is compared with few stems


@dataclass(frozen=True)
class _Cue:
    theme: str
    text: str  # lexicon wording shown in the rationale; the post itself is never quoted
    rank: int  # lexicon position, to break ties between equally frequent cues


# Fast path for plain-ASCII posts: str.translate + str.split is several times quicker than a regex scan.
_ASCII_SEPARATORS: dict[int, str | None] = {code: " " for code in range(128) if not chr(code).isalnum()}
_ASCII_SEPARATORS[ord("'")] = None


def _words(text: str) -> list[str]:
    # Apostrophes are dropped rather than split on, so "can't", "can’t" and "cant" are one word.
    lowered = text.lower().replace("\u2019", "")
    if lowered.isascii():
        return lowered.translate(_ASCII_SEPARATORS).split()
    return _WORD.findall(lowered.replace("'", ""))


def _compile_lexicon() -> tuple[dict[str, _Cue], dict[str, list[tuple[str, _Cue]]], dict[str, list[tuple[str, _Cue]]]]:
    """Index the lexicon once at import: exact words, word stems, and phrases keyed by their first word."""
    words: dict[str, _Cue] = {}
    stems: dict[str, list[tuple[str, _Cue]]] = {}
    phrases: dict[str, list[tuple[str, _Cue]]] = {}
    keywords = [(theme.name, keyword) for theme in _THEMES for keyword in theme.keywords]
    for rank, (theme_name, keyword) in enumerate(keywords):
        cue = _Cue(theme_name, keyword.rstrip("*"), rank)
        parts = _words(keyword)
        if keyword.endswith("*"):
            # Lexicon authoring mistakes should fail at import, not silently never match.
            if len(parts) != 1 or len(parts[0]) < _STEM_KEY:
                raise ValueError(f"wildcard cue must be one word of {_STEM_KEY}+ letters: {keyword!r}")
            stems.setdefault(parts[0][:_STEM_KEY], []).append((parts[0], cue))
        elif len(parts) == 1:
            words.setdefault(parts[0], cue)
        else:
            phrases.setdefault(parts[0], []).append((" ".join(parts), cue))
    return words, stems, phrases


_LEXICON_WORDS, _LEXICON_STEMS, _LEXICON_PHRASES = _compile_lexicon()


@dataclass
class _Match:
    hits: int
    cue: str  # the theme's most frequent cue, in lexicon wording


def _count_cues(text: str) -> dict[_Cue, int]:
    # Counting distinct words first keeps long posts cheap: the per-word Python work is on the vocabulary,
    # and phrases are counted with str.count over the rejoined words (C speed), only when their first word occurs.
    words = _words(text)
    vocabulary = Counter(words)
    counts: Counter[_Cue] = Counter()
    for word, times in vocabulary.items():
        if word in _LEXICON_WORDS:
            counts[_LEXICON_WORDS[word]] += times
        for stem, cue in _LEXICON_STEMS.get(word[:_STEM_KEY], ()):
            if word.startswith(stem):
                counts[cue] += times
    joined = ""
    for first, entries in _LEXICON_PHRASES.items():
        if first in vocabulary:
            joined = joined or f" {' '.join(words)} "
            for phrase, cue in entries:
                counts[cue] += joined.count(f" {phrase} ")
    for word, followers in _NOT_FOLLOWED_BY.items():
        if word in vocabulary:
            joined = joined or f" {' '.join(words)} "
            counts[_LEXICON_WORDS[word]] -= sum(joined.count(f" {word} {after} ") for after in followers)
    return counts


def _scan(text: str) -> dict[str, _Match]:
    """Matched themes with their hit counts and the cue to show for each."""
    best: dict[str, tuple[int, int, str]] = {}  # theme -> (total hits, best cue's hits, best cue text)
    for cue, times in sorted(_count_cues(text).items(), key=lambda item: item[0].rank):
        if times <= 0:
            continue
        total, top, text_shown = best.get(cue.theme, (0, 0, ""))
        if times > top:
            top, text_shown = times, cue.text
        best[cue.theme] = (total + times, top, text_shown)
    return {theme: _Match(total, shown) for theme, (total, _, shown) in best.items()}


def _counted(matches: dict[str, _Match], profile: Profile) -> dict[str, _Match]:
    """The matches this profile takes into account."""
    if profile.concern_hits <= 1:
        return matches
    return {name: match for name, match in matches.items()
            if _THEME_BY_NAME[name].kind != _CONCERN or match.hits >= profile.concern_hits}


def _ranked_themes(matches: dict[str, _Match], profile: Profile) -> list[str]:
    """Themes that drive the code-set domains: every risk theme, the dominant concerns, every preference."""
    by_kind: dict[str, list[str]] = {_RISK: [], _CONCERN: [], _PREFERENCE: []}
    for name in sorted(matches, key=lambda n: (-matches[n].hits, _THEME_ORDER[n])):
        by_kind[_THEME_BY_NAME[name].kind].append(name)
    return by_kind[_RISK] + by_kind[_CONCERN][:profile.top_concerns] + by_kind[_PREFERENCE]


def _theme_urgency(name: str, profile: Profile) -> int:
    return min(_THEME_BY_NAME[name].urgency + (name in profile.escalates), len(_URGENCY_SCALE) - 1)


def _urgency_level(matches: dict[str, _Match], profile: Profile) -> tuple[int, list[str]]:
    """Level 0..4 and the themes that set it. Uses every match, not only the top ones: safety first."""
    clinical = [name for name in matches if _THEME_BY_NAME[name].kind != _PREFERENCE]
    if not clinical:
        return (0, ["self_help"]) if "self_help" in matches else (_FALLBACK_URGENCY, [])
    level = max(_theme_urgency(name, profile) for name in clinical)
    drivers = [name for name in _ranked_themes(matches, profile)
               if name in clinical and _theme_urgency(name, profile) == level]
    if level <= 1 and "self_help" in matches:
        return 0, drivers + ["self_help"]  # mild concerns plus a request for tips reads as self-help
    if level == 1 and len(clinical) >= profile.pile_up:
        # Several mild stressors at once are a moderate problem; never escalate further on counts alone.
        return 2, [name for name in _ranked_themes(matches, profile) if name in clinical]
    return level, drivers


def _unique(codes: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(codes))


def _pick_ordinal(scale: Sequence[str], index: int, codes: Sequence[str]) -> str:
    """The scale code at ``index``, or the nearest one staff kept; unfamiliar codes are read as a scale in order."""
    allowed = _unique(codes)
    if scale[index] in allowed:
        return scale[index]
    present = [(position, code) for position, code in enumerate(scale) if code in allowed]
    if present:
        # Ties go to the higher level: under-rating risk is the worse mistake.
        return min(present, key=lambda item: (abs(item[0] - index), -item[0]))[1]
    return allowed[round(index * (len(allowed) - 1) / (len(scale) - 1))]


def _cue_sentence(matches: dict[str, _Match], themes: Sequence[str], label: str = "Cues") -> str:
    cues = _unique([matches[name].cue for name in themes if name in matches])[:_MAX_CUES_SHOWN]
    if not cues:
        return "No lexicon cues matched, so the default applies."
    return f"{label}: " + ", ".join(f'"{cue}"' for cue in cues) + "."


@dataclass(frozen=True)
class _Decision:
    rationale: str
    payload: str  # what goes between the << >> markers


_NUDGED = " On balance, one step {}."


def _nudge(profile: Profile, prompt: str, domain: str) -> int:
    """-1, 0 or +1: whether this profile answers this (prompt, domain) one step off the lexicon's answer, as a
    sampled model sometimes does. Drawn from a hash, so the same prompt always gets the same answer; a changed
    prompt may get another, as a real model's would."""
    if profile.jitter <= 0.0:
        return 0
    digest = _digest(prompt, domain, f"jitter:{profile.seed}")
    if int.from_bytes(digest[:8], "big") / 2**64 >= profile.jitter:
        return 0
    return 1 if digest[8] % 2 else -1


def _decide_ordinal(domain: str, matches: dict[str, _Match], codes: Sequence[str], profile: Profile,
                    nudge: int) -> _Decision:
    level, drivers = _urgency_level(matches, profile)
    scale = _URGENCY_SCALE if domain == "urgency" else _INTENSITY_SCALE
    if domain == "urgency":
        rationale = _cue_sentence(matches, drivers, "Cues setting the level")
        index = level
    else:
        # Intensity follows urgency (LEVEL_n -> INT-(n+1)); a moderate case with many concerns needs more sessions.
        concerns = [name for name in matches if _THEME_BY_NAME[name].kind == _CONCERN]
        index = 3 if level == 2 and len(concerns) >= profile.pile_up + 1 else level
        rationale = _cue_sentence(matches, drivers) + f" Care intensity follows urgency level {level}."
    moved = min(max(index + nudge, 0), len(scale) - 1)
    if moved != index:
        rationale += _NUDGED.format("higher" if moved > index else "lower")
    return _Decision(rationale, _pick_ordinal(scale, moved, codes))


# A code a nudged answer adds: the broad, safe choice of each code-set domain.
_CODE_SET_EXTRA = {"therapeutic": "TA-9", "adjunct": "ADJ-4", "modality": _INDIVIDUAL}


def _nudged_codes(domain: str, chosen: list[str], allowed: list[str], nudge: int) -> list[str]:
    """One code fewer (the last, when there are several) or one more (the domain's broad choice), in list order."""
    if nudge < 0 and len(chosen) > 1:
        return chosen[:-1]
    extra = _CODE_SET_EXTRA[domain]
    if nudge > 0 and extra in allowed and extra not in chosen and _NONE not in chosen:
        return [code for code in allowed if code in chosen or code == extra]
    return chosen


def _decide_code_set(domain: str, matches: dict[str, _Match], codes: Sequence[str], profile: Profile,
                     nudge: int) -> _Decision:
    table = _CODE_SET_TABLES[domain]
    wanted: dict[str, list[str]] = {}  # code -> themes that asked for it
    for name in _ranked_themes(matches, profile):
        for code in table.get(name, ()):
            wanted.setdefault(code, []).append(name)
    if domain == "modality" and _urgency_level(matches, profile)[0] >= 2:
        wanted.setdefault(_INDIVIDUAL, [])  # anyone at moderate risk or above needs individual care too
    allowed = _unique(codes)
    chosen = [code for code in allowed if code in wanted and code != _NONE]
    if chosen:
        themes = _unique([name for code in chosen for name in wanted[code]])
        rationale = _cue_sentence(matches, themes) if themes else "The urgency level calls for individual care."
        return _Decision(rationale, ", ".join(_nudged_codes(domain, chosen, allowed, nudge)))
    fallback = _CODE_SET_FALLBACK[domain]
    code = fallback if fallback in allowed else allowed[0]
    return _Decision("No lexicon cue points to a specific code, so the default applies.", code)


def _decide_string_list(matches: dict[str, _Match], profile: Profile) -> _Decision:
    ranked = _ranked_themes(matches, profile)
    # Problems come first; a post that only asks for tips or a format still gets that request listed.
    themes = [name for name in ranked if _THEME_BY_NAME[name].kind != _PREFERENCE] or ranked
    issues = [_THEME_BY_NAME[name].issue for name in themes][:profile.max_issues] or list(_FALLBACK_ISSUES)
    return _Decision(_cue_sentence(matches, themes), json.dumps(issues, ensure_ascii=False))


def _decide(text: str, domain: str, allowed: list[str], profile: Profile, prompt: str) -> _Decision:
    # With no codes at all only a free-text list can be given, whatever the domain is called.
    if domain == "redressal" or not allowed:
        return _decide_string_list(_counted(_scan(text), profile), profile)
    if domain in ("urgency", "intensity"):
        return _decide_ordinal(domain, _counted(_scan(text), profile), allowed, profile,
                               _nudge(profile, prompt, domain))
    if domain in _CODE_SET_TABLES:
        return _decide_code_set(domain, _counted(_scan(text), profile), allowed, profile,
                                _nudge(profile, prompt, domain))
    # An unknown domain has no lexicon; answer the same way every time rather than guess.
    return _Decision("This domain has no built-in lexicon, so the first listed code is given.", allowed[0])


# --- malformed answers -------------------------------------------------------------------------------------

def _digest(text: str, domain: str, salt: str) -> bytes:
    # surrogatepass: a post with a stray surrogate must still hash rather than crash the baseline.
    data = f"{domain}\x1f{salt}\x1f{text}".encode("utf-8", errors="surrogatepass")
    return hashlib.sha256(data).digest()


def _is_malformed(digest: bytes, rate: float) -> bool:
    # The first 8 bytes give a uniform fraction in [0, 1): rate 0 never fires, rate 1 always does.
    return int.from_bytes(digest[:8], "big") / 2**64 < rate


def _invalid_code(codes: Sequence[str], digest: bytes) -> str:
    """A code that looks like the catalogue's but is not in it, e.g. LEVEL_9 or TA-10."""
    numbered = [m for m in (re.fullmatch(r"(.*?)(\d+)", code) for code in codes) if m]
    if numbered:
        prefix = numbered[-1].group(1)
        number = max(int(m.group(2)) for m in numbered) + 1 + digest[9] % 5
    else:
        prefix, number = "CODE_", 99
    while f"{prefix}{number}" in codes:
        number += 1
    return f"{prefix}{number}"


def _malformed_coded(decision: _Decision, codes: Sequence[str], digest: bytes) -> str:
    first = decision.payload.split(", ")[0]
    position = codes.index(first) if first in codes else 0
    other = codes[position + 1] if position + 1 < len(codes) else codes[max(position - 1, 0)]
    variants = (
        f"{decision.rationale} Final answer: {decision.payload}",  # forgot the marker
        f"{decision.rationale} Final answer: <<{_invalid_code(codes, digest)}>>",
        f"{decision.rationale} It could be either. Final answer: <<{first} or {other}>>",
        f"{decision.rationale} Final answer: <<>>",
    )
    return variants[digest[8] % len(variants)]


def _malformed_list(decision: _Decision, digest: bytes) -> str:
    items = json.loads(decision.payload)
    variants = (
        f"{decision.rationale} Final answer: {', '.join(items)}",  # forgot the marker
        f"{decision.rationale} Final answer: <<{decision.payload[:-1]}>>",  # unclosed JSON list
        f"{decision.rationale} Final answer: <<[{', '.join(items)}]>>",  # items without quotes
        f"{decision.rationale} Final answer: <<>>",
        f"{decision.rationale} Final answer: <<[]>>",  # valid JSON, but the domain needs at least one item
    )
    return variants[digest[8] % len(variants)]


def _check_rate(malformed_rate: float) -> float:
    # A wrong type is a programming error, not a bad setting, hence TypeError rather than ValueError.
    if isinstance(malformed_rate, bool) or not isinstance(malformed_rate, (int, float)):
        raise TypeError(f"malformed_rate must be a number between 0 and 1, got {malformed_rate!r}")
    if not 0.0 <= malformed_rate <= 1.0:  # also rejects NaN, which fails every comparison
        raise ValueError(f"malformed_rate must be between 0 and 1, got {malformed_rate!r}")
    return float(malformed_rate)


def builtin_answer(
    text: str, *, domain: str, codes: Sequence[str], malformed_rate: float = 0.0, salt: str = "",
    profile: Profile = REFERENCE, prompt: str | None = None,
) -> str:
    """Answer ``domain`` for ``text`` like an LLM would: a short rationale, then the ``<<...>>`` marker last.

    Only codes from ``codes`` are ever returned, in the order of ``codes``. For a deterministic share
    ``malformed_rate`` of (text, domain, salt) inputs the reply is deliberately malformed, so the parsing
    and retry paths can be exercised offline; ``salt`` changes which inputs that share hits. ``profile`` is how
    this annotator reads the lexicon (see Profile); a profile with jitter draws from ``prompt`` (the whole request
    the model would see; the text when not given).
    """
    rate = _check_rate(malformed_rate)
    allowed = _unique(codes)
    decision = _decide(text, domain, allowed, profile, text if prompt is None else prompt)
    if rate > 0.0:
        digest = _digest(text, domain, salt)
        if _is_malformed(digest, rate):
            if domain == "redressal" or not allowed:
                return _malformed_list(decision, digest)
            return _malformed_coded(decision, allowed, digest)
    return f"{decision.rationale} Final answer: <<{decision.payload}>>"
