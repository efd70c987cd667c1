"""The bytes of the pictures posts send (``MediaFile``), kept once per SHA-256.

``keep`` stores what a load rendered (only files not kept yet); ``files`` reads them back for
the dispatcher. A picture is never changed in place: other bytes are another row.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from publisher.media import Prepared
from publisher.store.models import MediaFile


def keep(s: Session, pictures: Iterable[Prepared], now: datetime) -> int:
    """Store the bytes of each file in ``pictures`` not stored yet; how many were added."""
    new = {p.sha256: p for p in pictures if p.data}
    if not new:
        return 0
    have = set(s.scalars(select(MediaFile.sha256).where(MediaFile.sha256.in_(list(new)))))
    for sha, p in new.items():
        if sha not in have:
            s.add(
                MediaFile(
                    sha256=sha,
                    name=p.name,
                    mime=p.mime,
                    width=p.width,
                    height=p.height,
                    size=len(p.data),
                    data=p.data,
                    created_at=now,
                )
            )
    return len(new) - len(have)


def files(s: Session, shas: Iterable[str]) -> dict[str, MediaFile]:
    """The stored files among ``shas``, by SHA-256 (a missing one is simply absent)."""
    wanted = sorted(set(shas))
    if not wanted:
        return {}
    return {f.sha256: f for f in s.scalars(select(MediaFile).where(MediaFile.sha256.in_(wanted)))}
