"""The Textual app. It renders Session frames and submits actions; it knows nothing else."""
