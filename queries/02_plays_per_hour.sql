-- Plays per hour of the day (UTC).
SELECT t.hour, COUNT(*) AS plays
FROM songplays sp
JOIN time t ON sp.start_time = t.start_time
GROUP BY t.hour
ORDER BY t.hour
