-- The ten users with the most plays, with their current level.
SELECT sp.user_id, u.first_name, u.last_name, u.level, COUNT(*) AS plays
FROM songplays sp
JOIN users u ON sp.user_id = u.user_id
GROUP BY sp.user_id, u.first_name, u.last_name, u.level
ORDER BY plays DESC, sp.user_id
LIMIT 10
