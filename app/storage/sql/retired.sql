-- What older programs installed and this one no longer has. Until issue 21 people wrote the
-- tables themselves and a trigger on each checked the write; now people hold no write privilege
-- at all and every write is a server function (api_*.sql), so the triggers go.
DROP TRIGGER IF EXISTS hd_guard ON decisions;
DROP TRIGGER IF EXISTS hd_guard ON hash_list;
DROP TRIGGER IF EXISTS hd_guard ON audit_events;
DROP TRIGGER IF EXISTS hd_guard ON items;
DROP TRIGGER IF EXISTS hd_guard ON second_reviews;
DROP TRIGGER IF EXISTS hd_guard ON signals;
DROP TRIGGER IF EXISTS hd_guard ON sightings;
DROP TRIGGER IF EXISTS hd_guard ON hash_list_feedback;
DROP TRIGGER IF EXISTS hd_guard ON exposure_events;
DROP TRIGGER IF EXISTS hd_guard ON comfort_preferences;
DROP FUNCTION IF EXISTS hd_guard_decisions();
DROP FUNCTION IF EXISTS hd_guard_hash_list();
DROP FUNCTION IF EXISTS hd_guard_audit();
DROP FUNCTION IF EXISTS hd_guard_items();
DROP FUNCTION IF EXISTS hd_guard_second_reviews();
DROP FUNCTION IF EXISTS hd_guard_ingested();
DROP FUNCTION IF EXISTS hd_guard_own_record();
DROP FUNCTION IF EXISTS hd_guard_comfort();
