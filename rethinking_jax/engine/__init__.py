"""The training engine: E members of one architecture trained by one compiled program."""
