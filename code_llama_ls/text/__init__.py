"""Documents as the server keeps them: snapshots, positions and offsets, uris."""
