-- The distinct event types landed, and how many of each.
SELECT event_type, count(*) AS events
FROM (
    SELECT event_type FROM visits
    UNION ALL SELECT event_type FROM accounts
    UNION ALL SELECT event_type FROM purchases
    UNION ALL SELECT event_type FROM guild_events
)
GROUP BY event_type
ORDER BY event_type;
