"""UT1 categories, the UK "appropriate filtering" categories, and plain words.

The UK Safer Internet Centre's list of what a school filter must manage:
illegal content, discrimination, drugs / substance abuse, extremism,
gambling, malware / hacking, pornography, piracy and copyright theft,
self-harm, violence.  `UK_CATEGORY` maps every UT1 category (all of those in
UT1's `global_usage`, their aliases, and our own built-in and illegal-tier
names) to one of them, or to None where none applies.  UT1's names are kept
for policy; this mapping is for reports and for `lookup --json`.

`describe(category)` gives words a teacher and a seven-year-old understand,
for block pages and reports.
"""
from __future__ import annotations

import logging

logger = logging.getLogger(__name__)

ILLEGAL_CONTENT = "illegal content"
DISCRIMINATION = "discrimination"
DRUGS = "drugs / substance abuse"
EXTREMISM = "extremism"
GAMBLING = "gambling"
MALWARE = "malware / hacking"
PORNOGRAPHY = "pornography"
PIRACY = "piracy and copyright theft"
SELF_HARM = "self-harm"
VIOLENCE = "violence"
UK_CATEGORIES = (ILLEGAL_CONTENT, DISCRIMINATION, DRUGS, EXTREMISM, GAMBLING, MALWARE,
                 PORNOGRAPHY, PIRACY, SELF_HARM, VIOLENCE)

ILLEGAL_TIER = frozenset({"iwf", "ctiru"})

UK_CATEGORY: dict[str, str | None] = {
    # illegal tier (licensed feeds)
    "iwf": ILLEGAL_CONTENT, "ctiru": ILLEGAL_CONTENT,
    # UT1 (global_usage) and its aliases
    "adult": PORNOGRAPHY, "porn": PORNOGRAPHY, "mixed_adult": PORNOGRAPHY,
    "agressif": DISCRIMINATION, "aggressive": DISCRIMINATION, "violence": DISCRIMINATION,
    "dangerous_material": VIOLENCE,
    "drogue": DRUGS, "drugs": DRUGS,
    "gambling": GAMBLING, "arjel": GAMBLING,
    "malware": MALWARE, "phishing": MALWARE, "hacking": MALWARE, "ddos": MALWARE,
    "cryptojacking": MALWARE, "stalkerware": MALWARE, "dialer": MALWARE,
    "warez": PIRACY,
    "audio-video": None, "blog": None, "cleaning": None, "download": None, "financial": None,
    "forums": None, "mail": None, "liste_bu": None, "exceptions_liste_bu": None,
    "liste_blanche": None, "mobile-phone": None, "publicite": None, "ads": None, "radio": None,
    "redirector": None, "proxy": None, "strict_redirector": None, "strong_redirector": None,
    "tricheur": None, "tricheur_pix": None, "examen_pix": None, "webmail": None, "games": None,
    "educational_games": None, "filehosting": None, "reaffected": None,
    "sexual_education": None, "shopping": None, "dating": None, "marketingware": None,
    "astrology": None, "sect": None, "celebrity": None, "manga": None, "child": None,
    "press": None, "chat": None, "remote-control": None, "social_networks": None,
    "jobsearch": None, "sports": None, "bank": None, "cooking": None, "lingerie": None,
    "translation": None, "bitcoin": None, "update": None, "associations_religieuses": None,
    "shortener": None, "vpn": None, "doh": None, "residential-proxies": None, "fakenews": None,
    "dynamic-dns": None, "webhosting": None, "ai": None, "special": None,
    # built-in lists of our own
    "searchengines": None, "local_allow": None,
}

_WORDS: dict[str, str] = {
    "iwf": "illegal images of children (blocked by law)",
    "ctiru": "terrorist material (blocked by law)",
    "adult": "adult content", "porn": "adult content",
    "mixed_adult": "sites with some adult content",
    "agressif": "hate and bullying", "aggressive": "hate and bullying",
    "violence": "hate and bullying",
    "dangerous_material": "how to make dangerous things",
    "drogue": "drugs", "drugs": "drugs",
    "gambling": "gambling and betting", "arjel": "gambling and betting",
    "malware": "sites that can harm your computer", "phishing": "sites that try to trick you",
    "hacking": "breaking into computers", "ddos": "attacking websites",
    "cryptojacking": "sites that secretly use your computer",
    "stalkerware": "apps for spying on people", "dialer": "sites that can run up phone bills",
    "warez": "copied games, films and software",
    "audio-video": "music and videos", "blog": "blogs", "cleaning": "computer clean-up tools",
    "download": "downloads", "financial": "money and finance", "forums": "forums",
    "mail": "forums", "liste_bu": "library and learning sites",
    "exceptions_liste_bu": "library and learning sites", "liste_blanche": "sites allowed for everyone",
    "mobile-phone": "phone ringtones and extras", "publicite": "adverts", "ads": "adverts",
    "radio": "internet radio",
    "redirector": "sites that hide where you are going",
    "proxy": "sites that hide where you are going",
    "strict_redirector": "sites that hide where you are going",
    "strong_redirector": "sites that hide where you are going",
    "vpn": "sites that hide where you are going",
    "residential-proxies": "sites that hide where you are going",
    "doh": "secret ways of finding websites",
    "tricheur": "cheating in tests", "tricheur_pix": "cheating in tests",
    "examen_pix": "exam sites", "webmail": "email", "games": "games",
    "educational_games": "learning games", "filehosting": "file sharing",
    "reaffected": "sites that changed owner", "sexual_education": "growing up and sex education",
    "shopping": "shopping", "dating": "dating", "marketingware": "pushy marketing",
    "astrology": "horoscopes", "sect": "cults", "celebrity": "celebrity gossip",
    "manga": "manga and cartoons", "child": "sites for children", "press": "news",
    "chat": "chat", "remote-control": "controlling a computer from far away",
    "social_networks": "social media", "jobsearch": "jobs", "sports": "sport",
    "bank": "banking", "cooking": "cooking", "lingerie": "underwear shops",
    "translation": "translation", "bitcoin": "bitcoin", "update": "software updates",
    "associations_religieuses": "religious groups", "shortener": "short links",
    "fakenews": "fake news", "dynamic-dns": "home-made web addresses",
    "webhosting": "website hosting", "ai": "AI chat and tools", "special": "other",
    "searchengines": "search engines", "local_allow": "sites the school allows",
}


def uk_category(category: str) -> str | None:
    """The UK filtering category a category falls under, or None."""
    return UK_CATEGORY.get(category)


def uk_categories(categories: frozenset[str] | set[str] | list[str]) -> list[str]:
    """The distinct UK categories of several categories, in the UK list's order."""
    found = {UK_CATEGORY.get(c) for c in categories}
    return [uk for uk in UK_CATEGORIES if uk in found]


def describe(category: str) -> str:
    """Plain words for a category ("games", "adult content"...); the name itself if unknown."""
    return _WORDS.get(category, category.replace("_", " ").replace("-", " "))
