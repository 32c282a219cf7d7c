-- Schoolgate store, version 1.
--
-- Conventions
--   * `ts` columns (visits, dns_queries) are integer unix seconds (UTC).
--   * every `*_at` column is ISO 8601 UTC text as written by proxy.db.utc_iso(),
--     e.g. '2026-01-05T09:30:00+00:00', so text comparison orders it in time.
--   * visits and dns_queries store strings through dictionaries (Pi-hole's
--     domain_by_id idea): one small integer per row instead of the text.
--     Dictionary rows are never deleted while the service runs: the writer
--     caches their ids.  They carry no FOREIGN KEY to keep inserts cheap.

-- String dictionaries ------------------------------------------------------
CREATE TABLE hosts        (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE paths        (id INTEGER PRIMARY KEY, text TEXT NOT NULL UNIQUE);
CREATE TABLE principals   (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE devices_seen (id INTEGER PRIMARY KEY, key  TEXT NOT NULL UNIQUE);
CREATE TABLE rules        (id INTEGER PRIMARY KEY, text TEXT NOT NULL UNIQUE);
CREATE TABLE categorysets (id INTEGER PRIMARY KEY, text TEXT NOT NULL UNIQUE);
CREATE TABLE terms        (id INTEGER PRIMARY KEY, text TEXT NOT NULL UNIQUE);
CREATE TABLE groups       (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE addresses    (id INTEGER PRIMARY KEY, ip   TEXT NOT NULL UNIQUE);
CREATE TABLE methods      (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE schemes      (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE upstreams    (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);

-- One row per visit (written by proxy.visitwriter.BatchWriter) --------------
-- flags: 1 = page view, 2 = flagged, 4 = TLS intercepted.  action: 0 allow, 1 block.
CREATE TABLE visits (
    id          INTEGER PRIMARY KEY,
    ts          INTEGER NOT NULL,
    user_id     INTEGER,
    group_id    INTEGER NOT NULL,
    device_id   INTEGER,
    ip_id       INTEGER NOT NULL,
    method_id   INTEGER NOT NULL,
    scheme_id   INTEGER NOT NULL,
    host_id     INTEGER NOT NULL,
    path_id     INTEGER NOT NULL,
    catset_id   INTEGER,
    action      INTEGER NOT NULL,
    rule_id     INTEGER NOT NULL,
    term_id     INTEGER,
    bytes       INTEGER NOT NULL,
    flags       INTEGER NOT NULL,
    status      INTEGER
);
CREATE INDEX visits_ts ON visits(ts);
CREATE INDEX visits_user_ts ON visits(user_id, ts);

-- One row per DNS query (written by the same BatchWriter) -------------------
CREATE TABLE dns_queries (
    id          INTEGER PRIMARY KEY,
    ts          INTEGER NOT NULL,
    ip_id       INTEGER NOT NULL,
    device_id   INTEGER,
    user_id     INTEGER,
    group_id    INTEGER NOT NULL,
    host_id     INTEGER NOT NULL,
    qtype       INTEGER NOT NULL,
    action      INTEGER NOT NULL,
    rule_id     INTEGER NOT NULL,
    upstream_id INTEGER,
    latency_ms  INTEGER,
    rcode       INTEGER
);
CREATE INDEX dns_queries_ts ON dns_queries(ts);

-- The access register ------------------------------------------------------
CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    full_name     TEXT NOT NULL DEFAULT '',
    role          TEXT NOT NULL CHECK (role IN ('pupil', 'staff', 'volunteer', 'visitor')),
    group_name    TEXT NOT NULL,
    year_group    TEXT NOT NULL DEFAULT '',
    consent       INTEGER NOT NULL DEFAULT 0 CHECK (consent IN (0, 1)),
    consent_at    TEXT,
    status        TEXT NOT NULL DEFAULT 'active'
                  CHECK (status IN ('active', 'banned', 'revoked')),
    status_until  TEXT,
    status_reason TEXT NOT NULL DEFAULT '',
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);

CREATE TABLE devices (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    mac           TEXT,
    network       TEXT NOT NULL DEFAULT '',
    device_class  TEXT NOT NULL CHECK (device_class IN ('school_shared', 'school_single_user',
                  'loaned', 'staff_owned', 'visitor_owned', 'pupil_owned')),
    assigned_user TEXT REFERENCES users(username) ON UPDATE CASCADE ON DELETE SET NULL,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
CREATE INDEX devices_mac ON devices(mac);

-- Teachers' time-limited overrides -----------------------------------------
CREATE TABLE overrides (
    id          INTEGER PRIMARY KEY,
    group_name  TEXT NOT NULL,
    category    TEXT,
    domain      TEXT,
    starts_at   TEXT NOT NULL,
    ends_at     TEXT NOT NULL,
    by          TEXT NOT NULL,
    reason      TEXT NOT NULL DEFAULT '',
    revoked_at  TEXT,
    CHECK (category IS NOT NULL OR domain IS NOT NULL)
);
CREATE INDEX overrides_ends ON overrides(ends_at);

-- Incidents (safeguarding) -------------------------------------------------
CREATE TABLE incidents (
    id          INTEGER PRIMARY KEY,
    ref         TEXT NOT NULL UNIQUE,
    opened_at   TEXT NOT NULL,
    kind        TEXT NOT NULL,
    severity    TEXT NOT NULL DEFAULT '',
    user_name   TEXT,
    device_name TEXT,
    group_name  TEXT,
    status      TEXT NOT NULL DEFAULT 'open'
);
CREATE INDEX incidents_opened ON incidents(opened_at);

-- Append-only, hash-chained history of an incident.
CREATE TABLE incident_entries (
    id          INTEGER PRIMARY KEY,
    incident_id INTEGER NOT NULL REFERENCES incidents(id),
    at          TEXT NOT NULL,
    by          TEXT NOT NULL,
    action      TEXT NOT NULL,
    outcome     TEXT NOT NULL DEFAULT '',
    detail      TEXT NOT NULL DEFAULT '{}',
    prev_hash   TEXT NOT NULL DEFAULT '',
    hash        TEXT NOT NULL
);
CREATE INDEX incident_entries_incident ON incident_entries(incident_id, id);
CREATE TRIGGER incident_entries_no_update BEFORE UPDATE ON incident_entries
BEGIN
    SELECT RAISE(ABORT, 'incident_entries is append-only');
END;
CREATE TRIGGER incident_entries_no_delete BEFORE DELETE ON incident_entries
BEGIN
    SELECT RAISE(ABORT, 'incident_entries is append-only');
END;

-- Durable alert outbox -----------------------------------------------------
CREATE TABLE alert_outbox (
    id              INTEGER PRIMARY KEY,
    created_at      TEXT NOT NULL,
    kind            TEXT NOT NULL,
    severity        TEXT NOT NULL DEFAULT '',
    dedup_key       TEXT,
    subject         TEXT NOT NULL,
    body_text       TEXT NOT NULL,
    body_html       TEXT,
    recipients      TEXT NOT NULL DEFAULT '[]',
    status          TEXT NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'sent', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT,
    last_error      TEXT,
    sent_at         TEXT,
    incident_id     INTEGER REFERENCES incidents(id)
);
CREATE INDEX alert_outbox_due ON alert_outbox(status, next_attempt_at);
CREATE INDEX alert_outbox_dedup ON alert_outbox(dedup_key, created_at);

-- Review requests sent from block pages ------------------------------------
CREATE TABLE review_requests (
    id          INTEGER PRIMARY KEY,
    created_at  TEXT NOT NULL,
    ref         TEXT NOT NULL DEFAULT '',
    url         TEXT NOT NULL,
    host        TEXT NOT NULL,
    user_name   TEXT,
    device_name TEXT,
    client_ip   TEXT,
    group_name  TEXT,
    categories  TEXT NOT NULL DEFAULT '',
    reason_text TEXT NOT NULL DEFAULT '',
    status      TEXT NOT NULL DEFAULT 'open'
                CHECK (status IN ('open', 'approved', 'rejected')),
    decided_at  TEXT,
    decided_by  TEXT
);
CREATE INDEX review_requests_status ON review_requests(status, created_at);

-- Local category tuning (schoolgate lists allow|deny) -----------------------
CREATE TABLE list_entries (
    id          INTEGER PRIMARY KEY,
    domain      TEXT NOT NULL,
    category    TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('allow', 'deny')),
    reason      TEXT NOT NULL DEFAULT '',
    by          TEXT NOT NULL,
    at          TEXT NOT NULL,
    removed_at  TEXT
);
CREATE INDEX list_entries_domain ON list_entries(domain);

-- Audit trail of every change (append-only) ---------------------------------
CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY,
    at          TEXT NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    subject     TEXT NOT NULL,
    details     TEXT NOT NULL DEFAULT '{}',
    reason      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_at ON audit_log(at);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

-- Small state: last report run, counters such as visits_dropped --------------
CREATE TABLE meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID;
INSERT INTO meta(key, value) VALUES ('visits_dropped', 0), ('dns_queries_dropped', 0);

-- Readable views for reports and ad-hoc queries (no storage cost) ------------
CREATE VIEW visit_view AS
SELECT v.id, v.ts, p.name AS user_name, g.name AS group_name, d.key AS device,
       a.ip AS client_ip, m.name AS method, s.name AS scheme, h.name AS host,
       pa.text AS path, COALESCE(c.text, '') AS categories,
       CASE v.action WHEN 1 THEN 'block' ELSE 'allow' END AS action,
       r.text AS rule, t.text AS search_term, v.bytes,
       (v.flags & 1) != 0 AS page_view, (v.flags & 2) != 0 AS flagged,
       (v.flags & 4) != 0 AS intercepted, v.status, v.user_id, v.host_id
FROM visits v
LEFT JOIN principals p ON p.id = v.user_id
JOIN groups g ON g.id = v.group_id
LEFT JOIN devices_seen d ON d.id = v.device_id
JOIN addresses a ON a.id = v.ip_id
JOIN methods m ON m.id = v.method_id
JOIN schemes s ON s.id = v.scheme_id
JOIN hosts h ON h.id = v.host_id
JOIN paths pa ON pa.id = v.path_id
LEFT JOIN categorysets c ON c.id = v.catset_id
JOIN rules r ON r.id = v.rule_id
LEFT JOIN terms t ON t.id = v.term_id;

CREATE VIEW dns_query_view AS
SELECT q.id, q.ts, a.ip AS client_ip, d.key AS device, p.name AS user_name,
       g.name AS group_name, h.name AS qname, q.qtype,
       CASE q.action WHEN 1 THEN 'block' ELSE 'allow' END AS action,
       r.text AS rule, u.name AS upstream, q.latency_ms, q.rcode, q.user_id, q.host_id
FROM dns_queries q
JOIN addresses a ON a.id = q.ip_id
LEFT JOIN devices_seen d ON d.id = q.device_id
LEFT JOIN principals p ON p.id = q.user_id
JOIN groups g ON g.id = q.group_id
JOIN hosts h ON h.id = q.host_id
JOIN rules r ON r.id = q.rule_id
LEFT JOIN upstreams u ON u.id = q.upstream_id;
