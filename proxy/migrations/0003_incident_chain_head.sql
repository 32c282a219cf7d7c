-- Schoolgate store, version 3: the head of the incident record's hash chain (alerts/chain.py).
--
-- The chain shows a changed entry (its hash) and an entry deleted in the
-- middle (a gap in the ids, a broken prev_hash link), but deleting the newest
-- entries from the end leaves a shorter chain that is still valid.  So the
-- head (id and hash of the last entry ever appended) is kept apart, in one row
-- moved forward by a trigger in the same transaction as every append, whatever
-- code appends.  `verify_chain` compares the end of the chain with it, and the
-- next entry is sealed after the head, not after the last row left, so entries
-- cut from the end stay a visible gap even after later appends.

CREATE TABLE incident_chain_head (
    one      INTEGER PRIMARY KEY CHECK (one = 1),   -- a single row
    last_id  INTEGER NOT NULL,
    hash     TEXT NOT NULL
);

-- A database from before this version gets its head here, at migration: the
-- current end of its chain, or where retention left it when it purged the
-- whole chain (its anchor), or the empty chain.
INSERT INTO incident_chain_head (one, last_id, hash)
SELECT 1,
       COALESCE((SELECT MAX(id) FROM incident_entries),
                (SELECT CAST(json_extract(value, '$.first_id') AS INTEGER) - 1 FROM meta
                 WHERE key = 'incident_chain_anchor'),
                0),
       COALESCE((SELECT hash FROM incident_entries ORDER BY id DESC LIMIT 1),
                (SELECT json_extract(value, '$.prev_hash') FROM meta WHERE key = 'incident_chain_anchor'),
                '');

CREATE TRIGGER incident_chain_head_follows AFTER INSERT ON incident_entries
BEGIN
    UPDATE incident_chain_head SET last_id = NEW.id, hash = NEW.hash WHERE NEW.id > last_id;
END;

CREATE TRIGGER incident_chain_head_forward_only BEFORE UPDATE ON incident_chain_head
WHEN NEW.last_id <= OLD.last_id
BEGIN
    SELECT RAISE(ABORT, 'the incident chain head only moves forward');
END;

CREATE TRIGGER incident_chain_head_no_delete BEFORE DELETE ON incident_chain_head
BEGIN
    SELECT RAISE(ABORT, 'the incident chain head is kept');
END;
