-- Guilds by members: each player counts in the guild they joined last.
SELECT guild_name, count(*) AS members
FROM (
    SELECT
        username,
        guild_name,
        row_number() OVER (PARTITION BY username ORDER BY timestamp DESC) AS latest
    FROM guild_events
    WHERE event_type = 'join_guild' AND success
)
WHERE latest = 1
GROUP BY guild_name
ORDER BY members DESC, guild_name;
