"""The interface's language: one gettext catalog (``publisher/locale/<lang>/LC_MESSAGES/
publisher.po``, compiled to ``.mo`` beside it), Vietnamese by default, English with
``PUBLISHER_LANG=en``.

The msgids are the English text, with named ``str.format`` fields::

    say(_("Approved {n} post(s) as {who}.").format(n=len(done), who=who))

The language is ``PUBLISHER_LANG`` (``vi`` or ``en``, any case), else Vietnamese: the locale
(``LANG``, ``LC_ALL``…) is not read, as the Department's machines may well run an English one.
Any other value is refused (``LanguageError``, one line). ``use_language`` forces a language
for a block (a test, a request). Identifiers, stored data and logs stay English. Pure: the
standard library only (Babel extracts and compiles the catalog; the compiled ``.mo`` is
read with ``gettext``).
"""

from __future__ import annotations

import gettext
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from pathlib import Path

DOMAIN = "publisher"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
ENV = "PUBLISHER_LANG"
DEFAULT = "vi"
LANGUAGES = ("vi", "en")  # "en" is the msgids themselves: no catalog

_forced: ContextVar[str | None] = ContextVar("publisher_language", default=None)


class LanguageError(ValueError):
    """``PUBLISHER_LANG`` names a language publisher does not speak; ``str()`` is one line."""


def language_from(env: Mapping[str, str]) -> str:
    """The language an environment asks for: ``PUBLISHER_LANG``, else Vietnamese."""
    value = env.get(ENV, "").strip()
    if not value:
        return DEFAULT
    if value.lower() in LANGUAGES:
        return value.lower()
    raise LanguageError(
        f"{ENV}: {value!r} is not a language publisher speaks "
        f"(set {ENV}=vi for Vietnamese, the default, or {ENV}=en for English)"
    )


def current_language() -> str:
    """ "vi" or "en": the language forced by ``use_language``, else the environment's."""
    return _forced.get() or language_from(os.environ)


@contextmanager
def use_language(language: str) -> Iterator[None]:
    """Speak ``language`` ("vi" or "en") inside the block, whatever the environment says."""
    if language not in LANGUAGES:
        raise ValueError(f"{language!r} is not one of {', '.join(LANGUAGES)}")
    token = _forced.set(language)
    try:
        yield
    finally:
        _forced.reset(token)


def catalog_path(language: str, suffix: str = ".mo") -> Path:
    """Where ``language``'s catalog is (``.po`` the source, ``.mo`` what is read)."""
    return LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}{suffix}"


@cache
def _load(language: str) -> gettext.NullTranslations:
    if language == "en":
        return gettext.NullTranslations()
    with catalog_path(language).open("rb") as fh:  # a missing catalog is a broken install
        return gettext.GNUTranslations(fh)


def translations(language: str | None = None) -> gettext.NullTranslations:
    """The catalog of ``language`` (default: the current one): ``GNUTranslations`` of the
    compiled catalog for Vietnamese, ``NullTranslations`` for English; e.g. for Jinja2's
    ``install_gettext_translations``."""
    return _load(language or current_language())


def _(msgid: str) -> str:
    """``msgid`` (English) in the current language."""
    return translations().gettext(msgid)


def ngettext(singular: str, plural: str, n: int) -> str:
    """The singular or plural msgid, as ``n`` asks, in the current language."""
    return translations().ngettext(singular, plural, n)


def N_(msgid: str) -> str:
    """Mark ``msgid`` for the catalog without translating it yet (a table built at import
    time): translate it with ``_`` where it is used."""
    return msgid
