-- Plays and listeners by subscription level at the time of the play.
SELECT level, COUNT(*) AS plays, COUNT(DISTINCT user_id) AS listeners
FROM songplays
GROUP BY level
ORDER BY level
