"""Finding a workspace's source files: the walk, ignore rules, and safe reads of one file."""
