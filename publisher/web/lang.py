"""The web app's words, from the interface's one catalog (``publisher.i18n``: English msgids,
Vietnamese unless ``PUBLISHER_LANG=en``). The pages' msgids carry ``%(name)s`` fields, as Jinja's
gettext does: ``_`` and ``ngettext`` here fill them from keyword arguments."""

from __future__ import annotations

from publisher import i18n


def language() -> str:
    """ "vi" or "en": the interface's language (``PUBLISHER_LANG``, Vietnamese by default)."""
    return i18n.current_language()


def _(msgid: str, **values: object) -> str:
    """``msgid`` in the current language, ``%(name)s`` fields filled from ``values``."""
    text = i18n.translations().gettext(msgid)
    return text % values if values else text


def ngettext(singular: str, plural: str, n: int, **values: object) -> str:
    text = i18n.translations().ngettext(singular, plural, n)
    return text % {"num": n, **values}
