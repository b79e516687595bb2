"""Docker values without I/O: repository references, layers as IMGAPI images, progress messages."""
