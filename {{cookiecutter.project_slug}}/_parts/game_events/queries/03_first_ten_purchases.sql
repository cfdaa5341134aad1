-- The first ten purchases, oldest first.
SELECT * FROM purchases ORDER BY timestamp, event_id LIMIT 10;
