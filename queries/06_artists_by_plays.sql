-- The ten artists with the most plays (plays matched to an artist).
SELECT a.artist_id, a.name, COUNT(*) AS plays
FROM songplays sp
JOIN artists a ON sp.artist_id = a.artist_id
GROUP BY a.artist_id, a.name
ORDER BY plays DESC, a.artist_id
LIMIT 10
