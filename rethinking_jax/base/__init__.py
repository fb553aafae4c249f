"""The base floor: what every other module may use (one-line user errors, config sections,
comma-separated fields, atomic files, the workdir and its lock, stop signals); it imports
nothing of the project above it."""
