"""What composes the stages into a study: the demo (and --full), the recipe search, the rehearsal, and the
miniatures' image sources they make their data from."""
