"""Languages a cell may name: ISO 639-1 codes, language tags and English names.

`language_code` turns what HR systems and admins write (``fr``, ``fr-CA``,
``French``, ``English (United States)``, Java's withdrawn ``iw``) into the
two-letter code a person's language is stored as.
"""

from __future__ import annotations

import re

from core.intake.mapping import normalise

# ISO 639-1: all 184 codes, bh (Bihari, a collective code) included; ";" separates
# other English names for the same code.
_ISO_639_1 = """
aa Afar|ab Abkhazian|ae Avestan|af Afrikaans|ak Akan|am Amharic|an Aragonese|ar Arabic
as Assamese|av Avaric|ay Aymara|az Azerbaijani|ba Bashkir|be Belarusian|bg Bulgarian
bi Bislama|bh Bihari;Bihari languages|bm Bambara|bn Bengali;Bangla|bo Tibetan|br Breton|bs Bosnian
ca Catalan;Valencian|ce Chechen|ch Chamorro|co Corsican|cr Cree|cs Czech
cu Church Slavic;Church Slavonic;Old Church Slavonic;Old Slavonic;Old Bulgarian
cv Chuvash|cy Welsh|da Danish|de German|dv Divehi;Dhivehi;Maldivian|dz Dzongkha|ee Ewe
el Greek;Modern Greek|en English|eo Esperanto|es Spanish;Castilian|et Estonian|eu Basque
fa Persian;Farsi|ff Fulah;Fula|fi Finnish|fj Fijian|fo Faroese|fr French
fy Western Frisian;Frisian|ga Irish|gd Gaelic;Scottish Gaelic|gl Galician|gn Guarani
gu Gujarati|gv Manx|ha Hausa|he Hebrew|hi Hindi|ho Hiri Motu|hr Croatian
ht Haitian;Haitian Creole|hu Hungarian|hy Armenian|hz Herero|ia Interlingua|id Indonesian
ie Interlingue;Occidental|ig Igbo|ii Sichuan Yi;Nuosu|ik Inupiaq|io Ido|is Icelandic
it Italian|iu Inuktitut|ja Japanese|jv Javanese|ka Georgian|kg Kongo|ki Kikuyu;Gikuyu
kj Kuanyama;Kwanyama|kk Kazakh|kl Kalaallisut;Greenlandic|km Khmer;Central Khmer
kn Kannada|ko Korean|kr Kanuri|ks Kashmiri|ku Kurdish|kv Komi|kw Cornish|ky Kyrgyz;Kirghiz
la Latin|lb Luxembourgish;Letzeburgesch|lg Ganda;Luganda|li Limburgish;Limburgan;Limburger
ln Lingala|lo Lao|lt Lithuanian|lu Luba-Katanga|lv Latvian|mg Malagasy|mh Marshallese
mi Maori|mk Macedonian|ml Malayalam|mn Mongolian|mr Marathi|ms Malay|mt Maltese|my Burmese
na Nauru|nb Norwegian Bokmål;Bokmål|nd North Ndebele|ne Nepali|ng Ndonga|nl Dutch;Flemish
nn Norwegian Nynorsk;Nynorsk|no Norwegian|nr South Ndebele|nv Navajo;Navaho
ny Chichewa;Chewa;Nyanja|oc Occitan|oj Ojibwa;Ojibwe|om Oromo|or Oriya;Odia
os Ossetian;Ossetic|pa Punjabi;Panjabi|pi Pali|pl Polish|ps Pashto;Pushto|pt Portuguese
qu Quechua|rm Romansh|rn Rundi;Kirundi|ro Romanian;Moldavian;Moldovan|ru Russian
rw Kinyarwanda|sa Sanskrit|sc Sardinian|sd Sindhi|se Northern Sami|sg Sango
si Sinhala;Sinhalese|sk Slovak|sl Slovenian;Slovene|sm Samoan|sn Shona|so Somali
sq Albanian|sr Serbian|ss Swati;Swazi|st Southern Sotho;Sesotho|su Sundanese|sv Swedish
sw Swahili|ta Tamil|te Telugu|tg Tajik|th Thai|ti Tigrinya|tk Turkmen|tl Tagalog
tn Tswana|to Tongan;Tonga|tr Turkish|ts Tsonga|tt Tatar|tw Twi|ty Tahitian|ug Uyghur;Uighur
uk Ukrainian|ur Urdu|uz Uzbek|ve Venda|vi Vietnamese|vo Volapük|wa Walloon|wo Wolof
xh Xhosa|yi Yiddish|yo Yoruba|za Zhuang;Chuang|zh Chinese;Mandarin|zu Zulu
"""
# Withdrawn codes that old systems (Java's Locale, for one) still write.
_RETIRED_CODES = {"iw": "he", "in": "id", "ji": "yi", "jw": "jv", "mo": "ro", "sh": "sr"}


def _parse_languages() -> tuple[dict[str, str], dict[str, str]]:
    names: dict[str, str] = {}
    by_name: dict[str, str] = {}
    for entry in re.split(r"[|\n]", _ISO_639_1.strip()):
        code, _, alternatives = entry.partition(" ")
        names[code] = alternatives.split(";")[0]
        for name in alternatives.split(";"):
            by_name[normalise(name)] = code
    return names, by_name


LANGUAGE_NAMES, _LANGUAGE_BY_NAME = _parse_languages()
_LANGUAGE_TAG = re.compile(r"([a-z]{2})(?:[-_][a-z0-9]{1,8})*")

_PARENTHESES = re.compile(r"\([^()]*\)")


def language_code(text: str) -> str | None:
    """The ISO 639-1 code ``text`` names (a code, a tag such as ``pt_BR``, or a name), or None."""
    if (tag := _LANGUAGE_TAG.fullmatch(text.lower())) is not None:
        code = _RETIRED_CODES.get(tag.group(1), tag.group(1))
        if code in LANGUAGE_NAMES:
            return code
    # "English (United States)", as HR systems write it, names English.
    return _LANGUAGE_BY_NAME.get(normalise(_PARENTHESES.sub("", text)))
