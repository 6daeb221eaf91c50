-- The ten most played songs (plays matched to a song), with their artist.
SELECT s.title, a.name AS artist, COUNT(*) AS plays
FROM songplays sp
JOIN songs s ON sp.song_id = s.song_id
JOIN artists a ON sp.artist_id = a.artist_id
GROUP BY s.title, a.name
ORDER BY plays DESC, s.title, artist
LIMIT 10
