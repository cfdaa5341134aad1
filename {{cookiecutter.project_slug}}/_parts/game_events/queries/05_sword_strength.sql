-- The average strength of the swords bought.
SELECT avg(strength) AS average_strength, count(*) AS swords
FROM purchases
WHERE item_type = 'sword' AND success;
