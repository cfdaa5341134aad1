-- The top five buyers by gold spent.
SELECT username, sum(price) AS gold_spent, count(*) AS purchases
FROM purchases
WHERE success
GROUP BY username
ORDER BY gold_spent DESC, username
LIMIT 5;
