"""The web app's words: English msgids, translated from ``publisher/locale/vi/LC_MESSAGES/web.po``
(read with Babel when first needed), Vietnamese unless ``PUBLISHER_LANG=en``.

Until the interface's shared catalog (``publisher.i18n``) is on this branch, the web app keeps
its own: the same conventions (msgids in English, ``PUBLISHER_LANG`` vi|en, Vietnamese by
default), so its strings can move into ``publisher.po`` unchanged.
"""

from __future__ import annotations

import gettext
import io
import os
from functools import cache
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

CATALOG = Path(__file__).resolve().parents[1] / "locale" / "vi" / "LC_MESSAGES" / "web.po"


def language() -> str:
    """ "vi" or "en": ``PUBLISHER_LANG`` when it says English, else Vietnamese."""
    return "en" if os.environ.get("PUBLISHER_LANG", "").strip().lower() == "en" else "vi"


@cache
def catalog(lang: str) -> gettext.NullTranslations:
    """The translations of ``lang`` (English: the msgids themselves)."""
    if lang == "en":
        return gettext.NullTranslations()
    with CATALOG.open("rb") as fh:
        messages = read_po(fh, locale=lang)
    compiled = io.BytesIO()
    write_mo(compiled, messages)
    compiled.seek(0)
    return Translations(compiled)


def _(msgid: str, **values: object) -> str:
    """``msgid`` in the current language, ``%(name)s`` fields filled from ``values``."""
    text = catalog(language()).gettext(msgid)
    return text % values if values else text


def ngettext(singular: str, plural: str, n: int, **values: object) -> str:
    text = catalog(language()).ngettext(singular, plural, n)
    return text % {"num": n, **values}
