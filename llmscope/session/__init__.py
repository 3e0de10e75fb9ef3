"""Sessions: the versioned file format, recording what happened, and the torch-free replay engine."""
