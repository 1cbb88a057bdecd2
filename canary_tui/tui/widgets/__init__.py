"""Dashboard widgets: each renders one part of a frame and nothing else."""
