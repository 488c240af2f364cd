"""From files to tables to windows: reading, times, missing values, scaling and window sets."""
