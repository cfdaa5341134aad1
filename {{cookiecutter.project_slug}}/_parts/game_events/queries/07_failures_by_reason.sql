-- Failed actions by reason, across every kind of event.
SELECT reason, event_type, count(*) AS failures
FROM (
    SELECT event_type, success, reason FROM visits
    UNION ALL SELECT event_type, success, reason FROM accounts
    UNION ALL SELECT event_type, success, reason FROM purchases
    UNION ALL SELECT event_type, success, reason FROM guild_events
)
WHERE NOT success
GROUP BY reason, event_type
ORDER BY failures DESC, reason, event_type;
