-- The lake's tables.
SELECT table_name FROM information_schema.tables ORDER BY table_name;
