"""From stored hits to emails in the outbox: grouping, the hourly cap, the summary and the digest.

`Composer.compose(conn, now)` runs in one write transaction and is idempotent
(it only looks at hits no email reports yet), so it can run every second, after
a restart, or from a test with a hand-driven clock:

* immediate hits, per person + kind + category (`Hit.group_key`):
  - no email for that key within the grouping window: an **alert** now, with a
    count of all its waiting hits;
  - otherwise the hits wait, and at the end of the window one **follow-up**
    email reports them with a count (so a storm from one pupil is one email
    per window, and the first one is never delayed);
* at most `max_emails_per_hour` alerts and follow-ups in any 60 minutes; beyond
  it the hits are held and one **summary** email per grouping window lists
  them all with counts and incident references (the illegal tier is never
  held back by the cap);
* digest hits wait for the next digest time (the top of the hour, or the end
  of the school day for `daily`) and go out as one **digest** email.
Every hit is kept in `alert_hits` and counted on its incident whatever email
reports it.
"""
from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence

import aiosqlite

from alerts import outbox
from alerts.hits import Hit
from alerts.outbox import StoredHit
from alerts.render import Renderer
from alerts.views import alert_view
from config.schema import Settings
from proxy.db import transaction

logger = logging.getLogger(__name__)

HOUR = dt.timedelta(hours=1)
INDIVIDUAL = ("alert", "followup")


class Composer:
    def __init__(self, settings: Settings, renderer: Renderer | None = None) -> None:
        self.settings = settings
        self.alerts = settings.alerts
        self.tz = settings.school.timezone
        self.renderer = renderer or Renderer(settings.school.name, self.tz)
        self.window = dt.timedelta(minutes=self.alerts.group_window_minutes)

    async def compose(self, conn: aiosqlite.Connection, now: dt.datetime) -> int:
        """Write the emails that are due at `now`; returns how many.

        Most passes find no hit waiting: they read, and never take the write lock (the service runs this
        twice a second, and a write transaction each time would keep the proxy's own writes waiting).
        """
        if not await outbox.any_unreported(conn):
            return 0
        async with transaction(conn):
            held: list[str] = []
            made = await self._immediate(conn, now, held)
            made += await self._summary(conn, now, held)
            made += await self._digest(conn, now)
        return made

    async def _immediate(self, conn: aiosqlite.Connection, now: dt.datetime, held: list[str]) -> int:
        waiting = await outbox.waiting_keys(conn, "immediate")
        if not waiting:
            return 0
        sent_in_hour = await outbox.emails_since(conn, INDIVIDUAL, now - HOUR)
        lasts = await outbox.last_emails_by_key(conn, INDIVIDUAL, [w.group_key for w in waiting])
        made = 0
        for w in waiting:
            last = lasts.get(w.group_key)
            followup = last is not None and w.first_at < last + self.window
            if last is not None and followup and now < last + self.window:
                continue                                # the window is still open: keep counting
            if not w.illegal and sent_in_hour >= self.alerts.max_emails_per_hour:
                held.append(w.group_key)
                continue
            members = await outbox.unreported_for(conn, "immediate", [w.group_key])
            await self._alert(conn, now, w.group_key, members, followup)
            sent_in_hour += 1
            made += 1
        return made

    async def _alert(self, conn: aiosqlite.Connection, now: dt.datetime, key: str, members: Sequence[StoredHit],
                     followup: bool) -> None:
        hits = [m.hit for m in members]
        incident_id = next((m.incident_id for m in reversed(members) if m.incident_id is not None), None)
        refs = await outbox.references(conn, [incident_id] if incident_id is not None else [])
        group = self.settings.groups.get(hits[0].group)
        view = alert_view(hits, reference=refs.get(incident_id, "") if incident_id else "", tz=self.tz,
                          group_is_pupil=group.is_pupil if group else False, school=self.settings.school.name,
                          followup=followup)
        email = self.renderer.alert(view)
        await outbox.enqueue(conn, now=now, kind="followup" if followup else "alert", severity="immediate",
                             dedup_key=key, subject=email.subject, text=email.text, html=email.html,
                             recipients=self.alerts.recipients, sender=self.alerts.sender,
                             hit_ids=[m.id for m in members], incident_id=incident_id, hits=view.count)

    async def _pairs(self, conn: aiosqlite.Connection, members: Sequence[StoredHit]) -> list[tuple[Hit, str]]:
        refs = await outbox.references(conn, [m.incident_id for m in members if m.incident_id is not None])
        return [(m.hit, refs.get(m.incident_id, "") if m.incident_id else "") for m in members]

    async def _summary(self, conn: aiosqlite.Connection, now: dt.datetime, held: list[str]) -> int:
        if not held:
            return 0
        last = await outbox.last_email(conn, ("summary",))
        if last is not None and now < last + self.window:
            return 0
        members = await outbox.unreported_for(conn, "immediate", held)
        pairs = await self._pairs(conn, members)
        email = self.renderer.summary(pairs, cap=self.alerts.max_emails_per_hour, since=members[0].hit.at, now=now)
        await outbox.enqueue(conn, now=now, kind="summary", severity="immediate",
                             dedup_key=f"summary:{int(now.timestamp())}",
                             subject=email.subject, text=email.text, html=email.html,
                             recipients=self.alerts.recipients, sender=self.alerts.sender,
                             hit_ids=[m.id for m in members], hits=sum(h.attempts for h, _ in pairs))
        logger.warning("alert cap of %d emails an hour reached: %d hits summarised in one email",
                       self.alerts.max_emails_per_hour, len(members))
        return 1

    async def _digest(self, conn: aiosqlite.Connection, now: dt.datetime) -> int:
        cut = self.last_digest_time(now)
        oldest = await outbox.oldest_unreported(conn, "digest")
        if oldest is None or oldest >= cut:
            return 0
        due = [m for m in await outbox.unreported(conn, "digest") if m.hit.at < cut]
        start = min(m.hit.at for m in due)
        pairs = await self._pairs(conn, due)
        email = self.renderer.digest(pairs, start=start, end=cut, every=self.alerts.digest_every)
        await outbox.enqueue(conn, now=now, kind="digest", severity="digest", dedup_key=f"digest:{cut.isoformat()}",
                             subject=email.subject, text=email.text, html=email.html,
                             recipients=self.alerts.digest_recipients or self.alerts.recipients,
                             sender=self.alerts.sender, hit_ids=[m.id for m in due],
                             hits=sum(h.attempts for h, _ in pairs))
        return 1

    def last_digest_time(self, now: dt.datetime) -> dt.datetime:
        """The latest digest time at or before `now`: the hour, or the end of the school day (daily)."""
        local = now.astimezone(self.tz)
        if self.alerts.digest_every == "hourly":
            return local.replace(minute=0, second=0, microsecond=0).astimezone(dt.UTC)
        end = self.settings.school.hours.end
        today = dt.datetime.combine(local.date(), end, tzinfo=self.tz)
        if today > local:
            today = dt.datetime.combine(local.date() - dt.timedelta(days=1), end, tzinfo=self.tz)
        return today.astimezone(dt.UTC)

