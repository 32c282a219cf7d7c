-- Schoolgate store, version 2: alerts and the incident register (alerts/).
--
-- Every flagged hit is kept (alert_hits), whether or not an email was sent for
-- it on its own: grouping, the hourly cap and the digest decide which email
-- reports it (outbox_id), and an immediate hit is attached to its incident.
-- The illegal tier's hits never hold a URL or host (url = '').

CREATE TABLE alert_hits (
    id           INTEGER PRIMARY KEY,
    at           TEXT NOT NULL,
    kind         TEXT NOT NULL,        -- illegal | category | watchlist | circumvention | bare_ip | repeated
    severity     TEXT NOT NULL CHECK (severity IN ('immediate', 'digest')),
    group_key    TEXT NOT NULL,        -- who | kind | category: the hits one email groups
    who_key      TEXT NOT NULL,        -- user:NAME, device:NAME or ip:ADDRESS
    category     TEXT NOT NULL DEFAULT '',
    categories   TEXT NOT NULL DEFAULT '',
    user_name    TEXT,
    role         TEXT,
    device_name  TEXT,
    device_class TEXT NOT NULL DEFAULT '',
    client_ip    TEXT NOT NULL DEFAULT '',
    group_name   TEXT NOT NULL DEFAULT '',
    network      TEXT,
    url          TEXT NOT NULL DEFAULT '',
    search_term  TEXT NOT NULL DEFAULT '',
    watch_topic  TEXT NOT NULL DEFAULT '',
    action       TEXT NOT NULL DEFAULT '',
    rule         TEXT NOT NULL DEFAULT '',
    reason       TEXT NOT NULL DEFAULT '',
    attempts     INTEGER NOT NULL DEFAULT 1,   -- a 'repeated' hit stands for this many blocked attempts
    incident_id  INTEGER REFERENCES incidents(id),
    outbox_id    INTEGER REFERENCES alert_outbox(id)
);
CREATE INDEX alert_hits_unreported ON alert_hits(severity, group_key, id) WHERE outbox_id IS NULL;
CREATE INDEX alert_hits_incident ON alert_hits(incident_id);
CREATE INDEX alert_hits_outbox ON alert_hits(outbox_id);
CREATE INDEX alert_hits_at ON alert_hits(at);

-- Incidents: who (for joining hits of one user/device and kind), activity.
ALTER TABLE incidents ADD COLUMN who_key TEXT NOT NULL DEFAULT '';
ALTER TABLE incidents ADD COLUMN role TEXT;
ALTER TABLE incidents ADD COLUMN device_class TEXT NOT NULL DEFAULT '';
ALTER TABLE incidents ADD COLUMN client_ip TEXT NOT NULL DEFAULT '';
ALTER TABLE incidents ADD COLUMN last_at TEXT;
ALTER TABLE incidents ADD COLUMN hits INTEGER NOT NULL DEFAULT 0;
CREATE INDEX incidents_join ON incidents(who_key, kind, status, last_at);

-- Outbox: a stable Message-ID per row (duplicates after a crash are recognisable),
-- and when the last send began (a row sent but not yet marked lies in that window).
ALTER TABLE alert_outbox ADD COLUMN message_id TEXT;
ALTER TABLE alert_outbox ADD COLUMN attempted_at TEXT;
ALTER TABLE alert_outbox ADD COLUMN hits INTEGER NOT NULL DEFAULT 0;
