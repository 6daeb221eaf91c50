-- Plays per weekday (ISO: 1 = Monday ... 7 = Sunday).
SELECT t.weekday, COUNT(*) AS plays
FROM songplays sp
JOIN time t ON sp.start_time = t.start_time
GROUP BY t.weekday
ORDER BY t.weekday
