"""The run floor: a config checked (configuration), its sections put together (base_config),
a run trained (train), a suite of them (suite), the process around them (process)."""
